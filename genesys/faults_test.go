package genesys_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
)

// liveCall starts a call and connects Alice; it returns the conversation
// and her leg once the source has seen her connected.
func liveCall(t *testing.T, e *env, col *collector, from string) (*gt.Conversation, string) {
	t.Helper()
	conv := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: from, Queue: gt.QueueSupport})
	leg := conv.Alert(gt.AgentAlice)
	conv.Connect(leg)
	col.wait(t, conv.ID, "connected", func(c *cti.Conversation) bool {
		l := c.Leg(leg)
		return l != nil && l.State == cti.LegConnected
	})
	return conv, leg
}

// wholeCall plays a voice call on the support queue from start to wrap-up
// with notes, and returns it and Bob's leg.
func wholeCall(e *env, from, notes string) (*gt.Conversation, string) {
	conv := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: from, Queue: gt.QueueSupport})
	leg := conv.Alert(gt.AgentBob)
	conv.Connect(leg)
	conv.Disconnect(leg)
	conv.Wrapup(leg, gt.CodeFollowUp, notes)
	return conv, leg
}

// TestFaultDroppedSocket drops the websocket and keeps the Genesys API
// failing (503) while the call ends and is wrapped up: nothing reaches the
// socket, yet the end and the wrap-up are delivered after the reconnect,
// by re-fetching the tracked conversation.
func TestFaultDroppedSocket(t *testing.T) {
	e := newEnv(t)
	src, col := started(t, e, genesys.WithQueues(gt.QueueSupport))
	conv, leg := liveCall(t, e, col, "+14155550201")

	e.srv.FailREST(gt.Fault{PathPrefix: "/api/v2/notifications/", Status: http.StatusServiceUnavailable, Times: -1})
	e.srv.DropSockets()
	waitFor(t, "the source to notice the drop", func() bool { return src.Ready() != nil })
	conv.Disconnect(leg) // published to nobody
	conv.Wrapup(leg, gt.CodeFollowUp, "call back tomorrow")
	time.Sleep(100 * time.Millisecond) // a few failed reconnects
	if c := col.get(conv.ID); c.Ended() {
		t.Fatal("the end arrived while the socket was down: the fault did not hold")
	}
	e.srv.ClearFaults()

	c := col.wait(t, conv.ID, "wrap-up after reconnect", wrappedUp(leg))
	if c.Leg(leg).Wrapup.Notes != "call back tomorrow" {
		t.Errorf("wrapup = %+v", c.Leg(leg).Wrapup)
	}
	st := src.Stats()
	if st.Reconnects < 1 || st.Refetches < 1 {
		t.Errorf("stats = %+v, want a reconnect and a re-fetch", st)
	}
	if e.srv.Stats().Faults == 0 {
		t.Error("no injected fault was served")
	}
	waitFor(t, "ready", func() bool { return src.Ready() == nil })
	if src.Tracked() != 0 {
		t.Errorf("tracked = %d after the conversation settled, want 0", src.Tracked())
	}
}

