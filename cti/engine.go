package cti

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

const nShards = 64

// Engine turns conversation snapshots into screen pops and syncs.
//
// It derives each agent leg's lifecycle from the snapshots a Source
// delivers (duplicated, out of order, coalesced), and on each transition
// does what the leg's rule says: identify the customer, decide, pop for the
// agent; after the wrap-up, hand the leg to the Sink through the outbox,
// exactly once. Work for one conversation is serialized; conversations run
// in parallel and never wait for each other.
//
// Build it with NewEngine and call Run once.
type Engine struct {
	src      Source
	rules    Rules
	matcher  Matcher
	strategy Strategy
	popper   Popper
	dir      Directory
	chooser  Chooser
	sink     Sink
	batcher  BatchSink
	enricher Enricher
	state    StateStore
	outbox   Outbox
	jobSaver JobSaver // the state store, when it saves a record with its jobs atomically
	log      *slog.Logger
	hooks    []Hooks
	timing   Timing
	retry    RetryPolicy
	syncConc int
	batch    int
	// batchWait: how long a due job waits for others to share its batch.
	batchWait time.Duration

	seed   maphash.Seed
	shards [nShards]shard
	// epoch is when the engine was built: conversations keep their times
	// as durations since (monotonic), 8 bytes each instead of 24.
	epoch time.Time

	life    sync.RWMutex // guards started, running; held (R) while spawning workers
	started bool
	running bool
	ctx     context.Context // Run's work context, set before running
	workers sync.WaitGroup

	// Conversations' steps run on pooled worker goroutines: a worker that
	// drained its conversation waits up to workerKeepalive on idle for the
	// next one to activate, so an activation does not pay for a new
	// goroutine and growing its stack again (~5% of an engine step).
	idle     chan *conv    // unbuffered: a send succeeds only if a worker waits
	quit     chan struct{} // closed when Run stops: idle workers exit
	idleN    atomic.Int32  // workers waiting on idle
	nWorkers atomic.Int32  // worker goroutines, busy or idle
	busy     atomic.Int32  // conversations with a step queued or running
	// lastAccept is when HandleConversation last took a snapshot (mono).
	lastAccept atomic.Int64

	delivering atomic.Int32 // sync deliveries in flight
	// retrying holds, by record key (jobKeys), the jobs of each Zendesk
	// record waiting out a retry backoff and when they were queued: a
	// later job of the record waits for them (units).
	retryMu  sync.Mutex
	retrying map[string]map[string]time.Time

	timers timerQueue
	wake   chan struct{}
	// reserved are the keys of the jobs this run queued whose first try
	// (recorded with the job, Tries 1) has not started.
	resMu    sync.Mutex
	reserved map[string]struct{}
}

type shard struct {
	mu   sync.Mutex
	m    map[string]*conv
	done map[string]time.Time // finished conversations: late snapshots are dropped
}

// conv is the engine's live view of one conversation. The mailbox fields
// are guarded by the shard's mutex; the rest belong to the one worker
// goroutine that runs at a time for the conversation.
type conv struct {
	id string

	// mailbox (shard.mu)
	pending *Conversation
	since   int64 // when the oldest pending snapshot arrived (Engine.mono)
	msgs    []message
	lastIn  int64 // Engine.mono
	running bool
	// finished is written by the worker and read under shard.mu when it exits.
	finished bool

	// worker-owned (rec is nil until the first step loads or makes it)
	stored bool // the record is in the state store
	dirty  bool // the record changed: save it at the end of the step
	// lazy: the record changed only in ways a restart re-derives from
	// Genesys (a leg connected or disconnected, nothing popped): saved
	// with the next save, or when Run returns (flushLazy).
	lazy bool
	// resumed: the record came from the state store (the conversation
	// was known before this run, or forgotten while idle): its phases are
	// written at once, so that a leg re-derived after a crash does not
	// wait for its wrap-up from every restart again.
	resumed bool
	early   bool  // identifyEarly ran
	used    uint8 // inLR, inWho, inCand
	snap    *Conversation
	arena   string // the storage of snap's strings (see pack)
	rec     *ConvRecord
	// legs holds the leg records, in the order first seen; rec.Legs is
	// nil but while the record is saved (see save).
	legs    []legSlot
	timerAt int64 // Unix ns; 0 when none
	// jobs are the sync jobs of legs done in this step, put with the
	// record by the next save (JobSaver); kept until that succeeds.
	jobs []pendingJob
	// searchRule is the rule whose search found rec.Candidates, when
	// that search ran in this run (early, or for another leg's pop).
	searchRule *Rule

	// Storage for snap, rec, the first leg's agent leg, leg record and
	// agent, and a single candidate, allocated with the conv: one
	// long-lived object per conversation instead of seven (each allocated
	// amid the decoder's short-lived garbage, where it would pin a span).
	inline struct {
		snap  Conversation
		rec   ConvRecord
		agent [1]AgentLeg
		lr    LegRecord
		who   Agent
		cand  [1]Record
		legs  [1]legSlot
	}
}

// legSlot is one leg record of a conversation, by leg id.
type legSlot struct {
	id string
	lr *LegRecord
}

// leg returns the record of leg id, or nil.
func (cv *conv) leg(id string) *LegRecord {
	for i := range cv.legs {
		if cv.legs[i].id == id {
			return cv.legs[i].lr
		}
	}
	return nil
}

// addLeg adds the record of a leg not yet known.
func (cv *conv) addLeg(id string, lr *LegRecord) {
	if cv.legs == nil {
		cv.legs = cv.inline.legs[:0:1]
	}
	cv.legs = append(cv.legs, legSlot{id, lr})
}

// takeLegs moves the loaded record's legs into cv.legs, in id order.
func (cv *conv) takeLegs() {
	for _, id := range slices.Sorted(maps.Keys(cv.rec.Legs)) {
		if lr := cv.rec.Legs[id]; lr != nil {
			cv.addLeg(id, lr)
		}
	}
	cv.rec.Legs = nil
}

