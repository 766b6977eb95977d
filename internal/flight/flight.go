// Package flight shares one call among concurrent callers of the same key,
// as golang.org/x/sync/singleflight does, but runs the call on the first
// caller's goroutine: singleflight.DoChan starts a goroutine per call,
// whose stack grew through the HTTP client on every pop (~50 µs on the
// pop's path, BENCHMARKS.md figure 2).
package flight

import (
	"context"
	"errors"
	"sync"
)

// ErrAbandoned is what a waiting caller gets when the call it waited for
// gave no result to share: its function said to abandon it, or panicked.
var ErrAbandoned = errors.New("flight: the shared call was abandoned")

// testHookWaiting, when set, is called as a caller starts waiting for a
// call in flight.
var testHookWaiting func(key string)

// Group runs one call per key at a time. The zero value is ready to use;
// it is safe for concurrent use.
type Group[V any] struct {
	mu sync.Mutex
	m  map[string]*call[V]
}

type call[V any] struct {
	done      chan struct{} // closed when val, err and abandoned are set
	val       V
	err       error
	abandoned bool
}

// Do runs fn for key on the calling goroutine and returns its result,
// unless a call for key is already running: then Do waits for that
// call's result, or until ctx is done (returning ctx.Err()). When fn
// returns abandon (or panics; the panic goes on up the calling
// goroutine), the callers waiting for it get ErrAbandoned instead of its
// result; the caller that ran it gets what fn returned.
func (g *Group[V]) Do(ctx context.Context, key string, fn func() (v V, err error, abandon bool)) (V, error) {
	g.mu.Lock()
	if c, ok := g.m[key]; ok {
		g.mu.Unlock()
		if testHookWaiting != nil {
			testHookWaiting(key)
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			var zero V
			return zero, ctx.Err()
		}
		if c.abandoned {
			var zero V
			return zero, ErrAbandoned
		}
		return c.val, c.err
	}
	if g.m == nil {
		g.m = map[string]*call[V]{}
	}
	c := &call[V]{done: make(chan struct{}), abandoned: true} // until fn returns
	g.m[key] = c
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.m, key)
		g.mu.Unlock()
		close(c.done)
	}()
	v, err, abandon := fn()
	c.val, c.err, c.abandoned = v, err, abandon
	return v, err
}