// TestFaultGapNewConversation: a call that starts, is answered and
// wrapped up while the socket is down never reaches the socket, and the
// re-fetch of the tracked conversations cannot know it. After the
// reconnect the source asks the analytics details query for the
// conversations of its queue during the gap and delivers it, wrapped up;
// a call on a queue it does not subscribe to stays out.
func TestFaultGapNewConversation(t *testing.T) {
	e := newEnv(t)
	src, col := started(t, e, genesys.WithQueues(gt.QueueSupport))
	before, _ := liveCall(t, e, col, "+14155550201")
	if p := src.PendingSince(); !p.IsZero() {
		t.Fatalf("PendingSince = %v before any gap", p)
	}

	const query = "/api/v2/analytics/conversations/details/query"
	e.srv.FailREST(gt.Fault{PathPrefix: "/api/v2/notifications/", Status: http.StatusServiceUnavailable, Times: -1})
	e.srv.FailREST(gt.Fault{PathPrefix: query, Status: http.StatusServiceUnavailable, Times: 2})
	dropped := time.Now()
	e.srv.DropSockets()
	waitFor(t, "the source to notice the drop", func() bool { return src.Ready() != nil })
	missed, leg := wholeCall(e, "+14155550202", "happened while the socket was down")
	other := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550203", Queue: gt.QueueSales})
	time.Sleep(100 * time.Millisecond) // a few failed reconnects
	if col.get(missed.ID) != nil {
		t.Fatal("the call reached the source while the socket was down: the fault did not hold")
	}
	e.srv.RemoveFaults("/api/v2/notifications/") // reconnect; the query fails twice more

	c := col.wait(t, missed.ID, "the gap's call after the reconnect", wrappedUp(leg))
	if n := e.srv.Stats().Requests["POST "+query]; n < 3 {
		t.Errorf("%d details queries, want two that failed and one that answered", n)
	}
	if got := c.Leg(leg).Wrapup.Notes; got != "happened while the socket was down" {
		t.Errorf("wrap-up notes = %q", got)
	}
	if st := src.Stats(); st.Discovered != 1 {
		t.Errorf("stats = %+v, want the one call of the gap discovered (the live one is re-fetched, not discovered)", st)
	}
	if col.get(other.ID) != nil {
		t.Error("a call on a queue the source does not subscribe to was delivered")
	}
	if col.get(before.ID) == nil {
		t.Error("the call tracked before the gap is gone")
	}
	// The second look, after the analytics lag, is still to do: a
	// restart now must look back over the gap (cti.PendingLookups).
	if p := src.PendingSince(); p.IsZero() || p.After(dropped) {
		t.Errorf("PendingSince = %v, want the gap's start (dropped at %v)", p, dropped)
	}
}

// TestFaultGapLookBack: a gap longer than Timing.LookBack is looked up
// for its last LookBack only, so a call that ended before the gap (and
// that the handler may have forgotten since) is not delivered again,
// while one that happened late in the gap is found.
func TestFaultGapLookBack(t *testing.T) {
	e := newEnv(t)
	src, col := started(t, e, genesys.WithQueues(gt.QueueSupport), genesys.WithTiming(genesys.Timing{LookBack: time.Second}))
	ended, leg := wholeCall(e, "+14155550211", "before the gap")
	col.wait(t, ended.ID, "the call before the gap", wrappedUp(leg))

	e.srv.FailREST(gt.Fault{PathPrefix: "/api/v2/notifications/", Status: http.StatusServiceUnavailable, Times: -1})
	e.srv.DropSockets()
	time.Sleep(1500 * time.Millisecond) // the gap outgrows the look-back
	missed, leg2 := wholeCall(e, "+14155550212", "late in the gap")
	e.srv.RemoveFaults("/api/v2/notifications/")

	col.wait(t, missed.ID, "the gap's late call after the reconnect", wrappedUp(leg2))
	time.Sleep(300 * time.Millisecond) // the look-up's other fetches, if any
	// Found by the look-up: the late call only. (Counting the earlier
	// call's deliveries would not do: its last frames may still arrive
	// after its wrap-up was seen, and a call still tracked at the drop is
	// re-fetched, both rightly.)
	if st := src.Stats(); st.Discovered != 1 {
		t.Errorf("%d conversations discovered by the look-up, want only the late one: %+v", st.Discovered, st)
	}
}

// TestFaultSilentSocket: the socket stays open but goes quiet (no
// heartbeats); the watchdog replaces it and the missed end is re-fetched.
func TestFaultSilentSocket(t *testing.T) {
	e := newEnv(t)
	src, col := started(t, e, genesys.WithQueues(gt.QueueSupport))
	conv, leg := liveCall(t, e, col, "+14155550202")

	e.srv.SilenceSockets()
	conv.End()
	conv.Wrapup(leg, gt.CodeResolved, "")

	col.wait(t, conv.ID, "wrap-up after the watchdog", wrappedUp(leg))
	if st := src.Stats(); st.Reconnects < 1 || st.Refetches < 1 {
		t.Errorf("stats = %+v, want a reconnect and a re-fetch", st)
	}
	// The watchdog reconnected to the same channel (still valid): no new one.
	if n := e.srv.Stats().ChannelsCreated; n != 1 {
		t.Errorf("channels created = %d, want 1 (the socket reopened on the same channel)", n)
	}
}

