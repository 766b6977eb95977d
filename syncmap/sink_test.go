package syncmap_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/syncmap/syncmaptest"
)

var errLost = &cti.UpstreamError{Service: "zendesk", Op: "test", Temporary: true, Err: errors.New("connection reset after the write")}

func TestSinkPoppedTicket(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID, Tags: []string{"existing"}})
	s, _ := newSink(t, f)
	job := voiceJob("c1", "popped", ticketRec(tk))
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	got := f.Get(tk)
	for _, tag := range []string{"existing", "genesys", "voice_call", syncmap.MarkerTag(job.Key)} {
		if !got.HasTag(tag) {
			t.Errorf("ticket tags %v lack %q", got.Tags, tag)
		}
	}
	if v := fieldValue(got, fieldDuration); v != "0:00:05" {
		t.Errorf("duration field = %v, want 0:00:05", v)
	}
	if v := fieldValue(got, fieldWrapup); v != "Refund" {
		t.Errorf("wrap-up field = %v, want Refund", v)
	}
	cs := f.Comments(tk)
	if len(cs) != 1 || cs[0].Public || cs[0].AuthorID != agentID || !strings.Contains(cs[0].Body, "Disposition: Refund") {
		t.Fatalf("comments = %+v, want one internal comment by the agent with the disposition", cs)
	}
	// Delivered again (the engine crashed before acking): nothing more.
	for range 3 {
		if err := s.Sync(context.Background(), job); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.Comments(tk)); n != 1 {
		t.Fatalf("after redelivery: %d comments, want 1", n)
	}
	if n := f.Count(syncmaptest.OpUpdateTicket); n != 1 {
		t.Fatalf("%d ticket updates, want 1", n)
	}
}

// The write reaches Zendesk but the answer is lost, at every write step:
// retrying never writes twice.
func TestSinkAnswerLostAfterWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		op   syncmaptest.Op
		rule string
		talk bool
	}{
		{"update", syncmaptest.OpUpdateTicket, "popped", false},
		{"create", syncmaptest.OpCreateTicket, "new", false},
		{"call", syncmaptest.OpCreateCall, "popped", true},
		{"call-mark", syncmaptest.OpUpdateTicket, "popped", true},
		{"call-new-ticket", syncmaptest.OpCreateTicket, "new", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := syncmaptest.NewFake()
			tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
			lost := 0
			f.Hook(nil, func(op syncmaptest.Op) error {
				if op == tc.op && lost == 0 {
					lost++
					return errLost
				}
				return nil
			})
			var opts []syncmap.Option
			if tc.talk {
				opts = append(opts, syncmap.WithTalkApp(777))
			}
			s, _ := newSink(t, f, opts...)
			job := voiceJob("c1", tc.rule, ticketRec(tk))
			if err := s.Sync(context.Background(), job); !cti.IsRetryable(err) {
				t.Fatalf("first Sync = %v, want the retryable lost answer", err)
			}
			if err := syncUntilDone(t, s, job); err != nil {
				t.Fatal(err)
			}
			if lost != 1 {
				t.Fatalf("the hook fired %d times", lost)
			}
			var all, voice int
			for _, id := range f.TicketIDs() {
				for _, c := range f.Comments(id) {
					all++
					if c.Type == "TpeVoiceComment" {
						voice++
					}
				}
			}
			switch {
			case tc.talk && tc.rule == "new":
				// the new ticket's first comment, plus the voice comment
				if all != 2 || voice != 1 || len(f.Calls()) != 1 {
					t.Fatalf("%d comments (%d voice), %d calls; want 2 (1 voice), 1 call", all, voice, len(f.Calls()))
				}
			case tc.talk:
				if all != 1 || voice != 1 || len(f.Calls()) != 1 {
					t.Fatalf("%d comments (%d voice), %d calls; want 1 voice comment, 1 call", all, voice, len(f.Calls()))
				}
			default:
				if all != 1 {
					t.Fatalf("%d comments in Zendesk, want exactly 1", all)
				}
			}
			if tc.rule == "new" && len(f.TicketIDs()) != 2 {
				t.Fatalf("%d tickets, want the existing one and one new", len(f.TicketIDs()))
			}
		})
	}
}

