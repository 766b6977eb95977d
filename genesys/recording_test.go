package genesys_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
)

// spy records the requests a client sends.
type spy struct {
	rt   http.RoundTripper
	mu   sync.Mutex
	reqs []*http.Request
}

func (s *spy) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.reqs = append(s.reqs, r.Clone(context.Background()))
	s.mu.Unlock()
	return s.rt.RoundTrip(r)
}

// sent returns the requests sent so far whose path starts with prefix.
func (s *spy) sent(prefix string) []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*http.Request
	for _, r := range s.reqs {
		if strings.HasPrefix(r.URL.Path, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// recEnv is an emulator and a client on it whose requests are recorded.
func recEnv(t *testing.T, sopts ...gt.Option) (*gt.Server, *genesys.Client, *spy) {
	t.Helper()
	srv := gt.NewServer(sopts...)
	t.Cleanup(srv.Close)
	sp := &spy{rt: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(sp.rt.(*http.Transport).CloseIdleConnections)
	c, err := genesys.NewClient(genesys.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, APIURL: srv.URL},
		genesys.WithHTTPTransport(sp), genesys.WithClientLogger(testLogger()), genesys.WithTimeout(5*time.Second),
		genesys.WithRetryPolicy(genesys.RetryPolicy{Backoff: func(int) time.Duration { return 5 * time.Millisecond }, MaxWait: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c, sp
}

// recordedCall scripts a finished call with a recording.
func recordedCall(srv *gt.Server) *gt.Conversation {
	c := srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550700", Queue: gt.QueueSupport})
	leg := c.Alert(gt.AgentAlice)
	c.Connect(leg)
	c.Disconnect(leg)
	c.Wrapup(leg, gt.CodeResolved, "")
	return c
}

func recordingURL(srv *gt.Server, c *gt.Conversation) string {
	return srv.URL + "/api/v2/conversations/" + c.ID + "/recordings/" + c.RecordingID()
}

func readAll(t *testing.T, f *cti.RecordingFile) []byte {
	t.Helper()
	b, err := io.ReadAll(f.Body)
	if cerr := f.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenRecording: the recording link the Enricher sets opens as the
// emulator's MP3, fetched with the bearer token and MP3 asked for, then
// downloaded from the pre-signed URL without it; the Source opens it too.
func TestOpenRecording(t *testing.T) {
	srv, client, sp := recEnv(t)
	ctx := context.Background()
	c := recordedCall(srv)
	conv, err := client.Conversation(ctx, c.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	en, err := genesys.NewEnricher(client, genesys.WithEnrichParts(genesys.EnrichParts{Recording: true}))
	if err != nil {
		t.Fatal(err)
	}
	if err := en.Enrich(ctx, conv); err != nil {
		t.Fatal(err)
	}
	rid := c.RecordingID()
	if rid == "" || conv.Links.RecordingURL != recordingURL(srv, c) {
		t.Fatalf("recording link = %q, id %q", conv.Links.RecordingURL, rid)
	}

	f, err := client.OpenRecording(ctx, conv.Links.RecordingURL)
	if err != nil {
		t.Fatal(err)
	}
	want := gt.RecordingBytes(rid)
	if got := readAll(t, f); !bytes.Equal(got, want) {
		t.Errorf("read %d bytes, want the emulator's %d", len(got), len(want))
	}
	if f.Size != int64(len(want)) || f.ContentType != "audio/mpeg" || f.Name != "recording-"+rid+".mp3" {
		t.Errorf("file = size %d, type %q, name %q", f.Size, f.ContentType, f.Name)
	}

	api := sp.sent("/api/v2/conversations/" + c.ID + "/recordings/")
	media := sp.sent("/media/recordings/")
	if len(api) != 1 || len(media) != 1 {
		t.Fatalf("sent %d recording and %d media requests, want 1 and 1", len(api), len(media))
	}
	if q := api[0].URL.Query(); q.Get("formatId") != "MP3" || q.Get("download") != "true" || q.Get("fileName") != "recording-"+rid ||
		!strings.HasPrefix(api[0].Header.Get("Authorization"), "Bearer ") {
		t.Errorf("recording request: query %v, Authorization %q", q, api[0].Header.Get("Authorization"))
	}
	if h := media[0].Header.Get("Authorization"); h != "" || media[0].URL.Query().Get("X-Amz-Signature") == "" {
		t.Errorf("media request: Authorization %q, query %q", h, media[0].URL.RawQuery)
	}
	if n := srv.Stats().RecordingDownloads; n != 1 {
		t.Errorf("downloads = %d, want 1", n)
	}

	// The Source hands the call to its client.
	src, err := genesys.NewSource(client, genesys.WithQueues(gt.QueueSupport))
	if err != nil {
		t.Fatal(err)
	}
	var o cti.RecordingOpener = src
	f, err = o.OpenRecording(ctx, conv.Links.RecordingURL)
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); !bytes.Equal(got, want) {
		t.Error("the Source opened other bytes")
	}
}

// TestOpenRecordingTranscoding: while Genesys transcodes (202), the call
// is deferred by its estimate; then the file opens.
func TestOpenRecordingTranscoding(t *testing.T) {
	srv, client, sp := recEnv(t, gt.WithRecordingTranscodes(2))
	c := recordedCall(srv)
	ctx := context.Background()
	for i := range 2 {
		_, err := client.OpenRecording(ctx, recordingURL(srv, c))
		var d *cti.Deferred
		if !errors.As(err, &d) || d.After < 2*time.Second || d.After > 2*time.Minute || !cti.IsRetryable(err) {
			t.Fatalf("call %d: err = %v, want a *cti.Deferred of 2 s to 2 min", i+1, err)
		}
		if !strings.Contains(d.Reason, "transcoded") {
			t.Errorf("reason = %q", d.Reason)
		}
	}
	if n := len(sp.sent("/media/")); n != 0 {
		t.Fatalf("%d media requests while transcoding", n)
	}
	f, err := client.OpenRecording(ctx, recordingURL(srv, c))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, f); !bytes.Equal(got, gt.RecordingBytes(c.RecordingID())) {
		t.Error("wrong bytes after transcoding")
	}
}

// TestOpenRecordingStates: what a missing recording, or one not
// available, gives.
func TestOpenRecordingStates(t *testing.T) {
	srv, client, sp := recEnv(t)
	ctx := context.Background()
	noRec := srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550701", NoRecording: true})
	for _, tc := range []struct {
		name  string
		state string // "" leaves the recording AVAILABLE
		url   func(c *gt.Conversation) string
		found bool // a *cti.Deferred rather than cti.ErrNotFound
	}{
		{name: "unknown recording", url: func(c *gt.Conversation) string {
			return srv.URL + "/api/v2/conversations/" + c.ID + "/recordings/00000000-0000-4000-8000-000000000000"
		}},
		{name: "unknown conversation", url: func(c *gt.Conversation) string {
			return srv.URL + "/api/v2/conversations/00000000-0000-4000-8000-000000000000/recordings/" + c.RecordingID()
		}},
		{name: "call without recording", url: func(*gt.Conversation) string {
			return srv.URL + "/api/v2/conversations/" + noRec.ID + "/recordings/r1"
		}},
		{name: "deleted", state: "DELETED"},
		{name: "error", state: "ERROR"},
		{name: "archived", state: "ARCHIVED", found: true},
		{name: "restoring", state: "RESTORING", found: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := recordedCall(srv)
			if tc.state != "" {
				c.SetRecordingState(tc.state)
			}
			u := recordingURL(srv, c)
			if tc.url != nil {
				u = tc.url(c)
			}
			f, err := client.OpenRecording(ctx, u)
			if f != nil {
				f.Body.Close()
			}
			var d *cti.Deferred
			switch {
			case tc.found && (!errors.As(err, &d) || d.After <= 0):
				t.Errorf("err = %v, want a *cti.Deferred", err)
			case !tc.found && !errors.Is(err, cti.ErrNotFound):
				t.Errorf("err = %v, want cti.ErrNotFound", err)
			case tc.state != "" && !strings.Contains(err.Error(), tc.state):
				t.Errorf("err = %v, want the state named", err)
			}
		})
	}
	if n := len(sp.sent("/media/")); n != 0 {
		t.Errorf("%d media requests", n)
	}
}

// TestOpenRecordingRejectsOtherURLs: a URL that is not a recording on the
// client's API base is invalid, and nothing is sent (the bearer token
// goes to the API base only).
func TestOpenRecordingRejectsOtherURLs(t *testing.T) {
	srv, client, sp := recEnv(t)
	u, _ := url.Parse(srv.URL)
	port := u.Port()
	const path = "/api/v2/conversations/c1/recordings/r1"
	for _, raw := range []string{
		"http://example.com" + path,
		"https://127.0.0.1:" + port + path,
		"http://127.0.0.1:1" + path,
		"http://localhost:" + port + path,
		"http://user:pw@127.0.0.1:" + port + path,
		"http://127.0.0.1:" + port + "@example.com" + path,
		"//127.0.0.1:" + port + path,
		path,
		srv.URL + "/api/v2/conversations/c1/recordingmetadata",
		srv.URL + "/api/v2/conversations/c1/recordings/",
		srv.URL + "/api/v2/conversations//recordings/r1",
		srv.URL + "/api/v2/conversations/c1/recordings/r1/annotations",
		srv.URL + "/api/v2/conversations/c1/recordings/..",
		srv.URL + "/api/v2/users/c1/recordings/r1",
		srv.URL + "/x/api/v2/conversations/c1/recordings/r1",
		srv.URL + path + "?formatId=WAV",
		srv.URL + path + "#t=1",
		"mailto:someone@example.com",
		"http://[::1",
		"",
	} {
		f, err := client.OpenRecording(context.Background(), raw)
		if f != nil || !errors.Is(err, cti.ErrInvalid) {
			t.Errorf("OpenRecording(%q) = %v, want cti.ErrInvalid", raw, err)
		}
	}
	if n := len(sp.sent("")); n != 0 {
		t.Errorf("%d requests sent", n)
	}
	if st := srv.Stats(); st.TokensIssued != 0 {
		t.Errorf("a token was fetched: %+v", st)
	}
}

// TestOpenRecordingKeepsTheSignatureSecret: a failed download (500, after
// the client's retries) is a retryable upstream error naming the media
// host and path, never the pre-signed URL's query nor a token.
func TestOpenRecordingKeepsTheSignatureSecret(t *testing.T) {
	srv, client, sp := recEnv(t)
	c := recordedCall(srv)
	srv.FailREST(gt.Fault{Method: http.MethodGet, PathPrefix: "/media/recordings/", Status: http.StatusInternalServerError, Times: -1})
	f, err := client.OpenRecording(context.Background(), recordingURL(srv, c))
	if f != nil {
		t.Fatal("opened a failed download")
	}
	var ue *cti.UpstreamError
	if !errors.As(err, &ue) || ue.Status != http.StatusInternalServerError || ue.Op != "download recording" || !ue.Retryable() {
		t.Fatalf("err = %#v, want a retryable 500 from download recording", err)
	}
	media := sp.sent("/media/recordings/")
	if len(media) < 2 {
		t.Errorf("%d media requests: want retries", len(media))
	}
	msg := err.Error()
	if !strings.Contains(msg, "/media/recordings/"+c.RecordingID()+".mp3") {
		t.Errorf("error %q does not name the media path", msg)
	}
	secrets := append(srv.IssuedTokens(), "X-Amz", "?", media[0].URL.Query().Get("X-Amz-Signature"))
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			t.Errorf("error %q contains %q", msg, s)
		}
	}
}

// TestOpenRecordingMedia: against a hand-rolled Genesys whose media host
// misbehaves: a refused signature names S3's error code only; an
// octet-stream body of unknown length is audio/mpeg of size -1; a body
// that stalls fails after the client's timeout with a retryable error.
func TestOpenRecordingMedia(t *testing.T) {
	const sig = "c0ffee-secret-signature"
	var media string // the media handler's behaviour
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/oauth/token":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"tok-1","token_type":"bearer","expires_in":86400}`)
		case "/api/v2/conversations/c1/recordings/r1":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"r1","conversationId":"c1","fileState":"AVAILABLE","mediaUris":{"S":{"mediaUri":"http://`+
				r.Host+`/bucket/r1.mp3?X-Amz-Signature=`+sig+`"},"0":{"mediaUri":""}}}`)
		case "/bucket/r1.mp3":
			mu.Lock()
			m := media
			mu.Unlock()
			switch m {
			case "forbidden":
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SignatureDoesNotMatch</Code><Message>X-Amz-Signature=`+sig+`</Message></Error>`)
			case "chunked":
				w.Header().Set("Content-Type", "binary/octet-stream")
				w.(http.Flusher).Flush()
				io.WriteString(w, "ID3 audio")
			case "stall":
				w.Header().Set("Content-Type", "audio/mpeg")
				w.Header().Set("Content-Length", "1000")
				io.WriteString(w, "ID3")
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	client, err := genesys.NewClient(genesys.Config{ClientID: "id", ClientSecret: "secret", APIURL: srv.URL, LoginURL: srv.URL},
		genesys.WithTimeout(300*time.Millisecond),
		genesys.WithRetryPolicy(genesys.RetryPolicy{Backoff: func(int) time.Duration { return 5 * time.Millisecond }, MaxWait: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	open := func(m string) (*cti.RecordingFile, error) {
		mu.Lock()
		media = m
		mu.Unlock()
		return client.OpenRecording(ctx, srv.URL+"/api/v2/conversations/c1/recordings/r1")
	}

	_, err = open("forbidden")
	var ue *cti.UpstreamError
	if !errors.As(err, &ue) || ue.Status != http.StatusForbidden || ue.Retryable() {
		t.Errorf("forbidden: err = %v, want a permanent 403", err)
	} else if msg := err.Error(); strings.Contains(msg, sig) || !strings.Contains(msg, "SignatureDoesNotMatch") || !strings.Contains(msg, "/bucket/r1.mp3") {
		t.Errorf("forbidden: error %q: want the path and S3's code, never the signature", msg)
	}

	f, err := open("chunked")
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, f); string(b) != "ID3 audio" || f.Size != -1 || f.ContentType != "audio/mpeg" || f.Name != "recording-r1.mp3" {
		t.Errorf("chunked: %q, size %d, type %q, name %q", b, f.Size, f.ContentType, f.Name)
	}

	f, err = open("stall")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = io.ReadAll(f.Body)
	f.Body.Close()
	if err == nil || !cti.IsRetryable(err) || time.Since(start) > 3*time.Second {
		t.Errorf("stalled body: err = %v after %v, want a retryable timeout after 300ms", err, time.Since(start))
	}

	// A canceled context sends nothing more.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := client.OpenRecording(cctx, srv.URL+"/api/v2/conversations/c1/recordings/r1"); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err = %v", err)
	}
}
