package syncmap_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/syncmap/syncmaptest"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

const recURL = "https://api.mypurecloud.com/api/v2/conversations/c1/recordings/rec-1"

// opener is a cti.RecordingOpener that serves audio, or the errors queued
// in fail first.
type opener struct {
	mu    sync.Mutex
	fail  []error
	opens int
	urls  []string
}

func audio(u string) []byte { return []byte("ID3 fake mp3 of " + u) }

func (o *opener) OpenRecording(ctx context.Context, u string) (*cti.RecordingFile, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.opens++
	o.urls = append(o.urls, u)
	if len(o.fail) > 0 {
		err := o.fail[0]
		o.fail = o.fail[1:]
		return nil, err
	}
	b := audio(u)
	return &cti.RecordingFile{Body: io.NopCloser(bytes.NewReader(b)), Name: "x.mp3", ContentType: "audio/mpeg", Size: int64(len(b))}, nil
}

func (o *opener) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.opens
}

// recordingJob is voiceJob with its recording (recURL) known.
func recordingJob(rule string, popped *cti.Record) *cti.SyncJob { return recordedJob(1, rule, popped) }

// recordedJob is the first try of the sync of conversation c<i>, whose
// recording is rec-<i>.
func recordedJob(i int, rule string, popped *cti.Record) *cti.SyncJob {
	job := voiceJob(fmt.Sprintf("c%d", i), rule, popped)
	job.Conversation.Links.RecordingURL = fmt.Sprintf("https://api.mypurecloud.com/api/v2/conversations/c%d/recordings/rec-%d", i, i)
	job.Tries = 1
	return job
}

// uploadedOnce checks that ticket tk has the recording attached exactly
// once, with the opener's bytes, and returns its address.
func uploadedOnce(t *testing.T, f *syncmaptest.Fake, tk int64) string {
	t.Helper()
	var found []syncmap.Attachment
	for _, c := range f.Comments(tk) {
		for _, a := range c.Attachments {
			if a.FileName == "recording-rec-1.mp3" {
				found = append(found, a)
				if c.Public {
					t.Errorf("the recording is attached to a public comment: %+v", c)
				}
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("recording attached %d times to ticket %d, want once: %+v", len(found), tk, f.Comments(tk))
	}
	a := found[0]
	if a.ContentURL == "" || a.ContentURL == recURL || a.ContentType != "audio/mpeg" || a.Size != int64(len(audio(recURL))) {
		t.Fatalf("attachment = %+v", a)
	}
	return a.ContentURL
}

func TestRecordingUploadNeedsAnUploader(t *testing.T) {
	t.Parallel()
	type notUploader struct{ syncmap.Zendesk }
	_, err := syncmap.NewSink(notUploader{syncmaptest.NewFake()}, testRules(), syncmap.WithRecordingUpload(&opener{}))
	if err == nil || !strings.Contains(err.Error(), "Uploader") {
		t.Fatalf("NewSink with a Zendesk that cannot upload = %v, want an error naming Uploader", err)
	}
	if _, err := syncmap.NewSink(syncmaptest.NewFake(), testRules(), syncmap.WithRecordingUpload(nil)); err == nil {
		t.Fatal("WithRecordingUpload(nil) accepted")
	}
}

func TestRecordingUploadTalkCallRecord(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	o := &opener{}
	s, n := newSink(t, f, syncmap.WithTalkApp(777), syncmap.WithRecordingUpload(o))
	job := recordingJob("popped", ticketRec(tk))
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatalf("Sync = %v", err)
	}
	addr := uploadedOnce(t, f, tk)
	calls := f.Calls()
	if len(calls) != 1 || calls[0].RecordingURL != addr {
		t.Fatalf("calls = %+v, want one whose recording_url is the uploaded file %s", calls, addr)
	}
	if o.count() != 1 || o.urls[0] != recURL {
		t.Fatalf("opened %d times (%v), want once, the conversation's recording", o.count(), o.urls)
	}
	// One ticket update marks the ticket and attaches the recording.
	if f.Count(syncmaptest.OpUpdateTicket) != 1 || f.Count(syncmaptest.OpUpdateCall) != 1 {
		t.Fatalf("%d ticket updates, %d call updates; want 1 and 1", f.Count(syncmaptest.OpUpdateTicket), f.Count(syncmaptest.OpUpdateCall))
	}
	if got := f.Get(tk); !got.HasTag(syncmap.MarkerTag(job.Key)) || fieldValue(got, fieldWrapup) != "Refund" {
		t.Fatalf("ticket not marked: %+v", got)
	}
	// A retry (the engine lost the answer): nothing uploaded or written again.
	job.Tries = 2
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatalf("retry = %v", err)
	}
	uploadedOnce(t, f, tk)
	if o.count() != 1 || f.Count(syncmaptest.OpUpload) != 1 || len(f.Calls()) != 1 {
		t.Fatalf("retry opened %d, uploaded %d, calls %d; want 1, 1, 1", o.count(), f.Count(syncmaptest.OpUpload), len(f.Calls()))
	}
	if len(n.of(syncmap.NoticeRecording)) != 0 {
		t.Fatalf("notices: %+v", n.of(syncmap.NoticeRecording))
	}
}

