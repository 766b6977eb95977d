package genesys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/mypurecloud/platform-client-sdk-go/v157/platformclientv2"
)

// Genesys Cloud's documented per-client limits.
const (
	// DefaultAPIRate is the API calls a minute an OAuth client may make
	// (3,000 per org, app and user); ctikit paces itself under it.
	DefaultAPIRate = 3000
	// DefaultTokenRate is the client-credentials token requests a minute
	// Genesys allows (300).
	DefaultTokenRate = 300
)

// maxBody bounds a response body read into memory (transcripts and email
// bodies can be large; nothing Genesys returns to ctikit is near this).
const maxBody = 32 << 20

// RetryPolicy governs how an API call is retried inside the HTTP client:
// 429 (after its Retry-After), 502/503/504 and transport failures (and 500
// for GET/HEAD). Zero fields take the defaults of DefaultRetryPolicy.
type RetryPolicy struct {
	// MaxRetries is how many times one call is repeated; 0 means the
	// default, a negative value disables retries.
	MaxRetries int
	// Backoff gives the wait before retry n (1, 2, ...) when the server
	// gave no Retry-After.
	Backoff func(n int) time.Duration
	// MaxWait is the longest Retry-After slept inside a call. A longer one
	// ends the call with the 429 (as a *cti.UpstreamError carrying
	// RetryAfter), so the caller can reschedule instead of blocking.
	MaxWait time.Duration
}

// DefaultRetryPolicy retries 3 times with DefaultBackoff and sleeps at most
// 30 s for a Retry-After.
var DefaultRetryPolicy = RetryPolicy{MaxRetries: 3, Backoff: DefaultBackoff, MaxWait: 30 * time.Second}

// DefaultBackoff is 250 ms, 500 ms, 1 s, ... capped at 8 s, with ±20%
// jitter.
func DefaultBackoff(n int) time.Duration {
	d := 250 * time.Millisecond << min(max(n-1, 0), 5)
	return jitter(d, 0.2)
}

func jitter(d time.Duration, f float64) time.Duration {
	return time.Duration(float64(d) * (1 - f + 2*f*rand.Float64()))
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxRetries == 0 {
		p.MaxRetries = DefaultRetryPolicy.MaxRetries
	}
	if p.MaxRetries < 0 {
		p.MaxRetries = 0
	}
	if p.Backoff == nil {
		p.Backoff = DefaultRetryPolicy.Backoff
	}
	if p.MaxWait <= 0 {
		p.MaxWait = DefaultRetryPolicy.MaxWait
	}
	return p
}

// transport sends every request of a Client: the SDK's (through
// boundClient) and the OAuth token requests. It adds the bearer token,
// paces, retries and honours Retry-After. Safe for concurrent use.
type transport struct {
	hc      *http.Client
	tokens  *tokenSource
	api     *pacer
	retry   RetryPolicy
	timeout time.Duration
	log     *slog.Logger
	agent   string
}

// boundClient is the platformclientv2.AbstractHttpClient installed on the
// per-call copy of the SDK configuration: it carries the caller's context
// into the request, which the SDK itself cannot. Its Set* methods are no-ops
// (the SDK calls them on every request; acting on them is a data race and
// would bring back go-retryablehttp's behaviour).
type boundClient struct {
	t   *transport
	ctx context.Context
}

var _ platformclientv2.AbstractHttpClient = boundClient{}

func (b boundClient) Do(o *platformclientv2.HTTPRequestOptions) (*http.Response, error) {
	return b.t.do(b.ctx, o)
}
func (boundClient) SetRetryMax(int)                                                  {}
func (boundClient) SetRetryWaitMax(time.Duration)                                    {}
func (boundClient) SetRetryWaitMin(time.Duration)                                    {}
func (boundClient) SetRequestLogHook(func(retryablehttp.Logger, *http.Request, int)) {}
func (boundClient) SetResponseLogHook(func(retryablehttp.Logger, *http.Response))    {}
func (boundClient) SetCheckRetry(func(context.Context, *http.Response, error) (bool, error)) {
}
func (boundClient) SetTransport(*http.Transport)               {}
func (boundClient) SetHttpsAgent(*platformclientv2.ProxyAgent) {}

// requestBody encodes the SDK's request body the way the SDK would.
func requestBody(o *platformclientv2.HTTPRequestOptions) ([]byte, error) {
	if f := o.GetFormParams(); len(f) > 0 {
		return []byte(f.Encode()), nil
	}
	switch b := o.GetBody().(type) {
	case nil:
		return nil, nil
	case *string:
		return []byte(*b), nil
	default:
		return json.Marshal(b)
	}
}

