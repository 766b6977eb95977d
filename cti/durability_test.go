package cti_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cxplay/ctikit/cti"
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
		assert.Equal(t, 1, put, "the delivery records its try with a Put")
		assert.Equal(t, []cti.SyncState{cti.SyncQueued, cti.SyncDone}, r.rec.SyncStates("c1/l1"))
		assert.Equal(t, []string{"c1/l1:offered", "c1/l1:connected", "c1/l1:disconnected", "c1/l1:wrapup_done"}, r.rec.Events("c1/"),
			"each event once")
		rec, err = mem.LoadConversation(ctx, "c1")
		require.NoError(t, err)
		assert.True(t, rec.Done && rec.Legs["l1"].Queued)
		require.NoError(t, r.stop())
	})
}
