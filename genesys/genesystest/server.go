package genesystest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server is an in-process Genesys Cloud: the OAuth token endpoint, the REST
// API ctikit uses, the notification channels and their websockets, over
// real HTTP on 127.0.0.1. Point a genesys.Config's APIURL (and LoginURL) at
// URL; ClientID and ClientSecret are the accepted credentials.
//
// Conversations are scripted with Start and the *Conversation builder;
// every step publishes the conversation to the subscribed topics, as
// Genesys does. Faults (dropped or silent sockets, socket_closing, channel
// expiry, malformed, duplicated and stale frames, 429/5xx on REST) are
// injected with the methods named after them.
//
// A Server is safe for concurrent use; Close stops every goroutine it
// started.
type Server struct {
	// URL is the base URL of the API and login service (http://127.0.0.1:port).
	URL string
	// ClientID and ClientSecret are the accepted OAuth client credentials.
	ClientID, ClientSecret string

	srv  *httptest.Server
	opts options
	log  *slog.Logger

	mu        sync.Mutex
	users     map[string]User
	queues    map[string]Queue
	codes     map[string]WrapupCode
	campaigns map[string]Campaign
	convs     map[string]*conversation
	order     []string // conversation ids, oldest first
	tokens    map[string]time.Time
	issued    []string
	channels  map[string]*channel
	chanOrder []string
	faults    []*restFault
	dupFrames bool
	holding   bool
	held      []heldFrame
	stats     Stats
	seq       int
	closed    bool
	recPolls  map[string]int // recording requests, by recording id
	mediaKey  []byte         // signs recording media URLs

	wg   sync.WaitGroup // socket and timer goroutines
	quit chan struct{}
}

// Option configures a Server.
type Option func(*options)

type options struct {
	heartbeat  time.Duration
	tokenTTL   time.Duration
	channelTTL time.Duration
	latency    time.Duration
	id, secret string
	seed       *Seed
	log        *slog.Logger
	queueSize  int
	transcodes int
}

// WithHeartbeat sets the interval of the websocket heartbeats (Genesys: 30 s).
func WithHeartbeat(d time.Duration) Option { return func(o *options) { o.heartbeat = d } }

// WithTokenTTL sets the lifetime of issued access tokens (default 24 h).
func WithTokenTTL(d time.Duration) Option { return func(o *options) { o.tokenTTL = d } }

// WithChannelTTL sets how long a notification channel lives (Genesys: 24 h).
// At expiry its socket is closed and its subscriptions are gone.
func WithChannelTTL(d time.Duration) Option { return func(o *options) { o.channelTTL = d } }

// WithLatency delays every REST response by d (to measure against a floor).
func WithLatency(d time.Duration) Option { return func(o *options) { o.latency = d } }

// WithCredentials sets the accepted OAuth client id and secret.
func WithCredentials(id, secret string) Option {
	return func(o *options) { o.id, o.secret = id, secret }
}

// WithSeed loads users, queues, wrap-up codes and campaigns (default:
// DemoSeed()).
func WithSeed(s Seed) Option { return func(o *options) { o.seed = &s } }

// WithLogger logs requests and socket events at debug level (nil: silence).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// Stats counts what the server saw; Server.Stats returns a copy.
type Stats struct {
	TokensIssued    int
	TokensRejected  int
	ChannelsCreated int
	ChannelsEvicted int // removed because a 21st was created
	SocketsOpened   int
	FramesSent      int
	// Requests counts REST requests by "METHOD pattern", e.g.
	// "GET /api/v2/conversations/{id}".
	Requests map[string]int
	// Faults counts injected REST failures served.
	Faults int
	// RecordingDownloads counts recording media files served (pre-signed
	// downloads that passed the signature check).
	RecordingDownloads int
}

// NewServer starts a server. Close it when done.
func NewServer(opts ...Option) *Server {
	o := options{heartbeat: 30 * time.Second, tokenTTL: 24 * time.Hour, channelTTL: 24 * time.Hour,
		id: "ctikit-demo-client", secret: "ctikit-demo-secret-" + randHex(8), queueSize: 4096}
	for _, f := range opts {
		f(&o)
	}
	s := &Server{
		ClientID: o.id, ClientSecret: o.secret, opts: o, log: o.log,
		users: map[string]User{}, queues: map[string]Queue{}, codes: map[string]WrapupCode{}, campaigns: map[string]Campaign{},
		convs: map[string]*conversation{}, tokens: map[string]time.Time{}, channels: map[string]*channel{},
		recPolls: map[string]int{}, mediaKey: []byte(randHex(32)), quit: make(chan struct{}),
	}
	s.stats.Requests = map[string]int{}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	seed := DemoSeed()
	if o.seed != nil {
		seed = *o.seed
	}
	s.Load(seed)
	s.srv = httptest.NewServer(s.routes())
	s.URL = s.srv.URL
	return s
}

