package genesys_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
)

func TestDefaultPhone(t *testing.T) {
	for in, want := range map[string]string{
		"tel:+14155550100":                     "+14155550100",
		"TEL:+1 (415) 555-0100":                "+14155550100",
		"+44 20 7946 0958":                     "+442079460958",
		"sip:+14155550100@10.0.0.1;user=phone": "+14155550100",
		"sips:4155550100@carrier.example":      "4155550100",
		"sip:alice@example.com":                "",
		"tel:+1-415-555-0100;ext=12":           "+14155550100",
		"415.555.0100":                         "4155550100",
		"00 33 6 12 34 56 78":                  "0033612345678",
		"anonymous":                            "",
		"":                                     "",
		"12":                                   "",
		"1+2345":                               "",
	} {
		if got := genesys.DefaultPhone(in); got != want {
			t.Errorf("DefaultPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitFrame(t *testing.T) {
	body := `{"id":"c1","participants":[{"id":"p","attributes":{"metadata":"x","eventBody":"y"}}]}`
	for _, f := range []string{
		`{"topicName":"v2.users.u.conversations","version":"2","eventBody":` + body + `,"metadata":{"CorrelationId":"abc"}}`,
		`{"topicName":"v2.users.u.conversations","eventBody":` + body + `}`,
		"{\n  \"topicName\" : \"v2.users.u.conversations\",\n  \"eventBody\" :  " + body + " ,\n  \"metadata\" : { \"CorrelationId\" : \"a}b\" }\n}\n",
		`{"eventBody":` + body + `,"topicName":"v2.users.u.conversations"}`,                         // key order: fallback
		`{"metadata":{"x":1},"topicName":"v2.users.u.conversations","eventBody":` + body + `}`,      // metadata first: fallback
		`{"topicName":"v2.users.u.conversations","eventBody":` + body + `,"metadata":{"a":[1,{}]}}`, // nested metadata
		`{"topicName":"v2.users.u.conversations","eventBody":` + body + `,"version":"2"}`,           // a member after the body
		`{"topicName":"v2.users.u.conversations","eventBody":` + body + `,"metadata":{},"version":"2"}`,
	} {
		topic, got, err := genesys.SplitFrame([]byte(f))
		if err != nil || string(topic) != "v2.users.u.conversations" {
			t.Errorf("%s: topic %q err %v", f, topic, err)
			continue
		}
		var a, b any
		if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(body), &b) != nil || fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s: body %s", f, got)
		}
	}
	for _, f := range []string{``, `x`, `[]`, `{}`, `{"topicName":1}`, `{"topicName":"t","eventBody":{`, `{"eventBody":{}}`} {
		if _, _, err := genesys.SplitFrame([]byte(f)); err == nil {
			t.Errorf("SplitFrame(%q): no error", f)
		}
	}
}

// TestDuplicateAcrossTopics: the same update on the queue topic and the
// user topic (different envelopes, different correlation ids) is
// recognised from the body alone; a different update is not.
func TestDuplicateAcrossTopics(t *testing.T) {
	frames := loadFrames(t)
	f := frames["voice-transfer-wrapup"]
	var env struct {
		EventBody json.RawMessage `json:"eventBody"`
	}
	if err := json.Unmarshal(f, &env); err != nil {
		t.Fatal(err)
	}
	userFrame := []byte(`{"topicName":"v2.users.u1.conversations","version":"2","eventBody":` + string(env.EventBody) + `,"metadata":{"CorrelationId":"other"}}`)
	r := genesys.NewRecent(64)
	_, b1, _ := genesys.SplitFrame(f)
	_, b2, _ := genesys.SplitFrame(userFrame)
	if r.Seen(b1) || !r.Seen(b2) {
		t.Fatal("the same body on two topics was not recognised as a duplicate")
	}
	_, b3, _ := genesys.SplitFrame(frames["voice-alerting"])
	if r.Seen(b3) {
		t.Fatal("a different body was taken for a duplicate")
	}
	// The window forgets the oldest.
	for i := range 100 {
		r.Seen([]byte(fmt.Sprintf(`{"n":%d}`, i)))
	}
	if r.Seen(b1) {
		t.Error("a body older than the window is still remembered")
	}
}

func TestDecodeEdgeCases(t *testing.T) {
	dec := &genesys.Decoder{Phone: func(s string) string { return "N(" + genesys.DefaultPhone(s) + ")" }}
	at := fixedTime
	// REST shape with ani/dnis, sip address, wrap-up name, startAlertingTime.
	rest := `{"id":"c9","startTime":"2026-11-24T09:00:00.000Z","participants":[
	 {"id":"cu","purpose":"customer","ani":"sip:+14155550199@gw;user=phone","dnis":"tel:+18005550199","aniName":"CNAM Name",
	  "calls":[{"id":"k1","state":"connected","direction":"inbound","connectedTime":"2026-11-24T09:00:01Z"}]},
	 {"id":"ivr","purpose":"ivr","calls":[{"id":"k2","state":"disconnected","disconnectType":"transfer"}]},
	 {"id":"q1","purpose":"acd","queueId":"Q1","queueName":"Support","calls":[{"state":"disconnected"}]},
	 {"id":"ag","purpose":"agent","userId":"U1","name":"Al","queueId":"Q1","queueName":"Support","wrapupRequired":true,
	  "wrapup":{"code":"W1","name":"Resolved","notes":"n","durationSeconds":12,"endTime":"2026-11-24T09:05:00Z"},
	  "calls":[{"id":"k3","state":"terminated","disconnectType":"client","startAlertingTime":"2026-11-24T09:00:02Z",
	   "connectedTime":"2026-11-24T09:00:03Z","disconnectedTime":"2026-11-24T09:04:00Z","afterCallWork":{"state":"complete"}}]}]}`
	c, err := dec.Conversation([]byte(rest), at)
	if err != nil {
		t.Fatal(err)
	}
	l := c.Leg("ag")
	if c.Customer.Address != "sip:+14155550199@gw;user=phone" || c.Customer.Phone != "N(+14155550199)" || c.Customer.Name != "CNAM Name" {
		t.Errorf("customer = %+v", c.Customer)
	}
	if l == nil || l.State != cti.LegDisconnected || l.Wrapup.Name != "Resolved" || l.Wrapup.Duration != 12*time.Second ||
		l.AlertTime.IsZero() || l.Queue != (cti.Ref{ID: "Q1", Name: "Support"}) || l.ACW != cti.ACWComplete || l.Phase() != cti.PhaseDone {
		t.Errorf("leg = %+v %+v", l, l.Wrapup)
	}
	if c.Ended() || c.Queue != (cti.Ref{ID: "Q1", Name: "Support"}) || !c.StartTime.Equal(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)) || c.ObservedAt != at {
		t.Errorf("conversation = %+v", c)
	}
	if len(c.Transfers) != 0 {
		t.Errorf("the IVR's transfer to the queue is not an agent transfer: %+v", c.Transfers)
	}

	// An internal call (no customer participant) ends when everyone left.
	internal := `{"id":"c10","participants":[
	 {"id":"a","purpose":"user","userId":"U1","calls":[{"state":"disconnected","disconnectedTime":"2026-11-24T09:01:00Z"}]},
	 {"id":"b","purpose":"user","userId":"U2","calls":[{"state":"disconnected","disconnectedTime":"2026-11-24T09:02:00Z"}]}]}`
	c, err = dec.Conversation([]byte(internal), at)
	if err != nil || len(c.Agents) != 2 || !c.EndTime.Equal(time.Date(2026, 11, 24, 9, 2, 0, 0, time.UTC)) {
		t.Errorf("internal call = %+v, %v", c, err)
	}

	// Unknown media, junk times, nulls: skipped or tolerated, never a panic.
	if _, err := dec.Conversation([]byte(`{"id":"v","participants":[{"purpose":"customer","videos":[{}]}]}`), at); !errors.Is(err, genesys.ErrUnknownMedia) {
		t.Errorf("video = %v, want ErrUnknownMedia", err)
	}
	c, err = dec.Conversation([]byte(`{"id":"n","participants":[{"id":"p","purpose":"agent","userId":"u","wrapup":null,"attributes":null,
	  "chats":[{"state":"alerting","connectedTime":"","disconnectedTime":null,"afterCallWork":{"state":"weird"}}]}]}`), at)
	if err != nil || c.Agents[0].State != cti.LegAlerting || c.Agents[0].ACW != "" || c.Direction != cti.Inbound {
		t.Errorf("tolerant decode = %+v, %v", c, err)
	}
	if _, err := dec.Conversation([]byte(`{"participants":[]}`), at); err == nil {
		t.Error("a conversation without id decoded")
	}

	// Email address with a display name; outbound message: the customer is toAddress.
	c, _ = dec.Conversation([]byte(`{"id":"e","participants":[{"id":"p","purpose":"customer","address":"\"Doe, Jo\" <Jo@Example.COM>","emails":[{"state":"connected","direction":"inbound"}]}]}`), at)
	if c.Customer.Email != "jo@example.com" || c.Customer.Name != "Doe, Jo" {
		t.Errorf("email customer = %+v", c.Customer)
	}
	c, _ = dec.Conversation([]byte(`{"id":"m","participants":[{"id":"p","purpose":"customer","messages":[{"state":"connected","direction":"outbound","type":"sms",
	  "fromAddress":{"addressNormalized":"+18005550199"},"toAddress":{"addressNormalized":"+447700900123","name":"Ada"}}]}]}`), at)
	if c.Customer.Phone != "N(+447700900123)" || c.Customer.Name != "Ada" || c.Direction != cti.Outbound || c.Channel != cti.ChannelSMS {
		t.Errorf("outbound sms = %+v %s", c.Customer, c.Direction)
	}
}

