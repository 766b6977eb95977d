package genesystest

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Genesys limits the emulator enforces.
const (
	MaxChannels         = 20   // per OAuth client: a 21st evicts the oldest
	MaxTopicsPerChannel = 1000 // per channel
)

// channel is a notification channel.
type channel struct {
	id      string
	created time.Time
	expires time.Time
	topics  []string
	sock    *socket // the current connection, if any
	expired bool
	timer   *time.Timer
}

// socket is one websocket connection to a channel.
type socket struct {
	conn   *websocket.Conn
	out    chan []byte
	silent atomic.Bool
	once   sync.Once
	done   chan struct{}
}

func (k *socket) close() {
	k.once.Do(func() { close(k.done) })
}

func (ch *channel) closeSocket() {
	if ch.sock != nil {
		ch.sock.close()
		ch.sock = nil
	}
}

func (ch *channel) has(topic string) bool { return slices.Contains(ch.topics, topic) }

func (s *Server) connectURI(id string) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + "/channels/" + id
}

func channelJSON(s *Server, ch *channel) map[string]any {
	return map[string]any{"id": ch.id, "connectUri": s.connectURI(ch.id), "expires": ch.expires.UTC()}
}

// createChannel implements POST /api/v2/notifications/channels.
func (s *Server) createChannel(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	if len(s.channels) >= MaxChannels {
		// Genesys removes the channel used least recently, unconnected ones first.
		victim := ""
		for _, id := range s.chanOrder {
			if s.channels[id].sock == nil {
				victim = id
				break
			}
		}
		if victim == "" {
			victim = s.chanOrder[0]
		}
		s.removeChannel(victim)
		s.stats.ChannelsEvicted++
	}
	ch := &channel{id: newID(), created: time.Now()}
	// A channel lives 24 hours, and no longer than the token it was made with.
	ch.expires = ch.created.Add(s.opts.channelTTL)
	if exp, ok := s.tokens[tok]; ok && exp.Before(ch.expires) {
		ch.expires = exp
	}
	s.channels[ch.id] = ch
	s.chanOrder = append(s.chanOrder, ch.id)
	s.stats.ChannelsCreated++
	id := ch.id
	ch.timer = time.AfterFunc(time.Until(ch.expires), func() { s.expire(id) })
	body := channelJSON(s, ch)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, body)
}

// removeChannel drops a channel; call with s.mu held.
func (s *Server) removeChannel(id string) {
	ch := s.channels[id]
	if ch == nil {
		return
	}
	ch.closeSocket()
	if ch.timer != nil {
		ch.timer.Stop()
	}
	delete(s.channels, id)
	s.chanOrder = slices.DeleteFunc(s.chanOrder, func(x string) bool { return x == id })
}

func (s *Server) expire(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channels[id]; ch != nil && !s.closed {
		s.removeChannel(id)
	}
}

// ExpireChannels makes every channel expire now, as when its 24 hours or
// its token run out: sockets close, HEAD answers 404, subscriptions are gone.
func (s *Server) ExpireChannels() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range slices.Clone(s.chanOrder) {
		s.removeChannel(id)
	}
}

// Channels returns the ids of the live channels, oldest first.
func (s *Server) Channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.chanOrder)
}

// Topics returns the topics subscribed on a channel.
func (s *Server) Topics(channelID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channels[channelID]; ch != nil {
		return slices.Clone(ch.topics)
	}
	return nil
}

// ConnectedSockets counts the channels with a live websocket.
func (s *Server) ConnectedSockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ch := range s.channels {
		if ch.sock != nil && !ch.sock.silent.Load() {
			n++
		}
	}
	return n
}

// Subscribed reports whether a live (connected, not silenced) channel
// carries topic.
func (s *Server) Subscribed(topic string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.channels {
		if ch.sock != nil && !ch.sock.silent.Load() && ch.has(topic) {
			return true
		}
	}
	return false
}

func (s *Server) listChannels(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	ents := []any{}
	for _, id := range s.chanOrder {
		ents = append(ents, channelJSON(s, s.channels[id]))
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"entities": ents})
}

