package cti_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
)

// A new conversation is in the state store (as open) before the engine
// acts on it: a pop can take long (Zendesk paced or slow), and if the
// process dies meanwhile, the restarted engine must know the conversation
// to resume it (re-fetch it from Genesys), or a conversation that ended
// during the pop is never synced. Found by the soak (examples/soak at
// Zendesk's 700 requests/minute): 45 legs of voice and email
// conversations, popped on alerting, lost after SIGKILLs.
func TestEngineRecordsConversationBeforeSlowPop(t *testing.T) {
	r := newRig(t)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	r.popper.block = func(cti.PopRequest) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}
	b := support("c-slow")
	require.NoError(t, r.src.Send(r.ctx, b.Alert("l1", "u1")))
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no pop")
	}
	ids, err := r.store.OpenConversations(context.Background())
	require.NoError(t, err)
	assert.Contains(t, ids, "c-slow", "the conversation is recorded as open while its pop runs")
	close(release)
	require.NoError(t, r.stop())
}

// jobStore is a MemoryStore that counts its writes and fails the first
// fail saves that carry jobs.
type jobStore struct {
	*cti.MemoryStore
	mu                   sync.Mutex
	fail                 int
	saves, withJobs, put int
}

func (s *jobStore) SaveConversation(ctx context.Context, rec *cti.ConvRecord) error {
	s.mu.Lock()
	s.saves++
	s.mu.Unlock()
	return s.MemoryStore.SaveConversation(ctx, rec)
}

func (s *jobStore) SaveConversationWithJobs(ctx context.Context, rec *cti.ConvRecord, jobs []*cti.SyncJob) error {
	s.mu.Lock()
	s.withJobs++
	failing := len(jobs) > 0 && s.fail > 0
	if failing {
		s.fail--
	}
	s.mu.Unlock()
	if failing {
		return errors.New("disk full")
	}
	return s.MemoryStore.SaveConversationWithJobs(ctx, rec, jobs)
}

func (s *jobStore) Put(ctx context.Context, job *cti.SyncJob) error {
	s.mu.Lock()
	s.put++
	s.mu.Unlock()
	return s.MemoryStore.Put(ctx, job)
}

func (s *jobStore) counts() (saves, withJobs, put int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.saves, s.withJobs, s.put
}

// TestEngineQueuesWithTheRecord: with a JobSaver store, a done leg's job
// is written with the conversation's record in one write (no Put of its
// own), and the hooks hear SyncQueued only once it is. When that write
// fails, neither the record nor the job is in the store; the engine keeps
// both and writes them a second later, and the leg syncs once.
func TestEngineQueuesWithTheRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := cti.NewMemoryStore()
		st := &jobStore{MemoryStore: mem, fail: 2}
		r := newRigWith(t, mem, &sink{}, cti.WithStore(st))
		ctx := context.Background()
		b := support("c1")
		r.send(b.Alert("l1", "u1"), b.Connect("l1"), b.Disconnect("l1"), b.End())
		r.send(b.Wrapup("l1", "code-sale", "resolved"))

		_, withJobs, put := st.counts()
		assert.Equal(t, 1, withJobs, "the wrap-up's save carried the job, and failed")
		assert.Zero(t, put, "no Put of its own")
		assert.Empty(t, r.rec.SyncStates("c1/l1"), "not queued while the write failed")
		rec, err := mem.LoadConversation(ctx, "c1")
		require.NoError(t, err)
		assert.False(t, rec.Done || rec.Legs["l1"].Queued, "the record was not saved as queued: %+v", rec.Legs["l1"])
		stats, _ := mem.Stats(ctx)
		assert.Zero(t, stats.Pending, "no job without its record")
		errs := r.rec.Errors()
		require.NotEmpty(t, errs, "the failed write is reported")
		assert.Equal(t, "enqueue", errs[0].Stage)
		assert.Equal(t, "l1", errs[0].LegID)

		time.Sleep(1100 * time.Millisecond) // the first retry fails too
		synctest.Wait()
		_, withJobs, _ = st.counts()
		assert.Equal(t, 2, withJobs)
		assert.Empty(t, r.sink.Jobs())

		time.Sleep(3 * time.Second) // the second retry succeeds; the sync follows
		synctest.Wait()
		_, withJobs, put = st.counts()
		assert.Equal(t, 3, withJobs)
		jobs := r.sink.Jobs()
		require.Len(t, jobs, 1, "synced once")
		assert.Equal(t, "c1/l1", jobs[0].Key)
		assert.Equal(t, "code-sale", jobs[0].Conversation.Leg("l1").Wrapup.Code)
		assert.Zero(t, put, "the first try was recorded with the job: no Put of its own")
		assert.Equal(t, 1, jobs[0].Tries, "a first try")
		assert.Equal(t, []cti.SyncState{cti.SyncQueued, cti.SyncDone}, r.rec.SyncStates("c1/l1"))
		assert.Equal(t, []string{"c1/l1:offered", "c1/l1:connected", "c1/l1:disconnected", "c1/l1:wrapup_done"}, r.rec.Events("c1/"),
			"each event once")
		rec, err = mem.LoadConversation(ctx, "c1")
		require.NoError(t, err)
		assert.True(t, rec.Done && rec.Legs["l1"].Queued)
		require.NoError(t, r.stop())
	})
}

