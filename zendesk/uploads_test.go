package zendesk_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/internal/testlog"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

var _ syncmap.Uploader = (*zendesk.Client)(nil)

// mp3 is a small file standing for a recording.
var mp3 = append([]byte("ID3\x04\x00\x00\x00\x00\x00\x00"), bytes.Repeat([]byte{0xff, 0xfb, 0x90, 0x64}, 600)...)

// oneShot is a body that can be read once, as a recording streamed from
// Genesys is: not an io.Seeker, no length of its own.
type oneShot struct{ r io.Reader }

func (o *oneShot) Read(p []byte) (int, error) { return o.r.Read(p) }

func fetch(t *testing.T, url string) (int, http.Header, []byte) {
	t.Helper()
	resp, err := http.Get(url) // no credentials: content_url needs none
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func upstreamErr(t *testing.T, err error) *cti.UpstreamError {
	t.Helper()
	var ue *cti.UpstreamError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %v (%T), want a *cti.UpstreamError", err, err)
	}
	if ue.Service != "zendesk" {
		t.Fatalf("Service = %q", ue.Service)
	}
	return ue
}

// An upload streams the file with its type, the token attaches it to a
// ticket update's comment, the comment lists it, and its content_url
// serves the bytes without credentials.
func TestUploadAttachFetch(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	ctx := context.Background()
	before := time.Now()
	up, err := c.Upload(ctx, "recording.mp3", "audio/mpeg", int64(len(mp3)), &oneShot{bytes.NewReader(mp3)})
	if err != nil {
		t.Fatal(err)
	}
	a := up.Attachment
	if up.Token == "" || a.ID == 0 || a.FileName != "recording.mp3" || a.ContentType != "audio/mpeg" ||
		a.Size != int64(len(mp3)) || !strings.HasPrefix(a.ContentURL, srv.URL+"/attachments/token/") {
		t.Fatalf("Upload = %+v", up)
	}
	if d := up.ExpiresAt.Sub(before); d < 59*time.Minute || d > 61*time.Minute {
		t.Fatalf("ExpiresAt = %v, want about an hour from now", up.ExpiresAt)
	}
	reqs := srv.RequestsTo("POST", "/uploads")
	if len(reqs) != 1 || reqs[0].Query.Get("filename") != "recording.mp3" || !bytes.Equal(reqs[0].Body, mp3) ||
		reqs[0].Principal != zendesktest.DefaultEmail || reqs[0].Status != http.StatusCreated {
		t.Fatalf("upload requests = %+v", reqs)
	}
	stored := srv.Uploads()
	if len(stored) != 1 || stored[0].Token != up.Token || stored[0].Attached || stored[0].Attachments[0].ContentType != "audio/mpeg" {
		t.Fatalf("emulator uploads = %+v", stored)
	}

	// Unknown size: read into memory, sent with its length; the type is
	// guessed from the name.
	up2, err := c.Upload(ctx, "transcript.txt", "", -1, &oneShot{strings.NewReader("Agent: hello")})
	if err != nil {
		t.Fatal(err)
	}
	if up2.Attachment.Size != 12 || !strings.HasPrefix(up2.Attachment.ContentType, "text/plain") {
		t.Fatalf("Upload(size -1) = %+v", up2)
	}

	_, err = c.UpdateTicket(ctx, zendesktest.DemoTicketJaneOpen, zendesk.TicketUpdate{
		Comment: &zendesk.CommentInput{Body: "Call recording", Uploads: []string{up.Token, up2.Token}}})
	if err != nil {
		t.Fatal(err)
	}
	var sent struct {
		Ticket struct {
			Comment struct {
				Uploads []string `json:"uploads"`
			} `json:"comment"`
		} `json:"ticket"`
	}
	if err := srv.RequestsTo("PUT", "/tickets/")[0].JSON(&sent); err != nil || len(sent.Ticket.Comment.Uploads) != 2 {
		t.Fatalf("sent comment uploads = %v (%v)", sent.Ticket.Comment.Uploads, err)
	}
	cs, err := c.TicketComments(ctx, zendesktest.DemoTicketJaneOpen)
	if err != nil {
		t.Fatal(err)
	}
	got := cs[0].Attachments
	if cs[0].Body != "Call recording" || len(got) != 2 || got[0] != up.Attachment || got[1] != up2.Attachment {
		t.Fatalf("newest comment = %+v, want the two attachments %+v, %+v", cs[0], up.Attachment, up2.Attachment)
	}
	if len(cs[1].Attachments) != 0 {
		t.Fatalf("older comment has attachments: %+v", cs[1])
	}
	status, h, body := fetch(t, a.ContentURL)
	if status != 200 || !bytes.Equal(body, mp3) || h.Get("Content-Type") != "audio/mpeg" || h.Get("Content-Length") != "2410" {
		t.Fatalf("GET content_url = %d %v, %d bytes", status, h, len(body))
	}
	if u := srv.Uploads(); len(u) != 2 || !u[0].Attached || !u[1].Attached {
		t.Fatalf("emulator uploads after attaching = %+v", u)
	}
	// A token attaches once.
	_, err = c.UpdateTicket(ctx, zendesktest.DemoTicketJaneOpen, zendesk.TicketUpdate{
		Comment: &zendesk.CommentInput{Body: "again", Uploads: []string{up.Token}}})
	if ue := upstreamErr(t, err); ue.Status != 422 || ue.Retryable() {
		t.Fatalf("re-attaching: %v, want a 422 not retryable", err)
	}
}

