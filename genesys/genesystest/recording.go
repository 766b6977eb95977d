package genesystest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// WithRecordingTranscodes makes the first n requests for each recording
// (GET /api/v2/conversations/{id}/recordings/{recordingId}) answer 202
// Accepted, as Genesys does while it transcodes the recording into the
// format asked for; the next ones answer 200 with the media URI. Default
// 0: 200 at once.
func WithRecordingTranscodes(n int) Option { return func(o *options) { o.transcodes = max(n, 0) } }

// RecordingID returns the id of the conversation's recording ("" when it
// has none: not a call, or Spec.NoRecording).
func (cv *Conversation) RecordingID() string {
	cv.s.mu.Lock()
	defer cv.s.mu.Unlock()
	return cv.c.recordingID
}

// SetRecordingState sets the fileState of the conversation's recording
// (AVAILABLE by default; ARCHIVED, RESTORING, DELETED, ERROR, ...), which
// the recording metadata and the recording report; a recording not
// AVAILABLE has no media URI. It publishes nothing.
func (cv *Conversation) SetRecordingState(state string) {
	cv.s.mu.Lock()
	defer cv.s.mu.Unlock()
	cv.c.recState = strings.ToUpper(state)
}

func (c *conversation) recordingState() string {
	if c.recState == "" {
		return "AVAILABLE"
	}
	return c.recState
}

// RecordingBytes returns the MP3 file the emulator serves for a
// recording: an ID3v2 tag naming the recording, then 8 to 15 MPEG-1
// Layer III frames (128 kbit/s, 44.1 kHz) of pseudo-random payload, all
// derived from the id (3.4 to 6.3 KB).
func RecordingBytes(recordingID string) []byte {
	sum := sha256.Sum256([]byte("emulator-recording/" + recordingID))
	rng := rand.New(rand.NewPCG(binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16])))
	title := "recording " + recordingID
	frame := append([]byte("TIT2"), 0, 0, 0, 0, 0, 0, 0) // id, size, flags, ISO-8859-1
	binary.BigEndian.PutUint32(frame[4:8], uint32(1+len(title)))
	frame = append(frame, title...)
	n := len(frame)
	out := []byte{'I', 'D', '3', 3, 0, 0, byte(n >> 21 & 0x7f), byte(n >> 14 & 0x7f), byte(n >> 7 & 0x7f), byte(n & 0x7f)}
	out = append(out, frame...)
	const frameLen = 144 * 128000 / 44100 // 417 bytes, no padding
	frames := 8 + int(sum[16]%8)
	for range frames {
		out = append(out, 0xff, 0xfb, 0x90, 0x44)
		for range frameLen - 4 {
			out = append(out, byte(rng.Uint32()))
		}
	}
	return out
}

// recordingDurationMs is the play time of RecordingBytes: 1152 samples a
// frame at 44.1 kHz.
func recordingDurationMs(b []byte) int64 { return int64(len(b)/417) * 1152 * 1000 / 44100 }

// recording implements GET /api/v2/conversations/{id}/recordings/{rid}
// (Recording): 404 for an unknown conversation or recording, 400 for a
// formatId other than MP3 (all the emulator transcodes to; Genesys'
// default is WEBM), 202 while transcoding (WithRecordingTranscodes), then
// 200 with a pre-signed media URI (mediaUris) valid for 10 minutes.
func (s *Server) recording(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conv(w, r)
	if c == nil {
		return
	}
	rid := r.PathValue("rid")
	if c.recordingID == "" || c.recordingID != rid {
		apiError(w, http.StatusNotFound, "recording.not.found", "recording not found")
		return
	}
	q := r.URL.Query()
	if f := strings.ToUpper(q.Get("formatId")); f != "MP3" {
		apiError(w, http.StatusBadRequest, "bad.request", "formatId "+strconv.Quote(q.Get("formatId"))+": the emulator transcodes to MP3 only")
		return
	}
	end := c.end
	if end.IsZero() {
		end = now()
	}
	audio := RecordingBytes(rid)
	self := "/api/v2/conversations/" + c.id + "/recordings/" + rid
	out := map[string]any{"id": rid, "conversationId": c.id, "startTime": c.start.Format(time.RFC3339Nano),
		"endTime": end.Format(time.RFC3339Nano), "media": "audio", "fileState": c.recordingState(), "selfUri": self,
		"maxAllowedRestorationsForOrg": 100, "remainingRestorationsAllowedForOrg": 100, "creationTime": c.start}
	for _, p := range c.participants {
		for _, cm := range p.comms {
			if p.purpose == "customer" && cm.kind == MediaVoice {
				out["sessionId"] = cm.id
			}
		}
	}
	const transcodeMs = 3000
	s.recPolls[rid]++
	if s.recPolls[rid] <= s.opts.transcodes {
		out["estimatedTranscodeTimeMs"] = transcodeMs
		writeJSON(w, http.StatusAccepted, out)
		return
	}
	out["annotations"] = []any{}
	if c.recordingState() == "AVAILABLE" {
		out["estimatedTranscodeTimeMs"], out["actualTranscodeTimeMs"] = transcodeMs, transcodeMs-412
		out["outputDurationMs"], out["outputSizeInBytes"] = recordingDurationMs(audio), len(audio)
		out["mediaUris"] = map[string]any{"S": map[string]any{"mediaUri": s.mediaURI(rid, q.Get("download") == "true", q.Get("fileName"))}}
	}
	writeJSON(w, http.StatusOK, out)
}

