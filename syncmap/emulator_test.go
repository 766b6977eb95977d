package syncmap_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/syncmap/syncmaptest"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// These tests run the sink with the real *zendesk.Client against the
// Zendesk emulator over HTTP.

const rejectedField = 360000000099

func init() {
	childZendesk["zendesk"] = func(u string) (syncmap.Zendesk, error) { return emuClient(u) }
}

func emuClient(u string) (*zendesk.Client, error) {
	return zendesk.New(zendesk.Config{URL: u, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken},
		zendesk.WithRetries(0), zendesk.WithTicketUpdateBudget(10_000, time.Minute),
		zendesk.WithJobPoll(func(int) time.Duration { return 10 * time.Millisecond }))
}

type emuEnv struct {
	srv              *zendesktest.Server
	zd               *zendesk.Client
	agent, requester int64
}

func newEmu(t *testing.T, opts ...zendesktest.Option) emuEnv {
	t.Helper()
	srv := zendesktest.NewServer(append([]zendesktest.Option{zendesktest.WithoutRateLimits()}, opts...)...)
	t.Cleanup(srv.Close)
	zd, err := emuClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	agent := srv.AddUser(zendesktest.User{Name: "Jane Agent", Email: "jane.agent@example.com", Role: "agent"})
	req := srv.AddUser(zendesktest.User{Name: "Ana Lima", Phone: "+14155550100"})
	srv.RejectField(rejectedField)
	return emuEnv{srv: srv, zd: zd, agent: agent.ID, requester: req.ID}
}

func TestZendeskClientConforms(t *testing.T) {
	t.Parallel()
	syncmaptest.TestZendesk(t, func(t *testing.T) syncmaptest.Env {
		e := newEmu(t)
		return syncmaptest.Env{Zendesk: e.zd, RequesterID: e.requester, AgentID: e.agent, FieldID: 360000000001,
			RejectedFieldID: rejectedField, RejectedValue: "not an option", TalkAppID: 777}
	})
}

// job is voiceJob with the emulator's agent and requester.
func (e emuEnv) job(conv, rule string, tk int64) *cti.SyncJob {
	j := voiceJob(conv, rule, &cti.Record{Kind: cti.KindTicket, ID: tk, RequesterID: e.requester})
	j.Agent.ID = e.agent
	return j
}

