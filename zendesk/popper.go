package zendesk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/internal/flight"
)

// popAPI is what the popper needs from Zendesk.
type popAPI interface {
	DisplayUser(ctx context.Context, agentID, userID int64) error
	DisplayTicket(ctx context.Context, agentID, ticketID int64) error
	CreateUser(ctx context.Context, u NewUser) (User, error)
	UserByKey(ctx context.Context, field, value string) (User, error)
	createTicket(ctx context.Context, t NewTicket) (ticketJSON, error)
	createVoiceTicket(ctx context.Context, vt VoiceTicket) (ticketJSON, error)
	UserRecord(u User) cti.Record
	AgentURL(kind cti.RecordKind, id int64) string
}

// Popper carries out pop-up decisions in the agent's Zendesk through Talk
// Partner Edition (cti.Popper): ActionShow displays the record
// (POST /api/v2/channels/voice/agents/{agent}/users|tickets/{id}/display);
// ActionCreate creates the end user (with phone, email and social
// identities from the conversation's customer) and/or the ticket (a Talk
// Partner Edition voice ticket for voice, which opens in the agent's
// browser in the same request), then displays it.
//
// Duplicates: Zendesk's search index lags behind new users by up to
// minutes, so the same unknown caller calling again soon finds nothing and
// the decision says "create" again. The popper remembers the users it
// created by every identity of the customer (phone, email, social handle,
// the identity that did not match) for the memory TTL and reuses them, and
// the tickets it created per conversation (a transfer to a second agent
// shows the same ticket). Concurrent pops for one customer create once.
// Ticket creation also carries an Idempotency-Key per conversation, so a
// retry after a lost response cannot create a second ticket.
//
// A partial failure (user created, ticket not) returns what was created in
// PopResult.Created together with the error; a retry reuses the user.
// Safe for concurrent use; no goroutines.
type Popper struct {
	z        popAPI
	log      *slog.Logger
	ttl      time.Duration
	describe func(req cti.PopRequest) string
	now      func() time.Time

	mu      sync.Mutex
	users   map[string]memo   // identity key → created user
	tix     map[string]memo   // conversation id → created ticket
	flights flight.Group[any] // creations in progress, by key
	// sweep: the size at which each map is next swept of expired entries.
	sweepUsers, sweepTix int
}

type memo struct {
	rec   cti.Record
	until time.Time
}

// PopperOption configures a Popper.
type PopperOption func(*Popper) error

// WithPopperLogger logs pops at debug level; nil means silence.
func WithPopperLogger(l *slog.Logger) PopperOption {
	return func(p *Popper) error { p.log = l; return nil }
}

// WithMemory sets how long created users and tickets are remembered
// (default 30 minutes, longer than Zendesk's search index lag); 0 turns the
// memory off (when a wrapper such as package popup's remembers instead).
func WithMemory(ttl time.Duration) PopperOption {
	return func(p *Popper) error {
		if ttl < 0 {
			return fmt.Errorf("zendesk: WithMemory(%v): want 0 or more", ttl)
		}
		p.ttl = ttl
		return nil
	}
}

// WithDescription sets the first comment (an internal note) of created
// tickets; default DefaultDescription.
func WithDescription(f func(req cti.PopRequest) string) PopperOption {
	return func(p *Popper) error {
		if f == nil {
			return errors.New("zendesk: WithDescription: nil function")
		}
		p.describe = f
		return nil
	}
}

