package ops

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cxplay/ctikit/cti"
)

func TestHealth(t *testing.T) {
	var h Health
	h.TTL = time.Nanosecond
	w := httptest.NewRecorder()
	h.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	assert.Equal(t, 503, w.Code, "nothing registered yet: not ready")

	genesysErr := errors.New("notification socket not connected")
	h.Add("genesys", func(context.Context) error { return genesysErr })
	h.Add("zendesk", func(context.Context) error { return nil })
	w = httptest.NewRecorder()
	h.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	assert.Equal(t, 503, w.Code)
	assert.JSONEq(t, `{"status":"down","parts":{"genesys":"notification socket not connected","zendesk":"ok"}}`, w.Body.String())

	genesysErr = nil
	time.Sleep(time.Millisecond)
	w = httptest.NewRecorder()
	h.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	assert.Equal(t, 200, w.Code)
	assert.JSONEq(t, `{"status":"ok","parts":{"genesys":"ok","zendesk":"ok"}}`, w.Body.String())
}

func TestHealthCachesAndTimesOut(t *testing.T) {
	h := Health{TTL: time.Hour, Timeout: 10 * time.Millisecond}
	calls := 0
	h.Add("slow", func(ctx context.Context) error { calls++; <-ctx.Done(); return ctx.Err() })
	r := h.Check(context.Background())
	assert.Equal(t, "down", r.Status)
	assert.Contains(t, r.Parts["slow"], "deadline")
	h.Check(context.Background())
	assert.Equal(t, 1, calls, "cached within TTL")
}

// A probe that gives up (kubelet's timeout, a curl ^C) cancels its checks;
// their "context canceled" is not served to the next probes.
func TestHealthAbortedProbeIsNotCached(t *testing.T) {
	h := Health{TTL: time.Hour}
	calls := 0
	h.Add("zendesk", func(ctx context.Context) error {
		calls++
		select {
		case <-time.After(50 * time.Millisecond): // healthy, not instant
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	w := httptest.NewRecorder()
	h.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil).WithContext(ctx))
	assert.Equal(t, 503, w.Code, "the aborted probe's own answer")

	w = httptest.NewRecorder()
	h.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	assert.Equal(t, 200, w.Code, "the next probe runs the checks again: %s", w.Body.String())
	h.Check(context.Background())
	assert.Equal(t, 2, calls, "a complete result is cached")
}

func TestMetrics(t *testing.T) {
	store := cti.NewMemoryStore()
	require.NoError(t, store.Put(context.Background(), &cti.SyncJob{Key: "c/l", ConversationID: "c"}))
	m := NewMetrics(store)
	h := m.Hooks()
	h.Event(cti.Event{Type: cti.EventOffered})
	h.Pop(cti.PopNotice{Rule: "support", Decision: cti.Decision{Action: cti.ActionShow}, Latency: 30 * time.Millisecond})
	h.Pop(cti.PopNotice{Rule: "support", Decision: cti.Decision{Action: cti.ActionShow}, Err: errors.New("x")})
	h.Sync(cti.SyncNotice{State: cti.SyncDone})
	h.Error(cti.ErrorNotice{Stage: "pop"})
	m.SyncNotice("recording")

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(429) }))
	defer up.Close()
	c := &http.Client{Transport: m.Transport("zendesk", nil)}
	resp, err := c.Get(up.URL)
	require.NoError(t, err)
	resp.Body.Close()

	m.Engine(func() cti.Stats { return cti.Stats{Busy: 3, Workers: 5, Deliveries: 2} })

	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(w.Body)
	for _, want := range []string{
		`ctikit_events_total{type="offered"} 1`,
		`ctikit_pops_total{action="show",outcome="ok",rule="support"} 1`,
		`ctikit_pops_total{action="show",outcome="error",rule="support"} 1`,
		`ctikit_pop_latency_seconds_bucket{rule="support",le="0.05"} 1`,
		`ctikit_syncs_total{state="done"} 1`,
		`ctikit_errors_total{stage="pop"} 1`,
		`ctikit_sync_notices_total{kind="recording"} 1`,
		`ctikit_upstream_requests_total{service="zendesk",status="429"} 1`,
		`ctikit_syncs_pending 1`,
		`ctikit_syncs_dead 0`,
		`ctikit_conversations_busy 3`,
		`ctikit_engine_workers 5`,
		`ctikit_sync_deliveries 2`,
	} {
		assert.True(t, strings.Contains(string(body), want), "missing %s", want)
	}
}