// legMaps recycles the maps the records are saved with: a conversation
// keeps its legs in a slice (a map is two more long-lived objects).
var legMaps = sync.Pool{New: func() any { return map[string]*LegRecord{} }}

// save saves the conversation's record, its legs in rec.Legs meanwhile
// (a StateStore does not retain the record).
func (e *Engine) save(ctx context.Context, cv *conv) error {
	m := legMaps.Get().(map[string]*LegRecord)
	for _, l := range cv.legs {
		m[l.id] = l.lr
	}
	cv.rec.Legs = m
	var err error
	if len(cv.jobs) > 0 {
		jobs := make([]*SyncJob, len(cv.jobs))
		for i, p := range cv.jobs {
			jobs[i] = p.job
		}
		err = e.jobSaver.SaveConversationWithJobs(ctx, cv.rec, jobs)
	} else {
		err = e.state.SaveConversation(ctx, cv.rec)
	}
	cv.rec.Legs = nil
	clear(m)
	legMaps.Put(m)
	if err == nil {
		cv.lazy = false
	}
	if err == nil && len(cv.jobs) > 0 {
		for _, p := range cv.jobs {
			e.queued(cv.id, p.job, p.userID)
		}
		cv.jobs = nil
	}
	return err
}

// pendingJob is a leg's sync job waiting for the conversation's next save.
type pendingJob struct {
	job    *SyncJob
	userID string
}

const (
	inLR uint8 = 1 << iota
	inWho
	inCand
)

// keepCandidates returns the candidates to keep in the record: a single
// one is copied inline (once).
func (cv *conv) keepCandidates(rs []Record) []Record {
	if len(rs) != 1 || cv.used&inCand != 0 {
		return rs
	}
	cv.used |= inCand
	cv.inline.cand[0] = rs[0]
	return cv.inline.cand[:1:1]
}

// newLR returns a new leg record (the inline one first).
func (cv *conv) newLR(lr LegRecord) *LegRecord {
	if cv.used&inLR == 0 {
		cv.used |= inLR
		cv.inline.lr = lr
		return &cv.inline.lr
	}
	return &lr
}

// newAgent returns a new Agent (the inline one first).
func (cv *conv) newAgent(a Agent) *Agent {
	if cv.used&inWho == 0 {
		cv.used |= inWho
		cv.inline.who = a
		return &cv.inline.who
	}
	return &a
}

// keep takes snap, the engine's first snapshot of the conversation, into
// the inline storage.
func (cv *conv) keep(snap *Conversation) {
	cv.inline.snap = *snap
	cv.snap = &cv.inline.snap
}

// settle packs the kept snapshot (see pack) and moves a single agent leg
// into the inline storage.
func (cv *conv) settle() {
	c := cv.snap
	cv.arena = c.pack(cv.arena)
	if len(c.Agents) == 1 && &c.Agents[0] != &cv.inline.agent[0] {
		cv.inline.agent[0] = c.Agents[0]
		c.Agents = cv.inline.agent[:1:1]
	}
}

type message struct {
	tick   bool
	legID  string
	pick   *Record // nil: create new
	choose bool
	reply  chan chooseReply
}

type chooseReply struct {
	res PopResult
	err error
}

