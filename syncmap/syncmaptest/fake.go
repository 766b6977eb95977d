// Package syncmaptest helps test code built on package syncmap: Fake, an
// in-memory syncmap.Zendesk with Zendesk's semantics and fault injection,
// and TestZendesk, the conformance suite an implementation of
// syncmap.Zendesk (such as *zendesk.Client against zendesk/zendesktest)
// must pass.
package syncmaptest

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
)

// MaxCommentBytes is the comment body size past which Fake answers 422,
// like Zendesk does for comments of about 64 KB.
const MaxCommentBytes = 65_535

// Op names a Fake operation, for Hook and Count.
type Op string

// Fake operations.
const (
	OpTicket         Op = "ticket"
	OpTickets        Op = "tickets"
	OpByExternalID   Op = "tickets_by_external_id"
	OpRequested      Op = "requested_tickets"
	OpCreateTicket   Op = "create_ticket"
	OpUpdateTicket   Op = "update_ticket"
	OpUpdateMany     Op = "update_many"
	OpCreateMany     Op = "create_many"
	OpTicketComments Op = "ticket_comments"
	OpCreateCall     Op = "create_call"
	OpUpdateCall     Op = "update_call"
	OpCall           Op = "call"
	OpUpload         Op = "upload"
)

// Fake is an in-memory syncmap.Zendesk, also a syncmap.ManyCreator and a
// syncmap.Uploader. Writes are atomic per ticket like Zendesk's: an update
// that fails (unknown or closed ticket, rejected field, comment too large,
// an upload token that does not attach) changes nothing. Safe for
// concurrent use.
type Fake struct {
	mu       sync.Mutex
	next     int64
	tickets  map[int64]*fakeTicket
	calls    map[int64]*syncmap.Call
	counts   map[Op]int
	reject   map[int64]string // field id → reason
	storm    int
	stormRA  time.Duration
	before   func(op Op) error
	after    func(op Op) error
	now      func() time.Time
	sequence int

	uploads     map[string]*fakeUpload // by token
	content     map[string]*fakeUpload // by content URL
	uploadLimit int64
	uploadTTL   time.Duration
}

type fakeUpload struct {
	u        syncmap.Upload
	data     []byte
	attached bool
}

type fakeTicket struct {
	t        syncmap.Ticket
	comments []syncmap.Comment
	deleted  bool
}

// NewFake returns an empty Fake.
func NewFake() *Fake {
	return &Fake{next: 1000, tickets: map[int64]*fakeTicket{}, calls: map[int64]*syncmap.Call{},
		counts: map[Op]int{}, reject: map[int64]string{}, now: time.Now,
		uploads: map[string]*fakeUpload{}, content: map[string]*fakeUpload{},
		uploadLimit: DefaultUploadLimit, uploadTTL: DefaultUploadTTL}
}

var (
	_ syncmap.Zendesk     = (*Fake)(nil)
	_ syncmap.ManyCreator = (*Fake)(nil)
	_ syncmap.Uploader    = (*Fake)(nil)
)

// AddTicket stores a ticket (its ID is assigned when 0) and returns its id.
func (f *Fake) AddTicket(t syncmap.Ticket) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.ID == 0 {
		t.ID = f.id()
	}
	t.Status = cmp.Or(t.Status, "open")
	t.CreatedAt = cmp.Or(t.CreatedAt, f.stamp())
	t.UpdatedAt = cmp.Or(t.UpdatedAt, f.stamp())
	f.tickets[t.ID] = &fakeTicket{t: t}
	return t.ID
}

// DeleteTicket deletes a ticket: reads and writes get 404.
func (f *Fake) DeleteTicket(id int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tickets[id]; t != nil {
		t.deleted = true
	}
}

// SetStatus sets a ticket's status (closed tickets reject updates).
func (f *Fake) SetStatus(id int64, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tickets[id]; t != nil {
		t.t.Status = status
	}
}

// RejectField makes every write setting ticket field id fail with a 422
// naming it, like Zendesk does for an invalid value.
func (f *Fake) RejectField(id int64, reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reject[id] = reason
}

// Storm makes the next n requests fail with 429 and Retry-After ra.
func (f *Fake) Storm(n int, ra time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.storm, f.stormRA = n, ra
}

