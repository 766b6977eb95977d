package main

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/config"
	"github.com/cxplay/ctikit/examples/server/internal/ops"
	"github.com/cxplay/ctikit/examples/server/internal/panel"
	"github.com/cxplay/ctikit/genesys"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/popup"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/zendesk"
)

// Setup is everything the server is built from: the rules and where
// Genesys, Zendesk and the state live.
type Setup struct {
	Config   *config.Config
	Genesys  genesys.Config
	Zendesk  zendesk.Config
	StateDir string // "" keeps state in memory (tests only)
	Listen   string
	// PhoneRegion is the default region for national phone numbers.
	PhoneRegion string
	// TalkAppID writes voice syncs as Talk Partner Edition call records.
	TalkAppID int64
	// ZAF protects the panel in real mode; nil disables the panel there.
	ZAF *panel.ZAF
	// SyncBatchWait lets a finished conversation's sync wait up to this
	// long for others to share one Zendesk write (cti.WithBatchWait); 0
	// writes each at once. Real mode: CTI_SYNC_BATCH_WAIT, default
	// DefaultSyncBatchWait.
	SyncBatchWait time.Duration
	// RecordingUpload copies voice and callback recordings from Genesys
	// into Zendesk, where agents can play them (syncmap.WithRecordingUpload).
	// Real mode: CTI_RECORDING_UPLOAD; on in the demo.
	RecordingUpload bool
	Demo            bool
	Log             *slog.Logger
	// GenesysOptions and ZendeskOptions are appended to the notification
	// source's and the Zendesk client's options (tests shorten the
	// heartbeat watchdog and the attempt timeout with them).
	GenesysOptions []genesys.Option
	ZendeskOptions []zendesk.Option
}

// DefaultSyncBatchWait is the reference server's sync batch wait: a
// second more before a sync lands, against one create_many or update_many
// for the conversations that end together (BENCHMARKS.md, figure 1).
const DefaultSyncBatchWait = time.Second

// App is a built server: the engine, its collaborators and the HTTP surface.
type App struct {
	setup   Setup
	log     *slog.Logger
	Engine  *cti.Engine
	Source  *genesys.Source
	Zendesk *zendesk.Client
	Panel   *panel.Panel
	Metrics *ops.Metrics
	Health  *ops.Health
	Store   cti.Store
	closers []func() error
	ln      net.Listener
	handler http.Handler
}

