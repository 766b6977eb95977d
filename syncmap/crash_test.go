package syncmap_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/syncmap/syncmaptest"
)

// The crash tests run the real engine with the durable store and the sink
// in a child process (this test binary, re-executed), and SIGKILL it at
// each step of a sync: after the job is enqueued, before a Zendesk write,
// after Zendesk accepted a write but before the outbox acknowledgment
// (the parent kills the child from inside the Zendesk fake, before the
// answer leaves), in the middle of an update_many batch. Another child
// then reopens the store and finishes. Zendesk lives in the parent, so it
// survives the kills. Every case checks: no duplicate comment or call, no
// lost sync, nothing in the dead letters.

const (
	envChild     = "SYNCMAP_CRASH_CHILD"
	envDir       = "SYNCMAP_CRASH_DIR"
	envZD        = "SYNCMAP_CRASH_ZENDESK"
	envConvs     = "SYNCMAP_CRASH_CONVS"
	envSend      = "SYNCMAP_CRASH_SEND"
	envKillQ     = "SYNCMAP_CRASH_KILL_QUEUED"
	envRule      = "SYNCMAP_CRASH_RULE"
	envTalk      = "SYNCMAP_CRASH_TALK"
	envTickets   = "SYNCMAP_CRASH_TICKET_BASE"
	envClient    = "SYNCMAP_CRASH_CLIENT" // "rpc" (the fake) or "zendesk" (the real client)
	envRequester = "SYNCMAP_CRASH_REQUESTER"
	envAgent     = "SYNCMAP_CRASH_AGENT"
)

// crashRules pops the customer's ticket and syncs per rule.
func crashRules(target cti.SyncTicket) *cti.Rules {
	return &cti.Rules{Subscribe: cti.Subscribe{Queues: []string{"q1"}}, Rules: []cti.Rule{{
		Name: "crash", Identify: []cti.IdentifySpec{{Kind: cti.IdentifyPhone}}, Multiple: cti.MultipleFirst,
		Sync: cti.SyncSpec{Ticket: target, Comment: cti.CommentInternal, Tags: []string{"genesys"},
			Fields: map[string]string{fieldDuration: "{{.CallDuration}}"}},
	}}}
}

func crashPhone(i int) string { return fmt.Sprintf("+1415555%04d", i) }

// childZendesk builds the child's Zendesk client; the real-client variant
// (emulator_test.go) registers itself here.
var childZendesk = map[string]func(url string) (syncmap.Zendesk, error){
	"rpc": func(url string) (syncmap.Zendesk, error) {
		return &rpcZendesk{url: url, hc: &http.Client{Timeout: 10 * time.Second}}, nil
	},
}