func TestSinkLatestOpenAndNew(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	older := f.AddTicket(syncmap.Ticket{RequesterID: requesterID, Status: "open", UpdatedAt: base})
	newer := f.AddTicket(syncmap.Ticket{RequesterID: requesterID, Status: "pending", UpdatedAt: base.Add(time.Hour)})
	f.AddTicket(syncmap.Ticket{RequesterID: requesterID, Status: "solved", UpdatedAt: base.Add(2 * time.Hour)})
	s, _ := newSink(t, f)

	// latest_open: the most recently updated unsolved ticket, public comment.
	if err := s.Sync(context.Background(), voiceJob("c1", "latest", userRec(requesterID))); err != nil {
		t.Fatal(err)
	}
	if len(f.Comments(older)) != 0 || len(f.Comments(newer)) != 1 || !f.Comments(newer)[0].Public {
		t.Fatalf("latest_open wrote to the wrong ticket: older %d, newer %d comments", len(f.Comments(older)), len(f.Comments(newer)))
	}
	// popped user (popup: user): a new ticket for them, even when they
	// have an open one (latest_open is the rule option for that).
	if err := s.Sync(context.Background(), voiceJob("c2", "popped", userRec(requesterID))); err != nil {
		t.Fatal(err)
	}
	if len(f.Comments(newer)) != 1 {
		t.Fatalf("popped user: wrote to their open ticket (%d comments), want a new ticket", len(f.Comments(newer)))
	}
	// new: always a new ticket, found again by external id on redelivery.
	job := voiceJob("c3", "new", ticketRec(older))
	for range 2 {
		if err := s.Sync(context.Background(), job); err != nil {
			t.Fatal(err)
		}
	}
	ids := f.TicketIDs()
	if len(ids) != 5 {
		t.Fatalf("%d tickets, want 3 + 2 new", len(ids))
	}
	forUser := f.Get(ids[3])
	if forUser.RequesterID != requesterID || forUser.AssigneeID != agentID || forUser.ExternalID != syncmap.MarkerTag(cti.JobKey("c2", "l1")) {
		t.Fatalf("new ticket for the popped user = %+v", forUser)
	}
	if got := f.Get(ids[4]); got.RequesterID != requesterID || len(f.Comments(ids[4])) != 1 {
		t.Fatalf("sync.ticket new: %+v with %d comments, want requester %d and 1 comment", got, len(f.Comments(ids[4])), requesterID)
	}
}

func TestSinkDeletedOrClosedTicketFallsBack(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"deleted", "closed", "closed-meanwhile"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := syncmaptest.NewFake()
			tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
			gone := name
			switch name {
			case "deleted":
				f.DeleteTicket(tk)
			case "closed":
				f.SetStatus(tk, "closed")
			default: // closed between the read and the update
				gone = "closed"
				f.Hook(func(op syncmaptest.Op) error {
					if op == syncmaptest.OpUpdateTicket {
						f.SetStatus(tk, "closed")
					}
					return nil
				}, nil)
			}
			s, n := newSink(t, f)
			job := voiceJob("c1", "popped", ticketRec(tk))
			if err := syncUntilDone(t, s, job); err != nil {
				t.Fatal(err)
			}
			ids := f.TicketIDs()
			if len(ids) != 2 {
				t.Fatalf("%d tickets, want a new one", len(ids))
			}
			nt := f.Get(ids[1])
			if nt.RequesterID != requesterID || !nt.HasTag(syncmap.MarkerTag(job.Key)) {
				t.Fatalf("fallback ticket = %+v", nt)
			}
			if commentsWith(f, nt.ID, "Ticket #") != 1 || commentsWith(f, nt.ID, gone) != 1 {
				t.Fatalf("fallback comment %q does not say the ticket was %s", f.Comments(nt.ID)[0].Body, gone)
			}
			if fb := n.of(syncmap.NoticeTicketFallback); len(fb) != 1 || fb[0].TicketID != tk {
				t.Fatalf("fallback notices = %+v", fb)
			}
			// Redelivered: still one new ticket.
			if err := s.Sync(context.Background(), job); err != nil || len(f.TicketIDs()) != 2 {
				t.Fatalf("redelivery: %v, %d tickets", err, len(f.TicketIDs()))
			}
		})
	}
}