// NewEngine builds an engine reading snapshots from src and acting on
// rules. The rules are copied, defaulted and validated; Matcher, Strategy,
// Popper and Directory are required when a rule pops something, a Sink
// always.
func NewEngine(src Source, rules *Rules, opts ...Option) (*Engine, error) {
	if src == nil {
		return nil, errors.New("cti: NewEngine: nil Source")
	}
	if rules == nil {
		return nil, errors.New("cti: NewEngine: nil Rules")
	}
	e := &Engine{
		src:      src,
		timing:   DefaultTiming,
		retry:    RetryPolicy{Retryable: IsRetryable, Backoff: DefaultBackoff, EnrichAttempts: 3},
		syncConc: 8,
		batch:    100,
		seed:     maphash.MakeSeed(),
		epoch:    time.Now(),
		wake:     make(chan struct{}, 1),
		idle:     make(chan *conv),
		quit:     make(chan struct{}),
	}
	e.rules = *rules
	e.rules.Rules = slices.Clone(rules.Rules)
	e.rules.ApplyDefaults()
	if err := e.rules.Validate(); err != nil {
		return nil, fmt.Errorf("cti: invalid rules: %w", err)
	}
	for _, o := range opts {
		if err := o(e); err != nil {
			return nil, err
		}
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.state == nil {
		m := NewMemoryStore()
		e.state, e.outbox = m, m
	}
	if js, ok := e.state.(JobSaver); ok { // WithStore: the state store is the outbox
		e.jobSaver = js
	}
	if e.enricher == nil {
		if en, ok := src.(Enricher); ok {
			e.enricher = en
		}
	}
	if bs, ok := e.sink.(BatchSink); ok {
		e.batcher = bs
	}
	var missing []string
	if e.sink == nil {
		missing = append(missing, "Sink (WithSink)")
	}
	// Every rule counts: one that pops needs a strategy, a popper and the
	// directory; one that searches at a pop or early needs a matcher.
	var pops, searches bool
	for i := range e.rules.Rules {
		r := &e.rules.Rules[i]
		pops = pops || r.Popup != PopupNone
		searches = searches || len(r.Identify) > 0 && (r.Popup != PopupNone || r.IdentifyEarly)
	}
	if searches && e.matcher == nil {
		missing = append(missing, "Matcher (WithMatcher)")
	}
	if pops {
		if e.strategy == nil {
			missing = append(missing, "Strategy (WithStrategy)")
		}
		if e.popper == nil {
			missing = append(missing, "Popper (WithPopper)")
		}
		if e.dir == nil {
			missing = append(missing, "Directory (WithDirectory)")
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("cti: NewEngine: missing %v", missing)
	}
	for i := range e.shards {
		e.shards[i].m = map[string]*conv{}
		e.shards[i].done = map[string]time.Time{}
	}
	e.timers.wake = make(chan struct{}, 1)
	return e, nil
}

// Rules returns the engine's rules, defaults applied. Do not modify.
func (e *Engine) Rules() *Rules { return &e.rules }

// Run runs the engine until ctx is done: the source, the per-conversation
// workers, the timers and the sync dispatcher. It returns nil once ctx is
// done and everything has stopped (in-flight syncs get Timing.Drain to
// finish; unfinished ones stay in the outbox), or the first fatal error
// (the source failing for good). Every goroutine it starts has returned
// when it returns. Run may be called once.
func (e *Engine) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	e.life.Lock()
	if e.started {
		e.life.Unlock()
		return errors.New("cti: Engine.Run called twice")
	}
	e.started, e.running, e.ctx = true, true, gctx
	e.life.Unlock()

	if r, ok := e.src.(Resumer); ok {
		ids, err := e.state.OpenConversations(ctx)
		if err != nil {
			e.fail(ErrorNotice{Stage: "load", Err: err})
		} else if len(ids) > 0 {
			e.log.Info("resuming conversations tracked before restart", "count", len(ids))
			r.Resume(ids)
		}
	}

	alive, _ := e.state.(AliveStore)
	if b, ok := e.src.(Backfiller); ok && alive != nil {
		since, err := alive.LastAlive(ctx)
		switch {
		case err != nil:
			e.fail(ErrorNotice{Stage: "load", Err: fmt.Errorf("when the engine last ran: %w", err)})
		case !since.IsZero():
			// A finished conversation is remembered for Timing.Tombstone:
			// looking back further would find conversations synced before
			// the downtime whose records are gone, and sync them again.
			if oldest := time.Now().Add(-e.timing.Tombstone + backfillMargin); since.Before(oldest) {
				e.log.Warn("the engine last ran longer ago than it remembers finished conversations; looking back that far only",
					"last_ran", since, "from", oldest, "tombstone", e.timing.Tombstone)
				since = oldest
			}
			e.log.Info("looking up conversations since the engine last ran", "since", since)
			b.Backfill(since)
		}
	}

	syncCtx, cancelSync := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelSync()
	g.Go(func() error {
		err := e.src.Run(gctx, e)
		if err != nil && gctx.Err() == nil {
			return fmt.Errorf("cti: source: %w", err)
		}
		return nil
	})
	g.Go(func() error { return e.timerLoop(gctx) })
	if alive != nil {
		g.Go(func() error { e.aliveLoop(gctx, alive); return nil })
	}
	g.Go(func() error { return e.dispatchLoop(gctx, syncCtx, cancelSync) })
	err := g.Wait()

	e.life.Lock()
	e.running = false
	e.life.Unlock()
	close(e.quit) // no activation can come now: idle workers exit
	e.workers.Wait()
	e.flushLazy(context.WithoutCancel(ctx))
	if err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// flushLazy saves the records with lazy changes, once no step runs: a
// clean stop loses nothing a restart would have to re-derive. The saves
// run side by side (a durable store commits them together).
func (e *Engine) flushLazy(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	var lazy []*conv
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		for _, cv := range sh.m {
			if lazyRecord(cv) {
				lazy = append(lazy, cv)
			}
		}
		sh.mu.Unlock()
	}
	if len(lazy) == 0 {
		return
	}
	parallel(len(lazy), func(i int) {
		if ctx.Err() != nil {
			return
		}
		if err := e.save(ctx, lazy[i]); err != nil {
			e.fail(ErrorNotice{ConversationID: lazy[i].id, Stage: "save", Err: err})
		}
	})
}

// lazyRecord reports whether cv's record has changes only in memory.
func lazyRecord(cv *conv) bool { return cv.lazy && cv.rec != nil && !cv.finished }

// flushTimeout bounds flushLazy.
const flushTimeout = 10 * time.Second

// backfillMargin keeps a restart's look-back this far inside
// Timing.Tombstone, for the source's second look after the analytics lag
// and the prune's timing.
const backfillMargin = 10 * time.Minute

// AliveEvery is how often a running engine marks its AliveStore alive:
// after a crash, the next run looks back that much further than needed at
// most.
const AliveEvery = 30 * time.Second

// aliveLoop marks the store alive every AliveEvery, and once more when ctx
// is done. Not at once: a run that dies within AliveEvery of its start
// leaves the previous mark, so the next run still looks back over the
// earlier downtime, whose look-up may not have finished. A source with
// look-ups still to do (PendingLookups) holds the mark back to the oldest
// one's start.
func (e *Engine) aliveLoop(ctx context.Context, st AliveStore) {
	pending, _ := e.src.(PendingLookups)
	mark := func(ctx context.Context) {
		t := time.Now()
		if pending != nil {
			if p := pending.PendingSince(); !p.IsZero() && p.Before(t) {
				t = p
			}
		}
		if err := st.MarkAlive(ctx, t); err != nil && ctx.Err() == nil {
			e.fail(ErrorNotice{Stage: "save", Err: fmt.Errorf("marking the engine alive: %w", err)})
		}
	}
	t := time.NewTicker(AliveEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			mark(ctx)
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			mark(sctx)
			cancel()
			return
		}
	}
}

// mono returns t as a duration since the engine's epoch (0 for the zero
// time).
func (e *Engine) mono(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(int64(t.Sub(e.epoch)), 1)
}

// at is the inverse of mono.
func (e *Engine) at(d int64) time.Time {
	if d == 0 {
		return time.Time{}
	}
	return e.epoch.Add(time.Duration(d))
}

func (e *Engine) shard(id string) *shard {
	return &e.shards[maphash.String(e.seed, id)%nShards]
}

