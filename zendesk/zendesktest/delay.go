package zendesktest

import (
	"context"
	"errors"
	"sync"
	"time"
)

// delayLine holds requests for the injected latency (WithLatency) and
// releases each at its deadline, to about 0.1 ms.
//
// A Go timer per request would fire late: when every P is idle the runtime
// sleeps in the network poller, whose timeout is whole milliseconds, so a
// 20 ms timer fired 0.3–1 ms late at p50 on the benchmark VMs, and
// figure 2 of BENCHMARKS.md counted that against ctikit's pop latency.
// The line has one goroutine that waits on a timerfd through the network
// poller (see sleep_linux.go): it wakes within the kernel's timer slack
// and, parked meanwhile, holds no P.
//
// Deadlines arrive in order while the latency is constant, so the line is
// a FIFO: after SetLatency lowers the latency, a request may wait behind
// an older one by at most the difference.
type delayLine struct {
	closed <-chan struct{}

	mu      sync.Mutex
	q       []*hold
	running bool
	wake    chan struct{} // buffered(1): the line has new work
	stopped chan struct{} // closed when the line's goroutine has returned
}

type hold struct {
	at   time.Time
	done chan struct{}
}

// wait holds the caller until at; it returns early with ctx's error or
// errClosed when the emulator closes.
func (l *delayLine) wait(ctx context.Context, at time.Time) error {
	h := &hold{at: at, done: make(chan struct{})}
	l.mu.Lock()
	select {
	case <-l.closed:
		l.mu.Unlock()
		return errClosed
	default:
	}
	l.q = append(l.q, h)
	if !l.running {
		l.running = true
		l.wake = make(chan struct{}, 1)
		l.stopped = make(chan struct{})
		go l.run()
	}
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closed:
		return errClosed
	}
}

// run releases the queued holds at their deadlines until the emulator
// closes.
func (l *delayLine) run() {
	defer close(l.stopped)
	s := newSleeper()
	defer s.close()
	for {
		l.mu.Lock()
		var h *hold
		if len(l.q) > 0 {
			h = l.q[0]
			l.q[0] = nil
			l.q = l.q[1:]
		}
		l.mu.Unlock()
		if h == nil {
			select {
			case <-l.wake:
				continue
			case <-l.closed:
				return
			}
		}
		for {
			d := time.Until(h.at)
			if d <= 0 {
				break
			}
			select {
			case <-l.closed:
				return
			default:
			}
			// Sleep in slices, so that Close is noticed promptly.
			s.sleep(min(d, 5*time.Millisecond))
		}
		close(h.done)
	}
}

// stop waits for the line's goroutine, once the emulator is closed.
func (l *delayLine) stop() {
	l.mu.Lock()
	running, stopped := l.running, l.stopped
	l.mu.Unlock()
	if running {
		<-stopped
	}
}

// errClosed: the emulator was closed while a request was held.
var errClosed = errors.New("zendesktest: emulator closed")