// A crash after the recording was attached but before the call record
// got its address: the retry finds the attached file instead of
// uploading it again.
func TestRecordingUploadRetryFindsAttachedFile(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	lost := errors.New("connection reset")
	var once sync.Once
	f.Hook(func(op syncmaptest.Op) error {
		var err error
		if op == syncmaptest.OpUpdateCall {
			once.Do(func() { err = &cti.UpstreamError{Service: "zendesk", Op: "update call", Status: 503, Err: lost} })
		}
		return err
	}, nil)
	o := &opener{}
	s, _ := newSink(t, f, syncmap.WithTalkApp(777), syncmap.WithRecordingUpload(o))
	job := recordingJob("popped", ticketRec(tk))
	if err := s.Sync(context.Background(), job); !errors.Is(err, lost) {
		t.Fatalf("Sync = %v, want the call update's failure", err)
	}
	job.Tries = 2
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatalf("retry = %v", err)
	}
	addr := uploadedOnce(t, f, tk)
	if calls := f.Calls(); len(calls) != 1 || calls[0].RecordingURL != addr {
		t.Fatalf("calls = %+v, want the one record with the attached file", calls)
	}
	if o.count() != 1 || f.Count(syncmaptest.OpUpload) != 1 {
		t.Fatalf("opened %d, uploaded %d; want once each", o.count(), f.Count(syncmaptest.OpUpload))
	}
}

// A recording Genesys is still transcoding: the call record is written
// at once, and the recording added when it is ready.
func TestRecordingUploadWaitsForTranscoding(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	o := &opener{fail: []error{cti.Later(5*time.Second, "transcoding")}}
	s, n := newSink(t, f, syncmap.WithTalkApp(777), syncmap.WithRecordingUpload(o),
		syncmap.WithLateData(syncmap.LatePolicy{Poll: 30 * time.Second}))
	job := recordingJob("popped", ticketRec(tk))
	err := s.Sync(context.Background(), job)
	var d *cti.Deferred
	if !errors.As(err, &d) || d.After != 5*time.Second {
		t.Fatalf("Sync while transcoding = %v, want deferred by Genesys's estimate (5s)", err)
	}
	if calls := f.Calls(); len(calls) != 1 || calls[0].RecordingURL != "" {
		t.Fatalf("calls = %+v, want the record written without a recording", calls)
	}
	job.Tries, job.Deferrals = 2, 1
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatalf("Sync once transcoded = %v", err)
	}
	addr := uploadedOnce(t, f, tk)
	if calls := f.Calls(); len(calls) != 1 || calls[0].RecordingURL != addr {
		t.Fatalf("calls = %+v", calls)
	}
	if len(n.of(syncmap.NoticeRecording)) != 0 {
		t.Fatal("notice although the recording came")
	}
}

