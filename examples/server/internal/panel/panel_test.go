package panel

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cxplay/ctikit/cti"
)

var dir = cti.DirectoryFunc(func(_ context.Context, leg *cti.AgentLeg) (cti.Agent, error) {
	switch leg.UserID {
	case "u1":
		return cti.Agent{ID: 101, Email: "u1@example.com"}, nil
	case "u2":
		return cti.Agent{ID: 102, Email: "u2@example.com"}, nil
	}
	return cti.Agent{}, cti.ErrUnknownAgent
})

type fakeEngine struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (f *fakeEngine) Choose(_ context.Context, conv, leg string, pick *cti.Record) (cti.PopResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	what := "create"
	if pick != nil {
		what = pick.Ref()
	}
	f.calls = append(f.calls, conv+"/"+leg+":"+what)
	if f.err != nil {
		return cti.PopResult{}, f.err
	}
	if pick == nil {
		return cti.PopResult{Shown: &cti.Record{Kind: cti.KindUser, ID: 999}}, nil
	}
	return cti.PopResult{Shown: pick}, nil
}

func newPanel(t *testing.T) (*Panel, *fakeEngine) {
	eng := &fakeEngine{}
	p, err := New(Options{Directory: dir, Chooser: eng})
	require.NoError(t, err)
	return p, eng
}

func conv(id string) *cti.Conversation {
	return &cti.Conversation{ID: id, Media: cti.MediaMessage, Channel: cti.ChannelWhatsApp, Direction: cti.Inbound,
		Customer: cti.Customer{Phone: "+14155550199"}, Queue: cti.Ref{ID: "q", Name: "Support"}}
}

func offer(t *testing.T, p *Panel) {
	h := p.Hooks()
	h.Event(cti.Event{Type: cti.EventOffered, ConversationID: "c1", Rule: "r", Leg: cti.AgentLeg{ID: "l1", UserID: "u1"}, Conversation: conv("c1")})
	require.NoError(t, p.Offer(context.Background(), cti.Choice{
		ConversationID: "c1", LegID: "l1", Rule: "r", Agent: cti.Agent{ID: 101}, Leg: cti.AgentLeg{ID: "l1", UserID: "u1"},
		Candidates: []cti.Record{{Kind: cti.KindUser, ID: 2, Name: "Bob"}, {Kind: cti.KindUser, ID: 3, Name: "Carol"}}, CanCreate: true,
	}))
	h.Event(cti.Event{Type: cti.EventOffered, ConversationID: "c2", Rule: "r", Leg: cti.AgentLeg{ID: "l1", UserID: "u2"}, Conversation: conv("c2")})
}

func TestPanelShowsEachAgentOnlyTheirOwn(t *testing.T) {
	p, eng := newPanel(t)
	offer(t, p)
	mine := p.Items(101)
	require.Len(t, mine, 1)
	it := mine[0]
	assert.Equal(t, "whatsapp", it.Kind)
	assert.Equal(t, "Support", it.Queue)
	assert.True(t, it.Choosing)
	assert.Len(t, it.Candidates, 2)
	require.Len(t, p.Items(102), 1)
	assert.Equal(t, "c2", p.Items(102)[0].ConversationID)

	_, err := p.Choose(context.Background(), 102, "c1", "l1", &cti.Record{Kind: cti.KindUser, ID: 2})
	assert.ErrorIs(t, err, ErrForbidden, "another agent cannot answer my choice")
	_, err = p.Choose(context.Background(), 101, "c1", "l1", &cti.Record{Kind: cti.KindUser, ID: 77})
	assert.ErrorIs(t, err, cti.ErrInvalid)
	res, err := p.Choose(context.Background(), 101, "c1", "l1", &cti.Record{Kind: cti.KindUser, ID: 3})
	require.NoError(t, err)
	assert.Equal(t, int64(3), res.Shown.ID)
	assert.Equal(t, []string{"c1/l1:user/3"}, eng.calls)

	p.Hooks().Pop(cti.PopNotice{ConversationID: "c1", LegID: "l1", UserID: "u1", Agent: cti.Agent{ID: 101},
		Decision: cti.Decision{Action: cti.ActionShow}, Result: cti.PopResult{Shown: &cti.Record{Kind: cti.KindUser, ID: 3}}})
	p.Hooks().Sync(cti.SyncNotice{ConversationID: "c1", LegID: "l1", State: cti.SyncDone})
	it = p.Items(101)[0]
	assert.False(t, it.Choosing)
	assert.Equal(t, int64(3), it.Popped.ID)
	assert.Equal(t, "done", it.Sync)
}

