package match

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/cxplay/ctikit/cti"
)

// MaxValue is the longest identity value the Zendesk matcher searches for,
// in bytes. Longer values (a flow that stuffed a whole payload into an
// attribute) are skipped with an error wrapping cti.ErrNoMatch, so the
// engine moves on to the rule's next identity.
const MaxValue = 256

// Zendesk is a cti.Matcher that finds Zendesk users (and tickets) through
// a Searcher. Build it with NewZendesk. It is safe for concurrent use.
//
// Per identity kind:
//
//   - phone: the number is normalized (see Normalizer) and every format a
//     Zendesk account plausibly stores it in (Phone.Formats) is searched in
//     one query, the phone: keyword repeated (Zendesk ORs repeated
//     keywords). A withheld or unparseable number with fewer than 3 digits
//     is not searched.
//   - email: email:"…", lower-cased (Zendesk compares emails
//     case-insensitively).
//   - social: on SMS and WhatsApp the handle is a phone number and is
//     searched as one; on other channels the handle is searched as quoted
//     free text (WithSocialQuery changes that) and, when the Searcher is
//     also an IdentityLister, a candidate counts only if it has an identity
//     of the channel's type with that value.
//   - attribute: by Identity.Target: external_id:"…"; email and phone as
//     above; user_field.KEY as KEY:"…"; organization as the users of the
//     organizations whose external_id is the value; ticket_id as the ticket
//     with that id (a ticket record, not a user).
//
// Results are users (tickets for ticket_id) most recently updated first,
// ties by id, at most cti.MaxResults with More set when there were more.
// With Query.WithOpenTickets each user's unsolved tickets are read
// (Searcher.OpenTickets, a few users at a time) into Record.OpenTickets.
//
// A value that cannot be searched (too long, contains a double quote, a
// ticket id that is not a number) gives an error wrapping cti.ErrNoMatch
// that says why. Searcher failures are returned wrapped, never turned into
// "no match": creating a customer because Zendesk was down would make a
// duplicate.
type Zendesk struct {
	s           Searcher
	ids         IdentityLister // nil when s has no identities
	norm        *Normalizer
	formats     func(Phone) []string
	social      func(ch cti.Channel, handle string) string
	concurrency int
	log         *slog.Logger
}

// Option configures a Zendesk matcher.
type Option func(*Zendesk) error

// WithRegion sets the default region for phone numbers in national format
// (ISO 3166: "US", "FR", ...). Without it only international numbers parse.
func WithRegion(region string) Option {
	return func(z *Zendesk) error {
		n, err := NewNormalizer(region)
		if err != nil {
			return err
		}
		z.norm = n
		return nil
	}
}

// WithNormalizer sets the phone normalizer (it replaces WithRegion).
func WithNormalizer(n *Normalizer) Option {
	return func(z *Zendesk) error {
		if n == nil {
			return errors.New("match: WithNormalizer(nil)")
		}
		z.norm = n
		return nil
	}
}

// WithPhoneFormats sets the phone formats searched for a number (default
// Phone.Formats). Return the strings most likely first; at most 16 are used.
func WithPhoneFormats(f func(Phone) []string) Option {
	return func(z *Zendesk) error {
		if f == nil {
			return errors.New("match: WithPhoneFormats(nil)")
		}
		z.formats = f
		return nil
	}
}

// WithSocialQuery sets the user search expression for a social handle on a
// channel (default: the handle as quoted free text, without a leading @).
// Return "" to skip the search. The expression follows Searcher's syntax.
func WithSocialQuery(f func(ch cti.Channel, handle string) string) Option {
	return func(z *Zendesk) error {
		if f == nil {
			return errors.New("match: WithSocialQuery(nil)")
		}
		z.social = f
		return nil
	}
}

// WithConcurrency bounds the parallel calls the matcher makes for one
// match (open tickets of several users, identities, organizations).
// Default 4.
func WithConcurrency(n int) Option {
	return func(z *Zendesk) error {
		if n < 1 {
			return fmt.Errorf("%w: match concurrency %d: want at least 1", cti.ErrInvalid, n)
		}
		z.concurrency = n
		return nil
	}
}