// TestHandleFrameIgnoresNoise drives the source's frame path directly.
func TestHandleFrameIgnoresNoise(t *testing.T) {
	e := newEnv(t)
	src := newSource(t, e, genesys.WithQueues("q"))
	var got []*cti.Conversation
	h := cti.HandlerFunc(func(_ context.Context, c *cti.Conversation) error { got = append(got, c); return nil })
	frames := loadFrames(t)
	genesys.HandleFrame(src, h, frames["chat"])
	genesys.HandleFrame(src, h, frames["chat"]) // duplicate
	genesys.HandleFrame(src, h, []byte(`{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}`))
	genesys.HandleFrame(src, h, []byte(`{"topicName":"v2.system.socket_closing","eventBody":{"message":"x"}}`))
	genesys.HandleFrame(src, h, []byte(`{{{`))
	if len(got) != 1 || got[0].Media != cti.MediaChat {
		t.Fatalf("delivered %d, want the chat once", len(got))
	}
	st := src.Stats()
	if st.Duplicates != 1 || st.Heartbeats != 1 || st.Malformed != 1 || st.Frames != 2 {
		t.Errorf("stats = %+v", st)
	}
}

// FuzzFrame: no frame makes the decoder panic, and what decodes is sane.
// Seeds: testdata/fuzz/FuzzFrame (the realistic frame corpus).
func FuzzFrame(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "frames", "*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"topicName":"v2.users.x.conversations","eventBody":{"id":"a","participants":[{"purpose":"agent","calls":[{}]}]}}`))
	f.Add([]byte(`{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}`))
	dec := &genesys.Decoder{}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The quick split agrees with a real decode of the envelope (when
		// its members are not repeated, which JSON leaves undefined).
		var env struct {
			TopicName string          `json:"topicName"`
			EventBody json.RawMessage `json:"eventBody"`
		}
		if json.Unmarshal(b, &env) == nil && env.TopicName != "" && len(env.EventBody) > 0 && env.EventBody[0] == '{' &&
			bytes.Count(b, []byte(`"eventBody"`)) == 1 && bytes.Count(b, []byte(`"topicName"`)) == 1 && bytes.Count(b, []byte(`"metadata"`)) <= 1 {
			topic, body, err := genesys.SplitFrame(b)
			if err != nil || string(topic) != env.TopicName || !bytes.Equal(body, env.EventBody) {
				t.Fatalf("split %q: topic %q body %q err %v; want %q %q", b, topic, body, err, env.TopicName, env.EventBody)
			}
		}
		topic, c, err := dec.Frame(b, fixedTime)
		if err != nil {
			return
		}
		if c == nil {
			return
		}
		if c.ID == "" || !strings.HasSuffix(topic, ".conversations") || c.Media == "" {
			t.Fatalf("decoded %q into %+v", topic, c)
		}
		for _, l := range c.Agents {
			_ = l.Phase()
		}
		_ = c.Clone()
		c.Merge(c.Clone())
	})
}