// A recording that cannot be fetched (deleted) or that Zendesk refuses
// (too large) is left out, reported once, and never fetched again for
// that sync; the rest of the sync is written.
func TestRecordingUploadGivesUp(t *testing.T) {
	t.Parallel()
	for name, fail := range map[string]func(*syncmaptest.Fake, *opener){
		"deleted": func(_ *syncmaptest.Fake, o *opener) {
			o.fail = []error{fmt.Errorf("genesys recording: %w", cti.ErrNotFound)}
		},
		"refused": func(f *syncmaptest.Fake, _ *opener) {
			f.Hook(func(op syncmaptest.Op) error {
				if op == syncmaptest.OpUpload {
					return &cti.UpstreamError{Service: "zendesk", Op: "upload", Status: 413, Err: errors.New("too large")}
				}
				return nil
			}, nil)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := syncmaptest.NewFake()
			tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
			o := &opener{}
			fail(f, o)
			s, n := newSink(t, f, syncmap.WithTalkApp(777), syncmap.WithRecordingUpload(o),
				syncmap.WithLateData(syncmap.LatePolicy{Points: []string{"CallSummary"}, Poll: time.Second}))
			job := recordingJob("popped", ticketRec(tk))
			var d *cti.Deferred
			if err := s.Sync(context.Background(), job); !errors.As(err, &d) {
				t.Fatalf("Sync = %v, want deferred for the summary", err)
			}
			job.Tries, job.Deferrals = 2, 1
			if err := s.Sync(context.Background(), job); !errors.As(err, &d) {
				t.Fatalf("second Sync = %v, want deferred for the summary", err)
			}
			if o.count() != 1 {
				t.Fatalf("opened %d times, want once: given up after the first failure", o.count())
			}
			if ns := n.of(syncmap.NoticeRecording); len(ns) != 1 || ns[0].ConversationID != "c1" {
				t.Fatalf("recording notices = %+v, want one", ns)
			}
			if calls := f.Calls(); len(calls) != 1 || calls[0].RecordingURL != "" || !f.Get(tk).HasTag(syncmap.MarkerTag(job.Key)) {
				t.Fatalf("calls = %+v, want the record written without a recording, and the ticket marked", calls)
			}
		})
	}
}

// A failure worth retrying (Zendesk 503) comes back later while the late
// data wait lasts, then gives up without losing the sync.
func TestRecordingUploadRetriesThenGivesUp(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	f.Hook(func(op syncmaptest.Op) error {
		if op == syncmaptest.OpUpload {
			return &cti.UpstreamError{Service: "zendesk", Op: "upload", Status: 503, Err: errors.New("unavailable")}
		}
		return nil
	}, nil)
	o := &opener{}
	s, n := newSink(t, f, syncmap.WithRecordingUpload(o), syncmap.WithLateData(syncmap.LatePolicy{Points: []string{}, Poll: time.Second}))
	job := recordingJob("popped", ticketRec(tk))
	err := s.Sync(context.Background(), job)
	var d *cti.Deferred
	if !errors.As(err, &d) {
		t.Fatalf("Sync with Zendesk failing uploads = %v, want deferred", err)
	}
	if len(f.Comments(tk)) != 0 {
		t.Fatal("comment written while the recording is retried")
	}
	job.Tries, job.EnqueuedAt = 2, time.Now().Add(-time.Hour) // the wait is over
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatalf("Sync after the wait = %v, want written without the recording", err)
	}
	if commentsWith(f, tk, recURL) != 1 || len(n.of(syncmap.NoticeRecording)) != 1 {
		t.Fatalf("comments %+v, notices %+v; want the comment with Genesys's link and one notice", f.Comments(tk), n.ns)
	}
}

// Without Talk, the recording is attached to the sync comment, which links
// the uploaded file.
func TestRecordingUploadInComment(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	o := &opener{}
	s, _ := newSink(t, f, syncmap.WithRecordingUpload(o))
	job := recordingJob("popped", ticketRec(tk))
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatalf("Sync = %v", err)
	}
	addr := uploadedOnce(t, f, tk)
	cs := f.Comments(tk)
	if len(cs) != 1 || !strings.Contains(cs[0].Body, addr) || strings.Contains(cs[0].Body, recURL) {
		t.Fatalf("comments = %+v, want one linking the uploaded file %s instead of the API address", cs, addr)
	}
	if job.Conversation.Links.RecordingURL != recURL {
		t.Fatal("the sink changed the job's conversation")
	}
}