// mediaURI is a pre-signed URL of the recording's MP3 in the style of S3
// (X-Amz-* query parameters, the signature an HMAC of the server's key).
// With download, the file is served as an attachment named fileName.mp3.
func (s *Server) mediaURI(rid string, download bool, fileName string) string {
	q := url.Values{
		"X-Amz-Algorithm":     {"AWS4-HMAC-SHA256"},
		"X-Amz-Credential":    {"ASIAEMULATOR/" + time.Now().UTC().Format("20060102") + "/us-east-1/s3/aws4_request"},
		"X-Amz-Date":          {time.Now().UTC().Format("20060102T150405Z")},
		"X-Amz-Expires":       {"600"},
		"X-Amz-SignedHeaders": {"host"},
	}
	if download {
		if fileName == "" {
			fileName = rid
		}
		q.Set("response-content-disposition", `attachment; filename="`+strings.ReplaceAll(fileName, `"`, "")+`.mp3"`)
	}
	q.Set("X-Amz-Signature", s.mediaSig(rid, q))
	return s.URL + "/media/recordings/" + rid + ".mp3?" + q.Encode()
}

func (s *Server) mediaSig(rid string, q url.Values) string {
	m := hmac.New(sha256.New, s.mediaKey)
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "response-content-disposition"} {
		fmt.Fprintf(m, "%s=%s\n", k, q.Get(k))
	}
	m.Write([]byte(rid))
	return hex.EncodeToString(m.Sum(nil))
}

// s3Error writes an S3-style XML error.
func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId></Error>`, code, msg, randHex(8))
}

// recordingMedia serves GET /media/recordings/{rid}.mp3, the pre-signed
// media URI, as S3 would: a request carrying an Authorization header as
// well as the URL's signature is refused (400 InvalidArgument), a missing
// or wrong signature or an expired URL too (403); then RecordingBytes, as
// audio/mpeg with its Content-Length.
func (s *Server) recordingMedia(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		s3Error(w, http.StatusBadRequest, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
		return
	}
	rid, ok := strings.CutSuffix(r.PathValue("file"), ".mp3")
	q := r.URL.Query()
	sig := q.Get("X-Amz-Signature")
	if sig == "" {
		s3Error(w, http.StatusForbidden, "AccessDenied", "Query-string authentication requires the X-Amz-Signature parameter")
		return
	}
	if !ok || !hmac.Equal([]byte(sig), []byte(s.mediaSig(rid, q))) {
		s3Error(w, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
		return
	}
	at, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
	exp, _ := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || time.Now().After(at.Add(time.Duration(exp)*time.Second)) {
		s3Error(w, http.StatusForbidden, "AccessDenied", "Request has expired")
		return
	}
	s.mu.Lock()
	found := false
	for _, c := range s.convs {
		if c.recordingID == rid && c.recordingState() == "AVAILABLE" {
			found = true
			break
		}
	}
	if found {
		s.stats.RecordingDownloads++
	}
	s.mu.Unlock()
	if !found {
		s3Error(w, http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
		return
	}
	b := RecordingBytes(rid)
	w.Header().Set("Content-Type", "audio/mpeg")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("ETag", `"`+fmt.Sprintf("%x", sha256.Sum256(b))[:32]+`"`)
	if d := q.Get("response-content-disposition"); d != "" {
		w.Header().Set("Content-Disposition", d)
	}
	_, _ = w.Write(b)
}