// WithLogger sets a logger for debug traces of the searches made. Nil (the
// default) means silence.
func WithLogger(l *slog.Logger) Option {
	return func(z *Zendesk) error { z.log = l; return nil }
}

// NewZendesk returns a matcher searching Zendesk through s.
func NewZendesk(s Searcher, opts ...Option) (*Zendesk, error) {
	if s == nil {
		return nil, errors.New("match: NewZendesk: nil Searcher")
	}
	z := &Zendesk{s: s, norm: &Normalizer{memo: newPhoneMemo(phoneMemoSize)}, formats: Phone.Formats, social: defaultSocialQuery, concurrency: 4}
	z.ids, _ = s.(IdentityLister)
	for _, o := range opts {
		if err := o(z); err != nil {
			return nil, err
		}
	}
	if z.log == nil {
		z.log = slog.New(slog.DiscardHandler)
	}
	return z, nil
}

func defaultSocialQuery(_ cti.Channel, handle string) string {
	return quote(strings.TrimPrefix(handle, "@"))
}

// skip is the error for a value that cannot be searched.
func skip(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{cti.ErrNoMatch}, args...)...)
}

// Match implements cti.Matcher.
func (z *Zendesk) Match(ctx context.Context, q cti.Query) (cti.Result, error) {
	if err := ctx.Err(); err != nil {
		return cti.Result{}, err
	}
	id := q.Identity
	v := strings.TrimSpace(id.Value)
	if v == "" {
		return cti.Result{}, nil
	}
	if len(v) > MaxValue {
		return cti.Result{}, skip("%s value is %d bytes, more than %d: not searched", id.Kind, len(v), MaxValue)
	}
	if !utf8.ValidString(v) {
		return cti.Result{}, skip("%s value is not valid UTF-8: not searched", id.Kind)
	}
	var (
		recs []cti.Record
		more bool
		err  error
	)
	switch id.Kind {
	case cti.IdentifyPhone:
		recs, more, err = z.byPhone(ctx, v)
	case cti.IdentifyEmail:
		recs, more, err = z.byEmail(ctx, v)
	case cti.IdentifySocial:
		recs, more, err = z.bySocial(ctx, id.Channel, v)
	case cti.IdentifyAttribute:
		recs, more, err = z.byAttribute(ctx, id.Target, v)
	default:
		return cti.Result{}, fmt.Errorf("%w: unknown identity kind %q", cti.ErrInvalid, id.Kind)
	}
	if err != nil {
		return cti.Result{}, err
	}
	res := Finish(recs, more)
	if q.WithOpenTickets {
		if err := z.openTickets(ctx, res.Records); err != nil {
			return cti.Result{}, err
		}
	}
	return res, nil
}

