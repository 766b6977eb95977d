package zendesk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	zd "github.com/nukosuke/go-zendesk/zendesk"

	"github.com/cxplay/ctikit/cti"
)

// api is the part of go-zendesk the client uses: the raw verbs for the
// endpoints it lacks or decodes too strictly, and its user calls.
type api interface {
	zd.BaseAPI
	SearchUsers(ctx context.Context, opts *zd.SearchUsersOptions) ([]zd.User, zd.Page, error)
	GetUser(ctx context.Context, userID int64) (zd.User, error)
}

// Client talks to one Zendesk account through go-zendesk and our
// Transport. It implements syncmap.Zendesk (tickets, update_many, calls);
// Searcher returns its match.Searcher; NewDirectory and NewPopper build the
// agent directory and the screen-pop on it.
//
// A Client is safe for concurrent use and holds no goroutines: there is
// nothing to close.
type Client struct {
	z         api
	hc        *http.Client
	tr        *Transport
	base      string // https://acme.zendesk.com/api/v2
	web       string // https://acme.zendesk.com
	log       *slog.Logger
	secrets   []string
	principal string
	appID     int64
	jobPoll   func(attempt int) time.Duration
	maxUpload int64 // Upload's size limit; 0: MaxUploadSize (tests lower it)
}

// Option configures a Client.
type Option func(*settings) error

type settings struct {
	base        http.RoundTripper
	logger      *slog.Logger
	tweaks      []func(*Transport)
	appID       int64
	jobPoll     func(int) time.Duration
	httpTimeout time.Duration
}

// WithHTTPTransport sets the RoundTripper under the client's Transport
// (proxies, TLS settings, metrics). Default: NewBaseTransport, a clone of
// http.DefaultTransport keeping 100 idle connections to the account; wrap
// it rather than http.DefaultTransport, which keeps 2 per host, too few
// for the load.
func WithHTTPTransport(rt http.RoundTripper) Option {
	return func(s *settings) error {
		if rt == nil {
			return errors.New("zendesk: WithHTTPTransport: nil RoundTripper")
		}
		s.base = rt
		return nil
	}
}

// WithLogger logs retries, pacing and pops at debug level and failures at
// warn level. Nil means silence (the default). Credentials are never logged.
func WithLogger(l *slog.Logger) Option {
	return func(s *settings) error { s.logger = l; return nil }
}

// WithRetries sets how many times one request is repeated at most
// (default DefaultMaxRetries; 0 disables retries).
func WithRetries(n int) Option {
	return func(s *settings) error {
		if n < 0 {
			return fmt.Errorf("zendesk: WithRetries(%d): want 0 or more", n)
		}
		s.tweaks = append(s.tweaks, func(t *Transport) { t.MaxRetries = n })
		return nil
	}
}

// WithAttemptTimeout bounds each attempt (default DefaultAttemptTimeout).
func WithAttemptTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("zendesk: WithAttemptTimeout(%v): want a positive duration", d)
		}
		s.tweaks = append(s.tweaks, func(t *Transport) { t.AttemptTimeout = d })
		return nil
	}
}

// WithMaxWait sets the longest wait the transport sleeps before an
// attempt; longer waits fail fast with a retryable error carrying
// RetryAfter (default DefaultMaxWait).
func WithMaxWait(d time.Duration) Option {
	return func(s *settings) error {
		if d <= 0 {
			return fmt.Errorf("zendesk: WithMaxWait(%v): want a positive duration", d)
		}
		s.tweaks = append(s.tweaks, func(t *Transport) { t.MaxWait = d })
		return nil
	}
}

// WithTicketUpdateBudget sets the client-side budget for ticket updates
// (default 100 per minute, Zendesk's account limit for Update Ticket).
func WithTicketUpdateBudget(limit int, per time.Duration) Option {
	return func(s *settings) error {
		if limit <= 0 || per <= 0 {
			return fmt.Errorf("zendesk: WithTicketUpdateBudget(%d, %v): want a positive limit and period", limit, per)
		}
		s.tweaks = append(s.tweaks, func(t *Transport) { t.TicketUpdates = Budget{Limit: limit, Per: per} })
		return nil
	}
}

// WithPolicies replaces the retry and pacing policies; nil arguments keep
// the defaults (DefaultCheckRetry, DefaultBackoff, DefaultPace).
func WithPolicies(check CheckRetryFunc, backoff BackoffFunc, pace PaceFunc) Option {
	return func(s *settings) error {
		s.tweaks = append(s.tweaks, func(t *Transport) {
			if check != nil {
				t.CheckRetry = check
			}
			if backoff != nil {
				t.Backoff = backoff
			}
			if pace != nil {
				t.Pace = pace
			}
		})
		return nil
	}
}

// WithAppID sets the Talk Partner Edition app id used by CreateCall when
// the call has none (the ZAF app's id).
func WithAppID(id int64) Option {
	return func(s *settings) error {
		if id <= 0 {
			return fmt.Errorf("zendesk: WithAppID(%d): want a positive app id", id)
		}
		s.appID = id
		return nil
	}
}

