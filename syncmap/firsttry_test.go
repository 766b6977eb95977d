package syncmap_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/syncmap/syncmaptest"
)

// firstTry marks a job as the engine does on its first delivery.
func firstTry(j *cti.SyncJob) *cti.SyncJob { j.Tries = 1; return j }

// On a first delivery (Tries == 1) the sink writes without its "already
// written?" reads; a redelivery (Tries > 1) still checks and writes
// nothing twice.
func TestSinkFirstTryWritesWithoutReading(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	s, _ := newSink(t, f)
	job := firstTry(voiceJob("c1", "popped", ticketRec(tk)))
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	if r, u := f.Count(syncmaptest.OpTicket), f.Count(syncmaptest.OpUpdateTicket); r != 0 || u != 1 {
		t.Fatalf("first try: %d reads, %d updates; want 0 and 1", r, u)
	}
	job.Tries = 2 // the engine crashed before the ack
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	if n := len(f.Comments(tk)); n != 1 || f.Count(syncmaptest.OpUpdateTicket) != 1 {
		t.Fatalf("after redelivery: %d comments, %d updates; want 1 and 1", n, f.Count(syncmaptest.OpUpdateTicket))
	}

	// A new ticket on a first try: no lookup by external id.
	nj := firstTry(voiceJob("c2", "new", nil))
	if err := s.Sync(context.Background(), nj); err != nil {
		t.Fatal(err)
	}
	if n := f.Count(syncmaptest.OpByExternalID); n != 0 {
		t.Fatalf("first try of a new ticket looked it up %d times", n)
	}
	nj.Tries = 2
	if err := s.Sync(context.Background(), nj); err != nil {
		t.Fatal(err)
	}
	if n := f.Count(syncmaptest.OpCreateTicket); n != 1 {
		t.Fatalf("%d tickets created for one job", n)
	}
}

// Without the read, a deleted or closed ticket still falls back to a new
// ticket (the update answers 404 or 422).
func TestSinkFirstTryDeletedOrClosedFallsBack(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"deleted", "closed"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := syncmaptest.NewFake()
			tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
			if name == "deleted" {
				f.DeleteTicket(tk)
			} else {
				f.SetStatus(tk, "closed")
			}
			s, n := newSink(t, f)
			job := firstTry(voiceJob("c1", "popped", ticketRec(tk)))
			if err := syncUntilDone(t, s, job); err != nil {
				t.Fatal(err)
			}
			ids := f.TicketIDs()
			if len(ids) != 2 {
				t.Fatalf("%d tickets, want a new one", len(ids))
			}
			if nt := f.Get(ids[1]); !nt.HasTag(syncmap.MarkerTag(job.Key)) || commentsWith(f, nt.ID, name) != 1 {
				t.Fatalf("fallback ticket %+v, comments %+v", nt, f.Comments(nt.ID))
			}
			if fb := n.of(syncmap.NoticeTicketFallback); len(fb) != 1 {
				t.Fatalf("fallback notices = %+v", fb)
			}
			job.Tries = 2
			if err := s.Sync(context.Background(), job); err != nil || len(f.TicketIDs()) != 2 {
				t.Fatalf("redelivery: %v, %d tickets", err, len(f.TicketIDs()))
			}
		})
	}
}

// A batch of first tries goes straight to update_many (no show_many);
// deleted and closed tickets come back failed in its results and take the
// fallback path; order per ticket holds.
func TestSinkFirstTryBatch(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	var tks []int64
	for range 2 {
		tks = append(tks, f.AddTicket(syncmap.Ticket{RequesterID: requesterID}))
	}
	gone := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	f.DeleteTicket(gone)
	shut := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	f.SetStatus(shut, "closed")
	s, n := newSink(t, f)
	var jobs []*cti.SyncJob
	for i, tk := range []int64{tks[0], tks[1], gone, tks[0], shut, tks[0]} {
		j := firstTry(voiceJob("f"+string(rune('a'+i)), "popped", ticketRec(tk)))
		j.Conversation.Agents[0].Wrapup.Notes = "note " + string(rune('a'+i))
		jobs = append(jobs, j)
	}
	for i, err := range s.SyncBatch(context.Background(), jobs) {
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	// No show_many; one read, after the closed ticket's 422, to tell
	// "closed" from another invalid update.
	if r, r1 := f.Count(syncmaptest.OpTickets), f.Count(syncmaptest.OpTicket); r != 0 || r1 != 1 {
		t.Fatalf("a batch of first tries: %d show_many, %d ticket reads; want 0 and 1", r, r1)
	}
	var order []int
	for _, c := range f.Comments(tks[0]) {
		for k, w := range []string{"note a", "note d", "note f"} {
			if commentHas(c, w) {
				order = append(order, k)
			}
		}
	}
	if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
		t.Fatalf("comments on one ticket: order %v, want [0 1 2]", order)
	}
	if fb := n.of(syncmap.NoticeTicketFallback); len(fb) != 2 || len(f.TicketIDs()) != 6 {
		t.Fatalf("%d fallbacks, %d tickets; want 2 and 4+2 new", len(fb), len(f.TicketIDs()))
	}
	// Redelivered (crash before the acks): the marker check finds them.
	before := f.Count(syncmaptest.OpUpdateMany) + f.Count(syncmaptest.OpUpdateTicket) + f.Count(syncmaptest.OpCreateTicket)
	for _, j := range jobs {
		j.Tries = 2
	}
	for i, err := range s.SyncBatch(context.Background(), jobs) {
		if err != nil {
			t.Fatalf("redelivery job %d: %v", i, err)
		}
	}
	if after := f.Count(syncmaptest.OpUpdateMany) + f.Count(syncmaptest.OpUpdateTicket) + f.Count(syncmaptest.OpCreateTicket); after != before {
		t.Fatalf("redelivered batch wrote %d more times", after-before)
	}
}

