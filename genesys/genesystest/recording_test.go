package genesystest_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	gt "github.com/cxplay/ctikit/genesys/genesystest"
)

// TestRecording: the recording resource (202 while transcoding, then 200
// with a pre-signed MP3 URI) and the download, refused with an
// Authorization header or a bad signature, as S3 refuses it.
func TestRecording(t *testing.T) {
	a := newAPI(t, gt.WithRecordingTranscodes(1))
	c := a.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550100"})
	rid := c.RecordingID()
	path := "/api/v2/conversations/" + c.ID + "/recordings/" + rid
	if st, _ := a.do("GET", path+"?formatId=MP3", nil); st != http.StatusAccepted {
		t.Errorf("first request: %d, want 202", st)
	}
	if st, _ := a.do("GET", path+"?formatId=WEBM", nil); st != http.StatusBadRequest {
		t.Errorf("WEBM: %d, want 400", st)
	}
	if st, _ := a.do("GET", "/api/v2/conversations/"+c.ID+"/recordings/nope?formatId=MP3", nil); st != http.StatusNotFound {
		t.Errorf("unknown recording: %d, want 404", st)
	}
	st, v := a.do("GET", path+"?formatId=MP3&download=true&fileName=call", nil)
	rec, _ := v.(map[string]any)
	if st != http.StatusOK || rec["id"] != rid || rec["conversationId"] != c.ID || rec["fileState"] != "AVAILABLE" || rec["media"] != "audio" {
		t.Fatalf("recording: %d %v", st, v)
	}
	uri, _ := rec["mediaUris"].(map[string]any)["S"].(map[string]any)["mediaUri"].(string)
	if !strings.HasPrefix(uri, a.srv.URL+"/media/recordings/"+rid+".mp3?") || !strings.Contains(uri, "X-Amz-Signature=") {
		t.Fatalf("mediaUri = %q", uri)
	}
	get := func(u, auth string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", u, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	if resp, _ := get(uri, "Bearer "+a.tok); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("with Authorization: %d, want 400", resp.StatusCode)
	}
	if resp, _ := get(strings.Replace(uri, "X-Amz-Signature=", "X-Amz-Signature=0", 1), ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bad signature: %d, want 403", resp.StatusCode)
	}
	if resp, _ := get(uri[:strings.IndexByte(uri, '?')], ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned: %d, want 403", resp.StatusCode)
	}
	if a.srv.Stats().RecordingDownloads != 0 {
		t.Error("refused downloads counted")
	}
	resp, b := get(uri, "")
	want := gt.RecordingBytes(rid)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(b, want) || resp.Header.Get("Content-Type") != "audio/mpeg" ||
		resp.ContentLength != int64(len(want)) || !strings.Contains(resp.Header.Get("Content-Disposition"), `filename="call.mp3"`) {
		t.Errorf("download: %d, %d bytes, %v", resp.StatusCode, len(b), resp.Header)
	}
	if !bytes.HasPrefix(want, []byte("ID3")) || bytes.Equal(want, gt.RecordingBytes("other")) || !bytes.Equal(want, gt.RecordingBytes(rid)) {
		t.Error("RecordingBytes: not an ID3-tagged file, or not deterministic per id")
	}
	if n := a.srv.Stats().RecordingDownloads; n != 1 {
		t.Errorf("downloads = %d, want 1", n)
	}
}