// caseVariantKey reports whether v has an object key that differs from a
// lean field name only by case (encoding/json would match it; the lean
// decoder, like Genesys, does not vary case).
func caseVariantKey(v any, names map[string]bool, lower map[string]bool) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if !names[k] && lower[strings.ToLower(k)] {
				return true
			}
			if caseVariantKey(x, names, lower) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if caseVariantKey(x, names, lower) {
				return true
			}
		}
	}
	return false
}

// FuzzLeanMatchesStdlib holds the hand-written decoder to encoding/json:
// the same input is accepted or rejected by both, and accepted input gives
// the same structs.
func FuzzLeanMatchesStdlib(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "frames", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		_, body, _ := genesys.SplitFrame(b)
		f.Add(body)
	}
	for _, s := range []string{
		`null`, `{}`, `[]`, `{"id":"a","id":"b"}`, `{"participants":[{"id":"x","attributes":{"a":"1"}},{"calls":[{"state":"c"}]}],"participants":[{"attributes":{"b":null}}]}`,
		`{"id":"\ud83d\ude00 \ud800 \u00e9 \/ \"","participants":null}`, `{"participants":[{"wrapup":{"durationSeconds":1.5}}]}`,
		`{"participants":[{"calls":[{"self":"tel:+1","other":{"name":"x"},"connectedTime":"2026-01-01T00:00:00Z"}]}]}`,
		`{"participants":[{"calls":[{"self":5}]}]}`, "{\"id\":\"\xff\xfe\"}", `{"participants":[{"wrapupRequired":"true"}]}`,
		`{"participants":[{"messages":[{"messages":[{"messageId":"m"}],"type":"sms"}],"wrapup":null,"wrapup":{"tags":["a",null]}}]}`,
		`{"id":"a"} x`, `{"id":"a",}`, `{"id" "a"}`, `{"participants":[{"callbacks":[{"callbackNumbers":["1","2"],"callbackNumbers":[null]}]}]}`,
	} {
		f.Add([]byte(s))
	}
	names := map[string]bool{}
	lower := map[string]bool{}
	for _, n := range genesys.LeanFieldNames() {
		names[n], lower[strings.ToLower(n)] = true, true
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lean, std, lerr, serr := genesys.DecodeBoth(b)
		if (lerr == nil) != (serr == nil) {
			var v any
			if json.Unmarshal(b, &v) == nil && caseVariantKey(v, names, lower) {
				return
			}
			t.Fatalf("%q: lean err %v, encoding/json err %v", b, lerr, serr)
		}
		if lerr != nil {
			return
		}
		var v any
		if json.Unmarshal(b, &v) == nil && caseVariantKey(v, names, lower) {
			return
		}
		if !reflect.DeepEqual(lean, std) {
			t.Fatalf("%q:\nlean %+v\nstd  %+v", b, lean, std)
		}
	})
}

