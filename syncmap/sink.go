package syncmap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// Sink writes finished conversations into Zendesk: a cti.Sink and
// cti.BatchSink over the Zendesk interface.
//
// Which ticket: per the rule's sync.ticket — popped: the ticket the agent
// saw or picked, or for a user their latest open ticket, or a new one;
// latest_open: the customer's most recently updated unsolved ticket, or a
// new one; new: a new ticket. A deleted or closed ticket falls back to a
// new ticket for the same requester, and the comment says so.
//
// Exactly once: the comment, the fields and the job's marker tag
// (MarkerTag(job.Key)) go to Zendesk in one request, and the sink looks for
// the marker before writing, so a job delivered again after a crash
// between Zendesk's acceptance and the outbox acknowledgment writes
// nothing. On a job's first delivery (cti.SyncJob.Tries == 1, counted
// durably by the engine) nothing can have been written yet, and the sink
// skips those reads: one write per sync. A new ticket carries the marker as its external_id too, so it
// is found instead of created twice; a Talk Partner Edition call record
// carries it as its external_id and, before the ticket is marked, is found
// through the ticket's voice comment or, when marking the ticket failed,
// through the checkpoint of that delivery's deferral. A rule with comment:
// none gives the call record no voice comment: a crash (or a stop that
// cancels the sync) after Zendesk wrote it and before it marked the ticket
// writes it again.
//
// Safe for concurrent use. Writes to one ticket are serialized, in the
// order they arrive.
type Sink struct {
	zd       Zendesk
	rules    cti.Rules
	cfg      *config
	mapper   cti.FieldMapper
	m        *Mapper // the default mapper, for data, comment and late data
	subjects map[string]*Template
	lim      *limiter
	locks    keyedMutex
	reported sync.Map // field id → true: rejected fields already reported
	// noRecording holds the job key and recording URL of recordings
	// that could not be hosted, given up on (WithRecordingUpload).
	noRecMu     sync.Mutex
	noRecording map[string]struct{}
	up          Uploader // with WithRecordingUpload
	started     time.Time
}

var (
	_ cti.Sink      = (*Sink)(nil)
	_ cti.BatchSink = (*Sink)(nil)
)