// HandleConversation implements Handler: it queues snapshot c for its
// conversation's worker and returns at once. It takes ownership of c.
//
// When c wakes the conversation's worker, the caller (a source's reading
// goroutine) yields its P first, unless snapshots are coming in a burst:
// the Go scheduler would otherwise run the woken worker on the caller's
// P only once the caller blocks, after it has read and decoded whatever
// frames follow — the reader is moved to the global queue, where an idle
// P picks it up at once. On the pop's path this was 0.1–0.15 ms at p50
// (figure 2, BENCHMARKS.md). In a burst (the previous snapshot came less
// than burstGap before) the reader has more to hand over, other Ps take
// the workers, and yielding each time would interleave the workers'
// long-lived allocations with the reader's garbage in one P's spans:
// 1 KB more heap per conversation (figure 4).
func (e *Engine) HandleConversation(_ context.Context, c *Conversation) error {
	now := time.Now()
	at := e.mono(now)
	prev := e.lastAccept.Swap(at)
	started, err := e.accept(c, now)
	if started && at-prev >= int64(burstGap) {
		runtime.Gosched()
	}
	return err
}

// burstGap is the gap between two snapshots under which HandleConversation
// takes them for a burst and does not yield.
const burstGap = 100 * time.Microsecond

// accept is HandleConversation but the yield: it reports whether it
// started the conversation's worker.
func (e *Engine) accept(c *Conversation, now time.Time) (started bool, err error) {
	if c == nil || c.ID == "" {
		return false, fmt.Errorf("%w: snapshot without a conversation id", ErrInvalid)
	}
	if c.ObservedAt.IsZero() {
		c.ObservedAt = now
	}
	e.life.RLock()
	defer e.life.RUnlock()
	if !e.running {
		return false, ErrClosed
	}
	sh := e.shard(c.ID)
	sh.mu.Lock()
	if _, done := sh.done[c.ID]; done {
		sh.mu.Unlock()
		e.each(func(h *Hooks) {
			if h.Duplicate != nil {
				h.Duplicate(c.ID)
			}
		})
		return false, nil
	}
	cv := sh.m[c.ID]
	if cv == nil {
		cv = &conv{id: c.ID}
		sh.m[c.ID] = cv
	}
	if cv.pending == nil {
		cv.pending, cv.since = c, e.mono(c.ObservedAt)
	} else {
		cv.pending.Merge(c)
	}
	cv.lastIn = e.mono(now)
	start := !cv.running
	cv.running = true
	sh.mu.Unlock()
	if start {
		e.activate(cv)
	}
	return start, nil
}

// post queues a message for a conversation already known to the engine.
func (e *Engine) post(id string, m message) error {
	e.life.RLock()
	defer e.life.RUnlock()
	if !e.running {
		return ErrClosed
	}
	sh := e.shard(id)
	sh.mu.Lock()
	cv := sh.m[id]
	if cv == nil {
		sh.mu.Unlock()
		return fmt.Errorf("conversation %s: %w", id, ErrNotFound)
	}
	cv.msgs = append(cv.msgs, m)
	start := !cv.running
	cv.running = true
	sh.mu.Unlock()
	if start {
		e.activate(cv)
	}
	return nil
}

// Choose answers a Choice: the agent on leg legID of conversation
// conversationID picked pick, one of the offered candidates, or asked for a
// new record (pick nil; allowed when Choice.CanCreate). The engine pops it
// and remembers it for the sync. It returns what was shown.
func (e *Engine) Choose(ctx context.Context, conversationID, legID string, pick *Record) (PopResult, error) {
	reply := make(chan chooseReply, 1)
	if pick != nil {
		p := *pick
		pick = &p
	}
	if err := e.post(conversationID, message{choose: true, legID: legID, pick: pick, reply: reply}); err != nil {
		return PopResult{}, err
	}
	select {
	case r := <-reply:
		return r.res, r.err
	case <-ctx.Done():
		return PopResult{}, ctx.Err()
	}
}

// Worker pool bounds: how long a worker waits for another conversation,
// and how many may wait at once (a burst's extra workers exit).
const (
	workerKeepalive = 5 * time.Second
	maxIdleWorkers  = 256
)

// activate runs cv's steps on an idle worker, or on a new one. The caller
// holds e.life (R) with e.running set, and has just set cv.running.
func (e *Engine) activate(cv *conv) {
	e.busy.Add(1)
	select {
	case e.idle <- cv:
	default:
		e.workers.Add(1)
		e.nWorkers.Add(1)
		go e.worker(cv)
	}
}

// worker runs cv's steps, then waits for the next conversation to
// activate, until workerKeepalive passes idle or Run stops.
func (e *Engine) worker(cv *conv) {
	defer e.workers.Done()
	defer e.nWorkers.Add(-1)
	var t *time.Timer
	for {
		e.work(cv)
		if e.idleN.Add(1) > maxIdleWorkers {
			e.idleN.Add(-1)
			return
		}
		if t == nil {
			t = time.NewTimer(workerKeepalive)
		} else {
			t.Reset(workerKeepalive)
		}
		var next *conv
		select {
		case next = <-e.idle:
		case <-t.C:
		case <-e.quit:
		}
		e.idleN.Add(-1)
		if next == nil {
			return
		}
		cv = next
	}
}

// work runs cv's steps until its mailbox is empty.
func (e *Engine) work(cv *conv) {
	sh := e.shard(cv.id)
	for {
		sh.mu.Lock()
		snap, msgs, since := cv.pending, cv.msgs, cv.since
		cv.pending, cv.msgs = nil, nil
		if snap == nil && len(msgs) == 0 {
			cv.running = false
			if cv.finished {
				delete(sh.m, cv.id)
				sh.done[cv.id] = time.Now()
			}
			sh.mu.Unlock()
			e.busy.Add(-1)
			return
		}
		sh.mu.Unlock()
		if !e.step(cv, snap, msgs, e.at(since)) {
			// The state store could not be read: the step goes back in
			// the mailbox, for the timer step set (or the next snapshot).
			sh.mu.Lock()
			if snap != nil {
				if cv.pending != nil {
					snap.Merge(cv.pending)
				}
				cv.pending, cv.since = snap, since
			}
			cv.msgs = append(msgs, cv.msgs...)
			cv.running = false
			sh.mu.Unlock()
			e.busy.Add(-1)
			return
		}
	}
}

// loadRetry is how long a conversation waits before its record is read
// again after the state store failed to read it.
const loadRetry = time.Second

