package zendesk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// MaxUploadSize is the largest file Zendesk accepts (50 MB); Upload
// refuses a bigger one without sending it.
const MaxUploadSize = 50 << 20

// UploadTTL is how long an upload token lives: an upload not attached to
// a comment by then is deleted by Zendesk.
const UploadTTL = 60 * time.Minute

// uploadRate is the slowest upload speed the attempt timeout allows for:
// an upload's attempt timeout is AttemptTimeout plus one second per
// uploadRate bytes (a 50 MB file gets 200 s more).
const uploadRate = 256 << 10

// Upload uploads a file to attach to a ticket comment (POST
// /api/v2/uploads?filename=name with the raw bytes as the body and
// Content-Type contentType; "" guesses from the name's extension, else
// application/octet-stream). It implements syncmap.Uploader: put the
// returned Token in CommentInput.Uploads of a ticket create or update
// within UploadTTL, after which Zendesk deletes an unattached upload.
//
// size is the body's length; the body is then streamed once and the
// request is never repeated after it started sending it (a 429 or 5xx
// comes back as a retryable *cti.UpstreamError: redo the upload with a
// fresh body). size -1 means unknown: the body is read into memory first
// (at most MaxUploadSize), and the request is then retried on 429, 5xx
// and timeouts like the other calls (a repeat leaves at most an unattached
// copy, which expires). A file over MaxUploadSize is refused without
// being sent, with an error wrapping cti.ErrInvalid that is also a
// *cti.UpstreamError with Status 413; Zendesk's own 413 (too large) and
// 422 (a type the account does not allow) are not retryable. An empty
// name or one with a '/' wraps cti.ErrInvalid. Each attempt may take
// the transport's AttemptTimeout plus one second per 256 KiB of file.
//
// body is not closed. Safe for concurrent use.
func (c *Client) Upload(ctx context.Context, name, contentType string, size int64, body io.Reader) (*Upload, error) {
	const op = "upload"
	if strings.TrimSpace(name) == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("zendesk %s: %w: file name %q: want a non-empty name without '/'", op, cti.ErrInvalid, name)
	}
	if body == nil {
		return nil, fmt.Errorf("zendesk %s: %w: nil body", op, cti.ErrInvalid)
	}
	if contentType == "" {
		contentType = mime.TypeByExtension(path.Ext(name))
		if contentType == "" {
			contentType = "application/octet-stream"
		}
	}
	limit := c.maxUpload
	if limit <= 0 {
		limit = MaxUploadSize
	}
	tooLarge := func(n string) error {
		return &cti.UpstreamError{Service: "zendesk", Op: op, Status: http.StatusRequestEntityTooLarge,
			Err: fmt.Errorf("not sent: %w: %s is %s bytes, Zendesk takes at most %d", cti.ErrInvalid, name, n, limit)}
	}
	if size > limit {
		return nil, tooLarge(itoa(size))
	}
	u := c.base + "/uploads.json?" + url.Values{"filename": {name}}.Encode()
	start := time.Now()
	var req *http.Request
	var err error
	if size < 0 {
		b, rerr := io.ReadAll(io.LimitReader(body, limit+1))
		if rerr != nil {
			return nil, fmt.Errorf("zendesk %s: reading %s: %w", op, name, rerr)
		}
		if int64(len(b)) > limit {
			return nil, tooLarge("more than " + itoa(limit))
		}
		size = int64(len(b))
		// A bytes.Reader body gets GetBody: the transport may retry.
		req, err = http.NewRequestWithContext(c.uploadContext(ctx, size), http.MethodPost, u, bytes.NewReader(b))
	} else {
		req, err = http.NewRequestWithContext(c.uploadContext(ctx, size), http.MethodPost, u, nil)
		if err == nil && size > 0 {
			// No GetBody: the transport sends it once.
			req.Body, req.ContentLength = io.NopCloser(body), size
		}
	}
	if err != nil {
		return nil, fmt.Errorf("zendesk %s: %w", op, err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.fail(op, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, c.fail(op, err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return nil, c.fail(op, c.statusError(op, resp.StatusCode, resp.Header, rb))
	}
	var out struct {
		Upload struct {
			Token       string       `json:"token"`
			ExpiresAt   *time.Time   `json:"expires_at"`
			Attachment  *Attachment  `json:"attachment"`
			Attachments []Attachment `json:"attachments"`
		} `json:"upload"`
	}
	if err := decode(op, rb, &out); err != nil {
		return nil, err
	}
	up := out.Upload
	res := &Upload{Token: up.Token, ExpiresAt: start.Add(UploadTTL).UTC()}
	if up.ExpiresAt != nil && !up.ExpiresAt.IsZero() {
		res.ExpiresAt = *up.ExpiresAt
	}
	switch {
	case up.Attachment != nil:
		res.Attachment = *up.Attachment
	case len(up.Attachments) > 0:
		res.Attachment = up.Attachments[0]
	}
	if res.Token == "" || res.Attachment.ContentURL == "" {
		return nil, fmt.Errorf("zendesk %s: %w", op, &syntaxError{what: "response", err: errors.New("no upload token or attachment")})
	}
	return res, nil
}

// uploadContext gives an upload of size bytes the time to send them.
func (c *Client) uploadContext(ctx context.Context, size int64) context.Context {
	if c.tr.AttemptTimeout <= 0 || size <= 0 {
		return ctx
	}
	return context.WithValue(ctx, attemptTimeoutKey, c.tr.AttemptTimeout+time.Duration(size)*time.Second/uploadRate)
}
