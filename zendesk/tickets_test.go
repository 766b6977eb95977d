package zendesk_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

func TestTicketReadsAndUpdate(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	ctx := context.Background()

	req, err := c.RequestedTickets(ctx, zendesktest.DemoJane)
	if err != nil {
		t.Fatal(err)
	}
	if len(req) != 3 || req[0].ID != zendesktest.DemoTicketJaneOpen || req[2].ID != zendesktest.DemoTicketJaneSolved {
		t.Fatalf("requested = %+v", req)
	}
	if _, err := c.RequestedTickets(ctx, 999999); !errors.Is(err, cti.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}

	srv.DeleteTicket(zendesktest.DemoTicketJoanHold)
	many, err := c.Tickets(ctx, []int64{zendesktest.DemoTicketJohnNew, zendesktest.DemoTicketJoanHold, zendesktest.DemoTicketLiamOpen})
	if err != nil || len(many) != 2 {
		t.Fatalf("show many = %+v, %v", many, err)
	}
	if _, err := c.Ticket(ctx, zendesktest.DemoTicketJoanHold); !errors.Is(err, cti.ErrNotFound) {
		t.Fatalf("deleted ticket: %v", err)
	}
	if _, err := c.Tickets(ctx, make([]int64, 101)); !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("101 ids: %v", err)
	}

	// One request writes comment, fields and tags together.
	up, err := c.UpdateTicket(ctx, zendesktest.DemoTicketJaneOpen, zendesk.TicketUpdate{
		ID:             12345, // ignored
		Comment:        &zendesk.CommentInput{Body: "Call summary", Public: false, AuthorID: zendesktest.DemoAgentAlice},
		CustomFields:   []zendesk.CustomField{{ID: 360001, Value: "42"}, {ID: 360002, Value: true}},
		AdditionalTags: []string{"ctikit_synced", "Voice"},
		Status:         "pending",
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.Status != "pending" || !up.HasTag("ctikit_synced") || !up.HasTag("voice") || len(up.CustomFields) != 2 {
		t.Fatalf("updated = %+v", up)
	}
	puts := srv.RequestsTo("PUT", "/tickets/")
	if len(puts) != 1 {
		t.Fatalf("%d PUTs", len(puts))
	}
	var body struct {
		Ticket map[string]any `json:"ticket"`
	}
	if err := puts[0].JSON(&body); err != nil {
		t.Fatal(err)
	}
	if _, ok := body.Ticket["id"]; ok {
		t.Fatal("id sent in the body")
	}
	if cm := body.Ticket["comment"].(map[string]any); cm["public"] != false || cm["author_id"] != float64(zendesktest.DemoAgentAlice) {
		t.Fatalf("comment sent = %v", cm)
	}
	stored, _ := srv.Ticket(zendesktest.DemoTicketJaneOpen)
	last := stored.Comments[len(stored.Comments)-1]
	if last.Body != "Call summary" || last.Public || last.AuthorID != zendesktest.DemoAgentAlice || !slices.Contains(stored.Tags, "ctikit_synced") {
		t.Fatalf("stored = %+v", stored)
	}

	cms, err := c.TicketComments(ctx, zendesktest.DemoTicketJaneOpen)
	if err != nil || len(cms) != 2 || cms[0].Body != "Call summary" {
		t.Fatalf("comments = %+v, %v", cms, err)
	}

	// A rejected field: 422 wrapping *FieldError naming it; nothing written.
	srv.RejectField(360009)
	_, err = c.UpdateTicket(ctx, zendesktest.DemoTicketJaneOpen, zendesk.TicketUpdate{
		Comment:      &zendesk.CommentInput{Body: "again"},
		CustomFields: []zendesk.CustomField{{ID: 360009, Value: "bad"}},
	})
	if got := syncmap.RejectedFields(err); len(got) != 1 || got[0] != 360009 {
		t.Fatalf("rejected = %v (%v)", got, err)
	}
	var ue *cti.UpstreamError
	if !errors.As(err, &ue) || ue.Status != 422 || ue.Retryable() {
		t.Fatalf("err = %v", err)
	}
	if s, _ := srv.Ticket(zendesktest.DemoTicketJaneOpen); len(s.Comments) != 2 {
		t.Fatal("a rejected update wrote its comment")
	}
}

func TestCreateTicketAndExternalID(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	ctx := context.Background()
	nt := zendesk.NewTicket{Subject: "Missed call", RequesterID: zendesktest.DemoJohn, ExternalID: "conv-9/leg-1",
		Tags: []string{"ctikit"}, CustomFields: []zendesk.CustomField{{ID: 360001, Value: "7"}},
		Comment: &zendesk.CommentInput{Body: "Voicemail left", Public: false}}
	tk, err := c.CreateTicket(ctx, nt)
	if err != nil {
		t.Fatal(err)
	}
	if tk.RequesterID != zendesktest.DemoJohn || tk.Status != "new" || tk.ExternalID != "conv-9/leg-1" {
		t.Fatalf("created = %+v", tk)
	}
	again, err := c.CreateTicket(ctx, nt) // same payload and key: Zendesk answers with the first ticket
	if err != nil || again.ID != tk.ID {
		t.Fatalf("repeat = %+v, %v", again, err)
	}
	found, err := c.TicketsByExternalID(ctx, "conv-9/leg-1")
	if err != nil || len(found) != 1 || found[0].ID != tk.ID {
		t.Fatalf("by external id = %+v, %v", found, err)
	}
	if _, err := c.CreateTicket(ctx, zendesk.NewTicket{Subject: "no comment"}); !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("no comment: %v", err)
	}
	if n := len(srv.RequestsTo("POST", "/tickets")); n != 2 {
		t.Fatalf("%d POSTs", n)
	}
}