// Finish puts records in the order and size every cti.Matcher returns:
// duplicates (same kind and id) removed, most recently updated first, ties
// by descending id, at most cti.MaxResults with More set when there were
// more (or when more is already true). It sorts recs in place.
func Finish(recs []cti.Record, more bool) cti.Result {
	slices.SortStableFunc(recs, func(a, b cti.Record) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if len(recs) > 1 {
		// The same record twice (two searches, or updated between them)
		// may sort apart: keep its first, most recent, copy.
		type id struct {
			kind cti.RecordKind
			id   int64
		}
		seen := make(map[id]bool, len(recs))
		recs = slices.DeleteFunc(recs, func(r cti.Record) bool {
			k := id{r.Kind, r.ID}
			dup := seen[k]
			seen[k] = true
			return dup
		})
	}
	if len(recs) > cti.MaxResults {
		recs, more = recs[:cti.MaxResults:cti.MaxResults], true
	}
	if len(recs) == 0 {
		recs = nil
	}
	return cti.Result{Records: recs, More: more}
}

func (z *Zendesk) searchUsers(ctx context.Context, query string) ([]cti.Record, bool, error) {
	z.log.DebugContext(ctx, "zendesk user search", "query", query)
	users, more, err := z.s.SearchUsers(ctx, query)
	if err != nil {
		return nil, false, fmt.Errorf("search users: %w", err)
	}
	return users, more, nil
}

// PhoneQuery returns the user search expression that finds a phone number
// in every given format: phone:"f1" phone:"f2" ... (Zendesk ORs a repeated
// keyword). Formats containing a double quote are dropped; "" when none is
// left.
func PhoneQuery(formats []string) string {
	var b strings.Builder
	n := 0
	for _, f := range formats {
		if f == "" || strings.ContainsAny(f, "\"\\") || n == 16 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("phone:")
		b.WriteString(quote(f))
		n++
	}
	return b.String()
}

func (z *Zendesk) byPhone(ctx context.Context, v string) ([]cti.Record, bool, error) {
	p, err := z.norm.Parse(v)
	var formats []string
	switch {
	case err == nil:
		formats = z.formats(p)
	case errors.Is(err, ErrWithheld):
		return nil, false, nil
	default:
		// Not a number we understand: search the cleaned input as is,
		// if it looks enough like a number to be worth a search.
		if len(digitsOnly(p.Input)) < 3 || strings.ContainsAny(p.Input, "\"\\") {
			return nil, false, skip("phone %q is not a phone number: not searched", p.Input)
		}
		formats = []string{p.Input}
	}
	q := PhoneQuery(formats)
	if q == "" {
		return nil, false, skip("phone %q has no searchable format", v)
	}
	return z.searchUsers(ctx, q)
}

func (z *Zendesk) byEmail(ctx context.Context, v string) ([]cti.Record, bool, error) {
	v = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(v), "mailto:"))
	at := strings.LastIndexByte(v, '@')
	if at <= 0 || at == len(v)-1 || strings.ContainsAny(v, "\" \t<>\\") {
		return nil, false, skip("%q is not an email address: not searched", v)
	}
	return z.searchUsers(ctx, "email:"+quote(v))
}

func socialIdentityTypes(ch cti.Channel) []string {
	switch ch {
	case cti.ChannelTwitter:
		return []string{"twitter", "any_channel", "messaging"}
	case cti.ChannelFacebook:
		return []string{"facebook", "any_channel", "messaging"}
	default:
		return []string{"messaging", "any_channel", "foreign", "sdk"}
	}
}