func (s *Server) headChannel(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	_, ok := s.channels[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func topicsJSON(ts []string) map[string]any {
	ents := make([]any, 0, len(ts))
	for _, t := range ts {
		ents = append(ents, map[string]any{"id": t, "state": "Permitted", "selfUri": "/api/v2/notifications/availabletopics"})
	}
	return map[string]any{"entities": ents}
}

func (s *Server) getSubscriptions(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ch := s.channels[r.PathValue("id")]
	var ts []string
	if ch != nil {
		ts = slices.Clone(ch.topics)
	}
	s.mu.Unlock()
	if ch == nil {
		apiError(w, http.StatusNotFound, "not.found", "channel not found")
		return
	}
	writeJSON(w, http.StatusOK, topicsJSON(ts))
}

// validTopic accepts the topics ctikit uses (and their system relatives).
func (s *Server) validTopic(t string) bool {
	rest, ok := strings.CutSuffix(t, ".conversations")
	if !ok {
		return false
	}
	if id, ok := strings.CutPrefix(rest, "v2.users."); ok {
		_, known := s.users[id]
		return known
	}
	if id, ok := strings.CutPrefix(rest, "v2.routing.queues."); ok {
		_, known := s.queues[id]
		return known
	}
	return false
}

func (s *Server) setSubscriptions(replace bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body []struct {
			ID string `json:"id"`
		}
		if err := readJSON(r, &body); err != nil {
			apiError(w, http.StatusBadRequest, "bad.request", err.Error())
			return
		}
		s.mu.Lock()
		ch := s.channels[r.PathValue("id")]
		if ch == nil {
			s.mu.Unlock()
			apiError(w, http.StatusNotFound, "not.found", "channel not found")
			return
		}
		var ts []string
		if !replace {
			ts = slices.Clone(ch.topics)
		}
		for _, b := range body {
			if !s.validTopic(b.ID) {
				s.mu.Unlock()
				apiError(w, http.StatusBadRequest, "notification.invalid.topic", "Invalid topic: "+b.ID)
				return
			}
			if !slices.Contains(ts, b.ID) {
				ts = append(ts, b.ID)
			}
		}
		if len(ts) > MaxTopicsPerChannel {
			s.mu.Unlock()
			apiError(w, http.StatusBadRequest, "notification.channel.topic.limit",
				"A channel may have at most 1000 topics")
			return
		}
		ch.topics = ts
		out := topicsJSON(ts)
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) deleteSubscriptions(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ch := s.channels[r.PathValue("id")]
	if ch != nil {
		ch.topics = nil
	}
	s.mu.Unlock()
	if ch == nil {
		apiError(w, http.StatusNotFound, "not.found", "channel not found")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

var (
	heartbeatFrame = []byte(`{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}`)
	pongFrame      = []byte(`{"topicName":"channel.metadata","eventBody":{"message":"pong"}}`)
)

// socket serves the websocket of a channel (its connectUri).
func (s *Server) socket(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	ch := s.channels[id]
	closed := s.closed
	s.mu.Unlock()
	if ch == nil || closed {
		http.Error(w, "channel not found", http.StatusNotFound)
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	conn.SetReadLimit(1 << 16)
	k := &socket{conn: conn, out: make(chan []byte, s.opts.queueSize), done: make(chan struct{})}
	s.mu.Lock()
	ch = s.channels[id]
	if ch == nil || s.closed {
		s.mu.Unlock()
		conn.CloseNow()
		return
	}
	// One connection per channel: a new one replaces the old.
	ch.closeSocket()
	ch.sock = k
	s.stats.SocketsOpened++
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	s.log.Debug("genesystest: socket opened", "channel", id)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var rw sync.WaitGroup
	rw.Go(func() { // reader: pings
		defer k.close()
		for {
			_, msg, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var m struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(msg, &m) == nil && strings.EqualFold(m.Message, "ping") && !k.silent.Load() {
				select {
				case k.out <- pongFrame:
				default:
				}
			}
		}
	})
	hb := time.NewTicker(s.opts.heartbeat)
	defer hb.Stop()
	write := func(b []byte) bool {
		if k.silent.Load() {
			return true
		}
		wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
		defer wcancel()
		if err := conn.Write(wctx, websocket.MessageText, b); err != nil {
			return false
		}
		s.mu.Lock()
		s.stats.FramesSent++
		s.mu.Unlock()
		return true
	}
loop:
	for {
		select {
		case <-k.done:
			break loop
		case <-s.quit:
			break loop
		case <-hb.C:
			if !write(heartbeatFrame) {
				break loop
			}
		case b := <-k.out:
			if b == nil { // close after the frames before it
				_ = conn.Close(websocket.StatusGoingAway, "socket closing")
				break loop
			}
			if !write(b) {
				break loop
			}
		}
	}
	conn.CloseNow()
	cancel()
	rw.Wait()
	k.close()
	s.mu.Lock()
	if ch := s.channels[id]; ch != nil && ch.sock == k {
		ch.sock = nil
	}
	s.mu.Unlock()
	s.log.Debug("genesystest: socket closed", "channel", id)
}

// send queues a frame on every live socket whose channel has topic ("" all),
// or holds it while HoldFrames is on. Call with s.mu held. A socket whose
// queue is full is dropped, as Genesys drops a consumer that does not keep
// up.
func (s *Server) send(topic string, frame []byte) {
	if s.holding {
		s.held = append(s.held, heldFrame{topic, frame})
		return
	}
	s.sendNow(topic, frame)
}

type heldFrame struct {
	topic string
	frame []byte
}

// HoldFrames holds back every frame until ReleaseFrames.
func (s *Server) HoldFrames() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holding = true
}

// ReleaseFrames sends the held frames, in reverse order when reversed (an
// out-of-order burst: the newest state first), and stops holding.
func (s *Server) ReleaseFrames(reversed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holding = false
	held := s.held
	s.held = nil
	if reversed {
		slices.Reverse(held)
	}
	for _, h := range held {
		s.sendNow(h.topic, h.frame)
	}
}

func (s *Server) sendNow(topic string, frame []byte) {
	for _, id := range s.chanOrder {
		ch := s.channels[id]
		if ch.sock == nil || (topic != "" && !ch.has(topic)) {
			continue
		}
		select {
		case ch.sock.out <- frame:
		default:
			ch.closeSocket()
		}
	}
}

// DropSockets closes every websocket abruptly (no close frame), as a
// network failure would. Channels and subscriptions survive.
func (s *Server) DropSockets() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.channels {
		ch.closeSocket()
	}
}

// SilenceSockets makes every current websocket go quiet while staying open:
// no heartbeats, no pongs, no events (a half-dead connection). Events
// published meanwhile are lost for them. New connections are normal.
func (s *Server) SilenceSockets() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range s.channels {
		if ch.sock != nil {
			ch.sock.silent.Store(true)
		}
	}
}

// SocketClosing sends v2.system.socket_closing on every websocket and
// closes them after grace (Genesys gives about a minute before
// maintenance). Channels and subscriptions survive.
func (s *Server) SocketClosing(grace time.Duration) {
	frame, _ := json.Marshal(map[string]any{
		"topicName": "v2.system.socket_closing",
		"eventBody": map[string]any{"message": "Socket closing", "systemTopicType": "socket_closing", "reason": "maintenance"},
	})
	s.mu.Lock()
	var socks []*socket
	for _, ch := range s.channels {
		if ch.sock != nil {
			socks = append(socks, ch.sock)
			select {
			case ch.sock.out <- frame:
			default:
			}
		}
	}
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		select {
		case <-time.After(grace):
		case <-s.quit:
		}
		for _, k := range socks {
			select {
			case k.out <- nil:
			default:
				k.close()
			}
		}
	}()
}

// SendRaw sends frame as is on every websocket (malformed frames, unknown
// topics, hand-written events).
func (s *Server) SendRaw(frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.send("", append([]byte(nil), frame...))
}

// DuplicateFrames makes every conversation frame go out twice (on).
func (s *Server) DuplicateFrames(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dupFrames = on
}

// publish sends a conversation's event body to every topic it belongs to:
// each agent participant's user topic and each queue's topic. The same
// body goes on each topic, as Genesys does. Call with s.mu held.
func (s *Server) publish(c *conversation, body []byte) {
	var topics []string
	add := func(t string) {
		if !slices.Contains(topics, t) {
			topics = append(topics, t)
		}
	}
	for _, p := range c.participants {
		if p.queueID != "" {
			add("v2.routing.queues." + p.queueID + ".conversations")
		}
		if p.userID != "" && (p.purpose == "agent" || p.purpose == "user") {
			add("v2.users." + p.userID + ".conversations")
		}
	}
	corr := newID()
	for _, t := range topics {
		frame := make([]byte, 0, len(body)+len(t)+120)
		frame = append(frame, `{"topicName":"`...)
		frame = append(frame, t...)
		frame = append(frame, `","version":"2","eventBody":`...)
		frame = append(frame, body...)
		frame = append(frame, `,"metadata":{"CorrelationId":"`...)
		frame = append(frame, corr...)
		frame = append(frame, `"}}`...)
		s.send(t, frame)
		if s.dupFrames {
			s.send(t, frame)
		}
	}
}