// Hook sets functions called before an operation (an error fails it
// without effect) and after it took effect (an error is returned instead
// of the result: Zendesk accepted the write but the answer was lost).
// Either may be nil. They are called without the Fake's lock held.
func (f *Fake) Hook(before, after func(op Op) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before, f.after = before, after
}

// Count returns how many times op was called (including failures).
func (f *Fake) Count(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// Comments returns every comment of a ticket, oldest first.
func (f *Fake) Comments(id int64) []syncmap.Comment {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tickets[id]; t != nil {
		return cloneComments(t.comments)
	}
	return nil
}

func cloneComments(cs []syncmap.Comment) []syncmap.Comment {
	out := slices.Clone(cs)
	for i := range out {
		out[i].Attachments = slices.Clone(out[i].Attachments)
	}
	return out
}

// TicketIDs lists every ticket id, deleted ones included, ascending.
func (f *Fake) TicketIDs() []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.tickets))
}

// Get returns a ticket as stored (deleted ones too), or nil.
func (f *Fake) Get(id int64) *syncmap.Ticket {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tickets[id]; t != nil {
		c := clone(t.t)
		return &c
	}
	return nil
}

// Calls lists every call record, by id.
func (f *Fake) Calls() []syncmap.Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []syncmap.Call
	for _, id := range slices.Sorted(maps.Keys(f.calls)) {
		out = append(out, *f.calls[id])
	}
	return out
}

func (f *Fake) id() int64 {
	f.next++
	return f.next
}

// stamp returns strictly increasing times, so updated_at orders writes.
func (f *Fake) stamp() time.Time {
	f.sequence++
	return f.now().UTC().Truncate(time.Second).Add(time.Duration(f.sequence) * time.Millisecond)
}

func clone(t syncmap.Ticket) syncmap.Ticket {
	t.Tags = slices.Clone(t.Tags)
	t.CustomFields = slices.Clone(t.CustomFields)
	return t
}

func upstream(op Op, status int, err error) error {
	return &cti.UpstreamError{Service: "zendesk", Op: string(op), Status: status, Err: err}
}

func notFound(op Op, what string) error {
	return upstream(op, 404, fmt.Errorf("%s: %w", what, cti.ErrNotFound))
}

// begin counts op and runs the storm and the before hook.
func (f *Fake) begin(ctx context.Context, op Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.counts[op]++
	if f.storm > 0 {
		f.storm--
		ra := f.stormRA
		f.mu.Unlock()
		return &cti.UpstreamError{Service: "zendesk", Op: string(op), Status: 429, RetryAfter: ra, Err: fmt.Errorf("rate limited")}
	}
	h := f.before
	f.mu.Unlock()
	if h != nil {
		return h(op)
	}
	return nil
}

func (f *Fake) end(op Op) error {
	f.mu.Lock()
	h := f.after
	f.mu.Unlock()
	if h != nil {
		return h(op)
	}
	return nil
}

func (f *Fake) live(id int64) *fakeTicket {
	if t := f.tickets[id]; t != nil && !t.deleted {
		return t
	}
	return nil
}

// Ticket implements syncmap.Zendesk.
func (f *Fake) Ticket(ctx context.Context, id int64) (*syncmap.Ticket, error) {
	if err := f.begin(ctx, OpTicket); err != nil {
		return nil, err
	}
	f.mu.Lock()
	t := f.live(id)
	var out syncmap.Ticket
	if t != nil {
		out = clone(t.t)
	}
	f.mu.Unlock()
	if t == nil {
		return nil, notFound(OpTicket, fmt.Sprintf("ticket %d", id))
	}
	return &out, f.end(OpTicket)
}

// Tickets implements syncmap.Zendesk.
func (f *Fake) Tickets(ctx context.Context, ids []int64) ([]syncmap.Ticket, error) {
	if len(ids) > 100 {
		return nil, upstream(OpTickets, 400, fmt.Errorf("%w: %d ids, at most 100", cti.ErrInvalid, len(ids)))
	}
	if err := f.begin(ctx, OpTickets); err != nil {
		return nil, err
	}
	f.mu.Lock()
	var out []syncmap.Ticket
	for _, id := range ids {
		if t := f.live(id); t != nil {
			out = append(out, clone(t.t))
		}
	}
	f.mu.Unlock()
	return out, f.end(OpTickets)
}