// In a batch (update_many, create_many), each comment carries its own
// recording.
func TestRecordingUploadInBatch(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	o := &overlap{want: 2, release: make(chan struct{})}
	s, _ := newSink(t, f, syncmap.WithRecordingUpload(o))
	var jobs []*cti.SyncJob
	var tks []int64
	for i := range 4 {
		tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
		tks = append(tks, tk)
		jobs = append(jobs, recordedJob(i, "popped", ticketRec(tk)))
	}
	for i, err := range s.SyncBatch(context.Background(), jobs) {
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	if f.Count(syncmaptest.OpUpdateMany) == 0 {
		t.Fatal("no update_many: the batch path was not taken")
	}
	if o.max() < 2 {
		t.Fatalf("at most %d recordings fetched at once, want the batch's fetched side by side", o.max())
	}
	for i, tk := range tks {
		cs := f.Comments(tk)
		want := fmt.Sprintf("recording-rec-%d.mp3", i)
		if len(cs) != 1 || len(cs[0].Attachments) != 1 || cs[0].Attachments[0].FileName != want ||
			!strings.Contains(cs[0].Body, cs[0].Attachments[0].ContentURL) {
			t.Fatalf("ticket %d comments = %+v, want one with %s attached and linked", tk, cs, want)
		}
	}
}

// New tickets of a batch go in create_many, each first comment with its
// own recording.
func TestRecordingUploadInCreateMany(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	s, _ := newSink(t, f, syncmap.WithRecordingUpload(&opener{}))
	var jobs []*cti.SyncJob
	for i := range 3 {
		jobs = append(jobs, recordedJob(i, "new", userRec(requesterID)))
	}
	for i, err := range s.SyncBatch(context.Background(), jobs) {
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
	}
	if f.Count(syncmaptest.OpCreateMany) != 1 {
		t.Fatalf("%d create_many, want the batch in one", f.Count(syncmaptest.OpCreateMany))
	}
	ids := f.TicketIDs()
	if len(ids) != 3 {
		t.Fatalf("%d tickets, want 3", len(ids))
	}
	seen := map[string]bool{}
	for _, id := range ids {
		cs := f.Comments(id)
		if len(cs) != 1 || len(cs[0].Attachments) != 1 || cs[0].Public || !strings.Contains(cs[0].Body, cs[0].Attachments[0].ContentURL) {
			t.Fatalf("ticket %d comments = %+v, want an internal first comment with its recording attached and linked", id, cs)
		}
		seen[cs[0].Attachments[0].FileName] = true
	}
	if len(seen) != 3 {
		t.Fatalf("recordings attached: %v, want each ticket its own", seen)
	}
}

// Over HTTP, with the real client and the Zendesk emulator: the call
// record's voice comment plays the uploaded file, which Zendesk serves
// without credentials, and a redelivery writes nothing more.
func TestRecordingUploadOverHTTP(t *testing.T) {
	t.Parallel()
	e := newEmu(t)
	tk := e.srv.AddTicket(zendesktest.Ticket{RequesterID: e.requester, Status: "open", Subject: "Billing"}).ID
	o := &opener{}
	s, n := newSink(t, e.zd, syncmap.WithTalkApp(777), syncmap.WithRecordingUpload(o))
	job := e.job("c1", "popped", tk)
	job.Conversation.Links.RecordingURL = recURL
	if err := syncUntilDone(t, s, job); err != nil {
		t.Fatal(err)
	}
	job.Tries++
	if err := s.Sync(context.Background(), job); err != nil { // redelivery
		t.Fatal(err)
	}
	var files []syncmap.Attachment
	for _, c := range e.comments(t, tk) {
		files = append(files, c.Attachments...)
	}
	calls := e.srv.Calls()
	if len(files) != 1 || len(calls) != 1 || calls[0].Fields["recording_url"] != files[0].ContentURL || files[0].FileName != "recording-rec-1.mp3" {
		t.Fatalf("attachments %+v, calls %+v: want one file, the call record's recording", files, calls)
	}
	resp, err := http.Get(files[0].ContentURL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(b, audio(recURL)) || resp.Header.Get("Content-Type") != "audio/mpeg" {
		t.Fatalf("GET the recording: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if o.count() != 1 || len(n.of(syncmap.NoticeRecording)) != 0 {
		t.Fatalf("opened %d times, notices %+v", o.count(), n.ns)
	}
}

// The ticket is closed (merged) after the call record was written and
// while Genesys was transcoding: no note can attach the recording, so the
// sync ends without it, reported, instead of failing for good.
func TestRecordingUploadTicketClosedMeanwhile(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	o := &opener{fail: []error{cti.Later(5*time.Second, "transcoding")}}
	s, n := newSink(t, f, syncmap.WithTalkApp(777), syncmap.WithRecordingUpload(o))
	job := recordingJob("popped", ticketRec(tk))
	var d *cti.Deferred
	if err := s.Sync(context.Background(), job); !errors.As(err, &d) || !f.Get(tk).HasTag(syncmap.MarkerTag(job.Key)) {
		t.Fatalf("first Sync = %v, want the call written, the ticket marked, and deferred", err)
	}
	f.SetStatus(tk, "closed")
	job.Tries, job.Deferrals = 2, 1
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatalf("retry on the closed ticket = %v, want done without the recording", err)
	}
	if ns := n.of(syncmap.NoticeRecording); len(ns) != 1 || f.Count(syncmaptest.OpUpload) != 0 || len(f.Calls()) != 1 {
		t.Fatalf("notices %+v, %d uploads, %d calls; want one notice, no upload, one call", ns, f.Count(syncmaptest.OpUpload), len(f.Calls()))
	}
}

// The note alone fails for good (the ticket was deleted between the read
// and the write): the sync is done, without the recording.
func TestRecordingUploadNoteRefused(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	o := &opener{fail: []error{cti.Later(5*time.Second, "transcoding")}}
	s, n := newSink(t, f, syncmap.WithTalkApp(777), syncmap.WithRecordingUpload(o))
	job := recordingJob("popped", ticketRec(tk))
	_ = s.Sync(context.Background(), job)
	f.Hook(func(op syncmaptest.Op) error {
		if op == syncmaptest.OpUpdateTicket {
			return &cti.UpstreamError{Service: "zendesk", Op: "update ticket", Status: 422, Err: errors.New("RecordInvalid")}
		}
		return nil
	}, nil)
	job.Tries, job.Deferrals = 2, 1
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatalf("retry with the note refused = %v, want done without the recording", err)
	}
	if len(n.of(syncmap.NoticeRecording)) != 1 || f.Calls()[0].RecordingURL != "" {
		t.Fatalf("notices %+v, call %+v; want one notice and no recording", n.ns, f.Calls()[0])
	}
}

// A transferred call: both legs popped the same ticket. The conversation
// has one recording, attached once; both call records play it.
func TestRecordingUploadOncePerTicket(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	o := &opener{}
	s, _ := newSink(t, f, syncmap.WithTalkApp(777), syncmap.WithRecordingUpload(o))
	j1 := recordingJob("popped", ticketRec(tk))
	j2 := *j1
	j2.Key, j2.LegID = cti.JobKey("c1", "l2"), "l2"
	for _, j := range []*cti.SyncJob{j1, &j2} {
		if err := s.Sync(context.Background(), j); err != nil {
			t.Fatal(err)
		}
	}
	addr := uploadedOnce(t, f, tk)
	calls := f.Calls()
	if len(calls) != 2 || calls[0].RecordingURL != addr || calls[1].RecordingURL != addr || o.count() != 1 {
		t.Fatalf("calls %+v, opened %d: want two records playing the one file", calls, o.count())
	}
}

// A rule without comments gets no note: its call record keeps Genesys's
// address, and the recording is not fetched.
func TestRecordingUploadCommentNone(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	rules := testRules()
	rules.Rules = append(rules.Rules, cti.Rule{Name: "silent", Popup: cti.PopupNone,
		Sync: cti.SyncSpec{Ticket: cti.SyncPopped, Comment: cti.CommentNone, Tags: []string{"genesys"}}})
	o := &opener{}
	s, _ := newSinkWith(t, f, rules, syncmap.WithTalkApp(777), syncmap.WithRecordingUpload(o))
	if err := s.Sync(context.Background(), recordingJob("silent", ticketRec(tk))); err != nil {
		t.Fatal(err)
	}
	if calls := f.Calls(); len(calls) != 1 || calls[0].RecordingURL != recURL || o.count() != 0 || len(f.Comments(tk)) != 0 {
		t.Fatalf("calls %+v, opened %d, comments %+v; want Genesys's address, no fetch, no comment", calls, o.count(), f.Comments(tk))
	}
}

// A public sync comment never carries the recording (the requester would
// be mailed it): it keeps Genesys's address.
func TestRecordingUploadNeverOnAPublicComment(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID, Status: "open"})
	o := &opener{}
	s, _ := newSink(t, f, syncmap.WithRecordingUpload(o))
	if err := s.Sync(context.Background(), recordingJob("latest", userRec(requesterID))); err != nil { // rule latest: public
		t.Fatal(err)
	}
	cs := f.Comments(tk)
	if len(cs) != 1 || !cs[0].Public || len(cs[0].Attachments) != 0 || !strings.Contains(cs[0].Body, recURL) || o.count() != 0 {
		t.Fatalf("comments %+v, opened %d; want one public comment with Genesys's address and no attachment", cs, o.count())
	}
}

