package zendesk

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// RateLimit is what Zendesk's rate-limit headers said on a response:
// X-Rate-Limit / X-Rate-Limit-Remaining (every response) and
// ratelimit-limit / ratelimit-remaining / ratelimit-reset (list endpoints).
type RateLimit struct {
	Limit     int           // requests allowed per window (per minute for the account)
	Remaining int           // requests left in the current window
	Reset     time.Duration // time until the window resets; 0 when not given
	At        time.Time     // when the response was received; zero when nothing was seen
}

// ParseRateLimit reads the rate-limit headers of a response. ok is false
// when the response carries none.
func ParseRateLimit(h http.Header, at time.Time) (rl RateLimit, ok bool) {
	num := func(keys ...string) (int, bool) {
		for _, k := range keys {
			if v := strings.TrimSpace(h.Get(k)); v != "" {
				if n, err := strconv.Atoi(v); err == nil && n >= 0 {
					return n, true
				}
			}
		}
		return 0, false
	}
	limit, okL := num("X-Rate-Limit", "Ratelimit-Limit")
	rem, okR := num("X-Rate-Limit-Remaining", "Ratelimit-Remaining")
	if !okL || !okR {
		return RateLimit{}, false
	}
	rl = RateLimit{Limit: limit, Remaining: rem, At: at}
	if s, ok := num("Ratelimit-Reset"); ok {
		rl.Reset = time.Duration(s) * time.Second
	}
	return rl, true
}

// PaceFunc decides the minimum spacing between the starts of consecutive
// requests from the latest rate-limit state, so that the client slows down
// before Zendesk answers 429. Zero means no spacing.
type PaceFunc func(rl RateLimit, now time.Time) time.Duration

// DefaultPace leaves requests alone while more than a fifth of the window's
// budget remains, then spreads what is left over the rest of the window
// (ratelimit-reset when given, else at the account's steady rate of
// Limit per minute). State older than a minute is ignored.
func DefaultPace(rl RateLimit, now time.Time) time.Duration {
	if rl.Limit <= 0 || rl.At.IsZero() {
		return 0
	}
	age := now.Sub(rl.At)
	if age > time.Minute {
		return 0
	}
	if rl.Remaining > rl.Limit/5 {
		return 0
	}
	if rl.Reset > 0 {
		left := rl.Reset - age
		if left <= 0 {
			return 0 // the window has reset since
		}
		return left / time.Duration(rl.Remaining+1)
	}
	return time.Minute / time.Duration(rl.Limit)
}

// CheckRetryFunc decides whether an attempt is repeated. resp is nil when
// err is not. It is not called once ctx is done.
type CheckRetryFunc func(ctx context.Context, req *http.Request, resp *http.Response, err error) bool

// DefaultCheckRetry repeats a 429 always (Zendesk did nothing), and a 5xx,
// a timeout or a network failure only when the request is safe to repeat:
// GET, HEAD, DELETE, a PUT that is not a ticket update, a Talk Partner
// Edition display, an upload, or a POST carrying an Idempotency-Key (see
// RetrySafe). A POST that creates something, and a ticket update (it may
// add a comment), are never repeated blindly, so a 500 or a lost response
// after the write cannot write twice: the caller decides (the sync looks
// for its marker first). Whatever it says, the Transport does not repeat
// a request whose body cannot be rewound (no GetBody).
func DefaultCheckRetry(ctx context.Context, req *http.Request, resp *http.Response, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	if err != nil {
		return RetrySafe(req)
	}
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		return true
	case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return RetrySafe(req)
	}
	return false
}

var displayPathRE = regexp.MustCompile(`/channels/voice/agents/\d+/(users|tickets)/\d+/display(\.json)?$`)

// ticketWriteRE matches the ticket updates (one ticket or update_many):
// PUTs, but not idempotent, as each may carry a comment.
var ticketWriteRE = regexp.MustCompile(`/tickets/(\d+|update_many)(\.json)?$`)

// uploadPathRE matches Upload Files (POST /api/v2/uploads).
var uploadPathRE = regexp.MustCompile(`/uploads(\.json)?$`)

// RetrySafe reports whether repeating req cannot write twice. An upload
// counts as safe: a repeat leaves at most an unattached copy, which
// Zendesk deletes when its token expires. (Whether the request can be
// repeated at all is another matter: the Transport never repeats a
// request whose body cannot be rewound, i.e. without GetBody.)
func RetrySafe(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		return true
	case http.MethodPut:
		return !ticketWriteRE.MatchString(req.URL.Path)
	case http.MethodPost:
		return req.Header.Get("Idempotency-Key") != "" || displayPathRE.MatchString(req.URL.Path) ||
			uploadPathRE.MatchString(req.URL.Path)
	}
	return false
}