// TicketsByExternalID implements syncmap.Zendesk.
func (f *Fake) TicketsByExternalID(ctx context.Context, externalID string) ([]syncmap.Ticket, error) {
	if err := f.begin(ctx, OpByExternalID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	out := []syncmap.Ticket{}
	for _, id := range slices.Sorted(maps.Keys(f.tickets)) {
		if t := f.live(id); t != nil && externalID != "" && t.t.ExternalID == externalID {
			out = append(out, clone(t.t))
		}
	}
	f.mu.Unlock()
	return out, f.end(OpByExternalID)
}

// RequestedTickets implements syncmap.Zendesk.
func (f *Fake) RequestedTickets(ctx context.Context, userID int64) ([]syncmap.Ticket, error) {
	if err := f.begin(ctx, OpRequested); err != nil {
		return nil, err
	}
	f.mu.Lock()
	out := []syncmap.Ticket{}
	for _, t := range f.tickets {
		if !t.deleted && t.t.RequesterID == userID {
			out = append(out, clone(t.t))
		}
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b syncmap.Ticket) int {
		return cmp.Or(b.UpdatedAt.Compare(a.UpdatedAt), cmp.Compare(b.ID, a.ID))
	})
	if len(out) > 100 {
		out = out[:100]
	}
	return out, f.end(OpRequested)
}

// check validates a write against Zendesk's rules; f.mu is held.
func (f *Fake) check(op Op, fields []syncmap.CustomField, c *syncmap.CommentInput) error {
	var bad []int64
	var msgs []string
	for _, cf := range fields {
		if reason, ok := f.reject[cf.ID]; ok {
			bad = append(bad, cf.ID)
			msgs = append(msgs, reason)
		}
	}
	if len(bad) > 0 {
		return &syncmap.FieldError{FieldIDs: bad, Message: strings.Join(msgs, "; "),
			Err: upstream(op, 422, fmt.Errorf("RecordInvalid: %s", strings.Join(msgs, "; ")))}
	}
	if c != nil && len(c.Body)+len(c.HTMLBody) > MaxCommentBytes {
		return upstream(op, 422, fmt.Errorf("RecordInvalid: comment is too large (%d bytes)", len(c.Body)+len(c.HTMLBody)))
	}
	if c != nil {
		for _, tok := range c.Uploads {
			if u := f.uploads[tok]; u == nil || u.attached || !f.uploadLive(u) {
				return upstream(op, 422, fmt.Errorf("RecordInvalid: Uploads: token %s is invalid, expired or already attached", tok))
			}
		}
	}
	return nil
}

// apply writes u to t; f.mu is held and u was checked.
func (f *Fake) apply(t *fakeTicket, u syncmap.TicketUpdate) {
	if u.Comment != nil {
		f.addComment(t, syncmap.Comment{Type: "Comment", Body: cmp.Or(u.Comment.HTMLBody, u.Comment.Body),
			Public: u.Comment.Public, AuthorID: u.Comment.AuthorID, Attachments: f.attach(u.Comment.Uploads)})
	}
	for _, cf := range u.CustomFields {
		i := slices.IndexFunc(t.t.CustomFields, func(x syncmap.CustomField) bool { return x.ID == cf.ID })
		if i >= 0 {
			t.t.CustomFields[i].Value = cf.Value
		} else {
			t.t.CustomFields = append(t.t.CustomFields, cf)
		}
	}
	for _, tag := range u.AdditionalTags {
		tag = strings.ToLower(tag)
		if !slices.Contains(t.t.Tags, tag) {
			t.t.Tags = append(t.t.Tags, tag)
		}
	}
	if u.Status != "" {
		t.t.Status = u.Status
	}
	t.t.UpdatedAt = f.stamp()
}

func (f *Fake) addComment(t *fakeTicket, c syncmap.Comment) {
	c.ID = f.id()
	c.CreatedAt = f.stamp()
	t.comments = append(t.comments, c)
}

// CreateTicket implements syncmap.Zendesk.
func (f *Fake) CreateTicket(ctx context.Context, nt syncmap.NewTicket) (*syncmap.Ticket, error) {
	if err := f.begin(ctx, OpCreateTicket); err != nil {
		return nil, err
	}
	f.mu.Lock()
	out, err := f.createLocked(OpCreateTicket, nt)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return out, f.end(OpCreateTicket)
}