// TestCrashChild is the child process's body; it is skipped in normal runs.
func TestCrashChild(t *testing.T) {
	if os.Getenv(envChild) == "" {
		t.Skip("run by the crash tests in a child process")
	}
	n, _ := strconv.Atoi(os.Getenv(envConvs))
	killQ, _ := strconv.Atoi(os.Getenv(envKillQ))
	base, _ := strconv.ParseInt(os.Getenv(envTickets), 10, 64)
	requester, agent := int64(requesterID), int64(agentID)
	if v, err := strconv.ParseInt(os.Getenv(envRequester), 10, 64); err == nil {
		requester = v
	}
	if v, err := strconv.ParseInt(os.Getenv(envAgent), 10, 64); err == nil {
		agent = v
	}
	store, err := syncmap.OpenStore(os.Getenv(envDir), syncmap.WithLockTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	zd, err := childZendesk[os.Getenv(envClient)](os.Getenv(envZD))
	if err != nil {
		t.Fatal(err)
	}
	rules := crashRules(cti.SyncTicket(os.Getenv(envRule)))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts := []syncmap.Option{syncmap.WithBatchSettle(0), syncmap.WithUpdateRate(6000, 100), syncmap.WithLogger(log)}
	if os.Getenv(envTalk) != "" {
		opts = append(opts, syncmap.WithTalkApp(777))
	}
	sink, err := syncmap.NewSink(zd, rules, opts...)
	if err != nil {
		t.Fatal(err)
	}
	var queued atomic.Int32
	popped := make(chan string, 100)
	src := ctitest.NewSource()
	eng, err := cti.NewEngine(src, rules,
		cti.WithStore(store), cti.WithSink(sink), cti.WithLogger(log),
		cti.WithMatcher(cti.MatcherFunc(func(_ context.Context, q cti.Query) (cti.Result, error) {
			i, _ := strconv.Atoi(strings.TrimPrefix(q.Identity.Value, "+1415555"))
			return cti.Result{Records: []cti.Record{{Kind: cti.KindTicket, ID: base + int64(i), RequesterID: requester}}}, nil
		})),
		cti.WithStrategy(cti.StrategyFunc(func(in cti.DecideInput) cti.Decision {
			return cti.Decision{Action: cti.ActionShow, Record: &in.Result.Records[0]}
		})),
		cti.WithPopper(cti.PopperFunc(func(_ context.Context, req cti.PopRequest) (cti.PopResult, error) {
			return cti.PopResult{Shown: req.Decision.Record}, nil
		})),
		cti.WithDirectory(cti.DirectoryFunc(func(context.Context, *cti.AgentLeg) (cti.Agent, error) {
			return cti.Agent{ID: agent, Name: "Jane"}, nil
		})),
		cti.WithRetry(cti.RetryPolicy{Backoff: func(int, error) time.Duration { return 20 * time.Millisecond }}),
		cti.WithTiming(cti.Timing{Drain: time.Second}),
		cti.WithHooks(cti.Hooks{Pop: func(pn cti.PopNotice) { popped <- pn.ConversationID }, Sync: func(sn cti.SyncNotice) {
			if sn.State == cti.SyncQueued && killQ > 0 && int(queued.Add(1)) == killQ {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}}),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	send := os.Getenv(envSend) != ""
	if send {
		for i := range n {
			b := ctitest.NewConversation(fmt.Sprintf("crash-%d", i), cti.MediaVoice).Phone(crashPhone(i)).Queue("q1", "Support")
			if err := src.Send(ctx, b.Alert("l1", "u1")); err != nil {
				t.Fatal(err)
			}
			<-popped // the agent saw the ticket before the call ends
			snaps := []*cti.Conversation{b.Connect("l1"), b.Hangup("l1"), b.Wrapup("l1", "wc", fmt.Sprintf("notes %d", i))}
			if err := src.Send(ctx, snaps...); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Run until every job is delivered.
	for ctx.Err() == nil {
		st, err := store.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending == 0 && (!send || int(queued.Load()) == n) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
}

// crashPhase is one run of the child.
type crashPhase struct {
	send      bool
	killQ     int              // the child kills itself after this many jobs were enqueued
	killOn    syncmaptest.Op   // the parent kills the child at this Zendesk operation...
	killAfter bool             // ...after it took effect (else before)
	fail      []syncmaptest.Op // these operations fail with a 503 during the phase
}

type crashCase struct {
	name   string
	convs  int
	rule   cti.SyncTicket
	talk   bool
	phases []crashPhase
}

var crashCases = []crashCase{
	{name: "killed-after-enqueue", convs: 2, rule: cti.SyncPopped, phases: []crashPhase{{send: true, killQ: 2}, {}}},
	{name: "killed-before-update", convs: 1, rule: cti.SyncPopped, phases: []crashPhase{{send: true, killOn: syncmaptest.OpUpdateTicket}, {}}},
	{name: "killed-after-update-before-ack", convs: 1, rule: cti.SyncPopped, phases: []crashPhase{{send: true, killOn: syncmaptest.OpUpdateTicket, killAfter: true}, {}}},
	{name: "killed-after-create-before-ack", convs: 1, rule: cti.SyncNew, phases: []crashPhase{{send: true, killOn: syncmaptest.OpCreateTicket, killAfter: true}, {}}},
	{name: "talk-killed-after-call", convs: 1, rule: cti.SyncPopped, talk: true, phases: []crashPhase{{send: true, killOn: syncmaptest.OpCreateCall, killAfter: true}, {}}},
	{name: "talk-killed-after-mark", convs: 1, rule: cti.SyncPopped, talk: true, phases: []crashPhase{{send: true, killOn: syncmaptest.OpUpdateTicket, killAfter: true}, {}}},
	{name: "talk-new-ticket-killed-after-create", convs: 1, rule: cti.SyncNew, talk: true, phases: []crashPhase{{send: true, killOn: syncmaptest.OpCreateTicket, killAfter: true}, {}}},
	{name: "batch-killed-after-update-many", convs: 5, rule: cti.SyncPopped, phases: []crashPhase{
		{send: true, killQ: 5, fail: []syncmaptest.Op{syncmaptest.OpUpdateTicket, syncmaptest.OpUpdateMany}},
		{killOn: syncmaptest.OpUpdateMany, killAfter: true},
		{},
	}},
	{name: "batch-killed-before-update-many", convs: 4, rule: cti.SyncPopped, phases: []crashPhase{
		{send: true, killQ: 4, fail: []syncmaptest.Op{syncmaptest.OpUpdateTicket, syncmaptest.OpUpdateMany}},
		{killOn: syncmaptest.OpUpdateMany},
		{},
	}},
}

func TestCrashRecoveryFake(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	for _, tc := range crashCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := syncmaptest.NewFake()
			var tickets []int64
			for range tc.convs {
				tickets = append(tickets, f.AddTicket(syncmap.Ticket{RequesterID: requesterID}))
			}
			srv := httptest.NewServer(rpcHandler(f))
			t.Cleanup(srv.Close)
			runCrashCase(t, tc, "rpc", srv.URL, tickets[0]-0, func(before, after func(op syncmaptest.Op) error) {
				f.Hook(before, after)
			})
			checkCrashOutcome(t, tc, crashWorld{
				tickets: tickets,
				all:     f.TicketIDs,
				get:     func(id int64) (*syncmap.Ticket, error) { return f.Get(id), nil },
				comments: func(id int64) ([]syncmap.Comment, error) {
					return f.Comments(id), nil
				},
				calls: func() int { return len(f.Calls()) },
			})
			if strings.HasPrefix(tc.name, "batch") && f.Count(syncmaptest.OpUpdateMany) == 0 {
				t.Fatal("the batch case never used update_many")
			}
		})
	}
}

// runCrashCase runs the phases; hook installs the parent-side kill and
// fault functions on the Zendesk under test.
func runCrashCase(t *testing.T, tc crashCase, client, url string, ticketBase int64, hook func(before, after func(op syncmaptest.Op) error), env ...string) {
	t.Helper()
	dir := t.TempDir()
	for pi, ph := range tc.phases {
		ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), envChild+"=1", envDir+"="+dir, envZD+"="+url, envClient+"="+client,
			envConvs+"="+strconv.Itoa(tc.convs), envKillQ+"="+strconv.Itoa(ph.killQ), envRule+"="+string(tc.rule),
			envTickets+"="+strconv.FormatInt(ticketBase, 10))
		cmd.Env = append(cmd.Env, env...)
		if ph.send {
			cmd.Env = append(cmd.Env, envSend+"=1")
		}
		if tc.talk {
			cmd.Env = append(cmd.Env, envTalk+"=1")
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("phase %d output:\n%s", pi, out.String())
			}
		})
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		var killed atomic.Bool
		var once sync.Once
		kill := func() {
			once.Do(func() {
				killed.Store(true)
				_ = cmd.Process.Signal(syscall.SIGKILL)
				<-exited // the answer never reaches the child
			})
		}
		match := func(op syncmaptest.Op, after bool) error {
			if slices.Contains(ph.fail, op) {
				return &cti.UpstreamError{Service: "zendesk", Op: string(op), Status: 503, Err: errors.New("injected outage")}
			}
			if ph.killOn == op && ph.killAfter == after {
				kill()
				return &cti.UpstreamError{Service: "zendesk", Op: string(op), Temporary: true, Err: errors.New("client gone")}
			}
			return nil
		}
		hook(func(op syncmaptest.Op) error { return match(op, false) }, func(op syncmaptest.Op) error { return match(op, true) })
		<-exited
		cancel()
		hook(nil, nil)
		wantKill := ph.killQ > 0 || ph.killOn != ""
		var ee *exec.ExitError
		gotKill := errors.As(waitErr, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signal() == syscall.SIGKILL
		switch {
		case wantKill && !gotKill:
			t.Fatalf("phase %d: the child was not killed (%v):\n%s", pi, waitErr, out.String())
		case !wantKill && waitErr != nil:
			t.Fatalf("phase %d: child failed: %v\n%s", pi, waitErr, out.String())
		case !wantKill && !strings.Contains(out.String(), "PASS"):
			t.Fatalf("phase %d: child did not run:\n%s", pi, out.String())
		}
		_ = killed.Load()
	}
	// Nothing left behind.
	st, err := openStoreStats(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st != (cti.OutboxStats{}) {
		t.Fatalf("outbox after recovery = %+v, want empty (no lost sync, no dead letter)", st)
	}
}

func openStoreStats(dir string) (cti.OutboxStats, error) {
	s, err := syncmap.OpenStore(dir)
	if err != nil {
		return cti.OutboxStats{}, err
	}
	defer s.Close()
	return s.Stats(context.Background())
}

// crashWorld reads the Zendesk under test.
type crashWorld struct {
	tickets  []int64 // the popped tickets, one per conversation
	all      func() []int64
	get      func(int64) (*syncmap.Ticket, error)
	comments func(int64) ([]syncmap.Comment, error)
	calls    func() int
}

// checkCrashOutcome: every conversation synced exactly once.
func checkCrashOutcome(t *testing.T, tc crashCase, w crashWorld) {
	t.Helper()
	for i := range tc.convs {
		key := cti.JobKey(fmt.Sprintf("crash-%d", i), "l1")
		marker := syncmap.MarkerTag(key)
		target := w.tickets[i]
		if tc.rule == cti.SyncNew {
			target = 0
			for _, id := range w.all() {
				if tk, _ := w.get(id); tk != nil && tk.ExternalID == marker {
					if target != 0 {
						t.Fatalf("conversation %d: two new tickets (%d, %d)", i, target, id)
					}
					target = id
				}
			}
			if target == 0 {
				t.Fatalf("conversation %d: no new ticket: sync lost", i)
			}
		}
		tk, err := w.get(target)
		if err != nil {
			t.Fatal(err)
		}
		if !tk.HasTag(marker) {
			t.Fatalf("conversation %d: ticket %d not marked: sync lost (tags %v)", i, target, tk.Tags)
		}
		cs, err := w.comments(target)
		if err != nil {
			t.Fatal(err)
		}
		var text, voice int
		for _, c := range cs {
			switch {
			case c.CallID != 0:
				voice++
			case strings.Contains(c.Body, fmt.Sprintf("notes %d", i)):
				text++
			}
		}
		switch {
		case tc.talk && voice != 1:
			t.Fatalf("conversation %d: %d voice comments on ticket %d, want 1", i, voice, target)
		case !tc.talk && text != 1:
			t.Fatalf("conversation %d: %d comments with its notes on ticket %d, want exactly 1", i, text, target)
		}
	}
	if tc.talk && w.calls() != tc.convs {
		t.Fatalf("%d call records, want %d", w.calls(), tc.convs)
	}
}
