package cti

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"
)

// maxDeferrals bounds how often a sink may ask to come back for late data;
// past it the job goes to the dead letters.
const maxDeferrals = 50

// outboxPoll is the longest the dispatcher sleeps without looking at the
// outbox (jobs put by another process, a missed wake-up).
const outboxPoll = 30 * time.Second

// dispatchLoop delivers due outbox jobs to the sink until ctx is done, then
// gives in-flight deliveries Timing.Drain to finish before cancelling them
// through syncCtx.
func (e *Engine) dispatchLoop(ctx, syncCtx context.Context, cancelSync context.CancelFunc) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		busy = map[string]bool{} // conversations with a delivery in flight
		sem  = make(chan struct{}, e.syncConc)
		done = make(chan struct{}, 1)
	)
	t := time.NewTimer(0)
	defer t.Stop()
	defer func() {
		idle := make(chan struct{})
		go func() { wg.Wait(); close(idle) }()
		drain := time.NewTimer(e.timing.Drain)
		defer drain.Stop()
		select {
		case <-idle:
		case <-drain.C:
			cancelSync()
			<-idle
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-e.wake:
		case <-done:
		}
		// Snapshot what is in flight before reading the outbox: a delivery
		// that finishes in between has acked its job, so Due will not
		// return it, and one still running is filtered out.
		mu.Lock()
		inflight := maps.Clone(busy)
		mu.Unlock()
		now := time.Now()
		jobs, next, err := e.outbox.Due(ctx, now, 4*e.batch)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.fail(ErrorNotice{Stage: "outbox", Err: err})
			t.Reset(time.Second)
			continue
		}
		// At most one job per conversation at a time, oldest first.
		sel := jobs[:0]
		taken := map[string]bool{}
		for _, j := range jobs {
			if inflight[j.ConversationID] || taken[j.ConversationID] {
				continue
			}
			taken[j.ConversationID] = true
			sel = append(sel, j)
		}
		var units [][]*SyncJob
		if e.batcher != nil && len(sel) > 1 {
			for len(sel) > 0 {
				n := min(len(sel), e.batch)
				units = append(units, sel[:n:n])
				sel = sel[n:]
			}
		} else {
			for _, j := range sel {
				units = append(units, []*SyncJob{j})
			}
		}
		for _, u := range units {
			select {
			case sem <- struct{}{}:
			default:
				// All slots busy: the rest waits for one to free up.
				continue
			}
			mu.Lock()
			for _, j := range u {
				busy[j.ConversationID] = true
			}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.deliver(syncCtx, u)
				mu.Lock()
				for _, j := range u {
					delete(busy, j.ConversationID)
				}
				mu.Unlock()
				<-sem
				select {
				case done <- struct{}{}:
				default:
				}
			}()
		}
		// Jobs left due because their conversation or every slot was busy
		// are picked up when a delivery finishes (done).
		wait := outboxPoll
		if !next.IsZero() && next.Sub(now) < wait {
			wait = max(next.Sub(now), time.Millisecond)
		}
		t.Reset(wait)
	}
}

// deliver enriches and syncs one job or one batch, then settles each job.
func (e *Engine) deliver(ctx context.Context, jobs []*SyncJob) {
	ready := make([]*SyncJob, 0, len(jobs))
	for _, j := range jobs {
		// Record the try before anything can reach Zendesk.
		j.Tries++
		if err := e.outbox.Put(ctx, j); err != nil {
			if ctx.Err() == nil {
				e.fail(ErrorNotice{ConversationID: j.ConversationID, LegID: j.LegID, Rule: j.Rule, Stage: "outbox", Err: err})
			}
			continue // not delivered now: the job is still due
		}
		if e.enricher != nil && j.Conversation != nil {
			if err := e.enricher.Enrich(ctx, j.Conversation); err != nil {
				if ctx.Err() != nil {
					return // shutting down: the job stays in the outbox
				}
				if IsRetryable(err) && j.Attempts < e.retry.EnrichAttempts {
					e.settle(ctx, j, fmt.Errorf("enrich: %w", err))
					continue
				}
				e.fail(ErrorNotice{ConversationID: j.ConversationID, LegID: j.LegID, Rule: j.Rule, Stage: "enrich", Err: err})
			}
		}
		ready = append(ready, j)
	}
	switch {
	case len(ready) == 0:
	case len(ready) > 1 && e.batcher != nil:
		errs := e.batcher.SyncBatch(ctx, ready)
		if len(errs) != len(ready) {
			err := &UpstreamError{Service: "sink", Op: "sync batch", Temporary: true,
				Err: fmt.Errorf("returned %d results for %d jobs", len(errs), len(ready))}
			errs = make([]error, len(ready))
			for i := range errs {
				errs[i] = err
			}
		}
		for i, j := range ready {
			e.settle(ctx, j, errs[i])
		}
	default:
		for _, j := range ready {
			e.settle(ctx, j, e.sink.Sync(ctx, j))
		}
	}
}