// NewSink builds the Zendesk sink for rules (the same rules the engine
// runs; defaults are applied to a copy). Options: WithTalkApp for voice
// call records, WithFormat for times, WithMapper to replace the field
// mapper, WithLateData, WithUpdateRate, WithMaxComment, WithComputed,
// WithLogger, WithNotify.
func NewSink(zd Zendesk, rules *cti.Rules, opts ...Option) (*Sink, error) {
	if zd == nil {
		return nil, errors.New("syncmap: NewSink: nil Zendesk")
	}
	if rules == nil {
		return nil, errors.New("syncmap: NewSink: nil rules")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	s := &Sink{zd: zd, cfg: cfg, subjects: map[string]*Template{}, lim: newLimiter(cfg.rate, cfg.burst)}
	s.rules = *rules
	s.rules.Rules = slices.Clone(rules.Rules)
	s.rules.ApplyDefaults()
	if s.m, err = newMapper(&s.rules, cfg); err != nil {
		return nil, err
	}
	s.mapper = s.m
	if cfg.mapper != nil {
		s.mapper = cfg.mapper
	}
	for i := range s.rules.Rules {
		r := &s.rules.Rules[i]
		if r.Subject == "" {
			continue
		}
		t, err := ParseFormat(r.Name+".subject", r.Subject, cfg.format)
		if err != nil {
			return nil, fmt.Errorf("syncmap: %w", &cti.ConfigError{Path: fmt.Sprintf("rules[%d].subject", i), Value: r.Subject, Reason: err.Error()})
		}
		s.subjects[r.Name] = t
	}
	if cfg.recordings != nil {
		up, ok := zd.(Uploader)
		if !ok {
			return nil, fmt.Errorf("syncmap: WithRecordingUpload: the Zendesk implementation (%T) cannot upload files (syncmap.Uploader)", zd)
		}
		s.up = up
	}
	s.started = cfg.now()
	return s, nil
}

// Mapper returns the sink's default field mapper.
func (s *Sink) Mapper() *Mapper { return s.m }

// plan is what one job writes.
type plan struct {
	job     *cti.SyncJob
	rule    *cti.Rule
	data    *Data
	marker  string
	comment string // "" for none
	public  bool
	author  int64
	fields  []CustomField
	tags    []string
	voice   bool     // Talk Partner Edition call record
	missing []string // late data points still missing
	late    bool     // late data missing, and still within the wait
	waiting bool     // still within the late data wait
	uploads []string // upload tokens the comment attaches (a hosted recording)
	note    string   // fallback note, prepended to the comment
}

// Sync implements cti.Sink.
func (s *Sink) Sync(ctx context.Context, job *cti.SyncJob) error {
	p, err := s.plan(ctx, job)
	if err != nil || p == nil {
		return err
	}
	return s.syncOne(ctx, p)
}

// plan maps job; a nil plan with a nil error never happens; an error may
// be a *cti.Deferred.
func (s *Sink) plan(ctx context.Context, job *cti.SyncJob) (*plan, error) {
	if job == nil {
		return nil, fmt.Errorf("syncmap: %w: nil job", cti.ErrInvalid)
	}
	rule := s.rules.Rule(job.Rule)
	if rule == nil {
		return nil, fmt.Errorf("syncmap: %w: job %s names rule %q, which is not in the sink's rules", cti.ErrInvalid, job.Key, job.Rule)
	}
	now := s.cfg.now()
	if s.cfg.settle > 0 && job.EnqueuedAt.Before(s.started) && now.Before(s.started.Add(s.cfg.settle)) {
		return nil, cti.Later(s.started.Add(s.cfg.settle).Sub(now), "letting update_many jobs of the previous process finish")
	}
	p := &plan{job: job, rule: rule, data: s.m.Data(job), marker: MarkerTag(job.Key)}
	p.voice = s.cfg.talkApp != 0 && p.call()
	p.missing = s.m.LateMissing(job, p.data)
	p.waiting = now.Sub(job.EnqueuedAt) < s.cfg.late.Wait && job.Deferrals < maxLateDeferrals
	p.late = len(p.missing) > 0 && p.waiting
	if p.late && !p.voice {
		return nil, cti.Later(s.cfg.late.Poll, "waiting for late data: "+strings.Join(p.missing, ", "))
	}
	up, rerr, err := s.render(ctx, p)
	if err != nil {
		return nil, err
	}
	if !p.voice && p.comment != "" && !p.public && s.hosts(p) {
		// The recording rides on the (internal) sync comment, which
		// links the uploaded file: render again with its address.
		hosted, err := s.hostInComment(ctx, p)
		if err != nil {
			return nil, err
		}
		if hosted {
			if up, rerr, err = s.render(ctx, p); err != nil {
				return nil, err
			}
		}
	}
	if rerr != nil {
		s.notice(Notice{Kind: NoticeTemplate, Key: job.Key, ConversationID: job.ConversationID, Rule: job.Rule, Message: rerr.Error()})
		s.cfg.log.Warn("sync template failed: synced without it", "conversation", job.ConversationID, "rule", job.Rule, "error", rerr)
	}
	s.noteTruncated(p, up)
	if len(p.missing) > 0 && !p.late && !p.voice {
		s.lateGaveUp(p)
	}
	return p, nil
}

// render maps p.job into p: its comment, visibility, author, tags and
// fields. A template that failed is rerr (the rest is rendered).
func (s *Sink) render(ctx context.Context, p *plan) (up cti.Update, rerr *RenderError, err error) {
	job := p.job
	up, err = s.mapper.Map(ctx, job)
	switch {
	case errors.As(err, &rerr):
	case err != nil:
		return up, nil, fmt.Errorf("syncmap: map %s: %w", job.Key, err)
	}
	p.public = up.Public
	p.comment = ""
	if p.rule.Sync.Comment != cti.CommentNone {
		p.comment, _ = TruncateBytes(up.Comment, s.cfg.maxComment) // a custom mapper may not
	}
	if job.Agent != nil {
		p.author = job.Agent.ID
	}
	p.tags = Tags(up.Tags, job.Key)
	p.fields = p.fields[:0]
	for _, k := range slices.Sorted(maps.Keys(up.Fields)) {
		id, err := ParseFieldID(k)
		if err != nil {
			return up, nil, fmt.Errorf("syncmap: %w: rule %s: %v", cti.ErrInvalid, p.rule.Name, err)
		}
		p.fields = append(p.fields, CustomField{ID: id, Value: up.Fields[k]})
	}
	return up, rerr, nil
}

// noteTruncated reports a comment or field value cut to Zendesk's size.
func (s *Sink) noteTruncated(p *plan, up cti.Update) {
	cut := truncatedPrefix()
	var what []string
	if strings.Contains(up.Comment, cut) {
		what = append(what, "comment")
	}
	for _, k := range slices.Sorted(maps.Keys(up.Fields)) {
		if v, ok := up.Fields[k].(string); ok && strings.Contains(v, cut) {
			what = append(what, "field "+k)
		}
	}
	if len(what) == 0 {
		return
	}
	msg := "cut to Zendesk's size limit: " + strings.Join(what, ", ")
	s.cfg.log.Info("sync content truncated", "conversation", p.job.ConversationID, "rule", p.rule.Name, "what", what)
	s.notice(Notice{Kind: NoticeTruncated, Key: p.job.Key, ConversationID: p.job.ConversationID, Rule: p.rule.Name, Message: msg})
}

func truncatedPrefix() string {
	m, _, _ := strings.Cut(TruncatedMarker, "%d")
	return m
}

// maxLateDeferrals stays below the engine's limit on deferrals (50), past
// which it acknowledges a job without a write.
const maxLateDeferrals = 40

func (s *Sink) lateGaveUp(p *plan) {
	msg := "late data did not arrive in time: " + strings.Join(p.missing, ", ")
	s.notice(Notice{Kind: NoticeLateData, Key: p.job.Key, ConversationID: p.job.ConversationID, Rule: p.rule.Name, Message: msg})
	s.cfg.log.Info("syncing without late data", "conversation", p.job.ConversationID, "rule", p.rule.Name, "missing", p.missing)
}

// syncOne writes one planned job.
func (s *Sink) syncOne(ctx context.Context, p *plan) error {
	t, err := s.target(ctx, p)
	if err != nil {
		return err
	}
	if t == nil { // new ticket
		return s.create(ctx, p)
	}
	unlock := s.locks.Lock(t.ID)
	defer unlock()
	if p.voice {
		return s.writeCall(ctx, p, t)
	}
	return s.writeTicket(ctx, p, t)
}

// target returns the existing ticket p writes to, or nil for a new one
// (p.note says why when it falls back).
func (s *Sink) target(ctx context.Context, p *plan) (*Ticket, error) {
	rec := p.record()
	var requester int64
	switch {
	case rec == nil:
	case rec.Kind == cti.KindTicket:
		requester = rec.RequesterID
	case rec.Kind == cti.KindUser:
		requester = rec.ID
	}
	switch p.rule.Sync.Ticket {
	case cti.SyncNew:
		return nil, nil
	case cti.SyncLatestOpen:
		if rec != nil && rec.Kind == cti.KindTicket && requester == 0 {
			t, err := s.ticket(ctx, rec.ID)
			if err != nil && !errors.Is(err, cti.ErrNotFound) {
				return nil, err
			}
			if t != nil {
				requester = t.RequesterID
			}
		}
		return s.latestOpen(ctx, p, requester)
	}
	// popped (the default): the popped ticket. When the agent saw a user
	// (popup: user), the conversation gets a new ticket for them, as
	// Zendesk Talk does per call; sync.ticket latest_open appends to their
	// latest open ticket instead.
	if rec == nil || rec.Kind != cti.KindTicket {
		return nil, nil
	}
	// The writer reads it (deleted, closed, already marked).
	return &Ticket{ID: rec.ID, RequesterID: rec.RequesterID}, nil
}

// record is the Zendesk record the agent saw or picked: the popped one,
// else what the pop created (a ticket first), else the only candidate user.
func (p *plan) record() *cti.Record {
	j := p.job
	if j.Popped != nil {
		return j.Popped
	}
	for _, k := range []cti.RecordKind{cti.KindTicket, cti.KindUser} {
		for i := range j.Created {
			if j.Created[i].Kind == k {
				return &j.Created[i]
			}
		}
	}
	var user *cti.Record
	for i := range j.Candidates {
		if j.Candidates[i].Kind == cti.KindUser {
			if user != nil {
				return nil // several: nobody picked one
			}
			user = &j.Candidates[i]
		}
	}
	return user
}

// call reports whether p syncs a call (voice, or a callback).
func (p *plan) call() bool {
	return p.data.Media == string(cti.MediaVoice) || p.data.Media == string(cti.MediaCallback)
}

// firstTry reports whether no earlier delivery of the job can have
// reached Zendesk: the engine counts deliveries durably before calling the
// sink (cti.SyncJob.Tries), so on the first one the "already written?"
// reads (marker tag, external id, call record) can be skipped. Jobs not
// counted (Tries 0) are always checked.
func (p *plan) firstTry() bool { return p.job.Tries == 1 }

// requester is the end user a new ticket is for (0: unknown).
func (p *plan) requester() int64 {
	rec := p.record()
	switch {
	case rec == nil:
		return 0
	case rec.Kind == cti.KindUser:
		return rec.ID
	case rec.Kind == cti.KindTicket:
		return rec.RequesterID
	}
	return 0
}

func (p *plan) fallback(note string, ticketID int64, s *Sink) {
	p.note = note
	s.notice(Notice{Kind: NoticeTicketFallback, Key: p.job.Key, ConversationID: p.job.ConversationID, Rule: p.rule.Name, TicketID: ticketID, Message: note})
	s.cfg.log.Warn("sync target ticket unavailable: falling back to a new ticket", "conversation", p.job.ConversationID, "rule", p.rule.Name, "ticket", ticketID, "reason", note)
}

// latestOpen returns the requester's most recently updated unsolved
// ticket, or nil for a new one.
func (s *Sink) latestOpen(ctx context.Context, p *plan, requester int64) (*Ticket, error) {
	if requester == 0 {
		return nil, nil
	}
	if err := s.lim.Paused(ctx); err != nil {
		return nil, err
	}
	ts, err := s.zd.RequestedTickets(ctx, requester)
	if errors.Is(err, cti.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, s.upstream(fmt.Errorf("syncmap: tickets of user %d: %w", requester, err))
	}
	// A ticket already marked for this job wins (a retry after the write).
	for i := range ts {
		if ts[i].HasTag(p.marker) {
			return &ts[i], nil
		}
	}
	var best *Ticket
	for i := range ts {
		if cti.Unsolved(ts[i].Status) && (best == nil || ts[i].UpdatedAt.After(best.UpdatedAt)) {
			best = &ts[i]
		}
	}
	return best, nil
}

func (s *Sink) ticket(ctx context.Context, id int64) (*Ticket, error) {
	if err := s.lim.Paused(ctx); err != nil {
		return nil, err
	}
	t, err := s.zd.Ticket(ctx, id)
	if err != nil {
		return nil, s.upstream(fmt.Errorf("syncmap: ticket %d: %w", id, err))
	}
	return t, nil
}

// writeTicket adds the comment, fields and tags to ticket t in one update,
// unless t already has the marker. The caller holds t's lock. On a first
// try it writes without reading t first: a deleted ticket answers 404 and
// a closed one 422, and both fall back below.
func (s *Sink) writeTicket(ctx context.Context, p *plan, t *Ticket) error {
	if !p.firstTry() {
		fresh, err := s.ticket(ctx, t.ID) // re-read under the lock
		switch {
		case errors.Is(err, cti.ErrNotFound):
			p.fallback(fmt.Sprintf("Ticket #%d was deleted, so this conversation was synced to a new ticket.", t.ID), t.ID, s)
			return s.create(ctx, p)
		case err != nil:
			return err
		case fresh.HasTag(p.marker):
			s.cfg.log.Debug("sync already in Zendesk", "conversation", p.job.ConversationID, "ticket", t.ID)
			return nil
		case fresh.Status == "closed":
			p.fallback(fmt.Sprintf("Ticket #%d is closed, so this conversation was synced to a new ticket.", t.ID), t.ID, s)
			return s.create(ctx, p)
		}
	}
	u := TicketUpdate{CustomFields: p.fields, AdditionalTags: p.tags}
	if body := p.body(); body != "" {
		u.Comment = &CommentInput{Body: body, Public: p.public, AuthorID: p.author, Uploads: p.uploads}
	}
	err := s.update(ctx, p, t.ID, u)
	if errors.Is(err, cti.ErrNotFound) {
		p.fallback(fmt.Sprintf("Ticket #%d was deleted, so this conversation was synced to a new ticket.", t.ID), t.ID, s)
		return s.create(ctx, p)
	}
	var ue *cti.UpstreamError
	if errors.As(err, &ue) && ue.Status == 422 && RejectedFields(err) == nil {
		// Closed in the meantime? Then fall back like above.
		if now, gerr := s.ticket(ctx, t.ID); gerr == nil && now.Status == "closed" {
			p.fallback(fmt.Sprintf("Ticket #%d is closed, so this conversation was synced to a new ticket.", t.ID), t.ID, s)
			return s.create(ctx, p)
		}
	}
	if err == nil {
		s.cfg.log.Info("synced to ticket", "conversation", p.job.ConversationID, "leg", p.job.LegID, "rule", p.rule.Name, "ticket", t.ID)
	}
	return err
}

// body is the comment with the fallback note, cut to size.
func (p *plan) body() string {
	if p.note == "" {
		return p.comment
	}
	if p.comment == "" {
		return p.note
	}
	return p.note + "\n\n" + p.comment
}

// update sends u to ticket id, dropping the fields Zendesk rejects (each
// reported once) and sending the rest again.
func (s *Sink) update(ctx context.Context, p *plan, id int64, u TicketUpdate) error {
	for try := 0; ; try++ {
		if err := s.lim.Wait(ctx); err != nil {
			return err
		}
		_, err := s.zd.UpdateTicket(ctx, id, u)
		if err == nil {
			return nil
		}
		var ok bool
		if u.CustomFields, ok = s.dropRejected(p, id, u.CustomFields, err); ok && try < s.cfg.fieldTries {
			continue
		}
		if errors.Is(err, cti.ErrNotFound) {
			return err
		}
		return s.upstream(fmt.Errorf("syncmap: update ticket %d: %w", id, err))
	}
}

// dropRejected removes the fields err says Zendesk rejected and reports
// each once. ok is false when err names no field that was sent.
func (s *Sink) dropRejected(p *plan, ticketID int64, fields []CustomField, err error) (_ []CustomField, ok bool) {
	ids := RejectedFields(err)
	if len(ids) == 0 {
		return fields, false
	}
	kept := fields[:0:0]
	for _, f := range fields {
		if slices.Contains(ids, f.ID) {
			ok = true
			s.reportField(p, ticketID, f.ID, err)
			continue
		}
		kept = append(kept, f)
	}
	return kept, ok
}

func (s *Sink) reportField(p *plan, ticketID, fieldID int64, err error) {
	if _, dup := s.reported.LoadOrStore(fieldID, true); dup {
		return
	}
	msg := fmt.Sprintf("Zendesk rejected ticket field %d (rule %s sync.fields): the rest is synced without it; check the field id and the value it gets: %v", fieldID, p.rule.Name, err)
	s.cfg.log.Error("zendesk rejected a ticket field", "field", fieldID, "rule", p.rule.Name, "ticket", ticketID, "conversation", p.job.ConversationID, "error", err)
	s.notice(Notice{Kind: NoticeFieldRejected, Key: p.job.Key, ConversationID: p.job.ConversationID, Rule: p.rule.Name, TicketID: ticketID, FieldID: fieldID, Message: msg})
}

// create makes the new ticket for p, unless a previous attempt did (found
// by its external id). For a text sync the comment, fields and marker go
// in the create request; for a call record the ticket is created
// unmarked, then the call is written and the ticket marked.
func (s *Sink) create(ctx context.Context, p *plan) error {
	if err := s.lim.Paused(ctx); err != nil {
		return err
	}
	var existing []Ticket
	if !p.firstTry() {
		var err error
		existing, err = s.zd.TicketsByExternalID(ctx, p.marker)
		if err != nil {
			return s.upstream(fmt.Errorf("syncmap: find ticket %s: %w", p.marker, err))
		}
	}
	if len(existing) > 0 {
		t := &existing[0]
		unlock := s.locks.Lock(t.ID)
		defer unlock()
		if p.voice {
			return s.writeCall(ctx, p, t)
		}
		return s.writeTicket(ctx, p, t) // nothing to do when marked
	}
	nt := s.newTicket(p)
	var (
		t   *Ticket
		err error
	)
	for try := 0; ; try++ {
		if err := s.lim.Wait(ctx); err != nil {
			return err
		}
		t, err = s.zd.CreateTicket(ctx, nt)
		if err == nil {
			break
		}
		var ok bool
		if nt.CustomFields, ok = s.dropRejected(p, 0, nt.CustomFields, err); ok && try < s.cfg.fieldTries {
			continue
		}
		return s.upstream(fmt.Errorf("syncmap: create ticket: %w", err))
	}
	s.cfg.log.Info("synced to a new ticket", "conversation", p.job.ConversationID, "leg", p.job.LegID, "rule", p.rule.Name, "ticket", t.ID)
	if !p.voice {
		return nil
	}
	unlock := s.locks.Lock(t.ID)
	defer unlock()
	return s.writeCall(ctx, p, t)
}

// newTicket is the ticket create makes for p: for a text sync with the
// comment, fields and marker; for a call record unmarked, with a short
// first comment (the call's voice comment follows).
func (s *Sink) newTicket(p *plan) NewTicket {
	nt := NewTicket{
		Subject:     s.subject(p),
		RequesterID: p.requester(),
		AssigneeID:  p.author,
		ExternalID:  p.marker,
		Tags:        p.tags,
	}
	body := p.body()
	if p.voice {
		nt.Tags = slices.DeleteFunc(slices.Clone(p.tags), func(t string) bool { return t == p.marker })
		body = cmp.Or(p.note, nt.Subject)
	} else {
		nt.CustomFields = p.fields
		body = cmp.Or(body, nt.Subject) // a ticket needs a first comment
	}
	nt.Comment = &CommentInput{Body: body, Public: p.public, AuthorID: p.author, Uploads: p.uploads}
	return nt
}

func (s *Sink) subject(p *plan) string {
	if t := s.subjects[p.rule.Name]; t != nil {
		if v, err := t.Render(p.data, s.cfg.format); err == nil && strings.TrimSpace(v) != "" {
			return Truncate(strings.TrimSpace(v), 250, "…")
		}
	}
	d := p.data
	who := cmp.Or(d.CustomerName, d.PhoneNumber, d.CustomerEmail, d.CustomerHandle, d.CustomerAddress)
	s2 := "Genesys Cloud " + kindLabel(cmp.Or(d.Kind, "voice"))
	if d.Kind == "email" && d.EmailSubject != "" {
		s2 = d.EmailSubject
	}
	if who != "" {
		s2 += " — " + who
	}
	return Truncate(s2, 250, "…")
}

// writeCall writes the Talk Partner Edition call record with its voice
// comment on ticket t, then marks the ticket (fields, tags, marker). A call
// written by an earlier attempt is found through the job's checkpoint or
// the ticket's voice comments and not written again: when marking the
// ticket fails after the call was written, the error is a deferral that
// carries the checkpoint (callWritten). Late data updates the same call
// record. The caller holds t's lock.
func (s *Sink) writeCall(ctx context.Context, p *plan, t *Ticket) error {
	cp, hasCP := parseCallCheckpoint(p.job.Checkpoint)
	hasCP = hasCP && cp.ticket == t.ID
	fresh, err := s.ticket(ctx, t.ID)
	switch {
	case errors.Is(err, cti.ErrNotFound) && hasCP:
		// An earlier delivery wrote the call record there, then came back
		// for late data: the ticket was deleted since. Not again.
		msg := fmt.Sprintf("ticket %d was deleted after its call record was written: its late data is left out", t.ID)
		s.notice(Notice{Kind: NoticeLateData, Key: p.job.Key, ConversationID: p.job.ConversationID, Rule: p.rule.Name, TicketID: t.ID, Message: msg})
		s.cfg.log.Info("call record's ticket deleted: late data left out", "conversation", p.job.ConversationID, "ticket", t.ID, "call", cp.call)
		return nil
	case errors.Is(err, cti.ErrNotFound):
		p.fallback(fmt.Sprintf("Ticket #%d was deleted, so this call was synced to a new ticket.", t.ID), t.ID, s)
		return s.create(ctx, p)
	case err != nil:
		return err
	case fresh.Status == "closed" && !fresh.HasTag(p.marker):
		p.fallback(fmt.Sprintf("Ticket #%d is closed, so this call was synced to a new ticket.", t.ID), t.ID, s)
		return s.create(ctx, p)
	}
	var (
		call     *Call
		comments []Comment
		created  bool // the call record was written by this delivery
	)
	if hasCP {
		if call, err = s.checkpointedCall(ctx, p, cp); err != nil {
			return err
		}
	}
	if call == nil && !p.firstTry() {
		if call, comments, err = s.findCall(ctx, t.ID, p.marker); err != nil {
			return err
		}
	}
	want := s.call(p, t)
	// The recording is hosted on an internal note, which a rule without
	// comments does not get (its call record keeps Genesys's link).
	host := s.hosts(p) && p.rule.Sync.Comment != cti.CommentNone
	if host {
		want.RecordingURL = "" // the uploaded file's, below
	}
	if call == nil {
		if fresh.HasTag(p.marker) {
			// Marked but no call found: the voice comment is not among
			// the newest comments any more. Never write twice.
			s.cfg.log.Warn("call record of a marked ticket not found: not writing it again", "conversation", p.job.ConversationID, "ticket", t.ID)
			return s.lateVoice(p)
		}
		if p.rule.Sync.Comment != cti.CommentNone {
			want.Comment = &CallComment{AuthorID: p.author, Title: p.title(), Public: p.public}
		}
		if err := s.lim.Wait(ctx); err != nil {
			return err
		}
		call, err = s.zd.CreateCall(ctx, want)
		if err != nil {
			return s.upstream(fmt.Errorf("syncmap: create call record: %w", err))
		}
		created = true
		s.cfg.log.Info("call record written", "conversation", p.job.ConversationID, "ticket", t.ID, "call", call.ID)
	} else if patch, ok := latePatch(call, want); ok {
		if err := s.lim.Wait(ctx); err != nil {
			return err
		}
		if _, err := s.zd.UpdateCall(ctx, call.ID, patch); err != nil {
			return s.upstream(fmt.Errorf("syncmap: update call record %d: %w", call.ID, err))
		}
		s.cfg.log.Info("call record updated with late data", "conversation", p.job.ConversationID, "ticket", t.ID, "call", call.ID)
	}
	// The recording, uploaded and attached to an internal note: in the
	// update that marks the ticket when it is ready by then.
	var (
		addr string
		note *CommentInput
		herr error // a *cti.Deferred: the recording is not ready yet
	)
	marked := fresh.HasTag(p.marker)
	switch {
	case !host || call.RecordingURL != "" && call.RecordingURL != p.data.RecordingURL:
	case marked && fresh.Status == "closed":
		// Closed since the call was written: no note can attach it.
		herr = s.recordingFailed(p, fmt.Errorf("ticket %d is closed: %w", t.ID, cti.ErrInvalid))
	default:
		if addr, note, herr = s.callRecording(ctx, p, t.ID, comments); herr != nil && !isDeferred(herr) {
			return herr
		}
	}
	if !marked || note != nil {
		// A fallback note went into the new ticket's first comment.
		u := TicketUpdate{Comment: note}
		if !marked {
			u.CustomFields, u.AdditionalTags = p.fields, p.tags
		}
		err := s.update(ctx, p, t.ID, u)
		switch {
		case err != nil && marked && !cti.IsRetryable(err):
			// The note alone failed for good (the ticket was deleted or
			// closed meanwhile): the sync is written, without it.
			addr, herr = "", s.recordingFailed(p, err)
		case err != nil && created:
			return s.callWritten(p, call.ID, t.ID, err)
		case err != nil:
			return err
		}
	}
	if addr != "" {
		if err := s.lim.Wait(ctx); err != nil {
			return err
		}
		if _, err := s.zd.UpdateCall(ctx, call.ID, Call{RecordingURL: addr}); err != nil {
			return s.upstream(fmt.Errorf("syncmap: update call record %d: %w", call.ID, err))
		}
		s.cfg.log.Info("recording added to the call record", "conversation", p.job.ConversationID, "ticket", t.ID, "call", call.ID)
	}
	if herr == nil {
		herr = s.lateVoice(p)
	}
	return withCallCheckpoint(herr, call.ID, t.ID)
}

// callCheckpoint is what a voice sync that comes back for late data has
// written: its call record, on its ticket (cti.Deferred.Checkpoint).
type callCheckpoint struct{ call, ticket int64 }

func parseCallCheckpoint(s string) (callCheckpoint, bool) {
	var c callCheckpoint
	n, err := fmt.Sscanf(s, "call %d ticket %d", &c.call, &c.ticket)
	return c, err == nil && n == 2 && c.call > 0 && c.ticket > 0
}

// checkpointedCall reads the call record an earlier delivery of p wrote
// (one request, where findCall reads the ticket's comments and their call
// records); nil when it is gone or not p's.
func (s *Sink) checkpointedCall(ctx context.Context, p *plan, cp callCheckpoint) (*Call, error) {
	if err := s.lim.Paused(ctx); err != nil {
		return nil, err
	}
	call, err := s.zd.Call(ctx, cp.call)
	switch {
	case errors.Is(err, cti.ErrNotFound) || err == nil && call.ExternalID != p.marker:
		return nil, nil
	case err != nil:
		return nil, s.upstream(fmt.Errorf("syncmap: call record %d: %w", cp.call, err))
	}
	return call, nil
}

// withCallCheckpoint gives a deferral err the checkpoint of call record
// callID on ticket ticketID.
func withCallCheckpoint(err error, callID, ticketID int64) error {
	var d *cti.Deferred
	if errors.As(err, &d) {
		d.Checkpoint = fmt.Sprintf("call %d ticket %d", callID, ticketID)
	}
	return err
}

// callWritten is the error of a delivery that wrote call record callID
// on ticket ticketID, then failed to mark the ticket (err): a deferral
// carrying the call's checkpoint, due when err's retry would be, so that
// the next delivery reads the call record instead of writing it again (a
// rule with comment: none gives it no voice comment to be found by). That
// delivery has the checkpoint: its own failures are returned as they are.
func (s *Sink) callWritten(p *plan, callID, ticketID int64, err error) error {
	reason := fmt.Sprintf("call record %d written, ticket %d not marked yet: %v", callID, ticketID, err)
	return withCallCheckpoint(cti.Later(cti.DefaultBackoff(p.job.Attempts+1, err), reason), callID, ticketID)
}

// lateVoice asks to come back while late data may still arrive for a
// call record.
func (s *Sink) lateVoice(p *plan) error {
	if p.late {
		return cti.Later(s.cfg.late.Poll, "call record written; waiting for late data: "+strings.Join(p.missing, ", "))
	}
	if len(p.missing) > 0 && p.job.Deferrals > 0 {
		s.lateGaveUp(p)
	}
	return nil
}

// title is the voice comment's title: the first line of the comment.
func (p *plan) title() string {
	first, _, _ := strings.Cut(p.comment, "\n")
	return Truncate(cmp.Or(strings.TrimSpace(first), "Genesys Cloud call"), 200, "…")
}

// findCall returns the call record with external id marker shown by a
// voice comment of ticket id, or nil, and the comments it looked through.
func (s *Sink) findCall(ctx context.Context, ticketID int64, marker string) (*Call, []Comment, error) {
	if err := s.lim.Paused(ctx); err != nil {
		return nil, nil, err
	}
	cs, err := s.zd.TicketComments(ctx, ticketID)
	if errors.Is(err, cti.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, s.upstream(fmt.Errorf("syncmap: comments of ticket %d: %w", ticketID, err))
	}
	checked := 0
	for _, c := range cs {
		if c.CallID == 0 || checked == maxCallChecks {
			continue
		}
		checked++
		call, err := s.zd.Call(ctx, c.CallID)
		if errors.Is(err, cti.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, s.upstream(fmt.Errorf("syncmap: call record %d: %w", c.CallID, err))
		}
		if call.ExternalID == marker {
			return call, cs, nil
		}
	}
	return nil, cs, nil
}

// maxCallChecks bounds the voice comments findCall looks behind.
const maxCallChecks = 10

// call builds the call record of p on ticket t.
func (s *Sink) call(p *plan, t *Ticket) Call {
	d := p.data
	customer := cmp.Or(d.PhoneNumber, d.CustomerAddress, "unknown")
	ours := cmp.Or(d.Attr("DNIS"), d.Attr("ToLine"), d.QueueName, "Genesys Cloud")
	c := Call{
		AppID:        s.cfg.talkApp,
		ExternalID:   p.marker,
		TicketID:     t.ID,
		AgentID:      p.author,
		EndUserID:    t.RequesterID,
		FromLine:     customer,
		ToLine:       ours,
		Direction:    cmp.Or(d.Direction, string(cti.Inbound)),
		QueueName:    d.QueueName,
		Disposition:  d.WrapupName,
		RecordingURL: d.RecordingURL,
		Transcript:   d.Transcript,
		Summary:      d.CallSummary,
	}
	if c.Direction == string(cti.Outbound) {
		c.FromLine, c.ToLine = ours, customer
	}
	c.CallStartedAt = cmp.Or(d.Start.Time, d.Connect.Time, p.job.EnqueuedAt).UTC()
	if !d.End.IsZero() {
		c.CallEndedAt = d.End.UTC()
	}
	c.Duration = int(d.Duration.Round(time.Second) / time.Second)
	c.TalkTime = int(d.Talk.Round(time.Second) / time.Second)
	if !d.Connect.IsZero() {
		c.CompletionStatus = "completed"
	} else {
		c.CompletionStatus = "abandoned_in_queue"
	}
	if len(c.Transcript) > s.cfg.maxComment {
		c.Transcript, _ = TruncateBytes(c.Transcript, s.cfg.maxComment)
	}
	return c
}

// latePatch returns the late data of want that call lacks.
func latePatch(call *Call, want Call) (Call, bool) {
	var patch Call
	ok := false
	if want.RecordingURL != "" && call.RecordingURL != want.RecordingURL {
		patch.RecordingURL, ok = want.RecordingURL, true
	}
	if want.Transcript != "" && call.Transcript != want.Transcript {
		patch.Transcript, ok = want.Transcript, true
	}
	if want.Summary != "" && call.Summary != want.Summary {
		patch.Summary, ok = want.Summary, true
	}
	return patch, ok
}

// upstream notes a 429's Retry-After for every writer, and returns err.
// A 401 (Zendesk refused the credentials: revoked or rotated, or a blip)
// is made retryable: it says nothing about the job, which must wait for
// the credentials to work again rather than go to the dead letters.
func (s *Sink) upstream(err error) error {
	var u *cti.UpstreamError
	if !errors.As(err, &u) {
		return err
	}
	switch {
	case u.Status == 429:
		s.lim.Backoff(u.RetryAfter)
	case u.Status == 401 && !u.Temporary:
		return &cti.UpstreamError{Service: u.Service, Op: u.Op, Status: u.Status, Temporary: true, RetryAfter: u.RetryAfter,
			Err: fmt.Errorf("Zendesk refused the credentials (check ZENDESK_EMAIL and ZENDESK_API_TOKEN); the sync waits for them to work: %w", err)}
	}
	return err
}

func (s *Sink) notice(n Notice) {
	if s.cfg.notify != nil {
		s.cfg.notify(n)
	}
}

// minCreateMany is the fewest new tickets created with create_many: it
// costs the request and at least one job status poll, two calls.
const minCreateMany = 3

// recordKey names the Zendesk record a job writes to, a ticket or a user
// (their latest open ticket); "" for none (a new ticket).
func recordKey(rec *cti.Record) string {
	if rec == nil || rec.ID <= 0 || (rec.Kind != cti.KindTicket && rec.Kind != cti.KindUser) {
		return ""
	}
	return string(rec.Kind) + "/" + strconv.FormatInt(rec.ID, 10)
}

// SyncBatch implements cti.BatchSink: the jobs that add a comment to a
// known, existing ticket go to Zendesk in update_many requests (up to 100
// tickets each, one update per ticket per request, in job order); the
// first tries of jobs that make a new ticket with their comment go in
// create_many requests when the Zendesk implementation has them
// (ManyCreator) and there are at least three; the others (latest open
// lookups, call records, fallbacks, retries, and any a batch failed) are
// synced one by one.
func (s *Sink) SyncBatch(ctx context.Context, jobs []*cti.SyncJob) []error {
	errs := make([]error, len(jobs))
	plans := make([]*plan, len(jobs))
	mc, _ := s.zd.(ManyCreator)
	var bulk, creates []int // indexes of batchable jobs
	s.planAll(ctx, jobs, plans, errs)
	alone := map[string]bool{} // records with a job on the single path
	for i, j := range jobs {
		p := plans[i]
		if p == nil {
			continue
		}
		rec, k := p.record(), recordKey(p.record())
		switch {
		case p.voice || j.Attempts >= 2 || alone[k]:
			// A job that failed twice goes alone: the single path tells
			// a rejected field, a deleted ticket and an outage apart.
			// The single path writes after the batches: the later jobs
			// of its record go that way too, after it.
		case p.rule.Sync.Ticket == cti.SyncPopped && rec != nil && rec.Kind == cti.KindTicket:
			bulk = append(bulk, i)
			continue
		case mc != nil && p.firstTry() && p.newTicketOnly():
			// A retry goes alone: it looks its ticket up by external id.
			creates = append(creates, i)
			continue
		}
		if k != "" {
			alone[k] = true
		}
	}
	single := map[int]bool{}
	for i, p := range plans {
		if p != nil && !slices.Contains(bulk, i) && !slices.Contains(creates, i) {
			single[i] = true
		}
	}
	if len(bulk) < 2 {
		for _, i := range bulk {
			single[i] = true
		}
		bulk = nil
	}
	if len(creates) < minCreateMany {
		for _, i := range creates {
			single[i] = true
		}
		creates = nil
	}
	if len(creates) > 0 {
		s.createMany(ctx, mc, plans, creates, errs, single)
	}
	if len(bulk) > 0 {
		s.bulk(ctx, plans, bulk, errs, single)
	}
	// The rest one by one, a few tickets at a time; the jobs of one ticket
	// (or one user: their latest open ticket) in job order.
	groups := map[string][]int{}
	var keys []string
	for i := range plans {
		if !single[i] {
			continue
		}
		k := recordKey(plans[i].record())
		if k == "" {
			k = "job/" + strconv.Itoa(i)
		}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], i)
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			for _, i := range groups[k] {
				errs[i] = s.syncOne(ctx, plans[i])
			}
		})
	}
	wg.Wait()
	return errs
}

