package genesys_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
)

// newSource builds a source with fast timings on e.
func newSource(t *testing.T, e *env, opts ...genesys.Option) *genesys.Source {
	t.Helper()
	opts = append([]genesys.Option{genesys.WithTiming(fastTiming), genesys.WithReconnectBackoff(fastBackoff),
		genesys.WithLogger(testLogger())}, opts...)
	src, err := genesys.NewSource(e.client, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// started runs a source subscribed to queues and waits until it is live.
func started(t *testing.T, e *env, opts ...genesys.Option) (*genesys.Source, *collector) {
	t.Helper()
	src := newSource(t, e, opts...)
	col := newCollector()
	run(t, src, col)
	var topics []string
	for _, tp := range src.Topics() {
		topics = append(topics, tp)
	}
	waitReady(t, e, src, topics...)
	return src, col
}

func wrappedUp(leg string) func(*cti.Conversation) bool {
	return func(c *cti.Conversation) bool {
		l := c.Leg(leg)
		return c.Ended() && l != nil && l.Phase() == cti.PhaseDone
	}
}

// TestEveryMediaEndToEnd scripts a conversation of every media and
// messaging channel on the emulator, and checks what the real SDK client
// and our websocket client decoded from the wire.
func TestEveryMediaEndToEnd(t *testing.T) {
	e := newEnv(t)
	_, col := started(t, e, genesys.WithQueues(gt.QueueSupport, gt.QueueSocial))
	type want struct {
		media   cti.Media
		channel cti.Channel
		cust    cti.Customer
	}
	cases := []struct {
		name string
		spec gt.Spec
		want want
	}{
		{"voice", gt.Spec{Media: gt.MediaVoice, From: "+14155550100", Name: "Pat Doe"},
			want{cti.MediaVoice, "", cti.Customer{Address: "tel:+14155550100", Phone: "+14155550100", Name: "Pat Doe"}}},
		{"callback", gt.Spec{Media: gt.MediaCallback, From: "+14155550101", Name: "Sam Roe"},
			want{cti.MediaCallback, "", cti.Customer{Address: "+14155550101", Phone: "+14155550101", Name: "Sam Roe"}}},
		{"chat", gt.Spec{Media: gt.MediaChat, From: "kim@example.org", Name: "Kim Lee", Body: "hello"},
			want{cti.MediaChat, "", cti.Customer{Email: "kim@example.org", Name: "Kim Lee"}}},
		{"email", gt.Spec{Media: gt.MediaEmail, From: "Jo.Ray@Example.org", Name: "Jo Ray", Subject: "Invoice", Body: "Where is it?"},
			want{cti.MediaEmail, "", cti.Customer{Address: "Jo.Ray@Example.org", Email: "jo.ray@example.org", Name: "Jo Ray"}}},
		{"sms", gt.Spec{Media: gt.MediaMessage, MessageType: "sms", From: "+447700900123", Name: "Ada", Body: "hi"},
			want{cti.MediaMessage, cti.ChannelSMS, cti.Customer{Address: "+447700900123", Phone: "+447700900123", Name: "Ada"}}},
		{"whatsapp", gt.Spec{Media: gt.MediaMessage, MessageType: "whatsapp", From: "+33612345678", Name: "Léa", Body: "bonjour"},
			want{cti.MediaMessage, cti.ChannelWhatsApp, cti.Customer{Address: "+33612345678", Phone: "+33612345678", Name: "Léa"}}},
		{"facebook", gt.Spec{Media: gt.MediaMessage, MessageType: "facebook", From: "7712345678901234", Name: "Max FB", Body: "hey"},
			want{cti.MediaMessage, cti.ChannelFacebook, cti.Customer{Address: "7712345678901234", Handle: "7712345678901234", Name: "Max FB"}}},
		{"instagram", gt.Spec{Media: gt.MediaMessage, MessageType: "instagram", From: "ig-889900", Name: "Insta", Body: "yo"},
			want{cti.MediaMessage, cti.ChannelInstagram, cti.Customer{Address: "ig-889900", Handle: "ig-889900", Name: "Insta"}}},
		{"twitter", gt.Spec{Media: gt.MediaMessage, MessageType: "twitter", From: "1234567890", Name: "@tweeter", Body: "dm"},
			want{cti.MediaMessage, cti.ChannelTwitter, cti.Customer{Address: "1234567890", Handle: "1234567890", Name: "@tweeter"}}},
		{"line", gt.Spec{Media: gt.MediaMessage, MessageType: "line", From: "U4af4980629", Name: "Line User", Body: "こんにちは"},
			want{cti.MediaMessage, cti.ChannelLine, cti.Customer{Address: "U4af4980629", Handle: "U4af4980629", Name: "Line User"}}},
		{"webmessaging", gt.Spec{Media: gt.MediaMessage, MessageType: "webmessaging", From: "b2a1f3c4-guest", Name: "Web Guest", Body: "help"},
			want{cti.MediaMessage, cti.ChannelWebMessaging, cti.Customer{Address: "b2a1f3c4-guest", Handle: "b2a1f3c4-guest", Name: "Web Guest"}}},
		{"open", gt.Spec{Media: gt.MediaMessage, MessageType: "open", From: "ext-user-42", Name: "Open User", Body: "ping"},
			want{cti.MediaMessage, cti.ChannelOpen, cti.Customer{Address: "ext-user-42", Handle: "ext-user-42", Name: "Open User"}}},
		{"social-facebook", gt.Spec{Media: gt.MediaSocial, MessageType: "facebook", From: "fan.page.user", Name: "Fan", Body: "public post", Queue: gt.QueueSocial},
			want{cti.MediaMessage, cti.ChannelFacebook, cti.Customer{Address: "fan.page.user", Handle: "fan.page.user", Name: "Fan"}}},
		{"social-twitter", gt.Spec{Media: gt.MediaSocial, MessageType: "twitter", From: "@someone", Name: "Some One", Body: "@brand help", Queue: gt.QueueSocial},
			want{cti.MediaMessage, cti.ChannelTwitter, cti.Customer{Address: "@someone", Handle: "@someone", Name: "Some One"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sp := tc.spec
			if sp.Queue == "" {
				sp.Queue = gt.QueueSupport
			}
			sp.Attributes = map[string]string{"ivr.reason": "billing"}
			conv := e.srv.Start(sp)
			leg := conv.Alert(gt.AgentAlice)
			col.wait(t, conv.ID, "alerting leg", func(c *cti.Conversation) bool {
				l := c.Leg(leg)
				return l != nil && l.State == cti.LegAlerting
			})
			conv.Connect(leg)
			col.wait(t, conv.ID, "connected leg", func(c *cti.Conversation) bool {
				l := c.Leg(leg)
				return l != nil && l.State == cti.LegConnected
			})
			conv.Disconnect(leg)
			conv.Wrapup(leg, gt.CodeResolved, "sorted", "tag1")
			c := col.wait(t, conv.ID, "wrap-up", wrappedUp(leg))
			w := tc.want
			if c.Media != w.media || c.Channel != w.channel || c.Kind() != kindOf(w) {
				t.Errorf("media/channel = %s/%s (kind %s), want %s/%s", c.Media, c.Channel, c.Kind(), w.media, w.channel)
			}
			if c.Customer != w.cust {
				t.Errorf("customer = %+v\nwant       %+v", c.Customer, w.cust)
			}
			if c.Direction != cti.Inbound || c.Queue.ID != sp.Queue || c.Attributes["ivr.reason"] != "billing" {
				t.Errorf("direction %q queue %+v attributes %v", c.Direction, c.Queue, c.Attributes)
			}
			if len(c.Agents) != 1 {
				t.Fatalf("agents = %+v, want 1 leg", c.Agents)
			}
			l := c.Agents[0]
			if l.ID != leg || l.UserID != gt.AgentAlice || l.Name != "Alice Martin" || l.Queue.ID != sp.Queue ||
				l.State != cti.LegDisconnected || l.DisconnectType != "client" || !l.WrapupExpected || l.ACW != cti.ACWComplete {
				t.Errorf("leg = %+v", l)
			}
			if l.Wrapup == nil || l.Wrapup.Code != gt.CodeResolved || l.Wrapup.Notes != "sorted" || strings.Join(l.Wrapup.Tags, ",") != "tag1" || l.Wrapup.EndTime.IsZero() {
				t.Errorf("wrapup = %+v", l.Wrapup)
			}
			if c.StartTime.IsZero() || c.ConnectedTime.IsZero() || c.EndTime.IsZero() || l.ConnectedTime.IsZero() || l.EndTime.IsZero() ||
				c.ConnectedTime.Before(c.StartTime) || c.EndTime.Before(c.ConnectedTime) {
				t.Errorf("times: start %v connected %v end %v leg %v..%v", c.StartTime, c.ConnectedTime, c.EndTime, l.ConnectedTime, l.EndTime)
			}
			if c.ObservedAt.IsZero() {
				t.Error("ObservedAt not set")
			}
		})
	}
}

func kindOf(w struct {
	media   cti.Media
	channel cti.Channel
	cust    cti.Customer
}) string {
	if w.channel != "" {
		return string(w.channel)
	}
	return string(w.media)
}

// TestTransfers checks transfers derived from the participants: a blind
// transfer to a queue and a direct transfer to an agent.
func TestTransfers(t *testing.T) {
	e := newEnv(t)
	_, col := started(t, e, genesys.WithQueues(gt.QueueSupport, gt.QueueBilling))
	conv := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550111", Queue: gt.QueueSupport})
	a := conv.Alert(gt.AgentAlice)
	conv.Connect(a)
	conv.Transfer(a, gt.QueueBilling)
	b := conv.Alert(gt.AgentBob)
	conv.Connect(b)
	c := conv.TransferTo(b, gt.AgentCarol)
	conv.Connect(c)
	conv.End()
	for _, leg := range []string{a, b, c} {
		conv.Wrapup(leg, gt.CodeRefund, "")
	}
	got := col.wait(t, conv.ID, "three wrapped legs", func(x *cti.Conversation) bool {
		return wrappedUp(a)(x) && wrappedUp(b)(x) && wrappedUp(c)(x)
	})
	if len(got.Transfers) != 2 {
		t.Fatalf("transfers = %+v, want 2", got.Transfers)
	}
	t1, t2 := got.Transfers[0], got.Transfers[1]
	if t1.FromUser.ID != gt.AgentAlice || t1.ToQueue.ID != gt.QueueBilling || t1.ToUser.ID != "" || t1.At.IsZero() || t1.Kind != cti.TransferBlind {
		t.Errorf("first transfer = %+v, want Alice → Billing queue", t1)
	}
	if t2.FromUser.ID != gt.AgentBob || t2.ToUser.ID != gt.AgentCarol || t2.ToQueue.ID != "" || t2.Kind != cti.TransferBlind {
		t.Errorf("second transfer = %+v, want Bob → Carol", t2)
	}
	if !got.Leg(a).Transferred() || !got.Leg(b).Transferred() || got.Leg(c).Transferred() {
		t.Errorf("Transferred(): %v %v %v", got.Leg(a).Transferred(), got.Leg(b).Transferred(), got.Leg(c).Transferred())
	}
	if got.Queue.ID != gt.QueueBilling || got.Leg(b).Queue.ID != gt.QueueBilling || got.Leg(a).Queue.ID != gt.QueueSupport {
		t.Errorf("queues: conversation %v, legs %v %v", got.Queue, got.Leg(a).Queue, got.Leg(b).Queue)
	}
	if got.Customer.Phone != "+14155550111" || got.Leg(c).DisconnectType != "peer" {
		t.Errorf("customer %+v, last leg disconnect %q", got.Customer, got.Leg(c).DisconnectType)
	}
}

// TestConsultTransfer: an attended transfer (the agent consults another,
// then hands the call over: disconnectType "transfer.consult") is a
// transfer to the consulted agent.
func TestConsultTransfer(t *testing.T) {
	e := newEnv(t)
	_, col := started(t, e, genesys.WithQueues(gt.QueueSupport))
	conv := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550112", Queue: gt.QueueSupport})
	a := conv.Alert(gt.AgentAlice)
	conv.Connect(a)
	b := conv.Consult(a, gt.AgentBob)
	conv.Connect(b)
	conv.CompleteConsult(a)
	conv.End()
	conv.Wrapup(a, gt.CodeFollowUp, "")
	conv.Wrapup(b, gt.CodeRefund, "")
	got := col.wait(t, conv.ID, "both legs wrapped", func(x *cti.Conversation) bool { return wrappedUp(a)(x) && wrappedUp(b)(x) })
	if len(got.Transfers) != 1 {
		t.Fatalf("transfers = %+v, want 1", got.Transfers)
	}
	if tr := got.Transfers[0]; tr.Kind != cti.TransferConsult || tr.FromUser.ID != gt.AgentAlice || tr.ToUser.ID != gt.AgentBob || tr.At.IsZero() {
		t.Errorf("transfer = %+v, want a consult from Alice to Bob", tr)
	}
	if !got.Leg(a).Transferred() || got.Leg(b).Transferred() {
		t.Errorf("Transferred(): %v %v", got.Leg(a).Transferred(), got.Leg(b).Transferred())
	}
}

// TestFailedConsultThenTransfer: a consult the consulted agent declines,
// then a blind transfer to a queue: the transfer went to the queue, not to
// the agent who had already left.
func TestFailedConsultThenTransfer(t *testing.T) {
	e := newEnv(t)
	_, col := started(t, e, genesys.WithQueues(gt.QueueSupport, gt.QueueBilling))
	conv := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550113", Queue: gt.QueueSupport})
	a := conv.Alert(gt.AgentAlice)
	conv.Connect(a)
	b := conv.Consult(a, gt.AgentBob)
	conv.Disconnect(b)               // Bob declines
	time.Sleep(2 * time.Millisecond) // the emulator's times are in whole milliseconds
	conv.Transfer(a, gt.QueueBilling)
	c := conv.Alert(gt.AgentCarol)
	conv.Connect(c)
	conv.End()
	conv.Wrapup(a, gt.CodeFollowUp, "")
	conv.Wrapup(c, gt.CodeRefund, "")
	got := col.wait(t, conv.ID, "both legs wrapped", func(x *cti.Conversation) bool { return wrappedUp(a)(x) && wrappedUp(c)(x) })
	if len(got.Transfers) != 1 {
		t.Fatalf("transfers = %+v, want 1", got.Transfers)
	}
	if tr := got.Transfers[0]; tr.Kind != cti.TransferBlind || tr.FromUser.ID != gt.AgentAlice || tr.ToQueue.ID != gt.QueueBilling || tr.ToUser.ID != "" {
		t.Errorf("transfer = %+v, want Alice → the Billing queue", tr)
	}
}

// TestOutboundCampaign: a campaign call is outbound with its campaign.
func TestOutboundCampaign(t *testing.T) {
	e := newEnv(t)
	_, col := started(t, e, genesys.WithUsers(gt.AgentDave))
	conv := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+12125550123", Campaign: gt.CampaignRenewals})
	leg := conv.Alert(gt.AgentDave)
	conv.Connect(leg)
	conv.End()
	conv.Wrapup(leg, gt.CodeSale, "renewed")
	c := col.wait(t, conv.ID, "wrap-up", wrappedUp(leg))
	if c.Direction != cti.Outbound || c.Campaign.ID != gt.CampaignRenewals || c.Queue.ID != gt.QueueSales {
		t.Errorf("direction %q campaign %+v queue %+v", c.Direction, c.Campaign, c.Queue)
	}
	if c.Customer.Phone != "+12125550123" {
		t.Errorf("customer = %+v", c.Customer)
	}
}

// TestDuplicatesSuppressed subscribes to the queue and the agent, so every
// update arrives twice (as with Genesys), and also doubles every frame:
// each distinct update is delivered once.
func TestDuplicatesSuppressed(t *testing.T) {
	e := newEnv(t)
	src, col := started(t, e, genesys.WithQueues(gt.QueueSupport), genesys.WithUsers(gt.AgentAlice))
	e.srv.DuplicateFrames(true)
	conv := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550122", Queue: gt.QueueSupport})
	leg := conv.Alert(gt.AgentAlice)
	conv.Connect(leg)
	conv.Disconnect(leg)
	conv.Wrapup(leg, gt.CodeResolved, "")
	col.wait(t, conv.ID, "wrap-up", wrappedUp(leg))
	conv.Republish() // the same body again, later
	// The start frame went to the queue only (no agent yet), twice; the
	// four agent steps and the republish to both topics, twice each.
	waitFor(t, "all frames", func() bool { return src.Stats().Frames >= 2+5*4 })
	st := src.Stats()
	if got := col.count(conv.ID); got != 5 {
		t.Errorf("delivered %d snapshots, want 5 (one per distinct update); stats %+v", got, st)
	}
	if st.Duplicates != st.Frames-5 {
		t.Errorf("duplicates = %d of %d frames, want %d", st.Duplicates, st.Frames, st.Frames-5)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRunBadCredentials: Run fails for good, naming the problem, without
// the secret.
func TestRunBadCredentials(t *testing.T) {
	srv := gt.NewServer()
	defer srv.Close()
	cfg := genesys.Config{ClientID: srv.ClientID, ClientSecret: "wrong-secret-xyz", APIURL: srv.URL}
	client, err := genesys.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	src, err := genesys.NewSource(client, genesys.WithQueues(gt.QueueSupport))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = src.Run(ctx, cti.HandlerFunc(func(context.Context, *cti.Conversation) error { return nil }))
	var ae *genesys.AuthError
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != "invalid_client" || !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("Run = %v, want an AuthError 401 invalid_client", err)
	}
	if strings.Contains(err.Error(), "wrong-secret-xyz") {
		t.Fatalf("error leaks the secret: %v", err)
	}
	if src.Ready() == nil {
		t.Error("Ready() = nil after a failed Run")
	}
}

// TestChannelSplit: past the topics-per-channel limit the source uses
// several channels, each within the limit, and never more than allowed.
func TestChannelSplit(t *testing.T) {
	e := newEnv(t)
	src, col := started(t, e, genesys.WithChannelLimits(2, 4),
		genesys.WithQueues(gt.QueueSupport, gt.QueueSales, gt.QueueBilling), genesys.WithUsers(gt.AgentAlice, gt.AgentBob))
	chans := e.srv.Channels()
	if len(chans) != 3 {
		t.Fatalf("channels = %d, want 3 (5 topics, 2 per channel)", len(chans))
	}
	seen := map[string]bool{}
	for _, id := range chans {
		ts := e.srv.Topics(id)
		if len(ts) > 2 {
			t.Errorf("channel %s has %d topics", id, len(ts))
		}
		for _, tp := range ts {
			seen[tp] = true
		}
	}
	if len(seen) != 5 {
		t.Errorf("subscribed topics = %v, want all 5", seen)
	}
	// Events flow on every channel.
	conv := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550133", Queue: gt.QueueBilling})
	leg := conv.Alert(gt.AgentBob)
	col.wait(t, conv.ID, "alert", func(c *cti.Conversation) bool { return c.Leg(leg) != nil })
	if src.Stats().Channels != 3 {
		t.Errorf("stats = %+v", src.Stats())
	}

	// Too many topics for the channels allowed is a configuration error.
	_, err := genesys.NewSource(e.client, genesys.WithChannelLimits(1, 3), genesys.WithQueues(gt.QueueSupport, gt.QueueSales, gt.QueueBilling))
	if !errors.Is(err, cti.ErrInvalid) {
		t.Errorf("NewSource with 3 topics on 1-topic channels, max 3 = %v, want a config error", err)
	}
}

// keeper keeps every delivered snapshot as delivered (no copy) and its
// JSON at delivery.
type keeper struct {
	mu    sync.Mutex
	snaps []*cti.Conversation
	at    [][]byte
}

func (k *keeper) HandleConversation(_ context.Context, c *cti.Conversation) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.snaps, k.at = append(k.snaps, c), append(k.at, b)
	k.mu.Unlock()
	return nil
}

func (k *keeper) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.snaps)
}

// TestSnapshotsOutliveTheFrameBuffer: the socket reader reads every frame
// into one reused buffer, so nothing delivered may point into it. Frames
// of every media (different lengths, escapes, non-ASCII text) go through
// the same socket; each snapshot, kept as delivered, must still read as
// it did when delivered once the later frames have overwritten the
// buffer.
func TestSnapshotsOutliveTheFrameBuffer(t *testing.T) {
	e := newEnv(t)
	src := newSource(t, e, genesys.WithQueues(gt.QueueSupport))
	k := &keeper{}
	stop := run(t, src, k)
	var topics []string
	for _, tp := range src.Topics() {
		topics = append(topics, tp)
	}
	waitReady(t, e, src, topics...)
	specs := []gt.Spec{
		{Media: gt.MediaVoice, From: "+14155550100", Name: "Pat \"Quoted\" Doe"},
		{Media: gt.MediaEmail, From: "Jo.Ray@Example.org", Name: "Jo Ray", Subject: "Invoice\tlate", Body: "Where is it?\n"},
		{Media: gt.MediaMessage, MessageType: "line", From: "U4af4980629", Name: "ライン", Body: "こんにちは"},
		{Media: gt.MediaMessage, MessageType: "whatsapp", From: "+33612345678", Name: "Léa", Body: "bonjour"},
		{Media: gt.MediaCallback, From: "+14155550101", Name: "Sam Roe"},
	}
	for _, sp := range specs {
		sp.Queue = gt.QueueSupport
		sp.Attributes = map[string]string{"ivr.reason": sp.Name + " / " + sp.From}
		c := e.srv.Start(sp)
		leg := c.Alert(gt.AgentAlice)
		c.Connect(leg)
		c.Disconnect(leg)
		c.Wrapup(leg, gt.CodeResolved, "notes for "+sp.Name, "tag")
	}
	deadline := time.Now().Add(10 * time.Second)
	for k.len() < 5*len(specs) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if k.len() < 5*len(specs) {
		t.Fatalf("%d snapshots delivered, want at least %d", k.len(), 5*len(specs))
	}
	for i, c := range k.snaps {
		now, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(now, k.at[i]) {
			t.Fatalf("snapshot %d changed after delivery:\nthen %s\nnow  %s", i, k.at[i], now)
		}
	}
}