func TestLegStates(t *testing.T) {
	dec := &genesys.Decoder{}
	for state, want := range map[string]cti.LegState{
		"alerting": cti.LegAlerting, "offering": cti.LegAlerting, "dialing": cti.LegAlerting, "contacting": cti.LegAlerting,
		"connected": cti.LegConnected, "disconnected": cti.LegDisconnected, "terminated": cti.LegDisconnected,
		"scheduled": "", "none": "", "": "",
	} {
		body := `{"id":"c","participants":[{"id":"a","purpose":"agent","userId":"u","calls":[{"state":"` + state + `"}]}]}`
		c, err := dec.Conversation([]byte(body), fixedTime)
		if err != nil || len(c.Agents) != 1 || c.Agents[0].State != want {
			t.Errorf("state %q: %+v %v, want %q", state, c, err, want)
		}
	}
	// A callback leg: the callback connected while the call it placed
	// dials; then both end.
	body := `{"id":"c","participants":[{"id":"a","purpose":"agent","userId":"u","wrapupRequired":true,
	  "callbacks":[{"state":"connected","afterCallWorkRequired":true}],"calls":[{"state":"dialing"}]}]}`
	c, _ := dec.Conversation([]byte(body), fixedTime)
	if c.Media != cti.MediaCallback || c.Agents[0].State != cti.LegConnected || !c.Agents[0].WrapupExpected {
		t.Errorf("callback leg = %+v", c)
	}
}

