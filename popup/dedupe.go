package popup

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// DedupeOptions configures Dedupe. The zero value is valid.
type DedupeOptions struct {
	// TTL is how long a created customer is remembered. It must be longer
	// than Zendesk's search index lag (minutes). Default 30 minutes.
	TTL time.Duration
	// Strategy re-decides a pop for a remembered customer, as it would have
	// with a caught-up index. Use the engine's strategy. Default Strategy{}.
	Strategy cti.Strategy
	// Key returns the memory key of an identity, "" for one not to
	// remember. Default IdentityKey.
	Key func(cti.Identity) string
	// MaxEntries bounds the memory (keys). Default 10,000.
	MaxEntries int
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger logs reuses at debug level; nil means silence.
	Logger *slog.Logger
}

// Deduper is a cti.Popper that never creates a customer twice; see Dedupe.
type Deduper struct {
	next cti.Popper
	o    DedupeOptions

	mu sync.Mutex
	m  map[string]*created
}

// created is what a pop created for one customer.
type created struct {
	ready   chan struct{} // closed when the creating pop has finished
	done    bool          // a user was created (fields below are set)
	user    cti.Record
	tickets []cti.Record // tickets created for the user, newest first
	expires time.Time
}

// Dedupe wraps a popper so that an unknown customer is created once.
//
// Zendesk's search takes minutes to index a new user: if the same unknown
// number calls again meanwhile, the matcher finds nothing and the decision
// is "create" again. Dedupe remembers, for TTL, the user each pop created
// (PopResult.Created) under every identity of the customer: the identity
// that was searched and the conversation customer's phone, email and
// social handle (normalized by Key). A later ActionCreate that would create
// a user (Create.User) for a remembered identity is re-decided by Strategy
// as if the search had found the created user (with the tickets created
// for them as open tickets): popup user shows the user, ticket:latest_open
// shows the ticket created last time, ticket:new creates a new ticket for
// the user. Pops that create no user, or name a requester, pass through.
//
// Concurrent pops for the same customer are serialized: while one creates,
// the others wait (or until their ctx is done) and then reuse what it
// created; if it created nothing (it failed), the next one tries. What was
// created is remembered even when the pop then failed to display it. Each
// pop still goes to next for its own agent. Safe for concurrent use; no
// goroutines.
func Dedupe(next cti.Popper, o DedupeOptions) *Deduper {
	if o.TTL <= 0 {
		o.TTL = 30 * time.Minute
	}
	if o.Strategy == nil {
		o.Strategy = Strategy{}
	}
	if o.Key == nil {
		o.Key = IdentityKey
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Deduper{next: next, o: o, m: map[string]*created{}}
}

// IdentityKey is the default memory key: phone numbers by their digits
// (with the leading +; fewer than 5 digits: not remembered), emails
// lower-cased, social handles lower-cased without @ per channel, other
// attributes by Identity.Key. An SMS or WhatsApp handle is a phone number.
func IdentityKey(id cti.Identity) string {
	v := strings.TrimSpace(id.Value)
	if v == "" {
		return ""
	}
	switch {
	case id.Kind == cti.IdentifyPhone,
		id.Kind == cti.IdentifyAttribute && id.Target == cti.TargetPhone,
		id.Kind == cti.IdentifySocial && (id.Channel == cti.ChannelSMS || id.Channel == cti.ChannelWhatsApp):
		var b strings.Builder
		for _, r := range v {
			if r >= '0' && r <= '9' {
				b.WriteRune(r)
			}
		}
		if b.Len() < 5 {
			return ""
		}
		return "phone:" + b.String() // + and national prefixes are the source's normalizer's job
	case id.Kind == cti.IdentifyEmail, id.Kind == cti.IdentifyAttribute && id.Target == cti.TargetEmail:
		return "email:" + strings.ToLower(v)
	case id.Kind == cti.IdentifySocial:
		return "social:" + string(id.Channel) + ":" + strings.ToLower(strings.TrimPrefix(v, "@"))
	}
	return id.Key()
}

// keys returns the memory keys of a pop's customer.
func (d *Deduper) keys(req cti.PopRequest) []string {
	ids := []cti.Identity{req.Identity}
	if c := req.Conversation; c != nil {
		ids = append(ids,
			cti.Identity{Kind: cti.IdentifyPhone, Value: c.Customer.Phone},
			cti.Identity{Kind: cti.IdentifyEmail, Value: c.Customer.Email},
			cti.Identity{Kind: cti.IdentifySocial, Channel: c.Channel, Value: c.Customer.Handle},
		)
	}
	var keys []string
	for _, id := range ids {
		if k := d.o.Key(id); k != "" && !containsString(keys, k) {
			keys = append(keys, k)
		}
	}
	return keys
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Forget drops what is remembered for an identity (under its key only).
func (d *Deduper) Forget(id cti.Identity) {
	if k := d.o.Key(id); k != "" {
		d.mu.Lock()
		if e := d.m[k]; e != nil && e.done {
			delete(d.m, k)
		}
		d.mu.Unlock()
	}
}

// Pop implements cti.Popper.
func (d *Deduper) Pop(ctx context.Context, req cti.PopRequest) (cti.PopResult, error) {
	if req.Decision.Action != cti.ActionCreate || !req.Decision.Create.User {
		return d.next.Pop(ctx, req)
	}
	keys := d.keys(req)
	if len(keys) == 0 {
		return d.next.Pop(ctx, req)
	}
	var mine *created
	for mine == nil {
		d.mu.Lock()
		e := d.lookup(keys)
		switch {
		case e == nil:
			mine = &created{ready: make(chan struct{})}
			d.store(keys, mine)
			d.mu.Unlock()
		case !e.done: // another pop is creating this customer: wait for it
			d.mu.Unlock()
			select {
			case <-e.ready:
			case <-ctx.Done():
				return cti.PopResult{}, ctx.Err()
			}
		default:
			user, tickets := e.user, append([]cti.Record(nil), e.tickets...)
			d.store(keys, e) // the customer may come with more identities now
			d.mu.Unlock()
			return d.reuse(ctx, req, e, user, tickets)
		}
	}
	res, err := d.next.Pop(ctx, req)
	d.mu.Lock()
	defer d.mu.Unlock()
	defer close(mine.ready)
	for _, c := range res.Created {
		if c.Kind == cti.KindUser && c.ID > 0 {
			mine.done, mine.user, mine.expires = true, c, d.o.Now().Add(d.o.TTL)
			break
		}
	}
	if !mine.done {
		for k, e := range d.m {
			if e == mine {
				delete(d.m, k)
			}
		}
		return res, err
	}
	mine.addTickets(res.Created)
	return res, err
}

// lookup returns the live entry of any of keys (mu held), dropping expired
// ones.
func (d *Deduper) lookup(keys []string) *created {
	now := d.o.Now()
	for _, k := range keys {
		e := d.m[k]
		if e == nil {
			continue
		}
		if e.done && !now.Before(e.expires) {
			delete(d.m, k)
			continue
		}
		return e
	}
	return nil
}

// store registers e under keys (mu held), keeping the memory bounded.
func (d *Deduper) store(keys []string, e *created) {
	if len(d.m)+len(keys) > d.o.MaxEntries {
		now := d.o.Now()
		for k, x := range d.m {
			if x.done && !now.Before(x.expires) {
				delete(d.m, k)
			}
		}
		for k, x := range d.m { // still full: drop remembered ones, never in-flight ones
			if len(d.m)+len(keys) <= d.o.MaxEntries-d.o.MaxEntries/10 {
				break
			}
			if x.done {
				delete(d.m, k)
			}
		}
	}
	for _, k := range keys {
		d.m[k] = e
	}
}

// addTickets remembers the tickets created for the user (mu held).
func (e *created) addTickets(recs []cti.Record) {
	for _, t := range recs {
		if t.Kind != cti.KindTicket {
			continue
		}
		if t.RequesterID == 0 {
			t.RequesterID = e.user.ID
		}
		if t.RequesterID != e.user.ID {
			continue
		}
		if t.Status == "" {
			t.Status = "new"
		}
		e.tickets = append([]cti.Record{t}, e.tickets...)
	}
}

// reuse re-decides req for a customer created earlier and pops that.
func (d *Deduper) reuse(ctx context.Context, req cti.PopRequest, e *created, user cti.Record, tickets []cti.Record) (cti.PopResult, error) {
	rec := user
	rec.OpenTickets = tickets
	dec := d.o.Strategy.Decide(cti.DecideInput{
		Rule: req.Rule, Conversation: req.Conversation, Leg: req.Leg, Identity: req.Identity,
		Result: cti.Result{Records: []cti.Record{rec}},
	})
	switch {
	case dec.Action == cti.ActionShow && dec.Record != nil:
	case dec.Action == cti.ActionCreate && !dec.Create.User:
	default:
		u := user
		dec = cti.Decision{Action: cti.ActionShow, Record: &u, Reason: "show " + u.Ref()}
	}
	dec.Reason = "customer created earlier (" + user.Ref() + "), not yet in Zendesk search: " + dec.Reason
	d.o.Logger.DebugContext(ctx, "popup: reusing a customer created earlier", "user", user.Ref(), "identity", req.Identity.Key(), "action", string(dec.Action))
	req.Decision = dec
	res, err := d.next.Pop(ctx, req)
	if len(res.Created) > 0 {
		d.mu.Lock()
		e.addTickets(res.Created)
		d.mu.Unlock()
	}
	return res, err
}