// Close closes every socket, stops every goroutine and the HTTP server.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.quit)
	for _, ch := range s.channels {
		ch.closeSocket()
		if ch.timer != nil {
			ch.timer.Stop()
		}
	}
	s.mu.Unlock()
	s.srv.CloseClientConnections()
	s.wg.Wait()
	s.srv.Close()
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests = make(map[string]int, len(s.stats.Requests))
	for k, v := range s.stats.Requests {
		st.Requests[k] = v
	}
	return st
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newID returns a Genesys-style UUID.
func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// apiError writes Genesys' error body.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ININ-Correlation-Id", newID())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"message": msg, "code": code, "status": status, "contextId": newID(), "details": []any{},
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ININ-Correlation-Id", newID())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// restFault is an injected failure of matching REST requests.
type restFault struct {
	f     Fault
	times int // left; <0 forever
}

// Fault describes failures of REST requests: the next Times requests whose
// method matches Method ("" any) and whose path starts with PathPrefix (""
// any; e.g. "/api/v2/conversations/") get Status, with Retry-After when
// RetryAfter > 0. Times < 0 fails until ClearFaults. The OAuth token
// endpoint is "/oauth/token"; the pre-signed recording downloads are
// "/media/recordings/".
type Fault struct {
	Method     string
	PathPrefix string
	Status     int
	RetryAfter time.Duration
	Times      int
}

// FailREST injects a REST fault.
func (s *Server) FailREST(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &restFault{f: f, times: f.Times})
}

// ClearFaults removes all injected REST faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// RemoveFaults removes the injected REST faults whose PathPrefix is prefix.
func (s *Server) RemoveFaults(prefix string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = slices.DeleteFunc(s.faults, func(rf *restFault) bool { return rf.f.PathPrefix == prefix })
}

// takeFault returns the fault for r, consuming one use.
func (s *Server) takeFault(r *http.Request) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, rf := range s.faults {
		if (rf.f.Method == "" || strings.EqualFold(rf.f.Method, r.Method)) && strings.HasPrefix(r.URL.Path, rf.f.PathPrefix) {
			f := rf.f
			if rf.times > 0 {
				rf.times--
				if rf.times == 0 {
					s.faults = append(s.faults[:i], s.faults[i+1:]...)
				}
			}
			s.stats.Faults++
			return &f
		}
	}
	return nil
}

// IssuedTokens returns every access token issued so far (for tests that
// check that tokens never leak into logs or errors).
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.issued)
}