func (t *transport) do(ctx context.Context, o *platformclientv2.HTTPRequestOptions) (*http.Response, error) {
	u := o.GetUrl()
	if u == nil {
		return nil, errors.New("genesys: request without URL")
	}
	body, err := requestBody(o)
	if err != nil {
		return nil, fmt.Errorf("genesys: encode request body: %w", err)
	}
	hdr := http.Header{}
	for k, v := range o.GetHeaders() {
		if len(v) > 0 && !strings.EqualFold(k, "Authorization") {
			hdr.Set(k, v[0])
		}
	}
	auth := !strings.HasSuffix(u.Path, "/oauth/token")
	if !auth {
		// A token request made through the SDK (AuthorizeClientCredentials):
		// keep its Basic credentials.
		if v := o.GetHeaders()["Authorization"]; len(v) > 0 {
			hdr.Set("Authorization", v[0])
		}
	}
	return t.send(ctx, o.GetMethod(), u, hdr, body, auth)
}

// send performs one API call with pacing, auth and retries. The returned
// response (any status) has its body fully read into memory.
func (t *transport) send(ctx context.Context, method string, u *url.URL, hdr http.Header, body []byte, auth bool) (*http.Response, error) {
	return t.exchange(ctx, method, u, hdr, body, auth, false)
}

// open is send for a GET whose body is streamed to the caller instead (a
// recording): the attempt timeout bounds the wait for the response and
// then each read, not the whole transfer. The caller closes the body of
// the returned response (any status).
func (t *transport) open(ctx context.Context, u *url.URL, hdr http.Header, auth bool) (*http.Response, error) {
	return t.exchange(ctx, http.MethodGet, u, hdr, nil, auth, true)
}

func (t *transport) exchange(ctx context.Context, method string, u *url.URL, hdr http.Header, body []byte, auth, stream bool) (*http.Response, error) {
	op := method + " " + u.Path
	refreshed := false
	for attempt := 0; ; attempt++ {
		if err := t.api.wait(ctx); err != nil {
			return nil, err
		}
		var tok string
		if auth {
			var err error
			if tok, _, err = t.tokens.token(ctx); err != nil {
				return nil, err
			}
		}
		start := time.Now()
		var resp *http.Response
		var err error
		if stream {
			resp, err = t.stream(ctx, method, u, hdr, tok)
		} else {
			resp, err = t.once(ctx, method, u, hdr, body, tok)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			t.log.LogAttrs(ctx, slog.LevelDebug, "genesys: request failed", slog.String("op", op), slog.Int("attempt", attempt+1), slog.String("error", err.Error()))
			if attempt < t.retry.MaxRetries {
				if err := sleep(ctx, t.retry.Backoff(attempt+1)); err != nil {
					return nil, err
				}
				continue
			}
			return nil, &cti.UpstreamError{Service: "genesys", Op: op, Temporary: true, Err: err}
		}
		t.log.LogAttrs(ctx, slog.LevelDebug, "genesys: request", slog.String("op", op), slog.Int("status", resp.StatusCode),
			slog.Int("attempt", attempt+1), slog.Duration("took", time.Since(start)))
		switch st := resp.StatusCode; {
		case st == http.StatusUnauthorized && auth && !refreshed:
			// The token expired or was revoked early: get a new one once.
			t.tokens.invalidate(tok)
			refreshed = true
			attempt--
			resp.Body.Close()
			continue
		case st == http.StatusTooManyRequests:
			ra := retryAfter(resp.Header)
			if ra > 0 {
				t.api.pause(time.Now().Add(min(ra, t.retry.MaxWait)))
			}
			if attempt < t.retry.MaxRetries && ra <= t.retry.MaxWait {
				resp.Body.Close()
				if err := sleep(ctx, max(ra, t.retry.Backoff(attempt+1))); err != nil {
					return nil, err
				}
				continue
			}
		case st == http.StatusBadGateway || st == http.StatusServiceUnavailable || st == http.StatusGatewayTimeout ||
			(st == http.StatusInternalServerError && (method == http.MethodGet || method == http.MethodHead)):
			if attempt < t.retry.MaxRetries {
				d := max(retryAfter(resp.Header), t.retry.Backoff(attempt+1))
				if d <= t.retry.MaxWait {
					resp.Body.Close()
					if err := sleep(ctx, d); err != nil {
						return nil, err
					}
					continue
				}
			}
		}
		return resp, nil
	}
}

