package genesys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/coder/websocket"
	"github.com/cxplay/ctikit/cti"
	"github.com/mypurecloud/platform-client-sdk-go/v157/platformclientv2"
	"golang.org/x/sync/errgroup"
)

// Source is the cti.Source of Genesys Cloud conversations: it subscribes
// to the conversation topics of the configured queues and users over the
// notification service and delivers a cti.Conversation snapshot for every
// update, for every media.
//
// Run creates the channels (1,000 topics each, never more than the 20 an
// OAuth client may hold), opens their websockets and keeps them alive: a
// heartbeat watchdog replaces a silent socket, v2.system.socket_closing and
// channel expiry are handled by opening the replacement before the old
// socket closes and reading the old one a few seconds more (make before
// break: nothing it received is dropped), and a dropped socket is reopened
// with jittered backoff. After any reconnect that may have lost updates,
// and for the ids given to Resume, it re-fetches the conversations it was
// tracking (GET /api/v2/conversations/{id}), so an end or a wrap-up
// missed meanwhile is not lost; and after a gap it looks up the conversations that had
// activity on its queues and users meanwhile (POST
// /api/v2/analytics/conversations/details/query, at once and again after
// AnalyticsLag) and fetches those it was not tracking, so a conversation
// that started during the gap is not lost either (Backfill does the same
// for the time the process was down). Exact duplicate frames (the same
// update on the queue topic and the user topic) are dropped without
// decoding. Malformed frames, unknown topics and unsupported media are
// logged and skipped.
//
// Source also implements cti.Resumer, cti.Backfiller, cti.PendingLookups,
// cti.Enricher (through its Enricher) and cti.RecordingOpener (through its
// Client). Run may be called once; Resume and Backfill before it; Ready,
// Stats, PendingSince, Enrich and OpenRecording from any goroutine.
type Source struct {
	client      *Client
	dec         *Decoder
	enr         *Enricher
	enrSet      bool
	log         *slog.Logger
	topics      []string
	timing      Timing
	backoff     func(int) time.Duration
	perChannel  int
	maxChannels int
	dedupe      *recentSet
	noAgents    bool

	started atomic.Bool
	h       cti.Handler
	refetch chan struct{}
	gapSig  chan struct{}  // a gap was added
	drains  sync.WaitGroup // old sockets still read after a rotation
	spare   chan struct{}  // channel slots for gapless rotations

	mu      sync.Mutex
	gaps    []gap     // notification gaps whose conversations are still to be looked up
	looking []gap     // the gaps being looked up now
	since   time.Time // Backfill: a gap from then until the first connection
	tracked map[string]tracking
	ids     idSlab // storage of the tracked conversations' ids
	groups  []groupStatus
	stats   SourceStats
}

var (
	_ cti.Source          = (*Source)(nil)
	_ cti.Resumer         = (*Source)(nil)
	_ cti.Backfiller      = (*Source)(nil)
	_ cti.PendingLookups  = (*Source)(nil)
	_ cti.Enricher        = (*Source)(nil)
	_ cti.RecordingOpener = (*Source)(nil)
)

// SourceStats counts what a Source did.
type SourceStats struct {
	Channels    int // channels created
	Connects    int // websockets opened
	Reconnects  int // reconnects after a drop or a silent socket
	Rotations   int // gapless replacements (socket_closing, expiry)
	Frames      int // conversation frames received
	Duplicates  int // exact duplicate frames dropped
	Delivered   int // snapshots handed to the handler
	Malformed   int // frames that could not be decoded
	Unknown     int // frames of unknown topics or unsupported media
	Refetches   int // conversations re-fetched after a gap
	Discovered  int // conversations that started during a gap, found by the analytics query
	Heartbeats  int
	LastConnect time.Time
}

type groupStatus struct {
	topics    int
	connected bool
	channelID string
	err       string
}