// WithJobPoll sets the wait before the attempt-th poll of a job status
// (update_many). Default DefaultJobPoll.
func WithJobPoll(f func(attempt int) time.Duration) Option {
	return func(s *settings) error {
		if f == nil {
			return errors.New("zendesk: WithJobPoll: nil function")
		}
		s.jobPoll = f
		return nil
	}
}

// DefaultJobPoll polls a job status after 200ms, 400ms, 800ms, then every
// 2s.
func DefaultJobPoll(attempt int) time.Duration {
	return min(200*time.Millisecond<<min(attempt, 4), 2*time.Second)
}

// New returns a Client for the account cfg names. cfg is validated; each
// option may fail with a message naming it.
func New(cfg Config, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var s settings
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, err
		}
	}
	base, _ := cfg.BaseURL()
	tr, err := NewTransport(cfg, s.base)
	if err != nil {
		return nil, err
	}
	tr.Logger = s.logger
	for _, f := range s.tweaks {
		f(tr)
	}
	hc := &http.Client{Transport: tr}
	z, err := zd.NewClient(hc)
	if err != nil {
		return nil, fmt.Errorf("zendesk: %w", err)
	}
	if err := z.SetEndpointURL(base); err != nil {
		return nil, fmt.Errorf("zendesk: %w", err)
	}
	u, _ := url.Parse(base)
	web := u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/api/v2")
	c := &Client{
		z: z, hc: hc, tr: tr, base: base, web: web, log: s.logger,
		secrets: cfg.secrets(), principal: cfg.Principal(), appID: s.appID,
		jobPoll: s.jobPoll,
	}
	if c.jobPoll == nil {
		c.jobPoll = DefaultJobPoll
	}
	return c, nil
}

// NewFromEnv is New(ConfigFromEnv(), opts...).
func NewFromEnv(opts ...Option) (*Client, error) {
	cfg, err := ConfigFromEnv()
	if err != nil {
		return nil, err
	}
	return New(cfg, opts...)
}

// BaseURL is the API root, e.g. "https://acme.zendesk.com/api/v2".
func (c *Client) BaseURL() string { return c.base }

// AgentURL is the agent interface link of a user or ticket record.
func (c *Client) AgentURL(kind cti.RecordKind, id int64) string {
	switch kind {
	case cti.KindUser:
		return c.web + "/agent/users/" + strconv.FormatInt(id, 10)
	case cti.KindTicket:
		return c.web + "/agent/tickets/" + strconv.FormatInt(id, 10)
	case cti.KindOrganization:
		return c.web + "/agent/organizations/" + strconv.FormatInt(id, 10)
	}
	return ""
}

// Transport is the client's transport, for its RateLimit and Stats.
func (c *Client) Transport() *Transport { return c.tr }

// API is the underlying go-zendesk client for calls this package does not
// wrap. Its requests go through the same Transport. Never call SetHeader or
// SetCredential on it: go-zendesk shares its header map between clients.
func (c *Client) API() *zd.Client { return c.z.(*zd.Client) }

func (c *Client) getJSON(ctx context.Context, op, path string, out any) error {
	body, err := c.z.Get(ctx, path)
	if err != nil {
		return c.fail(op, err)
	}
	return decode(op, body, out)
}

func (c *Client) postJSON(ctx context.Context, op, path string, in, out any) error {
	body, err := c.z.Post(ctx, path, in)
	if err != nil {
		return c.fail(op, err)
	}
	return decode(op, body, out)
}

func (c *Client) putJSON(ctx context.Context, op, path string, in, out any) error {
	body, err := c.z.Put(ctx, path, in)
	if err != nil {
		return c.fail(op, err)
	}
	return decode(op, body, out)
}

// userAgent is what the requests the client builds itself (PATCH,
// uploads) say they are.
const userAgent = "ctikit (go-zendesk/0.18.0)"

// patchJSON sends a PATCH, which go-zendesk does not export.
func (c *Client) patchJSON(ctx context.Context, op, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("zendesk %s: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPatch, c.base+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("zendesk %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.fail(op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return c.fail(op, err)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return c.statusError(op, resp.StatusCode, resp.Header, body)
	}
	return decode(op, body, out)
}

func decode(op string, body []byte, out any) error {
	if out == nil || len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("zendesk %s: %w", op, &syntaxError{what: "response", err: err})
	}
	return nil
}

type ctxKey int

const (
	idempotencyKey ctxKey = iota
	// attemptTimeoutKey carries a time.Duration: the attempt timeout a
	// request needs at least (an upload's body takes time to send).
	attemptTimeoutKey
)

// WithIdempotencyKey returns a context whose ticket creation (POST
// /api/v2/tickets) carries the Idempotency-Key header: Zendesk then
// creates at most one ticket per key (for two hours), and the transport
// may safely retry the request.
func WithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, idempotencyKey, key)
}

func idempotencyKeyFrom(ctx context.Context) string {
	s, _ := ctx.Value(idempotencyKey).(string)
	return s
}

func itoa(id int64) string { return strconv.FormatInt(id, 10) }
