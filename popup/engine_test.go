package popup_test

import (
	"context"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
	"github.com/cxplay/ctikit/popup"
)

// TestEngineChooseFlow wires the strategy and the Dedupe popper into a
// cti.Engine: two customers share the caller's number, the agent is offered
// each one's latest open ticket, picks one through Engine.Choose and gets
// it popped.
func TestEngineChooseFlow(t *testing.T) {
	t.Parallel()
	rules := &cti.Rules{
		Subscribe: cti.Subscribe{Queues: []string{"q"}},
		Rules: []cti.Rule{{
			Name: "voice", When: cti.When{Media: []string{"voice"}},
			Identify: []cti.IdentifySpec{{Kind: cti.IdentifyPhone}},
			Popup:    cti.PopupTicketLatestOpen, Multiple: cti.MultipleChoose, NoMatch: cti.NoMatchCreateUserAndTicket,
		}},
	}
	matcher := cti.MatcherFunc(func(_ context.Context, q cti.Query) (cti.Result, error) {
		if !q.WithOpenTickets {
			t.Error("ticket:latest_open rule matched without open tickets")
		}
		return cti.Result{Records: []cti.Record{
			userRec(1, 9, ticket(11, "open", 5, 1)),
			userRec(2, 8),
		}}, nil
	})
	offers := make(chan cti.Choice, 1)
	chooser := cti.ChooserFunc(func(_ context.Context, c cti.Choice) error { offers <- c; return nil })
	pops := make(chan cti.PopRequest, 4)
	screen := cti.PopperFunc(func(_ context.Context, req cti.PopRequest) (cti.PopResult, error) {
		pops <- req
		r := *req.Decision.Record
		return cti.PopResult{Shown: &r}, nil
	})
	agents := cti.DirectoryFunc(func(context.Context, *cti.AgentLeg) (cti.Agent, error) { return cti.Agent{ID: 7}, nil })
	sink := cti.SinkFunc(func(context.Context, *cti.SyncJob) error { return nil })
	src := ctitest.NewSource()
	eng, err := cti.NewEngine(src, rules, cti.WithMatcher(matcher), cti.WithStrategy(popup.Strategy{}),
		cti.WithPopper(popup.Dedupe(screen, popup.DedupeOptions{})), cti.WithChooser(chooser),
		cti.WithDirectory(agents), cti.WithSink(sink))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	call := ctitest.NewConversation("conv-1", cti.MediaVoice).Phone("+14155551212")
	if err := src.Send(ctx, call.Alert("leg-1", "u1")); err != nil {
		t.Fatal(err)
	}
	var ch cti.Choice
	select {
	case ch = <-offers:
	case <-time.After(5 * time.Second):
		t.Fatal("no choice offered")
	}
	if len(ch.Candidates) != 2 || ch.Candidates[0].Ref() != "ticket/11" || ch.Candidates[1].Ref() != "user/2" || !ch.CanCreate || ch.Agent.ID != 7 {
		t.Fatalf("choice = %+v, want [ticket/11 user/2], CanCreate, agent 7", ch)
	}
	res, err := eng.Choose(ctx, ch.ConversationID, ch.LegID, &cti.Record{Kind: cti.KindTicket, ID: 11})
	if err != nil || res.Shown == nil || res.Shown.Ref() != "ticket/11" {
		t.Fatalf("Choose = %+v, %v", res, err)
	}
	if req := <-pops; req.Decision.Action != cti.ActionShow || req.Decision.Record.Ref() != "ticket/11" {
		t.Errorf("popped %+v", req.Decision)
	}
	if _, err := eng.Choose(ctx, ch.ConversationID, ch.LegID, &cti.Record{Kind: cti.KindTicket, ID: 11}); err == nil {
		t.Error("a second answer to the same choice was accepted")
	}
}