func TestSinkRejectedFieldReportedOnceRestSynced(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	bad, _ := syncmap.ParseFieldID(fieldWrapup)
	f.RejectField(bad, "Field Disposition: is invalid")
	a := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	b := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	s, n := newSink(t, f)
	for i, tk := range []int64{a, b} {
		job := voiceJob("c"+string(rune('1'+i)), "popped", ticketRec(tk))
		if err := s.Sync(context.Background(), job); err != nil {
			t.Fatalf("Sync: %v", err)
		}
		got := f.Get(tk)
		if fieldValue(got, fieldWrapup) != nil || fieldValue(got, fieldDuration) != "0:00:05" || len(f.Comments(tk)) != 1 || !got.HasTag(syncmap.MarkerTag(job.Key)) {
			t.Fatalf("ticket %d = %+v, %d comments: want everything but the rejected field", tk, got, len(f.Comments(tk)))
		}
	}
	rej := n.of(syncmap.NoticeFieldRejected)
	if len(rej) != 1 || rej[0].FieldID != bad || !strings.Contains(rej[0].Message, fieldWrapup) {
		t.Fatalf("rejected-field notices = %+v, want one naming %d", rej, bad)
	}
}

func TestSinkHugeTranscriptIsTruncated(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	s, n := newSink(t, f)
	job := voiceJob("c1", "popped", ticketRec(tk))
	var b strings.Builder
	for i := 0; b.Len() < 100_000; i++ {
		b.WriteString("Customer: é ça va? line ")
		b.WriteString(strings.Repeat("x", i%40))
		b.WriteByte('\n')
	}
	job.Conversation.Content.Transcript = b.String()
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	cs := f.Comments(tk)
	if len(cs) != 1 {
		t.Fatalf("%d comments", len(cs))
	}
	body := cs[0].Body
	if len(body) > syncmap.DefaultMaxComment || !strings.Contains(body, "truncated by ctikit") || !strings.Contains(body, "Disposition: Refund") {
		t.Fatalf("comment: %d bytes, truncated marker %v; want ≤ %d with the marker and the data points kept",
			len(body), strings.Contains(body, "truncated by ctikit"), syncmap.DefaultMaxComment)
	}
	if !strings.Contains(body, "Transcript:\nCustomer: é ça va?") {
		t.Fatal("the transcript's start is missing")
	}
	if tr := n.of(syncmap.NoticeTruncated); len(tr) != 1 || !strings.Contains(tr[0].Message, "comment") {
		t.Fatalf("truncation notices = %+v", tr)
	}
}

