package cti

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// LegRecord is what the engine remembers about one agent leg.
type LegRecord struct {
	Phase Phase  `json:"phase"`
	Rule  string `json:"rule,omitempty"` // the rule matched for the leg; "" when none applied
	// Matched is set once the leg's rule was looked up (Rule may still be "").
	Matched bool   `json:"matched,omitempty"`
	UserID  string `json:"userId,omitempty"`
	Agent   *Agent `json:"agent,omitempty"`
	// PopTries counts pop attempts; PopDone is set once the pop (or choice
	// offer) succeeded or the decision was to pop nothing.
	PopTries int     `json:"popTries,omitempty"`
	PopDone  bool    `json:"popDone,omitempty"`
	Popped   *Record `json:"popped,omitempty"`
	// Choosing is set while the agent is asked to pick one of Candidates.
	Choosing   bool     `json:"choosing,omitempty"`
	Candidates []Record `json:"candidates,omitempty"`
	// DisconnectedAt is when the engine saw the leg disconnect; the grace
	// period and wrap-up timeout run from it.
	DisconnectedAt time.Time `json:"disconnectedAt,omitzero"`
	// Queued is set once the leg's sync job is in the outbox.
	Queued bool `json:"queued,omitempty"`
}

// ConvRecord is the engine's durable memory of one conversation: enough to
// never pop or sync twice across restarts.
type ConvRecord struct {
	ID   string                `json:"id"`
	Legs map[string]*LegRecord `json:"legs,omitempty"`
	// Resolved is the record popped for the conversation; agents the
	// conversation is transferred to get the same one.
	Resolved *Record  `json:"resolved,omitempty"`
	Created  []Record `json:"created,omitempty"`
	// Identified is set once the customer was identified; Identity found
	// Candidates (More: there were more than MaxResults).
	Identified bool     `json:"identified,omitempty"`
	Identity   Identity `json:"identity,omitzero"`
	Candidates []Record `json:"candidates,omitempty"`
	More       bool     `json:"more,omitempty"`
	// Done is set when the conversation ended and every leg is settled.
	Done      bool      `json:"done,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Clone returns a deep copy.
func (r *ConvRecord) Clone() *ConvRecord {
	if r == nil {
		return nil
	}
	n := *r
	n.Legs = make(map[string]*LegRecord, len(r.Legs))
	for k, l := range r.Legs {
		lc := *l
		lc.Agent = clonePtr(l.Agent)
		lc.Popped = cloneRecord(l.Popped)
		lc.Candidates = cloneRecords(l.Candidates)
		n.Legs[k] = &lc
	}
	n.Resolved = cloneRecord(r.Resolved)
	n.Created = cloneRecords(r.Created)
	n.Candidates = cloneRecords(r.Candidates)
	return &n
}

// Clone returns a deep copy.
func (j *SyncJob) Clone() *SyncJob {
	if j == nil {
		return nil
	}
	n := *j
	n.Conversation = j.Conversation.Clone()
	n.Agent = clonePtr(j.Agent)
	n.Popped = cloneRecord(j.Popped)
	n.Created = cloneRecords(j.Created)
	n.Candidates = cloneRecords(j.Candidates)
	return &n
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func cloneRecord(r *Record) *Record {
	if r == nil {
		return nil
	}
	v := *r
	v.OpenTickets = cloneRecords(r.OpenTickets)
	return &v
}

func cloneRecords(rs []Record) []Record {
	if rs == nil {
		return nil
	}
	out := slices.Clone(rs)
	for i := range out {
		out[i].OpenTickets = cloneRecords(out[i].OpenTickets)
	}
	return out
}

// StateStore keeps the engine's per-conversation memory.
//
// All methods are safe for concurrent use; the engine never calls them
// concurrently for the same conversation. Save must not retain rec (copy
// or serialize it). Load returns ErrNotFound for an unknown id.
type StateStore interface {
	LoadConversation(ctx context.Context, id string) (*ConvRecord, error)
	SaveConversation(ctx context.Context, rec *ConvRecord) error
	// OpenConversations lists the ids of records not Done.
	OpenConversations(ctx context.Context) ([]string, error)
	// PruneConversations deletes Done records last updated before t and
	// returns how many it deleted.
	PruneConversations(ctx context.Context, before time.Time) (int, error)
}

// Outbox holds pending sync jobs until the sink accepted them.
//
// All methods are safe for concurrent use and must not retain the jobs
// passed in (copy or serialize them); jobs returned are the caller's.
type Outbox interface {
	// Put inserts or replaces the job with job.Key.
	Put(ctx context.Context, job *SyncJob) error
	// Due returns up to limit pending jobs whose NextAttempt is not after
	// now, oldest EnqueuedAt first, and the earliest NextAttempt of the
	// pending jobs not yet due (zero when there are none).
	Due(ctx context.Context, now time.Time, limit int) (due []*SyncJob, next time.Time, err error)
	// Ack removes a delivered job. Acking an unknown key is not an error.
	Ack(ctx context.Context, key string) error
	// Bury moves a job that failed for good to the dead letters.
	Bury(ctx context.Context, job *SyncJob, reason string) error
}

// OutboxStats counts what an outbox holds.
type OutboxStats struct {
	Pending int `json:"pending"`
	Dead    int `json:"dead"`
}

// OutboxInspector is an optional interface of an Outbox for operations
// (metrics, the reference server's status page).
type OutboxInspector interface {
	Stats(ctx context.Context) (OutboxStats, error)
	DeadLetters(ctx context.Context) ([]*SyncJob, error)
}

// AliveStore is an optional interface of a StateStore that remembers when
// the engine last ran: the engine marks it alive every AliveEvery while
// running (and when it stops), and at the next start hands the time to a
// Backfiller source, which looks up what happened meanwhile.
type AliveStore interface {
	MarkAlive(ctx context.Context, t time.Time) error
	// LastAlive returns the time last marked, or the zero time.
	LastAlive(ctx context.Context) (time.Time, error)
}

// JobSaver is an optional interface of a Store whose records and jobs
// share transactions. SaveConversationWithJobs saves rec and puts jobs in
// one atomic write (Put's semantics for each job). The engine uses it when
// a leg is done: its record then says the leg is queued exactly when its
// job is in the outbox, also across a crash (with a Put and a save one
// after the other, a crash between them left a job the record did not
// know of, and the leg was queued again after the restart), and a
// wrap-up costs one commit instead of two. A durable Store should
// implement it: without it, a leg queued again that way is delivered
// again as a first try (SyncJob.Tries 1), which skips the sink's
// already-written checks.
type JobSaver interface {
	SaveConversationWithJobs(ctx context.Context, rec *ConvRecord, jobs []*SyncJob) error
}

// Store is a StateStore and an Outbox, as one durable backend provides them.
type Store interface {
	StateStore
	Outbox
}

// MemoryStore is an in-memory Store: the default, for tests and for
// deployments that accept losing pending syncs on a crash (package syncmap
// has a durable one). The zero value is ready to use.
type MemoryStore struct {
	mu sync.Mutex
	// convs holds each record encoded (encodeRecord): one allocation per
	// conversation instead of a deep copy's dozen.
	convs map[string]storedConv
	jobs  map[string]*SyncJob
	dead  map[string]*SyncJob
	alive time.Time
}

var (
	_ Store           = (*MemoryStore)(nil)
	_ JobSaver        = (*MemoryStore)(nil)
	_ AliveStore      = (*MemoryStore)(nil)
	_ OutboxInspector = (*MemoryStore)(nil)
)

type storedConv struct {
	done    bool
	updated int64 // Unix ns
	b       []byte
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{} }

// LoadConversation implements StateStore.
func (s *MemoryStore) LoadConversation(_ context.Context, id string) (*ConvRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.convs[id]
	if !ok {
		return nil, ErrNotFound
	}
	rec, err := decodeRecord(r.b)
	if err != nil {
		return nil, fmt.Errorf("cti: memory store: conversation %s: %w", id, err)
	}
	return rec, nil
}

// encBufs recycles the buffers records are encoded into before they are
// copied into the store (a stack buffer would escape).
var encBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// SaveConversation implements StateStore.
func (s *MemoryStore) SaveConversation(ctx context.Context, rec *ConvRecord) error {
	return s.SaveConversationWithJobs(ctx, rec, nil)
}

// SaveConversationWithJobs implements JobSaver.
func (s *MemoryStore) SaveConversationWithJobs(_ context.Context, rec *ConvRecord, jobs []*SyncJob) error {
	scratch := encBufs.Get().(*[]byte)
	enc := appendRecord((*scratch)[:0], rec)
	var cs []*SyncJob
	if len(jobs) > 0 {
		cs = make([]*SyncJob, len(jobs))
		for i, j := range jobs {
			cs[i] = j.Clone()
		}
	}
	s.mu.Lock() // one lock over both: no reader sees the record without its jobs
	if s.convs == nil {
		s.convs = map[string]storedConv{}
	}
	// The previous encoding is overwritten when the new one fits (nothing
	// else refers to it: Load copies out under s.mu): one allocation per
	// conversation rather than one per save.
	b := s.convs[rec.ID].b
	if cap(b) >= len(enc) {
		b = append(b[:0], enc...)
	} else {
		b = slices.Clone(enc)
	}
	s.convs[rec.ID] = storedConv{done: rec.Done, updated: rec.UpdatedAt.UnixNano(), b: b}
	if len(cs) > 0 && s.jobs == nil {
		s.jobs = map[string]*SyncJob{}
	}
	for _, c := range cs {
		s.jobs[c.Key] = c
	}
	s.mu.Unlock()
	if cap(enc) <= 64<<10 {
		*scratch = enc[:0]
		encBufs.Put(scratch)
	}
	return nil
}

// MarkAlive implements AliveStore.
func (s *MemoryStore) MarkAlive(_ context.Context, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alive = t
	return nil
}

// LastAlive implements AliveStore.
func (s *MemoryStore) LastAlive(context.Context) (time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.alive, nil
}

// OpenConversations implements StateStore.
func (s *MemoryStore) OpenConversations(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, r := range s.convs {
		if !r.done {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// PruneConversations implements StateStore.
func (s *MemoryStore) PruneConversations(_ context.Context, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, r := range s.convs {
		if r.done && r.updated < before.UnixNano() {
			delete(s.convs, id)
			n++
		}
	}
	return n, nil
}

// Put implements Outbox.
func (s *MemoryStore) Put(_ context.Context, job *SyncJob) error {
	c := job.Clone()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.jobs == nil {
		s.jobs = map[string]*SyncJob{}
	}
	s.jobs[job.Key] = c
	return nil
}

// Due implements Outbox.
func (s *MemoryStore) Due(_ context.Context, now time.Time, limit int) ([]*SyncJob, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var due []*SyncJob
	var next time.Time
	for _, j := range s.jobs {
		if j.NextAttempt.After(now) {
			if next.IsZero() || j.NextAttempt.Before(next) {
				next = j.NextAttempt
			}
			continue
		}
		due = append(due, j)
	}
	slices.SortFunc(due, func(a, b *SyncJob) int {
		return cmp.Or(a.EnqueuedAt.Compare(b.EnqueuedAt), cmp.Compare(a.Key, b.Key))
	})
	if limit > 0 && len(due) > limit {
		due = due[:limit]
	}
	for i := range due {
		due[i] = due[i].Clone()
	}
	return due, next, nil
}

// Ack implements Outbox.
func (s *MemoryStore) Ack(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.jobs, key)
	return nil
}

// Bury implements Outbox.
func (s *MemoryStore) Bury(_ context.Context, job *SyncJob, reason string) error {
	c := job.Clone()
	c.LastError = reason
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.jobs, job.Key)
	if s.dead == nil {
		s.dead = map[string]*SyncJob{}
	}
	s.dead[job.Key] = c
	return nil
}

// Stats implements OutboxInspector.
func (s *MemoryStore) Stats(context.Context) (OutboxStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return OutboxStats{Pending: len(s.jobs), Dead: len(s.dead)}, nil
}

// DeadLetters implements OutboxInspector.
func (s *MemoryStore) DeadLetters(context.Context) ([]*SyncJob, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := slices.Sorted(maps.Keys(s.dead))
	out := make([]*SyncJob, 0, len(keys))
	for _, k := range keys {
		out = append(out, s.dead[k].Clone())
	}
	return out, nil
}