// RevokeTokens invalidates every access token issued so far: the next API
// call with one gets 401, as after a revocation.
func (s *Server) RevokeTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]time.Time{}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern string, auth bool, h http.HandlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			s.stats.Requests[pattern]++
			s.mu.Unlock()
			if d := s.opts.latency; d > 0 {
				select {
				case <-time.After(d):
				case <-r.Context().Done():
					return
				}
			}
			if f := s.takeFault(r); f != nil {
				if f.RetryAfter > 0 {
					w.Header().Set("Retry-After", strconv.Itoa(int((f.RetryAfter+time.Second-1)/time.Second)))
				}
				code := "internal.server.error"
				if f.Status == http.StatusTooManyRequests {
					code = "too.many.requests"
				}
				apiError(w, f.Status, code, "injected fault")
				return
			}
			if auth && !s.authorized(r) {
				apiError(w, http.StatusUnauthorized, "bad.credentials", "Invalid login credentials.")
				return
			}
			h(w, r)
		})
	}
	handle("POST /oauth/token", false, s.token)
	handle("GET /api/v2/users/{id}", true, s.getUser)
	handle("GET /api/v2/routing/queues/{id}", true, s.getQueue)
	handle("GET /api/v2/routing/queues", true, s.listQueues)
	handle("GET /api/v2/routing/wrapupcodes/{id}", true, s.getWrapupCode)
	handle("GET /api/v2/outbound/campaigns/{id}", true, s.getCampaign)
	handle("GET /api/v2/conversations/{id}", true, s.getConversation)
	// /api/v2/conversations/{media}/{id} and /api/v2/conversations/{id}/{sub}
	// overlap as ServeMux patterns: dispatch by hand.
	byMedia := map[string]http.HandlerFunc{
		"calls": s.mediaConversation(MediaVoice), "callbacks": s.mediaConversation(MediaCallback),
		"chats": s.mediaConversation(MediaChat), "emails": s.mediaConversation(MediaEmail),
		"messages": s.mediaConversation(MediaMessage),
	}
	bySub := map[string]http.HandlerFunc{"recordingmetadata": s.recordingMetadata, "summaries": s.summaries}
	// /api/v2/conversations/{id}/recordings/{recordingId} overlaps
	// chats/{id}/messages and emails/{id}/messages: dispatch by hand too.
	handle("GET /api/v2/conversations/{a}/{b}/{c}", true, func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("b") == "recordings" {
			r.SetPathValue("id", r.PathValue("a"))
			r.SetPathValue("rid", r.PathValue("c"))
			s.recording(w, r)
			return
		}
		apiError(w, http.StatusNotFound, "not.found", "The requested operation GET "+r.URL.Path+" is not emulated.")
	})
	// The pre-signed recording downloads (S3 in Genesys Cloud): no OAuth,
	// but faults and latency apply.
	handle("GET /media/recordings/{file}", false, s.recordingMedia)
	handle("GET /api/v2/conversations/{a}/{b}", true, func(w http.ResponseWriter, r *http.Request) {
		a, b := r.PathValue("a"), r.PathValue("b")
		if h, ok := byMedia[a]; ok {
			r.SetPathValue("id", b)
			h(w, r)
			return
		}
		if h, ok := bySub[b]; ok {
			r.SetPathValue("id", a)
			h(w, r)
			return
		}
		apiError(w, http.StatusNotFound, "not.found", "The requested operation GET "+r.URL.Path+" is not emulated.")
	})
	handle("GET /api/v2/conversations/emails/{id}/messages", true, s.emailMessages)
	handle("GET /api/v2/conversations/emails/{id}/messages/{mid}", true, s.emailMessage)
	handle("GET /api/v2/conversations/chats/{id}/messages", true, s.chatMessages)
	handle("POST /api/v2/conversations/messages/{id}/messages/bulk", true, s.messagesBulk)
	handle("GET /api/v2/analytics/conversations/{id}/details", true, s.analyticsDetails)
	handle("GET /api/v2/speechandtextanalytics/conversations/{id}/communications/{cid}/transcripturl", true, s.transcriptURL)
	mux.HandleFunc("GET /transcripts/{id}/{cid}", s.transcriptDoc)
	handle("POST /api/v2/analytics/conversations/details/query", true, s.detailsQueryHandler)
	handle("POST /api/v2/notifications/channels", true, s.createChannel)
	handle("GET /api/v2/notifications/channels", true, s.listChannels)
	handle("HEAD /api/v2/notifications/channels/{id}", true, s.headChannel)
	handle("GET /api/v2/notifications/channels/{id}/subscriptions", true, s.getSubscriptions)
	handle("PUT /api/v2/notifications/channels/{id}/subscriptions", true, s.setSubscriptions(true))
	handle("POST /api/v2/notifications/channels/{id}/subscriptions", true, s.setSubscriptions(false))
	handle("DELETE /api/v2/notifications/channels/{id}/subscriptions", true, s.deleteSubscriptions)
	mux.HandleFunc("GET /channels/{id}", s.socket)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "not.found", "The requested operation "+r.Method+" "+r.URL.Path+" is not emulated.")
	})
	return mux
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

// token implements POST /oauth/token (client credentials grant).
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	oauthErr := func(status int, code, desc string) {
		s.mu.Lock()
		s.stats.TokensRejected++
		s.mu.Unlock()
		writeJSON(w, status, map[string]string{"error": code, "description": desc, "error_description": desc})
	}
	if err := r.ParseForm(); err != nil {
		oauthErr(http.StatusBadRequest, "invalid_request", "malformed form body")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		oauthErr(http.StatusBadRequest, "unsupported_grant_type", "grant_type must be client_credentials")
		return
	}
	if id != s.ClientID || secret != s.ClientSecret {
		oauthErr(http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	tok := base64.RawURLEncoding.EncodeToString([]byte(randHex(24)))
	ttl := s.opts.tokenTTL
	s.mu.Lock()
	s.tokens[tok] = time.Now().Add(ttl)
	s.issued = append(s.issued, tok)
	s.stats.TokensIssued++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "bearer", "expires_in": int(ttl / time.Second)})
}

func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("malformed JSON body: %w", err)
	}
	return nil
}