func TestSinkTalkCallRecordAndLateData(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	s, n := newSink(t, f, syncmap.WithTalkApp(777),
		syncmap.WithLateData(syncmap.LatePolicy{Points: []string{"RecordingURL", "CallSummary"}, Poll: time.Second}))
	job := voiceJob("c1", "popped", ticketRec(tk))
	err := s.Sync(context.Background(), job)
	var d *cti.Deferred
	if !errors.As(err, &d) {
		t.Fatalf("Sync without the recording = %v, want *cti.Deferred (call written, waiting for late data)", err)
	}
	calls := f.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls, want 1", len(calls))
	}
	c := calls[0]
	if c.AppID != 777 || c.TicketID != tk || c.FromLine != "+14155550100" || c.Direction != "inbound" || c.Duration != 5 ||
		c.AgentID != agentID || c.Disposition != "Refund" || c.ExternalID != syncmap.MarkerTag(job.Key) || c.CompletionStatus != "completed" {
		t.Fatalf("call record = %+v", c)
	}
	cs := f.Comments(tk)
	if len(cs) != 1 || cs[0].Type != "TpeVoiceComment" || cs[0].CallID != c.ID || cs[0].Body != "Genesys Cloud: inbound call" {
		t.Fatalf("comments = %+v, want the voice comment of the call only", cs)
	}
	got := f.Get(tk)
	if !got.HasTag(syncmap.MarkerTag(job.Key)) || fieldValue(got, fieldWrapup) != "Refund" {
		t.Fatalf("ticket not marked or fields missing: %+v", got)
	}
	// Still no recording: come back later, write nothing.
	job.Deferrals++
	if err := s.Sync(context.Background(), job); !errors.As(err, &d) {
		t.Fatalf("second Sync = %v, want deferred", err)
	}
	// The recording and summary arrive: the same call record is updated.
	job.Conversation.Links.RecordingURL = "https://rec.example/c1"
	job.Conversation.Content.Summary = "Refund requested."
	job.Deferrals++
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatalf("Sync with the late data = %v", err)
	}
	calls = f.Calls()
	if len(calls) != 1 || calls[0].RecordingURL != "https://rec.example/c1" || calls[0].Summary != "Refund requested." {
		t.Fatalf("calls = %+v, want the one record updated", calls)
	}
	if len(f.Comments(tk)) != 1 || f.Count(syncmaptest.OpUpdateCall) != 1 {
		t.Fatalf("%d comments, %d call updates; want 1 and 1", len(f.Comments(tk)), f.Count(syncmaptest.OpUpdateCall))
	}
	if len(n.of(syncmap.NoticeLateData)) != 0 {
		t.Fatal("late data notice although it came")
	}
}

// A rule with comment: none gives a call record no voice comment to be
// found by: when marking the ticket fails after the call record was
// written (a 429, a 5xx), the deferral carries the call's checkpoint and
// the next delivery reads that record instead of writing a second one.
func TestSinkTalkCommentNoneMarkFailsRetryWritesOneCall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		target cti.SyncTicket
		fail   error
	}{
		{"popped-429", cti.SyncPopped, &cti.UpstreamError{Service: "zendesk", Op: "update", Status: 429, RetryAfter: 10 * time.Millisecond}},
		{"popped-503", cti.SyncPopped, &cti.UpstreamError{Service: "zendesk", Op: "update", Status: 503, Temporary: true}},
		{"new-ticket-503", cti.SyncNew, &cti.UpstreamError{Service: "zendesk", Op: "update", Status: 503, Temporary: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := syncmaptest.NewFake()
			tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
			rules := &cti.Rules{Subscribe: cti.Subscribe{Queues: []string{"q1"}}, Rules: []cti.Rule{
				{Name: "quiet", Popup: cti.PopupNone, Sync: cti.SyncSpec{Ticket: tc.target, Comment: cti.CommentNone,
					Fields: map[string]string{fieldWrapup: "{{.WrapupName}}"}}},
			}}
			s, err := syncmap.NewSink(f, rules, syncmap.WithTalkApp(777), syncmap.WithUpdateRate(6000, 100), syncmap.WithBatchSettle(0))
			if err != nil {
				t.Fatal(err)
			}
			failed := 0
			f.Hook(func(op syncmaptest.Op) error {
				if op == syncmaptest.OpUpdateTicket && failed == 0 {
					failed++
					return tc.fail
				}
				return nil
			}, nil)
			job := voiceJob("c1", "quiet", ticketRec(tk))
			job.Tries = 1
			first := s.Sync(context.Background(), job)
			if !cti.IsRetryable(first) {
				t.Fatalf("first delivery = %v, want a retry", first)
			}
			// The next delivery, as the engine makes it: a deferral's
			// checkpoint is kept with the job.
			var d *cti.Deferred
			if errors.As(first, &d) {
				job.Deferrals++
				job.Checkpoint = d.Checkpoint
			} else {
				job.Attempts++
			}
			job.Tries++
			if err := s.Sync(context.Background(), job); err != nil {
				t.Fatalf("next delivery = %v", err)
			}
			calls := f.Calls()
			if len(calls) != 1 || failed != 1 {
				t.Fatalf("%d call records for one leg (hook fired %d times), want 1", len(calls), failed)
			}
			if d == nil || d.Checkpoint == "" {
				t.Fatalf("first delivery = %v, want a deferral with the call's checkpoint", first)
			}
			if ra, _ := cti.RetryAfter(tc.fail); d.After < ra {
				t.Fatalf("deferred for %v, want at least the Retry-After %v", d.After, ra)
			}
			got := f.Get(calls[0].TicketID)
			if !got.HasTag(syncmap.MarkerTag(job.Key)) || fieldValue(got, fieldWrapup) != "Refund" {
				t.Fatalf("call's ticket not marked: %+v", got)
			}
			if n := len(f.TicketIDs()); tc.target == cti.SyncNew && n != 2 || tc.target != cti.SyncNew && n != 1 {
				t.Fatalf("%d tickets", n)
			}
		})
	}
}