// An upload not attached within its token's life is deleted: its
// content_url 404s and its token no longer attaches; an attached one stays.
func TestUploadUnattachedExpires(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	ctx := context.Background()
	kept, err := c.Upload(ctx, "kept.mp3", "audio/mpeg", int64(len(mp3)), bytes.NewReader(mp3))
	if err != nil {
		t.Fatal(err)
	}
	lost, err := c.Upload(ctx, "lost.mp3", "audio/mpeg", int64(len(mp3)), bytes.NewReader(mp3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateTicket(ctx, zendesktest.DemoTicketJaneOpen, zendesk.TicketUpdate{
		Comment: &zendesk.CommentInput{Body: "kept", Uploads: []string{kept.Token}}}); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := fetch(t, lost.Attachment.ContentURL); st != 200 {
		t.Fatalf("before expiry: GET content_url = %d", st)
	}
	srv.ExpireUploads() // the hour is up
	if st, _, _ := fetch(t, lost.Attachment.ContentURL); st != 404 {
		t.Fatalf("after expiry: GET content_url = %d, want 404", st)
	}
	if st, _, b := fetch(t, kept.Attachment.ContentURL); st != 200 || !bytes.Equal(b, mp3) {
		t.Fatalf("attached upload after expiry: GET content_url = %d", st)
	}
	_, err = c.UpdateTicket(ctx, zendesktest.DemoTicketJaneOpen, zendesk.TicketUpdate{
		Comment: &zendesk.CommentInput{Body: "late", Uploads: []string{lost.Token}}})
	if ue := upstreamErr(t, err); ue.Status != 422 || ue.Retryable() {
		t.Fatalf("attaching an expired upload: %v, want a 422 not retryable", err)
	}
	if u := srv.Uploads(); len(u) != 1 || u[0].Token != kept.Token {
		t.Fatalf("emulator uploads = %+v, want only the attached one", u)
	}
}

// The emulator's token life is configurable and reported in expires_at
// (whole seconds, rounded down, as Zendesk writes it).
func TestUploadTTL(t *testing.T) {
	t.Parallel()
	const ttl = 100 * time.Millisecond
	_, c := env(t, []zendesktest.Option{zendesktest.WithUploadTTL(ttl)})
	start := time.Now()
	up, err := c.Upload(context.Background(), "lost.mp3", "audio/mpeg", int64(len(mp3)), bytes.NewReader(mp3))
	if err != nil {
		t.Fatal(err)
	}
	if up.ExpiresAt.After(time.Now().Add(ttl)) || up.ExpiresAt.Before(start.Add(-time.Second)) {
		t.Fatalf("ExpiresAt = %v, want within %v of %v", up.ExpiresAt, ttl, start)
	}
	time.Sleep(time.Until(start.Add(ttl + 20*time.Millisecond)))
	if st, _, _ := fetch(t, up.Attachment.ContentURL); st != 404 {
		t.Fatalf("after the TTL: GET content_url = %d, want 404", st)
	}
}

// Too large: Zendesk's 413 is not retried and not retryable; a file known
// (or found while buffering) to be over 50 MB is not sent at all.
func TestUploadTooLarge(t *testing.T) {
	t.Parallel()
	srv, c := env(t, []zendesktest.Option{zendesktest.WithUploadLimit(1 << 10)})
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), 2<<10)
	for _, size := range []int64{int64(len(big)), -1} {
		srv.ResetRequests()
		_, err := c.Upload(ctx, "big.wav", "audio/wav", size, bytes.NewReader(big))
		if ue := upstreamErr(t, err); ue.Status != 413 || ue.Retryable() || cti.IsRetryable(err) {
			t.Fatalf("size %d: %v, want a 413 not retryable", size, err)
		}
		if n := len(srv.RequestsTo("POST", "/uploads")); n != 1 {
			t.Fatalf("size %d: %d upload requests, want 1", size, n)
		}
	}

	srv.ResetRequests()
	_, err := c.Upload(ctx, "huge.wav", "audio/wav", zendesk.MaxUploadSize+1, &oneShot{failReader{t}})
	if !errors.Is(err, cti.ErrInvalid) || cti.IsRetryable(err) {
		t.Fatalf("known size over 50 MB: %v, want cti.ErrInvalid", err)
	}
	if ue := upstreamErr(t, err); ue.Status != 413 {
		t.Fatalf("known size over 50 MB: status %d", ue.Status)
	}
	// Buffering an unknown size stops one byte past the limit (lowered
	// here from 50 MB to 4 KiB: reading 50 MB takes seconds with -race).
	zendesk.SetMaxUpload(c, 4<<10)
	r := &countingReader{r: zeros{}}
	_, err = c.Upload(ctx, "huge.wav", "audio/wav", -1, r)
	if !errors.Is(err, cti.ErrInvalid) || cti.IsRetryable(err) {
		t.Fatalf("unknown size over the limit: %v, want cti.ErrInvalid", err)
	}
	if r.n != 4<<10+1 {
		t.Fatalf("read %d bytes of an endless body, want the limit + 1", r.n)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d requests sent for files over 50 MB, want none", n)
	}
}

