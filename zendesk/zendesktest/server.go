package zendesktest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Credentials the emulator accepts unless told otherwise.
const (
	DefaultEmail      = "admin@example.com"
	DefaultAPIToken   = "emulator-api-token"
	DefaultOAuthToken = "emulator-oauth-token"
)

// Request is one request the emulator received, for assertions.
type Request struct {
	Method string
	// Path is the URL path as sent, e.g. "/api/v2/search.json".
	Path string
	// Route is Path without "/api/v2" and ".json", e.g. "/search".
	Route string
	Query url.Values
	Body  []byte
	// Principal is who authenticated: the email of an API token, "oauth"
	// for a bearer token, "" when authentication failed.
	Principal      string
	IdempotencyKey string
	Status         int
	At             time.Time
}

// JSON decodes the request body into v.
func (r Request) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// Fault makes matching requests fail or stall.
type Fault struct {
	// Method and Route select requests ("" matches any); Route is a prefix
	// of the route without "/api/v2" and ".json", e.g. "/tickets".
	Method string
	Route  string
	// Status is the response status (500, 503, 429, ...); 0 answers
	// normally after Delay.
	Status int
	// RetryAfter sets the Retry-After header (whole seconds, rounded up).
	RetryAfter time.Duration
	// Delay holds the request before answering (a timeout when it is longer
	// than the client waits); the request ends early if the client gives up.
	Delay time.Duration
	// Hold processes the request normally, then holds the response back
	// this long: a response lost on the way when the client gives up
	// first (the write happened; a retry must not write twice).
	Hold time.Duration
	// Times is how many requests it hits; 0 means until cleared.
	Times int
}

// Server is an in-process emulator of the Zendesk API endpoints ctikit
// uses, speaking the public wire formats. Create it with NewServer (it
// listens on 127.0.0.1) or NewUnstarted (serve Handler yourself); stop it
// with Close. All methods are safe for concurrent use.
type Server struct {
	// URL is the account URL, e.g. http://127.0.0.1:PORT; the API is at
	// URL + "/api/v2". Empty for an unstarted server.
	URL string

	srv    *httptest.Server
	closed chan struct{}
	line   delayLine // the injected latency (WithLatency)
	once   sync.Once

	mu       sync.Mutex
	opt      options
	next     int64
	users    map[int64]*User
	orgs     map[int64]*Organization
	tickets  map[int64]*Ticket
	deleted  map[int64]bool
	calls    map[int64]*Call
	jobs     map[string]*job
	undone   int                // jobs not yet run (settle has nothing to do at 0)
	byValue  map[string][]int64 // identity value → users holding it (append-only)
	idem     map[string]idemEntry
	search   map[searchKey]time.Time // when a created record becomes searchable
	displays []Display
	requests []Request
	faults   []*Fault
	rejected map[int64]bool
	creds    map[string]string // email → api token
	account  window
	updates  window

	uploads     map[string]*upload // by token
	files       map[string]*file   // by content_url token
	attachments map[int64]*file    // by attachment id
	uploadsDue  time.Time          // the next unattached upload expiry; zero: none
}

type searchKey struct {
	kind string
	id   int64
}

type idemEntry struct {
	hash     string
	ticketID int64
	at       time.Time
}

type window struct {
	start time.Time
	count int
}

type options struct {
	creds        map[string]string
	oauth        []string
	limit        int
	per          time.Duration
	updLimit     int
	updPer       time.Duration
	latency      time.Duration
	indexLag     time.Duration
	jobDelay     time.Duration
	noRateLimits bool
	requestLog   int // the most requests Requests keeps; 0: all
	uploadLimit  int64
	uploadTTL    time.Duration
}

// Option configures a Server.
type Option func(*options)

// WithAPIToken accepts Basic "email/token:TOKEN" for email (in addition to
// the default credentials) and creates email as an admin.
func WithAPIToken(email, token string) Option {
	return func(o *options) { o.creds[strings.ToLower(email)] = token }
}

