package panel

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// ErrUnauthorized: the request is not proven to come from Zendesk (or, in
// demo mode, from this machine).
var ErrUnauthorized = errors.New("panel: unauthorized")

// Authenticator proves who the agent behind a panel request is.
type Authenticator interface {
	// Authenticate returns the Zendesk agent id of the request's agent.
	Authenticate(r *http.Request) (int64, error)
	// Begin handles the first page load: for the Zendesk app it verifies
	// the signed-URL JWT Zendesk POSTs and returns a session token for
	// later requests. It returns the agent and the session ("" when none).
	Begin(r *http.Request) (agent int64, session string, err error)
}

// Loopback authenticates demo requests: only from this machine (the
// connection and the Host header both loopback, against DNS rebinding); the
// agent is picked with ?agent=ID.
type Loopback struct{}

// Authenticate implements Authenticator.
func (Loopback) Authenticate(r *http.Request) (int64, error) {
	if !IsLoopback(r) {
		return 0, fmt.Errorf("%w: demo mode accepts only requests from this machine", ErrUnauthorized)
	}
	v := r.URL.Query().Get("agent")
	if v == "" {
		return 0, nil // no agent picked yet
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: agent must be a Zendesk user id", ErrUnauthorized)
	}
	return id, nil
}

// Begin implements Authenticator.
func (l Loopback) Begin(r *http.Request) (int64, string, error) {
	id, err := l.Authenticate(r)
	return id, "", err
}

// IsLoopback reports whether r came from, and was addressed to, this machine.
func IsLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return false
	}
	h := r.Host
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	hip := net.ParseIP(h)
	return hip != nil && hip.IsLoopback()
}

// ZAF authenticates the agent panel inside Zendesk. With signed URLs on in
// the app's manifest, Zendesk POSTs a JWT (form field "token", RS256,
// signed with the app's key) to the panel URL when it loads the iframe. ZAF
// verifies it (signature with the app's public key, expiry, audience,
// issuer) and hands the page a short-lived session token, an HMAC over the
// agent id and an expiry, which the page sends with every API call.
type ZAF struct {
	// PublicKey verifies the JWT (GET /api/v2/apps/{app_id}/public_key.pem).
	PublicKey *rsa.PublicKey
	// Audiences accepted in "aud": the app installation URL,
	// https://SUBDOMAIN.zendesk.com/api/v2/apps/installations/ID.json.
	Audiences []string
	// Issuer, when set, must equal "iss" (the account host, SUBDOMAIN.zendesk.com).
	Issuer string
	// SessionTTL is the life of a session token (default 12h).
	SessionTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time

	secret []byte
}

// NewZAF returns a ZAF authenticator with a fresh random session key:
// its sessions end with the process, unless KeepSessions keeps the key.
func NewZAF(pub *rsa.PublicKey, audiences []string, issuer string) (*ZAF, error) {
	if pub == nil {
		return nil, errors.New("panel: the Zendesk app public key is required")
	}
	if len(audiences) == 0 {
		return nil, errors.New("panel: at least one JWT audience (the app installation URL) is required")
	}
	secret := make([]byte, sessionKeySize)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	return &ZAF{PublicKey: pub, Audiences: audiences, Issuer: issuer, secret: secret}, nil
}

// SessionKeyFile is the file, in the server's state directory, that keeps
// the key signing the panel sessions.
const SessionKeyFile = "panel-session.key"

const sessionKeySize = 32

// KeepSessions makes z sign sessions with the key kept in
// dir/SessionKeyFile, created (random, mode 0600) the first time, so the
// sessions of open panels survive a restart: Zendesk posts the signed token
// only when it loads the app. Call it before serving, with dir not shared by
// another running server.
func (z *ZAF) KeepSessions(dir string) error {
	path := filepath.Join(dir, SessionKeyFile)
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = newSessionKey(dir)
	}
	if err != nil {
		return fmt.Errorf("panel session key: %w", err)
	}
	if len(key) != sessionKeySize {
		return fmt.Errorf("panel session key %s: %d bytes, want %d: delete the file to make a new key (open panels then need reloading)", path, len(key), sessionKeySize)
	}
	z.secret = key
	return nil
}