// TestFaultSocketClosing: on v2.system.socket_closing the source opens a
// new socket before the old one closes; nothing is lost or duplicated and
// no re-fetch is needed.
func TestFaultSocketClosing(t *testing.T) {
	e := newEnv(t)
	src, col := started(t, e, genesys.WithQueues(gt.QueueSupport))
	conv, leg := liveCall(t, e, col, "+14155550203")
	before := col.count(conv.ID)

	e.srv.SocketClosing(500 * time.Millisecond)
	waitFor(t, "rotation", func() bool { return src.Stats().Rotations == 1 })
	conv.Disconnect(leg)
	conv.Wrapup(leg, gt.CodeResolved, "")
	col.wait(t, conv.ID, "wrap-up", wrappedUp(leg))
	time.Sleep(600 * time.Millisecond) // the old socket closes now
	st := src.Stats()
	if st.Reconnects != 0 || st.Refetches != 0 {
		t.Errorf("stats = %+v, want a gapless rotation (no reconnect, no re-fetch)", st)
	}
	if got := col.count(conv.ID) - before; got != 2 {
		t.Errorf("delivered %d snapshots after the rotation, want 2", got)
	}
	if err := src.Ready(); err != nil {
		t.Errorf("Ready = %v", err)
	}
	if n := e.srv.ConnectedSockets(); n != 1 {
		t.Errorf("connected sockets = %d, want 1", n)
	}
}

// TestFaultChannelExpiry: channels (and tokens) that expire are rotated
// before they do, without a gap. The rotation starts a fifth of the
// channel's life ahead: with a 1.5 s channel that was 300 ms, which a
// loaded CI machine could overrun (the old channel expired mid-rotation
// and a call that started in the gap was never seen; the re-fetch after a
// gap only covers the conversations already tracked).
func TestFaultChannelExpiry(t *testing.T) {
	e := newEnv(t, gt.WithChannelTTL(3*time.Second))
	src, col := started(t, e, genesys.WithQueues(gt.QueueSupport))
	waitFor(t, "two rotations", func() bool { return src.Stats().Rotations >= 2 })
	conv, leg := liveCall(t, e, col, "+14155550204")
	conv.End()
	conv.Wrapup(leg, gt.CodeResolved, "")
	col.wait(t, conv.ID, "wrap-up", wrappedUp(leg))
	if st := src.Stats(); st.Reconnects != 0 {
		t.Errorf("stats = %+v, want rotations only", st)
	}
	if n := len(e.srv.Channels()); n > 3 {
		t.Errorf("%d channels alive, want the expired ones gone", n)
	}
}

// TestFaultTokenExpiry: a channel lives no longer than its token; with
// short tokens the source refreshes the token and rotates in time.
func TestFaultTokenExpiry(t *testing.T) {
	e := newEnv(t, gt.WithTokenTTL(2*time.Second))
	src, col := started(t, e, genesys.WithQueues(gt.QueueSupport))
	waitFor(t, "a rotation", func() bool { return src.Stats().Rotations >= 1 })
	conv, leg := liveCall(t, e, col, "+14155550205")
	conv.End()
	conv.Wrapup(leg, gt.CodeResolved, "")
	col.wait(t, conv.ID, "wrap-up", wrappedUp(leg))
	st := e.srv.Stats()
	if st.TokensIssued < 2 {
		t.Errorf("tokens issued = %d, want a refresh", st.TokensIssued)
	}
	if src.Stats().Reconnects != 0 {
		t.Errorf("source stats %+v: want no reconnect", src.Stats())
	}
}