// once sends one request with the attempt timeout and reads the body.
func (t *transport) once(ctx context.Context, method string, u *url.URL, hdr http.Header, body []byte, tok string) (*http.Response, error) {
	actx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	req, err := t.request(actx, method, u, hdr, body, tok)
	if err != nil {
		return nil, err
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		return nil, redactURLError(err)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, nil
}

// request builds one attempt's request.
func (t *transport) request(ctx context.Context, method string, u *url.URL, hdr http.Header, body []byte, tok string) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, redactURLError(err)
	}
	req.Header = hdr.Clone()
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if t.agent != "" {
		req.Header.Set("User-Agent", t.agent)
	}
	return req, nil
}

// stream sends one request and hands its body over unread (see open): a
// watchdog cancels the attempt when the response, or the next bytes of
// its body, take longer than the attempt timeout. Closing the body
// releases the attempt.
func (t *transport) stream(ctx context.Context, method string, u *url.URL, hdr http.Header, tok string) (*http.Response, error) {
	actx, cancel := context.WithCancel(ctx)
	b := &streamBody{timeout: t.timeout, cancel: cancel}
	b.timer = time.AfterFunc(t.timeout, b.expire)
	req, err := t.request(actx, method, u, hdr, nil, tok)
	if err != nil {
		b.release()
		return nil, err
	}
	resp, err := t.hc.Do(req)
	if err != nil {
		b.release()
		if b.expired.Load() && ctx.Err() == nil {
			return nil, stallError{t.timeout}
		}
		return nil, redactURLError(err)
	}
	b.timer.Stop()
	b.rc = resp.Body
	resp.Body = b
	return resp, nil
}

// streamBody is a streamed response body with a stall watchdog: each Read
// must make progress within timeout.
type streamBody struct {
	rc      io.ReadCloser
	timeout time.Duration
	timer   *time.Timer
	expired atomic.Bool
	cancel  context.CancelFunc
	once    sync.Once
}

func (b *streamBody) expire() { b.expired.Store(true); b.cancel() }

func (b *streamBody) release() { b.once.Do(func() { b.timer.Stop(); b.cancel() }) }

func (b *streamBody) Read(p []byte) (int, error) {
	if b.expired.Load() {
		return 0, stallError{b.timeout}
	}
	b.timer.Reset(b.timeout)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	if err != nil && err != io.EOF && b.expired.Load() {
		err = stallError{b.timeout}
	}
	return n, err
}

func (b *streamBody) Close() error {
	err := b.rc.Close()
	b.release()
	return err
}

// stallError is a streamed response that stopped making progress: a
// timeout, worth retrying (cti.IsRetryable).
type stallError struct{ d time.Duration }

func (e stallError) Error() string   { return "genesys: no response data for " + e.d.String() }
func (e stallError) Timeout() bool   { return true }
func (e stallError) Temporary() bool { return true }

// redactURLError drops the query string from a *url.Error (ours never carry
// secrets there, but a caller-supplied URL might).
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery, u.User = "", nil
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

// retryAfter parses Retry-After (seconds or an HTTP date).
func retryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 {
		return time.Duration(n * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// upstream converts an SDK call's outcome into a *cti.UpstreamError (nil
// when it succeeded). Errors from our own transport (already typed, or the
// context's) pass through.
func upstream(op string, resp *platformclientv2.APIResponse, err error) error {
	if err == nil && (resp == nil || resp.IsSuccess) {
		return nil
	}
	if resp == nil || resp.StatusCode == 0 {
		// Our transport failed before any response: its error is typed.
		var ue *cti.UpstreamError
		var ae *AuthError
		switch {
		case errors.As(err, &ae), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			return err
		case errors.As(err, &ue):
			return &cti.UpstreamError{Service: "genesys", Op: op, Status: ue.Status, RetryAfter: ue.RetryAfter, Temporary: ue.Temporary, Err: ue.Err}
		}
		return &cti.UpstreamError{Service: "genesys", Op: op, Err: err}
	}
	ue := &cti.UpstreamError{Service: "genesys", Op: op, Status: resp.StatusCode}
	if resp.Response != nil {
		ue.RetryAfter = retryAfter(resp.Response.Header)
	}
	msg := resp.ErrorMessage
	if resp.Error != nil && resp.Error.Code != "" {
		msg = resp.Error.Code + ": " + resp.Error.Message
	}
	if msg == "" && err != nil {
		msg = err.Error()
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	ue.Err = errors.New(msg)
	return ue
}

// isStatus reports whether err is an upstream error with one of the statuses.
func isStatus(err error, statuses ...int) bool {
	var ue *cti.UpstreamError
	if !errors.As(err, &ue) {
		return false
	}
	for _, s := range statuses {
		if ue.Status == s {
			return true
		}
	}
	return false
}