type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("the body of a file over the limit was read")
	return 0, io.EOF
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// A 429 or 503 on an upload whose body is a one-shot stream is not
// replayed (the body is gone): the caller gets a retryable error and
// redoes the upload. A buffered upload (size -1) is retried by the
// transport.
func TestUploadRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		size   int64
		calls  int  // upload requests the emulator sees
		ok     bool // the upload succeeds
	}{
		{"one-shot 503", 503, int64(len(mp3)), 1, false},
		{"one-shot 429", 429, int64(len(mp3)), 1, false},
		{"buffered 503", 503, -1, 2, true},
		{"buffered 500", 500, -1, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, c := env(t, nil, fast())
			srv.InjectFault(zendesktest.Fault{Method: "POST", Route: "/uploads", Status: tc.status, RetryAfter: time.Second, Times: 1})
			up, err := c.Upload(context.Background(), "recording.mp3", "audio/mpeg", tc.size, &oneShot{bytes.NewReader(mp3)})
			reqs := srv.RequestsTo("POST", "/uploads")
			if len(reqs) != tc.calls {
				t.Fatalf("%d upload requests (statuses %v), want %d", len(reqs), statuses(reqs), tc.calls)
			}
			if tc.ok {
				if err != nil || !bytes.Equal(reqs[1].Body, mp3) {
					t.Fatalf("Upload = %v, want success with the same bytes on the retry", err)
				}
				if st, _, b := fetch(t, up.Attachment.ContentURL); st != 200 || !bytes.Equal(b, mp3) {
					t.Fatalf("content after a retried upload: %d, %d bytes", st, len(b))
				}
				return
			}
			ue := upstreamErr(t, err)
			if ue.Status != tc.status || !ue.Retryable() || !cti.IsRetryable(err) {
				t.Fatalf("Upload = %v, want a retryable %d", err, tc.status)
			}
			if tc.status == 429 && ue.RetryAfter != time.Second {
				t.Fatalf("RetryAfter = %v, want 1s", ue.RetryAfter)
			}
			// The caller redoes it with a fresh body; after a 429 the
			// transport holds it for Retry-After.
			start := time.Now()
			if _, err := c.Upload(context.Background(), "recording.mp3", "audio/mpeg", tc.size, &oneShot{bytes.NewReader(mp3)}); err != nil {
				t.Fatalf("redo: %v", err)
			}
			if el := time.Since(start); tc.status == 429 && el < 900*time.Millisecond {
				t.Fatalf("redo sent %v after a 429 with Retry-After 1s", el)
			}
		})
	}
}