// NewPopper returns a Popper over c.
func NewPopper(c *Client, opts ...PopperOption) (*Popper, error) {
	if c == nil {
		return nil, errors.New("zendesk: NewPopper: nil client")
	}
	p := &Popper{z: c, ttl: 30 * time.Minute, describe: DefaultDescription, now: time.Now,
		users: map[string]memo{}, tix: map[string]memo{}}
	for _, o := range opts {
		if err := o(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Pop implements cti.Popper.
func (p *Popper) Pop(ctx context.Context, req cti.PopRequest) (cti.PopResult, error) {
	if req.Agent.ID <= 0 {
		return cti.PopResult{}, fmt.Errorf("zendesk pop: %w: no Zendesk agent id", cti.ErrUnknownAgent)
	}
	switch req.Decision.Action {
	case cti.ActionShow:
		rec := req.Decision.Record
		if rec == nil || rec.ID <= 0 {
			return cti.PopResult{}, fmt.Errorf("zendesk pop: %w: show without a record", cti.ErrInvalid)
		}
		if err := p.display(ctx, req.Agent.ID, *rec); err != nil {
			return cti.PopResult{}, err
		}
		shown := *rec
		return cti.PopResult{Shown: &shown}, nil
	case cti.ActionCreate:
		return p.create(ctx, req)
	}
	return cti.PopResult{}, fmt.Errorf("zendesk pop: %w: cannot perform action %q", cti.ErrInvalid, req.Decision.Action)
}

func (p *Popper) display(ctx context.Context, agentID int64, rec cti.Record) error {
	var err error
	switch rec.Kind {
	case cti.KindUser:
		err = p.z.DisplayUser(ctx, agentID, rec.ID)
	case cti.KindTicket:
		err = p.z.DisplayTicket(ctx, agentID, rec.ID)
	default:
		return fmt.Errorf("zendesk pop: %w: Talk Partner Edition displays users and tickets, not %s", cti.ErrInvalid, rec.Ref())
	}
	if err != nil {
		return fmt.Errorf("zendesk pop: showing %s to agent %d: %w", rec.Ref(), agentID, err)
	}
	if p.log != nil {
		p.log.Debug("zendesk: popped", "record", rec.Ref(), "agent", agentID)
	}
	return nil
}

func (p *Popper) create(ctx context.Context, req cti.PopRequest) (cti.PopResult, error) {
	spec := req.Decision.Create
	if !spec.User && !spec.Ticket {
		return cti.PopResult{}, fmt.Errorf("zendesk pop: %w: create with nothing to create", cti.ErrInvalid)
	}
	if req.Conversation == nil {
		return cti.PopResult{}, fmt.Errorf("zendesk pop: %w: create without a conversation", cti.ErrInvalid)
	}
	var res cti.PopResult
	requester := spec.Requester
	if spec.User {
		u, created, err := p.user(ctx, req)
		if err != nil {
			return res, err
		}
		if created {
			res.Created = append(res.Created, u)
		}
		requester = &u
	}
	if !spec.Ticket {
		if err := p.display(ctx, req.Agent.ID, *requester); err != nil {
			return res, err
		}
		res.Shown = requester
		return res, nil
	}
	if requester == nil || requester.ID <= 0 {
		return res, fmt.Errorf("zendesk pop: %w: a new ticket needs a requester: create the user too, or give Create.Requester", cti.ErrInvalid)
	}
	t, created, displayed, err := p.ticket(ctx, req, requester.ID)
	if err != nil {
		return res, err
	}
	if created {
		res.Created = append(res.Created, t)
	}
	if !displayed {
		if err := p.display(ctx, req.Agent.ID, t); err != nil {
			return res, err
		}
	}
	res.Shown = &t
	return res, nil
}

// user returns the remembered user for the customer or creates one.
func (p *Popper) user(ctx context.Context, req cti.PopRequest) (cti.Record, bool, error) {
	keys := identityKeys(req)
	if rec, ok := p.recall(p.users, keys); ok {
		return rec, false, nil
	}
	sfKey := "user:" + strings.Join(keys, "|")
	if len(keys) == 0 {
		sfKey = "user:conv:" + req.Conversation.ID
	}
	type out struct {
		rec     cti.Record
		created bool
	}
	v, err := p.shared(ctx, sfKey, func(ctx context.Context) (any, error) {
		if rec, ok := p.recall(p.users, keys); ok { // created while we waited
			return out{rec, false}, nil
		}
		nu := NewUserFrom(req)
		u, err := p.z.CreateUser(ctx, nu)
		created := err == nil
		if field, value := takenKey(err, nu); field != "" {
			// The customer is in Zendesk, not yet in its search index (a
			// user created in the last minutes, e.g. by an email): that
			// user, not a second one.
			u, err = p.z.UserByKey(ctx, field, value)
		}
		if err != nil {
			return nil, fmt.Errorf("zendesk pop: creating user %q: %w", nu.Name, err)
		}
		rec := p.z.UserRecord(u)
		p.remember(p.users, &p.sweepUsers, keys, rec)
		if p.log != nil {
			p.log.Debug("zendesk: popped user", "user", u.ID, "created", created, "conversation", req.Conversation.ID)
		}
		return out{rec, created}, nil
	})
	if err != nil {
		return cti.Record{}, false, err
	}
	o := v.(out)
	return o.rec, o.created, nil
}

// takenKey returns the key (email or external id) of nu that err, from
// creating nu, says another user holds; "" when it says no such thing.
func takenKey(err error, nu NewUser) (field, value string) {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity {
		return "", ""
	}
	email := nu.Email
	for _, id := range nu.Identities {
		if email == "" && id.Type == IdentityEmail {
			email = id.Value // the first is the primary email
		}
	}
	switch {
	case email != "" && slices.Contains(ae.Taken, "email"):
		return "email", email
	case nu.ExternalID != "" && slices.Contains(ae.Taken, "external_id"):
		return "external_id", nu.ExternalID
	}
	return "", ""
}

// ticket returns the conversation's remembered ticket or creates one;
// displayed says the creation already showed it to the agent.
func (p *Popper) ticket(ctx context.Context, req cti.PopRequest, requesterID int64) (rec cti.Record, created, displayed bool, err error) {
	conv := req.Conversation
	key := []string{"conv:" + conv.ID}
	if rec, ok := p.recall(p.tix, key); ok {
		return rec, false, false, nil
	}
	type out struct {
		rec                cti.Record
		created, displayed bool
	}
	v, err := p.shared(ctx, "ticket:"+conv.ID, func(ctx context.Context) (any, error) {
		if rec, ok := p.recall(p.tix, key); ok {
			return out{rec: rec}, nil
		}
		spec := req.Decision.Create
		nt := NewTicket{
			Subject:     cmpOr(strings.TrimSpace(spec.Subject), DefaultSubject(conv)),
			Comment:     &CommentInput{Body: p.describe(req), Public: false, AuthorID: req.Agent.ID},
			RequesterID: requesterID,
			Tags:        []string{"ctikit", "ctikit_" + strings.ReplaceAll(conv.Kind(), "-", "_")},
		}
		var (
			tj        ticketJSON
			err       error
			displayed bool
		)
		if spec.Voice && (conv.Media == cti.MediaVoice || conv.Media == cti.MediaCallback) {
			via := ViaInboundCall
			if conv.Direction == cti.Outbound {
				via = ViaOutboundCall
			}
			tj, err = p.z.createVoiceTicket(ctx, VoiceTicket{NewTicket: nt, ViaID: via, DisplayToAgent: req.Agent.ID})
			displayed = err == nil
		} else {
			tctx := WithIdempotencyKey(ctx, "ctikit:pop:"+conv.ID+":"+itoa(requesterID))
			tj, err = p.z.createTicket(tctx, nt)
		}
		if err != nil {
			return nil, fmt.Errorf("zendesk pop: creating ticket for user %d: %w", requesterID, err)
		}
		rec := cti.Record{Kind: cti.KindTicket, ID: tj.ID, Name: tj.Subject, Status: tj.Status,
			RequesterID: tj.RequesterID, OrganizationID: tj.OrganizationID, UpdatedAt: tj.UpdatedAt,
			URL: p.z.AgentURL(cti.KindTicket, tj.ID)}
		p.remember(p.tix, &p.sweepTix, key, rec)
		if p.log != nil {
			p.log.Debug("zendesk: created ticket", "ticket", tj.ID, "conversation", conv.ID, "voice", displayed)
		}
		return out{rec, true, displayed}, nil
	})
	if err != nil {
		return cti.Record{}, false, false, err
	}
	o := v.(out)
	return o.rec, o.created, o.displayed, nil
}

// shared runs f once for concurrent callers with the same key. The first
// caller runs it on its own goroutine (internal/flight), detached from
// that caller's cancellation and bounded by lookupTimeout: a creation once sent is seen through, so that what it
// creates is remembered, and that caller returns when it is done. The
// others wait for it, each until its own ctx is done.
func (p *Popper) shared(ctx context.Context, key string, f func(context.Context) (any, error)) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("zendesk pop: %w", err)
	}
	led := false
	v, err := p.flights.Do(ctx, key, func() (any, error, bool) {
		led = true
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lookupTimeout)
		defer cancel()
		v, err := f(sctx)
		return v, err, false
	})
	if !led {
		switch {
		case errors.Is(err, flight.ErrAbandoned): // f panicked on the pop that ran it
			return nil, errors.New("zendesk pop: the creation shared with this pop failed")
		case err != nil && err == ctx.Err():
			return nil, fmt.Errorf("zendesk pop: %w", err)
		}
	}
	return v, err
}