// TestFaultExpiredChannel: a channel that disappears (expired early) is
// replaced by a new one and the gap is covered by a re-fetch.
func TestFaultExpiredChannel(t *testing.T) {
	e := newEnv(t)
	src, col := started(t, e, genesys.WithQueues(gt.QueueSupport))
	conv, leg := liveCall(t, e, col, "+14155550206")
	e.srv.FailREST(gt.Fault{PathPrefix: "/api/v2/notifications/", Status: http.StatusBadGateway, Times: -1})
	e.srv.ExpireChannels()
	waitFor(t, "the drop", func() bool { return src.Ready() != nil })
	conv.End()
	conv.Wrapup(leg, gt.CodeResolved, "")
	e.srv.ClearFaults()
	col.wait(t, conv.ID, "wrap-up", wrappedUp(leg))
	if n := e.srv.Stats().ChannelsCreated; n != 2 {
		t.Errorf("channels created = %d, want 2", n)
	}
	if st := src.Stats(); st.Refetches < 1 {
		t.Errorf("stats %+v, want a re-fetch", st)
	}
}

// TestFaultMalformedFrames: garbage, unknown topics, unsupported media and
// broken conversation bodies are skipped; the source keeps going.
func TestFaultMalformedFrames(t *testing.T) {
	e := newEnv(t)
	src, col := started(t, e, genesys.WithQueues(gt.QueueSupport))
	for _, f := range []string{
		`not json at all`,
		`{"topicName":`,
		`{"topicName":"v2.users.x.presence","eventBody":{"presenceDefinition":{"id":"x"}}}`,
		`{"topicName":"v2.routing.queues.q.conversations","eventBody":{"id":"c-cobrowse","participants":[{"id":"p","purpose":"customer","cobrowsesessions":[{"state":"connected"}]}]}}`,
		`{"topicName":"v2.routing.queues.q.conversations","eventBody":{"participants":"oops"}}`,
		`{"topicName":"v2.routing.queues.q.conversations","eventBody":{"id":"","participants":[]}}`,
		`[1,2,3]`,
	} {
		e.srv.SendRaw([]byte(f))
	}
	conv, leg := liveCall(t, e, col, "+14155550207")
	conv.End()
	conv.Wrapup(leg, gt.CodeResolved, "")
	col.wait(t, conv.ID, "wrap-up", wrappedUp(leg))
	st := src.Stats()
	if st.Malformed != 5 || st.Unknown != 2 {
		t.Errorf("stats = %+v, want 5 malformed and 2 unknown", st)
	}
	if col.get("c-cobrowse") != nil {
		t.Error("a cobrowse conversation was delivered")
	}
}

// TestFaultOutOfOrder: updates released newest first still merge into the
// final state (the engine's Merge keeps the furthest progress).
func TestFaultOutOfOrder(t *testing.T) {
	e := newEnv(t)
	_, col := started(t, e, genesys.WithQueues(gt.QueueSupport))
	e.srv.HoldFrames()
	conv := e.srv.Start(gt.Spec{Media: gt.MediaChat, From: "ooo@example.org", Name: "Out Order", Queue: gt.QueueSupport})
	leg := conv.Alert(gt.AgentCarol)
	conv.Connect(leg)
	conv.Disconnect(leg)
	conv.Wrapup(leg, gt.CodeResolved, "")
	conv.PublishStale(2) // and an old state once more
	e.srv.ReleaseFrames(true)
	c := col.wait(t, conv.ID, "all frames", func(c *cti.Conversation) bool { return col.count(conv.ID) >= 5 })
	if !wrappedUp(leg)(c) {
		t.Fatalf("merged = %+v, want the final wrapped-up state", c)
	}
}

