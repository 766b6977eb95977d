package zendesktest

import (
	"context"
	"errors"
	"runtime"
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
// The line has one goroutine that sleeps in the nanosleep system call
// (see sleep_linux.go), which blocks its thread and wakes within the
// kernel's timer slack.
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
			preciseSleep(min(d, 5*time.Millisecond))
		}
		close(h.done)
		// The released request is next on this goroutine's P: let it
		// run now rather than after the next sleep's system call
		// returns the P to the scheduler.
		runtime.Gosched()
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