func TestUpdateMany(t *testing.T) {
	t.Parallel()
	srv, c := env(t, []zendesktest.Option{zendesktest.WithJobDelay(300 * time.Millisecond)},
		zendesk.WithJobPoll(func(int) time.Duration { return 100 * time.Millisecond }))
	ctx := context.Background()
	srv.DeleteTicket(zendesktest.DemoTicketJoanHold)
	srv.RejectField(360077)
	updates := []zendesk.TicketUpdate{
		{ID: zendesktest.DemoTicketJohnNew, Comment: &zendesk.CommentInput{Body: "synced"}, AdditionalTags: []string{"ctikit"}},
		{ID: zendesktest.DemoTicketJoanHold, Comment: &zendesk.CommentInput{Body: "synced"}},
		{ID: zendesktest.DemoTicketLiamOpen, CustomFields: []zendesk.CustomField{{ID: 360077, Value: "x"}}},
		{ID: zendesktest.DemoTicketJaneOpen, CustomFields: []zendesk.CustomField{{ID: 360001, Value: "9"}}},
	}
	res, err := c.UpdateMany(ctx, updates)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 4 {
		t.Fatalf("results %+v", res)
	}
	if !res[0].Success || res[0].ID != zendesktest.DemoTicketJohnNew || !res[3].Success {
		t.Fatalf("successes %+v", res)
	}
	if res[1].Success || !errors.Is(res[1].Err, cti.ErrNotFound) {
		t.Fatalf("deleted ticket result %+v", res[1])
	}
	if res[2].Success || len(syncmap.RejectedFields(res[2].Err)) != 1 || syncmap.RejectedFields(res[2].Err)[0] != 360077 {
		t.Fatalf("rejected field result %+v", res[2])
	}
	if polls := srv.RequestsTo("GET", "/job_statuses/"); len(polls) < 2 {
		t.Fatalf("%d polls: the job delay was not waited out", len(polls))
	}
	john, _ := srv.Ticket(zendesktest.DemoTicketJohnNew)
	if !slices.Contains(john.Tags, "ctikit") || john.Comments[len(john.Comments)-1].Body != "synced" {
		t.Fatalf("john's ticket %+v", john)
	}
	if _, err := c.UpdateMany(ctx, make([]zendesk.TicketUpdate, 101)); !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("101 updates: %v", err)
	}
	// ctx ends the polling.
	cctx, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	if _, err := c.UpdateMany(cctx, updates[:1]); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
}

func TestCalls(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil, zendesk.WithAppID(735264))
	ctx := context.Background()
	start := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	call, err := c.CreateCall(ctx, zendesk.Call{
		FromLine: "+14155550101", ToLine: "+18005550000", Direction: "inbound", CallStartedAt: start,
		AgentID: zendesktest.DemoAgentAlice, EndUserID: zendesktest.DemoJane, ExternalID: "conv-1/leg-1",
		Comment: &zendesk.CallComment{AuthorID: zendesktest.DemoAgentAlice, Title: "Inbound call from +14155550101",
			DisplayToAgent: zendesktest.DemoAgentAlice},
	})
	if err != nil {
		t.Fatal(err)
	}
	if call.ID == 0 || call.TicketID == 0 || call.AppID != 735264 || !call.CallStartedAt.Equal(start) {
		t.Fatalf("call = %+v", call)
	}
	tk, _ := srv.Ticket(call.TicketID)
	if tk.RequesterID != zendesktest.DemoJane || tk.Comments[len(tk.Comments)-1].Type != "TpeVoiceComment" {
		t.Fatalf("ticket = %+v", tk)
	}
	if d := srv.Displays(zendesktest.DemoAgentAlice); len(d) != 1 || d[0].ID != call.TicketID {
		t.Fatalf("displays = %+v", d)
	}
	cms, err := c.TicketComments(ctx, call.TicketID)
	if err != nil || cms[0].CallID != call.ID || cms[0].Type != "TpeVoiceComment" {
		t.Fatalf("comments = %+v, %v", cms, err)
	}

	up, err := c.UpdateCall(ctx, call.ID, zendesk.Call{Duration: 125, RecordingURL: "https://rec.example/1.mp3",
		CallEndedAt: start.Add(125 * time.Second), Comment: &zendesk.CallComment{Title: "not sent"}})
	if err != nil {
		t.Fatal(err)
	}
	if up.Duration != 125 || up.RecordingURL == "" || up.FromLine != "+14155550101" || up.TicketID != call.TicketID {
		t.Fatalf("updated = %+v", up)
	}
	patch := srv.RequestsTo("PATCH", "/calls/")
	var body struct {
		Call map[string]any `json:"call"`
	}
	if err := patch[0].JSON(&body); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"comment", "app_id", "from_line", "id"} {
		if _, ok := body.Call[k]; ok {
			t.Fatalf("PATCH sent %q: %v", k, body.Call)
		}
	}
	got, err := c.Call(ctx, call.ID)
	if err != nil || got.Duration != 125 {
		t.Fatalf("call = %+v, %v", got, err)
	}
	if _, err := c.Call(ctx, 1); !errors.Is(err, cti.ErrNotFound) {
		t.Fatalf("unknown call: %v", err)
	}
	if _, err := c.UpdateCall(ctx, 1, zendesk.Call{Duration: 1}); !errors.Is(err, cti.ErrNotFound) {
		t.Fatalf("unknown call update: %v", err)
	}
	noApp, _ := zendesk.New(cfg(srv))
	if _, err := noApp.CreateCall(ctx, zendesk.Call{FromLine: "+1"}); !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("missing fields: %v", err)
	}
}

func TestVoiceTicket(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	ctx := context.Background()
	vm, err := c.CreateVoiceTicket(ctx, zendesk.VoiceTicket{
		NewTicket: zendesk.NewTicket{Subject: "Voicemail from +14155550102", RequesterID: zendesktest.DemoJohn},
		ViaID:     zendesk.ViaVoicemail,
		VoiceComment: &zendesk.VoiceComment{From: "+14155550102", To: "+18005550000", RecordingURL: "https://rec.example/vm.mp3",
			StartedAt: time.Now().UTC().Truncate(time.Second), CallDuration: 31, TranscriptionText: "Please call me back"},
		DisplayToAgent: zendesktest.DemoAgentBob,
	})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := srv.Ticket(vm.ID)
	if st.ViaID != 44 || st.ViaChannel != "voice" || st.Comments[0].Type != "VoiceComment" || st.Comments[0].Data["recording_url"] != "https://rec.example/vm.mp3" {
		t.Fatalf("voicemail ticket %+v", st)
	}
	if d := srv.Displays(zendesktest.DemoAgentBob); len(d) != 1 || d[0].ID != vm.ID {
		t.Fatalf("displays %+v", d)
	}
	if _, err := c.CreateVoiceTicket(ctx, zendesk.VoiceTicket{ViaID: zendesk.ViaVoicemail}); !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("voicemail without comment: %v", err)
	}
	_, err = c.CreateVoiceTicket(ctx, zendesk.VoiceTicket{ViaID: zendesk.ViaInboundCall, DisplayToAgent: zendesktest.DemoJane,
		NewTicket: zendesk.NewTicket{RequesterID: zendesktest.DemoJohn, Comment: &zendesk.CommentInput{Body: "x"}}})
	var ue *cti.UpstreamError
	if !errors.As(err, &ue) || ue.Status != 422 {
		t.Fatalf("display to an end user: %v", err)
	}
}
