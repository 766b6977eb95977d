package ops

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"sync"
	"time"
)

// Check reports whether one part of the server works; nil means healthy.
type Check func(ctx context.Context) error

// Health aggregates checks for GET /healthz: 200 when every part is
// healthy, 503 with a JSON body naming what is down otherwise. Results are
// cached for TTL so probes never hammer Zendesk or Genesys.
type Health struct {
	TTL     time.Duration // default 5s
	Timeout time.Duration // per check, default 3s

	mu     sync.Mutex
	names  []string
	checks map[string]Check
	last   time.Time
	report Report
}

// Report is the /healthz body.
type Report struct {
	Status string            `json:"status"` // "ok" or "down"
	Parts  map[string]string `json:"parts"`  // part → "ok" or what is wrong
}

// Add registers a named check.
func (h *Health) Add(name string, c Check) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.checks == nil {
		h.checks = map[string]Check{}
	}
	if _, ok := h.checks[name]; !ok {
		h.names = append(h.names, name)
		sort.Strings(h.names)
	}
	h.checks[name] = c
	h.last = time.Time{}
}

// Check runs (or reuses) the checks. A result is reused for TTL, unless
// ctx ended before the checks did.
func (h *Health) Check(ctx context.Context) Report {
	h.mu.Lock()
	defer h.mu.Unlock()
	ttl, timeout := h.TTL, h.Timeout
	if ttl == 0 {
		ttl = 5 * time.Second
	}
	if timeout == 0 {
		timeout = 3 * time.Second
	}
	if !h.last.IsZero() && time.Since(h.last) < ttl {
		return h.report
	}
	r := Report{Status: "ok", Parts: map[string]string{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, name := range h.names {
		c := h.checks[name]
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			msg := "ok"
			if err := c(cctx); err != nil {
				msg = err.Error()
			}
			mu.Lock()
			r.Parts[name] = msg
			if msg != "ok" {
				r.Status = "down"
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(h.names) == 0 {
		r.Status = "down"
		r.Parts["server"] = "starting"
	}
	if ctx.Err() != nil {
		// The caller gave up (a probe's timeout, a ^C): the checks it
		// cut short say nothing about the server, so the next caller
		// runs them again.
		return r
	}
	h.last, h.report = time.Now(), r
	return r
}

// Handler serves GET /healthz.
func (h *Health) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := h.Check(r.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if rep.Status != "ok" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(rep)
	})
}