// TestTransferDestinationPastQueues: a transfer's destination among the
// participants that followed the transferring agent. A consult through a
// queue that an agent answered before the hand-over goes to the queue (it
// routed the call on before the transfer, as it would have after); a
// queue consult that ended unanswered is passed over for the queue of the
// blind transfer that followed. From the conversation's participants and
// from analytics segments alike.
func TestTransferDestinationPastQueues(t *testing.T) {
	const (
		t0 = "2026-12-01T10:00:00.000Z"
		t1 = "2026-12-01T10:00:05.000Z"
		t2 = "2026-12-01T10:00:10.000Z"
		t3 = "2026-12-01T10:00:20.000Z"
		t4 = "2026-12-01T10:00:30.000Z"
	)
	call := func(state, disc, from, to string) string {
		s := `{"id":"k","state":"` + state + `","direction":"inbound","connectedTime":"` + from + `"`
		if disc != "" {
			s += `,"disconnectType":"` + disc + `","disconnectedTime":"` + to + `"`
		}
		return s + `}`
	}
	part := func(id, purpose, user, queue, c string) string {
		return `{"id":"` + id + `","purpose":"` + purpose + `","userId":"` + user + `","queueId":"` + queue + `","calls":[` + c + `]}`
	}
	seg := func(typ, from, to, queue, disc string) string {
		return `{"segmentType":"` + typ + `","segmentStart":"` + from + `","segmentEnd":"` + to + `","queueId":"` + queue + `","disconnectType":"` + disc + `"}`
	}
	apart := func(id, purpose, user string, segs ...string) string {
		return `{"participantId":"` + id + `","purpose":"` + purpose + `","userId":"` + user + `","sessions":[{"mediaType":"voice","segments":[` + strings.Join(segs, ",") + `]}]}`
	}
	for _, tc := range []struct {
		name            string
		parts, analytic []string
		toQueue         string
	}{
		{
			name: "consult through a queue, answered before the hand-over",
			parts: []string{
				part("p1", "customer", "", "", call("connected", "", t0, "")),
				part("p2", "acd", "", "q-support", call("disconnected", "transfer", t0, t1)),
				part("p3", "agent", "u-alice", "q-support", call("disconnected", "transfer.consult", t1, t4)),
				part("p4", "acd", "", "q-billing", call("disconnected", "transfer", t2, t3)),
				part("p5", "agent", "u-carol", "q-billing", call("connected", "", t3, "")),
			},
			analytic: []string{
				apart("p2", "acd", "", seg("interact", t0, t1, "q-support", "transfer")),
				apart("p3", "agent", "u-alice", seg("interact", t1, t4, "q-support", "consultTransfer")),
				apart("p4", "acd", "", seg("interact", t2, t3, "q-billing", "transfer")),
				apart("p5", "agent", "u-carol", seg("interact", t3, t4, "q-billing", "")),
			},
			toQueue: "q-billing",
		},
		{
			name: "unanswered queue consult, then a blind transfer",
			parts: []string{
				part("p1", "customer", "", "", call("connected", "", t0, "")),
				part("p2", "acd", "", "q-support", call("disconnected", "transfer", t0, t1)),
				part("p3", "agent", "u-alice", "q-support", call("disconnected", "transfer", t1, t4)),
				part("p4", "acd", "", "q-billing", call("disconnected", "peer", t2, t3)),
				part("p5", "acd", "", "q-sales", call("connected", "", t4, "")),
			},
			analytic: []string{
				apart("p2", "acd", "", seg("interact", t0, t1, "q-support", "transfer")),
				apart("p3", "agent", "u-alice", seg("interact", t1, t4, "q-support", "transfer")),
				apart("p4", "acd", "", seg("interact", t2, t3, "q-billing", "peer")),
				apart("p5", "acd", "", seg("interact", t4, t4, "q-sales", "")),
			},
			toQueue: "q-sales",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"id":"c-transfer","startTime":"` + t0 + `","participants":[` + strings.Join(tc.parts, ",") + `]}`
			c, err := (&genesys.Decoder{}).Conversation([]byte(body), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Transfers) != 1 || c.Transfers[0].FromUser.ID != "u-alice" || c.Transfers[0].ToQueue.ID != tc.toQueue || c.Transfers[0].ToUser.ID != "" {
				t.Errorf("from the participants: %+v, want Alice → %s", c.Transfers, tc.toQueue)
			}
			c.Transfers = nil
			if err := genesys.ApplyAnalytics(c, []byte(`{"conversationStart":"`+t0+`","participants":[`+strings.Join(tc.analytic, ",")+`]}`)); err != nil {
				t.Fatal(err)
			}
			if len(c.Transfers) != 1 || c.Transfers[0].FromUser.ID != "u-alice" || c.Transfers[0].ToQueue.ID != tc.toQueue || c.Transfers[0].ToUser.ID != "" {
				t.Errorf("from analytics: %+v, want Alice → %s", c.Transfers, tc.toQueue)
			}
		})
	}
}

// TestSupervisorIsNotALeg: a supervisor listening in on (or coaching)
// agent A's call is a participant with purpose agent and
// monitoredParticipantId (coachedParticipantId). It is no leg of the
// conversation (no pop, no sync), nor the destination of A's transfer to
// the Billing queue, whether from the participants or from analytics.
func TestSupervisorIsNotALeg(t *testing.T) {
	for _, field := range []string{"monitoredParticipantId", "coachedParticipantId"} {
		body := `{"id":"c1","participants":[
 {"id":"cust","purpose":"customer","address":"tel:+14155550100","calls":[{"id":"k1","state":"connected","direction":"inbound","connectedTime":"2026-01-01T10:00:00Z"}]},
 {"id":"acd1","purpose":"acd","queueId":"qSupport","calls":[{"state":"disconnected","disconnectType":"transfer","disconnectedTime":"2026-01-01T10:00:40Z"}]},
 {"id":"legA","purpose":"agent","userId":"uA","queueId":"qSupport","calls":[{"id":"a1","state":"disconnected","direction":"inbound","disconnectType":"transfer","connectedTime":"2026-01-01T10:00:40Z","disconnectedTime":"2026-01-01T10:03:00Z"}]},
 {"id":"sup","purpose":"agent","userId":"uSupervisor","` + field + `":"legA","calls":[{"id":"s1","state":"disconnected","direction":"inbound","disconnectType":"client","connectedTime":"2026-01-01T10:01:00Z","disconnectedTime":"2026-01-01T10:03:00Z"}]},
 {"id":"acd2","purpose":"acd","queueId":"qBilling","calls":[{"state":"disconnected","disconnectType":"transfer","disconnectedTime":"2026-01-01T10:03:20Z"}]},
 {"id":"legB","purpose":"agent","userId":"uB","queueId":"qBilling","calls":[{"id":"b1","state":"connected","direction":"inbound","connectedTime":"2026-01-01T10:03:20Z"}]}]}`
		c, err := (&genesys.Decoder{}).Conversation([]byte(body), fixedTime)
		if err != nil {
			t.Fatal(err)
		}
		var users []string
		for _, l := range c.Agents {
			users = append(users, l.UserID)
		}
		if strings.Join(users, ",") != "uA,uB" {
			t.Errorf("%s: legs of %v, want uA and uB", field, users)
		}
		if len(c.Transfers) != 1 || c.Transfers[0].ToQueue.ID != "qBilling" || c.Transfers[0].ToUser.ID != "" {
			t.Errorf("%s: transfers %+v, want A to the Billing queue", field, c.Transfers)
		}
		c.Transfers = nil
		analytics := `{"participants":[
 {"participantId":"legA","purpose":"agent","userId":"uA","sessions":[{"mediaType":"voice","segments":[{"segmentType":"interact","segmentStart":"2026-01-01T10:00:40Z","segmentEnd":"2026-01-01T10:03:00Z","queueId":"qSupport","disconnectType":"transfer"}]}]},
 {"participantId":"sup","purpose":"agent","userId":"uSupervisor","sessions":[{"mediaType":"voice","` + field + `":"legA","segments":[{"segmentType":"interact","segmentStart":"2026-01-01T10:01:00Z","segmentEnd":"2026-01-01T10:03:00Z","disconnectType":"client"}]}]},
 {"participantId":"acd2","purpose":"acd","sessions":[{"mediaType":"voice","segments":[{"segmentType":"interact","segmentStart":"2026-01-01T10:03:00Z","segmentEnd":"2026-01-01T10:03:20Z","queueId":"qBilling","disconnectType":"transfer"}]}]}]}`
		if err := genesys.ApplyAnalytics(c, []byte(analytics)); err != nil {
			t.Fatal(err)
		}
		if len(c.Transfers) != 1 || c.Transfers[0].ToQueue.ID != "qBilling" || c.Transfers[0].ToUser.ID != "" {
			t.Errorf("%s: transfers from analytics %+v, want A to the Billing queue", field, c.Transfers)
		}
	}
}

// TestUnansweredLegOwesNoWrapup: Genesys sets wrapupExpected (and
// wrapupRequired) on a leg while it rings. Agent A does not answer
// (transfer.noanswer, never connected); agent B answers and wraps up. A's
// leg expects no wrap-up: the engine would wait for one for hours. B's
// does, and so does a leg still ringing.
func TestUnansweredLegOwesNoWrapup(t *testing.T) {
	body := `{"id":"c1","participants":[
 {"id":"cust","purpose":"customer","address":"tel:+14155550100","calls":[{"id":"k1","state":"disconnected","direction":"inbound","disconnectType":"peer","connectedTime":"2026-01-01T10:00:00Z","disconnectedTime":"2026-01-01T10:05:00Z"}]},
 {"id":"legA","purpose":"agent","userId":"uA","queueId":"q1","wrapupRequired":true,"wrapupExpected":true,"calls":[{"id":"a1","state":"disconnected","direction":"inbound","disconnectType":"transfer.noanswer","disconnectedTime":"2026-01-01T10:00:30Z","afterCallWorkRequired":true}]},
 {"id":"legB","purpose":"agent","userId":"uB","queueId":"q1","wrapupRequired":true,"wrapupExpected":true,"calls":[{"id":"b1","state":"disconnected","direction":"inbound","disconnectType":"client","connectedTime":"2026-01-01T10:00:40Z","disconnectedTime":"2026-01-01T10:05:00Z"}]},
 {"id":"legC","purpose":"agent","userId":"uC","queueId":"q1","wrapupRequired":true,"wrapupExpected":true,"calls":[{"id":"c1","state":"alerting","direction":"inbound"}]}]}`
	c, err := (&genesys.Decoder{}).Conversation([]byte(body), fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	for leg, want := range map[string]bool{"legA": false, "legB": true, "legC": true} {
		if l := c.Leg(leg); l == nil || l.WrapupExpected != want {
			t.Errorf("%s: %+v, want WrapupExpected %v", leg, l, want)
		}
	}
}

// TestFrameWithAMemberBeforeMetadata: valid JSON with a member between
// eventBody and metadata (Genesys sends none) is decoded, not dropped as
// malformed.
func TestFrameWithAMemberBeforeMetadata(t *testing.T) {
	frame := []byte(`{"topicName":"v2.routing.queues.q1.conversations","eventBody":{"id":"c1","participants":[{"id":"p","purpose":"customer","address":"tel:+14155550100","calls":[{"state":"connected"}]}]},"extra":{"k":1},"metadata":{"CorrelationId":"x"}}`)
	_, c, err := (&genesys.Decoder{}).Frame(frame, fixedTime)
	if err != nil || c == nil || c.ID != "c1" || c.Customer.Phone != "+14155550100" {
		t.Fatalf("Frame = %+v, %v; want conversation c1", c, err)
	}
	src := newSource(t, newEnv(t), genesys.WithQueues("q1"))
	var got []*cti.Conversation
	genesys.HandleFrame(src, cti.HandlerFunc(func(_ context.Context, c *cti.Conversation) error { got = append(got, c); return nil }), frame)
	if len(got) != 1 || src.Stats().Malformed != 0 {
		t.Errorf("the source delivered %d (stats %+v), want the conversation", len(got), src.Stats())
	}
}

// TestWhatsAppAddressIsInternational: a WhatsApp sender is its
// international number without the plus; the decoder hands the phone
// normalizer the number with its plus, which a region's national reading
// cannot take for a local number. An SMS sender is handed as it is.
func TestWhatsAppAddressIsInternational(t *testing.T) {
	var got []string
	dec := &genesys.Decoder{Phone: func(s string) string { got = append(got, s); return s }}
	for _, typ := range []string{"whatsapp", "sms"} {
		body := `{"id":"c-` + typ + `","participants":[{"id":"p","purpose":"customer","messages":[{"id":"m","state":"connected","type":"` + typ + `","direction":"inbound","fromAddress":{"addressNormalized":"33612345678"},"toAddress":{"addressNormalized":"15550001111"}}]}]}`
		c, err := dec.Conversation([]byte(body), fixedTime)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"whatsapp": "+33612345678", "sms": "33612345678"}[typ]
		if c.Customer.Phone != want {
			t.Errorf("%s: phone %q (normalizer given %q), want %q", typ, c.Customer.Phone, got, want)
		}
	}
}