func (f *Fake) createLocked(op Op, nt syncmap.NewTicket) (*syncmap.Ticket, error) {
	if nt.Comment == nil || strings.TrimSpace(nt.Comment.Body+nt.Comment.HTMLBody) == "" {
		return nil, upstream(op, 422, fmt.Errorf("RecordInvalid: Description: cannot be blank"))
	}
	if err := f.check(op, nt.CustomFields, nt.Comment); err != nil {
		return nil, err
	}
	t := &fakeTicket{t: syncmap.Ticket{ID: f.id(), Subject: nt.Subject, Status: "new", RequesterID: nt.RequesterID,
		AssigneeID: nt.AssigneeID, ExternalID: nt.ExternalID, CreatedAt: f.stamp()}}
	if nt.AssigneeID != 0 {
		t.t.Status = "open"
	}
	f.tickets[t.t.ID] = t
	f.apply(t, syncmap.TicketUpdate{Comment: nt.Comment, CustomFields: nt.CustomFields, AdditionalTags: nt.Tags})
	out := clone(t.t)
	return &out, nil
}

// CreateMany implements syncmap.ManyCreator: every ticket is created (or
// fails) on its own, like a Zendesk bulk job.
func (f *Fake) CreateMany(ctx context.Context, tickets []syncmap.NewTicket) ([]syncmap.CreateResult, error) {
	if len(tickets) > 100 {
		return nil, fmt.Errorf("syncmaptest: create_many: %w: %d tickets, at most 100", cti.ErrInvalid, len(tickets))
	}
	if err := f.begin(ctx, OpCreateMany); err != nil {
		return nil, err
	}
	f.mu.Lock()
	res := make([]syncmap.CreateResult, len(tickets))
	for i, nt := range tickets {
		t, err := f.createLocked(OpCreateMany, nt)
		if err != nil {
			res[i].Error, res[i].Details, res[i].Err = "RecordInvalid", err.Error(), err
			continue
		}
		res[i].ID = t.ID
	}
	f.mu.Unlock()
	return res, f.end(OpCreateMany)
}

// UpdateTicket implements syncmap.Zendesk.
func (f *Fake) UpdateTicket(ctx context.Context, id int64, u syncmap.TicketUpdate) (*syncmap.Ticket, error) {
	if err := f.begin(ctx, OpUpdateTicket); err != nil {
		return nil, err
	}
	f.mu.Lock()
	out, err := f.updateLocked(OpUpdateTicket, id, u)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return out, f.end(OpUpdateTicket)
}

func (f *Fake) updateLocked(op Op, id int64, u syncmap.TicketUpdate) (*syncmap.Ticket, error) {
	t := f.live(id)
	if t == nil {
		return nil, notFound(op, fmt.Sprintf("ticket %d", id))
	}
	if t.t.Status == "closed" {
		return nil, upstream(op, 422, fmt.Errorf("RecordInvalid: Status: closed prevents ticket update"))
	}
	if err := f.check(op, u.CustomFields, u.Comment); err != nil {
		return nil, err
	}
	f.apply(t, u)
	out := clone(t.t)
	return &out, nil
}

// UpdateMany implements syncmap.Zendesk: every update is applied (or
// fails) on its own, like a Zendesk bulk job.
func (f *Fake) UpdateMany(ctx context.Context, updates []syncmap.TicketUpdate) ([]syncmap.UpdateResult, error) {
	if len(updates) > 100 {
		return nil, fmt.Errorf("syncmaptest: update_many: %w: %d updates, at most 100", cti.ErrInvalid, len(updates))
	}
	if err := f.begin(ctx, OpUpdateMany); err != nil {
		return nil, err
	}
	f.mu.Lock()
	res := make([]syncmap.UpdateResult, len(updates))
	for i, u := range updates {
		res[i].ID = u.ID
		if _, err := f.updateLocked(OpUpdateMany, u.ID, u); err != nil {
			res[i].Error, res[i].Details, res[i].Err = "TicketUpdateFailed", err.Error(), err
			continue
		}
		res[i].Success = true
	}
	f.mu.Unlock()
	return res, f.end(OpUpdateMany)
}