// The engine's hooks and an agent's choice arrive on different goroutines
// (go test -race).
func TestPanelChooseWhileEventsArrive(t *testing.T) {
	p, _ := newPanel(t)
	offer(t, p)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 1000 {
			p.Hooks().Event(cti.Event{Type: cti.EventConnected, ConversationID: "c1", Leg: cti.AgentLeg{ID: "l1", UserID: "u1"}, Conversation: conv("c1")})
		}
	})
	wg.Go(func() {
		for range 1000 {
			_, err := p.Choose(context.Background(), 102, "c1", "l1", nil)
			if !errors.Is(err, ErrForbidden) {
				t.Errorf("agent 102 answered agent 101's choice: %v", err)
				return
			}
		}
	})
	wg.Wait()
}

func TestPanelUnknownAgentIsNotShown(t *testing.T) {
	p, _ := newPanel(t)
	p.Hooks().Event(cti.Event{Type: cti.EventOffered, ConversationID: "c", Leg: cti.AgentLeg{ID: "l", UserID: "ghost"}, Conversation: conv("c")})
	assert.Empty(t, p.Agents())
}

func TestPanelPrunesFinished(t *testing.T) {
	p, err := New(Options{Directory: dir, Keep: time.Millisecond, MaxItems: 3})
	require.NoError(t, err)
	h := p.Hooks()
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		h.Event(cti.Event{Type: cti.EventOffered, ConversationID: id, Leg: cti.AgentLeg{ID: "l", UserID: "u1"}, Conversation: conv(id)})
	}
	assert.Len(t, p.Items(101), 3, "bounded per agent")
	h.Sync(cti.SyncNotice{ConversationID: "e", LegID: "l", State: cti.SyncDone})
	time.Sleep(5 * time.Millisecond)
	h.Event(cti.Event{Type: cti.EventConnected, ConversationID: "d", Leg: cti.AgentLeg{ID: "l", UserID: "u1"}, Conversation: conv("d")})
	for _, it := range p.Items(101) {
		assert.NotEqual(t, "e", it.ConversationID, "finished items go after Keep")
	}
}

func loopbackReq(method, target string, body string) *http.Request {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.RemoteAddr = "127.0.0.1:5555"
	r.Host = "127.0.0.1:8080"
	return r
}

func TestDemoHandlerLoopbackOnly(t *testing.T) {
	p, eng := newPanel(t)
	offer(t, p)
	h := p.Handler(Loopback{}, true)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, loopbackReq("GET", "/api/items?agent=101", ""))
	require.Equal(t, 200, w.Code, w.Body.String())
	var items []Item
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &items))
	require.Len(t, items, 1)

	remote := loopbackReq("GET", "/api/items?agent=101", "")
	remote.RemoteAddr = "203.0.113.9:4444"
	w = httptest.NewRecorder()
	h.ServeHTTP(w, remote)
	assert.Equal(t, 401, w.Code, "demo mode: loopback only")

	rebind := loopbackReq("GET", "/api/items?agent=101", "")
	rebind.Host = "evil.example:8080"
	w = httptest.NewRecorder()
	h.ServeHTTP(w, rebind)
	assert.Equal(t, 401, w.Code, "a rebound DNS name is refused")

	w = httptest.NewRecorder()
	h.ServeHTTP(w, loopbackReq("POST", "/api/choose?agent=101", `{"conversationId":"c1","legId":"l1","record":{"kind":"user","id":2}}`))
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Equal(t, []string{"c1/l1:user/2"}, eng.calls)

	w = httptest.NewRecorder()
	h.ServeHTTP(w, loopbackReq("POST", "/api/choose?agent=102", `{"conversationId":"c1","legId":"l1","record":null}`))
	assert.Equal(t, 403, w.Code)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, loopbackReq("POST", "/api/choose?agent=101", `{"conversationId":"c1","bogus":1}`))
	assert.Equal(t, 409, w.Code)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, loopbackReq("POST", "/api/choose?agent=101", strings.Repeat("x", 20000)))
	assert.Equal(t, 409, w.Code, "oversized bodies are refused")

	eng.err = &cti.UpstreamError{Service: "zendesk", Status: 503}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, loopbackReq("POST", "/api/choose?agent=101", `{"conversationId":"c1","legId":"l1","record":null}`))
	assert.Equal(t, 502, w.Code)

	w = httptest.NewRecorder()
	h.ServeHTTP(w, loopbackReq("GET", "/?agent=101", ""))
	require.Equal(t, 200, w.Code)
	assert.Contains(t, w.Body.String(), "agent-picker")
	assert.Contains(t, w.Header().Get("Content-Security-Policy"), "frame-ancestors 'self'")
}

