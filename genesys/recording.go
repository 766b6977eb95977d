package genesys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cxplay/ctikit/cti"
)

var _ cti.RecordingOpener = (*Client)(nil)

// How long OpenRecording asks to be called again (a *cti.Deferred) when
// the recording is not ready.
const (
	// transcodeWaitMin and transcodeWaitMax clamp Genesys' estimate of a
	// transcode (estimatedTranscodeTimeMs); transcodeWait is used without
	// one.
	transcodeWaitMin = 2 * time.Second
	transcodeWaitMax = 2 * time.Minute
	transcodeWait    = 10 * time.Second
	// restoreWait is the wait for a recording being restored from the
	// archive (RESTORING) or archived (ARCHIVED: it comes back only when
	// someone restores it in Genesys Cloud).
	restoreWait = 10 * time.Minute
)

// OpenRecording implements cti.RecordingOpener: it opens, as an MP3, the
// recording at recordingURL, the address the Enricher sets in
// Links.RecordingURL (<API base>/api/v2/conversations/{conversationId}/
// recordings/{recordingId}).
//
// It asks Genesys for the recording transcoded to MP3 (GET that address
// with formatId=MP3 and download=true), then downloads the file from the
// pre-signed address Genesys answers with (mediaUris), without the OAuth
// token, which that address's signature replaces. The body is streamed:
// the caller reads it and must close it; the client's timeout bounds each
// wait for data, not the whole transfer, and Close aborts it.
//
// Outcomes:
//   - recordingURL not on this client's API base (scheme and host), or not
//     a recording's path: an error wrapping cti.ErrInvalid, and no request
//     (the OAuth token goes nowhere else);
//   - 202 (Genesys is transcoding it): a *cti.Deferred after Genesys'
//     estimate (estimatedTranscodeTimeMs, between 2 s and 2 min; 10 s
//     without one);
//   - 404, or fileState DELETED or ERROR, or no playable media: an error
//     wrapping cti.ErrNotFound;
//   - fileState ARCHIVED or RESTORING: a *cti.Deferred of 10 minutes (an
//     archived recording comes back only when restored in Genesys Cloud);
//     any other state without media: a *cti.Deferred of 10 s;
//   - other failures (of either request): a *cti.UpstreamError.
//
// Errors and logs never contain the pre-signed address's query (its
// signature) nor the token. Safe for concurrent use.
func (c *Client) OpenRecording(ctx context.Context, recordingURL string) (*cti.RecordingFile, error) {
	convID, recID, err := c.recordingIDs(recordingURL)
	if err != nil {
		return nil, err
	}
	op := "get recording " + recID
	path := "/api/v2/conversations/" + url.PathEscape(convID) + "/recordings/" + url.PathEscape(recID)
	status, raw, err := c.rawStatus(ctx, op, http.MethodGet, path,
		map[string]string{"formatId": "MP3", "download": "true", "fileName": strings.TrimSuffix(cti.RecordingFileName(recID), ".mp3")}, nil)
	if isStatus(err, http.StatusNotFound) {
		return nil, fmt.Errorf("%w: %w", cti.ErrNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	var rec struct {
		FileState string `json:"fileState"`
		MediaURIs map[string]struct {
			MediaURI string `json:"mediaUri"`
		} `json:"mediaUris"`
		EstimatedTranscodeTimeMs *int64 `json:"estimatedTranscodeTimeMs"`
	}
	jerr := json.Unmarshal(raw, &rec)
	if status == http.StatusAccepted {
		d := transcodeWait
		if jerr == nil && rec.EstimatedTranscodeTimeMs != nil {
			d = min(max(time.Duration(*rec.EstimatedTranscodeTimeMs)*time.Millisecond, transcodeWaitMin), transcodeWaitMax)
		}
		return nil, cti.Later(d, "genesys recording "+recID+" is being transcoded")
	}
	if jerr != nil {
		return nil, &cti.UpstreamError{Service: "genesys", Op: op, Status: status, Err: fmt.Errorf("decode recording: %w", jerr)}
	}
	keys := make([]string, 0, len(rec.MediaURIs))
	for k, m := range rec.MediaURIs {
		if m.MediaURI != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		switch st := strings.ToUpper(rec.FileState); st {
		case "", "AVAILABLE":
			return nil, fmt.Errorf("%w: genesys recording %s has no playable media", cti.ErrNotFound, recID)
		case "DELETED", "ERROR":
			return nil, fmt.Errorf("%w: genesys recording %s is in state %s", cti.ErrNotFound, recID, st)
		case "ARCHIVED", "RESTORING":
			return nil, cti.Later(restoreWait, "genesys recording "+recID+" is "+st+" (restore it in Genesys Cloud to play it)")
		default:
			return nil, cti.Later(transcodeWait, "genesys recording "+recID+" is in state "+st)
		}
	}
	slices.Sort(keys)
	return c.openMedia(ctx, recID, rec.MediaURIs[keys[0]].MediaURI)
}

// recordingIDs checks that recordingURL is a recording on this client's
// API base and returns its conversation and recording ids.
func (c *Client) recordingIDs(recordingURL string) (convID, recID string, err error) {
	invalid := func(why string) error {
		return fmt.Errorf("%w: genesys recording URL: %s", cti.ErrInvalid, why)
	}
	base, err := url.Parse(c.cfg.APIBase())
	if err != nil {
		return "", "", invalid("the API base does not parse")
	}
	u, err := url.Parse(recordingURL)
	if err != nil {
		return "", "", invalid("does not parse")
	}
	if u.Opaque != "" || u.User != nil || !strings.EqualFold(u.Scheme, base.Scheme) || !sameHost(u, base) {
		return "", "", invalid("not on the API base " + base.Scheme + "://" + base.Host)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", "", invalid("has a query or fragment")
	}
	rest, ok := strings.CutPrefix(u.EscapedPath(), strings.TrimRight(base.EscapedPath(), "/")+"/api/v2/conversations/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 3 || parts[1] != "recordings" {
		return "", "", invalid("not /api/v2/conversations/{conversationId}/recordings/{recordingId}")
	}
	ids := []string{parts[0], parts[2]}
	for i, p := range ids {
		id, err := url.PathUnescape(p)
		if err != nil || id == "" || id == "." || id == ".." || strings.ContainsFunc(id, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return "", "", invalid("bad conversation or recording id")
		}
		ids[i] = id
	}
	return ids[0], ids[1], nil
}

// sameHost compares hosts case-insensitively, with the scheme's default
// port made explicit.
func sameHost(a, b *url.URL) bool {
	hostPort := func(u *url.URL) string {
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
		}
		return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
	}
	return a.Host != "" && hostPort(a) == hostPort(b)
}

// openMedia downloads a recording's pre-signed media address, without
// the OAuth token.
func (c *Client) openMedia(ctx context.Context, recID, mediaURI string) (*cti.RecordingFile, error) {
	const op = "download recording"
	u, err := url.Parse(mediaURI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, &cti.UpstreamError{Service: "genesys", Op: op, Err: errors.New("the recording's media URI is not an http(s) URL")}
	}
	where := u.Scheme + "://" + u.Host + u.EscapedPath() // never the query: it is the signature
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bctx, done := c.bind(ctx)
	resp, err := c.t.open(bctx, u, http.Header{}, false)
	if err != nil {
		done()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, upstream(op, nil, err)
	}
	if resp.StatusCode/100 != 2 {
		defer done()
		defer resp.Body.Close()
		msg := "GET " + where + ": " + http.StatusText(resp.StatusCode)
		if code := s3Code(resp.Body); code != "" {
			msg += " (" + code + ")"
		}
		return nil, &cti.UpstreamError{Service: "genesys", Op: op, Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header), Err: errors.New(msg)}
	}
	c.log.Debug("genesys: downloading recording", "recording", recID, "from", where, "size", resp.ContentLength)
	return &cti.RecordingFile{
		Body:        &doneBody{ReadCloser: resp.Body, done: done},
		Name:        cti.RecordingFileName(recID),
		ContentType: audioType(resp.Header.Get("Content-Type")),
		Size:        resp.ContentLength,
	}, nil
}

// doneBody runs done once the body is closed.
type doneBody struct {
	io.ReadCloser
	done func()
}

func (b *doneBody) Close() error {
	err := b.ReadCloser.Close()
	b.done()
	return err
}

// audioType is the recording's MIME type: the server's, unless it gave
// none or a generic one (S3's default for objects stored without one), as
// MP3 was asked for.
func audioType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt == "application/octet-stream" || mt == "binary/octet-stream" {
		return "audio/mpeg"
	}
	return ct
}

// s3Code reads the error code of an S3-style XML error body
// (<Error><Code>AccessDenied</Code>...), "" when there is none. Only the
// code: S3's messages can echo the request.
func s3Code(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4<<10))
	_, rest, ok := strings.Cut(string(b), "<Code>")
	code, _, ok2 := strings.Cut(rest, "</Code>")
	if !ok || !ok2 || len(code) > 64 || strings.ContainsFunc(code, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) {
		return ""
	}
	return code
}