// Stats is a point-in-time view of the engine's load, for metrics and
// tests.
type Stats struct {
	// Busy is the number of conversations with a step queued or running
	// (0: every snapshot and message received so far has been acted on).
	Busy int
	// Workers is the number of worker goroutines, busy or idle (idle ones
	// exit after a few seconds, and when Run returns).
	Workers int
	// Deliveries is the number of sync deliveries in flight.
	Deliveries int
}

// Stats returns the engine's current load.
func (e *Engine) Stats() Stats {
	return Stats{Busy: int(e.busy.Load()), Workers: int(e.nWorkers.Load()), Deliveries: int(e.delivering.Load())}
}

// step acts on a conversation's mail. It returns false, having done
// nothing, when the conversation's record could not be read: acting
// without it could pop a leg again, or sync one twice.
func (e *Engine) step(cv *conv, snap *Conversation, msgs []message, since time.Time) bool {
	ctx := e.ctx
	if cv.rec == nil {
		rec, err := e.state.LoadConversation(ctx, cv.id)
		switch {
		case err == nil:
			cv.inline.rec = *rec
			cv.rec = &cv.inline.rec
			cv.stored, cv.resumed = true, true
		case errors.Is(err, ErrNotFound):
		default:
			if ctx.Err() == nil {
				e.fail(ErrorNotice{ConversationID: cv.id, Stage: "load", Err: err})
				e.timers.add(time.Now().Add(loadRetry), cv.id)
			}
			return false
		}
		if cv.rec == nil {
			cv.inline.rec = ConvRecord{ID: cv.id}
			cv.rec = &cv.inline.rec
		}
		cv.takeLegs()
		if cv.rec.Done {
			cv.finished = true
		}
	}
	if cv.finished {
		for _, m := range msgs {
			if m.reply != nil {
				m.reply <- chooseReply{err: ErrNoChoice}
			}
		}
		return true
	}
	if snap != nil {
		if cv.snap == nil {
			cv.keep(snap)
		} else {
			cv.snap.Merge(snap)
		}
		cv.settle()
	}
	for _, m := range msgs {
		if m.choose {
			res, err := e.answer(ctx, cv, m.legID, m.pick)
			m.reply <- chooseReply{res, err}
		}
	}
	if cv.snap == nil {
		return true
	}
	if since.IsZero() {
		since = time.Now()
	}
	e.evaluate(ctx, cv, since)
	return true
}

// evaluate derives each leg's transitions from the merged snapshot and acts
// on them, then persists what changed.
func (e *Engine) evaluate(ctx context.Context, cv *conv, since time.Time) {
	c, rec := cv.snap, cv.rec
	now := time.Now()
	if !cv.stored && !c.Ended() {
		// Record the conversation as open before acting on it: a pop can
		// take long, and if the process dies meanwhile, the next one must
		// know the conversation to resume it (Resumer), or one that ended
		// during the pop would never be synced.
		rec.UpdatedAt = now
		if err := e.save(ctx, cv); err != nil {
			e.fail(ErrorNotice{ConversationID: cv.id, Stage: "save", Err: err})
		} else {
			cv.stored = true
		}
	}
	if !cv.early && !rec.Identified && len(c.Agents) == 0 && !c.Ended() {
		e.identifyEarly(ctx, cv)
	}
	var wake time.Time
	for i := range c.Agents {
		leg := &c.Agents[i]
		if leg.ID == "" {
			continue
		}
		lr := cv.leg(leg.ID)
		if lr == nil {
			lr = cv.newLR(LegRecord{UserID: leg.UserID})
			cv.addLeg(leg.ID, lr)
			cv.dirty = true
		}
		if !lr.Matched {
			if r := e.rules.Match(c, leg); r != nil {
				lr.Rule = r.Name
			}
			lr.Matched = true
			cv.dirty = true
		}
		rule := e.rules.Rule(lr.Rule)
		target := leg.Phase()
		for p := lr.Phase + 1; p <= target; p++ {
			if !e.enter(ctx, cv, leg, lr, rule, p, target, since, now) {
				break
			}
			lr.Phase = p
			if (p == PhaseConnected || p == PhaseDisconnected) && !cv.resumed {
				// Not worth a write of its own: after a crash the resumed
				// conversation connects and disconnects the leg again
				// (lazy). A pop on entering marked the record dirty.
				cv.lazy = true
			} else {
				cv.dirty = true
			}
		}
		if lr.Phase == PhaseDisconnected {
			due := lr.DisconnectedAt.Add(e.timing.Grace)
			switch {
			case target == PhaseDone:
				// Wrapped up, but entering done failed (the job could not
				// be queued): try again shortly.
				due = now.Add(time.Second)
			case leg.WrapupExpected:
				due = lr.DisconnectedAt.Add(e.timing.WrapupTimeout)
			}
			if !now.Before(due) {
				if leg.WrapupExpected {
					e.log.Warn("wrap-up never arrived: syncing without it", "conversation", cv.id, "leg", leg.ID, "rule", lr.Rule, "waited", e.timing.WrapupTimeout)
				}
				if e.enter(ctx, cv, leg, lr, rule, PhaseDone, PhaseDone, since, now) {
					lr.Phase = PhaseDone
					cv.dirty = true
				}
			}
			if lr.Phase == PhaseDisconnected {
				if !now.Before(due) { // enqueue failed: try again shortly
					due = now.Add(time.Second)
				}
				if wake.IsZero() || due.Before(wake) {
					wake = due
				}
			}
		}
	}
	if c.Ended() && e.settled(cv) {
		rec.Done = true
		cv.finished = true
		cv.dirty = true
	}
	if !wake.IsZero() && wake.UnixNano() != cv.timerAt {
		cv.timerAt = wake.UnixNano()
		e.timers.add(wake, cv.id)
	}
	if cv.dirty {
		rec.UpdatedAt = now
		if err := e.save(ctx, cv); err != nil {
			if len(cv.jobs) == 0 {
				e.fail(ErrorNotice{ConversationID: cv.id, Stage: "save", Err: err})
			} else {
				// The done legs' jobs are not in the outbox: keep them and
				// the conversation, and save again shortly.
				for _, p := range cv.jobs {
					e.fail(ErrorNotice{ConversationID: cv.id, LegID: p.job.LegID, Rule: p.job.Rule, Stage: "enqueue", Err: err})
				}
				cv.finished = false
				e.timers.add(now.Add(time.Second), cv.id)
			}
		} else {
			cv.dirty, cv.stored = false, true
		}
	}
}

