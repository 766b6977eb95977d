package cti_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
)

// orderSink records, per popped ticket, the order syncs reach it and
// whether two deliveries for one ticket ever overlapped.
type orderSink struct {
	mu       sync.Mutex
	order    map[int64][]string // ticket → conversation ids, in sync order
	busy     map[int64]bool
	overlaps int
	batches  []int
}

func newOrderSink() *orderSink {
	return &orderSink{order: map[int64][]string{}, busy: map[int64]bool{}}
}

// deliver takes the tickets of jobs, holds them a while, and records.
func (s *orderSink) deliver(jobs []*cti.SyncJob) {
	var mine []int64
	s.mu.Lock()
	for _, j := range jobs {
		t := j.Popped.ID
		if !slices.Contains(mine, t) {
			if s.busy[t] {
				s.overlaps++
			}
			s.busy[t] = true
			mine = append(mine, t)
		}
	}
	s.mu.Unlock()
	time.Sleep(time.Duration(10+len(jobs)) * time.Millisecond)
	s.mu.Lock()
	for _, j := range jobs {
		s.order[j.Popped.ID] = append(s.order[j.Popped.ID], j.ConversationID)
	}
	for _, t := range mine {
		s.busy[t] = false
	}
	s.mu.Unlock()
}

func (s *orderSink) Sync(_ context.Context, j *cti.SyncJob) error {
	s.deliver([]*cti.SyncJob{j})
	return nil
}

type orderBatchSink struct{ *orderSink }

func (s orderBatchSink) SyncBatch(_ context.Context, jobs []*cti.SyncJob) []error {
	s.mu.Lock()
	s.batches = append(s.batches, len(jobs))
	s.mu.Unlock()
	s.deliver(jobs)
	return make([]error, len(jobs))
}

// Syncs of different conversations to one ticket reach the sink one after
// the other, oldest first, with and without batching; different tickets
// still go in parallel (and in batches).
func TestEngineSyncsOneTicketInOrder(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprintf("batch=%v", batch), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				os := newOrderSink()
				var sk cti.Sink = os
				if batch {
					sk = orderBatchSink{os}
				}
				store := cti.NewMemoryStore()
				want := map[int64][]string{}
				for i := range 120 {
					id := fmt.Sprintf("c%03d", i)
					ticket := int64(1 + i%6)
					want[ticket] = append(want[ticket], id)
					require.NoError(t, store.Put(context.Background(), &cti.SyncJob{
						Key: cti.JobKey(id, "l"), ConversationID: id, LegID: "l", Rule: "support",
						Conversation: &cti.Conversation{ID: id}, Popped: &cti.Record{Kind: cti.KindTicket, ID: ticket},
						EnqueuedAt: ctitest.Start.Add(time.Duration(i) * time.Millisecond),
					}))
				}
				_, _, stop := runOn(t, store, sk)
				time.Sleep(time.Minute)
				synctest.Wait()
				stop()
				assert.Zero(t, os.overlaps, "two deliveries for one ticket at once")
				assert.Equal(t, want, os.order)
				if batch {
					assert.Less(t, len(os.batches), 120/2, "batched: %v", os.batches)
				}
			})
		})
	}
}

// TestEngineRetryKeepsTicketOrder: the older of two syncs of ticket 7
// fails once (503) and backs off; the newer one, due meanwhile, waits for
// it: they reach the ticket oldest first.
func TestEngineRetryKeepsTicketOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := cti.NewMemoryStore()
		for i, id := range []string{"a", "b"} {
			require.NoError(t, store.Put(context.Background(), &cti.SyncJob{
				Key: cti.JobKey(id, "l"), ConversationID: id, LegID: "l", Rule: "support",
				Conversation: &cti.Conversation{ID: id}, Popped: &cti.Record{Kind: cti.KindTicket, ID: 7},
				EnqueuedAt: ctitest.Start.Add(time.Duration(i) * time.Second),
			}))
		}
		sk := &sink{fail: func(j *cti.SyncJob, attempt int) error {
			if j.ConversationID == "a" && attempt == 1 {
				return &cti.UpstreamError{Service: "zendesk", Status: 503}
			}
			return nil
		}}
		_, _, stop := runOn(t, store, sk)
		time.Sleep(time.Minute)
		synctest.Wait()
		stop()
		var order []string
		for _, j := range sk.Jobs() {
			order = append(order, j.ConversationID)
		}
		assert.Equal(t, []string{"a", "b"}, order, "ticket 7's syncs oldest first")
	})
}
