package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/popup"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// world is the two emulators and what they were seeded with, and the
// client side of the Zendesk requests' timings.
type world struct {
	*emulators // with the seeded agents (Hello.Agents)

	mu sync.Mutex
	// sent and got: when the client sent each request and had its
	// response, by sequence number (the X-Loadtest-Seq header).
	seq       atomic.Int64
	sent, got map[int64]time.Time
}

// timedRequest is one request to the Zendesk emulator, timed by its
// listener and, when it came from ctikit's client, by the client.
type timedRequest struct {
	TimedRequest
	// sent and got: when ctikit's HTTP client sent the request and read
	// the response headers (zero for requests not timed by the client).
	sent, got time.Time
}

const seqHeader = "X-Loadtest-Seq"

// RoundTrip times ctikit's Zendesk requests on the client side: when each
// was handed to the HTTP transport and when its response headers came
// back, matched with the listener's times by a sequence header.
func (w *world) clientTiming(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		n := w.seq.Add(1)
		r = r.Clone(r.Context())
		r.Header.Set(seqHeader, strconv.FormatInt(n, 10))
		sent := time.Now()
		resp, err := next.RoundTrip(r)
		got := time.Now()
		w.mu.Lock()
		if w.sent == nil {
			w.sent, w.got = map[int64]time.Time{}, map[int64]time.Time{}
		}
		w.sent[n], w.got[n] = sent, got
		w.mu.Unlock()
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// takeTimed returns the requests timed so far and forgets them.
func (w *world) takeTimed() []timedRequest {
	lt := w.timed()
	w.mu.Lock()
	defer w.mu.Unlock()
	t := make([]timedRequest, len(lt))
	for i, q := range lt {
		t[i].TimedRequest = q
		if n := q.Seq; n > 0 {
			t[i].sent, t[i].got = w.sent[n], w.got[n]
		}
	}
	w.sent, w.got = nil, nil
	return t
}

// stackOptions says how one engine is built.
type stackOptions struct {
	rules *cti.Rules
	// batch: the sink is used as a cti.BatchSink (update_many); false
	// hides SyncBatch so that every sync is its own update.
	batch bool
	// updates is the Update Ticket budget (client transport and sink).
	updates zendesk.Budget
	store   string // memory | bolt
	dir     string // bolt directory
	hooks   cti.Hooks
	log     *slog.Logger
	// batchWait is the engine's cti.WithBatchWait.
	batchWait time.Duration
	// gate, when set, holds every delivery to the sink until it is closed
	// (to build a backlog).
	gate <-chan struct{}
}

// stack is one running engine wired as examples/server/app.go Build does:
// genesys client, enricher and source; zendesk client, directory, cached
// matcher, popup strategy, deduplicating popper, syncmap sink; a store.
type stack struct {
	eng    *cti.Engine
	src    *genesys.Source
	zc     *zendesk.Client
	dir    *zendesk.Directory
	store  cti.Store
	cancel context.CancelFunc
	done   chan error
	closer func() error
}

func (w *world) start(ctx context.Context, o stackOptions) (*stack, error) {
	log := o.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &stack{done: make(chan error, 1), closer: func() error { return nil }}
	switch o.store {
	case "bolt":
		st, err := syncmap.OpenStore(o.dir)
		if err != nil {
			return nil, err
		}
		s.store, s.closer = st, st.Close
	default:
		s.store = cti.NewMemoryStore()
	}
	// Genesys: the emulator answers at once; the client's own API pacing
	// is lifted so that it does not shape the load.
	gc, err := genesys.NewClient(genesys.Config{ClientID: w.ClientID, ClientSecret: w.ClientSecret, APIURL: w.GenesysURL, LoginURL: w.GenesysURL},
		genesys.WithRateLimits(600000, 6000, 1000), genesys.WithClientLogger(log))
	if err != nil {
		return nil, err
	}
	norm, err := match.NewNormalizer("US")
	if err != nil {
		return nil, err
	}
	enr, err := genesys.NewEnricher(gc, genesys.WithEnrichLogger(log))
	if err != nil {
		return nil, err
	}
	src, err := genesys.NewSource(gc, genesys.WithSubscribe(o.rules.Subscribe), genesys.WithPhoneNormalizer(norm.Normalize),
		genesys.WithEnricher(enr), genesys.WithLogger(log))
	if err != nil {
		return nil, err
	}
	s.src = src

	zopts := []zendesk.Option{zendesk.WithLogger(log), zendesk.WithHTTPTransport(w.clientTiming(zendesk.NewBaseTransport()))}
	if o.updates.Limit > 0 {
		zopts = append(zopts, zendesk.WithTicketUpdateBudget(o.updates.Limit, o.updates.Per))
	}
	zc, err := zendesk.New(zendesk.Config{URL: w.ZendeskURL, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken}, zopts...)
	if err != nil {
		return nil, err
	}
	s.zc = zc
	dir, err := zendesk.NewDirectory(zc, nil, zendesk.WithDirectoryLogger(log))
	if err != nil {
		return nil, err
	}
	s.dir = dir
	zm, err := match.NewZendesk(zc.Searcher(), match.WithNormalizer(norm), match.WithLogger(log))
	if err != nil {
		return nil, err
	}
	matcher := match.Chain(match.Log(log), match.Cache(match.CacheOptions{}))(zm)
	strategy := popup.Strategy{}
	zp, err := zendesk.NewPopper(zc, zendesk.WithPopperLogger(log))
	if err != nil {
		return nil, err
	}
	popper := popup.Dedupe(zp, popup.DedupeOptions{Strategy: strategy})
	sinkOpts := []syncmap.Option{syncmap.WithLogger(log)}
	if o.updates.Limit > 0 {
		perMinute := int(float64(o.updates.Limit) * float64(time.Minute) / float64(o.updates.Per))
		sinkOpts = append(sinkOpts, syncmap.WithUpdateRate(perMinute, 10))
	}
	sink, err := syncmap.NewSink(zc, o.rules, sinkOpts...)
	if err != nil {
		return nil, err
	}
	var sk cti.Sink = sink
	switch {
	case !o.batch:
		sk = cti.SinkFunc(sink.Sync) // one update per conversation
		if o.gate != nil {
			sk = gatedSink{o.gate, sk}
		}
	case o.gate != nil:
		sk = gatedBatch{gatedSink{o.gate, sink}, sink}
	}
	eng, err := cti.NewEngine(src, o.rules, cti.WithMatcher(matcher), cti.WithStrategy(strategy), cti.WithPopper(popper),
		cti.WithDirectory(dir), cti.WithSink(sk), cti.WithStore(s.store), cti.WithHooks(o.hooks), cti.WithLogger(log),
		cti.WithBatchWait(o.batchWait))
	if err != nil {
		return nil, err
	}
	s.eng = eng
	ctx, s.cancel = context.WithCancel(ctx)
	go func() {
		err := eng.Run(ctx)
		gc.Close()
		s.done <- err
	}()
	// Ready: the websockets are up and every agent is known to the
	// directory (warm agent cache).
	deadline := time.Now().Add(20 * time.Second)
	for src.Ready() != nil {
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("genesys source not ready: %w", src.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(w.Agents))
	for i, a := range w.Agents {
		wg.Go(func() {
			_, errs[i] = dir.Agent(ctx, &cti.AgentLeg{UserID: a.GenesysID, Email: a.Email})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		s.stop()
		return nil, fmt.Errorf("warming the agent directory: %w", err)
	}
	return s, nil
}

// gatedSink holds deliveries until its gate is closed.
type gatedSink struct {
	gate <-chan struct{}
	cti.Sink
}

func (g gatedSink) wait(ctx context.Context) error {
	select {
	case <-g.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g gatedSink) Sync(ctx context.Context, j *cti.SyncJob) error {
	if err := g.wait(ctx); err != nil {
		return err
	}
	return g.Sink.Sync(ctx, j)
}

type gatedBatch struct {
	gatedSink
	b cti.BatchSink
}

func (g gatedBatch) SyncBatch(ctx context.Context, jobs []*cti.SyncJob) []error {
	if err := g.wait(ctx); err != nil {
		errs := make([]error, len(jobs))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	return g.b.SyncBatch(ctx, jobs)
}

func (s *stack) stop() error {
	s.cancel()
	err := <-s.done
	if cerr := s.closer(); err == nil {
		err = cerr
	}
	return err
}