// NewSource builds a source on client. Subscribe with WithQueues,
// WithUsers or WithSubscribe; at least one topic is required.
func NewSource(client *Client, opts ...Option) (*Source, error) {
	if client == nil {
		return nil, errors.New("genesys: NewSource: nil Client")
	}
	s := &Source{client: client, dec: &Decoder{}, timing: DefaultTiming, backoff: DefaultReconnectBackoff,
		perChannel: 1000, maxChannels: 20, tracked: map[string]tracking{}, refetch: make(chan struct{}, 1),
		gapSig: make(chan struct{}, 1)}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, err
		}
	}
	if s.log == nil {
		s.log = client.log
	}
	if s.dedupe == nil {
		s.dedupe = newRecentSet(4096)
	}
	if !s.enrSet {
		s.enr, _ = NewEnricher(client, WithEnrichLogger(s.log)) // valid options: cannot fail
	}
	s.topics = uniqueSorted(s.topics)
	if len(s.topics) == 0 {
		return nil, &cti.ConfigError{Path: "subscribe", Reason: "no queue or user to subscribe to: list Genesys queue or user ids"}
	}
	n := (len(s.topics) + s.perChannel - 1) / s.perChannel
	if n > s.maxChannels-1 {
		return nil, &cti.ConfigError{Path: "subscribe", Value: fmt.Sprint(len(s.topics), " topics"),
			Reason: fmt.Sprintf("needs %d channels of %d topics; a client may hold %d (one kept spare for rotation)", n, s.perChannel, s.maxChannels)}
	}
	s.groups = make([]groupStatus, n)
	s.spare = make(chan struct{}, s.maxChannels-n)
	return s, nil
}

// Topics returns the subscribed topics, sorted.
func (s *Source) Topics() []string { return append([]string(nil), s.topics...) }

// Decoder returns the source's decoder.
func (s *Source) Decoder() *Decoder { return s.dec }

// Resume implements cti.Resumer: the conversations are re-fetched as soon
// as Run is connected, and tracked afterwards.
func (s *Source) Resume(ids []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if id != "" {
			s.track(id, time.Now())
		}
	}
}

// Enrich implements cti.Enricher with the source's Enricher (no-op when
// disabled with WithEnricher(nil)).
func (s *Source) Enrich(ctx context.Context, c *cti.Conversation) error {
	if s.enr == nil {
		return nil
	}
	return s.enr.Enrich(ctx, c)
}

// OpenRecording implements cti.RecordingOpener with the source's Client
// (see Client.OpenRecording).
func (s *Source) OpenRecording(ctx context.Context, recordingURL string) (*cti.RecordingFile, error) {
	return s.client.OpenRecording(ctx, recordingURL)
}

// Ready returns nil when every channel's websocket is connected and
// subscribed, else an error saying what is not (for health checks).
func (s *Source) Ready() error {
	if !s.started.Load() {
		return errors.New("genesys: notification source not running")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var down []string
	for i, g := range s.groups {
		if !g.connected {
			msg := fmt.Sprintf("channel %d/%d (%d topics) not connected", i+1, len(s.groups), g.topics)
			if g.err != "" {
				msg += ": " + g.err
			}
			down = append(down, msg)
		}
	}
	if len(down) > 0 {
		return errors.New("genesys: " + strings.Join(down, "; "))
	}
	return nil
}

// Stats returns a copy of the counters.
func (s *Source) Stats() SourceStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Tracked returns how many unfinished conversations the source tracks.
func (s *Source) Tracked() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tracked)
}