func (e emuEnv) comments(t *testing.T, id int64) []syncmap.Comment {
	t.Helper()
	cs, err := e.zd.TicketComments(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func (e emuEnv) ticket(t *testing.T, id int64) *syncmap.Ticket {
	t.Helper()
	tk, err := e.zd.Ticket(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestSinkOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEmu(t)
	ctx := context.Background()
	mk := func() int64 {
		return e.srv.AddTicket(zendesktest.Ticket{RequesterID: e.requester, Status: "open", Subject: "Billing", Description: "My order never arrived."}).ID
	}
	s, n := newSink(t, e.zd, syncmap.WithTalkApp(777))
	rules := testRules()
	rules.Rules[0].Sync.Fields["360000000099"] = "{{.WrapupName}}" // rejected by the emulator
	s2, n2 := newSinkWith(t, e.zd, rules)

	t.Run("PoppedTicketHugeTranscriptRejectedField", func(t *testing.T) {
		tk := mk()
		job := e.job("h1", "popped", tk)
		job.Conversation.Content.Transcript = strings.Repeat("Customer: my order never arrived, can you check?\n", 2100) // ~100k
		if err := syncUntilDone(t, s2, job); err != nil {
			t.Fatal(err)
		}
		if err := s2.Sync(ctx, job); err != nil { // redelivery
			t.Fatal(err)
		}
		cs := e.comments(t, tk)
		if len(cs) != 2 { // the seeded description + ours
			t.Fatalf("%d comments, want the description and one sync comment", len(cs))
		}
		if len(cs[0].Body) > syncmap.DefaultMaxComment || !strings.Contains(cs[0].Body, "truncated by ctikit") || cs[0].Public {
			t.Fatalf("sync comment: %d bytes, public %v", len(cs[0].Body), cs[0].Public)
		}
		got := e.ticket(t, tk)
		if !got.HasTag(syncmap.MarkerTag(job.Key)) || fieldValue(got, fieldWrapup) != "Refund" || fieldValue(got, "360000000099") != nil {
			t.Fatalf("ticket = %+v", got)
		}
		if rej := n2.of(syncmap.NoticeFieldRejected); len(rej) != 1 || rej[0].FieldID != rejectedField {
			t.Fatalf("rejected field notices = %+v", rej)
		}
	})

	t.Run("DeletedTicketFallsBack", func(t *testing.T) {
		tk := mk()
		e.srv.DeleteTicket(tk)
		job := e.job("h2", "popped", tk)
		if err := syncUntilDone(t, s2, job); err != nil {
			t.Fatal(err)
		}
		found, err := e.zd.TicketsByExternalID(ctx, syncmap.MarkerTag(job.Key))
		if err != nil || len(found) != 1 || found[0].RequesterID != e.requester {
			t.Fatalf("fallback ticket = %+v, %v", found, err)
		}
		if cs := e.comments(t, found[0].ID); len(cs) != 1 || !strings.Contains(cs[0].Body, "was deleted") {
			t.Fatalf("fallback comments = %+v", cs)
		}
		if len(n2.of(syncmap.NoticeTicketFallback)) != 1 {
			t.Fatal("no fallback notice")
		}
	})

	t.Run("TalkCallRecord", func(t *testing.T) {
		tk := mk()
		job := e.job("h3", "popped", tk)
		job.Conversation.Links.RecordingURL = "https://rec.example/h3"
		if err := syncUntilDone(t, s, job); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(ctx, job); err != nil {
			t.Fatal(err)
		}
		calls := e.srv.Calls()
		if len(calls) != 1 {
			t.Fatalf("%d call records, want 1", len(calls))
		}
		cs := e.comments(t, tk)
		if len(cs) != 2 || cs[0].CallID != calls[0].ID {
			t.Fatalf("comments = %+v, want the voice comment of call %d on top", cs, calls[0].ID)
		}
		c, err := e.zd.Call(ctx, calls[0].ID)
		if err != nil || c.ExternalID != syncmap.MarkerTag(job.Key) || c.RecordingURL != "https://rec.example/h3" || c.TicketID != tk {
			t.Fatalf("call = %+v, %v", c, err)
		}
		if !e.ticket(t, tk).HasTag(syncmap.MarkerTag(job.Key)) || len(n.of(syncmap.NoticeFieldRejected)) != 0 {
			t.Fatal("ticket not marked")
		}
	})

	t.Run("BatchWithUpdateMany", func(t *testing.T) {
		plain, _ := newSink(t, e.zd)
		for _, tc := range []struct {
			name   string
			sink   *syncmap.Sink
			rounds int
		}{{"plain", plain, 2}, {"rejected-field", s2, 1}} {
			a, b := mk(), mk()
			var jobs []*cti.SyncJob
			for i, tk := range []int64{a, b, a} {
				j := e.job(tc.name+string(rune('0'+i)), "popped", tk)
				j.Conversation.Agents[0].Wrapup.Notes = "batch note " + string(rune('0'+i))
				jobs = append(jobs, j)
			}
			e.srv.ResetRequests()
			for i, err := range tc.sink.SyncBatch(ctx, jobs) {
				if err != nil {
					t.Fatalf("%s: job %d: %v", tc.name, i, err)
				}
			}
			// The rejected field fails round 1 for both tickets: their jobs
			// are redone one by one, in order, so round 2 is never sent.
			if n := len(e.srv.RequestsTo(http.MethodPut, "/tickets/update_many")); n != tc.rounds {
				t.Fatalf("%s: %d update_many requests, want %d", tc.name, n, tc.rounds)
			}
			ca := e.comments(t, a)
			if len(ca) != 3 || !strings.Contains(ca[1].Body, "batch note 0") || !strings.Contains(ca[0].Body, "batch note 2") {
				t.Fatalf("%s: ticket a has %d comments or they are out of order", tc.name, len(ca))
			}
			for i, err := range tc.sink.SyncBatch(ctx, jobs) {
				if err != nil {
					t.Fatalf("%s: redelivery %d: %v", tc.name, i, err)
				}
			}
			if len(e.comments(t, a)) != 3 || len(e.comments(t, b)) != 2 {
				t.Fatalf("%s: a redelivered batch wrote again", tc.name)
			}
		}
	})

	t.Run("429Storm", func(t *testing.T) {
		tk := mk()
		clear := e.srv.InjectFault(zendesktest.Fault{Status: 429, RetryAfter: time.Second, Times: 3})
		defer clear()
		job := e.job("h5", "popped", tk)
		err := s2.Sync(ctx, job)
		var u *cti.UpstreamError
		if !errors.As(err, &u) || u.Status != 429 || !cti.IsRetryable(err) {
			t.Fatalf("Sync in a storm = %v, want a retryable 429", err)
		}
		if err := syncUntilDone(t, s2, job); err != nil {
			t.Fatal(err)
		}
		if cs := e.comments(t, tk); len(cs) != 2 {
			t.Fatalf("%d comments after the storm, want 2", len(cs))
		}
	})
}

func newSinkWith(t *testing.T, zd syncmap.Zendesk, rules *cti.Rules, opts ...syncmap.Option) (*syncmap.Sink, *notices) {
	t.Helper()
	n := &notices{}
	base := []syncmap.Option{syncmap.WithNotify(n.add), syncmap.WithUpdateRate(6000, 100), syncmap.WithBatchSettle(0)}
	s, err := syncmap.NewSink(zd, rules, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s, n
}

// killProxy forwards to the emulator and runs the crash hooks around the
// requests that match a Zendesk operation.
type killProxy struct {
	target        *url.URL
	before, after func(op syncmaptest.Op) error
	mu            chan struct{}
}

var opRoutes = []struct {
	method string
	re     *regexp.Regexp
	op     syncmaptest.Op
}{
	{http.MethodPut, regexp.MustCompile(`^/api/v2/tickets/update_many(\.json)?$`), syncmaptest.OpUpdateMany},
	{http.MethodPut, regexp.MustCompile(`^/api/v2/tickets/\d+(\.json)?$`), syncmaptest.OpUpdateTicket},
	{http.MethodPost, regexp.MustCompile(`^/api/v2/tickets(\.json)?$`), syncmaptest.OpCreateTicket},
	{http.MethodPost, regexp.MustCompile(`^/api/v2/calls(\.json)?$`), syncmaptest.OpCreateCall},
}

func (p *killProxy) hooks() (before, after func(op syncmaptest.Op) error) {
	p.mu <- struct{}{}
	defer func() { <-p.mu }()
	return p.before, p.after
}

func (p *killProxy) set(before, after func(op syncmaptest.Op) error) {
	p.mu <- struct{}{}
	p.before, p.after = before, after
	<-p.mu
}

func (p *killProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var op syncmaptest.Op
	for _, rt := range opRoutes {
		if r.Method == rt.method && rt.re.MatchString(r.URL.Path) {
			op = rt.op
			break
		}
	}
	before, after := p.hooks()
	fail := func(err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"error":"ServiceUnavailable","description":"`+err.Error()+`"}`)
	}
	if op != "" && before != nil {
		if err := before(op); err != nil {
			fail(err)
			return
		}
	}
	body, _ := io.ReadAll(r.Body)
	req, _ := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, p.target.String()+r.URL.RequestURI(), bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		fail(err)
		return
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	if op != "" && after != nil {
		if err := after(op); err != nil {
			fail(err)
			return
		}
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(rb)
}

func TestCrashRecoveryEmulator(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	for _, tc := range crashCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEmu(t)
			var tickets []int64
			for range tc.convs {
				tickets = append(tickets, e.srv.AddTicket(zendesktest.Ticket{RequesterID: e.requester, Status: "open", Subject: "Order"}).ID)
			}
			for i, id := range tickets {
				if id != tickets[0]+int64(i) {
					t.Fatalf("ticket ids are not consecutive: %v", tickets)
				}
			}
			target, _ := url.Parse(e.srv.URL)
			proxy := &killProxy{target: target, mu: make(chan struct{}, 1)}
			ps := httptest.NewServer(proxy)
			t.Cleanup(ps.Close)
			runCrashCase(t, tc, "zendesk", ps.URL, tickets[0], proxy.set, envRequester+"="+strconv.FormatInt(e.requester, 10), envAgent+"="+strconv.FormatInt(e.agent, 10))
			checkCrashOutcome(t, tc, crashWorld{
				tickets: tickets,
				all: func() []int64 {
					var ids []int64
					for _, tk := range e.srv.Tickets() {
						ids = append(ids, tk.ID)
					}
					return ids
				},
				get:      func(id int64) (*syncmap.Ticket, error) { return e.zd.Ticket(context.Background(), id) },
				comments: func(id int64) ([]syncmap.Comment, error) { return e.zd.TicketComments(context.Background(), id) },
				calls:    func() int { return len(e.srv.Calls()) },
			})
		})
	}
}
