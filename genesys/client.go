package genesys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/mypurecloud/platform-client-sdk-go/v157/platformclientv2"
)

// Client is an authenticated connection to one Genesys Cloud org through
// the official SDK (platformclientv2), with ctikit's own HTTP layer under
// it: every SDK call carries its caller's context, a per-attempt timeout,
// keep-alive connections, pacing under Genesys' limits (3,000 API calls and
// 300 token requests a minute), retries of 429/5xx that honour Retry-After
// and keep the status, and token refresh ahead of expiry and on 401. The
// SDK's own token refresher, retry client, global configuration and config
// file watcher are never used.
//
// Failed calls return a *cti.UpstreamError (Status, RetryAfter,
// Retryable()); rejected credentials an *AuthError. Neither ever contains
// the client secret or a token.
//
// A Client is safe for concurrent use. Close releases it.
type Client struct {
	cfg    Config
	base   *platformclientv2.Configuration
	t      *transport
	tokens *tokenSource
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
}

// ClientOption configures a Client.
type ClientOption func(*clientOptions) error

type clientOptions struct {
	rt        http.RoundTripper
	log       *slog.Logger
	timeout   time.Duration
	retry     RetryPolicy
	apiRate   int
	tokenRate int
	burst     int
	agent     string
	margin    time.Duration
}

// WithHTTPTransport sets the round tripper under the client (for metrics,
// proxies, tests). Default: a keep-alive transport cloned from
// http.DefaultTransport.
func WithHTTPTransport(rt http.RoundTripper) ClientOption {
	return func(o *clientOptions) error {
		if rt == nil {
			return errors.New("genesys: WithHTTPTransport(nil)")
		}
		o.rt = rt
		return nil
	}
}

// WithClientLogger sets the client's logger (requests at debug level,
// never with credentials). Nil means silence (the default).
func WithClientLogger(l *slog.Logger) ClientOption {
	return func(o *clientOptions) error { o.log = l; return nil }
}

// WithTimeout bounds each HTTP attempt (default 30 s).
func WithTimeout(d time.Duration) ClientOption {
	return func(o *clientOptions) error {
		if d <= 0 {
			return fmt.Errorf("genesys: WithTimeout(%v): must be positive", d)
		}
		o.timeout = d
		return nil
	}
}

// WithRetryPolicy sets how calls are retried (zero fields keep defaults).
func WithRetryPolicy(p RetryPolicy) ClientOption {
	return func(o *clientOptions) error {
		if p.MaxWait < 0 {
			return errors.New("genesys: RetryPolicy.MaxWait must not be negative")
		}
		o.retry = p
		return nil
	}
}

// WithRateLimits sets the API calls and token requests per minute the
// client paces itself to (defaults DefaultAPIRate and DefaultTokenRate),
// with bursts of up to burst calls. A rate of 0 keeps the default; a
// negative rate disables pacing.
func WithRateLimits(apiPerMinute, tokensPerMinute, burst int) ClientOption {
	return func(o *clientOptions) error {
		if burst < 0 {
			return errors.New("genesys: WithRateLimits: negative burst")
		}
		if apiPerMinute != 0 {
			o.apiRate = apiPerMinute
		}
		if tokensPerMinute != 0 {
			o.tokenRate = tokensPerMinute
		}
		if burst > 0 {
			o.burst = burst
		}
		return nil
	}
}

// WithTokenRefreshMargin sets how long before its expiry the access token
// is replaced (default 5 minutes, or a tenth of its life when shorter).
func WithTokenRefreshMargin(d time.Duration) ClientOption {
	return func(o *clientOptions) error {
		if d <= 0 {
			return errors.New("genesys: WithTokenRefreshMargin: must be positive")
		}
		o.margin = d
		return nil
	}
}

// WithUserAgent sets the User-Agent of every request (default
// "ctikit-genesys").
func WithUserAgent(ua string) ClientOption {
	return func(o *clientOptions) error { o.agent = ua; return nil }
}

var (
	sdkOnce     sync.Once
	sdkTemplate *platformclientv2.Configuration
)