// WithOAuthToken accepts "Bearer TOKEN".
func WithOAuthToken(token string) Option {
	return func(o *options) { o.oauth = append(o.oauth, token) }
}

// WithRateLimit sets the account budget: limit requests per window
// (default 700 per minute, the Enterprise plan). Every response carries
// X-Rate-Limit and X-Rate-Limit-Remaining, GET responses also
// ratelimit-limit, ratelimit-remaining and ratelimit-reset; past the
// budget the answer is 429 with Retry-After.
func WithRateLimit(limit int, window time.Duration) Option {
	return func(o *options) { o.limit, o.per = limit, window }
}

// WithTicketUpdateLimit sets the Update Ticket budget (default 100 per
// minute), enforced on PUT /api/v2/tickets/{id} on top of the account one.
func WithTicketUpdateLimit(limit int, window time.Duration) Option {
	return func(o *options) { o.updLimit, o.updPer = limit, window }
}

// WithoutRateLimits disables both budgets (the headers are still sent).
func WithoutRateLimits() Option { return func(o *options) { o.noRateLimits = true } }

// WithLatency makes every request a round trip of d (for latency
// benchmarks): it is processed when it arrives and answered d after.
func WithLatency(d time.Duration) Option { return func(o *options) { o.latency = d } }

// WithIndexLag makes users, organizations and tickets created through the
// API searchable only d after their creation, as Zendesk's search index
// does. Seeded records are searchable at once. Non-search reads (show,
// requested tickets) see new records immediately.
func WithIndexLag(d time.Duration) Option { return func(o *options) { o.indexLag = d } }

// WithJobDelay sets how long an update_many job takes (default 0: it
// reports "queued" when submitted and is done by the first poll).
func WithJobDelay(d time.Duration) Option { return func(o *options) { o.jobDelay = d } }

// WithRequestLog keeps only the last n requests for Requests and
// RequestsTo (default: every one, as tests want): a long-running demo's
// emulator then does not grow with every request it served.
func WithRequestLog(n int) Option { return func(o *options) { o.requestLog = max(n, 0) } }

// NewServer starts an emulator on 127.0.0.1 with the default credentials
// (an admin DefaultEmail with DefaultAPIToken, and DefaultOAuthToken).
func NewServer(opts ...Option) *Server {
	s := NewUnstarted(opts...)
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	return s
}

// NewUnstarted returns an emulator that is not listening: serve it as an
// http.Handler at the root of a listener (it answers /api/v2/...). Set URL
// to that listener's address before serving, so that responses carry
// absolute URLs (next_page, url fields).
func NewUnstarted(opts ...Option) *Server {
	o := options{creds: map[string]string{DefaultEmail: DefaultAPIToken}, oauth: []string{DefaultOAuthToken},
		limit: 700, per: time.Minute, updLimit: 100, updPer: time.Minute,
		uploadLimit: DefaultUploadLimit, uploadTTL: DefaultUploadTTL}
	for _, f := range opts {
		f(&o)
	}
	s := &Server{
		closed: make(chan struct{}), opt: o, next: 1000,
		users: map[int64]*User{}, orgs: map[int64]*Organization{}, tickets: map[int64]*Ticket{},
		deleted: map[int64]bool{}, calls: map[int64]*Call{}, jobs: map[string]*job{},
		idem: map[string]idemEntry{}, search: map[searchKey]time.Time{}, rejected: map[int64]bool{},
		byValue: map[string][]int64{},
		creds:   o.creds,
		uploads: map[string]*upload{}, files: map[string]*file{}, attachments: map[int64]*file{},
	}
	s.line.closed = s.closed
	for email := range o.creds {
		s.AddUser(User{Name: "API admin " + email, Email: email, Role: "admin"})
	}
	return s
}