func (z *Zendesk) bySocial(ctx context.Context, ch cti.Channel, v string) ([]cti.Record, bool, error) {
	switch ch {
	case cti.ChannelSMS:
		return z.byPhone(ctx, v)
	case cti.ChannelWhatsApp:
		return z.byPhone(ctx, cti.WhatsAppNumber(v))
	}
	if strings.ContainsAny(v, "\"\\") {
		return nil, false, skip("%s handle %q contains a quote: not searched", ch, v)
	}
	q := z.social(ch, v)
	if q == "" {
		return nil, false, nil
	}
	users, more, err := z.searchUsers(ctx, q)
	if err != nil || z.ids == nil || len(users) == 0 {
		return users, more, err
	}
	// Free text also hits names and notes: keep the users who really have
	// this identity.
	want := strings.ToLower(strings.TrimPrefix(v, "@"))
	types := socialIdentityTypes(ch)
	keep := make([]bool, len(users))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(z.concurrency)
	for i := range users {
		g.Go(func() error {
			ids, err := z.ids.UserIdentities(gctx, users[i].ID)
			if err != nil {
				return fmt.Errorf("user %d identities: %w", users[i].ID, err)
			}
			for _, id := range ids {
				if slices.Contains(types, id.Type) && strings.ToLower(strings.TrimPrefix(id.Value, "@")) == want {
					keep[i] = true
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, false, err
	}
	var out []cti.Record
	for i, u := range users {
		if keep[i] {
			out = append(out, u)
		}
	}
	return out, more, nil
}

var fieldKey = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

func (z *Zendesk) byAttribute(ctx context.Context, target, v string) ([]cti.Record, bool, error) {
	if strings.ContainsAny(v, "\"\\") && target != cti.TargetPhone && target != cti.TargetTicketID {
		return nil, false, skip("%s value %q contains a quote or backslash: not searched", target, v)
	}
	switch {
	case target == cti.TargetExternalID:
		return z.searchUsers(ctx, "external_id:"+quote(v))
	case target == cti.TargetEmail:
		return z.byEmail(ctx, v)
	case target == cti.TargetPhone:
		return z.byPhone(ctx, v)
	case target == cti.TargetTicketID:
		return z.byTicket(ctx, v)
	case target == cti.TargetOrganization:
		return z.byOrganization(ctx, v)
	case strings.HasPrefix(target, cti.TargetUserField):
		key := strings.TrimPrefix(target, cti.TargetUserField)
		if !fieldKey.MatchString(key) {
			return nil, false, fmt.Errorf("%w: user field key %q: want letters, digits and underscores (the field's key in Admin Center)", cti.ErrInvalid, key)
		}
		return z.searchUsers(ctx, key+":"+quote(v))
	}
	return nil, false, fmt.Errorf("%w: unknown attribute target %q", cti.ErrInvalid, target)
}

func (z *Zendesk) byTicket(ctx context.Context, v string) ([]cti.Record, bool, error) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "#")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return nil, false, skip("ticket id %q is not a positive number: not looked up", v)
	}
	t, err := z.s.Ticket(ctx, id)
	if errors.Is(err, cti.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("ticket %d: %w", id, err)
	}
	if t.Kind == "" {
		t.Kind = cti.KindTicket
	}
	return []cti.Record{t}, false, nil
}

// maxOrganizations bounds the organizations whose users are listed for an
// organization identity (an external id should name one).
const maxOrganizations = 5

func (z *Zendesk) byOrganization(ctx context.Context, v string) ([]cti.Record, bool, error) {
	q := "external_id:" + quote(v)
	z.log.DebugContext(ctx, "zendesk organization search", "query", q)
	orgs, more, err := z.s.SearchOrganizations(ctx, q)
	if err != nil {
		return nil, false, fmt.Errorf("search organizations: %w", err)
	}
	if len(orgs) > maxOrganizations {
		orgs, more = orgs[:maxOrganizations], true
	}
	results := make([][]cti.Record, len(orgs))
	mores := make([]bool, len(orgs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(z.concurrency)
	for i, o := range orgs {
		g.Go(func() error {
			u, m, err := z.searchUsers(gctx, "organization:"+strconv.FormatInt(o.ID, 10))
			results[i], mores[i] = u, m
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, false, err
	}
	var users []cti.Record
	for i := range results {
		users = append(users, results[i]...)
		more = more || mores[i]
	}
	return users, more, nil
}

// openTickets fills OpenTickets on each user record.
func (z *Zendesk) openTickets(ctx context.Context, recs []cti.Record) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(z.concurrency)
	for i := range recs {
		if recs[i].Kind != cti.KindUser {
			continue
		}
		g.Go(func() error {
			ts, err := z.s.OpenTickets(gctx, recs[i].ID)
			if err != nil {
				return fmt.Errorf("open tickets of user %d: %w", recs[i].ID, err)
			}
			recs[i].OpenTickets = OpenOnly(ts)
			return nil
		})
	}
	return g.Wait()
}

// OpenOnly returns the unsolved tickets of ts (cti.Unsolved), most
// recently updated first (ties by descending id), at most cti.MaxResults,
// in a new slice; nil when there are none.
func OpenOnly(ts []cti.Record) []cti.Record {
	var out []cti.Record
	for _, t := range ts {
		if cti.Unsolved(t.Status) {
			out = append(out, t)
		}
	}
	slices.SortStableFunc(out, func(a, b cti.Record) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if len(out) > cti.MaxResults {
		out = out[:cti.MaxResults:cti.MaxResults]
	}
	return out
}

func quote(s string) string { return `"` + s + `"` }
