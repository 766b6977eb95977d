// Package zdfake is an in-memory Zendesk directory implementing
// match.Searcher and match.IdentityLister with Zendesk's search semantics
// for the query forms package match writes: phone numbers match as exact
// strings, emails case-insensitively, a repeated keyword ORs its values,
// different keywords AND, quoted free text matches the start of words in
// names, emails, phones, notes and identity values. It is a test double
// for package match's own tests; the wire-level emulator is
// zendesk/zendesktest.
package zdfake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
)

// PageSize is the number of results a search returns at most.
const PageSize = 100

// User is a Zendesk user in the directory.
type User struct {
	ID             int64
	Name           string
	Email          string
	Phone          string
	ExternalID     string
	OrganizationID int64
	Notes          string
	Fields         map[string]string // custom user fields by key
	Identities     []match.UserIdentity
	UpdatedAt      time.Time
}

// Ticket is a Zendesk ticket.
type Ticket struct {
	ID          int64
	Subject     string
	Status      string
	RequesterID int64
	UpdatedAt   time.Time
}

// Org is a Zendesk organization.
type Org struct {
	ID         int64
	Name       string
	ExternalID string
	UpdatedAt  time.Time
}

// Dir is the directory. Its zero value is empty and ready; it is safe for
// concurrent use.
type Dir struct {
	mu      sync.Mutex
	users   []User
	tickets []Ticket
	orgs    []Org

	// Delay, when set, is waited (or ctx) before each call.
	Delay time.Duration
	// Fail, when set, is returned by every call.
	Fail error

	calls   atomic.Int64
	queries sync.Map // query -> *atomic.Int64
	log     []string
}

// AddUser adds users.
func (d *Dir) AddUser(us ...User) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.users = append(d.users, us...)
}

// AddTicket adds tickets.
func (d *Dir) AddTicket(ts ...Ticket) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.tickets = append(d.tickets, ts...)
}

// AddOrg adds organizations.
func (d *Dir) AddOrg(os ...Org) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.orgs = append(d.orgs, os...)
}

// Calls returns the number of calls made so far.
func (d *Dir) Calls() int64 { return d.calls.Load() }

// Queries returns the search queries received, in order.
func (d *Dir) Queries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.log)
}