func (s *Source) count(f func(*SourceStats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

func (s *Source) setGroup(i int, f func(*groupStatus)) {
	s.mu.Lock()
	f(&s.groups[i])
	s.mu.Unlock()
}

// Run implements cti.Source. It returns nil when ctx is done, or an error
// when it cannot go on (the credentials are rejected). Every goroutine it
// starts has returned when it returns.
func (s *Source) Run(ctx context.Context, h cti.Handler) error {
	if h == nil {
		return errors.New("genesys: Run: nil Handler")
	}
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("genesys: Source.Run called twice")
	}
	s.h = h
	if err := s.client.CheckAuth(ctx); err != nil {
		var ae *AuthError
		if errors.As(err, &ae) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("genesys: cannot get a token yet; will keep trying", "error", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	for i := range s.groups {
		lo := i * s.perChannel
		topics := s.topics[lo:min(lo+s.perChannel, len(s.topics))]
		s.setGroup(i, func(gs *groupStatus) { gs.topics = len(topics) })
		g.Go(func() error { return s.runGroup(gctx, i, topics) })
	}
	g.Go(func() error { return s.refetchLoop(gctx) })
	if s.enr != nil && !s.noAgents {
		g.Go(func() error { s.warmAgents(gctx); return nil })
	}
	err := g.Wait()
	s.drains.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// rotateDrain is how long the old socket is still read after a gapless
// rotation (unless it closes first).
const rotateDrain = 5 * time.Second

// conn is one open websocket on a channel, with its reader goroutine.
type conn struct {
	s        *Source
	id       string // channel id
	uri      string
	rotateAt time.Time
	ws       *websocket.Conn
	last     atomic.Int64 // unix nanos of the last frame
	sys      chan frameKind
	done     chan struct{}
	err      error
	cancel   context.CancelFunc
}

// close stops the reader and waits for it.
func (c *conn) close() {
	c.cancel()
	c.ws.CloseNow()
	<-c.done
}

// lastFrame is when the socket last received a frame (heartbeats
// included), or, if never, a heartbeat timeout ago.
func (c *conn) lastFrame() time.Time {
	if n := c.last.Load(); n > 0 {
		return time.Unix(0, n)
	}
	return time.Now().Add(-c.s.timing.HeartbeatTimeout)
}

func (c *conn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

type event int

const (
	evStop    event = iota // ctx done
	evDropped              // the socket closed or failed
	evSilent               // no frame for HeartbeatTimeout
	evRotate               // socket_closing, expiry: replace without a gap
	evRenew                // the channel lost its subscriptions / token: new channel
)

// runGroup keeps one channel's worth of topics connected until ctx is done.
func (s *Source) runGroup(ctx context.Context, idx int, topics []string) error {
	var cur *conn
	defer func() {
		if cur != nil {
			cur.close()
		}
	}()
	var reuse *conn      // a dead connection whose channel may still be valid
	var lostAt time.Time // the lost socket's last frame: a gap since then
	fails, rotFails := 0, 0
	for {
		if cur == nil {
			c, err := s.connect(ctx, idx, topics, reuse)
			reuse = nil
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				var ae *AuthError
				if errors.As(err, &ae) {
					s.setGroup(idx, func(g *groupStatus) { g.connected, g.err = false, err.Error() })
					return err
				}
				fails++
				d := s.backoff(fails)
				s.log.Warn("genesys: notification channel connect failed; retrying", "group", idx, "attempt", fails, "in", d, "error", err)
				s.setGroup(idx, func(g *groupStatus) { g.connected, g.err = false, err.Error() })
				if sleep(ctx, d) != nil {
					return nil
				}
				continue
			}
			fails = 0
			cur = c
			// Whatever happened before this connection (start, a drop) may
			// have hidden updates: catch up on the tracked conversations,
			// and after a drop look for conversations started meanwhile.
			if !lostAt.IsZero() {
				s.addGap(gap{from: lostAt, to: time.Now()})
				lostAt = time.Time{}
			}
			if since := s.takeSince(); !since.IsZero() {
				s.addGap(gap{from: since, to: time.Now(), restart: true})
			}
			s.requestRefetch()
		}
		ev := s.supervise(ctx, cur)
		switch ev {
		case evStop:
			return nil
		case evDropped, evSilent, evRenew:
			why := map[event]string{evDropped: "socket dropped", evSilent: "no heartbeat", evRenew: "channel lost its subscriptions"}[ev]
			cur.close() // the reader has stopped: cur.err is settled
			if lostAt.IsZero() {
				lostAt = cur.lastFrame()
			}
			s.log.Warn("genesys: notification socket lost; reconnecting", "group", idx, "channel", cur.id, "reason", why, "error", errString(cur.err))
			s.setGroup(idx, func(g *groupStatus) { g.connected, g.err = false, why })
			s.count(func(st *SourceStats) { st.Reconnects++ })
			if ev != evRenew {
				reuse = cur
			}
			cur = nil
			if ev == evRenew {
				if sleep(ctx, s.backoff(1)) != nil {
					return nil
				}
			}
		case evRotate:
			next, err := s.rotate(ctx, idx, topics, cur)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				s.log.Warn("genesys: replacing the notification channel failed; will retry", "group", idx, "error", err)
				if !cur.alive() {
					cur.close()
					if lostAt.IsZero() {
						lostAt = cur.lastFrame() // a gap since: look it up once reconnected
					}
					cur = nil
					continue
				}
				// Keep the old socket while it lasts; try again shortly.
				rotFails++
				if sleep(ctx, s.backoff(rotFails)) != nil {
					return nil
				}
				cur.rotateAt = time.Now()
				continue
			}
			rotFails = 0
			old := cur
			cur = next
			if !old.alive() {
				// It died before its replacement was up: a gap.
				old.close()
				s.addGap(gap{from: old.lastFrame(), to: time.Now()})
				s.requestRefetch()
				break
			}
			// Make before break: the old socket keeps being read for
			// rotateDrain (or until it closes), so that what it received
			// before the new channel was subscribed, and had not handed
			// over yet, is not dropped; updates that arrive on both are
			// exact duplicates.
			s.drains.Add(1)
			go func() {
				defer s.drains.Done()
				t := time.NewTimer(rotateDrain)
				defer t.Stop()
				select {
				case <-t.C:
				case <-old.done:
				case <-ctx.Done():
				}
				old.close()
			}()
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// supervise watches a connection until something needs doing.
func (s *Source) supervise(ctx context.Context, c *conn) event {
	hb := s.timing.HeartbeatTimeout
	tick := time.NewTicker(max(hb/6, 5*time.Millisecond))
	defer tick.Stop()
	rot := time.NewTimer(time.Until(c.rotateAt))
	defer rot.Stop()
	pinged := false
	for {
		select {
		case <-ctx.Done():
			return evStop
		case <-c.done:
			return evDropped
		case k := <-c.sys:
			switch k {
			case kindSocketClosing:
				s.log.Info("genesys: socket_closing received; moving to a new socket", "channel", c.id)
				return evRotate
			case kindNoLongerSubscribed:
				return evRenew
			case kindTokenRevoked:
				s.client.tokens.invalidateAll()
				return evRenew
			}
		case <-rot.C:
			s.log.Info("genesys: channel expiring; rotating", "channel", c.id)
			return evRotate
		case <-tick.C:
			idle := time.Since(time.Unix(0, c.last.Load()))
			switch {
			case idle > hb:
				return evSilent
			case idle > hb/2 && !pinged:
				pinged = true
				_ = c.write(ctx, []byte(`{"message":"ping"}`))
			case idle < hb/2:
				pinged = false
			}
		}
	}
}

func (c *conn) write(ctx context.Context, b []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// rotate opens the replacement of c on a new channel while c keeps
// delivering, so nothing is missed; duplicates are dropped by the dedupe.
// Without a spare channel slot it falls back to closing c first.
func (s *Source) rotate(ctx context.Context, idx int, topics []string, c *conn) (*conn, error) {
	select {
	case s.spare <- struct{}{}:
		defer func() { <-s.spare }()
	default:
		s.log.Warn("genesys: no spare channel for a gapless rotation; reconnecting", "group", idx)
		c.close()
	}
	next, err := s.connect(ctx, idx, topics, nil)
	if err != nil {
		return nil, err
	}
	s.count(func(st *SourceStats) { st.Rotations++ })
	return next, nil
}

type channelInfo struct {
	ID         string `json:"id"`
	ConnectURI string `json:"connectUri"`
	Expires    wtime  `json:"expires"`
}

// connect makes a subscribed, open websocket for topics: on the channel of
// reuse when it is still valid, else on a new channel.
func (s *Source) connect(ctx context.Context, idx int, topics []string, reuse *conn) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timing.DialTimeout)
	defer cancel()
	if reuse != nil && time.Until(reuse.rotateAt) > s.timing.HeartbeatTimeout {
		if _, err := s.client.call(ctx, "check notification channel", func(cfg *platformclientv2.Configuration) (*platformclientv2.APIResponse, error) {
			return platformclientv2.NewNotificationsApiWithConfig(cfg).HeadNotificationsChannel(reuse.id)
		}); err == nil {
			if c, err := s.dial(ctx, idx, reuse.id, reuse.uri, reuse.rotateAt); err == nil {
				return c, nil
			}
		}
	}
	// A new channel lives at most as long as the token it is created with:
	// make sure that token has a useful life ahead.
	if err := s.client.tokens.ensure(ctx, 4*s.timing.RotateBefore); err != nil {
		return nil, err
	}
	raw, err := s.client.call(ctx, "create notification channel", func(cfg *platformclientv2.Configuration) (*platformclientv2.APIResponse, error) {
		_, r, err := platformclientv2.NewNotificationsApiWithConfig(cfg).PostNotificationsChannels()
		return r, err
	})
	if err != nil {
		return nil, err
	}
	var ch channelInfo
	if err := json.Unmarshal(raw, &ch); err != nil || ch.ID == "" || ch.ConnectURI == "" {
		return nil, fmt.Errorf("genesys: create notification channel: unexpected response %.200q", raw)
	}
	s.count(func(st *SourceStats) { st.Channels++ })
	body := make([]platformclientv2.Channeltopic, len(topics))
	for i := range topics {
		body[i].Id = &topics[i]
	}
	raw, err = s.client.call(ctx, "subscribe notification topics", func(cfg *platformclientv2.Configuration) (*platformclientv2.APIResponse, error) {
		_, r, err := platformclientv2.NewNotificationsApiWithConfig(cfg).PutNotificationsChannelSubscriptions(ch.ID, body, false)
		return r, err
	})
	if err != nil {
		return nil, err
	}
	var subs struct {
		Entities []struct {
			ID              string `json:"id"`
			State           string `json:"state"`
			RejectionReason string `json:"rejectionReason"`
		} `json:"entities"`
	}
	if json.Unmarshal(raw, &subs) == nil {
		ok := 0
		for _, e := range subs.Entities {
			if strings.EqualFold(e.State, "rejected") {
				s.log.Warn("genesys: topic subscription rejected (check the OAuth client's permissions and the id)", "topic", e.ID, "reason", e.RejectionReason)
				continue
			}
			ok++
		}
		if ok == 0 && len(subs.Entities) > 0 {
			return nil, fmt.Errorf("genesys: every topic subscription was rejected (%d topics)", len(subs.Entities))
		}
	}
	expires := ch.Expires.Time
	if exp := s.client.tokens.expiry(); !exp.IsZero() && (expires.IsZero() || exp.Before(expires)) {
		expires = exp
	}
	if expires.IsZero() {
		expires = time.Now().Add(24 * time.Hour)
	}
	life := time.Until(expires)
	rotateAt := expires.Add(-min(s.timing.RotateBefore, life/5))
	return s.dial(ctx, idx, ch.ID, ch.ConnectURI, rotateAt)
}

// dial opens the websocket of a channel and starts its reader.
func (s *Source) dial(ctx context.Context, idx int, id, uri string, rotateAt time.Time) (*conn, error) {
	ws, resp, err := websocket.Dial(ctx, uri, &websocket.DialOptions{HTTPClient: s.client.t.hc})
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		st := 0
		if resp != nil {
			st = resp.StatusCode
		}
		return nil, &cti.UpstreamError{Service: "genesys", Op: "open notification websocket", Status: st, Temporary: true, Err: err}
	}
	ws.SetReadLimit(8 << 20)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c := &conn{s: s, id: id, uri: uri, rotateAt: rotateAt, ws: ws, sys: make(chan frameKind, 4), done: make(chan struct{}), cancel: cancel}
	c.last.Store(time.Now().UnixNano())
	go c.read(rctx)
	s.count(func(st *SourceStats) { st.Connects++; st.LastConnect = time.Now() })
	s.setGroup(idx, func(g *groupStatus) { g.connected, g.channelID, g.err = true, id, "" })
	s.log.Info("genesys: notification socket connected", "group", idx, "channel", id, "rotateAt", rotateAt.Format(time.RFC3339))
	return c, nil
}

// read is the connection's reader goroutine: it handles every frame until
// the socket fails or is closed.
//
// Frames are read into one buffer, reused from frame to frame: handle is
// done with a frame when it returns (the decoder copies what it keeps, the
// duplicate check keeps a hash). websocket.Conn.Read's io.ReadAll grew a
// new buffer for every frame, 12% of the bytes a latency run allocated.
func (c *conn) read(ctx context.Context) {
	defer close(c.done)
	var buf bytes.Buffer
	for {
		_, r, err := c.ws.Reader(ctx)
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			c.err = err
			return
		}
		now := time.Now()
		c.last.Store(now.UnixNano())
		c.s.handle(ctx, c, buf.Bytes(), now)
		if buf.Cap() > maxKeptFrame {
			buf = bytes.Buffer{} // one large frame does not pin its buffer for the socket's life
		}
	}
}

// maxKeptFrame is the largest frame buffer the reader keeps for the next
// frame (Genesys sends 2–10 KB).
const maxKeptFrame = 64 << 10

// handle processes one frame.
func (s *Source) handle(ctx context.Context, c *conn, frame []byte, at time.Time) {
	topic, body, exact, err := splitFrame(frame)
	if err != nil {
		s.count(func(st *SourceStats) { st.Malformed++ })
		s.log.Warn("genesys: skipping a malformed notification frame", "bytes", len(frame), "error", err)
		return
	}
	switch k := classify(topic); k {
	case kindConversation:
		if s.dedupe.seen(body) {
			s.count(func(st *SourceStats) { st.Frames++; st.Duplicates++ })
			return
		}
		s.count(func(st *SourceStats) { st.Frames++ })
		body, err := eventBody(frame, body, exact)
		if err != nil {
			s.count(func(st *SourceStats) { st.Malformed++ })
			s.log.Warn("genesys: skipping a malformed notification frame", "topic", topicString(topic), "error", err)
			return
		}
		conv, err := s.dec.frameConversation(frame, body, at)
		if err != nil {
			if errors.Is(err, ErrUnknownMedia) {
				s.count(func(st *SourceStats) { st.Unknown++ })
				s.log.Debug("genesys: skipping a conversation of unsupported media", "topic", topicString(topic), "error", err)
				return
			}
			s.count(func(st *SourceStats) { st.Malformed++ })
			s.log.Warn("genesys: skipping an undecodable conversation frame", "topic", topicString(topic), "error", err)
			return
		}
		s.deliver(ctx, conv)
	case kindHeartbeat:
		s.count(func(st *SourceStats) { st.Heartbeats++ })
	case kindSocketClosing, kindNoLongerSubscribed, kindTokenRevoked:
		select {
		case c.sys <- k:
		default:
		}
	case kindOtherSystem:
		s.log.Debug("genesys: system message", "topic", topicString(topic))
	default:
		s.count(func(st *SourceStats) { st.Unknown++ })
		s.log.Warn("genesys: skipping a frame of an unknown topic", "topic", topicString(topic))
	}
}

// settled reports whether a conversation needs no more tracking: the
// customer left and every agent leg is done (or expects no wrap-up).
func settled(c *cti.Conversation) bool {
	if !c.Ended() {
		return false
	}
	for i := range c.Agents {
		l := &c.Agents[i]
		switch {
		case l.Phase() == cti.PhaseDone:
		case l.State == cti.LegDisconnected && !l.WrapupExpected:
		default:
			return false
		}
	}
	return true
}

// deliver tracks the conversation and hands it to the handler.
func (s *Source) deliver(ctx context.Context, c *cti.Conversation) {
	if s.enr != nil && !s.noAgents {
		// The directory needs the agent's email at pop time; frames carry
		// only the user id. Cached after the first lookup per agent.
		actx, cancel := context.WithTimeout(ctx, s.timing.AgentLookup)
		if err := s.enr.FillAgents(actx, c); err != nil && ctx.Err() == nil {
			s.log.Warn("genesys: agent lookup failed; delivering without name/email", "conversation", c.ID, "error", err)
		}
		cancel()
	}
	s.mu.Lock()
	if settled(c) {
		if t, ok := s.tracked[c.ID]; ok {
			c.ID = t.id
			delete(s.tracked, c.ID)
		}
	} else {
		c.ID = s.track(c.ID, time.Now())
	}
	s.stats.Delivered++
	s.mu.Unlock()
	if err := s.h.HandleConversation(ctx, c); err != nil && ctx.Err() == nil {
		s.log.Warn("genesys: handler refused a snapshot", "conversation", c.ID, "error", err)
	}
}

// warmAgents looks up the subscribed users ahead of their first
// conversation, so that their first pop does not wait for it.
func (s *Source) warmAgents(ctx context.Context) {
	c := &cti.Conversation{}
	_, users := subjects(s.topics)
	for _, id := range users {
		c.Agents = append(c.Agents, cti.AgentLeg{UserID: id})
	}
	if len(c.Agents) > 0 {
		_ = s.enr.FillAgents(ctx, c)
	}
}

// tracking is what the source remembers of a tracked conversation.
type tracking struct {
	// id is the map key: a map assignment replaces a string key with the
	// one assigned, so the key is always assigned from here, and the
	// snapshots delivered carry this one copy (which the engine keeps too).
	id   string
	seen int64 // Unix ns
}

// track records conversation id as seen at now and returns the id's kept
// copy. s.mu must be held.
func (s *Source) track(id string, now time.Time) string {
	t, ok := s.tracked[id]
	if !ok {
		t.id = s.ids.copy(id)
	}
	t.seen = now.UnixNano()
	s.tracked[t.id] = t
	return t.id
}

// idSlab copies conversation ids into shared chunks. An id lives as long
// as its conversation (the source's tracking, the engine's state), so
// allocated on its own amid the decoder's short-lived garbage it would pin
// a span of that garbage's size class; ids seen around the same time share
// a chunk instead, and so end around the same time.
type idSlab struct{ buf []byte }

const idChunk = 1024

func (b *idSlab) copy(s string) string {
	if len(s) == 0 || len(s) > idChunk/8 {
		return strings.Clone(s)
	}
	if cap(b.buf)-len(b.buf) < len(s) {
		b.buf = make([]byte, 0, idChunk)
	}
	n := len(b.buf)
	b.buf = append(b.buf, s...)
	return unsafe.String(&b.buf[n], len(s)) // b.buf[n:n+len(s)] is never written again
}

func (s *Source) requestRefetch() {
	select {
	case s.refetch <- struct{}{}:
	default:
	}
}

// prune forgets conversations not seen for TrackFor and returns the ids
// still tracked.
func (s *Source) prune() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := time.Now().Add(-s.timing.TrackFor)
	ids := make([]string, 0, len(s.tracked))
	for id, t := range s.tracked {
		if t.seen < cutoff.UnixNano() {
			delete(s.tracked, id)
			continue
		}
		ids = append(ids, id)
	}
	return ids
}

// refetchLoop re-fetches the tracked conversations whenever asked, four at
// a time, retrying transient failures, and looks up the conversations
// that started during notification gaps (see gaps.go).
func (s *Source) refetchLoop(ctx context.Context) error {
	var retry, gapDue <-chan time.Time
	fails := 0
	prune := time.NewTicker(max(s.timing.TrackFor/24, time.Minute))
	defer prune.Stop()
	for {
		refetch := false
		select {
		case <-ctx.Done():
			return nil
		case <-prune.C:
			s.prune()
			continue
		case <-s.refetch:
			refetch = true
		case <-retry:
			refetch = true
		case <-gapDue:
		case <-s.gapSig:
		}
		if refetch {
			retry = nil
			if s.fetch(ctx, s.prune(), false) > 0 {
				fails++
				retry = time.After(s.backoff(fails))
			} else {
				fails = 0
			}
		}
		gapDue = nil
		if next := s.lookupGaps(ctx); !next.IsZero() {
			gapDue = time.After(time.Until(next))
		}
	}
}

// fetch fetches conversations ids, four at a time, and delivers them; it
// returns how many failed. With discovered, ids already tracked are
// skipped (the re-fetch of the tracked ones covers them) and those
// delivered are counted as Discovered.
func (s *Source) fetch(ctx context.Context, ids []string, discovered bool) int {
	if discovered {
		s.mu.Lock()
		ids = slices.DeleteFunc(ids, func(id string) bool { _, ok := s.tracked[id]; return ok })
		s.mu.Unlock()
	}
	if len(ids) == 0 {
		return 0
	}
	var failed atomic.Int32
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, id := range ids {
		g.Go(func() error {
			c, err := s.client.Conversation(gctx, id, s.dec)
			switch {
			case err == nil:
				s.count(func(st *SourceStats) {
					if discovered {
						st.Discovered++
					} else {
						st.Refetches++
					}
				})
				s.deliver(gctx, c)
			case errors.Is(err, cti.ErrNotFound) || errors.Is(err, ErrUnknownMedia):
				if !discovered {
					s.mu.Lock()
					delete(s.tracked, id)
					s.mu.Unlock()
				}
			case gctx.Err() != nil:
			default:
				failed.Add(1)
				s.log.Warn("genesys: fetching a conversation failed; will retry", "conversation", id, "error", err)
			}
			return nil
		})
	}
	_ = g.Wait()
	return int(failed.Load())
}
