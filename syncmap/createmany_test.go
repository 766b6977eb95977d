package syncmap_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/syncmap/syncmaptest"
)

// newTicketJobs are n first tries that each make a new ticket: half popped
// a user (sync.ticket popped: a new ticket for them), half sync.ticket new.
func newTicketJobs(prefix string, n int) []*cti.SyncJob {
	var jobs []*cti.SyncJob
	for i := range n {
		conv := fmt.Sprintf("%s%02d", prefix, i)
		j := voiceJob(conv, "popped", userRec(requesterID))
		if i%2 == 1 {
			j = voiceJob(conv, "new", userRec(requesterID))
		}
		j.Conversation.Agents[0].Wrapup.Notes = "note " + conv
		jobs = append(jobs, firstTry(j))
	}
	return jobs
}

// ticketOf returns, per job key, the one ticket carrying the job's marker;
// it fails the test when a job has none or several.
func ticketOf(t *testing.T, f *syncmaptest.Fake, jobs []*cti.SyncJob) map[string]*syncmap.Ticket {
	t.Helper()
	ids := map[string][]int64{}
	for _, id := range f.TicketIDs() {
		tk := f.Get(id)
		for _, j := range jobs {
			if tk.ExternalID == syncmap.MarkerTag(j.Key) {
				ids[j.Key] = append(ids[j.Key], id)
			}
		}
	}
	out := map[string]*syncmap.Ticket{}
	for _, j := range jobs {
		if len(ids[j.Key]) != 1 {
			t.Fatalf("job %s: tickets %v, want exactly one", j.Key, ids[j.Key])
		}
		out[j.Key] = f.Get(ids[j.Key][0])
	}
	return out
}

// syncBatchOK runs jobs as one batch and fails the test on any error.
func syncBatchOK(t *testing.T, s *syncmap.Sink, jobs []*cti.SyncJob) {
	t.Helper()
	for i, err := range s.SyncBatch(context.Background(), jobs) {
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
}

// A batch of first tries that make new tickets costs one create_many
// request; each ticket carries its own comment, fields, marker and
// requester.
func TestSinkBatchCreatesWithCreateMany(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	s, _ := newSink(t, f)
	jobs := newTicketJobs("cm", 7)
	syncBatchOK(t, s, jobs)
	if m, c := f.Count(syncmaptest.OpCreateMany), f.Count(syncmaptest.OpCreateTicket); m != 1 || c != 0 {
		t.Fatalf("%d create_many, %d single creates; want 1 and 0", m, c)
	}
	if r := f.Count(syncmaptest.OpByExternalID); r != 0 {
		t.Fatalf("first tries looked tickets up %d times", r)
	}
	got := ticketOf(t, f, jobs)
	for _, j := range jobs {
		tk := got[j.Key]
		if tk.RequesterID != requesterID || !tk.HasTag(syncmap.MarkerTag(j.Key)) || fieldValue(tk, fieldWrapup) != "Refund" {
			t.Fatalf("job %s: ticket %+v", j.Key, tk)
		}
		if commentsWith(f, tk.ID, "note "+j.ConversationID) != 1 {
			t.Fatalf("job %s: comments %+v", j.Key, f.Comments(tk.ID))
		}
	}
}

// Two new tickets are cheaper as two creates than a create_many and its
// job poll; retries and jobs that update a ticket never go in create_many.
func TestSinkBatchCreateManyOnlyWhenItSaves(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	s, _ := newSink(t, f)
	jobs := newTicketJobs("two", 2)
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	jobs = append(jobs, firstTry(voiceJob("upd", "popped", ticketRec(tk))))
	retry := newTicketJobs("re", 3)
	for _, j := range retry {
		j.Tries = 2
	}
	jobs = append(jobs, retry...)
	syncBatchOK(t, s, jobs)
	if m, c := f.Count(syncmaptest.OpCreateMany), f.Count(syncmaptest.OpCreateTicket); m != 0 || c != 5 {
		t.Fatalf("%d create_many, %d single creates; want 0 and 5", m, c)
	}
	if n := f.Count(syncmaptest.OpByExternalID); n != 3 {
		t.Fatalf("%d external id lookups, want 3 (the retries)", n)
	}
}

// create_many's answer lost (Zendesk created the tickets): the jobs retry
// once the job surely ended, find their tickets by external id and create
// none twice.
func TestSinkCreateManyLostAnswerCreatesOnce(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	s, _ := newSink(t, f)
	lost := errors.New("connection reset")
	f.Hook(nil, func(op syncmaptest.Op) error {
		if op == syncmaptest.OpCreateMany {
			return &cti.UpstreamError{Service: "zendesk", Op: string(op), Temporary: true, Err: lost}
		}
		return nil
	})
	jobs := newTicketJobs("lost", 5)
	for i, err := range s.SyncBatch(context.Background(), jobs) {
		if err == nil || !cti.IsRetryable(err) {
			t.Fatalf("job %d: %v, want a retryable error", i, err)
		}
	}
	f.Hook(nil, nil)
	for _, j := range jobs {
		j.Tries++ // the engine's next delivery
		j.Attempts++
	}
	syncBatchOK(t, s, jobs)
	ticketOf(t, f, jobs)
	if m, c := f.Count(syncmaptest.OpCreateMany), f.Count(syncmaptest.OpCreateTicket); m != 1 || c != 0 {
		t.Fatalf("%d create_many, %d single creates; want 1 and 0", m, c)
	}
}

// Tickets Zendesk rejects in the bulk job (an invalid field value) are
// made one by one, where the rejected field is dropped and reported.
func TestSinkCreateManyRejectedTicketsGoOneByOne(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	fid, _ := syncmap.ParseFieldID(fieldWrapup)
	f.RejectField(fid, "Wrap-up: is not a valid option")
	s, _ := newSink(t, f)
	jobs := newTicketJobs("rej", 4)
	syncBatchOK(t, s, jobs)
	if m := f.Count(syncmaptest.OpCreateMany); m != 1 {
		t.Fatalf("%d create_many, want 1", m)
	}
	got := ticketOf(t, f, jobs)
	for _, j := range jobs {
		tk := got[j.Key]
		if fieldValue(tk, fieldWrapup) != nil || fieldValue(tk, fieldDuration) == nil {
			t.Fatalf("job %s: fields %v; want the rejected one dropped, the others kept", j.Key, tk.CustomFields)
		}
	}
}