// BackoffFunc says how long to wait before attempt number attempt+1
// (attempt counts from 0) after resp (nil after a transport error).
type BackoffFunc func(attempt int, resp *http.Response) time.Duration

// DefaultBackoff honours Retry-After on 429 and 503 and otherwise backs off
// exponentially from 200ms to 5s with full jitter.
func DefaultBackoff(attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return d
		}
		if resp.StatusCode == http.StatusTooManyRequests {
			return time.Second // a 429 without Retry-After: Zendesk's windows are per minute; try again soon
		}
	}
	base := 200 * time.Millisecond << min(attempt, 5)
	base = min(base, 5*time.Second)
	return base/2 + rand.N(base/2+1)
}

// ParseRetryAfter reads a Retry-After value: seconds (fractions accepted)
// or an HTTP date.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 {
			return 0, false
		}
		return time.Duration(f * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

var createTicketRE = regexp.MustCompile(`/tickets(\.json)?$`)

var ticketUpdateRE = regexp.MustCompile(`/tickets/\d+(\.json)?$`)

// DefaultIsTicketUpdate reports whether req is an Update Ticket call
// (PUT /api/v2/tickets/{id}), which Zendesk limits to 100 a minute per
// account on top of the account limit.
func DefaultIsTicketUpdate(req *http.Request) bool {
	return req.Method == http.MethodPut && ticketUpdateRE.MatchString(req.URL.Path)
}

// NewBaseTransport returns the RoundTripper a Transport sends through when
// Base is nil, for wrapping (metrics, timing) and passing to
// WithHTTPTransport: a clone of http.DefaultTransport that keeps up to 100
// idle connections to the account (http.DefaultTransport keeps 2 per host,
// so under load every other request would open a new connection, paying a
// TCP and TLS handshake and leaving a TIME_WAIT socket behind).
func NewBaseTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 100
	return t
}

// Transport is the http.RoundTripper under every Zendesk call: it adds the
// credentials, paces requests from Zendesk's rate-limit headers, keeps a
// separate budget for ticket updates, honours 429 Retry-After for every
// request in flight, retries what is safe to retry, and bounds each attempt
// with a timeout.
//
// Use NewTransport (or New, which builds one); the exported fields are the
// policies and may be changed before first use, not after. A Transport is
// safe for concurrent use.
type Transport struct {
	// Base sends the requests; nil means NewBaseTransport().
	Base http.RoundTripper
	// MaxRetries is how many times one request is repeated at most.
	MaxRetries int
	// MaxWait is the longest the transport waits before an attempt (a
	// Retry-After, a rate-limit pause, a ticket-update budget wait). A
	// longer wait is not slept: the call fails at once with a retryable
	// *cti.UpstreamError carrying the wait in RetryAfter, so the caller
	// can reschedule the work instead of holding a goroutine.
	MaxWait time.Duration
	// AttemptTimeout bounds one attempt, headers and body; 0 means none.
	AttemptTimeout time.Duration
	// CheckRetry, Backoff and Pace are the retry and pacing policies.
	CheckRetry CheckRetryFunc
	Backoff    BackoffFunc
	Pace       PaceFunc
	// IsTicketUpdate picks the requests that spend the ticket-update budget.
	IsTicketUpdate func(*http.Request) bool
	// TicketUpdates is that budget: at most TicketUpdates.Limit requests
	// per TicketUpdates.Per (default 100 per minute, Zendesk's account
	// limit for Update Ticket; updates made in the agent UI count there
	// too, so a lower value leaves them room).
	TicketUpdates Budget
	// Logger receives retries and waits at debug level, never headers or
	// bodies. Nil means silence.
	Logger *slog.Logger

	auth string // Authorization header value

	once    sync.Once
	mu      sync.Mutex
	rl      RateLimit
	next    time.Time // pacing: earliest start of the next request
	blocked time.Time // a 429 said: nothing before this
	tuBlock time.Time // a 429 on a ticket update said: no ticket update before this
	tu      *bucket
	stats   TransportStats
}

// Budget is a request budget: Limit requests per Per.
type Budget struct {
	Limit int
	Per   time.Duration
}

// TransportStats counts what a Transport did.
type TransportStats struct {
	Requests    int64 // attempts sent
	Retries     int64 // attempts that were repeats
	RateLimited int64 // 429 responses
	Paced       int64 // requests delayed by pacing or a budget
}

