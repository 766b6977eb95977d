package genesys_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
)

// TestEngineFullFlow feeds a cti.Engine from the Source on the emulator,
// with simple func collaborators, through the worst of it: every frame
// duplicated (and on both the queue and the user topic), a transfer, then
// the socket dropped with the API failing while the customer hangs up and
// both agents wrap up. Each leg must be popped once and synced once, with
// the enrichment (names, category, links) in the sync job.
func TestEngineFullFlow(t *testing.T) {
	e := newEnv(t)
	src := newSource(t, e, genesys.WithQueues(gt.QueueSupport, gt.QueueBilling), genesys.WithUsers(gt.AgentAlice, gt.AgentBob))
	rules := &cti.Rules{
		Subscribe: cti.Subscribe{Queues: []string{gt.QueueSupport, gt.QueueBilling}},
		Rules: []cti.Rule{{
			Name: "voice", When: cti.When{Media: []string{"voice"}},
			Identify: []cti.IdentifySpec{{Kind: cti.IdentifyPhone}}, Popup: cti.PopupUser,
		}},
	}
	var mu sync.Mutex
	pops := map[string]int{}
	syncs := map[string]*cti.SyncJob{}
	syncCount := map[string]int{}
	popped := make(chan string, 10)
	synced := make(chan string, 10)
	matcher := cti.MatcherFunc(func(_ context.Context, q cti.Query) (cti.Result, error) {
		if q.Identity.Value == "+14155550800" {
			return cti.Result{Records: []cti.Record{{Kind: cti.KindUser, ID: 42, Name: "Pat"}}}, nil
		}
		return cti.Result{}, nil
	})
	strategy := cti.StrategyFunc(func(in cti.DecideInput) cti.Decision {
		if len(in.Result.Records) == 1 {
			return cti.Decision{Action: cti.ActionShow, Record: &in.Result.Records[0]}
		}
		return cti.Decision{Action: cti.ActionNone}
	})
	popper := cti.PopperFunc(func(_ context.Context, req cti.PopRequest) (cti.PopResult, error) {
		mu.Lock()
		pops[req.Leg.ID]++
		mu.Unlock()
		popped <- req.Leg.ID
		return cti.PopResult{Shown: req.Decision.Record}, nil
	})
	dir := cti.DirectoryFunc(func(_ context.Context, l *cti.AgentLeg) (cti.Agent, error) {
		return cti.Agent{ID: 7, Email: l.Email}, nil
	})
	sink := cti.SinkFunc(func(_ context.Context, job *cti.SyncJob) error {
		mu.Lock()
		syncCount[job.LegID]++
		syncs[job.LegID] = job
		mu.Unlock()
		synced <- job.LegID
		return nil
	})
	eng, err := cti.NewEngine(src, rules, cti.WithMatcher(matcher), cti.WithStrategy(strategy), cti.WithPopper(popper),
		cti.WithDirectory(dir), cti.WithSink(sink), cti.WithLogger(testLogger()),
		cti.WithTiming(cti.Timing{Grace: 100 * time.Millisecond, Drain: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitReady(t, e, src, genesys.QueueTopic(gt.QueueSupport), genesys.UserTopic(gt.AgentBob))
	e.srv.DuplicateFrames(true)

	wait := func(ch chan string, want string) {
		t.Helper()
		select {
		case got := <-ch:
			if got != want {
				t.Fatalf("got leg %s, want %s", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("timed out waiting for leg %s", want)
		}
	}
	conv := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+1 (415) 555-0800", Name: "Pat", Queue: gt.QueueSupport})
	a := conv.Alert(gt.AgentAlice)
	wait(popped, a)
	conv.Connect(a)
	conv.Transfer(a, gt.QueueBilling)
	b := conv.Alert(gt.AgentBob)
	wait(popped, b)
	conv.Connect(b)
	time.Sleep(50 * time.Millisecond) // let the connected state through

	e.srv.FailREST(gt.Fault{PathPrefix: "/api/v2/notifications/", Status: http.StatusServiceUnavailable, Times: -1})
	e.srv.DropSockets()
	waitFor(t, "the drop", func() bool { return src.Ready() != nil })
	conv.End()
	conv.Wrapup(a, gt.CodeFollowUp, "sent to billing")
	conv.Wrapup(b, gt.CodeRefund, "refund issued")
	e.srv.ClearFaults()

	got := map[string]bool{}
	for range 2 {
		select {
		case id := <-synced:
			got[id] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("synced %v, want both legs", got)
		}
	}
	time.Sleep(300 * time.Millisecond) // anything duplicated would show up now
	mu.Lock()
	defer mu.Unlock()
	if pops[a] != 1 || pops[b] != 1 || len(pops) != 2 {
		t.Errorf("pops = %v, want one per leg", pops)
	}
	if syncCount[a] != 1 || syncCount[b] != 1 || len(syncCount) != 2 {
		t.Errorf("syncs = %v, want one per leg", syncCount)
	}
	jb := syncs[b]
	lb := jb.Conversation.Leg(b)
	if jb.Popped == nil || jb.Popped.ID != 42 || jb.Agent == nil || jb.Agent.Email != "bob.okafor@example.com" {
		t.Errorf("job for Bob: popped %+v agent %+v", jb.Popped, jb.Agent)
	}
	if lb.Wrapup == nil || lb.Wrapup.Notes != "refund issued" || lb.Wrapup.Category != "Billing" || lb.Wrapup.Name != "Refund issued" {
		t.Errorf("Bob's wrap-up = %+v", lb.Wrapup)
	}
	c := jb.Conversation
	if c.Links.RecordingURL == "" || c.Links.InteractionURL == "" || len(c.Transfers) != 1 || c.Transfers[0].ToQueue.Name != "Billing" {
		t.Errorf("enrichment missing: links %+v transfers %+v", c.Links, c.Transfers)
	}
	if c.Customer.Phone != "+14155550800" {
		t.Errorf("customer phone = %q", c.Customer.Phone)
	}
	if st := src.Stats(); st.Duplicates == 0 || st.Refetches == 0 || st.Reconnects == 0 {
		t.Errorf("source stats %+v: the faults did not happen", st)
	}
}