// overlap is an opener whose opens wait (up to 5 s) until want of them
// are in flight together, and that records the most it saw at once.
type overlap struct {
	opener
	want    int
	mu      sync.Mutex
	now, hi int
	release chan struct{}
	once    sync.Once
}

func (o *overlap) OpenRecording(ctx context.Context, u string) (*cti.RecordingFile, error) {
	o.mu.Lock()
	o.now++
	o.hi = max(o.hi, o.now)
	if o.now >= o.want {
		o.once.Do(func() { close(o.release) })
	}
	o.mu.Unlock()
	select {
	case <-o.release:
	case <-time.After(5 * time.Second): // one at a time: max() says so
	}
	o.mu.Lock()
	o.now--
	o.mu.Unlock()
	return o.opener.OpenRecording(ctx, u)
}

func (o *overlap) max() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hi
}

// deferred runs one delivery of job as the engine does: a deferral's
// checkpoint is kept with the job for the next one.
func deferred(t *testing.T, s *syncmap.Sink, job *cti.SyncJob) *cti.Deferred {
	t.Helper()
	err := s.Sync(context.Background(), job)
	var d *cti.Deferred
	if !errors.As(err, &d) {
		t.Fatalf("Sync = %v, want deferred", err)
	}
	job.Tries++
	job.Deferrals++
	if d.Checkpoint != "" {
		job.Checkpoint = d.Checkpoint
	}
	return d
}