// TestEngineSavesWhatARestartCannotRederive: a voice call costs the state
// store three writes: the new conversation, the pop's outcome, and the
// wrap-up's record with its sync job. A leg connecting or disconnecting
// is kept in memory until the next write (a restart re-derives it from
// Genesys), and written when Run returns.
func TestEngineSavesWhatARestartCannotRederive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := cti.NewMemoryStore()
		st := &jobStore{MemoryStore: mem}
		r := newRigWith(t, mem, &sink{}, cti.WithStore(st))
		ctx := context.Background()
		phase := func(id string) cti.Phase {
			t.Helper()
			rec, err := mem.LoadConversation(ctx, id)
			require.NoError(t, err)
			return rec.Legs["l1"].Phase
		}
		b := support("c1")
		r.send(b.Alert("l1", "u1"))
		saves, _, _ := st.counts()
		assert.Equal(t, 2, saves, "the new conversation, then the pop")
		r.send(b.Connect("l1"))
		r.send(b.Disconnect("l1"), b.End())
		saves, _, _ = st.counts()
		assert.Equal(t, 2, saves, "connected and disconnected wait for the next write")
		assert.Equal(t, cti.PhaseOffered, phase("c1"))
		r.send(b.Wrapup("l1", "code-sale", "resolved"))
		saves, withJobs, _ := st.counts()
		assert.Equal(t, 2, saves)
		assert.Equal(t, 1, withJobs, "the wrap-up's record carries the job")
		rec, err := mem.LoadConversation(ctx, "c1")
		require.NoError(t, err)
		assert.True(t, rec.Done)
		assert.Equal(t, cti.PhaseDone, rec.Legs["l1"].Phase)
		assert.False(t, rec.Legs["l1"].DisconnectedAt.IsZero(), "the lazy changes went with it")

		// A call still connected when Run returns is written then.
		b2 := support("c2")
		r.send(b2.Alert("l1", "u1"))
		r.send(b2.Connect("l1"))
		assert.Equal(t, cti.PhaseOffered, phase("c2"))
		require.NoError(t, r.stop())
		assert.Equal(t, cti.PhaseConnected, phase("c2"), "written when Run returned")
		saves, _, _ = st.counts()
		assert.Equal(t, 5, saves)
	})
}

// crashAfterDisconnect plays conversation id's (b's) leg l1 to disconnected in a first run
// (popped once; connected and disconnected lazy), then simulates a crash:
// the store is left as it was before the run's flush on return.
func crashAfterDisconnect(t *testing.T, mem *cti.MemoryStore, id string, b *ctitest.Builder) {
	t.Helper()
	ctx := context.Background()
	r := newRigWith(t, mem, &sink{})
	r.send(b.Alert("l1", "u1"))
	r.send(b.Connect("l1"))
	r.send(b.Disconnect("l1"))
	require.Len(t, r.popper.Calls(), 1)
	rec, err := mem.LoadConversation(ctx, id)
	require.NoError(t, err)
	require.Equal(t, cti.PhaseOffered, rec.Legs["l1"].Phase, "lazy in the first run")
	require.NoError(t, r.stop())
	require.NoError(t, mem.SaveConversation(ctx, rec))
}

