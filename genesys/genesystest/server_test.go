package genesystest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// api is a tiny raw client: these tests speak the wire protocol directly.
type api struct {
	t   *testing.T
	srv *gt.Server
	tok string
}

func newAPI(t *testing.T, opts ...gt.Option) *api {
	t.Helper()
	srv := gt.NewServer(opts...)
	t.Cleanup(srv.Close)
	a := &api{t: t, srv: srv}
	status, body := a.form("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, srv.ClientID, srv.ClientSecret)
	if status != 200 {
		t.Fatalf("token: %d %v", status, body)
	}
	a.tok = body["access_token"].(string)
	if body["token_type"] != "bearer" || body["expires_in"].(float64) < 3600 {
		t.Errorf("token response = %v", body)
	}
	return a
}

func (a *api) form(path string, v url.Values, id, secret string) (int, map[string]any) {
	req, _ := http.NewRequest("POST", a.srv.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

func (a *api) do(method, path string, body any) (int, any) {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, a.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+a.tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v any
	_ = json.NewDecoder(resp.Body).Decode(&v)
	return resp.StatusCode, v
}

func (a *api) channel() (id, uri string) {
	st, v := a.do("POST", "/api/v2/notifications/channels", nil)
	if st != 200 {
		a.t.Fatalf("create channel: %d %v", st, v)
	}
	m := v.(map[string]any)
	return m["id"].(string), m["connectUri"].(string)
}

func TestOAuth(t *testing.T) {
	a := newAPI(t)
	st, body := a.form("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, a.srv.ClientID, "nope")
	if st != 401 || body["error"] != "invalid_client" {
		t.Errorf("bad secret: %d %v", st, body)
	}
	st, body = a.form("/oauth/token", url.Values{"grant_type": {"password"}}, a.srv.ClientID, a.srv.ClientSecret)
	if st != 400 || body["error"] != "unsupported_grant_type" {
		t.Errorf("bad grant: %d %v", st, body)
	}
	saved := a.tok
	a.tok = "forged"
	if st, _ := a.do("GET", "/api/v2/users/"+gt.AgentAlice, nil); st != 401 {
		t.Errorf("forged token: %d", st)
	}
	a.tok = saved
	if st, _ := a.do("GET", "/api/v2/users/"+gt.AgentAlice, nil); st != 200 {
		t.Errorf("valid token: %d", st)
	}
	a.srv.RevokeTokens()
	if st, _ := a.do("GET", "/api/v2/users/"+gt.AgentAlice, nil); st != 401 {
		t.Errorf("revoked token: %d", st)
	}
}

func TestChannelLimits(t *testing.T) {
	a := newAPI(t)
	first, _ := a.channel()
	var ids []string
	for range gt.MaxChannels - 1 {
		id, _ := a.channel()
		ids = append(ids, id)
	}
	// Connect the first one: the 21st must evict the oldest unconnected.
	ctx := context.Background()
	ws, _, err := websocket.Dial(ctx, strings.Replace(a.srv.URL, "http", "ws", 1)+"/channels/"+first, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	deadline := time.Now().Add(5 * time.Second)
	for a.srv.ConnectedSockets() != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	a.channel()
	chans := a.srv.Channels()
	if len(chans) != gt.MaxChannels || chans[0] != first || contains(chans, ids[0]) {
		t.Errorf("after a 21st channel: %d channels, first kept %v, oldest unconnected gone %v", len(chans), chans[0] == first, !contains(chans, ids[0]))
	}
	if a.srv.Stats().ChannelsEvicted != 1 {
		t.Errorf("stats = %+v", a.srv.Stats())
	}
	// 1,000 topics per channel.
	var topics []map[string]string
	for i := range gt.MaxTopicsPerChannel + 1 {
		q := fmt.Sprintf("q-%04d", i)
		a.srv.Load(gt.Seed{Queues: []gt.Queue{{ID: q, Name: q}}})
		topics = append(topics, map[string]string{"id": "v2.routing.queues." + q + ".conversations"})
	}
	if st, v := a.do("PUT", "/api/v2/notifications/channels/"+first+"/subscriptions", topics); st != 400 {
		t.Errorf("1,001 topics: %d %v", st, v)
	}
	if st, _ := a.do("PUT", "/api/v2/notifications/channels/"+first+"/subscriptions", topics[:1000]); st != 200 {
		t.Errorf("1,000 topics: %d", st)
	}
	if st, _ := a.do("PUT", "/api/v2/notifications/channels/"+first+"/subscriptions", []map[string]string{{"id": "v2.users.nobody.conversations"}}); st != 400 {
		t.Errorf("unknown user topic: %d", st)
	}
	if st, _ := a.do("HEAD", "/api/v2/notifications/channels/"+ids[0], nil); st != 404 {
		t.Errorf("HEAD evicted channel: %d", st)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// readFrames collects frames from a socket until it closes.
func readFrames(ctx context.Context, ws *websocket.Conn) (<-chan []byte, *sync.WaitGroup) {
	ch := make(chan []byte, 100)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ch)
		for {
			_, b, err := ws.Read(ctx)
			if err != nil {
				return
			}
			ch <- b
		}
	})
	return ch, &wg
}

func next(t *testing.T, ch <-chan []byte, pred func(string) bool) string {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case b, ok := <-ch:
			if !ok {
				t.Fatal("socket closed")
			}
			if pred(string(b)) {
				return string(b)
			}
		case <-timeout:
			t.Fatal("no matching frame")
		}
	}
}

func TestSocket(t *testing.T) {
	a := newAPI(t, gt.WithHeartbeat(30*time.Millisecond))
	id, uri := a.channel()
	if !strings.HasPrefix(uri, "ws://127.0.0.1:") || !strings.HasSuffix(uri, "/channels/"+id) {
		t.Fatalf("connectUri = %s", uri)
	}
	topic := "v2.routing.queues." + gt.QueueSupport + ".conversations"
	if st, _ := a.do("PUT", "/api/v2/notifications/channels/"+id+"/subscriptions", []map[string]string{{"id": topic}}); st != 200 {
		t.Fatal(st)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws, _, err := websocket.Dial(ctx, uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	frames, wg := readFrames(ctx, ws)
	next(t, frames, func(s string) bool { return strings.Contains(s, "WebSocket Heartbeat") })
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"message":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	next(t, frames, func(s string) bool { return strings.Contains(s, `"pong"`) })

	for !a.srv.Subscribed(topic) {
		time.Sleep(time.Millisecond)
	}
	conv := a.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550100", Queue: gt.QueueSupport})
	f := next(t, frames, func(s string) bool { return strings.Contains(s, conv.ID) })
	var env struct {
		TopicName string          `json:"topicName"`
		Version   string          `json:"version"`
		EventBody json.RawMessage `json:"eventBody"`
		Metadata  struct {
			CorrelationID string `json:"CorrelationId"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(f), &env); err != nil || env.TopicName != topic || env.Version != "2" || env.Metadata.CorrelationID == "" ||
		!bytes.Equal(env.EventBody, conv.Body()) {
		t.Errorf("frame = %s", f)
	}
	// Faults on the socket.
	a.srv.SendRaw([]byte("garbage"))
	next(t, frames, func(s string) bool { return s == "garbage" })
	a.srv.SocketClosing(50 * time.Millisecond)
	next(t, frames, func(s string) bool { return strings.Contains(s, "v2.system.socket_closing") })
	for range frames {
	} // closed after the grace
	wg.Wait()

	// Reconnecting to the same channel works; a second connection replaces it.
	ws2, _, err := websocket.Dial(ctx, uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.CloseNow()
	f2, wg2 := readFrames(ctx, ws2)
	next(t, f2, func(s string) bool { return strings.Contains(s, "Heartbeat") })
	ws3, _, err := websocket.Dial(ctx, uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws3.CloseNow()
	for range f2 {
	}
	wg2.Wait()
	a.srv.DropSockets()
	if _, _, err := ws3.Read(ctx); err == nil {
		t.Error("read after DropSockets succeeded")
	}
}

// TestPlay runs the traffic simulator briefly and checks that it produces
// finished conversations of several kinds, then stops cleanly.
func TestPlay(t *testing.T) {
	a := newAPI(t)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var convs []*gt.Conversation
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.srv.Play(ctx, gt.Traffic{Every: 5 * time.Millisecond, Pace: 2 * time.Millisecond, Max: 8, Seed: 42,
			Observe: func(c *gt.Conversation) { mu.Lock(); convs = append(convs, c); mu.Unlock() }})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(convs)
		mu.Unlock()
		if n >= 40 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	media := map[string]bool{}
	ended := 0
	for _, c := range convs {
		st, v := a.do("GET", "/api/v2/conversations/"+c.ID, nil)
		if st != 200 {
			t.Fatalf("GET conversation: %d", st)
		}
		m := v.(map[string]any)
		if m["endTime"] != nil {
			ended++
		}
		for _, p := range m["participants"].([]any) {
			for _, k := range []string{"calls", "callbacks", "chats", "emails", "messages", "socialExpressions"} {
				if p.(map[string]any)[k] != nil {
					media[k] = true
				}
			}
		}
	}
	if len(convs) < 40 || ended < 20 || len(media) < 5 {
		t.Errorf("played %d conversations, %d ended, media %v", len(convs), ended, media)
	}
}

// TestHistoryBounded: a conversation keeps its last 16 published states
// (for Republish and PublishStale), not every one.
func TestHistoryBounded(t *testing.T) {
	srv := gt.NewServer()
	defer srv.Close()
	cv := srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550100"})
	leg := cv.Alert(gt.AgentAlice)
	cv.Connect(leg)
	for range 20 { // two published states each
		leg = cv.TransferTo(leg, gt.AgentBob)
		cv.Connect(leg)
	}
	if !strings.Contains(string(cv.Body()), leg) {
		t.Error("Body is not the latest state")
	}
	cv.PublishStale(15) // the oldest kept
	defer func() {
		if recover() == nil {
			t.Error("PublishStale(16) did not panic: more than 16 states kept")
		}
	}()
	cv.PublishStale(16)
}