// template returns the SDK configuration every Client copies. The SDK
// writes package-level loggers whenever it builds a configuration, so it
// is built once; NewConfigurationWithConfigFile("", false) reads no file
// and starts no watcher goroutine.
func template() *platformclientv2.Configuration {
	sdkOnce.Do(func() {
		sdkTemplate = platformclientv2.NewConfigurationWithConfigFile("", false)
		sdkTemplate.AutomaticTokenRefresh = false
		sdkTemplate.ShouldRefreshAccessToken = false
		sdkTemplate.LoggingConfiguration.LogLevel = platformclientv2.LNone
		sdkTemplate.RetryConfiguration = nil
	})
	return sdkTemplate
}

// NewClient builds a client for cfg (validated here). It makes no request:
// the first call fetches the token. Use CheckAuth to verify the
// credentials up front.
func NewClient(cfg Config, opts ...ClientOption) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("genesys: %w", err)
	}
	o := clientOptions{timeout: 30 * time.Second, apiRate: DefaultAPIRate, tokenRate: DefaultTokenRate, burst: 20,
		agent: "ctikit-genesys", margin: 5 * time.Minute}
	for _, f := range opts {
		if err := f(&o); err != nil {
			return nil, err
		}
	}
	if o.rt == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32
		tr.IdleConnTimeout = 90 * time.Second
		tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		o.rt = tr
	}
	log := o.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	login, err := url.Parse(cfg.LoginBase() + "/oauth/token")
	if err != nil {
		return nil, fmt.Errorf("genesys: login URL: %w", err)
	}
	c := &Client{cfg: cfg, log: log}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.t = &transport{
		hc:      &http.Client{Transport: o.rt, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		api:     newPacer(max(o.apiRate, 0), o.burst),
		retry:   o.retry.withDefaults(),
		timeout: o.timeout,
		log:     log,
		agent:   o.agent,
	}
	c.tokens = &tokenSource{t: c.t, login: login, id: cfg.ClientID, secret: cfg.ClientSecret,
		pace: newPacer(max(o.tokenRate, 0), 5), margin: o.margin, log: log}
	c.t.tokens = c.tokens

	base := *template()
	base.BasePath = cfg.APIBase()
	base.AccessToken = "" // our transport adds the bearer token
	base.DefaultHeader = map[string]string{}
	base.APIClient = platformclientv2.NewAPIClient(&base)
	c.base = &base
	return c, nil
}

// Config returns the client's configuration.
func (c *Client) Config() Config { return c.cfg }

// Close aborts calls in flight and waits (retries, pacing) and releases
// idle connections. The client must not be used afterwards.
func (c *Client) Close() error {
	c.cancel()
	c.t.hc.CloseIdleConnections()
	return nil
}

// CheckAuth fetches an access token now, proving the credentials and the
// region. It returns an *AuthError when Genesys rejects them.
func (c *Client) CheckAuth(ctx context.Context) error {
	ctx, done := c.bind(ctx)
	defer done()
	_, _, err := c.tokens.token(ctx)
	return err
}

// SDK returns a copy of the SDK configuration bound to ctx, for calling
// APIs ctikit does not wrap: platformclientv2.NewXxxApiWithConfig(c.SDK(ctx)).
// Requests made through it use this client's transport (auth, pacing,
// retries) and stop when ctx is done. Do not modify the shared maps it
// holds (DefaultHeader, APIKey).
func (c *Client) SDK(ctx context.Context) *platformclientv2.Configuration {
	cfg := *c.base
	_ = cfg.APIClient.SetHttpClient(boundClient{t: c.t, ctx: ctx})
	return &cfg
}

// bind ties ctx to the client's life: it is canceled by Close too.
func (c *Client) bind(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// call runs one SDK call with ctx and converts its failure. It returns the
// raw response body on success: ctikit decodes it with its lean structs.
func (c *Client) call(ctx context.Context, op string, f func(cfg *platformclientv2.Configuration) (*platformclientv2.APIResponse, error)) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, done := c.bind(ctx)
	defer done()
	resp, err := f(c.SDK(ctx))
	if resp != nil && resp.IsSuccess {
		// The SDK's own model decode may fail on a field it does not know;
		// ctikit does not use its models.
		return resp.RawBody, nil
	}
	if err == nil && resp == nil {
		err = errors.New("no response")
	}
	return nil, upstream(op, resp, err)
}

// get runs GET path (with path parameters already escaped) and returns
// the body undecoded: for the calls made per conversation (the
// conversation, its analytics details, recording metadata, summaries,
// chat and email messages), whose SDK methods decode the body into the
// SDK's models, which ctikit does not use, at more cost than the request.
func (c *Client) get(ctx context.Context, op, path string) ([]byte, error) {
	return c.getQuery(ctx, op, path, nil)
}