// TestEngineResumesLazyPhases: after a crash that lost a leg's connected
// and disconnected phases (never written), the next run derives them
// again from the conversation: the leg is not popped again, its events
// fire again, and it syncs once.
func TestEngineResumesLazyPhases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := cti.NewMemoryStore()
		b := support("c1")
		crashAfterDisconnect(t, mem, "c1", b)

		sk := &sink{}
		r2 := newRigWith(t, mem, sk)
		r2.send(b.End(), b.Wrapup("l1", "code-sale", "resolved"))
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Empty(t, r2.popper.Calls(), "not popped again")
		assert.Equal(t, []string{"c1/l1:connected", "c1/l1:disconnected", "c1/l1:wrapup_done"}, r2.rec.Events("c1/"),
			"the lost phases fire again")
		require.Len(t, sk.Jobs(), 1, "synced once")
		assert.Equal(t, "code-sale", sk.Jobs()[0].Conversation.Leg("l1").Wrapup.Code)
		require.NoError(t, r2.stop())
	})
}

// TestEngineFirstTryRecordedWithTheJob: a job's first try is recorded
// with the job when the engine queues it (Tries 1), so its first delivery
// writes nothing to the outbox; a retry records its try before the sink
// sees it; and a job a previous run queued but never delivered is not a
// first try (it may have been delivered just before a crash): Tries 2.
func TestEngineFirstTryRecordedWithTheJob(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		mem := cti.NewMemoryStore()
		st := &jobStore{MemoryStore: mem}
		var mu sync.Mutex
		tries := map[string][]int{}
		sk := &sink{fail: func(j *cti.SyncJob, attempt int) error {
			mu.Lock()
			tries[j.Key] = append(tries[j.Key], j.Tries)
			mu.Unlock()
			if j.Key == "c1/l1" && attempt == 1 {
				return &cti.UpstreamError{Service: "zendesk", Op: "update ticket", Status: 503}
			}
			return nil
		}}
		old := support("old")
		old.Alert("l1", "u1")
		oc := old.Wrapup("l1", "code-sale", "")
		require.NoError(t, mem.Put(ctx, &cti.SyncJob{Key: cti.JobKey("old", "l1"), ConversationID: "old", LegID: "l1",
			Rule: "support", Conversation: oc, Tries: 1, EnqueuedAt: time.Now()}))
		r := newRigWith(t, mem, sk, cti.WithStore(st))
		b := support("c1")
		r.send(b.Alert("l1", "u1"))
		r.send(b.Connect("l1"))
		r.send(b.Disconnect("l1"), b.End(), b.Wrapup("l1", "code-sale", "resolved"))
		time.Sleep(5 * time.Second) // the retry's backoff
		synctest.Wait()
		mu.Lock()
		assert.Equal(t, []int{2}, tries["old/l1"], "queued by an earlier run: not a first try")
		assert.Equal(t, []int{1, 2}, tries["c1/l1"], "a first try, then a retry")
		mu.Unlock()
		_, _, put := st.counts()
		assert.Equal(t, 3, put, "the old job's try, the failed attempt's record, the retry's try; none for c1's first try")
		require.Len(t, sk.Jobs(), 2)
		require.NoError(t, r.stop())
	})
}

// TestEngineResumedLegWritesItsPhases: a conversation whose record was in
// the store before this run writes its legs' phases at once. Otherwise a
// leg waiting for a wrap-up that never comes would, after every crash,
// start its WrapupTimeout from the restart again, and a process crashing
// more often than the timeout would never sync it.
func TestEngineResumedLegWritesItsPhases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		mem := cti.NewMemoryStore()
		b := support("c1")
		crashAfterDisconnect(t, mem, "c1", b)

		r2 := newRigWith(t, mem, &sink{})
		r2.send(b.Disconnect("l1"))
		rec, err := mem.LoadConversation(ctx, "c1")
		require.NoError(t, err)
		assert.Equal(t, cti.PhaseDisconnected, rec.Legs["l1"].Phase, "written at once after the restart")
		assert.False(t, rec.Legs["l1"].DisconnectedAt.IsZero())
		require.NoError(t, r2.stop())
	})
}

// TestEngineIdleLazyRecordWrittenBeforeForgotten: a conversation idle past
// IdleTimeout is forgotten, but its lazy changes are written first, so
// that a later update does not derive its phases (and events) again.
func TestEngineIdleLazyRecordWrittenBeforeForgotten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		mem := cti.NewMemoryStore()
		r := newRigWith(t, mem, &sink{}, cti.WithTiming(cti.Timing{IdleTimeout: 10 * time.Minute}))
		b := support("c1")
		r.send(b.Alert("l1", "u1"))
		r.send(b.Connect("l1"))
		time.Sleep(15 * time.Minute) // the janitor runs every minute
		synctest.Wait()
		rec, err := mem.LoadConversation(ctx, "c1")
		require.NoError(t, err)
		assert.Equal(t, cti.PhaseConnected, rec.Legs["l1"].Phase, "written before it was forgotten")
		r.send(b.Disconnect("l1"))
		assert.Equal(t, []string{"c1/l1:offered", "c1/l1:connected", "c1/l1:disconnected"}, r.rec.Events("c1/"),
			"each event once, across the forgetting")
		require.NoError(t, r.stop())
	})
}