// Close stops the emulator: stalled requests return at once, then the
// listener closes. Safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		if s.srv != nil {
			s.srv.Close()
		}
		s.line.stop()
	})
}

// APIURL is URL + "/api/v2".
func (s *Server) APIURL() string { return s.URL + "/api/v2" }

// --- runtime knobs ---------------------------------------------------------

// SetLatency changes the injected round-trip delay.
func (s *Server) SetLatency(d time.Duration) { s.mu.Lock(); s.opt.latency = d; s.mu.Unlock() }

// SetIndexLag changes the search index lag for records created from now on.
func (s *Server) SetIndexLag(d time.Duration) { s.mu.Lock(); s.opt.indexLag = d; s.mu.Unlock() }

// SetRateLimit changes the account budget and starts a new window.
func (s *Server) SetRateLimit(limit int, window time.Duration) {
	s.mu.Lock()
	s.opt.limit, s.opt.per, s.opt.noRateLimits = limit, window, false
	s.account = window0()
	s.mu.Unlock()
}

// SetTicketUpdateLimit changes the Update Ticket budget and starts a new window.
func (s *Server) SetTicketUpdateLimit(limit int, window time.Duration) {
	s.mu.Lock()
	s.opt.updLimit, s.opt.updPer, s.opt.noRateLimits = limit, window, false
	s.updates = window0()
	s.mu.Unlock()
}

func window0() window { return window{} }

// InjectFault adds a fault; the returned function removes it.
func (s *Server) InjectFault(f Fault) (clear func()) {
	fp := &f
	s.mu.Lock()
	s.faults = append(s.faults, fp)
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.faults = slices.DeleteFunc(s.faults, func(x *Fault) bool { return x == fp })
		s.mu.Unlock()
	}
}

// RejectField makes ticket creates and updates that set ticket field id
// fail with 422 (details.base[].ticket_field_id), as Zendesk does for an
// invalid value; in update_many only the tickets that set it fail.
func (s *Server) RejectField(id int64) { s.mu.Lock(); s.rejected[id] = true; s.mu.Unlock() }

// DeleteTicket deletes a ticket: it then answers 404 everywhere.
func (s *Server) DeleteTicket(id int64) {
	s.mu.Lock()
	delete(s.tickets, id)
	s.deleted[id] = true
	s.mu.Unlock()
}

// --- recorded traffic ----------------------------------------------------

// Requests returns the requests received so far, oldest first (the last
// n of them with WithRequestLog(n)).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.logged())
}

// logged is the request log as kept (WithRequestLog); call with s.mu held.
func (s *Server) logged() []Request {
	if n := s.opt.requestLog; n > 0 && len(s.requests) > n {
		return s.requests[len(s.requests)-n:]
	}
	return s.requests
}

// RequestsTo returns the requests with this method ("" any) whose route
// starts with route (without "/api/v2" and ".json", e.g. "/search").
func (s *Server) RequestsTo(method, route string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.logged() {
		if (method == "" || r.Method == method) && strings.HasPrefix(r.Route, route) {
			out = append(out, r)
		}
	}
	return out
}

// ResetRequests forgets the recorded requests and displays.
func (s *Server) ResetRequests() {
	s.mu.Lock()
	s.requests, s.displays = nil, nil
	s.mu.Unlock()
}

// Displays returns the screen pops received, oldest first; agentID 0
// means every agent.
func (s *Server) Displays(agentID int64) []Display {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Display
	for _, d := range s.displays {
		if agentID == 0 || d.AgentID == agentID {
			out = append(out, d)
		}
	}
	return out
}

// --- HTTP ----------------------------------------------------------------