// planAll plans jobs into plans and errs, four at a time when plans may
// copy recordings (WithRecordingUpload: a download and an upload each),
// else one after the other.
func (s *Sink) planAll(ctx context.Context, jobs []*cti.SyncJob, plans []*plan, errs []error) {
	n := 1
	if s.up != nil {
		n = 4
	}
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, j := range jobs {
		if n == 1 {
			plans[i], errs[i] = s.plan(ctx, j)
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			plans[i], errs[i] = s.plan(ctx, j)
		})
	}
	wg.Wait()
}

// newTicketOnly reports whether p writes to a new ticket without reading
// anything first: sync.ticket new, or popped when the agent saw no ticket.
func (p *plan) newTicketOnly() bool {
	switch p.rule.Sync.Ticket {
	case cti.SyncNew:
		return true
	case cti.SyncPopped:
		rec := p.record()
		return rec == nil || rec.Kind != cti.KindTicket
	}
	return false
}

// createMany makes the new tickets of the jobs creates (first tries) with
// create_many, 100 a request; a ticket Zendesk rejected goes to the single
// path (which drops rejected fields), an unknown outcome is a retry (which
// looks the ticket up by its external id once the job surely ended).
func (s *Sink) createMany(ctx context.Context, mc ManyCreator, plans []*plan, creates []int, errs []error, single map[int]bool) {
	for chunk := range slices.Chunk(creates, 100) {
		fail := func(err error) {
			for _, i := range chunk {
				errs[i] = err
			}
		}
		if err := s.lim.Paused(ctx); err != nil {
			fail(err)
			continue
		}
		nts := make([]NewTicket, len(chunk))
		for k, i := range chunk {
			nts[k] = s.newTicket(plans[i])
		}
		if err := s.lim.Wait(ctx); err != nil {
			fail(err)
			continue
		}
		res, err := mc.CreateMany(ctx, nts)
		if err == nil && len(res) != len(nts) {
			err = &cti.UpstreamError{Service: "zendesk", Op: "create_many", Temporary: true,
				Err: fmt.Errorf("%d results for %d tickets", len(res), len(nts))}
		}
		if err != nil {
			fail(s.bulkFailed(ctx, "create_many", len(nts), err))
			continue
		}
		for k, i := range chunk {
			r := res[k]
			switch {
			case r.Err == nil && r.ID > 0:
				s.cfg.log.Info("synced to a new ticket (create_many)", "conversation", plans[i].job.ConversationID,
					"leg", plans[i].job.LegID, "rule", plans[i].rule.Name, "ticket", r.ID)
			case r.Err != nil && !cti.IsRetryable(r.Err):
				single[i] = true // rejected, nothing created: the single path classifies it
			default:
				errs[i] = &cti.UpstreamError{Service: "zendesk", Op: "create_many", Temporary: true,
					RetryAfter: s.cfg.settle, Err: fmt.Errorf("syncmap: create_many: no outcome for ticket %d: %v", k, r.Err)}
			}
		}
	}
}

