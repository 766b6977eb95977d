package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/config"
	"github.com/cxplay/ctikit/genesys"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
	"github.com/cxplay/ctikit/internal/testlog"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// The fault tests run the whole reference server (Build: the Genesys
// source and enricher, the matcher, the popper, the engine, the durable
// store and the Zendesk sink) against the two emulators, inject one kind
// of fault in the middle of live conversations, and check the outcome in
// the Zendesk emulator: every agent leg popped exactly once (the Talk
// display calls) and synced exactly once (one comment carrying the
// conversation id, one marker tag), nothing left in the outbox or the dead
// letters.

type rigOptions struct {
	quiet   bool // the emulators do not log
	genesys []gt.Option
	zendesk []zendesktest.Option
	setup   func(*Setup)
}

// startRig is startDemo with emulator and server options. Timeouts are
// shortened so that faults resolve in seconds.
func startRig(t *testing.T, o rigOptions) *demoRig {
	t.Helper()
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg, err := config.Parse(demoRules)
	require.NoError(t, err)
	glog := log
	if o.quiet {
		glog = nil
	}
	g := gt.NewServer(append([]gt.Option{gt.WithSeed(gt.DemoSeed()), gt.WithLogger(glog)}, o.genesys...)...)
	z := zendesktest.NewServer(append([]zendesktest.Option{zendesktest.WithIndexLag(3 * time.Second)}, o.zendesk...)...)
	z.Seed(zendesktest.DemoSeed())
	d := &Demo{Genesys: g, Zendesk: z, Config: cfg}
	s := d.Setup("127.0.0.1:0", t.TempDir(), log)
	s.GenesysOptions = []genesys.Option{genesys.WithReconnectBackoff(func(int) time.Duration { return 150 * time.Millisecond })}
	s.ZendeskOptions = []zendesk.Option{zendesk.WithAttemptTimeout(2 * time.Second)}
	if o.setup != nil {
		o.setup(&s)
	}
	app, err := Build(s)
	require.NoError(t, err)
	addr, err := app.Listen()
	require.NoError(t, err)
	for _, a := range demoAgents {
		app.Panel.AddAgent(a.genesys, a.zendesk)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	r := &demoRig{t: t, demo: d, app: app, base: "http://" + addr.String(), logs: logs}
	r.stop = func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
		d.Close()
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("server logs (tail):\n%s", tail(logs.String(), 400000))
		}
	})
	r.eventually("healthz 200", func() bool { return r.get("/healthz").StatusCode == 200 })
	return r
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// callSpec is one scripted voice call: a customer phone and the agent.
type callSpec struct {
	from    string
	agent   string // Genesys user id
	zendesk int64  // the agent's Zendesk id, for the display count
}

var faultCalls = []callSpec{
	{"+14155550101", gt.AgentAlice, zendesktest.DemoAgentAlice}, // Jane: her open ticket
	{"+447700900123", gt.AgentBob, zendesktest.DemoAgentBob},    // Liam: his open ticket
	{"+14155550177", gt.AgentCarol, zendesktest.DemoAdminCarol}, // unknown: user and ticket created
}

// liveCalls starts one call per spec, alerts its agent, waits a while
// for every pop and connects them. A pop that failed on alerting (a
// Zendesk fault outlasting the client's retries) is tried again on
// connect: settled checks that each leg was popped exactly once in the end.
func (r *demoRig) liveCalls(specs []callSpec) ([]*gt.Conversation, []string) {
	r.t.Helper()
	var cvs []*gt.Conversation
	var legs []string
	for _, s := range specs {
		cv := r.demo.Genesys.Start(gt.Spec{Media: gt.MediaVoice, From: s.from, Queue: gt.QueueSupport})
		cvs = append(cvs, cv)
		legs = append(legs, cv.Alert(s.agent))
	}
	deadline := time.Now().Add(15 * time.Second)
	for i, s := range specs {
		for len(r.demo.Zendesk.Displays(s.zendesk)) == 0 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		cvs[i].Connect(legs[i])
	}
	return cvs, legs
}

// finish hangs up and wraps up every call.
func finish(cvs []*gt.Conversation, legs []string) {
	for i, cv := range cvs {
		cv.Disconnect(legs[i])
		cv.End()
		cv.Wrapup(legs[i], gt.CodeResolved, "notes for "+cv.ID)
	}
}