func TestStreamSendsSnapshotThenUpdates(t *testing.T) {
	p, _ := newPanel(t)
	offer(t, p)
	srv := httptest.NewServer(p.Handler(Loopback{}, true))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/stream?agent=101", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	events := make(chan string, 10)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if l := sc.Text(); strings.HasPrefix(l, "event: ") || strings.HasPrefix(l, "data: ") {
				events <- l
			}
		}
		close(events)
	}()
	next := func() string {
		select {
		case e := <-events:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
			return ""
		}
	}
	assert.Equal(t, "event: snapshot", next())
	assert.Contains(t, next(), `"conversationId":"c1"`)
	p.Hooks().Event(cti.Event{Type: cti.EventConnected, ConversationID: "c1", Leg: cti.AgentLeg{ID: "l1", UserID: "u1"}, Conversation: conv("c1")})
	assert.Equal(t, "event: item", next())
	assert.Contains(t, next(), `"state":"connected"`)
	// Another agent's update never reaches this stream.
	p.Hooks().Event(cti.Event{Type: cti.EventConnected, ConversationID: "c2", Leg: cti.AgentLeg{ID: "l1", UserID: "u2"}, Conversation: conv("c2")})
	p.Hooks().Sync(cti.SyncNotice{ConversationID: "c1", LegID: "l1", State: cti.SyncQueued})
	assert.Equal(t, "event: item", next())
	d := next()
	assert.Contains(t, d, `"sync":"queued"`)
	assert.NotContains(t, d, "c2")
}

// --- ZAF signed URLs ----------------------------------------------------------

const aud = "https://acme.zendesk.com/api/v2/apps/installations/360001.json"

func zafToken(t *testing.T, key *rsa.PrivateKey, method jwt.SigningMethod, claims jwt.MapClaims) string {
	t.Helper()
	var signKey any = key
	if method == jwt.SigningMethodHS256 {
		signKey = []byte("not-the-key")
	}
	s, err := jwt.NewWithClaims(method, claims).SignedString(signKey)
	require.NoError(t, err)
	return s
}

