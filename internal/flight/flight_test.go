package flight_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cxplay/ctikit/internal/flight"
)

// lead starts a call for key that blocks until release is closed, and
// returns once it runs.
func lead(t *testing.T, g *flight.Group[int], key string, v int, err error, abandon bool, release chan struct{}) <-chan error {
	t.Helper()
	running := make(chan struct{})
	out := make(chan error, 1)
	go func() {
		got, gerr := g.Do(context.Background(), key, func() (int, error, bool) {
			close(running)
			<-release
			return v, err, abandon
		})
		if got != v || !errors.Is(gerr, err) {
			out <- errors.New("the leader did not get what its function returned")
			return
		}
		out <- nil
	}()
	<-running
	return out
}

// waitFor starts a caller of key that finds the call in flight, and
// returns once it waits for it.
func waitFor(t *testing.T, g *flight.Group[int], ctx context.Context, key string, ran *atomic.Int32) <-chan struct {
	v   int
	err error
} {
	t.Helper()
	waiting := make(chan struct{}, 1)
	flight.SetWaitingHook(func(string) { waiting <- struct{}{} })
	t.Cleanup(func() { flight.SetWaitingHook(nil) })
	out := make(chan struct {
		v   int
		err error
	}, 1)
	defer func() { <-waiting }()
	go func() {
		v, err := g.Do(ctx, key, func() (int, error, bool) { ran.Add(1); return -1, nil, false })
		out <- struct {
			v   int
			err error
		}{v, err}
	}()
	return out
}

func TestWaitersShareTheResult(t *testing.T) {
	var g flight.Group[int]
	var ran atomic.Int32
	release := make(chan struct{})
	done := lead(t, &g, "k", 7, nil, false, release)
	w := waitFor(t, &g, context.Background(), "k", &ran)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := <-w; r.v != 7 || r.err != nil || ran.Load() != 0 {
		t.Fatalf("waiter got %d, %v (ran its own: %d), want the leader's 7", r.v, r.err, ran.Load())
	}
	// The key is free again: the next call runs.
	v, err := g.Do(context.Background(), "k", func() (int, error, bool) { return 8, nil, false })
	if v != 8 || err != nil {
		t.Fatalf("after the call: %d, %v", v, err)
	}
}

func TestWaitersGetTheError(t *testing.T) {
	var g flight.Group[int]
	var ran atomic.Int32
	boom := errors.New("boom")
	release := make(chan struct{})
	done := lead(t, &g, "k", 0, boom, false, release)
	w := waitFor(t, &g, context.Background(), "k", &ran)
	close(release)
	<-done
	if r := <-w; !errors.Is(r.err, boom) {
		t.Fatalf("waiter got %v, want the shared error", r.err)
	}
}

func TestAbandonedCallIsNotShared(t *testing.T) {
	var g flight.Group[int]
	var ran atomic.Int32
	release := make(chan struct{})
	done := lead(t, &g, "k", 3, nil, true, release)
	w := waitFor(t, &g, context.Background(), "k", &ran)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r := <-w; !errors.Is(r.err, flight.ErrAbandoned) {
		t.Fatalf("waiter got %d, %v, want ErrAbandoned", r.v, r.err)
	}
}

func TestWaiterStopsAtItsContext(t *testing.T) {
	var g flight.Group[int]
	var ran atomic.Int32
	release := make(chan struct{})
	done := lead(t, &g, "k", 1, nil, false, release)
	ctx, cancel := context.WithCancel(context.Background())
	w := waitFor(t, &g, ctx, "k", &ran)
	cancel()
	if r := <-w; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("waiter got %v, want context.Canceled while the call runs", r.err)
	}
	close(release)
	<-done
}

func TestPanicAbandonsAndFreesTheKey(t *testing.T) {
	var g flight.Group[int]
	running, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not reach the caller that ran the call")
			}
		}()
		_, _ = g.Do(context.Background(), "k", func() (int, error, bool) {
			close(running)
			<-release
			panic("bug")
		})
	})
	<-running
	var ran atomic.Int32
	w := waitFor(t, &g, context.Background(), "k", &ran)
	close(release)
	wg.Wait()
	if r := <-w; !errors.Is(r.err, flight.ErrAbandoned) {
		t.Fatalf("waiter got %v, want ErrAbandoned", r.err)
	}
	v, err := g.Do(context.Background(), "k", func() (int, error, bool) { return 2, nil, false })
	if v != 2 || err != nil {
		t.Fatalf("after the panic: %d, %v", v, err)
	}
}