// syncComments returns the sync comments (with their ticket) of a
// conversation: the comments with its "Conversation ID:" line, one per
// synced leg. (A ticket the pop created also names the conversation in
// its first comment, without that line.)
func syncComments(z *zendesktest.Server, convID string) (tickets []int64, bodies []string) {
	for _, tk := range z.Tickets() {
		for _, c := range tk.Comments {
			if strings.Contains(c.Body, "Conversation ID: "+convID) {
				tickets = append(tickets, tk.ID)
				bodies = append(bodies, c.Body)
			}
		}
	}
	return tickets, bodies
}

// settled waits until every conversation has its sync comment and the
// outbox is empty, then checks the counts: one display per agent, one
// comment per conversation, no dead letters.
func (r *demoRig) settled(specs []callSpec, cvs []*gt.Conversation) {
	r.t.Helper()
	z := r.demo.Zendesk
	// A failed update_many is retried only after the sink's batch settle
	// time (30 s): its outcome is unknown until Zendesk's job is surely over.
	deadline := time.Now().Add(75 * time.Second)
	for _, cv := range cvs {
		for {
			if n, _ := syncComments(z, cv.ID); len(n) > 0 {
				break
			}
			if time.Now().After(deadline) {
				r.t.Fatalf("timed out waiting for the sync of %s", cv.ID)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	insp := r.app.Store.(cti.OutboxInspector)
	for {
		st, err := insp.Stats(context.Background())
		if err == nil && st.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for an empty outbox: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // anything still on its way lands now
	st, err := insp.Stats(context.Background())
	require.NoError(r.t, err)
	assert.Zero(r.t, st.Dead, "dead letters")
	for i, cv := range cvs {
		tickets, _ := syncComments(z, cv.ID)
		assert.Len(r.t, tickets, 1, "conversation %d (%s) synced once: comments on tickets %v", i, specs[i].from, tickets)
		assert.Len(r.t, z.Displays(specs[i].zendesk), 1, "agent of %s popped once", specs[i].from)
	}
	if r.t.Failed() {
		r.t.FailNow()
	}
	// Every marker tag is on exactly one ticket.
	seen := map[string]int64{}
	for _, tk := range z.Tickets() {
		for _, tag := range tk.Tags {
			if !markerTag.MatchString(tag) {
				continue
			}
			if other, dup := seen[tag]; dup {
				r.t.Errorf("marker %s on tickets %d and %d", tag, other, tk.ID)
			}
			seen[tag] = tk.ID
		}
	}
}

// markerTag matches syncmap.MarkerTag: one per synced leg.
var markerTag = regexp.MustCompile(`^ctikit_[0-9a-f]{16}$`)

// TestFaultSocketDroppedDuringCalls drops the websocket while three calls
// are live and keeps the Genesys API failing (503 on the notification
// API, then 429 with Retry-After on the conversation re-fetch) while they
// end and are wrapped up: the ends reach the engine through the re-fetch
// after the reconnect, and each call is still popped once and synced once.
func TestFaultSocketDroppedDuringCalls(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigOptions{})
	g := r.demo.Genesys
	cvs, legs := r.liveCalls(faultCalls)

	g.FailREST(gt.Fault{PathPrefix: "/api/v2/notifications/", Status: http.StatusServiceUnavailable, Times: 4})
	g.FailREST(gt.Fault{Method: "GET", PathPrefix: "/api/v2/conversations/", Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 3})
	g.DropSockets()
	finish(cvs, legs) // published to nobody
	r.settled(faultCalls, cvs)
	st := r.app.Source.Stats()
	assert.GreaterOrEqual(t, st.Reconnects, 1, "reconnected")
	assert.GreaterOrEqual(t, st.Refetches, len(cvs), "re-fetched the calls")
	assert.Positive(t, g.Stats().Faults, "faults served")
}

// TestFaultSilentSocket: the socket stays open but sends nothing (no
// heartbeats, no pongs, no events) while the calls end; the watchdog
// replaces it and the re-fetch delivers the missed ends.
func TestFaultSilentSocket(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigOptions{
		genesys: []gt.Option{gt.WithHeartbeat(200 * time.Millisecond)},
		setup: func(s *Setup) {
			s.GenesysOptions = append(s.GenesysOptions, genesys.WithTiming(genesys.Timing{HeartbeatTimeout: time.Second}))
		},
	})
	cvs, legs := r.liveCalls(faultCalls)
	r.demo.Genesys.SilenceSockets()
	finish(cvs, legs)
	r.settled(faultCalls, cvs)
	st := r.app.Source.Stats()
	assert.GreaterOrEqual(t, st.Reconnects, 1)
	assert.GreaterOrEqual(t, st.Refetches, len(cvs))
}

// TestFaultSocketClosing: v2.system.socket_closing in the middle of the
// calls; the source moves to a new socket before the old one closes.
func TestFaultSocketClosing(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigOptions{})
	cvs, legs := r.liveCalls(faultCalls)
	r.demo.Genesys.SocketClosing(300 * time.Millisecond)
	r.eventually("the rotation", func() bool { return r.app.Source.Stats().Rotations >= 1 })
	finish(cvs, legs)
	r.settled(faultCalls, cvs)
}

// TestFaultChannelExpiry: channels live 2 s; calls span several rotations
// (planned ones, before expiry) and one abrupt expiry (ExpireChannels:
// the socket closes and the subscriptions are gone).
func TestFaultChannelExpiry(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigOptions{genesys: []gt.Option{gt.WithChannelTTL(2 * time.Second)}})
	cvs, legs := r.liveCalls(faultCalls)
	r.eventually("two rotations", func() bool { return r.app.Source.Stats().Rotations >= 2 })
	r.demo.Genesys.ExpireChannels()
	finish(cvs, legs)
	r.settled(faultCalls, cvs)
}