// bulk writes the batchable jobs with update_many; a ticket Zendesk
// rejected goes to the single path (added to single), with the later jobs
// of that ticket; an unknown outcome is a retry (which reads the marker:
// no first try), with the later jobs of that ticket.
func (s *Sink) bulk(ctx context.Context, plans []*plan, bulk []int, errs []error, single map[int]bool) {
	// Read the target tickets (show_many, 100 ids a request), except for
	// jobs on their first try: update_many reports a deleted or closed
	// ticket in its results, and nothing can be marked yet.
	var ids []int64
	for _, i := range bulk {
		if plans[i].firstTry() {
			continue
		}
		if id := plans[i].record().ID; !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	tickets := map[int64]*Ticket{}
	for chunk := range slices.Chunk(ids, 100) {
		if err := s.lim.Paused(ctx); err != nil {
			for _, i := range bulk {
				errs[i] = cmp.Or(errs[i], err)
			}
			return
		}
		ts, err := s.zd.Tickets(ctx, chunk)
		if err != nil {
			err = s.upstream(fmt.Errorf("syncmap: show tickets: %w", err))
			for _, i := range bulk {
				if slices.Contains(chunk, plans[i].record().ID) {
					errs[i] = err
				}
			}
			continue
		}
		for k := range ts {
			tickets[ts[k].ID] = &ts[k]
		}
	}
	// Rounds: the n-th job of each ticket goes in round n.
	failed := map[int64]bool{}   // tickets with a job gone to the single path
	unknown := map[int64]error{} // tickets with an update of unknown outcome
	var rounds [][]int
	seen := map[int64]int{}
	for _, i := range bulk {
		if errs[i] != nil {
			continue
		}
		p := plans[i]
		id := p.record().ID
		t := tickets[id]
		switch {
		case failed[id]:
			single[i] = true
			continue
		case p.firstTry():
		case t == nil || t.Status == "closed" && !t.HasTag(p.marker):
			single[i] = true // deleted or closed: the fallback path
			failed[id] = true
			continue
		case t.HasTag(p.marker):
			continue // already written
		}
		n := seen[id]
		seen[id] = n + 1
		if n == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[n] = append(rounds[n], i)
	}
	for r, round := range rounds {
		// A ticket whose earlier job failed in a batch keeps its order:
		// its later jobs go the single path too, after it; when that
		// job's outcome is unknown, they retry with it.
		round = slices.DeleteFunc(slices.Clone(round), func(i int) bool {
			id := plans[i].record().ID
			switch {
			case unknown[id] != nil:
				errs[i] = unknown[id]
				return true
			case failed[id]:
				single[i] = true
				return true
			}
			return false
		})
		for chunk := range slices.Chunk(round, 100) {
			var ups []TicketUpdate
			for _, i := range chunk {
				p := plans[i]
				u := TicketUpdate{ID: p.record().ID, CustomFields: p.fields, AdditionalTags: p.tags}
				if body := p.body(); body != "" {
					u.Comment = &CommentInput{Body: body, Public: p.public, AuthorID: p.author, Uploads: p.uploads}
				}
				ups = append(ups, u)
			}
			res, err := s.updateMany(ctx, ups)
			if err != nil {
				// Unknown outcome: every job of this and later rounds
				// retries (the marker check avoids writing twice).
				for _, later := range rounds[r:] {
					for _, i := range later {
						if errs[i] == nil && !single[i] {
							errs[i] = err
						}
					}
				}
				return
			}
			for k, i := range chunk {
				if k < len(res) && res[k].Success {
					s.cfg.log.Info("synced to ticket (update_many)", "conversation", plans[i].job.ConversationID, "leg", plans[i].job.LegID, "ticket", res[k].ID)
					continue
				}
				id := plans[i].record().ID
				if r := res[k]; r.Err != nil && cti.IsRetryable(r.Err) {
					// Unknown outcome (the Zendesk job ended without this
					// ticket's result): the update may have been applied.
					// A retry, no first try, looks for the marker first.
					errs[i] = &cti.UpstreamError{Service: "zendesk", Op: "update_many", Temporary: true,
						RetryAfter: s.cfg.settle, Err: fmt.Errorf("syncmap: update_many: no outcome for ticket %d: %v", id, r.Err)}
					unknown[id] = errs[i]
					continue
				}
				// Failed in the batch: the single path classifies it
				// (rejected field, deleted ticket).
				single[i] = true
				failed[id] = true
			}
		}
	}
}

// bulkFailed is the error of an update_many or create_many request that
// failed with an unknown outcome: the Zendesk job may still run, so its
// jobs retry (and look for what it wrote) only once it is surely over, or
// the marker and external id checks could miss its writes.
func (s *Sink) bulkFailed(ctx context.Context, op string, tickets int, err error) error {
	err = s.upstream(fmt.Errorf("syncmap: %s (%d tickets): %w", op, tickets, err))
	if ctx.Err() != nil {
		return err
	}
	ra, _ := cti.RetryAfter(err)
	return &cti.UpstreamError{Service: "zendesk", Op: op, Temporary: true, RetryAfter: max(ra, s.cfg.settle), Err: err}
}

func (s *Sink) updateMany(ctx context.Context, ups []TicketUpdate) ([]UpdateResult, error) {
	if err := s.lim.Wait(ctx); err != nil {
		return nil, err
	}
	res, err := s.zd.UpdateMany(ctx, ups)
	if err != nil {
		return nil, s.bulkFailed(ctx, "update_many", len(ups), err)
	}
	if len(res) != len(ups) {
		return nil, &cti.UpstreamError{Service: "zendesk", Op: "update_many", Temporary: true,
			Err: fmt.Errorf("%d results for %d updates", len(res), len(ups))}
	}
	for k := range res {
		if res[k].ID != 0 && res[k].ID != ups[k].ID {
			return nil, &cti.UpstreamError{Service: "zendesk", Op: "update_many", Temporary: true,
				Err: fmt.Errorf("result %d is for ticket %d, not %d", k, res[k].ID, ups[k].ID)}
		}
	}
	return res, nil
}

// String describes the sink for logs.
func (s *Sink) String() string {
	if s.cfg.talkApp != 0 {
		return "zendesk sink (Talk Partner Edition app " + strconv.FormatInt(s.cfg.talkApp, 10) + ")"
	}
	return "zendesk sink"
}