func TestZAFSignedURL(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	z, err := NewZAF(&key.PublicKey, []string{aud}, "acme.zendesk.com")
	require.NoError(t, err)
	p, _ := newPanel(t)
	offer(t, p)
	h := p.Handler(z, false)
	now := time.Now()
	good := jwt.MapClaims{"iss": "acme.zendesk.com", "aud": aud, "sub": "101", "exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix()}

	post := func(tok string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/", strings.NewReader(url.Values{"token": {tok}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = "203.0.113.9:4444"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := post(zafToken(t, key, jwt.SigningMethodRS256, good))
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Contains(t, w.Header().Get("Content-Security-Policy"), "frame-ancestors https://*.zendesk.com")
	m := regexp.MustCompile(`session: "([^"]+)"`).FindStringSubmatch(w.Body.String())
	require.Len(t, m, 2, "the page carries a session token")
	session := m[1]

	api := func(path, sess string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "203.0.113.9:4444"
		if sess != "" {
			r.Header.Set("Authorization", "Bearer "+sess)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w = api("/api/items", session)
	require.Equal(t, 200, w.Code)
	assert.Contains(t, w.Body.String(), `"conversationId":"c1"`)
	assert.NotContains(t, w.Body.String(), `"c2"`, "only the agent's own conversations")
	w = api("/api/items?agent=102", session)
	assert.NotContains(t, w.Body.String(), `"c2"`, "the agent comes from the session, not the query")
	assert.Equal(t, 401, api("/api/items", "").Code)
	assert.Equal(t, 401, api("/api/items", session[:len(session)-2]+"xx").Code, "tampered session")
	assert.Equal(t, 401, api("/api/items", z.Session(101)+"x").Code)
	assert.Equal(t, 404, api("/api/agents", session).Code, "no agent list outside the demo")

	bad := map[string]string{}
	c := func(f func(jwt.MapClaims)) jwt.MapClaims {
		m := jwt.MapClaims{}
		for k, v := range good {
			m[k] = v
		}
		f(m)
		return m
	}
	bad["expired"] = zafToken(t, key, jwt.SigningMethodRS256, c(func(m jwt.MapClaims) { m["exp"] = now.Add(-time.Hour).Unix() }))
	bad["no expiry"] = zafToken(t, key, jwt.SigningMethodRS256, c(func(m jwt.MapClaims) { delete(m, "exp") }))
	bad["other installation"] = zafToken(t, key, jwt.SigningMethodRS256, c(func(m jwt.MapClaims) { m["aud"] = "https://evil.zendesk.com/api/v2/apps/installations/1.json" }))
	bad["other account"] = zafToken(t, key, jwt.SigningMethodRS256, c(func(m jwt.MapClaims) { m["iss"] = "evil.zendesk.com" }))
	bad["no agent"] = zafToken(t, key, jwt.SigningMethodRS256, c(func(m jwt.MapClaims) { delete(m, "sub") }))
	bad["HS256 downgrade"] = zafToken(t, key, jwt.SigningMethodHS256, good)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	bad["other key"] = zafToken(t, other, jwt.SigningMethodRS256, good)
	bad["garbage"] = "not.a.jwt"
	bad["empty"] = ""
	for name, tok := range bad {
		assert.Equal(t, 401, post(tok).Code, name)
	}
	r := httptest.NewRequest("GET", "/", nil)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, 401, w.Code, "GET without a signed token")

	// user.id is accepted when sub is absent.
	withUser := c(func(m jwt.MapClaims) {
		delete(m, "sub")
		m["user"] = map[string]any{"id": 101, "email": "u1@example.com"}
	})
	assert.Equal(t, 200, post(zafToken(t, key, jwt.SigningMethodRS256, withUser)).Code)

	z.Now = func() time.Time { return now.Add(13 * time.Hour) }
	assert.Equal(t, 401, api("/api/items", session).Code, "sessions expire")
	_, err = z.Verify(zafToken(t, key, jwt.SigningMethodRS256, good))
	assert.True(t, errors.Is(err, ErrUnauthorized))
}

// A session in the URL is taken for a GET (the live stream: EventSource
// cannot set headers), not for a request that acts: a POST carries it in
// the Authorization header.
func TestZAFSessionInTheURLOnlyForAGet(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	z, err := NewZAF(&key.PublicKey, []string{aud}, "acme.zendesk.com")
	require.NoError(t, err)
	s := url.QueryEscape(z.Session(101))
	agent, err := z.Authenticate(httptest.NewRequest("GET", "/api/stream?session="+s, nil))
	require.NoError(t, err)
	assert.Equal(t, int64(101), agent)
	_, err = z.Authenticate(httptest.NewRequest("POST", "/api/choose?session="+s, strings.NewReader("{}")))
	assert.ErrorIs(t, err, ErrUnauthorized, "a POST with the session in its URL")
	r := httptest.NewRequest("POST", "/api/choose", strings.NewReader("{}"))
	r.Header.Set("Authorization", "Bearer "+z.Session(101))
	agent, err = z.Authenticate(r)
	require.NoError(t, err)
	assert.Equal(t, int64(101), agent)
}

// With a state directory, the session key is kept there: a panel opened
// before a restart keeps working after it.
func TestZAFSessionsSurviveRestart(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	server := func(dir string) *ZAF {
		t.Helper()
		z, err := NewZAF(&key.PublicKey, []string{aud}, "acme.zendesk.com")
		require.NoError(t, err)
		if dir != "" {
			require.NoError(t, z.KeepSessions(dir))
		}
		return z
	}
	authenticate := func(z *ZAF, session string) (int64, error) {
		return z.Authenticate(httptest.NewRequest("GET", "/api/stream?session="+url.QueryEscape(session), nil))
	}
	dir := filepath.Join(t.TempDir(), "state")
	session := server(dir).Session(101)
	st, err := os.Stat(filepath.Join(dir, SessionKeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the key file is private")
	assert.Equal(t, int64(32), st.Size())

	agent, err := authenticate(server(dir), session)
	require.NoError(t, err, "the restarted server reads the same key")
	assert.Equal(t, int64(101), agent)
	_, err = authenticate(server(t.TempDir()), session)
	assert.ErrorIs(t, err, ErrUnauthorized, "another state directory has another key")
	_, err = authenticate(server(""), session)
	assert.ErrorIs(t, err, ErrUnauthorized, "without a state directory the key is random")

	z, err := NewZAF(&key.PublicKey, []string{aud}, "acme.zendesk.com")
	require.NoError(t, err)
	bad := t.TempDir()
	path := filepath.Join(bad, SessionKeyFile)
	require.NoError(t, os.WriteFile(path, []byte("hunter2-not-a-key"), 0o600))
	err = z.KeepSessions(bad)
	require.Error(t, err, "a key of the wrong size")
	assert.Contains(t, err.Error(), path)
	assert.NotContains(t, err.Error(), "hunter2")
	_, err = authenticate(z, session)
	assert.ErrorIs(t, err, ErrUnauthorized, "a refused key file is not used")

	unreadable := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(unreadable, SessionKeyFile), 0o700))
	err = z.KeepSessions(unreadable)
	require.Error(t, err, "an unreadable key file")
	assert.Contains(t, err.Error(), filepath.Join(unreadable, SessionKeyFile))
}