// TestResume: conversations tracked before a restart are re-fetched at
// start; the end that happened while down is delivered.
func TestResume(t *testing.T) {
	e := newEnv(t)
	conv := e.srv.Start(gt.Spec{Media: gt.MediaEmail, From: "late@example.org", Subject: "s", Body: "b", Queue: gt.QueueSupport})
	leg := conv.Alert(gt.AgentBob)
	conv.Connect(leg)
	conv.Disconnect(leg)
	conv.Wrapup(leg, gt.CodeResolved, "done while we were down")
	src := newSource(t, e, genesys.WithQueues(gt.QueueSupport))
	src.Resume([]string{conv.ID, "gone-0000"})
	col := newCollector()
	run(t, src, col)
	c := col.wait(t, conv.ID, "resumed wrap-up", wrappedUp(leg))
	if c.Media != cti.MediaEmail || c.Leg(leg).Wrapup.Notes != "done while we were down" {
		t.Errorf("resumed = %+v", c)
	}
	waitFor(t, "untracking", func() bool { return src.Tracked() == 0 })
}

// TestBackfill: a conversation that started and ended while the process
// was down, never tracked, is found by the look-up since the previous
// run's last sign of life and delivered wrapped up; one on a queue the
// source does not subscribe to is not.
func TestBackfill(t *testing.T) {
	e := newEnv(t)
	since := time.Now().Add(-time.Minute)
	conv, leg := wholeCall(e, "+14155550777", "done while we were down")
	other := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550778", Queue: gt.QueueSales})
	src := newSource(t, e, genesys.WithQueues(gt.QueueSupport))
	src.Backfill(since)
	col := newCollector()
	run(t, src, col)
	c := col.wait(t, conv.ID, "the wrap-up of a call made while down", wrappedUp(leg))
	if c.Leg(leg).Wrapup.Notes != "done while we were down" {
		t.Errorf("backfilled = %+v", c.Leg(leg).Wrapup)
	}
	if st := src.Stats(); st.Discovered != 1 {
		t.Errorf("stats = %+v, want 1 discovered", st)
	}
	if col.get(other.ID) != nil {
		t.Error("a call on a queue the source does not subscribe to was delivered")
	}
}

// TestRESTFaultsDuringConnect: 429 with Retry-After and 5xx while the
// source connects are retried inside the client.
func TestRESTFaultsDuringConnect(t *testing.T) {
	e := newEnv(t)
	e.srv.FailREST(gt.Fault{Method: "POST", PathPrefix: "/api/v2/notifications/channels", Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 1})
	e.srv.FailREST(gt.Fault{Method: "PUT", PathPrefix: "/api/v2/notifications/channels/", Status: http.StatusServiceUnavailable, Times: 2})
	start := time.Now()
	src, _ := started(t, e, genesys.WithQueues(gt.QueueSupport))
	if d := time.Since(start); d < time.Second {
		t.Errorf("connected after %v: the Retry-After of 1s was not honoured", d)
	}
	if n := e.srv.Stats().Faults; n != 3 {
		t.Errorf("faults served = %d, want 3", n)
	}
	if src.Stats().Reconnects != 0 {
		t.Errorf("stats %+v", src.Stats())
	}
}

// TestFaultForbiddenNameLookup: the OAuth client lacks
// directory:user:view, so every GET /api/v2/users/{id} is a 403. The
// agent's email is left out, and asked for once, not again for every frame
// of every call (inside the websocket's reader, against the API budget).
func TestFaultForbiddenNameLookup(t *testing.T) {
	e := newEnv(t)
	e.srv.FailREST(gt.Fault{PathPrefix: "/api/v2/users/", Status: http.StatusForbidden, Times: -1})
	_, col := started(t, e, genesys.WithQueues(gt.QueueSupport))
	before := e.srv.Stats().Requests["GET /api/v2/users/{id}"]
	var (
		last *gt.Conversation
		leg  string
	)
	for i := range 5 {
		last, leg = wholeCall(e, fmt.Sprintf("+141555503%02d", i), "n")
	}
	col.wait(t, last.ID, "the last call wrapped up", wrappedUp(leg))
	if n := e.srv.Stats().Requests["GET /api/v2/users/{id}"] - before; n > 1 {
		t.Errorf("%d user lookups for one agent over 5 calls: a 403 is asked again for every frame", n)
	}
	if l := col.get(last.ID).Leg(leg); l == nil || l.UserID != gt.AgentBob || l.Email != "" {
		t.Errorf("leg %+v, want Bob's, without the email only the lookup gives", l)
	}
}
