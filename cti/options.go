package cti

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Option configures an Engine.
type Option func(*Engine) error

// WithMatcher sets the matcher that identifies customers. Required when a
// rule pops something.
func WithMatcher(m Matcher) Option { return func(e *Engine) error { e.matcher = m; return nil } }

// WithStrategy sets the pop-up strategy (package popup has the standard
// one). Required when a rule pops something.
func WithStrategy(s Strategy) Option { return func(e *Engine) error { e.strategy = s; return nil } }

// WithPopper sets the popper. Required when a rule pops something.
func WithPopper(p Popper) Option { return func(e *Engine) error { e.popper = p; return nil } }

// WithDirectory sets the agent directory. Required when a rule pops something.
func WithDirectory(d Directory) Option { return func(e *Engine) error { e.dir = d; return nil } }

// WithChooser sets who presents a list of candidates to the agent (rules
// with multiple: choose). Without one, such pops show nothing.
func WithChooser(c Chooser) Option { return func(e *Engine) error { e.chooser = c; return nil } }

// WithSink sets where finished conversations are synced. Required.
func WithSink(s Sink) Option { return func(e *Engine) error { e.sink = s; return nil } }

// WithEnricher sets the enricher run before each sync. By default the
// source is used when it implements Enricher.
func WithEnricher(en Enricher) Option { return func(e *Engine) error { e.enricher = en; return nil } }

// WithStore sets the state store and outbox (default: a MemoryStore).
func WithStore(s Store) Option {
	return func(e *Engine) error {
		if s == nil {
			return errors.New("cti: WithStore(nil)")
		}
		e.state, e.outbox = s, s
		return nil
	}
}

// WithLogger sets the logger. Nil (the default) means silence.
func WithLogger(l *slog.Logger) Option { return func(e *Engine) error { e.log = l; return nil } }

// WithHooks adds observers; it may be given several times.
func WithHooks(h Hooks) Option {
	return func(e *Engine) error { e.hooks = append(e.hooks, h); return nil }
}

// Timing holds the engine's durations. Zero fields take the defaults.
type Timing struct {
	// Grace is how long after a disconnect a leg with no wrap-up expected
	// waits (for a late wrap-up) before it is synced. Default 10s.
	Grace time.Duration
	// WrapupTimeout bounds the wait for an expected wrap-up: past it the
	// leg is synced with what is known. Default 2h.
	WrapupTimeout time.Duration
	// IdleTimeout forgets a conversation not updated for this long (its
	// end was never seen). Default 24h.
	IdleTimeout time.Duration
	// Tombstone is how long a finished conversation is remembered so that
	// late duplicates are dropped. Default 2h.
	Tombstone time.Duration
	// Drain is how long in-flight syncs may run after Run's context is
	// done. Default 10s.
	Drain time.Duration
}

// DefaultTiming is the timing used for zero Timing fields.
var DefaultTiming = Timing{
	Grace:         10 * time.Second,
	WrapupTimeout: 2 * time.Hour,
	IdleTimeout:   24 * time.Hour,
	Tombstone:     2 * time.Hour,
	Drain:         10 * time.Second,
}

// WithTiming overrides the engine's durations (zero fields keep defaults).
func WithTiming(t Timing) Option {
	return func(e *Engine) error {
		for _, d := range []time.Duration{t.Grace, t.WrapupTimeout, t.IdleTimeout, t.Tombstone, t.Drain} {
			if d < 0 {
				return errors.New("cti: negative duration in Timing")
			}
		}
		set := func(dst *time.Duration, v time.Duration) {
			if v > 0 {
				*dst = v
			}
		}
		set(&e.timing.Grace, t.Grace)
		set(&e.timing.WrapupTimeout, t.WrapupTimeout)
		set(&e.timing.IdleTimeout, t.IdleTimeout)
		set(&e.timing.Tombstone, t.Tombstone)
		set(&e.timing.Drain, t.Drain)
		return nil
	}
}

// RetryPolicy governs sync retries.
type RetryPolicy struct {
	// Retryable decides whether a sink error is transient. Default IsRetryable.
	Retryable func(error) bool
	// Backoff gives the wait before attempt n+1 after n failures. Default
	// DefaultBackoff.
	Backoff func(n int, err error) time.Duration
	// MaxAttempts buries a job after this many transient failures; 0
	// retries forever (the default: never lose a sync to an outage).
	MaxAttempts int
	// EnrichAttempts is how many times a transiently failing enrichment
	// delays a sync before it proceeds without. Default 3.
	EnrichAttempts int
}

// DefaultBackoff waits 1s, 2s, 4s, ... up to 5 minutes, with ±20% jitter,
// and never less than the server's Retry-After.
func DefaultBackoff(n int, err error) time.Duration {
	d := time.Second << min(max(n-1, 0), 9)
	d = min(d, 5*time.Minute)
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	if ra, ok := RetryAfter(err); ok && ra > d {
		d = ra
	}
	return d
}

// WithRetry sets the sync retry policy; zero fields keep defaults.
func WithRetry(p RetryPolicy) Option {
	return func(e *Engine) error {
		if p.MaxAttempts < 0 || p.EnrichAttempts < 0 {
			return errors.New("cti: negative attempts in RetryPolicy")
		}
		if p.Retryable != nil {
			e.retry.Retryable = p.Retryable
		}
		if p.Backoff != nil {
			e.retry.Backoff = p.Backoff
		}
		e.retry.MaxAttempts = p.MaxAttempts
		if p.EnrichAttempts > 0 {
			e.retry.EnrichAttempts = p.EnrichAttempts
		}
		return nil
	}
}

// WithSyncConcurrency sets how many sync jobs (or batches) run at once.
// Default 8.
func WithSyncConcurrency(n int) Option {
	return func(e *Engine) error {
		if n < 1 {
			return errors.New("cti: sync concurrency must be at least 1")
		}
		e.syncConc = n
		return nil
	}
}

// WithBatchSize sets the most jobs handed to a BatchSink at once. Default
// 100 (Zendesk update_many's limit).
func WithBatchSize(n int) Option {
	return func(e *Engine) error {
		if n < 1 {
			return errors.New("cti: batch size must be at least 1")
		}
		e.batch = n
		return nil
	}
}

// WithBatchWait lets a due sync job wait up to d for others to share its
// batch, when the sink is a BatchSink and fewer than a full batch are due
// (like a producer's linger). Several syncs then cost one Zendesk write
// (update_many, create_many) instead of one each, at the price of up to d
// more before a sync lands. Jobs already due for d or more, full batches,
// and retries go at once. Default 0: every due job goes at once.
func WithBatchWait(d time.Duration) Option {
	return func(e *Engine) error {
		if d < 0 {
			return errors.New("cti: batch wait must not be negative")
		}
		e.batchWait = d
		return nil
	}
}