// TestFaultGenesysRESTDuringReconnect: the OAuth token endpoint and the
// notification API answer 429 and 500 while the source reconnects after a
// drop, and the enrichment reads at sync time fail with 503 a few times.
func TestFaultGenesysRESTDuringReconnect(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigOptions{})
	g := r.demo.Genesys
	cvs, legs := r.liveCalls(faultCalls)
	g.RevokeTokens() // the reconnect needs a new token
	g.FailREST(gt.Fault{PathPrefix: "/oauth/token", Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 2})
	g.FailREST(gt.Fault{PathPrefix: "/api/v2/notifications/", Status: http.StatusInternalServerError, Times: 3})
	g.DropSockets()
	time.Sleep(200 * time.Millisecond)
	finish(cvs, legs)
	r.eventually("the reconnect", func() bool { return r.app.Source.Ready() == nil && r.app.Source.Stats().Reconnects > 0 })
	g.FailREST(gt.Fault{Method: "GET", PathPrefix: "/api/v2/analytics/", Status: http.StatusServiceUnavailable, Times: 3})
	r.settled(faultCalls, cvs)
}

// TestFaultZendesk429Storm: every Zendesk endpoint answers 429 with
// Retry-After for a while, through the pops and the syncs.
func TestFaultZendesk429Storm(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigOptions{})
	z := r.demo.Zendesk
	clear := z.InjectFault(zendesktest.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 8})
	defer clear()
	cvs, legs := r.liveCalls(faultCalls)
	// A pop the first storm defeated on alerting is tried again on
	// connect: let that retry land before the second storm, which is for
	// the syncs (a leg gets no third pop attempt).
	r.eventually("every agent popped", func() bool {
		for _, c := range faultCalls {
			if len(z.Displays(c.zendesk)) == 0 {
				return false
			}
		}
		return true
	})
	z.InjectFault(zendesktest.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 8})
	finish(cvs, legs)
	r.settled(faultCalls, cvs)
	var n429 int
	for _, req := range z.Requests() {
		if req.Status == 429 {
			n429++
		}
	}
	assert.GreaterOrEqual(t, n429, 10, "the storm was served")
}

// TestFaultZendesk5xxBurst: ticket writes fail with 500 and 503 several
// times in a row.
func TestFaultZendesk5xxBurst(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigOptions{})
	z := r.demo.Zendesk
	cvs, legs := r.liveCalls(faultCalls)
	z.InjectFault(zendesktest.Fault{Method: "PUT", Route: "/tickets", Status: http.StatusInternalServerError, Times: 3})
	z.InjectFault(zendesktest.Fault{Method: "POST", Route: "/tickets", Status: http.StatusServiceUnavailable, Times: 2})
	z.InjectFault(zendesktest.Fault{Method: "GET", Route: "/tickets", Status: http.StatusBadGateway, Times: 2})
	finish(cvs, legs)
	r.settled(faultCalls, cvs)
}