// ServeHTTP implements http.Handler.
//
// The injected latency (WithLatency) is a round trip: the request is
// processed when it arrives and its answer written once the latency has
// passed since its arrival, so the emulator's own processing time is
// inside the latency rather than added to it. A fault's Delay holds the
// request before it is processed (a timeout leaves nothing done), its
// Hold after (done, the answer lost).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/api/v2"), ".json")
	limit := int64(4 << 20)
	if route == "/uploads" {
		s.mu.Lock()
		limit = s.opt.uploadLimit + 1 // one more byte tells it is too large
		s.mu.Unlock()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit))
	if err != nil {
		http.Error(w, "read error", http.StatusBadRequest)
		return
	}
	rec := Request{Method: r.Method, Path: r.URL.Path, Route: route, Query: r.URL.Query(), Body: body,
		IdempotencyKey: r.Header.Get("Idempotency-Key"), At: time.Now()}
	rw := &recorder{ResponseWriter: w}
	defer func() {
		rec.Status = rw.status
		s.mu.Lock()
		if n := s.opt.requestLog; n > 0 && len(s.requests) >= 2*n {
			// Drop the older half at once: amortized O(1) per request.
			s.requests = append(s.requests[:0:0], s.requests[len(s.requests)-n+1:]...)
		}
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
	}()

	s.mu.Lock()
	latency := s.opt.latency
	fault := s.takeFault(r.Method, route)
	s.mu.Unlock()
	var hold time.Duration
	if fault != nil {
		hold = fault.Hold
		if fault.Delay > 0 {
			// The fault's delay and the latency, before processing.
			if !s.sleep(rw, r, latency+fault.Delay) {
				return
			}
			latency = 0
		}
	}
	if latency == 0 && hold == 0 {
		rec.Principal = s.process(rw, r, route, body, fault)
		return
	}
	held := httptest.NewRecorder()
	rec.Principal = s.process(held, r, route, body, fault)
	if latency > 0 {
		if err := s.line.wait(r.Context(), rec.At.Add(latency)); err != nil {
			aborted(rw, errors.Is(err, errClosed))
			return
		}
	}
	if hold > 0 && !s.sleep(rw, r, hold) {
		return
	}
	for k, v := range held.Header() {
		rw.Header()[k] = v
	}
	rw.WriteHeader(held.Code)
	_, _ = rw.Write(held.Body.Bytes())
}

// sleep holds a request for d; false when the client went away (499) or
// the emulator closed (503), with the answer given.
func (s *Server) sleep(rw *recorder, r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		aborted(rw, false)
	case <-s.closed:
		aborted(rw, true)
	}
	return false
}

// aborted records a held request that ended early: 503 with an answer
// when the emulator closed, else 499 (the client went away; nothing to
// answer).
func aborted(rw *recorder, closed bool) {
	if !closed {
		rw.status = 499
		return
	}
	rw.status = 503
	http.Error(rw, "emulator closed", http.StatusServiceUnavailable)
}

// process answers a request (or its injected fault) into out and returns
// the authenticated principal.
func (s *Server) process(out http.ResponseWriter, r *http.Request, route string, body []byte, fault *Fault) string {
	if strings.HasPrefix(r.URL.Path, "/attachments/token/") {
		// Attachment content: no authentication, no API rate limit.
		if fault != nil && fault.Status != 0 {
			http.Error(out, "injected fault", fault.Status)
			return ""
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.expireUploads(time.Now())
		s.content(out, r)
		return ""
	}
	if !strings.HasPrefix(r.URL.Path, "/api/v2/") {
		writeError(out, http.StatusNotFound, "InvalidEndpoint", "Not found")
		return ""
	}
	principal, ok := s.authenticate(r)
	if !ok {
		writeJSON(out, http.StatusUnauthorized, map[string]any{"error": "Couldn't authenticate you"})
		return principal
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireUploads(time.Now())
	s.settle(time.Now())
	if !s.rateLimit(out, r, route) {
		return principal
	}
	if fault != nil && fault.Status != 0 {
		if fault.RetryAfter > 0 {
			out.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(fault.RetryAfter.Seconds()))))
		}
		code := map[int]string{429: "TooManyRequests", 503: "ServiceUnavailable", 500: "InternalServerError"}[fault.Status]
		writeError(out, fault.Status, cmpOr(code, http.StatusText(fault.Status)), "injected fault")
		return principal
	}
	ctx := &call{s: s, w: out, r: r, route: route, body: body, principal: principal}
	ctx.serve()
	return principal
}

