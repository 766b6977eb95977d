package genesys_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cxplay/ctikit/genesys"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
)

var update = flag.Bool("update", false, "rewrite testdata/frames and the fuzz seed corpus from the emulator")

// frameCase is a realistic notification frame for one media, kept in
// testdata/frames: a conversation mid-life or at its end with an IVR's
// participant data, a transfer and two agents, 2–10 KB like Genesys sends.
type frameCase struct {
	name  string
	spec  gt.Spec
	steps func(c *gt.Conversation)
}

func ivrData(n int) map[string]string {
	m := map[string]string{
		"ivr.language": "en-US", "ivr.intent": "billing_question", "ivr.accountNumber": "AC-55120934",
		"ivr.authenticated": "true", "ivr.customerTier": "gold", "ivr.menuPath": "main>billing>invoice",
		"flow.name": "Inbound Main 2026", "flow.version": "57.0", "context.source": "website",
	}
	for i := range n {
		m[fmt.Sprintf("crm.field%02d", i)] = fmt.Sprintf("value %d with some realistic length to it", i)
	}
	return m
}

func frameCases() []frameCase {
	full := func(c *gt.Conversation) {
		a := c.Alert(gt.AgentAlice)
		c.Connect(a)
		c.Transfer(a, gt.QueueBilling)
		b := c.Alert(gt.AgentBob)
		c.Connect(b)
		c.Disconnect(b)
		c.Wrapup(a, gt.CodeFollowUp, "transferred to billing", "billing")
		c.Wrapup(b, gt.CodeRefund, "refund issued for invoice 2026-11", "refund", "vip")
	}
	alerting := func(c *gt.Conversation) { c.Alert(gt.AgentCarol) }
	msg := func(typ, from, name string) gt.Spec {
		return gt.Spec{Media: gt.MediaMessage, MessageType: typ, From: from, Name: name, Queue: gt.QueueSupport, Body: "Hi, I need help with my order", Attributes: ivrData(6)}
	}
	return []frameCase{
		{"voice-alerting", gt.Spec{Media: gt.MediaVoice, From: "+14155550100", Name: "Pat Doe", Queue: gt.QueueSupport, Attributes: ivrData(4)}, alerting},
		{"voice-transfer-wrapup", gt.Spec{Media: gt.MediaVoice, From: "+14155550100", Name: "Pat Doe", Queue: gt.QueueSupport, Attributes: ivrData(12)}, full},
		{"voice-three-transfers", gt.Spec{Media: gt.MediaVoice, From: "+14155550100", Name: "Pat Doe", Queue: gt.QueueSupport, Attributes: ivrData(20)},
			func(c *gt.Conversation) {
				legs := []string{}
				for i, u := range []string{gt.AgentAlice, gt.AgentBob, gt.AgentCarol, gt.AgentDave} {
					l := c.Alert(u)
					c.Connect(l)
					legs = append(legs, l)
					if i < 3 {
						c.Transfer(l, []string{gt.QueueBilling, gt.QueueSales, gt.QueueSupport}[i])
					}
				}
				c.End()
				for _, l := range legs {
					c.Wrapup(l, gt.CodeResolved, "handled")
				}
			}},
		{"voice-outbound", gt.Spec{Media: gt.MediaVoice, From: "+12125550123", Name: "Renewal Contact", Campaign: gt.CampaignRenewals, Attributes: ivrData(3)}, full},
		{"callback", gt.Spec{Media: gt.MediaCallback, From: "+14155550101", Name: "Sam Roe", Queue: gt.QueueSupport, Attributes: ivrData(4)}, full},
		{"chat", gt.Spec{Media: gt.MediaChat, From: "kim@example.org", Name: "Kim Lee", Queue: gt.QueueSupport, Attributes: ivrData(6)}, full},
		{"email", gt.Spec{Media: gt.MediaEmail, From: "jo.ray@example.org", Name: "Jo Ray", Queue: gt.QueueSupport, Subject: "Invoice 2026-11 is wrong", Body: "Hello", Attributes: ivrData(4)}, full},
		{"sms", msg("sms", "+447700900123", "Ada"), full},
		{"whatsapp", msg("whatsapp", "+33612345678", "Léa"), full},
		{"facebook", msg("facebook", "7712345678901234", "Max FB"), full},
		{"instagram", msg("instagram", "17841400000000000", "insta.user"), full},
		{"twitter", msg("twitter", "1234567890", "@tweeter"), full},
		{"line", msg("line", "U4af4980629c7f2b1e5d3a", "Line User"), full},
		{"webmessaging", msg("webmessaging", "b2a1f3c4-9d8e-4f7a-8b6c-5d4e3f2a1b0c", "Web Guest"), full},
		{"open", msg("open", "ext-user-42", "Open User"), full},
		{"social-twitter", gt.Spec{Media: gt.MediaSocial, MessageType: "twitter", From: "@someone", Name: "Some One", Queue: gt.QueueSocial, Body: "@brand my order is late", Attributes: ivrData(2)}, full},
	}
}

func framesDir() string { return filepath.Join("testdata", "frames") }

// loadFrames reads testdata/frames/*.json.
func loadFrames(tb testing.TB) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(framesDir(), "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no frames in %s (run go test -run TestFrames -update): %v", framesDir(), err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	return out
}

// TestFrames regenerates the testdata frames with -update, and checks that
// every one of them is a realistic size and decodes.
func TestFrames(t *testing.T) {
	if *update {
		srv := gt.NewServer()
		defer srv.Close()
		_ = os.MkdirAll(framesDir(), 0o755)
		fuzzDir := filepath.Join("testdata", "fuzz", "FuzzFrame")
		_ = os.MkdirAll(fuzzDir, 0o755)
		for _, fc := range frameCases() {
			c := srv.Start(fc.spec)
			fc.steps(c)
			q := fc.spec.Queue
			if q == "" {
				q = gt.QueueSales // the campaign's queue
			}
			frame := c.Frame(genesys.QueueTopic(q))
			if err := os.WriteFile(filepath.Join(framesDir(), fc.name+".json"), frame, 0o644); err != nil {
				t.Fatal(err)
			}
			seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", frame)
			if err := os.WriteFile(filepath.Join(fuzzDir, fc.name), []byte(seed), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	frames := loadFrames(t)
	names := make([]string, 0, len(frames))
	for n := range frames {
		names = append(names, n)
	}
	slices.Sort(names)
	dec := &genesys.Decoder{}
	for _, n := range names {
		b := frames[n]
		if len(b) < 2000 || len(b) > 12000 {
			t.Errorf("%s: %d bytes, want a realistic 2–10 KB frame", n, len(b))
		}
		topic, c, err := dec.Frame(b, fixedTime)
		if err != nil || c == nil || !strings.HasSuffix(topic, ".conversations") {
			t.Errorf("%s: %v", n, err)
			continue
		}
		t.Logf("%-22s %5d bytes: %s/%s %d legs", n, len(b), c.Media, c.Channel, len(c.Agents))
	}
}