// runOn runs an engine on st (any cti.Store, where the rig takes a
// MemoryStore) until the returned stop.
func runOn(t *testing.T, st cti.Store, sk cti.Sink) (*ctitest.Source, *popper, func()) {
	t.Helper()
	src, pp := ctitest.NewSource(), &popper{}
	eng, err := cti.NewEngine(src, testRules(), cti.WithMatcher(&matcher{}), cti.WithStrategy(strategy), cti.WithPopper(pp),
		cti.WithDirectory(directory), cti.WithSink(sk), cti.WithStore(st))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	synctest.Wait()
	return src, pp, func() { cancel(); require.NoError(t, <-done) }
}

// flakyLoads fails LoadConversation a number of times (a network store's
// timeout, a busy disk).
type flakyLoads struct {
	*cti.MemoryStore
	fail atomic.Int32
}

func (s *flakyLoads) LoadConversation(ctx context.Context, id string) (*cti.ConvRecord, error) {
	if s.fail.Add(-1) >= 0 {
		return nil, errors.New("store: read timeout")
	}
	return s.MemoryStore.LoadConversation(ctx, id)
}

// TestEngineWaitsForARecordItCannotRead: after a restart the state store
// fails to read a conversation's record once. The engine must not take it
// for a conversation never seen: that would pop the live leg again, sync
// the leg already synced again as a first try, and overwrite the stored
// record. It waits, reads again, and goes on from the record.
func TestEngineWaitsForARecordItCannotRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := cti.NewMemoryStore()
		sk := &sink{}
		b := support("c1")
		r := newRigWith(t, mem, sk)
		for _, s := range []*cti.Conversation{b.Alert("l1", "u1"), b.Connect("l1"), b.Transfer("l1", "l2", "u2", cti.Ref{}), b.Wrapup("l1", "w", "")} {
			r.send(s)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		require.Len(t, r.popper.Calls(), 2, "l1 and l2 popped")
		require.Equal(t, []string{"c1/l1"}, sk.Keys())
		require.NoError(t, r.stop())

		fs := &flakyLoads{MemoryStore: mem}
		fs.fail.Store(1)
		src, pp, stop := runOn(t, fs, sk)
		require.NoError(t, src.Send(context.Background(), b.Connect("l2")))
		synctest.Wait()
		require.NoError(t, src.Send(context.Background(), b.Disconnect("l2")))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		require.NoError(t, src.Send(context.Background(), b.Wrapup("l2", "w", "")))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		stop()
		assert.Empty(t, pp.Calls(), "l2 popped again (it was, before the restart)")
		assert.Equal(t, []string{"c1/l1", "c1/l2"}, sk.Keys(), "each leg synced once")
		for _, j := range sk.Jobs() {
			if j.Key == "c1/l1" && j.Tries != 1 {
				t.Errorf("l1 synced with Tries %d", j.Tries)
			}
		}
	})
}

// failingPuts is a Store without JobSaver whose outbox Put fails a number
// of times (a busy disk).
type failingPuts struct {
	cti.Store
	fail atomic.Int32
}

func (s *failingPuts) Put(ctx context.Context, j *cti.SyncJob) error {
	if s.fail.Add(-1) >= 0 {
		return errors.New("outbox: disk busy")
	}
	return s.Store.Put(ctx, j)
}

// TestEngineRetriesAFailedEnqueueShortly: a wrapped-up leg whose job could
// not be put in the outbox (a store without JobSaver) is tried again a
// second later, not at the wrap-up timeout hours later.
func TestEngineRetriesAFailedEnqueueShortly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &failingPuts{Store: cti.NewMemoryStore()}
		st.fail.Store(1)
		sk := &sink{}
		src, _, stop := runOn(t, st, sk)
		b := support("c1")
		for _, s := range []*cti.Conversation{b.Alert("l1", "u1"), b.Connect("l1"), b.Hangup("l1"), b.Wrapup("l1", "w", "")} {
			require.NoError(t, src.Send(context.Background(), s))
			synctest.Wait()
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, []string{"c1/l1"}, sk.Keys(), "synced within a minute of the failed enqueue")
		stop()
	})
}