func (s *Server) takeFault(method, route string) *Fault {
	for i, f := range s.faults {
		if (f.Method == "" || f.Method == method) && strings.HasPrefix(route, f.Route) {
			cp := *f
			if f.Times > 0 {
				f.Times--
				if f.Times == 0 {
					s.faults = slices.Delete(s.faults, i, i+1)
				}
			}
			return &cp
		}
	}
	return nil
}

func (s *Server) authenticate(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
		if slices.Contains(s.opt.oauth, tok) {
			return "oauth", true
		}
		return "", false
	}
	b64, ok := strings.CutPrefix(h, "Basic ")
	if !ok {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return "", false
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	email, isToken := strings.CutSuffix(user, "/token")
	if !ok || !isToken {
		return "", false // password authentication is off, as on most accounts
	}
	email = strings.ToLower(email)
	s.mu.Lock()
	want, known := s.creds[email]
	s.mu.Unlock()
	if !known || want != pass {
		return "", false
	}
	return email, true
}

// rateLimit applies the account and ticket-update budgets and sets the
// headers. Called with s.mu held; false means a 429 was written.
func (s *Server) rateLimit(w http.ResponseWriter, r *http.Request, route string) bool {
	now := time.Now()
	o := s.opt
	left := tick(&s.account, now, o.per)
	s.account.count++
	remaining := max(o.limit-s.account.count, 0)
	h := w.Header()
	h.Set("X-Rate-Limit", strconv.Itoa(o.limit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
	if r.Method == http.MethodGet {
		h.Set("ratelimit-limit", strconv.Itoa(o.limit))
		h.Set("ratelimit-remaining", strconv.Itoa(remaining))
		h.Set("ratelimit-reset", strconv.Itoa(int(math.Ceil(left.Seconds()))))
	}
	if o.noRateLimits {
		return true
	}
	if s.account.count > o.limit {
		h.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(left.Seconds())))))
		writeError(w, http.StatusTooManyRequests, "APIRateLimitExceeded", "Number of allowed API requests per minute exceeded")
		return false
	}
	if r.Method == http.MethodPut && isTicketRoute(route) {
		uleft := tick(&s.updates, now, o.updPer)
		s.updates.count++
		if s.updates.count > o.updLimit {
			h.Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(uleft.Seconds())))))
			writeError(w, http.StatusTooManyRequests, "TooManyRequests", "Rate limit for ticket updates exceeded, please wait before updating this ticket again")
			return false
		}
	}
	return true
}

// tick starts a new window when the current one is over and returns the
// time left in it.
func tick(w *window, now time.Time, per time.Duration) time.Duration {
	if w.start.IsZero() || now.Sub(w.start) >= per {
		w.start, w.count = now, 0
	}
	return per - now.Sub(w.start)
}

func isTicketRoute(route string) bool {
	rest, ok := strings.CutPrefix(route, "/tickets/")
	if !ok {
		return false
	}
	_, err := strconv.ParseInt(rest, 10, 64)
	return err == nil
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status, buf = http.StatusInternalServerError, *bytes.NewBufferString(`{"error":"InternalServerError"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "description": desc})
}

// invalid writes Zendesk's 422 RecordInvalid with details.
func invalid(w http.ResponseWriter, field string, details ...map[string]any) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{
		"error": "RecordInvalid", "description": "Record validation errors",
		"details": map[string]any{field: details},
	})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Server) newID() int64 { s.next++; return s.next }

var errBadJSON = errors.New("bad JSON")

func decodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: empty body", errBadJSON)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errBadJSON, err)
	}
	return nil
}