func TestSinkLateDataWaitsThenGivesUp(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	now := time.Now()
	clock := func() time.Time { return now }
	s, n := newSink(t, f, syncmap.WithClock(clock), syncmap.WithLateData(syncmap.LatePolicy{Wait: 10 * time.Minute, Poll: time.Minute}))
	job := voiceJob("c1", "recording", ticketRec(tk)) // its field names .RecordingURL
	job.EnqueuedAt = now
	var d *cti.Deferred
	if err := s.Sync(context.Background(), job); !errors.As(err, &d) || d.After != time.Minute {
		t.Fatalf("Sync = %v, want deferred 1m while waiting for the recording", err)
	}
	if len(f.Comments(tk)) != 0 || f.Count(syncmaptest.OpTicket) != 0 {
		t.Fatal("wrote (or read) Zendesk while waiting for late data")
	}
	// It arrives: written with it.
	job2 := voiceJob("c2", "recording", ticketRec(tk))
	job2.EnqueuedAt = now
	job2.Conversation.Links.RecordingURL = "https://rec.example/c2"
	if err := s.Sync(context.Background(), job2); err != nil {
		t.Fatal(err)
	}
	if v := fieldValue(f.Get(tk), fieldNotes); v != "https://rec.example/c2" {
		t.Fatalf("recording field = %v", v)
	}
	// The first never gets it: written without it after the wait.
	now = now.Add(11 * time.Minute)
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	if len(f.Comments(tk)) != 2 || len(n.of(syncmap.NoticeLateData)) != 1 {
		t.Fatalf("%d comments, %d late notices; want 2 and 1", len(f.Comments(tk)), len(n.of(syncmap.NoticeLateData)))
	}
}