// The bulk paths carry comment.uploads too: update_many and create_many
// (and a single create) attach the files to the comment they write.
func TestUploadAttachBulk(t *testing.T) {
	t.Parallel()
	_, c := env(t, nil, zendesk.WithJobPoll(func(int) time.Duration { return 5 * time.Millisecond }))
	ctx := context.Background()
	upload := func(name string) *zendesk.Upload {
		t.Helper()
		up, err := c.Upload(ctx, name, "audio/mpeg", int64(len(mp3)), bytes.NewReader(mp3))
		if err != nil {
			t.Fatal(err)
		}
		return up
	}
	hasAttachment := func(ticketID int64, a zendesk.Attachment) {
		t.Helper()
		cs, err := c.TicketComments(ctx, ticketID)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) == 0 || len(cs[0].Attachments) != 1 || cs[0].Attachments[0] != a {
			t.Fatalf("ticket %d newest comment = %+v, want attachment %+v", ticketID, cs, a)
		}
	}

	u1, u2 := upload("a.mp3"), upload("b.mp3")
	res, err := c.UpdateMany(ctx, []zendesk.TicketUpdate{
		{ID: zendesktest.DemoTicketJaneOpen, Comment: &zendesk.CommentInput{Body: "rec a", Uploads: []string{u1.Token}}},
		{ID: zendesktest.DemoTicketLiamOpen, Comment: &zendesk.CommentInput{Body: "rec b", Uploads: []string{u2.Token}}},
		{ID: zendesktest.DemoTicketJohnNew, Comment: &zendesk.CommentInput{Body: "rec ?", Uploads: []string{"nosuchtoken"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Success || !res[1].Success || res[2].Success {
		t.Fatalf("UpdateMany = %+v, want [ok, ok, failed]", res)
	}
	var ue *cti.UpstreamError
	if !errors.As(res[2].Err, &ue) || ue.Status != 422 || syncmap.RejectedFields(res[2].Err) != nil {
		t.Fatalf("unknown token result: %v, want a 422 naming no field", res[2].Err)
	}
	hasAttachment(zendesktest.DemoTicketJaneOpen, u1.Attachment)
	hasAttachment(zendesktest.DemoTicketLiamOpen, u2.Attachment)

	u3, u4 := upload("c.mp3"), upload("d.mp3")
	cr, err := c.CreateMany(ctx, []zendesk.NewTicket{
		{Subject: "c", RequesterID: zendesktest.DemoJane, Comment: &zendesk.CommentInput{Body: "rec c", Uploads: []string{u3.Token}}},
		{Subject: "d", RequesterID: zendesktest.DemoJane, Comment: &zendesk.CommentInput{Body: "rec d", Uploads: []string{u4.Token}}},
	})
	if err != nil || cr[0].Err != nil || cr[1].Err != nil {
		t.Fatalf("CreateMany = %+v, %v", cr, err)
	}
	hasAttachment(cr[0].ID, u3.Attachment)
	hasAttachment(cr[1].ID, u4.Attachment)

	u5 := upload("e.mp3")
	tk, err := c.CreateTicket(ctx, zendesk.NewTicket{Subject: "e", RequesterID: zendesktest.DemoJane,
		Comment: &zendesk.CommentInput{Body: "rec e", Uploads: []string{u5.Token}}})
	if err != nil {
		t.Fatal(err)
	}
	hasAttachment(tk.ID, u5.Attachment)
}

func TestUploadInvalidArguments(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	for _, name := range []string{"", "  ", "calls/recording.mp3"} {
		_, err := c.Upload(context.Background(), name, "audio/mpeg", 3, strings.NewReader("abc"))
		if !errors.Is(err, cti.ErrInvalid) {
			t.Errorf("Upload(%q) = %v, want cti.ErrInvalid", name, err)
		}
	}
	if n := len(srv.Requests()); n != 0 {
		t.Fatalf("%d requests sent", n)
	}
}

// Upload failures (refused credentials, too large, a dead server) never
// carry the credentials, in errors or logs.
func TestUploadSecretsNeverInErrors(t *testing.T) {
	t.Parallel()
	var logs testlog.Buffer
	const secret = "s3cr3t-UPL0AD-token"
	srv := zendesktest.NewServer(zendesktest.WithAPIToken("ops@example.com", secret), zendesktest.WithUploadLimit(8))
	t.Cleanup(srv.Close)
	good := zendesk.Config{URL: srv.URL, Email: "ops@example.com", APIToken: secret}
	bad := good
	bad.APIToken = "wr0ng-UPL0AD-token"
	dead := good
	dead.URL = "http://127.0.0.1:1"
	ctx := context.Background()
	var all []string
	for _, cf := range []zendesk.Config{good, bad, dead} {
		c, err := zendesk.New(cf, zendesk.WithLogger(logs.Logger()), fast(), zendesk.WithRetries(1))
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int64{int64(len(mp3)), -1} {
			// The file name carries the secret too: it is in the URL.
			_, err := c.Upload(ctx, "rec-"+secret+".mp3", "audio/mpeg", size, bytes.NewReader(mp3))
			if err == nil {
				t.Fatalf("%v: upload succeeded", cf)
			}
			all = append(all, err.Error())
		}
	}
	all = append(all, logs.String())
	text := strings.Join(all, "\n")
	if !strings.Contains(text, "413") || !strings.Contains(text, "401") {
		t.Fatalf("want a 413 and a 401 among:\n%s", text)
	}
	for _, s := range []string{secret, "wr0ng-UPL0AD-token",
		base64.StdEncoding.EncodeToString([]byte("ops@example.com/token:" + secret))} {
		if strings.Contains(text, s) {
			t.Fatalf("secret %q leaked in:\n%s", s, text)
		}
	}
}

// slowReader hands out its bytes in chunks, pausing before each, as a
// recording streamed from a slow source does.
type slowReader struct {
	left  int
	chunk int
	pause time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.pause)
	n := min(len(p), s.chunk, s.left)
	clear(p[:n])
	s.left -= n
	return n, nil
}

// Sending a file takes time: an upload's attempt may last longer than
// the attempt timeout of the other calls, in proportion to its size.
func TestUploadAttemptTimeoutGrowsWithSize(t *testing.T) {
	t.Parallel()
	_, c := env(t, nil, zendesk.WithAttemptTimeout(100*time.Millisecond))
	const size = 256 << 10 // one more second
	body := &slowReader{left: size, chunk: 32 << 10, pause: 40 * time.Millisecond}
	up, err := c.Upload(context.Background(), "slow.wav", "audio/wav", size, body)
	if err != nil {
		t.Fatalf("a %d-byte upload sent over ~320ms with a 100ms attempt timeout: %v", size, err)
	}
	if up.Attachment.Size != size {
		t.Fatalf("size = %d", up.Attachment.Size)
	}
}