// settle records the outcome of one delivery in the outbox.
func (e *Engine) settle(ctx context.Context, j *SyncJob, err error) {
	if err != nil && ctx.Err() != nil {
		return // interrupted by shutdown: leave the job as it was
	}
	now := time.Now()
	n := SyncNotice{Key: j.Key, ConversationID: j.ConversationID, LegID: j.LegID, Rule: j.Rule, Err: err}
	if j.Conversation != nil {
		if leg := j.Conversation.Leg(j.LegID); leg != nil {
			n.UserID = leg.UserID
		}
	}
	var d *Deferred
	var oerr error
	switch {
	case err == nil:
		oerr = e.outbox.Ack(ctx, j.Key)
		n.State = SyncDone
	case errors.As(err, &d) && j.Deferrals >= maxDeferrals:
		// A sink that keeps deferring may never have written: the job
		// goes where an operator sees it rather than being acknowledged.
		reason := fmt.Sprintf("deferred %d times, last: %s", j.Deferrals, d.Reason)
		oerr = e.outbox.Bury(ctx, j, reason)
		n.State, n.Err = SyncDead, errors.New(reason)
		e.log.Error("sync deferred too often: moved to dead letters", "conversation", j.ConversationID, "leg", j.LegID, "rule", j.Rule, "reason", d.Reason)
	case d != nil:
		j.Deferrals++
		j.NextAttempt = now.Add(d.After)
		j.LastError = d.Reason
		oerr = e.outbox.Put(ctx, j)
		n.State, n.Next, n.Err = SyncDeferred, j.NextAttempt, nil
	case e.retry.Retryable(err) && (e.retry.MaxAttempts == 0 || j.Attempts+1 < e.retry.MaxAttempts):
		j.Attempts++
		j.NextAttempt = now.Add(e.retry.Backoff(j.Attempts, err))
		j.LastError = err.Error()
		oerr = e.outbox.Put(ctx, j)
		n.State, n.Next = SyncRetry, j.NextAttempt
		e.log.LogAttrs(ctx, slog.LevelWarn, "sync failed, will retry",
			slog.String("conversation", j.ConversationID), slog.String("leg", j.LegID), slog.String("rule", j.Rule),
			slog.Int("attempt", j.Attempts), slog.Time("next", j.NextAttempt), slog.String("error", err.Error()))
	default:
		j.Attempts++
		oerr = e.outbox.Bury(ctx, j, err.Error())
		n.State = SyncDead
		e.log.LogAttrs(ctx, slog.LevelError, "sync failed for good: moved to dead letters",
			slog.String("conversation", j.ConversationID), slog.String("leg", j.LegID), slog.String("rule", j.Rule),
			slog.Int("attempts", j.Attempts), slog.String("error", err.Error()))
	}
	n.Attempts = j.Attempts
	if oerr != nil {
		e.fail(ErrorNotice{ConversationID: j.ConversationID, LegID: j.LegID, Rule: j.Rule, Stage: "outbox", Err: oerr})
	}
	e.each(func(h *Hooks) {
		if h.Sync != nil {
			h.Sync(n)
		}
	})
}
