package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/config"
	"github.com/cxplay/ctikit/genesys"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

//go:embed demo-rules.yaml
var demoRules []byte

// Demo is the embedded demo: a Genesys Cloud emulator and a Zendesk
// emulator, in-process over real HTTP, seeded with agents, queues, wrap-up
// codes, a campaign, customers (some sharing a phone, some unknown) and
// tickets; the real adapters talk to them exactly as to the real services.
type Demo struct {
	Genesys *gt.Server
	Zendesk *zendesktest.Server
	Config  *config.Config
}

// StartDemo starts both emulators with their demo data.
func StartDemo(log *slog.Logger) (*Demo, error) {
	cfg, err := config.Parse(demoRules)
	if err != nil {
		return nil, fmt.Errorf("demo rules: %w", err)
	}
	// Genesys transcodes a recording on the first request for it (202).
	g := gt.NewServer(gt.WithSeed(gt.DemoSeed()), gt.WithLogger(log), gt.WithRecordingTranscodes(1))
	// The request log is for tests; the demo keeps the last 1,000.
	z := zendesktest.NewServer(zendesktest.WithIndexLag(3*time.Second), zendesktest.WithRequestLog(1000))
	z.Seed(zendesktest.DemoSeed())
	return &Demo{Genesys: g, Zendesk: z, Config: cfg}, nil
}

// Close stops both emulators.
func (d *Demo) Close() {
	d.Genesys.Close()
	d.Zendesk.Close()
}

// Setup is the server setup that points at the emulators.
func (d *Demo) Setup(listen, stateDir string, log *slog.Logger) Setup {
	return Setup{
		Config:          d.Config,
		Genesys:         genesys.Config{ClientID: d.Genesys.ClientID, ClientSecret: d.Genesys.ClientSecret, APIURL: d.Genesys.URL, LoginURL: d.Genesys.URL},
		Zendesk:         zendesk.Config{URL: d.Zendesk.URL, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken},
		StateDir:        stateDir,
		Listen:          listen,
		PhoneRegion:     "US",
		SyncBatchWait:   DefaultSyncBatchWait,
		RecordingUpload: true,
		Demo:            true,
		Log:             log,
	}
}

func runDemo(ctx context.Context, stdout, stderr io.Writer, lookup func(string) (string, bool), speed float64) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d, err := StartDemo(log)
	if err != nil {
		return err
	}
	defer d.Close()
	stateDir := env(lookup, "CTI_STATE_DIR", "")
	if stateDir == "" {
		stateDir, err = os.MkdirTemp("", "ctikit-demo-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(stateDir)
	}
	app, err := Build(d.Setup(env(lookup, "CTI_LISTEN", "127.0.0.1:8080"), stateDir, log))
	if err != nil {
		return err
	}
	addr, err := app.Listen()
	if err != nil {
		return err
	}
	for _, a := range demoAgents {
		app.Panel.AddAgent(a.genesys, a.zendesk)
	}
	fmt.Fprintf(stdout, "ctikit demo: Genesys and Zendesk emulators are running in-process with simulated traffic.\n")
	fmt.Fprintf(stdout, "  agent panel: http://%s/panel/   (pick an agent)\n", addr)
	fmt.Fprintf(stdout, "  health:      http://%s/healthz\n  metrics:     http://%s/metrics\n", addr, addr)
	fmt.Fprintf(stdout, "Stop with Ctrl-C.\n")

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { Traffic(ctx, d.Genesys, speed) })
	err = app.Run(ctx)
	cancel()
	wg.Wait()
	return err
}

// Traffic plays realistic conversations on the Genesys emulator until ctx
// is done (genesystest.Play: every media, transfers, several at once per
// agent), for customers the Zendesk demo data knows — one of them, two
// sharing a phone, by national-format phone, by social identity — and for
// unknown ones. speed > 1 plays faster.
func Traffic(ctx context.Context, g *gt.Server, speed float64) {
	if speed <= 0 {
		speed = 1
	}
	agents := make([]string, len(demoAgents))
	for i, a := range demoAgents {
		agents[i] = a.genesys
	}
	g.Play(ctx, gt.Traffic{
		Every:     time.Duration(float64(5*time.Second) / speed),
		Pace:      time.Duration(float64(3*time.Second) / speed),
		Customers: demoCustomers,
		// The agents the demo maps to Zendesk agents: another seeded
		// Genesys user has no Zendesk account, and every call to them
		// would log an unknown-agent error.
		Agents: agents,
	})
}

// demoCustomers are the customers of zendesktest.DemoSeed, as they reach
// Genesys, plus two strangers.
var demoCustomers = append([]gt.Customer{
	{Name: "Jane Doe", Phone: "+14155550101", Email: "jane@example.com"},
	{Name: "John Doe", Phone: "+14155550102", Email: "john@example.com"},
	{Name: "Joan Doe", Phone: "+14155550102", Email: "joan@example.com"},
	{Name: "Pierre Martin", Phone: "+33612345678", Email: "pierre@example.fr", Handle: "pmartin"},
	{Name: "Maria Garcia", Email: "maria@example.es", Handle: "1000123456789"},
	{Name: "Nat National", Phone: "+14155550106"},
	{Name: "Liam Smith", Phone: "+447700900123"},
}, gt.UnknownCustomers()...)

type demoAgent struct {
	genesys string
	zendesk cti.Agent
}

var demoAgents = []demoAgent{
	{gt.AgentAlice, cti.Agent{ID: zendesktest.DemoAgentAlice, Email: "alice@example.com", Name: "Alice Agent"}},
	{gt.AgentBob, cti.Agent{ID: zendesktest.DemoAgentBob, Email: "bob@example.com", Name: "Bob Agent"}},
	{gt.AgentCarol, cti.Agent{ID: zendesktest.DemoAdminCarol, Email: "carol@example.com", Name: "Carol Admin"}},
}