// newSessionKey writes a random session key to dir/SessionKeyFile, whole
// or not at all.
func newSessionKey(dir string) ([]byte, error) {
	key := make([]byte, sessionKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, SessionKeyFile+".*") // mode 0600
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, SessionKeyFile))
	}
	if err != nil {
		return nil, err
	}
	return key, nil
}

func (z *ZAF) now() time.Time {
	if z.Now != nil {
		return z.Now()
	}
	return time.Now()
}

// zafClaims are the claims ctikit reads from Zendesk's app JWT.
type zafClaims struct {
	jwt.RegisteredClaims
	User *struct {
		ID    json.Number `json:"id"`
		Email string      `json:"email"`
	} `json:"user,omitempty"`
}

// Verify checks a ZAF JWT and returns the Zendesk agent id it names (the
// "sub" claim, or user.id).
func (z *ZAF) Verify(token string) (int64, error) {
	var c zafClaims
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(30 * time.Second),
		jwt.WithTimeFunc(z.now),
	}
	if z.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(z.Issuer))
	}
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return z.PublicKey, nil }, opts...)
	if err != nil {
		return 0, fmt.Errorf("%w: Zendesk app token: %v", ErrUnauthorized, err)
	}
	if !slices.ContainsFunc(c.Audience, func(a string) bool { return slices.Contains(z.Audiences, a) }) {
		return 0, fmt.Errorf("%w: Zendesk app token: audience %v is not this installation", ErrUnauthorized, []string(c.Audience))
	}
	sub := c.Subject
	if sub == "" && c.User != nil {
		sub = c.User.ID.String()
	}
	id, err := strconv.ParseInt(sub, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: Zendesk app token names no agent", ErrUnauthorized)
	}
	return id, nil
}

// Begin implements Authenticator: it verifies the JWT Zendesk POSTs.
func (z *ZAF) Begin(r *http.Request) (int64, string, error) {
	if r.Method != http.MethodPost {
		return 0, "", fmt.Errorf("%w: open the panel from the Zendesk app (signed URLs)", ErrUnauthorized)
	}
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return 0, "", fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	id, err := z.Verify(r.PostForm.Get("token"))
	if err != nil {
		return 0, "", err
	}
	return id, z.Session(id), nil
}

// Session returns a session token for an agent.
func (z *ZAF) Session(agent int64) string {
	ttl := z.SessionTTL
	if ttl == 0 {
		ttl = 12 * time.Hour
	}
	payload := strconv.FormatInt(agent, 10) + "." + strconv.FormatInt(z.now().Add(ttl).Unix(), 10)
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + z.sign(payload)
}

func (z *ZAF) sign(payload string) string {
	m := hmac.New(sha256.New, z.secret)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Authenticate implements Authenticator: a session token from the
// Authorization header (Bearer) or, on a GET, the "session" query
// parameter (for EventSource, which cannot set headers). A request that
// acts (a POST) must carry it in the header: a URL ends up in proxy and
// access logs.
func (z *ZAF) Authenticate(r *http.Request) (int64, error) {
	tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if tok == "" && r.Method == http.MethodGet {
		tok = r.URL.Query().Get("session")
	}
	enc, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return 0, fmt.Errorf("%w: no session", ErrUnauthorized)
	}
	raw, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil {
		return 0, fmt.Errorf("%w: bad session", ErrUnauthorized)
	}
	payload := string(raw)
	if !hmac.Equal([]byte(z.sign(payload)), []byte(sig)) {
		return 0, fmt.Errorf("%w: bad session", ErrUnauthorized)
	}
	a, e, _ := strings.Cut(payload, ".")
	agent, err1 := strconv.ParseInt(a, 10, 64)
	exp, err2 := strconv.ParseInt(e, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%w: bad session", ErrUnauthorized)
	}
	if z.now().Unix() > exp {
		return 0, fmt.Errorf("%w: session expired: reopen the app", ErrUnauthorized)
	}
	return agent, nil
}