// TestFaultZendeskTimeouts: a search (at pop time) stalls past the
// client's attempt timeout, and ticket writes are carried out but their
// responses never arrive in time (Hold): the retry finds the marker and
// writes nothing twice.
func TestFaultZendeskTimeouts(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigOptions{})
	z := r.demo.Zendesk
	z.InjectFault(zendesktest.Fault{Method: "GET", Route: "/search", Delay: 3 * time.Second, Times: 1})
	cvs, legs := r.liveCalls(faultCalls)
	z.InjectFault(zendesktest.Fault{Method: "PUT", Route: "/tickets", Hold: 3 * time.Second, Times: 3})
	z.InjectFault(zendesktest.Fault{Method: "POST", Route: "/tickets", Hold: 3 * time.Second, Times: 1})
	finish(cvs, legs)
	r.settled(faultCalls, cvs)
	var held int
	for _, req := range z.Requests() {
		if req.Status == 499 && (req.Method == "PUT" || req.Method == "POST") {
			held++
		}
	}
	assert.Positive(t, held, "a write's answer was lost")
}

// TestFaultZendeskRejectsOneField: Zendesk answers 422 for one custom
// field; the sync drops it, writes the rest once, and says which field.
func TestFaultZendeskRejectsOneField(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigOptions{})
	z := r.demo.Zendesk
	const bad = 360000000002 // the wrap-up name field of support-voice
	z.RejectField(bad)
	specs := faultCalls[:1]
	cvs, legs := r.liveCalls(specs)
	finish(cvs, legs)
	r.settled(specs, cvs)
	tk, ok := z.Ticket(zendesktest.DemoTicketJaneOpen)
	require.True(t, ok)
	assert.NotContains(t, tk.CustomFields, int64(bad), "the rejected field is not set")
	assert.Contains(t, tk.CustomFields, int64(360000000001), "the other fields are")
	assert.Contains(t, r.logs.String(), fmt.Sprint("field=", bad), "the log names the rejected field")
}

// TestFaultZendeskTicketDeleted: the popped ticket is deleted before the
// sync; the rule (sync.ticket: popped) falls back to a new ticket for the
// same requester, and the comment says why.
func TestFaultZendeskTicketDeleted(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigOptions{})
	z := r.demo.Zendesk
	specs := faultCalls[:1]
	cvs, legs := r.liveCalls(specs)
	z.DeleteTicket(zendesktest.DemoTicketJaneOpen)
	finish(cvs, legs)
	r.settled(specs, cvs)
	tickets, bodies := syncComments(z, cvs[0].ID)
	require.Len(t, tickets, 1)
	assert.NotEqual(t, int64(zendesktest.DemoTicketJaneOpen), tickets[0])
	tk, _ := z.Ticket(tickets[0])
	assert.Equal(t, int64(zendesktest.DemoJane), tk.RequesterID, "the new ticket is Jane's")
	assert.Contains(t, bodies[0], fmt.Sprintf("Ticket #%d was deleted", zendesktest.DemoTicketJaneOpen))
}

// TestFaultDuplicateAndReorderedFrames: every frame twice, and a batch of
// frames delivered in reverse order.
func TestFaultDuplicateAndReorderedFrames(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigOptions{})
	g := r.demo.Genesys
	g.DuplicateFrames(true)
	cvs, legs := r.liveCalls(faultCalls)
	g.HoldFrames()
	finish(cvs, legs)
	g.ReleaseFrames(true)
	r.settled(faultCalls, cvs)
}

// TestFaultsConcurrentMix runs a dozen calls at once while the socket is
// dropped twice and Zendesk throws 429s and 503s.
func TestFaultsConcurrentMix(t *testing.T) {
	t.Parallel()
	r := startRig(t, rigOptions{})
	g, z := r.demo.Genesys, r.demo.Zendesk
	var specs []callSpec
	for i := range 12 {
		a := demoAgents[i%3]
		specs = append(specs, callSpec{fmt.Sprintf("+1415555%04d", 2000+i), a.genesys, a.zendesk.ID})
	}
	// One call per agent at a time keeps the display count per agent.
	for round := range 4 {
		batch := specs[round*3 : round*3+3]
		cvs, legs := r.liveCalls(batch)
		var wg sync.WaitGroup
		wg.Go(func() {
			switch round {
			case 1:
				g.DropSockets()
			case 2:
				z.InjectFault(zendesktest.Fault{Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 5})
			case 3:
				z.InjectFault(zendesktest.Fault{Method: "GET", Route: "/tickets", Status: http.StatusServiceUnavailable, Times: 3})
				z.InjectFault(zendesktest.Fault{Method: "PUT", Route: "/tickets", Status: http.StatusInternalServerError, Times: 1})
				g.DropSockets()
			}
		})
		start := time.Now()
		finish(cvs, legs)
		wg.Wait()
		r.settled(batch, cvs)
		t.Logf("round %d settled in %v", round, time.Since(start).Round(time.Millisecond))
		z.ResetRequests() // and the displays
	}
}
