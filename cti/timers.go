package cti

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// timerQueue wakes conversations at a time (grace period, wrap-up timeout).
type timerQueue struct {
	mu   sync.Mutex
	h    timerHeap
	wake chan struct{}
}

type timerEntry struct {
	at time.Time
	id string
}

type timerHeap []timerEntry

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerEntry)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (q *timerQueue) add(at time.Time, id string) {
	q.mu.Lock()
	heap.Push(&q.h, timerEntry{at, id})
	first := q.h[0].id == id && q.h[0].at.Equal(at)
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// due pops the entries due at now and returns the next deadline.
func (q *timerQueue) due(now time.Time) (ids []string, next time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.h) > 0 && !q.h[0].at.After(now) {
		ids = append(ids, heap.Pop(&q.h).(timerEntry).id)
	}
	if len(q.h) > 0 {
		next = q.h[0].at
	}
	return ids, next
}

// janitorEvery is how often finished and idle conversations are forgotten.
const janitorEvery = time.Minute

// timerLoop fires conversation timers and runs the janitor until ctx is done.
func (e *Engine) timerLoop(ctx context.Context) error {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	lastJanitor := time.Now()
	for {
		now := time.Now()
		ids, next := e.timers.due(now)
		for _, id := range ids {
			_ = e.post(id, message{tick: true}) // gone already: nothing to do
		}
		if now.Sub(lastJanitor) >= janitorEvery {
			e.janitor(ctx, now)
			lastJanitor = now
		}
		wait := janitorEvery - now.Sub(lastJanitor)
		if !next.IsZero() && next.Sub(now) < wait {
			wait = next.Sub(now)
		}
		t.Reset(max(wait, 0))
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-e.timers.wake:
		}
	}
}

// janitor forgets finished conversations after the tombstone period and
// idle ones after the idle timeout, and prunes the state store.
func (e *Engine) janitor(ctx context.Context, now time.Time) {
	idle := 0
	var lazy []*conv
	for i := range e.shards {
		sh := &e.shards[i]
		sh.mu.Lock()
		for id, at := range sh.done {
			if now.Sub(at) > e.timing.Tombstone {
				delete(sh.done, id)
			}
		}
		for id, cv := range sh.m {
			// A conversation with mail waits for its record (the state
			// store could not read it): not idle.
			if !cv.running && cv.pending == nil && len(cv.msgs) == 0 && now.Sub(e.at(cv.lastIn)) > e.timing.IdleTimeout {
				if lazyRecord(cv) {
					// Write it first: a later update reloads the record,
					// and must not derive its phases again. Claimed as
					// running, updates meanwhile wait in its mailbox.
					cv.running = true
					lazy = append(lazy, cv)
					continue
				}
				delete(sh.m, id)
				idle++
			}
		}
		sh.mu.Unlock()
	}
	for _, cv := range lazy {
		err := e.save(ctx, cv)
		if err != nil {
			e.fail(ErrorNotice{ConversationID: cv.id, Stage: "save", Err: err})
		}
		sh := e.shard(cv.id)
		sh.mu.Lock()
		switch {
		case cv.pending != nil || len(cv.msgs) > 0:
			sh.mu.Unlock()
			e.activate(cv) // an update came: a worker takes over, running stays set
			continue
		case err == nil:
			delete(sh.m, cv.id)
			idle++
		}
		cv.running = false
		sh.mu.Unlock()
	}
	if idle > 0 {
		e.log.Warn("forgot idle conversations whose end was never seen", "count", idle, "idle", e.timing.IdleTimeout)
	}
	if _, err := e.state.PruneConversations(ctx, now.Add(-e.timing.Tombstone)); err != nil && ctx.Err() == nil {
		e.fail(ErrorNotice{Stage: "save", Err: err})
	}
}