// searchCovers reports whether rule a's search finds what rule b's would:
// the same identities, with open tickets if b wants them.
func searchCovers(a, b *Rule) bool {
	return slices.Equal(a.Identify, b.Identify) && (a.WantsOpenTickets() || !b.WantsOpenTickets())
}

// identifyEarly identifies the customer of a conversation no agent is on
// yet, when the rule for its queue says so (Rule.IdentifyEarly). Once per
// conversation; on a failure the pop identifies again.
func (e *Engine) identifyEarly(ctx context.Context, cv *conv) {
	rule := e.rules.Match(cv.snap, nil)
	if rule == nil || !rule.IdentifyEarly {
		return
	}
	cv.early = true
	if _, _, err := e.cachedIdentify(ctx, cv, rule); err != nil {
		e.fail(ErrorNotice{ConversationID: cv.id, Rule: rule.Name, Stage: "match", Err: fmt.Errorf("early: %w", err)})
	}
}

// settled reports whether every leg the engine saw is done (wrapped up, or
// its grace period over), rule or not: finishing a conversation as soon as
// a leg without a rule hung up made its wrapup_done event depend on
// whether the wrap-up update came in the same step (a flaky test showed it).
func (e *Engine) settled(cv *conv) bool {
	for i := range cv.snap.Agents {
		leg := &cv.snap.Agents[i]
		lr := cv.leg(leg.ID)
		if lr == nil || leg.Phase() == PhaseNone {
			continue
		}
		if lr.Phase == PhaseDone {
			continue
		}
		return false
	}
	return true
}

// enter acts on leg reaching phase p (target is where the leg is headed in
// this step). It returns false when the leg must stay before p and try
// again later.
func (e *Engine) enter(ctx context.Context, cv *conv, leg *AgentLeg, lr *LegRecord, rule *Rule, p, target Phase, since, now time.Time) bool {
	live := target < PhaseDisconnected // too late to pop a leg that is already over
	switch p {
	case PhaseOffered:
		e.emit(cv, leg, lr, EventOffered, now)
		if rule != nil && live && rule.PopOn == PopOnAlerting && !lr.PopDone {
			e.pop(ctx, cv, leg, lr, rule, since)
		}
	case PhaseConnected:
		e.emit(cv, leg, lr, EventConnected, now)
		// Pop when the rule says so, or try once more if the alerting pop failed.
		if rule != nil && live && !lr.PopDone && (rule.PopOn == PopOnConnected || lr.PopTries == 1) {
			e.pop(ctx, cv, leg, lr, rule, since)
		}
	case PhaseDisconnected:
		if leg.Transferred() {
			e.emit(cv, leg, lr, EventTransferred, now)
		}
		e.emit(cv, leg, lr, EventDisconnected, now)
		lr.DisconnectedAt = now
	case PhaseDone:
		if rule != nil && !lr.Queued {
			if !e.enqueue(ctx, cv, leg, lr, rule, now) {
				return false
			}
		}
		e.emit(cv, leg, lr, EventWrapupDone, now)
	}
	return true
}

func (e *Engine) emit(cv *conv, leg *AgentLeg, lr *LegRecord, t EventType, now time.Time) {
	if !slices.ContainsFunc(e.hooks, func(h Hooks) bool { return h.Event != nil }) {
		return
	}
	c := cv.snap.Clone()
	ev := Event{Type: t, ConversationID: cv.id, Rule: lr.Rule, Leg: *leg, Conversation: c, At: now}
	if l := c.Leg(leg.ID); l != nil {
		ev.Leg = *l // the clone's: its wrap-up is not the engine's, which pack rewrites
	}
	e.each(func(h *Hooks) {
		if h.Event != nil {
			h.Event(ev)
		}
	})
}

func (e *Engine) each(f func(*Hooks)) {
	for i := range e.hooks {
		f(&e.hooks[i])
	}
}