// Default transport policies.
const (
	DefaultMaxRetries     = 4
	DefaultMaxWait        = 30 * time.Second
	DefaultAttemptTimeout = 15 * time.Second
)

// DefaultTicketUpdates is Zendesk's Update Ticket limit.
var DefaultTicketUpdates = Budget{Limit: 100, Per: time.Minute}

// NewTransport returns a Transport that authenticates as cfg, with the
// default policies. cfg must be valid.
func NewTransport(cfg Config, base http.RoundTripper) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Transport{
		Base:           base,
		MaxRetries:     DefaultMaxRetries,
		MaxWait:        DefaultMaxWait,
		AttemptTimeout: DefaultAttemptTimeout,
		CheckRetry:     DefaultCheckRetry,
		Backoff:        DefaultBackoff,
		Pace:           DefaultPace,
		IsTicketUpdate: DefaultIsTicketUpdate,
		TicketUpdates:  DefaultTicketUpdates,
		auth:           cfg.authorization(),
	}, nil
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func (t *Transport) init() {
	t.once.Do(func() {
		if t.Base == nil {
			t.Base = NewBaseTransport()
		}
		if t.CheckRetry == nil {
			t.CheckRetry = DefaultCheckRetry
		}
		if t.Backoff == nil {
			t.Backoff = DefaultBackoff
		}
		if t.Pace == nil {
			t.Pace = DefaultPace
		}
		if t.IsTicketUpdate == nil {
			t.IsTicketUpdate = DefaultIsTicketUpdate
		}
		if t.MaxWait <= 0 {
			t.MaxWait = DefaultMaxWait
		}
		b := t.TicketUpdates
		if b.Limit <= 0 || b.Per <= 0 {
			b = DefaultTicketUpdates
		}
		t.tu = newBucket(b.Limit, b.Per)
	})
}

// RateLimit returns the latest rate-limit state Zendesk reported.
func (t *Transport) RateLimit() RateLimit {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rl
}

// Stats returns counters of what the transport did.
func (t *Transport) Stats() TransportStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.init()
	ctx := req.Context()
	ticketUpdate := t.IsTicketUpdate(req)
	for attempt := 0; ; attempt++ {
		if err := t.waitTurn(ctx, req, ticketUpdate); err != nil {
			closeBody(req)
			return nil, err
		}
		r, err := t.attemptRequest(req, attempt)
		if err != nil {
			return nil, err
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if d := t.attemptTimeout(ctx); d > 0 {
			actx, cancel = context.WithTimeout(ctx, d)
		}
		t.mu.Lock()
		t.stats.Requests++
		if attempt > 0 {
			t.stats.Retries++
		}
		t.mu.Unlock()
		resp, err := t.Base.RoundTrip(r.WithContext(actx))
		if err == nil {
			t.observe(resp)
		}
		retry := attempt < t.MaxRetries && t.CheckRetry(ctx, r, resp, err)
		if retry && !rewindable(req) {
			// The body was a one-shot stream, (partly) sent already: hand
			// back the outcome for the caller to redo with a new body. A
			// 429 still pauses the requests that follow.
			retry = false
			if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
				t.block(time.Now().Add(t.Backoff(attempt, resp)), ticketUpdate)
			}
		}
		if !retry {
			if resp != nil {
				resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
			} else {
				cancel()
			}
			return resp, err
		}
		wait := t.Backoff(attempt, resp)
		status := 0
		if resp != nil {
			status = resp.StatusCode
			if resp.StatusCode == http.StatusTooManyRequests {
				t.block(time.Now().Add(wait), ticketUpdate)
			}
		}
		if wait > t.MaxWait {
			// Not worth holding the caller: hand back the response so the
			// error carries Retry-After.
			if resp == nil {
				cancel()
				return nil, err
			}
			resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
			return resp, nil
		}
		if resp != nil {
			_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
			resp.Body.Close()
		}
		cancel()
		if t.Logger != nil {
			attrs := []any{slog.String("method", req.Method), slog.String("path", req.URL.Path),
				slog.Int("attempt", attempt+1), slog.Duration("wait", wait)}
			if status != 0 {
				attrs = append(attrs, slog.Int("status", status))
			} else if err != nil {
				attrs = append(attrs, slog.String("error", err.Error()))
			}
			t.Logger.Debug("zendesk: retrying", attrs...)
		}
		if status != http.StatusTooManyRequests { // a 429's wait happens in waitTurn
			if err := sleep(ctx, wait); err != nil {
				closeBody(req)
				return nil, err
			}
		}
	}
}

