// Package ops holds the reference server's operational surface: Prometheus
// metrics fed by engine hooks and HTTP transports, and the health report.
package ops

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cxplay/ctikit/cti"
)

// Metrics are the server's Prometheus metrics, on a private registry.
type Metrics struct {
	reg        *prometheus.Registry
	events     *prometheus.CounterVec
	pops       *prometheus.CounterVec
	popLatency *prometheus.HistogramVec
	syncs      *prometheus.CounterVec
	errors     *prometheus.CounterVec
	notices    *prometheus.CounterVec
	duplicates prometheus.Counter
	calls      *prometheus.CounterVec
	callTime   *prometheus.HistogramVec
}

// NewMetrics registers the metrics. outbox, when it implements
// cti.OutboxInspector, feeds the pending / dead gauges at scrape time.
func NewMetrics(outbox cti.Outbox) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ctikit_events_total", Help: "Agent leg lifecycle events derived by the engine.",
	}, []string{"type"})
	m.pops = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ctikit_pops_total", Help: "Screen pop attempts by rule, decision and outcome.",
	}, []string{"rule", "action", "outcome"})
	m.popLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ctikit_pop_latency_seconds", Help: "From the Genesys event received to the pop done.",
		Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"rule"})
	m.syncs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ctikit_syncs_total", Help: "Sync job transitions: queued, done, retry, deferred, dead.",
	}, []string{"state"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ctikit_errors_total", Help: "Failures the engine logged and moved past, by stage.",
	}, []string{"stage"})
	m.notices = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ctikit_sync_notices_total",
		Help: "What the Zendesk sink worked around, by kind: field_rejected, ticket_fallback, truncated, template, late_data, recording (synced without it).",
	}, []string{"kind"})
	m.duplicates = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ctikit_late_duplicates_total", Help: "Snapshots of finished conversations dropped.",
	})
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ctikit_upstream_requests_total", Help: "HTTP requests to Genesys Cloud and Zendesk by status.",
	}, []string{"service", "status"})
	m.callTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "ctikit_upstream_request_seconds", Help: "HTTP request duration to Genesys Cloud and Zendesk.",
		Buckets: prometheus.DefBuckets,
	}, []string{"service"})
	m.reg.MustRegister(m.events, m.pops, m.popLatency, m.syncs, m.errors, m.notices, m.duplicates, m.calls, m.callTime,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	if in, ok := outbox.(cti.OutboxInspector); ok {
		stat := func(pick func(cti.OutboxStats) int) func() float64 {
			return func() float64 {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				s, err := in.Stats(ctx)
				if err != nil {
					return -1
				}
				return float64(pick(s))
			}
		}
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ctikit_syncs_pending", Help: "Sync jobs waiting in the outbox."},
				stat(func(s cti.OutboxStats) int { return s.Pending })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "ctikit_syncs_dead", Help: "Sync jobs in the dead letters."},
				stat(func(s cti.OutboxStats) int { return s.Dead })),
		)
	}
	return m
}

// Engine exposes an engine's load as gauges: conversations with work
// queued or running, worker goroutines, sync deliveries in flight. Call it
// once, after the engine is built.
func (m *Metrics) Engine(stats func() cti.Stats) {
	gauge := func(name, help string, pick func(cti.Stats) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(pick(stats())) })
	}
	m.reg.MustRegister(
		gauge("ctikit_conversations_busy", "Conversations with a step queued or running in the engine.", func(s cti.Stats) int { return s.Busy }),
		gauge("ctikit_engine_workers", "Engine worker goroutines, busy or idle.", func(s cti.Stats) int { return s.Workers }),
		gauge("ctikit_sync_deliveries", "Sync deliveries in flight.", func(s cti.Stats) int { return s.Deliveries }),
	)
}

// SyncNotice counts a notice of the Zendesk sink (syncmap.WithNotify) by
// its kind.
func (m *Metrics) SyncNotice(kind string) { m.notices.WithLabelValues(kind).Inc() }

// Hooks returns the engine hooks that feed the metrics.
func (m *Metrics) Hooks() cti.Hooks {
	return cti.Hooks{
		Event: func(e cti.Event) { m.events.WithLabelValues(e.Type.String()).Inc() },
		Pop: func(n cti.PopNotice) {
			outcome := "ok"
			if n.Err != nil {
				outcome = "error"
			}
			action := string(n.Decision.Action)
			if action == "" {
				action = "none"
			}
			m.pops.WithLabelValues(n.Rule, action, outcome).Inc()
			if n.Err == nil && (n.Decision.Action == cti.ActionShow || n.Decision.Action == cti.ActionCreate) {
				m.popLatency.WithLabelValues(n.Rule).Observe(n.Latency.Seconds())
			}
		},
		Sync:      func(n cti.SyncNotice) { m.syncs.WithLabelValues(string(n.State)).Inc() },
		Error:     func(n cti.ErrorNotice) { m.errors.WithLabelValues(n.Stage).Inc() },
		Duplicate: func(string) { m.duplicates.Inc() },
	}
}

// Transport counts requests to service ("genesys", "zendesk") by status
// around next (http.DefaultTransport when nil).
func (m *Metrics) Transport(service string, next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = pooled
	}
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := next.RoundTrip(r)
		m.callTime.WithLabelValues(service).Observe(time.Since(start).Seconds())
		status := "error"
		if err == nil {
			status = strconv.Itoa(resp.StatusCode)
		}
		m.calls.WithLabelValues(service, status).Inc()
		return resp, err
	})
}

// pooled is the default transport under the metrics: http.DefaultTransport
// keeps 2 idle connections per host, far too few for one Zendesk account
// under load (every other request would open a new connection).
var pooled = func() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 100
	return t
}()

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry exposes the registry for tests and extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }
