package popup_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/popup"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// TestNoDuplicateAgainstEmulator runs the whole identify → decide → pop
// path against the Zendesk emulator with a search index that lags a
// minute behind new users (the popper's own memory off): calls from one
// unknown number, one after the other and then several at once, create one
// customer and one ticket; each agent is shown that ticket.
func TestNoDuplicateAgainstEmulator(t *testing.T) {
	t.Parallel()
	srv := zendesktest.NewServer(zendesktest.WithoutRateLimits(), zendesktest.WithIndexLag(time.Minute))
	t.Cleanup(srv.Close)
	c, err := zendesk.New(zendesk.Config{URL: srv.URL, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken})
	if err != nil {
		t.Fatal(err)
	}
	m, err := match.NewZendesk(c.Searcher(), match.WithRegion("US"))
	if err != nil {
		t.Fatal(err)
	}
	zp, err := zendesk.NewPopper(c, zendesk.WithMemory(0))
	if err != nil {
		t.Fatal(err)
	}
	p := popup.Dedupe(zp, popup.DedupeOptions{})
	admin, _ := srv.UserByEmail(zendesktest.DefaultEmail)
	agent := cti.Agent{ID: admin.ID, Email: admin.Email}
	rule := &cti.Rule{Name: "voice", Popup: cti.PopupTicketLatestOpen, Multiple: cti.MultipleChoose, NoMatch: cti.NoMatchCreateUserAndTicket}

	call := func(convID string) (cti.PopResult, error) {
		conv := &cti.Conversation{ID: convID, Media: cti.MediaVoice, Direction: cti.Inbound,
			Customer: cti.Customer{Address: "tel:+14155559876", Phone: "+14155559876"}}
		id := cti.Identity{Kind: cti.IdentifyPhone, Value: conv.Customer.Phone}
		res, err := m.Match(context.Background(), cti.Query{Identity: id, WithOpenTickets: true})
		if err != nil {
			return cti.PopResult{}, err
		}
		if len(res.Records) != 0 {
			t.Errorf("%s: the lagging index found %v", convID, res.Records)
		}
		dec := popup.Strategy{}.Decide(cti.DecideInput{Rule: rule, Conversation: conv, Identity: id, Result: res})
		return p.Pop(context.Background(), cti.PopRequest{Agent: agent, Conversation: conv, Rule: rule, Identity: id, Decision: dec})
	}

	first, err := call("conv-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Created) != 2 || first.Shown == nil || first.Shown.Kind != cti.KindTicket {
		t.Fatalf("first call: %+v, want a user and a ticket created, the ticket shown", first)
	}
	second, err := call("conv-2")
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Created) != 0 || second.Shown == nil || !second.Shown.Same(*first.Shown) {
		t.Errorf("second call: %+v, want the first call's ticket shown, nothing created", second)
	}
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			res, err := call("conv-burst-" + string(rune('a'+i)))
			if err != nil || len(res.Created) != 0 || res.Shown == nil || !res.Shown.Same(*first.Shown) {
				t.Errorf("burst call %d: %+v, %v", i, res, err)
			}
		})
	}
	wg.Wait()
	var created []int
	for _, r := range srv.Requests() {
		if r.Method == "POST" && (r.Route == "/users" || r.Route == "/tickets" || r.Route == "/channels/voice/tickets") && r.Status < 300 {
			created = append(created, r.Status)
		}
	}
	if len(created) != 2 {
		t.Errorf("%d successful create requests (users and tickets), want 2", len(created))
	}
	if d := srv.Displays(agent.ID); len(d) != 7 {
		t.Errorf("%d screen pops, want 7 (one per call)", len(d))
	}
}
