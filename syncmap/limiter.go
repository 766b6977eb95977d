package syncmap

import (
	"context"
	"sync"
	"time"
)

// limiter is a token bucket pacing Zendesk writes, which also pauses
// everyone when Zendesk answers 429 with Retry-After.
type limiter struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	pause  time.Time // no request before this
}

func newLimiter(perMinute, burst int) *limiter {
	return &limiter{rate: float64(perMinute) / 60, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

// Wait blocks until a request may be sent or ctx is done.
func (l *limiter) Wait(ctx context.Context) error {
	for {
		l.mu.Lock()
		now := time.Now()
		var wait time.Duration
		if now.Before(l.pause) {
			wait = l.pause.Sub(now)
		} else {
			l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
			l.last = now
			if l.tokens >= 1 {
				l.tokens--
				l.mu.Unlock()
				return nil
			}
			wait = time.Duration((1 - l.tokens) / l.rate * float64(time.Second))
		}
		l.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Paused blocks while a 429's Retry-After holds requests back (reads do
// not take tokens, but respect the pause).
func (l *limiter) Paused(ctx context.Context) error {
	l.mu.Lock()
	wait := time.Until(l.pause)
	l.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Backoff holds every request back for d (a 429's Retry-After).
func (l *limiter) Backoff(d time.Duration) {
	if d <= 0 {
		return
	}
	l.mu.Lock()
	if until := time.Now().Add(d); until.After(l.pause) {
		l.pause = until
	}
	l.mu.Unlock()
}

// keyedMutex serializes work per key (a ticket id): writes to one ticket
// keep their order.
type keyedMutex struct {
	mu sync.Mutex
	m  map[int64]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) Lock(key int64) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[int64]*keyedEntry{}
	}
	e := k.m[key]
	if e == nil {
		e = &keyedEntry{}
		k.m[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