// attemptTimeout is AttemptTimeout, or longer for a request whose context
// asks for more time to send its body (an upload).
func (t *Transport) attemptTimeout(ctx context.Context) time.Duration {
	if t.AttemptTimeout <= 0 {
		return 0
	}
	if d, ok := ctx.Value(attemptTimeoutKey).(time.Duration); ok && d > t.AttemptTimeout {
		return d
	}
	return t.AttemptTimeout
}

// rewindable reports whether req can be sent again: it has no body, or
// GetBody to make a fresh one.
func rewindable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// attemptRequest clones req for one attempt with a fresh body and the
// credentials.
func (t *Transport) attemptRequest(req *http.Request, attempt int) (*http.Request, error) {
	r := req.Clone(req.Context())
	if attempt > 0 && req.Body != nil && req.Body != http.NoBody {
		if req.GetBody == nil {
			return nil, errors.New("zendesk: cannot repeat a request whose body cannot be rewound")
		}
		b, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		r.Body = b
	}
	if t.auth != "" {
		r.Header.Set("Authorization", t.auth)
	}
	if k := idempotencyKeyFrom(req.Context()); k != "" && req.Method == http.MethodPost && createTicketRE.MatchString(req.URL.Path) {
		r.Header.Set("Idempotency-Key", k)
	}
	if r.Header.Get("Accept") == "" {
		r.Header.Set("Accept", "application/json")
	}
	return r, nil
}

// waitTurn blocks until req may be sent: no 429 pause in force, the
// ticket-update budget has room, and the pacing interval has passed.
func (t *Transport) waitTurn(ctx context.Context, req *http.Request, ticketUpdate bool) error {
	for {
		now := time.Now()
		t.mu.Lock()
		until := t.blocked
		if ticketUpdate && t.tuBlock.After(until) {
			until = t.tuBlock
		}
		t.mu.Unlock()
		if !until.After(now) {
			break
		}
		d := until.Sub(now)
		if d > t.MaxWait {
			return t.tooLong(req, d, "a 429 Retry-After is in force")
		}
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	var wait time.Duration
	if ticketUpdate {
		d := t.tu.reserve(time.Now())
		if d > t.MaxWait {
			t.tu.cancel()
			return t.tooLong(req, d, "the ticket-update budget is spent")
		}
		wait = d
	}
	t.mu.Lock()
	now := time.Now()
	if iv := t.Pace(t.rl, now); iv > 0 {
		start := now.Add(wait)
		if t.next.After(start) {
			start = t.next
		}
		t.next = start.Add(iv)
		wait = start.Sub(now)
	}
	if wait > 0 {
		t.stats.Paced++
	}
	t.mu.Unlock()
	if wait > t.MaxWait {
		return t.tooLong(req, wait, "pacing to stay under the rate limit")
	}
	if wait > 0 && t.Logger != nil {
		t.Logger.Debug("zendesk: pacing", slog.String("method", req.Method), slog.String("path", req.URL.Path), slog.Duration("wait", wait))
	}
	return sleep(ctx, wait)
}

func (t *Transport) tooLong(req *http.Request, d time.Duration, why string) error {
	return &cti.UpstreamError{
		Service: "zendesk", Op: req.Method + " " + req.URL.Path, Status: http.StatusTooManyRequests,
		RetryAfter: d, Temporary: true, Err: errors.New("not sent: " + why),
	}
}

func (t *Transport) observe(resp *http.Response) {
	now := time.Now()
	rl, ok := ParseRateLimit(resp.Header, now)
	t.mu.Lock()
	defer t.mu.Unlock()
	if ok {
		t.rl = rl
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		t.stats.RateLimited++
	}
}

func (t *Transport) block(until time.Time, ticketUpdate bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ticketUpdate {
		if until.After(t.tuBlock) {
			t.tuBlock = until
		}
		return
	}
	if until.After(t.blocked) {
		t.blocked = until
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// cancelBody releases an attempt's timeout when the body is closed.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// bucket is a token bucket: limit tokens refilled evenly over per.
type bucket struct {
	mu     sync.Mutex
	limit  float64
	rate   float64 // tokens per second
	tokens float64
	last   time.Time
}

func newBucket(limit int, per time.Duration) *bucket {
	return &bucket{limit: float64(limit), rate: float64(limit) / per.Seconds(), tokens: float64(limit)}
}

// reserve takes a token, possibly in the future, and returns how long to
// wait for it.
func (b *bucket) reserve(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.limit, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// cancel gives back the token of a reservation that was not used.
func (b *bucket) cancel() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.limit, b.tokens+1)
}
