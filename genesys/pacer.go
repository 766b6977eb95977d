package genesys

import (
	"context"
	"sync"
	"time"
)

// pacer spaces requests to stay under a rate (a GCRA token bucket: perMinute
// requests a minute, bursts of up to burst), and holds every request back
// while the server has asked to wait (429 Retry-After). Safe for concurrent
// use.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration // 0: unlimited
	burst    int
	tat      time.Time // theoretical arrival time of the next request
	until    time.Time // nothing leaves before this (server asked to wait)
}

func newPacer(perMinute, burst int) *pacer {
	p := &pacer{burst: max(burst, 1)}
	if perMinute > 0 {
		p.interval = time.Minute / time.Duration(perMinute)
	}
	return p
}

// reserve books a slot and returns how long to wait for it.
func (p *pacer) reserve(now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	var wait time.Duration
	if p.interval > 0 {
		tat := p.tat
		if tat.Before(now) {
			tat = now
		}
		wait = tat.Sub(now) - time.Duration(p.burst-1)*p.interval
		p.tat = tat.Add(p.interval)
	}
	if d := p.until.Sub(now); d > wait {
		wait = d
	}
	return max(wait, 0)
}

// wait blocks until the caller may send, or ctx is done.
func (p *pacer) wait(ctx context.Context) error {
	d := p.reserve(time.Now())
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pause holds every request until t.
func (p *pacer) pause(t time.Time) {
	p.mu.Lock()
	if t.After(p.until) {
		p.until = t
	}
	p.mu.Unlock()
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