func commentHas(c syncmap.Comment, sub string) bool {
	return strings.Contains(c.Body, sub)
}

// noResult applies update_many but reports no result for ticket lost in
// its first request: the Zendesk job ended without it, an unknown outcome
// (a temporary error, as zendesk.Client reports it).
type noResult struct {
	*syncmaptest.Fake
	lost int64
	once sync.Once
}

func (n *noResult) UpdateMany(ctx context.Context, ups []syncmap.TicketUpdate) ([]syncmap.UpdateResult, error) {
	res, err := n.Fake.UpdateMany(ctx, ups)
	if err != nil {
		return res, err
	}
	n.once.Do(func() {
		for k := range res {
			if res[k].ID == n.lost {
				res[k] = syncmap.UpdateResult{ID: n.lost, Error: "NoResult",
					Err: &cti.UpstreamError{Service: "zendesk", Op: "update many tickets", Temporary: true}}
			}
		}
	})
	return res, nil
}

// A ticket missing from a finished update_many job's results may have
// been updated: its job (a first try) is retried after the settle wait,
// not written again at once, and the ticket's later job waits with it;
// the redelivery finds the marker and writes only what is missing, in
// order.
func TestSinkBatchUnknownOutcomeRetriesNotWritesTwice(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	t1 := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	t2 := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	zd := &noResult{Fake: f, lost: t2}
	s, _ := newSink(t, zd, syncmap.WithBatchSettle(time.Minute))
	var jobs []*cti.SyncJob
	for i, tk := range []int64{t1, t2, t2} {
		j := firstTry(voiceJob("u"+string(rune('a'+i)), "popped", ticketRec(tk)))
		j.Conversation.Agents[0].Wrapup.Notes = "note " + string(rune('a'+i))
		jobs = append(jobs, j)
	}
	errs := s.SyncBatch(context.Background(), jobs)
	if errs[0] != nil {
		t.Fatalf("job 0: %v", errs[0])
	}
	if n := commentsWith(f, t2, "note b"); n != 1 {
		t.Fatalf("ticket %d has %d comments of job 1, want 1", t2, n)
	}
	for _, i := range []int{1, 2} {
		if ra, ok := cti.RetryAfter(errs[i]); !cti.IsRetryable(errs[i]) || !ok || ra < time.Minute {
			t.Fatalf("job %d = %v, want a retry after the settle wait (1m)", i, errs[i])
		}
	}
	if n := commentsWith(f, t2, "note c"); n != 0 {
		t.Fatalf("job 2 written before job 1 settled (%d comments)", n)
	}
	for _, j := range jobs[1:] {
		j.Tries++
		j.Attempts++
	}
	for i, err := range s.SyncBatch(context.Background(), jobs[1:]) {
		if err != nil {
			t.Fatalf("redelivery of job %d: %v", i+1, err)
		}
	}
	var order []string
	for _, c := range f.Comments(t2) {
		for _, w := range []string{"note a", "note b", "note c"} {
			if commentHas(c, w) {
				order = append(order, w)
			}
		}
	}
	if strings.Join(order, ",") != "note b,note c" {
		t.Fatalf("comments on ticket %d: %v, want note b, note c", t2, order)
	}
}

// TestSinkBatchKeepsTicketOrderPastARetry: the older job of a ticket has
// failed twice, so it goes the single path, which writes after the
// batches; the ticket's later job, on its first try, goes with it rather
// than in the batch: the comments reach the ticket in job order.
func TestSinkBatchKeepsTicketOrderPastARetry(t *testing.T) {
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	other := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	s, _ := newSink(t, f)
	a := voiceJob("first", "popped", ticketRec(tk))
	a.Conversation.Agents[0].Wrapup.Notes = "note A"
	a.Tries, a.Attempts = 3, 2
	b := voiceJob("second", "popped", ticketRec(tk))
	b.Conversation.Agents[0].Wrapup.Notes = "note B"
	b.Tries = 1
	c := voiceJob("third", "popped", ticketRec(other))
	c.Tries = 1
	for i, err := range s.SyncBatch(context.Background(), []*cti.SyncJob{a, b, c}) {
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	var order []string
	for _, cm := range f.Comments(tk) {
		for _, w := range []string{"note A", "note B"} {
			if strings.Contains(cm.Body, w) {
				order = append(order, w)
			}
		}
	}
	if strings.Join(order, ",") != "note A,note B" {
		t.Fatalf("comments on one ticket out of job order: %v", order)
	}
}