// getQuery is get with query parameters.
func (c *Client) getQuery(ctx context.Context, op, path string, query map[string]string) ([]byte, error) {
	return c.raw(ctx, op, http.MethodGet, path, query, nil)
}

// raw runs one request and returns the body undecoded (see get); body,
// when not nil, is sent as JSON. It goes straight to the client's
// transport — auth, pacing, retries: what the SDK's API client hands its
// requests to — without the SDK's CallAPI, which formats its trace and
// debug log lines (headers, body) on every call whatever the log level:
// half of the enrichment's CPU in a figure 2 profile. A failure reads as
// the SDK's would (its error body parse, then upstream).
func (c *Client) raw(ctx context.Context, op, method, path string, query map[string]string, body any) ([]byte, error) {
	_, b, err := c.rawStatus(ctx, op, method, path, query, body)
	return b, err
}

// rawStatus is raw that also returns the (2xx) status, for the calls
// where 200 and 202 mean different things.
func (c *Client) rawStatus(ctx context.Context, op, method, path string, query map[string]string, body any) (int, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	u, err := url.Parse(c.base.BasePath + path)
	if err != nil {
		return 0, nil, fmt.Errorf("genesys %s: %w", op, err)
	}
	if len(query) > 0 {
		q := make(url.Values, len(query))
		for k, v := range query {
			if k, v = strings.TrimSpace(k), strings.TrimSpace(v); k != "" && v != "" {
				q.Set(k, v) // as the SDK's CallAPI: empty values are left out
			}
		}
		u.RawQuery = q.Encode()
	}
	hdr := http.Header{"Accept": {"application/json"}}
	var b []byte
	if body != nil {
		if b, err = json.Marshal(body); err != nil {
			return 0, nil, fmt.Errorf("genesys %s: encode request: %w", op, err)
		}
		hdr.Set("Content-Type", "application/json")
	}
	ctx, done := c.bind(ctx)
	defer done()
	resp, err := c.t.send(ctx, method, u, hdr, b, true)
	if err != nil {
		return 0, nil, upstream(op, nil, err)
	}
	raw, err := io.ReadAll(resp.Body) // in memory already (transport.once)
	if err != nil {
		return 0, nil, upstream(op, nil, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp.StatusCode, raw, nil
	}
	ar, err := platformclientv2.NewAPIResponse(resp, raw)
	return 0, nil, upstream(op, ar, err)
}

// download fetches a pre-signed URL Genesys handed out (a transcript in
// S3): without the OAuth token, which the URL's own signature replaces
// (and which S3 would refuse next to it), with the client's timeouts and
// retries. Errors name the host and path only: the query is the signature.
func (c *Client) download(ctx context.Context, op, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("genesys %s: not a download URL", op)
	}
	resp, err := c.t.send(ctx, http.MethodGet, u, http.Header{}, nil, false)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, &cti.UpstreamError{Service: "genesys", Op: op + " " + u.Host + u.Path, Status: resp.StatusCode,
			Temporary: resp.StatusCode >= 500}
	}
	return body, nil
}

// postJSON runs POST path with a JSON body (see raw),
// returning the raw response body (see get).
func (c *Client) postJSON(ctx context.Context, op, path string, query map[string]string, body any) ([]byte, error) {
	return c.raw(ctx, op, http.MethodPost, path, query, body)
}

// rawConversation fetches GET /api/v2/conversations/{id}.
func (c *Client) rawConversation(ctx context.Context, id string) ([]byte, error) {
	return c.get(ctx, "get conversation "+id, "/api/v2/conversations/"+url.PathEscape(id))
}

// Conversation fetches a conversation's current state (GET
// /api/v2/conversations/{id}) and decodes it with dec (nil: a zero
// Decoder). A conversation Genesys no longer has is cti.ErrNotFound
// (wrapped).
func (c *Client) Conversation(ctx context.Context, id string, dec *Decoder) (*cti.Conversation, error) {
	raw, err := c.rawConversation(ctx, id)
	if err != nil {
		if isStatus(err, http.StatusNotFound) {
			return nil, fmt.Errorf("%w: %w", cti.ErrNotFound, err)
		}
		return nil, err
	}
	if dec == nil {
		dec = &Decoder{}
	}
	return dec.Conversation(raw, time.Now())
}