func (d *Dir) enter(ctx context.Context, what string) error {
	d.calls.Add(1)
	d.mu.Lock()
	d.log = append(d.log, what)
	d.mu.Unlock()
	if d.Delay > 0 {
		t := time.NewTimer(d.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return d.Fail
}

// term is one search term: keyword (empty for free text) and value.
type term struct{ key, value string }

// parse splits a query into terms. It rejects what package match must
// never send: a type: keyword, an unterminated quote.
func parse(q string) ([]term, error) {
	var out []term
	i := 0
	for i < len(q) {
		if q[i] == ' ' {
			i++
			continue
		}
		var key string
		j := i
		for j < len(q) && q[j] != ' ' && q[j] != ':' && q[j] != '"' {
			j++
		}
		if j < len(q) && q[j] == ':' {
			key = strings.ToLower(q[i:j])
			i = j + 1
		}
		var val string
		if i < len(q) && q[i] == '"' {
			end := strings.IndexByte(q[i+1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("zdfake: unterminated quote in %q", q)
			}
			val = q[i+1 : i+1+end]
			i += end + 2
		} else {
			j := i
			for j < len(q) && q[j] != ' ' {
				j++
			}
			val = q[i:j]
			i = j
		}
		if key == "type" {
			return nil, fmt.Errorf("zdfake: query %q has a type: keyword; Searcher queries must not", q)
		}
		out = append(out, term{key, val})
	}
	if len(out) == 0 {
		return nil, errors.New("zdfake: empty query")
	}
	return out, nil
}

// words reports whether phrase occurs in s at the start of a word,
// case-insensitively (Zendesk matches words and word prefixes).
func words(s, phrase string) bool {
	s, phrase = strings.ToLower(s), strings.ToLower(phrase)
	if phrase == "" {
		return false
	}
	for i := 0; i+len(phrase) <= len(s); i++ {
		if (i == 0 || !isWord(rune(s[i-1]))) && strings.HasPrefix(s[i:], phrase) {
			return true
		}
	}
	return false
}

func isWord(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

func (u *User) matches(t term, d *Dir) bool {
	switch t.key {
	case "phone":
		if u.Phone == t.value {
			return true
		}
		for _, id := range u.Identities {
			if id.Type == "phone_number" && id.Value == t.value {
				return true
			}
		}
		return false
	case "email":
		if strings.EqualFold(u.Email, t.value) {
			return true
		}
		for _, id := range u.Identities {
			if id.Type == "email" && strings.EqualFold(id.Value, t.value) {
				return true
			}
		}
		return false
	case "external_id":
		return u.ExternalID != "" && u.ExternalID == t.value
	case "name":
		return words(u.Name, t.value)
	case "organization":
		if id, err := strconv.ParseInt(t.value, 10, 64); err == nil {
			return u.OrganizationID == id
		}
		for _, o := range d.orgs {
			if o.ID == u.OrganizationID && strings.EqualFold(o.Name, t.value) {
				return true
			}
		}
		return false
	case "":
		if words(u.Name, t.value) || words(u.Email, t.value) || words(u.Notes, t.value) || u.Phone == t.value {
			return true
		}
		for _, id := range u.Identities {
			if words(id.Value, t.value) {
				return true
			}
		}
		return false
	default: // custom user field by key
		v, ok := u.Fields[t.key]
		return ok && strings.EqualFold(v, t.value)
	}
}

// matchAll applies Zendesk's combination: terms with the same keyword OR,
// groups of different keywords AND.
func matchAll[T any](terms []term, rec *T, one func(*T, term) bool) bool {
	groups := map[string][]term{}
	for _, t := range terms {
		groups[t.key] = append(groups[t.key], t)
	}
	for key, g := range groups {
		if key == "" { // free text terms all have to match
			for _, t := range g {
				if !one(rec, t) {
					return false
				}
			}
			continue
		}
		if !slices.ContainsFunc(g, func(t term) bool { return one(rec, t) }) {
			return false
		}
	}
	return true
}

func page(recs []cti.Record) ([]cti.Record, bool) {
	slices.SortStableFunc(recs, func(a, b cti.Record) int {
		if c := b.UpdatedAt.Compare(a.UpdatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if len(recs) > PageSize {
		return recs[:PageSize], true
	}
	return recs, false
}

// UserRecord is u as a Searcher returns it.
func UserRecord(u User) cti.Record {
	return cti.Record{
		Kind: cti.KindUser, ID: u.ID, Name: u.Name, Email: u.Email, Phone: u.Phone,
		ExternalID: u.ExternalID, OrganizationID: u.OrganizationID, UpdatedAt: u.UpdatedAt,
		URL: fmt.Sprintf("https://example.zendesk.com/api/v2/users/%d.json", u.ID),
	}
}

// TicketRecord is t as a Searcher returns it.
func TicketRecord(t Ticket) cti.Record {
	return cti.Record{
		Kind: cti.KindTicket, ID: t.ID, Name: t.Subject, Status: t.Status, RequesterID: t.RequesterID,
		UpdatedAt: t.UpdatedAt, URL: fmt.Sprintf("https://example.zendesk.com/api/v2/tickets/%d.json", t.ID),
	}
}

// SearchUsers implements match.Searcher.
func (d *Dir) SearchUsers(ctx context.Context, query string) ([]cti.Record, bool, error) {
	if err := d.enter(ctx, "users: "+query); err != nil {
		return nil, false, err
	}
	terms, err := parse(query)
	if err != nil {
		return nil, false, &cti.UpstreamError{Service: "zendesk", Op: "search users", Status: 422, Err: err}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []cti.Record
	for i := range d.users {
		if matchAll(terms, &d.users[i], func(u *User, t term) bool { return u.matches(t, d) }) {
			out = append(out, UserRecord(d.users[i]))
		}
	}
	recs, more := page(out)
	return recs, more, nil
}

// SearchOrganizations implements match.Searcher.
func (d *Dir) SearchOrganizations(ctx context.Context, query string) ([]cti.Record, bool, error) {
	if err := d.enter(ctx, "organizations: "+query); err != nil {
		return nil, false, err
	}
	terms, err := parse(query)
	if err != nil {
		return nil, false, &cti.UpstreamError{Service: "zendesk", Op: "search organizations", Status: 422, Err: err}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []cti.Record
	for i := range d.orgs {
		o := &d.orgs[i]
		if matchAll(terms, o, func(o *Org, t term) bool {
			switch t.key {
			case "external_id":
				return o.ExternalID != "" && o.ExternalID == t.value
			case "name", "":
				return words(o.Name, t.value)
			}
			return false
		}) {
			out = append(out, cti.Record{Kind: cti.KindOrganization, ID: o.ID, Name: o.Name, ExternalID: o.ExternalID, UpdatedAt: o.UpdatedAt})
		}
	}
	recs, more := page(out)
	return recs, more, nil
}

// OpenTickets implements match.Searcher.
func (d *Dir) OpenTickets(ctx context.Context, userID int64) ([]cti.Record, error) {
	if err := d.enter(ctx, fmt.Sprintf("open tickets: %d", userID)); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []cti.Record
	for _, t := range d.tickets {
		if t.RequesterID == userID && cti.Unsolved(t.Status) {
			out = append(out, TicketRecord(t))
		}
	}
	recs, _ := page(out)
	return recs, nil
}

// Ticket implements match.Searcher.
func (d *Dir) Ticket(ctx context.Context, id int64) (cti.Record, error) {
	if err := d.enter(ctx, fmt.Sprintf("ticket: %d", id)); err != nil {
		return cti.Record{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.tickets {
		if t.ID == id {
			return TicketRecord(t), nil
		}
	}
	return cti.Record{}, fmt.Errorf("ticket %d: %w", id, cti.ErrNotFound)
}

// UserIdentities implements match.IdentityLister.
func (d *Dir) UserIdentities(ctx context.Context, userID int64) ([]match.UserIdentity, error) {
	if err := d.enter(ctx, fmt.Sprintf("identities: %d", userID)); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.users {
		if u.ID == userID {
			return slices.Clone(u.Identities), nil
		}
	}
	return nil, nil
}

var (
	_ match.Searcher       = (*Dir)(nil)
	_ match.IdentityLister = (*Dir)(nil)
)
