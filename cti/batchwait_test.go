package cti_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
)

// timedBatchSink records when each delivery started and its size.
type timedBatchSink struct {
	mu    sync.Mutex
	at    []time.Time
	sizes []int
}

func (s *timedBatchSink) Sync(context.Context, *cti.SyncJob) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = append(s.at, time.Now())
	s.sizes = append(s.sizes, 1)
	return nil
}

func (s *timedBatchSink) SyncBatch(_ context.Context, jobs []*cti.SyncJob) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = append(s.at, time.Now())
	s.sizes = append(s.sizes, len(jobs))
	return make([]error, len(jobs))
}

// singleSink hides SyncBatch.
type singleSink struct{ s *timedBatchSink }

func (s singleSink) Sync(ctx context.Context, j *cti.SyncJob) error { return s.s.Sync(ctx, j) }

// With WithBatchWait, jobs due less than the wait ago wait for company and
// go together once the oldest has waited; jobs due long enough, a full
// batch and a sink that does not batch go at once.
func TestEngineBatchWait(t *testing.T) {
	for _, tc := range []struct {
		name      string
		age       time.Duration // how long before Run the jobs became due
		tries     int           // deliveries started before
		batchSize int
		single    bool
		wantAfter time.Duration // first delivery after Run started
		wantSizes []int
	}{
		{name: "fresh jobs wait", age: 0, wantAfter: 2 * time.Second, wantSizes: []int{5}},
		{name: "half the wait gone", age: time.Second, wantAfter: time.Second, wantSizes: []int{5}},
		{name: "due long enough", age: 3 * time.Second, wantAfter: 0, wantSizes: []int{5}},
		{name: "a retry among them", age: 0, tries: 1, wantAfter: 0, wantSizes: []int{5}},
		{name: "full batch", age: 0, batchSize: 5, wantAfter: 0, wantSizes: []int{5}},
		{name: "sink without batches", age: 0, single: true, wantAfter: 0, wantSizes: []int{1, 1, 1, 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				store := cti.NewMemoryStore()
				for i := range 5 {
					id := fmt.Sprintf("c%d", i)
					j := &cti.SyncJob{
						Key: cti.JobKey(id, "l"), ConversationID: id, LegID: "l", Rule: "support",
						Conversation: &cti.Conversation{ID: id}, Popped: &cti.Record{Kind: cti.KindTicket, ID: int64(i + 1)},
						EnqueuedAt: start.Add(-tc.age),
					}
					if i == 3 {
						j.Tries = tc.tries
					}
					require.NoError(t, store.Put(context.Background(), j))
				}
				ts := &timedBatchSink{}
				var sk cti.Sink = ts
				if tc.single {
					sk = singleSink{ts}
				}
				opts := []cti.Option{cti.WithMatcher(&matcher{}), cti.WithStrategy(strategy),
					cti.WithPopper(&popper{}), cti.WithDirectory(directory), cti.WithSink(sk), cti.WithStore(store),
					cti.WithBatchWait(2 * time.Second)}
				if tc.batchSize > 0 {
					opts = append(opts, cti.WithBatchSize(tc.batchSize))
				}
				eng, err := cti.NewEngine(ctitest.NewSource(), testRules(), opts...)
				require.NoError(t, err)
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error)
				go func() { done <- eng.Run(ctx) }()
				time.Sleep(10 * time.Second)
				synctest.Wait()
				cancel()
				require.NoError(t, <-done)

				ts.mu.Lock()
				defer ts.mu.Unlock()
				require.NotEmpty(t, ts.at, "nothing delivered")
				assert.Equal(t, tc.wantAfter, ts.at[0].Sub(start), "first delivery")
				assert.ElementsMatch(t, tc.wantSizes, ts.sizes)
				jobs, _, err := store.Due(context.Background(), time.Now().Add(time.Hour), 0)
				require.NoError(t, err)
				assert.Empty(t, jobs, "every job acknowledged")
			})
		})
	}
}

func TestWithBatchWaitRejectsNegative(t *testing.T) {
	_, err := cti.NewEngine(ctitest.NewSource(), testRules(), cti.WithSink(&timedBatchSink{}), cti.WithBatchWait(-time.Second))
	require.ErrorContains(t, err, "batch wait")
}

// TestEngineQueuedJobsWaitForCompany: jobs the engine queues (their first
// try recorded with them) are first tries: they wait for the batch wait
// and go together.
func TestEngineQueuedJobsWaitForCompany(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ts := &timedBatchSink{}
		src := ctitest.NewSource()
		eng, err := cti.NewEngine(src, testRules(), cti.WithMatcher(&matcher{}), cti.WithStrategy(strategy),
			cti.WithPopper(&popper{}), cti.WithDirectory(directory), cti.WithSink(ts), cti.WithStore(cti.NewMemoryStore()),
			cti.WithBatchWait(2*time.Second))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- eng.Run(ctx) }()
		var first time.Time
		for i := range 3 {
			b := support(fmt.Sprintf("c%d", i))
			require.NoError(t, src.Send(ctx, b.Alert("l1", "u1")))
			synctest.Wait()
			require.NoError(t, src.Send(ctx, b.Connect("l1"), b.Disconnect("l1"), b.End(), b.Wrapup("l1", "code-sale", "")))
			synctest.Wait()
			if i == 0 {
				first = time.Now()
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		cancel()
		require.NoError(t, <-done)
		ts.mu.Lock()
		defer ts.mu.Unlock()
		assert.Equal(t, []int{3}, ts.sizes, "one batch")
		require.NotEmpty(t, ts.at)
		assert.Equal(t, 2*time.Second, ts.at[0].Sub(first), "after the first job's batch wait")
	})
}