// The ticket is deleted after the call record was written, while the
// sync waits for the recording: the sync is not written again on a new
// ticket (the checkpoint says it was written).
func TestRecordingUploadTicketDeletedAfterCall(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	o := &opener{fail: []error{cti.Later(5*time.Second, "transcoding")}}
	s, n := newSink(t, f, syncmap.WithTalkApp(777), syncmap.WithRecordingUpload(o))
	job := recordingJob("popped", ticketRec(tk))
	if d := deferred(t, s, job); d.Checkpoint == "" {
		t.Fatal("deferred without a checkpoint after writing the call record")
	}
	f.DeleteTicket(tk)
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatalf("retry = %v", err)
	}
	if calls := f.Calls(); len(calls) != 1 || len(f.TicketIDs()) != 1 {
		t.Fatalf("calls %+v, tickets %v: want the one call record and no new ticket", calls, f.TicketIDs())
	}
	if len(n.of(syncmap.NoticeLateData)) != 1 {
		t.Fatalf("notices %+v, want one saying the late data is left out", n.ns)
	}
}

// With the checkpoint, a delivery that comes back for late data reads its
// call record directly instead of looking through the ticket's comments.
func TestSinkTalkLateDataReadsTheCheckpointedCall(t *testing.T) {
	t.Parallel()
	f := syncmaptest.NewFake()
	tk := f.AddTicket(syncmap.Ticket{RequesterID: requesterID})
	s, _ := newSink(t, f, syncmap.WithTalkApp(777),
		syncmap.WithLateData(syncmap.LatePolicy{Points: []string{"CallSummary"}, Poll: time.Second}))
	job := voiceJob("c1", "popped", ticketRec(tk))
	job.Tries = 1
	deferred(t, s, job)
	job.Conversation.Content.Summary = "Refund requested."
	if err := s.Sync(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	calls := f.Calls()
	if len(calls) != 1 || calls[0].Summary != "Refund requested." {
		t.Fatalf("calls %+v, want the one record with the summary", calls)
	}
	if f.Count(syncmaptest.OpTicketComments) != 0 || f.Count(syncmaptest.OpCall) != 1 {
		t.Fatalf("%d comment reads, %d call reads; want 0 and 1", f.Count(syncmaptest.OpTicketComments), f.Count(syncmaptest.OpCall))
	}
}