// Build wires every piece. It does no network I/O: connecting happens in Run.
func Build(s Setup) (*App, error) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &App{setup: s, log: log, Health: &ops.Health{}}
	rules := &s.Config.Rules

	// State: the durable outbox and engine memory.
	if s.StateDir != "" {
		st, err := syncmap.OpenStore(s.StateDir)
		if err != nil {
			return nil, fmt.Errorf("state directory (CTI_STATE_DIR=%s): %w", s.StateDir, err)
		}
		a.Store = st
		a.closers = append(a.closers, st.Close)
		// The panel's session key lives with the state, so a restart does
		// not sign every agent out (the store's lock keeps it ours).
		if s.ZAF != nil {
			if err := s.ZAF.KeepSessions(s.StateDir); err != nil {
				st.Close()
				return nil, fmt.Errorf("state directory (CTI_STATE_DIR=%s): %w", s.StateDir, err)
			}
		}
	} else {
		a.Store = cti.NewMemoryStore()
	}
	a.Metrics = ops.NewMetrics(a.Store)

	// Genesys: client, enrichment, notification source.
	gc, err := genesys.NewClient(s.Genesys, genesys.WithHTTPTransport(a.Metrics.Transport("genesys", nil)),
		genesys.WithClientLogger(log))
	if err != nil {
		return nil, fmt.Errorf("genesys: %w", err)
	}
	a.closers = append(a.closers, gc.Close)
	norm, err := match.NewNormalizer(s.PhoneRegion)
	if err != nil {
		return nil, fmt.Errorf("phone region (CTI_PHONE_REGION=%s): %w", s.PhoneRegion, err)
	}
	enr, err := genesys.NewEnricher(gc, genesys.WithEnrichLogger(log))
	if err != nil {
		return nil, fmt.Errorf("genesys: %w", err)
	}
	gopts := []genesys.Option{genesys.WithSubscribe(rules.Subscribe), genesys.WithPhoneNormalizer(norm.Normalize),
		genesys.WithEnricher(enr), genesys.WithLogger(log)}
	src, err := genesys.NewSource(gc, append(gopts, s.GenesysOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("genesys: %w", err)
	}
	a.Source = src

	// Zendesk: client, directory, matcher, strategy, popper, sink.
	zopts := []zendesk.Option{zendesk.WithHTTPTransport(a.Metrics.Transport("zendesk", nil)), zendesk.WithLogger(log)}
	if s.TalkAppID != 0 {
		zopts = append(zopts, zendesk.WithAppID(s.TalkAppID))
	}
	zc, err := zendesk.New(s.Zendesk, append(zopts, s.ZendeskOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("zendesk: %w", err)
	}
	a.Zendesk = zc
	dir, err := zendesk.NewDirectory(zc, s.Config.Agents, zendesk.WithDirectoryLogger(log))
	if err != nil {
		return nil, fmt.Errorf("agents: %w", err)
	}
	zm, err := match.NewZendesk(zc.Searcher(), match.WithNormalizer(norm), match.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("matcher: %w", err)
	}
	matcher := match.Chain(match.Log(log), match.Cache(match.CacheOptions{}))(zm)
	strategy := popup.Strategy{Subject: subjects(s.Config)}
	zp, err := zendesk.NewPopper(zc, zendesk.WithPopperLogger(log))
	if err != nil {
		return nil, fmt.Errorf("zendesk popper: %w", err)
	}
	popper := popup.Dedupe(zp, popup.DedupeOptions{Strategy: strategy})
	sinkOpts := []syncmap.Option{syncmap.WithFormat(s.Config.Time.Format()), syncmap.WithLogger(log),
		syncmap.WithNotify(func(n syncmap.Notice) { a.Metrics.SyncNotice(string(n.Kind)) })}
	if s.TalkAppID != 0 {
		sinkOpts = append(sinkOpts, syncmap.WithTalkApp(s.TalkAppID))
	}
	if s.RecordingUpload {
		sinkOpts = append(sinkOpts, syncmap.WithRecordingUpload(src))
	}
	sink, err := syncmap.NewSink(zc, rules, sinkOpts...)
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}

	pnl, err := panel.New(panel.Options{Directory: dir, ZendeskURL: s.Zendesk.URL, Logger: log})
	if err != nil {
		return nil, err
	}
	a.Panel = pnl
	eng, err := cti.NewEngine(src, rules,
		cti.WithMatcher(matcher), cti.WithStrategy(strategy), cti.WithPopper(popper), cti.WithDirectory(dir),
		cti.WithChooser(pnl), cti.WithSink(sink), cti.WithStore(a.Store),
		cti.WithHooks(pnl.Hooks()), cti.WithHooks(a.Metrics.Hooks()), cti.WithLogger(log),
		cti.WithBatchWait(s.SyncBatchWait))
	if err != nil {
		return nil, err
	}
	pnl.SetChooser(eng)
	a.Engine = eng
	a.Metrics.Engine(eng.Stats)

	a.Health.Add("genesys", func(context.Context) error { return src.Ready() })
	a.Health.Add("zendesk", zc.Ping)

	mux := http.NewServeMux()
	mux.Handle("GET /healthz", a.Health.Handler())
	mux.Handle("GET /metrics", a.Metrics.Handler())
	switch {
	case s.Demo:
		mux.Handle("/panel/", http.StripPrefix("/panel", pnl.Handler(panel.Loopback{}, true)))
		mux.Handle("GET /{$}", http.RedirectHandler("/panel/", http.StatusFound))
	case s.ZAF != nil:
		mux.Handle("/panel/", http.StripPrefix("/panel", pnl.Handler(s.ZAF, false)))
	default:
		mux.Handle("/panel/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "the agent panel is off: set CTI_ZAF_PUBLIC_KEY and CTI_ZAF_AUDIENCE (see examples/server/zendesk-app)", http.StatusNotFound)
		}))
	}
	a.handler = limitBodies(mux)
	return a, nil
}

