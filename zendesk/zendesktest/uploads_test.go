package zendesktest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// raw sends body as is with a Content-Type, as Upload Files wants.
func (c *client) raw(method, rawURL, ctype string, body []byte) (int, http.Header, []byte) {
	c.t.Helper()
	req, _ := http.NewRequest(method, rawURL, bytes.NewReader(body))
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

type uploadJSON struct {
	Upload struct {
		Token       string           `json:"token"`
		ExpiresAt   time.Time        `json:"expires_at"`
		Attachment  attachmentJSON   `json:"attachment"`
		Attachments []attachmentJSON `json:"attachments"`
	} `json:"upload"`
}

type attachmentJSON struct {
	URL               string `json:"url"`
	ID                int64  `json:"id"`
	FileName          string `json:"file_name"`
	ContentURL        string `json:"content_url"`
	MappedContentURL  string `json:"mapped_content_url"`
	ContentType       string `json:"content_type"`
	Size              int64  `json:"size"`
	Inline            bool   `json:"inline"`
	Deleted           bool   `json:"deleted"`
	MalwareScanResult string `json:"malware_scan_result"`
	Thumbnails        []any  `json:"thumbnails"`
}

var tokenRE = regexp.MustCompile(`^[a-z0-9]{15}$`)

// Upload Files speaks Zendesk's wire format: raw body, filename in the
// query, 201 with the upload token and its attachments; ?token= adds a
// file to an upload; the files are attached by a comment's uploads and
// listed in the comment; content_url serves them without credentials.
func TestUploads(t *testing.T) {
	t.Parallel()
	srv, c := demo(t)
	base := srv.APIURL() + "/uploads.json?"
	audio := []byte("ID3 not really an mp3")
	st, _, b := c.raw("POST", base+url.Values{"filename": {"call 1.mp3"}}.Encode(), "audio/mpeg", audio)
	if st != 201 {
		t.Fatalf("upload: %d %s", st, b)
	}
	var up uploadJSON
	if err := json.Unmarshal(b, &up); err != nil {
		t.Fatal(err)
	}
	a := up.Upload.Attachment
	if !tokenRE.MatchString(up.Upload.Token) || time.Until(up.Upload.ExpiresAt) < 59*time.Minute ||
		len(up.Upload.Attachments) != 1 || up.Upload.Attachments[0].ID != a.ID {
		t.Fatalf("upload = %s", b)
	}
	if a.FileName != "call 1.mp3" || a.ContentType != "audio/mpeg" || a.Size != int64(len(audio)) || a.Inline || a.Deleted ||
		a.MalwareScanResult != "malware_not_found" || a.Thumbnails == nil ||
		a.URL != srv.APIURL()+"/attachments/"+itoa(a.ID)+".json" || a.MappedContentURL != a.ContentURL ||
		!strings.HasPrefix(a.ContentURL, srv.URL+"/attachments/token/") || !strings.HasSuffix(a.ContentURL, "/?name=call+1.mp3") {
		t.Fatalf("attachment = %+v", a)
	}

	// A second file on the same token; its type from its name.
	st, _, b = c.raw("POST", base+url.Values{"filename": {"notes.txt"}, "token": {up.Upload.Token}}.Encode(), "", []byte("hello"))
	var up2 uploadJSON
	_ = json.Unmarshal(b, &up2)
	if st != 201 || up2.Upload.Token != up.Upload.Token || len(up2.Upload.Attachments) != 2 ||
		up2.Upload.Attachment.FileName != "notes.txt" || !strings.HasPrefix(up2.Upload.Attachment.ContentType, "text/plain") {
		t.Fatalf("second file: %d %s", st, b)
	}

	// The attachment record, with credentials; the content, without.
	if st, _, b := c.raw("GET", a.URL, "", nil); st != 200 || !strings.Contains(string(b), `"file_name":"call 1.mp3"`) {
		t.Fatalf("show attachment: %d %s", st, b)
	}
	anon := *c
	anon.auth = ""
	st, h, b := anon.raw("GET", a.ContentURL, "", nil)
	if st != 200 || !bytes.Equal(b, audio) || h.Get("Content-Type") != "audio/mpeg" || h.Get("Content-Length") != itoa(int64(len(audio))) {
		t.Fatalf("content: %d %v %q", st, h, b)
	}
	if st, _, _ := anon.raw("POST", base+"filename=x.mp3", "audio/mpeg", audio); st != 401 {
		t.Fatalf("upload without credentials: %d, want 401", st)
	}
	if st, _, _ := anon.raw("GET", srv.URL+"/attachments/token/nosuchtoken/?name=x.mp3", "", nil); st != 404 {
		t.Fatalf("unknown content: %d, want 404", st)
	}

	// Attaching: both files land on the comment, which lists them.
	st, _, out := c.do("PUT", "/tickets/401.json", map[string]any{"ticket": map[string]any{
		"comment": map[string]any{"body": "recording", "uploads": []string{up.Upload.Token}}}})
	if st != 200 {
		t.Fatalf("update: %d %v", st, out)
	}
	_, _, out = c.do("GET", "/tickets/401/comments.json?sort_order=desc", nil)
	atts := out["comments"].([]any)[0].(map[string]any)["attachments"].([]any)
	if len(atts) != 2 || atts[0].(map[string]any)["content_url"] != a.ContentURL || atts[1].(map[string]any)["file_name"] != "notes.txt" {
		t.Fatalf("comment attachments = %v", atts)
	}
	tk, _ := srv.Ticket(401)
	if got := tk.Comments[len(tk.Comments)-1].Attachments; len(got) != 2 || !bytes.Equal(got[0].Data, audio) {
		t.Fatalf("stored comment attachments = %+v", got)
	}
	if ups := srv.Uploads(); len(ups) != 1 || !ups[0].Attached || len(ups[0].Attachments) != 2 {
		t.Fatalf("Uploads = %+v", ups)
	}
	// An attached token takes no more files and attaches no more.
	if st, _, _ := c.raw("POST", base+url.Values{"filename": {"late.txt"}, "token": {up.Upload.Token}}.Encode(), "text/plain", []byte("x")); st != 422 {
		t.Fatalf("adding to an attached upload: %d, want 422", st)
	}
	st, _, out = c.do("POST", "/tickets.json", map[string]any{"ticket": map[string]any{
		"comment": map[string]any{"body": "again", "uploads": []string{up.Upload.Token}}}})
	if st != 422 || !strings.Contains(mustJSON(out), "uploads") {
		t.Fatalf("create with an attached token: %d %v, want 422 naming uploads", st, out)
	}
}

func TestUploadErrors(t *testing.T) {
	t.Parallel()
	srv, c := demo(t, zendesktest.WithUploadLimit(16))
	base := srv.APIURL() + "/uploads.json"
	if st, _, b := c.raw("POST", base, "audio/mpeg", []byte("abc")); st != 400 || !strings.Contains(string(b), "filename") {
		t.Fatalf("no filename: %d %s, want 400", st, b)
	}
	if st, _, _ := c.raw("POST", base+"?filename=ok.mp3", "audio/mpeg", make([]byte, 16)); st != 201 {
		t.Fatalf("at the limit: %d, want 201", st)
	}
	if st, _, _ := c.raw("POST", base+"?filename=big.mp3", "audio/mpeg", make([]byte, 17)); st != 413 {
		t.Fatalf("over the limit: %d, want 413", st)
	}
	if st, _, _ := c.raw("POST", base+"?filename=x.mp3&token=nosuchtoken", "audio/mpeg", []byte("x")); st != 422 {
		t.Fatalf("unknown token: %d, want 422", st)
	}
	// update_many: an unknown token fails that ticket only.
	st, _, out := c.do("PUT", "/tickets/update_many.json", map[string]any{"tickets": []map[string]any{
		{"id": 401, "comment": map[string]any{"body": "x", "uploads": []string{"nosuchtoken"}}},
		{"id": 402, "additional_tags": []string{"fine"}},
	}})
	if st != 200 {
		t.Fatalf("update_many: %d %v", st, out)
	}
	id := out["job_status"].(map[string]any)["id"].(string)
	_, _, js := c.do("GET", "/job_statuses/"+id+".json", nil)
	res := js["job_status"].(map[string]any)["results"].([]any)
	if len(res) != 2 || res[0].(map[string]any)["success"] != false || res[1].(map[string]any)["success"] != true {
		t.Fatalf("results = %v", res)
	}
}

// An unattached upload expires after the TTL: gone from Uploads, its
// content_url 404s.
func TestUploadExpiry(t *testing.T) {
	t.Parallel()
	srv, c := demo(t, zendesktest.WithUploadTTL(50*time.Millisecond))
	st, _, b := c.raw("POST", srv.APIURL()+"/uploads.json?filename=a.txt", "text/plain", []byte("a"))
	var up uploadJSON
	if err := json.Unmarshal(b, &up); st != 201 || err != nil {
		t.Fatalf("upload: %d %s", st, b)
	}
	time.Sleep(80 * time.Millisecond)
	if n := len(srv.Uploads()); n != 0 {
		t.Fatalf("%d uploads after the TTL, want 0", n)
	}
	if st, _, _ := c.raw("GET", up.Upload.Attachment.ContentURL, "", nil); st != 404 {
		t.Fatalf("content after the TTL: %d, want 404", st)
	}
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }
