package popup_test

import (
	"context"
	"fmt"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/popup"
)

func ExampleStrategy() {
	rule := &cti.Rule{Name: "support", Popup: cti.PopupTicketLatestOpen, Multiple: cti.MultipleChoose, NoMatch: cti.NoMatchCreateUserAndTicket}
	call := &cti.Conversation{Media: cti.MediaVoice, Direction: cti.Inbound, Customer: cti.Customer{Phone: "+14155551212"}}
	jane := cti.Record{Kind: cti.KindUser, ID: 42, OpenTickets: []cti.Record{{Kind: cti.KindTicket, ID: 7, Status: "open"}}}

	s := popup.Strategy{}
	for _, res := range []cti.Result{
		{Records: []cti.Record{jane}},
		{},
	} {
		d := s.Decide(cti.DecideInput{Rule: rule, Conversation: call, Result: res})
		fmt.Println(d.Action, "-", d.Reason)
		if d.Action == cti.ActionCreate {
			fmt.Printf("  user=%v ticket=%v voice=%v subject=%q\n", d.Create.User, d.Create.Ticket, d.Create.Voice, d.Create.Subject)
		}
	}
	// Output:
	// show - one record matches, its latest open ticket: show ticket/7
	// create - no match: create the customer and a ticket (nomatch: create_user_and_ticket)
	//   user=true ticket=true voice=true subject="Call from +14155551212"
}

// The subject hook: the reference server renders the rule's subject with
// syncmap; here a plain function.
func ExampleSubjectFunc() {
	s := popup.Strategy{Subject: func(r *cti.Rule, c *cti.Conversation) string {
		return "[" + r.Name + "] " + popup.MediaSubject(c)
	}}
	rule := &cti.Rule{Name: "whatsapp", Popup: cti.PopupTicketNew}
	c := &cti.Conversation{Media: cti.MediaMessage, Channel: cti.ChannelWhatsApp, Customer: cti.Customer{Name: "Jane", Phone: "+33612345678"}}
	d := s.Decide(cti.DecideInput{Rule: rule, Conversation: c, Result: cti.Result{Records: []cti.Record{{Kind: cti.KindUser, ID: 42}}}})
	fmt.Println(d.Create.Subject, "for", d.Create.Requester.Ref())
	// Output:
	// [whatsapp] WhatsApp conversation with Jane (+33612345678) for user/42
}

// The same unknown number calls twice before Zendesk's search index has the
// customer created on the first call: the second call shows that customer
// instead of creating another.
func ExampleDedupe() {
	next := 100
	zendesk := cti.PopperFunc(func(ctx context.Context, req cti.PopRequest) (cti.PopResult, error) {
		switch d := req.Decision; d.Action {
		case cti.ActionCreate:
			next++
			u := cti.Record{Kind: cti.KindUser, ID: int64(next)}
			fmt.Println("created", u.Ref())
			return cti.PopResult{Shown: &u, Created: []cti.Record{u}}, nil
		default:
			fmt.Println("showed", d.Record.Ref())
			return cti.PopResult{Shown: d.Record}, nil
		}
	})
	p := popup.Dedupe(zendesk, popup.DedupeOptions{})

	rule := &cti.Rule{Name: "r", Popup: cti.PopupUser, NoMatch: cti.NoMatchCreateUser}
	for range 2 {
		c := &cti.Conversation{Media: cti.MediaVoice, Customer: cti.Customer{Phone: "+14155551212"}}
		id := cti.Identity{Kind: cti.IdentifyPhone, Value: "+14155551212"}
		d := popup.Strategy{}.Decide(cti.DecideInput{Rule: rule, Conversation: c, Identity: id}) // nothing found
		p.Pop(context.Background(), cti.PopRequest{Conversation: c, Rule: rule, Identity: id, Decision: d})
	}
	// Output:
	// created user/101
	// showed user/101
}