// subjects renders a rule's subject template through syncmap, so ticket
// subjects use the same data points as sync templates.
func subjects(cfg *config.Config) popup.SubjectFunc {
	f := cfg.Time.Format()
	return func(r *cti.Rule, c *cti.Conversation) string {
		if r == nil || r.Subject == "" {
			return popup.DefaultSubject(r, c)
		}
		t, err := syncmap.Parse("subject", r.Subject)
		if err != nil {
			return popup.DefaultSubject(r, c)
		}
		leg := ""
		if len(c.Agents) > 0 {
			leg = c.Agents[len(c.Agents)-1].ID
		}
		out, err := t.Render(syncmap.NewData(&cti.SyncJob{ConversationID: c.ID, LegID: leg, Conversation: c}, f), f)
		if err != nil || strings.TrimSpace(out) == "" {
			return popup.DefaultSubject(r, c)
		}
		return out
	}
}

// limitBodies caps request bodies on every handler.
func limitBodies(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
		next.ServeHTTP(w, r)
	})
}

// Listen opens the listener (so the caller learns the address before Run).
func (a *App) Listen() (net.Addr, error) {
	ln, err := net.Listen("tcp", a.setup.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (CTI_LISTEN): %w", a.setup.Listen, err)
	}
	a.ln = ln
	return ln.Addr(), nil
}

// Run serves HTTP and runs the engine until ctx is done, then shuts down:
// the engine lets in-flight syncs finish (or leaves them in the outbox),
// the panels' live streams end and the HTTP server drains.
func (a *App) Run(ctx context.Context) error {
	if a.ln == nil {
		if _, err := a.Listen(); err != nil {
			return err
		}
	}
	srv := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second, // the SSE stream lifts it per write
		IdleTimeout:       90 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := a.Engine.Run(gctx)
		if err != nil {
			return fmt.Errorf("engine: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		// Shutdown waits for running handlers: end the panels' live
		// streams, which would otherwise run until the timeout.
		a.Panel.CloseStreams()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			a.log.Warn("HTTP requests still running at shutdown: closing their connections", "err", err)
			_ = srv.Close()
		}
		return nil
	})
	err := g.Wait()
	for _, c := range a.closers {
		if cerr := c(); cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// zafFromEnv builds the panel's Zendesk app authenticator from
// CTI_ZAF_PUBLIC_KEY (a PEM file) and CTI_ZAF_AUDIENCE (the installation
// URL, comma-separated for several); nil when neither is set.
func zafFromEnv(lookup func(string) (string, bool), zendeskURL string) (*panel.ZAF, error) {
	keyPath, _ := lookup("CTI_ZAF_PUBLIC_KEY")
	audience, _ := lookup("CTI_ZAF_AUDIENCE")
	var audiences []string
	for a := range strings.SplitSeq(audience, ",") {
		if a = strings.TrimSpace(a); a != "" {
			audiences = append(audiences, a)
		}
	}
	if keyPath == "" && len(audiences) == 0 {
		return nil, nil
	}
	if keyPath == "" || len(audiences) == 0 {
		return nil, errors.New("set both CTI_ZAF_PUBLIC_KEY (PEM file of the Zendesk app's public key) and CTI_ZAF_AUDIENCE (https://SUBDOMAIN.zendesk.com/api/v2/apps/installations/ID.json)")
	}
	b, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("CTI_ZAF_PUBLIC_KEY: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("CTI_ZAF_PUBLIC_KEY: %s is not a PEM file", keyPath)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("CTI_ZAF_PUBLIC_KEY: %w", err)
	}
	key, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, errors.New("CTI_ZAF_PUBLIC_KEY: not an RSA key")
	}
	// Zendesk signs with the account host as "iss": take it from the API
	// root the Zendesk client resolves, whichever form ZENDESK_URL has
	// (acme, acme.zendesk.com, https://ACME.zendesk.com/api/v2).
	issuer := ""
	if zendeskURL != "" {
		base, err := zendesk.Config{URL: zendeskURL}.BaseURL()
		var u *url.URL
		if err == nil {
			u, err = url.Parse(base)
		}
		if err != nil {
			return nil, fmt.Errorf("the panel's JWT issuer comes from ZENDESK_URL: %w", err)
		}
		issuer = strings.ToLower(u.Host)
	}
	return panel.NewZAF(key, audiences, issuer)
}