// TicketComments implements syncmap.Zendesk.
func (f *Fake) TicketComments(ctx context.Context, ticketID int64) ([]syncmap.Comment, error) {
	if err := f.begin(ctx, OpTicketComments); err != nil {
		return nil, err
	}
	f.mu.Lock()
	t := f.live(ticketID)
	var out []syncmap.Comment
	if t != nil {
		out = cloneComments(t.comments)
	}
	f.mu.Unlock()
	if t == nil {
		return nil, notFound(OpTicketComments, fmt.Sprintf("ticket %d", ticketID))
	}
	slices.Reverse(out)
	if len(out) > 100 {
		out = out[:100]
	}
	return out, f.end(OpTicketComments)
}

// CreateCall implements syncmap.Zendesk.
func (f *Fake) CreateCall(ctx context.Context, c syncmap.Call) (*syncmap.Call, error) {
	if err := f.begin(ctx, OpCreateCall); err != nil {
		return nil, err
	}
	f.mu.Lock()
	var missing []string
	for name, empty := range map[string]bool{"app_id": c.AppID == 0, "from_line": c.FromLine == "", "to_line": c.ToLine == "",
		"direction": c.Direction == "", "call_started_at": c.CallStartedAt.IsZero()} {
		if empty {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		f.mu.Unlock()
		slices.Sort(missing)
		return nil, upstream(OpCreateCall, 422, fmt.Errorf("RecordInvalid: missing %s", strings.Join(missing, ", ")))
	}
	var t *fakeTicket
	if c.Comment != nil {
		if c.TicketID != 0 {
			if t = f.live(c.TicketID); t == nil {
				f.mu.Unlock()
				return nil, notFound(OpCreateCall, fmt.Sprintf("ticket %d", c.TicketID))
			}
			if t.t.Status == "closed" {
				f.mu.Unlock()
				return nil, upstream(OpCreateCall, 422, fmt.Errorf("RecordInvalid: closed prevents ticket update"))
			}
		} else {
			t = &fakeTicket{t: syncmap.Ticket{ID: f.id(), Subject: c.Comment.Title, Status: "new", RequesterID: c.EndUserID, CreatedAt: f.stamp()}}
			f.tickets[t.t.ID] = t
			c.TicketID = t.t.ID
		}
	}
	c.ID = f.id()
	comment := c.Comment
	c.Comment = nil
	stored := c
	f.calls[c.ID] = &stored
	if t != nil {
		f.addComment(t, syncmap.Comment{Type: "TpeVoiceComment", Body: comment.Title, Public: comment.Public,
			AuthorID: comment.AuthorID, CallID: c.ID})
		t.t.UpdatedAt = f.stamp()
	}
	out := c
	f.mu.Unlock()
	return &out, f.end(OpCreateCall)
}

// UpdateCall implements syncmap.Zendesk.
func (f *Fake) UpdateCall(ctx context.Context, id int64, c syncmap.Call) (*syncmap.Call, error) {
	if err := f.begin(ctx, OpUpdateCall); err != nil {
		return nil, err
	}
	f.mu.Lock()
	cur := f.calls[id]
	if cur == nil {
		f.mu.Unlock()
		return nil, notFound(OpUpdateCall, fmt.Sprintf("call %d", id))
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&cur.RecordingURL, c.RecordingURL)
	set(&cur.Transcript, c.Transcript)
	set(&cur.Summary, c.Summary)
	set(&cur.Disposition, c.Disposition)
	set(&cur.QueueName, c.QueueName)
	set(&cur.CompletionStatus, c.CompletionStatus)
	if !c.CallEndedAt.IsZero() {
		cur.CallEndedAt = c.CallEndedAt
	}
	if c.Duration != 0 {
		cur.Duration = c.Duration
	}
	out := *cur
	f.mu.Unlock()
	return &out, f.end(OpUpdateCall)
}

// Call implements syncmap.Zendesk.
func (f *Fake) Call(ctx context.Context, id int64) (*syncmap.Call, error) {
	if err := f.begin(ctx, OpCall); err != nil {
		return nil, err
	}
	f.mu.Lock()
	cur := f.calls[id]
	var out syncmap.Call
	if cur != nil {
		out = *cur
	}
	f.mu.Unlock()
	if cur == nil {
		return nil, notFound(OpCall, fmt.Sprintf("call %d", id))
	}
	return &out, f.end(OpCall)
}