func (p *Popper) recall(m map[string]memo, keys []string) (cti.Record, bool) {
	if p.ttl == 0 {
		return cti.Record{}, false
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		if e, ok := m[k]; ok {
			if now.Before(e.until) {
				return e.rec, true
			}
			delete(m, k)
		}
	}
	return cti.Record{}, false
}

func (p *Popper) remember(m map[string]memo, sweepAt *int, keys []string, rec cti.Record) {
	if p.ttl == 0 {
		return
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(m) >= *sweepAt {
		// Drop expired entries so the map stays small; only once it has
		// doubled since the last sweep, so that remembering stays O(1)
		// amortized with thousands of live entries.
		for k, e := range m {
			if !now.Before(e.until) {
				delete(m, k)
			}
		}
		*sweepAt = max(2*len(m), 64)
	}
	for _, k := range keys {
		m[k] = memo{rec: rec, until: now.Add(p.ttl)}
	}
}

// identityKeys are the normalized identities of the request's customer.
func identityKeys(req cti.PopRequest) []string {
	var keys []string
	add := func(id cti.Identity) {
		id.Value = strings.TrimSpace(id.Value)
		if id.Value == "" {
			return
		}
		if id.Kind == cti.IdentifyEmail || id.Target == cti.TargetEmail {
			id.Value = strings.ToLower(id.Value)
		}
		k := id.Key()
		for _, x := range keys {
			if x == k {
				return
			}
		}
		keys = append(keys, k)
	}
	add(req.Identity)
	if c := req.Conversation; c != nil {
		add(cti.Identity{Kind: cti.IdentifyPhone, Value: c.Customer.Phone})
		add(cti.Identity{Kind: cti.IdentifyEmail, Value: c.Customer.Email})
		if c.Customer.Handle != "" && c.Channel != "" {
			add(cti.Identity{Kind: cti.IdentifySocial, Channel: c.Channel, Value: c.Customer.Handle})
		}
	}
	return keys
}

// NewUserFrom builds the end user to create for a request's customer: its
// name, and identities Zendesk can hold (phone_number, email, twitter,
// facebook). Handles on channels Zendesk has no API identity for
// (Instagram, LINE, web and open messaging) go into the notes; an
// attribute identity sets the external id or a user field.
func NewUserFrom(req cti.PopRequest) NewUser {
	var cu cti.Customer
	var ch cti.Channel
	var media cti.Media
	if req.Conversation != nil {
		cu, ch, media = req.Conversation.Customer, req.Conversation.Channel, req.Conversation.Media
	}
	nu := NewUser{Role: RoleEndUser, UserFields: map[string]any{}}
	phone, email := strings.TrimSpace(cu.Phone), strings.ToLower(strings.TrimSpace(cu.Email))
	id := req.Identity
	switch {
	case id.Kind == cti.IdentifyPhone && phone == "":
		phone = id.Value
	case id.Kind == cti.IdentifyEmail && email == "":
		email = strings.ToLower(id.Value)
	case id.Kind == cti.IdentifyAttribute:
		switch {
		case id.Target == cti.TargetExternalID:
			nu.ExternalID = id.Value
		case id.Target == cti.TargetEmail && email == "":
			email = strings.ToLower(id.Value)
		case id.Target == cti.TargetPhone && phone == "":
			phone = id.Value
		case strings.HasPrefix(id.Target, cti.TargetUserField):
			nu.UserFields[strings.TrimPrefix(id.Target, cti.TargetUserField)] = id.Value
		}
	}
	handle := strings.TrimSpace(cu.Handle)
	if id.Kind == cti.IdentifySocial && handle == "" {
		handle, ch = id.Value, cti.Channel(cmpOr(string(id.Channel), string(ch)))
	}
	var notes []string
	if handle != "" {
		switch ch {
		case cti.ChannelTwitter:
			nu.Identities = append(nu.Identities, Identity{Type: IdentityTwitter, Value: strings.TrimPrefix(handle, "@")})
		case cti.ChannelFacebook:
			nu.Identities = append(nu.Identities, Identity{Type: IdentityFacebook, Value: handle})
		case cti.ChannelSMS, cti.ChannelWhatsApp:
			if phone == "" {
				phone = handle
			}
		default:
			notes = append(notes, fmt.Sprintf("%s id: %s", channelName(ch), handle))
		}
	}
	if phone != "" {
		nu.Identities = append([]Identity{{Type: IdentityPhone, Value: phone}}, nu.Identities...)
	}
	if email != "" {
		nu.Identities = append([]Identity{{Type: IdentityEmail, Value: email}}, nu.Identities...)
	}
	nu.Notes = strings.Join(notes, "\n")
	if len(nu.UserFields) == 0 {
		nu.UserFields = nil
	}
	nu.Name = strings.TrimSpace(cu.Name)
	if nu.Name == "" {
		switch {
		case email != "":
			nu.Name = email
		case phone != "" && (media == cti.MediaVoice || media == cti.MediaCallback):
			nu.Name = "Caller " + phone
		case phone != "":
			nu.Name = phone
		case handle != "":
			nu.Name = handle + " (" + channelName(ch) + ")"
		case nu.ExternalID != "":
			nu.Name = "Customer " + nu.ExternalID
		default:
			nu.Name = "Unknown customer"
		}
	}
	return nu
}

func channelName(ch cti.Channel) string {
	switch ch {
	case cti.ChannelTwitter:
		return "X"
	case cti.ChannelWhatsApp:
		return "WhatsApp"
	case cti.ChannelSMS:
		return "SMS"
	case cti.ChannelLine:
		return "LINE"
	case cti.ChannelWebMessaging:
		return "Web messaging"
	case "":
		return "messaging"
	}
	s := string(ch)
	return strings.ToUpper(s[:1]) + s[1:]
}

// DefaultSubject is the subject of tickets created without a rule
// subject: "Inbound call from +14155551212", "Chat from jane@example.com",
// "WhatsApp message from +33612345678".
func DefaultSubject(c *cti.Conversation) string {
	who := cmpOr(c.Customer.Name, cmpOr(c.Customer.Phone, cmpOr(c.Customer.Email, cmpOr(c.Customer.Handle, c.Customer.Address))))
	what := ""
	switch c.Media {
	case cti.MediaVoice:
		what = "call"
	case cti.MediaCallback:
		what = "callback"
	case cti.MediaEmail:
		what = "email"
	case cti.MediaChat:
		what = "chat"
	case cti.MediaMessage:
		what = channelName(c.Channel) + " message"
	default:
		what = "conversation"
	}
	dir := "Inbound"
	if c.Direction == cti.Outbound {
		dir = "Outbound"
	}
	if who == "" {
		return dir + " " + what
	}
	prep := " from "
	if c.Direction == cti.Outbound {
		prep = " to "
	}
	return dir + " " + what + prep + who
}

// DefaultDescription is the internal note that opens a created ticket:
// the media, the customer's address, the queue and the conversation id.
func DefaultDescription(req cti.PopRequest) string {
	c := req.Conversation
	var b strings.Builder
	b.WriteString(DefaultSubject(c))
	b.WriteString(".\n")
	if c.Customer.Address != "" {
		fmt.Fprintf(&b, "Customer address: %s\n", c.Customer.Address)
	}
	queue := c.Queue.Name
	if req.Leg != nil && req.Leg.Queue.Name != "" {
		queue = req.Leg.Queue.Name
	}
	if queue != "" {
		fmt.Fprintf(&b, "Queue: %s\n", queue)
	}
	if req.Agent.Name != "" {
		fmt.Fprintf(&b, "Agent: %s\n", req.Agent.Name)
	}
	fmt.Fprintf(&b, "Genesys Cloud conversation: %s", c.ID)
	return b.String()
}
