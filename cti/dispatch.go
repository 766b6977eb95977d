package cti

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
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
		busy = map[string]bool{} // jobKeys of the deliveries in flight
		sem  = make(chan struct{}, e.syncConc)
		done = make(chan struct{}, 1)
	)
	t := time.NewTimer(0)
	defer t.Stop()
	// While lingering (WithBatchWait) the loop sleeps until lingerUntil:
	// new jobs and finished deliveries do not make it read the outbox again.
	var lingerUntil time.Time
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
		if !lingerUntil.IsZero() {
			if time.Now().Before(lingerUntil) {
				continue // t fires at lingerUntil
			}
			lingerUntil = time.Time{}
		}
		// Every slot busy: reading the outbox now would only load jobs
		// that cannot start (a durable outbox decodes each one); the
		// delivery that frees a slot wakes the loop (done).
		free := cap(sem) - len(sem)
		if free == 0 {
			t.Reset(outboxPoll)
			continue
		}
		// Snapshot what is in flight before reading the outbox: a delivery
		// that finishes in between has acked its job, so Due will not
		// return it, and one still running is filtered out.
		mu.Lock()
		inflight := maps.Clone(busy)
		mu.Unlock()
		// Read no more than the free slots can take, plus the jobs in
		// flight that Due returns again.
		unit := 1
		if e.batcher != nil {
			unit = e.batch
		}
		limit := min(4*e.batch, free*unit+len(inflight))
		now := time.Now()
		jobs, next, err := e.outbox.Due(ctx, now, limit)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.fail(ErrorNotice{Stage: "outbox", Err: err})
			t.Reset(time.Second)
			continue
		}
		if until := e.linger(jobs, inflight, now); !until.IsZero() {
			lingerUntil = until
			t.Reset(until.Sub(now))
			continue
		}
		for _, u := range e.units(jobs, inflight) {
			select {
			case sem <- struct{}{}:
			default:
				// All slots busy: the rest waits for one to free up.
				continue
			}
			mu.Lock()
			for _, j := range u {
				conv, rec := jobKeys(j)
				busy[conv] = true
				if rec != "" {
					busy[rec] = true
				}
			}
			mu.Unlock()
			wg.Add(1)
			e.delivering.Add(1)
			go func() {
				defer wg.Done()
				defer e.delivering.Add(-1)
				e.deliver(syncCtx, u)
				mu.Lock()
				for _, j := range u {
					conv, rec := jobKeys(j)
					delete(busy, conv)
					delete(busy, rec)
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

// linger returns when to deliver the due jobs if they should wait for
// others to share their batch (WithBatchWait), or the zero time to deliver
// them now: fewer than a full batch can start, none of them has been due
// for the batch wait yet, and none was tried before.
func (e *Engine) linger(jobs []*SyncJob, inflight map[string]bool, now time.Time) time.Time {
	if e.batcher == nil || e.batchWait <= 0 {
		return time.Time{}
	}
	var (
		n      int
		oldest time.Time
	)
	for _, j := range jobs {
		if conv, _ := jobKeys(j); inflight[conv] {
			continue
		}
		if j.Tries > 0 && !e.firstTry(j, false) {
			// A retry or a deferred job waited already, and jobs
			// retried after a 429 come due together anyway.
			return time.Time{}
		}
		n++
		due := j.EnqueuedAt
		if j.NextAttempt.After(due) {
			due = j.NextAttempt
		}
		if oldest.IsZero() || due.Before(oldest) {
			oldest = due
		}
	}
	if n == 0 || n >= e.batch {
		return time.Time{}
	}
	if until := oldest.Add(e.batchWait); until.After(now) {
		return until
	}
	return time.Time{}
}

// jobKeys are the keys a job's delivery is ordered under: its conversation,
// and the Zendesk record it writes to as far as the job tells (the popped
// ticket or user; "" when none).
func jobKeys(j *SyncJob) (conv, rec string) {
	conv = "conversation\x00" + j.ConversationID
	if r := j.Popped; r != nil && r.ID > 0 {
		rec = "record\x00" + string(r.Kind) + "\x00" + strconv.FormatInt(r.ID, 10)
	}
	return conv, rec
}

// units picks the due jobs (oldest first) to deliver now and groups them
// into deliveries: batches of up to e.batch jobs with a BatchSink, single
// jobs otherwise. A conversation has at most one job in flight, and so has
// a Zendesk record, except that the jobs of one record may share a batch
// (a BatchSink writes a batch's jobs of one ticket in order): syncs reach
// each ticket one after the other, oldest first, and a job of a record
// waits for the record's older jobs backing off after a failure (in this
// run; deferrals, which wait for late data, are not waited for). A job
// passed over (its conversation or record busy) holds back the later jobs
// of both.
func (e *Engine) units(jobs []*SyncJob, inflight map[string]bool) [][]*SyncJob {
	var (
		units  [][]*SyncJob
		passed = map[string]bool{} // keys of jobs passed over
		taken  = map[string]bool{} // conversations taken
		unitOf = map[string]int{}  // records taken → their unit
	)
	e.retryMu.Lock()
	defer e.retryMu.Unlock()
	for _, j := range jobs {
		conv, rec := jobKeys(j)
		pass := inflight[conv] || taken[conv] || passed[conv] || e.olderRetrying(rec, j)
		u, recTaken := -1, false
		if rec != "" {
			pass = pass || inflight[rec] || passed[rec]
			u, recTaken = unitOf[rec]
			if recTaken && (e.batcher == nil || len(units[u]) >= e.batch) {
				pass = true
			}
		}
		if pass {
			passed[conv] = true
			if rec != "" {
				passed[rec] = true
			}
			continue
		}
		switch {
		case recTaken:
		case e.batcher != nil && len(units) > 0 && len(units[len(units)-1]) < e.batch:
			u = len(units) - 1
		default:
			units = append(units, nil)
			u = len(units) - 1
		}
		units[u] = append(units[u], j)
		taken[conv] = true
		if rec != "" {
			unitOf[rec] = u
		}
	}
	return units
}

// olderRetrying reports whether a job of record rec queued before j waits
// out a retry backoff (a failed sync is not overtaken by a later one of
// the same ticket). e.retryMu must be held.
func (e *Engine) olderRetrying(rec string, j *SyncJob) bool {
	if rec == "" {
		return false
	}
	for k, at := range e.retrying[rec] {
		if k != j.Key && at.Before(j.EnqueuedAt) {
			return true
		}
	}
	return false
}

// noteRetry records whether job j waits out a retry backoff (olderRetrying).
func (e *Engine) noteRetry(j *SyncJob, waits bool) {
	_, rec := jobKeys(j)
	if rec == "" {
		return
	}
	e.retryMu.Lock()
	defer e.retryMu.Unlock()
	switch {
	case waits:
		if e.retrying == nil {
			e.retrying = map[string]map[string]time.Time{}
		}
		if e.retrying[rec] == nil {
			e.retrying[rec] = map[string]time.Time{}
		}
		e.retrying[rec][j.Key] = j.EnqueuedAt
	case e.retrying[rec] != nil:
		delete(e.retrying[rec], j.Key)
		if len(e.retrying[rec]) == 0 {
			delete(e.retrying, rec)
		}
	}
}

// deliver enriches and syncs one job or one batch, then settles each job.
func (e *Engine) deliver(ctx context.Context, jobs []*SyncJob) {
	// Record each try before anything can reach Zendesk (a job's first,
	// queued by this run, was recorded with the job), and enrich; the jobs
	// of a batch side by side (a durable outbox commits their puts
	// together instead of one fsync'd transaction after the other).
	ok := make([]bool, len(jobs))
	parallel(len(jobs), func(i int) {
		j := jobs[i]
		if !e.firstTry(j, true) {
			j.Tries++
			if err := e.outbox.Put(ctx, j); err != nil {
				if ctx.Err() == nil {
					e.fail(ErrorNotice{ConversationID: j.ConversationID, LegID: j.LegID, Rule: j.Rule, Stage: "outbox", Err: err})
				}
				return // not delivered now: the job is still due
			}
		}
		if e.enricher != nil && j.Conversation != nil {
			if err := e.enricher.Enrich(ctx, j.Conversation); err != nil {
				if ctx.Err() != nil {
					return // shutting down: the job stays in the outbox
				}
				// Retried a few times, whatever the policy's Retryable
				// (it judges the sink's errors), and never the last
				// attempt MaxAttempts leaves: then the sync goes on with
				// what is known.
				if IsRetryable(err) && j.Attempts < e.retry.EnrichAttempts &&
					(e.retry.MaxAttempts == 0 || j.Attempts+1 < e.retry.MaxAttempts) {
					e.settle(ctx, j, &enrichError{err})
					return
				}
				e.fail(ErrorNotice{ConversationID: j.ConversationID, LegID: j.LegID, Rule: j.Rule, Stage: "enrich", Err: err})
			}
		}
		ok[i] = true
	})
	if ctx.Err() != nil {
		return // shutting down: the jobs stay in the outbox
	}
	ready := make([]*SyncJob, 0, len(jobs))
	for i, j := range jobs {
		if ok[i] {
			ready = append(ready, j)
		}
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
		parallel(len(ready), func(i int) { e.settle(ctx, ready[i], errs[i]) })
	default:
		for _, j := range ready {
			e.settle(ctx, j, e.sink.Sync(ctx, j))
		}
	}
}

// enrichError is a transient enrichment failure the dispatcher retries.
type enrichError struct{ err error }

func (e *enrichError) Error() string { return "enrich: " + e.err.Error() }
func (e *enrichError) Unwrap() error { return e.err }

func isEnrichError(err error) bool {
	var ee *enrichError
	return errors.As(err, &ee)
}

// parallel runs f(0..n-1), up to 16 at a time; it returns when all have.
func parallel(n int, f func(i int)) {
	if n == 1 {
		f(0)
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
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
		if d.Checkpoint != "" {
			j.Checkpoint = d.Checkpoint
		}
		oerr = e.outbox.Put(ctx, j)
		n.State, n.Next, n.Err = SyncDeferred, j.NextAttempt, nil
	case (isEnrichError(err) || e.retry.Retryable(err)) && (e.retry.MaxAttempts == 0 || j.Attempts+1 < e.retry.MaxAttempts):
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
	e.noteRetry(j, n.State == SyncRetry && oerr == nil)
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