func (e *Engine) fail(n ErrorNotice) {
	e.log.LogAttrs(context.Background(), slog.LevelError, "ctikit: "+n.Stage+" failed",
		slog.String("conversation", n.ConversationID), slog.String("leg", n.LegID),
		slog.String("rule", n.Rule), slog.String("error", errString(n.Err)))
	e.each(func(h *Hooks) {
		if h.Error != nil {
			h.Error(n)
		}
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (e *Engine) agent(ctx context.Context, cv *conv, leg *AgentLeg, lr *LegRecord) (Agent, error) {
	if lr.Agent != nil {
		return *lr.Agent, nil
	}
	if e.dir == nil {
		return Agent{}, fmt.Errorf("no agent directory: %w", ErrUnknownAgent)
	}
	a, err := e.dir.Agent(ctx, leg)
	if err != nil {
		return Agent{}, err
	}
	lr.Agent = cv.newAgent(a)
	return a, nil
}

// identify tries the rule's identities in order and returns the first
// non-empty result.
func (e *Engine) identify(ctx context.Context, c *Conversation, rule *Rule, ids []Identity) (Result, Identity, error) {
	var first Identity
	for i, id := range ids {
		if i == 0 {
			first = id
		}
		res, err := e.matcher.Match(ctx, Query{Identity: id, WithOpenTickets: rule.WantsOpenTickets(), Conversation: c})
		if errors.Is(err, ErrNoMatch) {
			continue
		}
		if err != nil {
			return Result{}, id, fmt.Errorf("identify by %s: %w", id.Kind, err)
		}
		if len(res.Records) > 0 {
			return res, id, nil
		}
	}
	return Result{}, first, nil
}

func (e *Engine) pop(ctx context.Context, cv *conv, leg *AgentLeg, lr *LegRecord, rule *Rule, since time.Time) {
	lr.PopTries++
	cv.dirty = true
	n := PopNotice{ConversationID: cv.id, LegID: leg.ID, UserID: leg.UserID, Rule: rule.Name}
	defer func() {
		n.Latency = time.Since(since)
		e.each(func(h *Hooks) {
			if h.Pop != nil {
				h.Pop(n)
			}
		})
	}()
	if rule.Popup == PopupNone {
		lr.PopDone = true
		n.Decision = Decision{Action: ActionNone, Reason: "rule " + rule.Name + " pops nothing"}
		return
	}
	agent, err := e.agent(ctx, cv, leg, lr)
	if err != nil {
		n.Err = err
		if errors.Is(err, ErrUnknownAgent) {
			lr.PopDone = true // asking again will not help
		}
		e.fail(ErrorNotice{ConversationID: cv.id, LegID: leg.ID, Rule: rule.Name, Stage: "directory", Err: err})
		return
	}
	n.Agent = agent
	var dec Decision
	rec := cv.rec
	switch {
	case rec.Resolved != nil:
		dec = Decision{Action: ActionShow, Record: rec.Resolved, Reason: "the record popped earlier in this conversation"}
		n.Identity = rec.Identity
	default:
		if sr := cv.searchRule; sr != nil && sr != rule && !searchCovers(sr, rule) {
			// Identified under another rule that searches differently
			// (early, in the queue; or for a leg before a transfer to
			// another queue): search again, e.g. with open tickets.
			cv.rec.Identified, cv.searchRule = false, nil
		}
		res, id, err := e.cachedIdentify(ctx, cv, rule)
		n.Identity = id
		if err != nil {
			n.Err = err
			e.fail(ErrorNotice{ConversationID: cv.id, LegID: leg.ID, Rule: rule.Name, Stage: "match", Err: err})
			return
		}
		dec = e.strategy.Decide(DecideInput{Rule: rule, Conversation: cv.snap, Leg: leg, Identity: id, Result: res})
	}
	n.Decision = dec
	n.Result, n.Err = e.perform(ctx, cv, leg, lr, rule, agent, n.Identity, dec)
	if n.Err != nil {
		e.fail(ErrorNotice{ConversationID: cv.id, LegID: leg.ID, Rule: rule.Name, Stage: "pop", Err: n.Err})
	}
}

// cachedIdentify identifies the customer once per conversation: agents the
// conversation is transferred to reuse the result.
func (e *Engine) cachedIdentify(ctx context.Context, cv *conv, rule *Rule) (Result, Identity, error) {
	rec := cv.rec
	if rec.Identified {
		return Result{Records: rec.Candidates, More: rec.More}, rec.Identity, nil
	}
	ids := rule.Identities(cv.snap)
	res, id, err := e.identify(ctx, cv.snap, rule, ids)
	if err != nil {
		return res, id, err
	}
	if len(res.Records) == 0 && len(ids) < len(rule.Identify) {
		// Some of the rule's identities are not known yet (an attribute
		// the flow sets in the queue, say): nothing is settled, the next
		// pop or the sync searches again.
		return res, id, nil
	}
	rec.Identified, rec.Identity, rec.Candidates, rec.More = true, id, cv.keepCandidates(res.Records), res.More
	cv.searchRule = rule
	cv.dirty = true
	return res, id, nil
}

// perform carries out a decision for one leg and records the outcome.
func (e *Engine) perform(ctx context.Context, cv *conv, leg *AgentLeg, lr *LegRecord, rule *Rule, agent Agent, id Identity, dec Decision) (PopResult, error) {
	cv.dirty = true
	switch dec.Action {
	case ActionChoose:
		lr.Choosing, lr.Candidates = true, dec.Candidates
		ch := Choice{
			ConversationID: cv.id, LegID: leg.ID, Rule: rule.Name, Agent: agent, Leg: *leg,
			Candidates: dec.Candidates, More: cv.rec.More, CanCreate: rule.NoMatch != NoMatchNothing,
		}
		e.each(func(h *Hooks) {
			if h.Choice != nil {
				h.Choice(ch)
			}
		})
		if e.chooser == nil {
			lr.PopDone = true
			e.log.Warn("several records match but no Chooser is configured: nothing popped", "conversation", cv.id, "rule", rule.Name)
			return PopResult{}, nil
		}
		if err := e.chooser.Offer(ctx, ch); err != nil {
			return PopResult{}, fmt.Errorf("offer choice: %w", err)
		}
		lr.PopDone = true
		return PopResult{}, nil
	case ActionShow, ActionCreate:
		res, err := e.popper.Pop(ctx, PopRequest{Agent: agent, Conversation: cv.snap, Leg: leg, Rule: rule, Identity: id, Decision: dec})
		// Keep what was created even when the display failed, so that a
		// retry shows it instead of creating it again.
		cv.rec.Created = append(cv.rec.Created, res.Created...)
		if res.Shown != nil {
			// The record shown is most often one of the candidates: keep
			// one copy of it.
			shown := res.Shown
			if i := slices.IndexFunc(cv.rec.Candidates, func(r Record) bool { return r.equal(shown) }); i >= 0 {
				shown = &cv.rec.Candidates[i]
			}
			lr.Popped = shown
			if cv.rec.Resolved == nil {
				cv.rec.Resolved = shown
			}
		}
		if err != nil {
			return res, err
		}
		lr.PopDone = true
		return res, nil
	default:
		lr.PopDone = true
		return PopResult{}, nil
	}
}

// answer handles Engine.Choose inside the conversation's worker.
func (e *Engine) answer(ctx context.Context, cv *conv, legID string, pick *Record) (PopResult, error) {
	lr := cv.leg(legID)
	if lr == nil || !lr.Choosing || cv.snap == nil {
		return PopResult{}, ErrNoChoice
	}
	leg := cv.snap.Leg(legID)
	rule := e.rules.Rule(lr.Rule)
	if leg == nil || rule == nil {
		return PopResult{}, ErrNoChoice
	}
	var dec Decision
	if pick == nil {
		if rule.NoMatch == NoMatchNothing {
			return PopResult{}, fmt.Errorf("%w: rule %s creates nothing (nomatch: nothing)", ErrInvalid, rule.Name)
		}
		dec = e.strategy.Decide(DecideInput{Rule: rule, Conversation: cv.snap, Leg: leg, Identity: cv.rec.Identity})
		if dec.Action != ActionCreate {
			return PopResult{}, fmt.Errorf("%w: rule %s: the strategy does not create a record", ErrInvalid, rule.Name)
		}
	} else {
		i := slices.IndexFunc(lr.Candidates, func(r Record) bool { return r.Same(*pick) })
		if i < 0 {
			return PopResult{}, fmt.Errorf("%w: %s is not one of the candidates offered", ErrInvalid, pick.Ref())
		}
		c := lr.Candidates[i]
		// The pick goes through the strategy as the one match: for
		// ticket:new the agent picked the requester of the ticket to
		// create. Anything but show/create falls back to showing the pick.
		dec = e.strategy.Decide(DecideInput{Rule: rule, Conversation: cv.snap, Leg: leg, Identity: cv.rec.Identity,
			Result: Result{Records: []Record{c}}})
		if dec.Action != ActionShow && dec.Action != ActionCreate {
			dec = Decision{Action: ActionShow, Record: &c}
		}
		dec.Reason = "picked by the agent"
	}
	n := PopNotice{ConversationID: cv.id, LegID: legID, UserID: leg.UserID, Rule: rule.Name, Identity: cv.rec.Identity, Decision: dec}
	start := time.Now()
	defer func() {
		n.Latency = time.Since(start)
		e.each(func(h *Hooks) {
			if h.Pop != nil {
				h.Pop(n)
			}
		})
	}()
	agent, err := e.agent(ctx, cv, leg, lr)
	if err != nil {
		n.Err = err
		return PopResult{}, err
	}
	n.Agent = agent
	n.Result, n.Err = e.perform(ctx, cv, leg, lr, rule, agent, cv.rec.Identity, dec)
	if n.Err != nil {
		e.fail(ErrorNotice{ConversationID: cv.id, LegID: legID, Rule: rule.Name, Stage: "choose", Err: n.Err})
		return n.Result, n.Err
	}
	lr.Choosing = false
	cv.dirty = true
	// Save now: Choose may come after the leg settled, when no evaluation
	// would persist it.
	cv.rec.UpdatedAt = time.Now()
	if err := e.save(ctx, cv); err != nil {
		e.fail(ErrorNotice{ConversationID: cv.id, LegID: legID, Rule: rule.Name, Stage: "save", Err: err})
	} else {
		cv.dirty = false
	}
	return n.Result, nil
}

// reserve records that the job key was queued by this run with its first
// try unstarted.
func (e *Engine) reserve(key string) {
	e.resMu.Lock()
	if e.reserved == nil {
		e.reserved = map[string]struct{}{}
	}
	e.reserved[key] = struct{}{}
	e.resMu.Unlock()
}

// firstTry reports whether j's next delivery is its reserved first try:
// take consumes the reservation.
func (e *Engine) firstTry(j *SyncJob, take bool) bool {
	if j.Tries != 1 {
		return false
	}
	e.resMu.Lock()
	defer e.resMu.Unlock()
	_, ok := e.reserved[j.Key]
	if ok && take {
		delete(e.reserved, j.Key)
	}
	return ok
}

// enqueue puts the leg's sync job in the outbox.
func (e *Engine) enqueue(ctx context.Context, cv *conv, leg *AgentLeg, lr *LegRecord, rule *Rule, now time.Time) bool {
	if lr.Agent == nil && e.dir != nil {
		if a, err := e.dir.Agent(ctx, leg); err == nil {
			lr.Agent = cv.newAgent(a)
		}
	}
	// A leg that ended before its pop (or a rule that pops nothing) still
	// needs the customer for the sync: identify now if nobody did.
	if !cv.rec.Identified && e.matcher != nil && len(rule.Identify) > 0 {
		if _, _, err := e.cachedIdentify(ctx, cv, rule); err != nil {
			e.fail(ErrorNotice{ConversationID: cv.id, LegID: leg.ID, Rule: rule.Name, Stage: "match", Err: err})
		}
	}
	popped := lr.Popped
	if popped == nil {
		popped = cv.rec.Resolved
	}
	job := &SyncJob{
		Key:            JobKey(cv.id, leg.ID),
		ConversationID: cv.id,
		LegID:          leg.ID,
		Rule:           rule.Name,
		Conversation:   cv.snap,
		Agent:          lr.Agent,
		Popped:         popped,
		Created:        cv.rec.Created,
		Candidates:     cv.rec.Candidates,
		Identity:       cv.rec.Identity,
		EnqueuedAt:     now,
		// The first delivery's try is recorded with the job: this run's
		// dispatcher knows it has not started (reserved), and after a
		// restart the next delivery counts as the second.
		Tries: 1,
	}
	e.reserve(job.Key)
	if e.jobSaver != nil {
		// Put with the record by this step's save: one atomic write, so
		// that the record says queued exactly when the job is pending.
		lr.Queued = true
		cv.dirty = true
		cv.jobs = append(cv.jobs, pendingJob{job, leg.UserID})
		return true
	}
	if err := e.outbox.Put(ctx, job); err != nil {
		e.fail(ErrorNotice{ConversationID: cv.id, LegID: leg.ID, Rule: rule.Name, Stage: "enqueue", Err: err})
		return false
	}
	lr.Queued = true
	e.queued(cv.id, job, leg.UserID)
	return true
}

// queued tells the hooks and the dispatcher that job is in the outbox.
func (e *Engine) queued(convID string, job *SyncJob, userID string) {
	e.each(func(h *Hooks) {
		if h.Sync != nil {
			h.Sync(SyncNotice{Key: job.Key, ConversationID: convID, LegID: job.LegID, UserID: userID, Rule: job.Rule, State: SyncQueued})
		}
	})
	select {
	case e.wake <- struct{}{}:
	default:
	}
}