func TestSinkBatch(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	bad, _ := syncmap.ParseFieldID(fieldNotes)
	var tks []int64
	for range 3 {
		tks = append(tks, f.AddTicket(syncmap.Ticket{RequesterID: requesterID}))
	}
	gone := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	f.DeleteTicket(gone)
	s, n := newSink(t, f)
	var jobs []*cti.SyncJob
	for i, tk := range []int64{tks[0], tks[1], tks[0], tks[2], gone, tks[0]} {
		j := voiceJob("b"+string(rune('a'+i)), "popped", ticketRec(tk))
		j.Conversation.Agents[0].Wrapup.Notes = "note " + string(rune('a'+i))
		jobs = append(jobs, j)
	}
	jobs = append(jobs, voiceJob("bz", "new", nil)) // not batchable
	errs := s.SyncBatch(context.Background(), jobs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	// Three jobs on tks[0]: three rounds of update_many, in job order.
	if got := f.Count(syncmaptest.OpUpdateMany); got != 3 {
		t.Fatalf("%d update_many requests, want 3 rounds", got)
	}
	var order []string
	for _, c := range f.Comments(tks[0]) {
		for _, w := range []string{"note a", "note c", "note f"} {
			if strings.Contains(c.Body, w) {
				order = append(order, w)
			}
		}
	}
	if strings.Join(order, ",") != "note a,note c,note f" {
		t.Fatalf("comments on one ticket out of order: %v", order)
	}
	for _, tk := range tks[1:] {
		if len(f.Comments(tk)) != 1 {
			t.Fatalf("ticket %d: %d comments", tk, len(f.Comments(tk)))
		}
	}
	if len(n.of(syncmap.NoticeTicketFallback)) != 1 || len(f.TicketIDs()) != 6 {
		t.Fatalf("deleted ticket: %d fallbacks, %d tickets; want 1 and 4+2 new", len(n.of(syncmap.NoticeTicketFallback)), len(f.TicketIDs()))
	}
	// Again (crash before ack): nothing is written twice.
	before := f.Count(syncmaptest.OpUpdateMany) + f.Count(syncmaptest.OpUpdateTicket) + f.Count(syncmaptest.OpCreateTicket)
	for i, err := range s.SyncBatch(context.Background(), jobs) {
		if err != nil {
			t.Fatalf("redelivery job %d: %v", i, err)
		}
	}
	if after := f.Count(syncmaptest.OpUpdateMany) + f.Count(syncmaptest.OpUpdateTicket) + f.Count(syncmaptest.OpCreateTicket); after != before {
		t.Fatalf("redelivered batch wrote %d more times", after-before)
	}
	// A rejected field in a batch: that job is redone alone without it.
	f.RejectField(bad, "invalid")
	j1 := voiceJob("r1", "popped", ticketRec(tks[1]))
	j2 := voiceJob("r2", "popped", ticketRec(tks[2]))
	for i, err := range s.SyncBatch(context.Background(), []*cti.SyncJob{j1, j2}) {
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	if len(f.Comments(tks[1])) != 2 || len(f.Comments(tks[2])) != 2 || len(n.of(syncmap.NoticeFieldRejected)) != 1 {
		t.Fatalf("after a rejected field in a batch: %d and %d comments, %d notices", len(f.Comments(tks[1])), len(f.Comments(tks[2])), len(n.of(syncmap.NoticeFieldRejected)))
	}
}

func TestSink429StormIsRetryableAndPaced(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	f.Storm(5, 40*time.Millisecond)
	s, _ := newSink(t, f)
	job := voiceJob("c1", "popped", ticketRec(tk))
	start := time.Now()
	var u *cti.UpstreamError
	err := s.Sync(context.Background(), job)
	if !errors.As(err, &u) || u.Status != 429 || !cti.IsRetryable(err) {
		t.Fatalf("Sync in a storm = %v, want a retryable 429", err)
	}
	if ra, ok := cti.RetryAfter(err); !ok || ra != 40*time.Millisecond {
		t.Fatalf("RetryAfter = %v, %v", ra, ok)
	}
	if err := syncUntilDone(t, s, job); err != nil {
		t.Fatal(err)
	}
	if len(f.Comments(tk)) != 1 {
		t.Fatalf("%d comments after the storm, want 1", len(f.Comments(tk)))
	}
	// Every 429 held all writers back for Retry-After.
	if el := time.Since(start); el < 4*40*time.Millisecond {
		t.Fatalf("took %v: the sink did not honour Retry-After", el)
	}
}

func TestSinkUnknownRuleIsPermanent(t *testing.T) {
	t.Parallel()
	s, _ := newSink(t, syncmaptest.NewFake())
	err := s.Sync(context.Background(), voiceJob("c1", "nope", nil))
	if err == nil || cti.IsRetryable(err) || !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("Sync(unknown rule) = %v, want a permanent ErrInvalid", err)
	}
}
