package genesys_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
)

// finished scripts a conversation to its end and returns it as the source
// decoded it (via a REST fetch, as after a reconnect).
func finished(t *testing.T, e *env, sp gt.Spec, script func(c *gt.Conversation) []string) (*cti.Conversation, []string) {
	t.Helper()
	c := e.srv.Start(sp)
	legs := script(c)
	conv, err := e.client.Conversation(context.Background(), c.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !conv.Ended() {
		t.Fatalf("conversation %s did not end: %+v", c.ID, conv)
	}
	return conv, legs
}

func simple(user, code string, extra func(c *gt.Conversation, leg string)) func(c *gt.Conversation) []string {
	return func(c *gt.Conversation) []string {
		leg := c.Alert(user)
		c.Connect(leg)
		if extra != nil {
			extra(c, leg)
		}
		c.Disconnect(leg)
		c.Wrapup(leg, code, "notes")
		return []string{leg}
	}
}

func TestEnrichVoice(t *testing.T) {
	e := newEnv(t)
	conv, legs := finished(t, e, gt.Spec{Media: gt.MediaVoice, From: "+14155550700", Queue: gt.QueueSupport}, func(c *gt.Conversation) []string {
		a := c.Alert(gt.AgentAlice)
		c.Connect(a)
		c.Transfer(a, gt.QueueBilling)
		b := c.Alert(gt.AgentBob)
		c.Connect(b)
		c.Disconnect(b)
		c.Wrapup(a, gt.CodeFollowUp, "")
		time.Sleep(1100 * time.Millisecond) // a measurable wrap-up time
		c.Wrapup(b, gt.CodeRefund, "refunded")
		c.Summarize("Customer asked for a refund; Bob issued it.")
		return []string{a, b}
	})
	// The REST snapshot lacks names; the enricher fills them.
	en := mustEnricher(t, e.client)
	if err := en.Enrich(context.Background(), conv); err != nil {
		t.Fatal(err)
	}
	a, b := conv.Leg(legs[0]), conv.Leg(legs[1])
	if a.Name != "Alice Martin" || a.Email != "alice.martin@example.com" || b.Email != "bob.okafor@example.com" {
		t.Errorf("agents: %+v / %+v", a, b)
	}
	if a.Queue.Name != "Support" || b.Queue.Name != "Billing" || conv.Queue.Name != "Billing" {
		t.Errorf("queue names: %v %v %v", a.Queue, b.Queue, conv.Queue)
	}
	if a.Wrapup.Name != "Follow-up needed" || a.Wrapup.Category != "Customer Support" ||
		b.Wrapup.Name != "Refund issued" || b.Wrapup.Category != "Billing" {
		t.Errorf("wrap-ups: %+v / %+v", a.Wrapup, b.Wrapup)
	}
	if b.Wrapup.Duration < time.Second {
		t.Errorf("wrap-up duration = %v, want ≥ 1s", b.Wrapup.Duration)
	}
	if len(conv.Transfers) != 1 || conv.Transfers[0].FromUser.Name != "Alice Martin" || conv.Transfers[0].ToQueue.Name != "Billing" {
		t.Errorf("transfers = %+v", conv.Transfers)
	}
	if !strings.HasPrefix(conv.Links.RecordingURL, e.srv.URL+"/api/v2/conversations/"+conv.ID+"/recordings/") {
		t.Errorf("recording = %q", conv.Links.RecordingURL)
	}
	if conv.Links.InteractionURL != e.srv.URL+"/directory/#/engage/admin/interactions/"+conv.ID {
		t.Errorf("interaction = %q", conv.Links.InteractionURL)
	}
	if conv.Content.Summary != "Customer asked for a refund; Bob issued it." || conv.Content.SummarySource != "genesys" {
		t.Errorf("summary = %+v", conv.Content)
	}

	// Cached: enriching again, or another conversation with the same
	// agents, queues and codes, looks nothing up again.
	before := e.srv.Stats().Requests
	fresh, _ := e.client.Conversation(context.Background(), conv.ID, nil)
	if err := en.Enrich(context.Background(), fresh); err != nil {
		t.Fatal(err)
	}
	after := e.srv.Stats().Requests
	for _, k := range []string{"GET /api/v2/users/{id}", "GET /api/v2/routing/queues/{id}", "GET /api/v2/routing/wrapupcodes/{id}",
		"GET /api/v2/analytics/conversations/{id}/details", "GET /api/v2/conversations/{a}/{b}"} {
		if after[k] != before[k] {
			t.Errorf("%s: %d → %d calls, want the cache", k, before[k], after[k])
		}
	}
	if fresh.Leg(legs[1]).Wrapup.Category != "Billing" || fresh.Links.RecordingURL == "" {
		t.Errorf("cached enrichment lost data: %+v", fresh)
	}
}

func TestEnrichSingleflight(t *testing.T) {
	e := newEnv(t)
	var convs []*cti.Conversation
	for range 8 {
		c, _ := finished(t, e, gt.Spec{Media: gt.MediaChat, From: "sf@example.org", Queue: gt.QueueSales}, simple(gt.AgentCarol, gt.CodeSale, nil))
		convs = append(convs, c)
	}
	en := mustEnricher(t, e.client, genesys.WithEnrichParts(genesys.EnrichParts{Names: true}))
	before := e.srv.Stats().Requests
	var wg sync.WaitGroup
	for _, c := range convs {
		wg.Go(func() {
			if err := en.Enrich(context.Background(), c); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	after := e.srv.Stats().Requests
	// (Queue names come with the REST snapshot; users' emails and codes'
	// categories need a lookup.)
	for k, n := range map[string]int{"GET /api/v2/users/{id}": 1, "GET /api/v2/routing/wrapupcodes/{id}": 1} {
		if got := after[k] - before[k]; got != n {
			t.Errorf("%s: %d calls for 8 concurrent enrichments, want %d", k, got, n)
		}
	}
	for _, c := range convs {
		if c.Agents[0].Name != "Carol Nguyen" || c.Agents[0].Wrapup.Category != "Sales" {
			t.Errorf("not enriched: %+v", c.Agents[0])
		}
	}
}

func TestEnrichEmailChatMessage(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	en := mustEnricher(t, e.client)

	email, _ := finished(t, e, gt.Spec{Media: gt.MediaEmail, From: "jo@example.org", Name: "Jo", Subject: "Broken <widget>", Body: "It broke.", Queue: gt.QueueSupport},
		simple(gt.AgentAlice, gt.CodeResolved, func(c *gt.Conversation, _ string) { c.Reply("Sending a new one.") }))
	if err := en.Enrich(ctx, email); err != nil {
		t.Fatal(err)
	}
	ct := email.Content
	if ct.EmailSubject != "Broken <widget>" || ct.EmailText != "It broke." || ct.EmailBody != "<p>It broke.</p>" ||
		ct.ReplySubject != "RE: Broken <widget>" || ct.ReplyText != "Sending a new one." {
		t.Errorf("email content = %+v", ct)
	}

	chat, _ := finished(t, e, gt.Spec{Media: gt.MediaChat, From: "kim@example.org", Name: "Kim Lee", Body: "Hi, my order?", Queue: gt.QueueSupport},
		simple(gt.AgentBob, gt.CodeResolved, func(c *gt.Conversation, leg string) {
			c.Say(leg, "Let me check.")
			c.Say("", "Thanks!")
		}))
	if err := en.Enrich(ctx, chat); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(chat.Content.Transcript, "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[0], "] Kim Lee: Hi, my order?") || !strings.HasSuffix(lines[1], "] Bob Okafor: Let me check.") {
		t.Errorf("chat transcript = %q", chat.Content.Transcript)
	}

	msg, _ := finished(t, e, gt.Spec{Media: gt.MediaMessage, MessageType: "whatsapp", From: "+33612345678", Name: "Léa", Body: "Bonjour", Queue: gt.QueueSupport},
		simple(gt.AgentCarol, gt.CodeResolved, func(c *gt.Conversation, leg string) { c.Say(leg, "Bonjour Léa") }))
	if err := en.Enrich(ctx, msg); err != nil {
		t.Fatal(err)
	}
	if msg.Content.Transcript == "" || !strings.Contains(msg.Content.Transcript, "Léa: Bonjour") || !strings.Contains(msg.Content.Transcript, "Carol Nguyen: Bonjour Léa") {
		t.Errorf("message transcript = %q", msg.Content.Transcript)
	}
	if msg.Links.RecordingURL != "" {
		t.Errorf("a message has a recording link: %q", msg.Links.RecordingURL)
	}
}

// TestEnrichVoiceTranscript: a call's speech analytics transcript is read
// through the pre-signed URL Genesys hands out, without the API token (the
// emulator refuses a request carrying both, as S3 does); a call without a
// transcript has none, and no error.
func TestEnrichVoiceTranscript(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	en := mustEnricher(t, e.client)
	call, _ := finished(t, e, gt.Spec{Media: gt.MediaVoice, From: "+14155550703", Name: "Jane Roe", Queue: gt.QueueSupport},
		simple(gt.AgentBob, gt.CodeResolved, func(c *gt.Conversation, leg string) {
			c.Say("", "My router is down.")
			c.Say(leg, "Let me reset it.")
		}))
	if err := en.Enrich(ctx, call); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(call.Content.Transcript, "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "[") ||
		!strings.HasSuffix(lines[0], "] Jane Roe: My router is down.") || !strings.HasSuffix(lines[1], "] Bob Okafor: Let me reset it.") {
		t.Errorf("voice transcript = %q", call.Content.Transcript)
	}

	var gq *gt.Conversation
	quiet, _ := finished(t, e, gt.Spec{Media: gt.MediaVoice, From: "+14155550704", Queue: gt.QueueSupport},
		simple(gt.AgentBob, gt.CodeResolved, func(c *gt.Conversation, _ string) { gq = c }))
	if err := en.Enrich(ctx, quiet); err != nil {
		t.Fatalf("a call without a transcript: %v", err)
	}
	if quiet.Content.Transcript != "" {
		t.Errorf("transcript = %q, want none", quiet.Content.Transcript)
	}
	// Transcribed after the call (within TranscriptLag): asked again, the
	// enricher looks again.
	gq.Say("", "Late words.")
	if err := en.Enrich(ctx, quiet); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(quiet.Content.Transcript, ": Late words.") {
		t.Errorf("late transcript = %q", quiet.Content.Transcript)
	}
}

// TestDownloadKeepsTheSignatureSecret: a refused pre-signed URL gives an
// error naming its host and path, never its query (the signature).
func TestDownloadKeepsTheSignatureSecret(t *testing.T) {
	e := newEnv(t)
	const sig = "0123456789abcdef-secret-signature"
	_, err := e.client.Download(context.Background(), "get transcript", e.srv.URL+"/transcripts/c1/m1?X-Amz-Signature="+sig)
	var ue *cti.UpstreamError
	if !errors.As(err, &ue) || ue.Status != http.StatusForbidden {
		t.Fatalf("Download = %v, want a 403 upstream error", err)
	}
	if strings.Contains(err.Error(), sig) || !strings.Contains(err.Error(), "/transcripts/c1/m1") {
		t.Errorf("error %q: want the path, never the signature", err)
	}
	if _, err := e.client.Download(context.Background(), "get transcript", "file:///etc/passwd"); err == nil {
		t.Error("a non-HTTP URL was fetched")
	}
}

func TestEnrichSummarizer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	calls := 0
	ai := genesys.SummarizerFunc(func(_ context.Context, c *cti.Conversation) (genesys.Summary, error) {
		calls++
		return genesys.Summary{Text: "AI: " + c.Content.Transcript[:5], Source: "acme-llm"}, nil
	})
	chat, _ := finished(t, e, gt.Spec{Media: gt.MediaChat, From: "z@example.org", Name: "Zed", Body: "Hello there", Queue: gt.QueueSupport},
		simple(gt.AgentAlice, gt.CodeResolved, nil))
	// No Genesys summary: the custom summarizer writes one, seeing the transcript.
	en := mustEnricher(t, e.client, genesys.WithSummarizer(ai, false))
	if err := en.Enrich(ctx, chat); err != nil {
		t.Fatal(err)
	}
	if chat.Content.Summary != "AI: "+chat.Content.Transcript[:5] || chat.Content.SummarySource != "acme-llm" || calls != 1 {
		t.Errorf("summary = %+v (calls %d)", chat.Content, calls)
	}
	// With a Genesys summary, it wins unless the custom one is preferred.
	voice, _ := finished(t, e, gt.Spec{Media: gt.MediaVoice, From: "+14155550701", Queue: gt.QueueSupport},
		simple(gt.AgentAlice, gt.CodeResolved, func(c *gt.Conversation, _ string) { c.Summarize("Genesys says hi") }))
	if err := mustEnricher(t, e.client, genesys.WithSummarizer(ai, false)).Enrich(ctx, voice); err != nil {
		t.Fatal(err)
	}
	if voice.Content.Summary != "Genesys says hi" || voice.Content.SummarySource != "genesys" || calls != 1 {
		t.Errorf("summary = %+v", voice.Content)
	}
	pref := genesys.SummarizerFunc(func(context.Context, *cti.Conversation) (genesys.Summary, error) {
		return genesys.Summary{Text: "mine"}, nil
	})
	voice2, _ := e.client.Conversation(ctx, voice.ID, nil)
	if err := mustEnricher(t, e.client, genesys.WithSummarizer(pref, true)).Enrich(ctx, voice2); err != nil {
		t.Fatal(err)
	}
	if voice2.Content.Summary != "mine" || voice2.Content.SummarySource != "custom" {
		t.Errorf("preferred summary = %+v", voice2.Content)
	}
}

// TestEnrichRetryable: a transient failure of one part gives a retryable
// error carrying the status, fills the rest, and the retry fetches only
// what failed.
func TestEnrichRetryable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	conv, legs := finished(t, e, gt.Spec{Media: gt.MediaVoice, From: "+14155550702", Queue: gt.QueueSupport}, simple(gt.AgentDave, gt.CodeSale, nil))
	en := mustEnricher(t, e.client)
	e.srv.FailREST(gt.Fault{PathPrefix: "/api/v2/analytics/", Status: http.StatusServiceUnavailable, Times: -1})
	e.srv.FailREST(gt.Fault{PathPrefix: "/api/v2/routing/wrapupcodes/", Status: http.StatusTooManyRequests, RetryAfter: 30 * time.Second, Times: -1})
	err := en.Enrich(ctx, conv)
	var ue *cti.UpstreamError
	if !cti.IsRetryable(err) || !errors.As(err, &ue) || (ue.Status != 503 && ue.Status != 429) {
		t.Fatalf("Enrich = %v, want a retryable upstream error", err)
	}
	if !strings.Contains(err.Error(), "analytics") || !strings.Contains(err.Error(), "429") {
		t.Errorf("error does not say what failed: %v", err)
	}
	if conv.Leg(legs[0]).Name != "Dave Schmidt" || conv.Links.RecordingURL == "" {
		t.Errorf("the parts that worked were not filled: %+v %+v", conv.Leg(legs[0]), conv.Links)
	}
	e.srv.ClearFaults()
	before := e.srv.Stats().Requests
	if err := en.Enrich(ctx, conv); err != nil {
		t.Fatalf("retry: %v", err)
	}
	after := e.srv.Stats().Requests
	if after["GET /api/v2/analytics/conversations/{id}/details"]-before["GET /api/v2/analytics/conversations/{id}/details"] != 1 ||
		after["GET /api/v2/conversations/{a}/{b}"] != before["GET /api/v2/conversations/{a}/{b}"] ||
		after["GET /api/v2/users/{id}"] != before["GET /api/v2/users/{id}"] {
		t.Errorf("retry refetched more than the failed part: before %v after %v", before, after)
	}
	if w := conv.Leg(legs[0]).Wrapup; w.Name != "Sale" || w.Category != "Sales" {
		t.Errorf("wrap-up after retry = %+v", w)
	}
	// Missing data is not an error: no summary, a deleted code.
	if conv.Content.Summary != "" {
		t.Errorf("summary = %q, want none", conv.Content.Summary)
	}
	conv.Leg(legs[0]).Wrapup = &cti.Wrapup{Code: "c0de-gone"}
	if err := en.Enrich(ctx, conv); err != nil {
		t.Errorf("a deleted wrap-up code: %v", err)
	}
}

// TestEnrichLiveConversation: a leg synced while the call goes on (its
// agent transferred it) gets names and links, and nothing that needs the
// end is fetched yet.
func TestEnrichLiveConversation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550710", Queue: gt.QueueSupport})
	a := c.Alert(gt.AgentAlice)
	c.Connect(a)
	c.Transfer(a, gt.QueueBilling)
	c.Wrapup(a, gt.CodeFollowUp, "")
	conv, err := e.client.Conversation(ctx, c.ID, nil)
	if err != nil || conv.Ended() {
		t.Fatalf("%+v %v", conv, err)
	}
	before := e.srv.Stats().Requests
	if err := mustEnricher(t, e.client).Enrich(ctx, conv); err != nil {
		t.Fatal(err)
	}
	if conv.Links.InteractionURL == "" || conv.Links.RecordingURL == "" || conv.Leg(a).Wrapup.Category != "Customer Support" {
		t.Errorf("live enrichment: %+v %+v", conv.Links, conv.Leg(a).Wrapup)
	}
	if k := "GET /api/v2/analytics/conversations/{id}/details"; e.srv.Stats().Requests[k] != before[k] {
		t.Error("analytics fetched before the end")
	}
}

// TestEnrichDerivesConsultTransfer: when the snapshot has no transfers,
// the enricher derives them from the analytics segments, a consult
// transfer included.
func TestEnrichDerivesConsultTransfer(t *testing.T) {
	e := newEnv(t)
	conv, legs := finished(t, e, gt.Spec{Media: gt.MediaVoice, From: "+14155550720", Queue: gt.QueueSupport}, func(c *gt.Conversation) []string {
		a := c.Alert(gt.AgentAlice)
		c.Connect(a)
		b := c.Consult(a, gt.AgentBob)
		c.Connect(b)
		c.CompleteConsult(a)
		c.Disconnect(b)
		c.Wrapup(a, gt.CodeFollowUp, "")
		c.Wrapup(b, gt.CodeRefund, "")
		return []string{a, b}
	})
	if len(conv.Transfers) != 1 || conv.Transfers[0].Kind != cti.TransferConsult {
		t.Fatalf("snapshot transfers = %+v, want the consult", conv.Transfers)
	}
	conv.Transfers = nil
	if err := mustEnricher(t, e.client).Enrich(context.Background(), conv); err != nil {
		t.Fatal(err)
	}
	if len(conv.Transfers) != 1 {
		t.Fatalf("derived transfers = %+v, want 1", conv.Transfers)
	}
	if tr := conv.Transfers[0]; tr.Kind != cti.TransferConsult || tr.FromUser.ID != gt.AgentAlice || tr.ToUser.ID != gt.AgentBob {
		t.Errorf("derived transfer = %+v, want a consult from Alice to Bob", tr)
	}
	if !conv.Leg(legs[0]).Transferred() {
		t.Error("Alice's leg is not transferred")
	}
}

// TestEnrichDerivesTransferAfterFailedConsult: derived from analytics, a
// blind transfer after a declined consult went to the queue, not to the
// consulted agent, who had left.
func TestEnrichDerivesTransferAfterFailedConsult(t *testing.T) {
	e := newEnv(t)
	conv, _ := finished(t, e, gt.Spec{Media: gt.MediaVoice, From: "+14155550721", Queue: gt.QueueSupport}, func(c *gt.Conversation) []string {
		a := c.Alert(gt.AgentAlice)
		c.Connect(a)
		b := c.Consult(a, gt.AgentBob)
		c.Disconnect(b)                  // Bob declines
		time.Sleep(2 * time.Millisecond) // the emulator's times are in whole milliseconds
		c.Transfer(a, gt.QueueBilling)
		d := c.Alert(gt.AgentCarol)
		c.Connect(d)
		c.Disconnect(d)
		c.Wrapup(a, gt.CodeFollowUp, "")
		c.Wrapup(d, gt.CodeRefund, "")
		return []string{a, d}
	})
	conv.Transfers = nil
	if err := mustEnricher(t, e.client).Enrich(context.Background(), conv); err != nil {
		t.Fatal(err)
	}
	if len(conv.Transfers) != 1 {
		t.Fatalf("derived transfers = %+v, want 1", conv.Transfers)
	}
	if tr := conv.Transfers[0]; tr.Kind != cti.TransferBlind || tr.FromUser.ID != gt.AgentAlice || tr.ToQueue.ID != gt.QueueBilling || tr.ToUser.ID != "" {
		t.Errorf("derived transfer = %+v, want Alice → the Billing queue", tr)
	}
}

func mustEnricher(t *testing.T, c *genesys.Client, opts ...genesys.EnrichOption) *genesys.Enricher {
	t.Helper()
	en, err := genesys.NewEnricher(c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return en
}

func TestEnricherOptions(t *testing.T) {
	e := newEnv(t)
	if _, err := genesys.NewEnricher(e.client, genesys.WithNameTTL(0)); err == nil {
		t.Error("WithNameTTL(0) accepted")
	}
	if _, err := genesys.NewEnricher(nil); err == nil {
		t.Error("nil client accepted")
	}
}

// Analytics answers 404 until it has indexed a conversation: right after
// the end that is a retryable error (the engine tries the enrichment
// again), later it means there are no details and the sync goes on.
func TestEnrichAnalyticsNotIndexedYet(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const analytics = "GET /api/v2/analytics/conversations/{id}/details"
	conv, legs := finished(t, e, gt.Spec{Media: gt.MediaVoice, From: "+14155550703", Queue: gt.QueueSupport}, simple(gt.AgentDave, gt.CodeSale, nil))
	en := mustEnricher(t, e.client)
	e.srv.FailREST(gt.Fault{PathPrefix: "/api/v2/analytics/", Status: http.StatusNotFound, Times: 1})
	err := en.Enrich(ctx, conv)
	var ue *cti.UpstreamError
	if !cti.IsRetryable(err) || !errors.As(err, &ue) || ue.Status != http.StatusNotFound || !strings.Contains(err.Error(), "analytics") {
		t.Fatalf("Enrich just after the end, analytics 404 = %v; want a retryable error naming analytics", err)
	}
	if ra, ok := cti.RetryAfter(err); !ok || ra <= 0 {
		t.Errorf("RetryAfter = %v, %v; want a delay", ra, ok)
	}
	before := e.srv.Stats().Requests[analytics]
	if err := en.Enrich(ctx, conv); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := e.srv.Stats().Requests[analytics] - before; n != 1 {
		t.Errorf("the retry fetched analytics %d times, want 1", n)
	}
	if w := conv.Leg(legs[0]).Wrapup; w == nil || w.Name != "Sale" {
		t.Errorf("wrap-up after the retry = %+v", w)
	}

	// Long after the end, a 404 means no details: not an error.
	old, _ := finished(t, e, gt.Spec{Media: gt.MediaVoice, From: "+14155550704", Queue: gt.QueueSupport}, simple(gt.AgentDave, gt.CodeSale, nil))
	old.EndTime = time.Now().Add(-genesys.AnalyticsLag - time.Minute)
	e.srv.FailREST(gt.Fault{PathPrefix: "/api/v2/analytics/", Status: http.StatusNotFound, Times: 1})
	if err := en.Enrich(ctx, old); err != nil {
		t.Errorf("Enrich long after the end, analytics 404 = %v; want nil", err)
	}
}

// TestEnrichLongChat: Genesys returns a chat's messages 100 at a time; the
// transcript of a longer chat has them all, in order.
func TestEnrichLongChat(t *testing.T) {
	e := newEnv(t)
	chat, _ := finished(t, e, gt.Spec{Media: gt.MediaChat, From: "kim@example.org", Name: "Kim Lee", Body: "line 0", Queue: gt.QueueSupport},
		simple(gt.AgentBob, gt.CodeResolved, func(c *gt.Conversation, leg string) {
			for i := 1; i <= 250; i++ {
				c.Say(leg, fmt.Sprintf("line %d", i))
			}
		}))
	if err := mustEnricher(t, e.client).Enrich(context.Background(), chat); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(chat.Content.Transcript), "\n")
	if len(lines) != 251 {
		t.Fatalf("%d transcript lines, want 251", len(lines))
	}
	for i, l := range lines {
		if !strings.HasSuffix(l, fmt.Sprintf(": line %d", i)) {
			t.Fatalf("line %d = %q", i, l)
		}
	}
	if n := e.srv.Stats().Requests["GET /api/v2/conversations/chats/{id}/messages"]; n != 3 {
		t.Errorf("%d message pages read, want 3", n)
	}
}
