package zendesk_test

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
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/popup"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

var alice = cti.Agent{ID: zendesktest.DemoAgentAlice, Email: "alice@example.com", Name: "Alice Agent"}

func voiceConv(id, phone string) *cti.Conversation {
	return &cti.Conversation{ID: id, Media: cti.MediaVoice, Direction: cti.Inbound,
		Customer: cti.Customer{Address: "tel:" + phone, Phone: phone}, Queue: cti.Ref{ID: "q1", Name: "Support"},
		Agents: []cti.AgentLeg{{ID: "leg-1", UserID: "g-alice", Email: "alice@example.com"}}}
}

func createReq(c *cti.Conversation, user, ticket, voice bool) cti.PopRequest {
	return cti.PopRequest{Agent: alice, Conversation: c, Leg: &c.Agents[0],
		Identity: cti.Identity{Kind: cti.IdentifyPhone, Value: c.Customer.Phone},
		Decision: cti.Decision{Action: cti.ActionCreate, Create: cti.CreateSpec{User: user, Ticket: ticket, Voice: voice}}}
}

func TestPopperShow(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	p, err := zendesk.NewPopper(c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	show := func(agent cti.Agent, rec cti.Record) (cti.PopResult, error) {
		return p.Pop(ctx, cti.PopRequest{Agent: agent, Decision: cti.Decision{Action: cti.ActionShow, Record: &rec}})
	}
	res, err := show(alice, cti.Record{Kind: cti.KindUser, ID: zendesktest.DemoJane})
	if err != nil || res.Shown == nil || res.Shown.ID != zendesktest.DemoJane || len(res.Created) != 0 {
		t.Fatalf("show user: %+v, %v", res, err)
	}
	if _, err := show(alice, cti.Record{Kind: cti.KindTicket, ID: zendesktest.DemoTicketJaneOpen}); err != nil {
		t.Fatal(err)
	}
	d := srv.Displays(zendesktest.DemoAgentAlice)
	if len(d) != 2 || d[0].Kind != "user" || d[0].ID != zendesktest.DemoJane || d[1].Kind != "ticket" || d[1].ID != zendesktest.DemoTicketJaneOpen {
		t.Fatalf("displays %+v", d)
	}
	if _, err := show(alice, cti.Record{Kind: cti.KindOrganization, ID: zendesktest.DemoOrgAcme}); !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("show organization: %v", err)
	}
	if _, err := show(cti.Agent{}, cti.Record{Kind: cti.KindUser, ID: 1}); !errors.Is(err, cti.ErrUnknownAgent) {
		t.Fatalf("no agent: %v", err)
	}
	// Zendesk says 404 for an agent id that is not an agent.
	if _, err := show(cti.Agent{ID: zendesktest.DemoJane}, cti.Record{Kind: cti.KindUser, ID: zendesktest.DemoJohn}); !errors.Is(err, cti.ErrNotFound) {
		t.Fatalf("end user as agent: %v", err)
	}
	if _, err := p.Pop(ctx, cti.PopRequest{Agent: alice, Decision: cti.Decision{Action: cti.ActionChoose}}); !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("choose: %v", err)
	}
}

func TestPopperCreatesVoiceTicket(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	p, _ := zendesk.NewPopper(c)
	conv := voiceConv("conv-v1", "+15550002222")
	res, err := p.Pop(context.Background(), createReq(conv, true, true, true))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Created) != 2 || res.Created[0].Kind != cti.KindUser || res.Created[1].Kind != cti.KindTicket || res.Shown == nil || !res.Shown.Same(res.Created[1]) {
		t.Fatalf("result %+v", res)
	}
	u, _ := srv.User(res.Created[0].ID)
	if u.Name != "Caller +15550002222" || u.Phone != "+15550002222" || u.Role != "end-user" {
		t.Fatalf("user %+v", u)
	}
	tk, _ := srv.Ticket(res.Shown.ID)
	if tk.ViaID != zendesk.ViaInboundCall || tk.RequesterID != u.ID || tk.Subject != "Inbound call from +15550002222" ||
		tk.Comments[0].Public || tk.Comments[0].AuthorID != alice.ID || !strings.Contains(tk.Comments[0].Body, "conv-v1") {
		t.Fatalf("ticket %+v", tk)
	}
	// The voice ticket request displayed it: no second display call.
	if d := srv.Displays(alice.ID); len(d) != 1 || d[0].ID != tk.ID {
		t.Fatalf("displays %+v", d)
	}
	if n := len(srv.RequestsTo("POST", "/channels/voice/agents/")); n != 0 {
		t.Fatalf("%d extra display calls", n)
	}
}

func TestNewUserFromIdentities(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		conv cti.Conversation
		id   cti.Identity
		want string // identities, sorted as built
		user string
		note string
	}{
		{"X with email", cti.Conversation{Media: cti.MediaMessage, Channel: cti.ChannelTwitter,
			Customer: cti.Customer{Handle: "@jdoe", Email: "J@Example.com", Name: "J Doe"}},
			cti.Identity{Kind: cti.IdentifySocial, Channel: cti.ChannelTwitter, Value: "@jdoe"}, "email:j@example.com twitter:jdoe", "J Doe", ""},
		{"WhatsApp is a phone", cti.Conversation{Media: cti.MediaMessage, Channel: cti.ChannelWhatsApp,
			Customer: cti.Customer{Handle: "+447700900999"}}, cti.Identity{}, "phone_number:+447700900999", "+447700900999", ""},
		{"LINE goes to notes", cti.Conversation{Media: cti.MediaMessage, Channel: cti.ChannelLine,
			Customer: cti.Customer{Handle: "U123"}}, cti.Identity{}, "", "U123 (LINE)", "LINE id: U123"},
		{"Facebook", cti.Conversation{Media: cti.MediaMessage, Channel: cti.ChannelFacebook,
			Customer: cti.Customer{Handle: "100200300"}}, cti.Identity{}, "facebook:100200300", "100200300 (Facebook)", ""},
		{"email media", cti.Conversation{Media: cti.MediaEmail, Customer: cti.Customer{Email: "a@b.co"}}, cti.Identity{}, "email:a@b.co", "a@b.co", ""},
	}
	for _, tt := range tests {
		nu := zendesk.NewUserFrom(cti.PopRequest{Conversation: &tt.conv, Identity: tt.id})
		var got []string
		for _, i := range nu.Identities {
			got = append(got, i.Type+":"+i.Value)
		}
		if strings.Join(got, " ") != tt.want || nu.Name != tt.user || nu.Notes != tt.note {
			t.Errorf("%s: identities %v, name %q, notes %q", tt.name, got, nu.Name, nu.Notes)
		}
	}
	nu := zendesk.NewUserFrom(cti.PopRequest{Conversation: &cti.Conversation{Media: cti.MediaVoice},
		Identity: cti.Identity{Kind: cti.IdentifyAttribute, Target: "user_field.account_no", Value: "A-9"}})
	if nu.UserFields["account_no"] != "A-9" {
		t.Fatalf("user field: %+v", nu)
	}
}

// The same unknown number calls twice before Zendesk's index has the user
// created for the first call: the second pop reuses it. End to end: the
// real matcher searches the emulator (which lags), the real strategy
// decides, the popper creates.
func TestNoDuplicateUserWithinIndexLag(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"popper memory", "popup.Dedupe over a forgetful popper"} {
		t.Run(mode, func(t *testing.T) {
			srv, c := env(t, []zendesktest.Option{zendesktest.WithIndexLag(time.Hour)})
			m, err := match.NewZendesk(c.Searcher())
			if err != nil {
				t.Fatal(err)
			}
			var pop cti.Popper
			rule := &cti.Rule{Name: "voice", Popup: cti.PopupUser, Multiple: cti.MultipleFirst, NoMatch: cti.NoMatchCreateUser,
				Identify: []cti.IdentifySpec{{Kind: cti.IdentifyPhone}}}
			if mode == "popper memory" {
				pop, _ = zendesk.NewPopper(c)
			} else {
				inner, _ := zendesk.NewPopper(c, zendesk.WithMemory(0))
				pop = popup.Dedupe(inner, popup.DedupeOptions{})
			}
			ctx := context.Background()
			call := func(convID string) cti.PopResult {
				conv := voiceConv(convID, "+15550003333")
				id := rule.Identities(conv)[0]
				res, err := m.Match(ctx, cti.Query{Identity: id})
				if err != nil {
					t.Fatal(err)
				}
				dec := popup.Strategy{}.Decide(cti.DecideInput{Rule: rule, Conversation: conv, Leg: &conv.Agents[0], Identity: id, Result: res})
				if dec.Action == cti.ActionNone {
					t.Fatalf("decision %+v", dec)
				}
				out, err := pop.Pop(ctx, cti.PopRequest{Agent: alice, Conversation: conv, Leg: &conv.Agents[0], Rule: rule, Identity: id, Decision: dec})
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			first := call("conv-1")
			var wg sync.WaitGroup
			for i := range 5 { // more calls from the number, some at once
				wg.Add(1)
				go func() { defer wg.Done(); call(fmt.Sprintf("conv-%d", i+2)) }()
			}
			wg.Wait()
			if got := srv.UsersWithPhone("+15550003333"); len(got) != 1 || got[0].ID != first.Shown.ID {
				t.Fatalf("%d users for one caller: %+v", len(got), got)
			}
			if d := srv.Displays(alice.ID); len(d) != 6 {
				t.Fatalf("%d displays, want one per call", len(d))
			}
		})
	}
}

// TestPopperCreateUserWhoseKeyIsTaken: the customer wrote to Zendesk a
// minute ago (a user, not yet in the search index) and now starts a chat.
// The search misses, nomatch creates the user, Zendesk refuses the email
// (or external id) as taken: the pop shows the user who holds it, found
// without the index, and creates no second one.
func TestPopperCreateUserWhoseKeyIsTaken(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		user zendesk.NewUser
		conv cti.Customer
		spec cti.IdentifySpec
		id   cti.Identity
	}{
		{"email", zendesk.NewUser{Name: "Fresh Customer", Email: "fresh@example.org", Role: zendesk.RoleEndUser},
			cti.Customer{Email: "fresh@example.org", Name: "Fresh Customer"}, cti.IdentifySpec{Kind: cti.IdentifyEmail}, cti.Identity{}},
		{"external id", zendesk.NewUser{Name: "Known Customer", ExternalID: "crm-42", Role: zendesk.RoleEndUser},
			cti.Customer{Name: "Known Customer"}, cti.IdentifySpec{Kind: cti.IdentifyAttribute, Attribute: "customerId", Target: cti.TargetExternalID},
			cti.Identity{Kind: cti.IdentifyAttribute, Value: "crm-42", Target: cti.TargetExternalID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, c := env(t, []zendesktest.Option{zendesktest.WithIndexLag(2 * time.Minute)})
			ctx := context.Background()
			existing, err := c.CreateUser(ctx, tc.user)
			if err != nil {
				t.Fatal(err)
			}
			conv := &cti.Conversation{ID: "chat-" + tc.name, Media: cti.MediaChat, Direction: cti.Inbound,
				Customer: tc.conv, Agents: []cti.AgentLeg{{ID: "l1"}}}
			rule := &cti.Rule{Name: "chat", Popup: cti.PopupUser, Multiple: cti.MultipleFirst, NoMatch: cti.NoMatchCreateUser,
				Identify: []cti.IdentifySpec{tc.spec}}
			id := tc.id
			if id.Kind == "" {
				id = rule.Identities(conv)[0]
			}
			m, err := match.NewZendesk(c.Searcher())
			if err != nil {
				t.Fatal(err)
			}
			res, err := m.Match(ctx, cti.Query{Identity: id})
			if err != nil || len(res.Records) != 0 {
				t.Fatalf("search found %+v, %v: want nothing yet (index lag)", res.Records, err)
			}
			dec := popup.Strategy{}.Decide(cti.DecideInput{Rule: rule, Conversation: conv, Leg: &conv.Agents[0], Identity: id, Result: res})
			p, err := zendesk.NewPopper(c)
			if err != nil {
				t.Fatal(err)
			}
			out, err := p.Pop(ctx, cti.PopRequest{Agent: alice, Conversation: conv, Leg: &conv.Agents[0], Rule: rule, Identity: id, Decision: dec})
			if err != nil || out.Shown == nil || out.Shown.ID != existing.ID || len(out.Created) != 0 {
				t.Fatalf("decision %s; pop = %+v, %v; want user %d shown, nothing created", dec.Action, out, err, existing.ID)
			}
			if d := srv.Displays(alice.ID); len(d) != 1 || d[0].ID != existing.ID {
				t.Errorf("displays %+v, want user %d", d, existing.ID)
			}
			if u, err := c.User(ctx, existing.ID); err != nil || u.Name != tc.user.Name {
				t.Errorf("the user after the pop: %+v, %v; want it unchanged", u, err)
			}
		})
	}
}

// TestUserByKey finds a user by email or external id without the search
// index, changes nothing, and creates nobody.
func TestUserByKey(t *testing.T) {
	t.Parallel()
	srv, c := env(t, []zendesktest.Option{zendesktest.WithIndexLag(time.Hour)})
	ctx := context.Background()
	u, err := c.CreateUser(ctx, zendesk.NewUser{Name: "Key Holder", Email: "Key@Example.org", ExternalID: "ext-1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range [][2]string{{"email", "key@example.org"}, {"external_id", "ext-1"}} {
		got, err := c.UserByKey(ctx, k[0], k[1])
		if err != nil || got.ID != u.ID || got.Name != "Key Holder" {
			t.Errorf("UserByKey(%s, %s) = %+v, %v; want user %d", k[0], k[1], got, err, u.ID)
		}
	}
	_, err = c.UserByKey(ctx, "email", "nobody@example.org")
	var ae *zendesk.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusUnprocessableEntity {
		t.Errorf("UserByKey of an unknown email: %v, want Zendesk's 422 (no user without a name)", err)
	}
	if n := len(srv.RequestsTo("POST", "/users/create_or_update")); n != 3 {
		t.Errorf("%d create_or_update requests, want 3", n)
	}
	for _, bad := range [][2]string{{"phone", "+15550001111"}, {"email", " "}} {
		if _, err := c.UserByKey(ctx, bad[0], bad[1]); !errors.Is(err, cti.ErrInvalid) {
			t.Errorf("UserByKey(%q, %q): %v, want ErrInvalid", bad[0], bad[1], err)
		}
	}
}

func TestPopperPartialFailureRetries(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	p, _ := zendesk.NewPopper(c)
	conv := &cti.Conversation{ID: "chat-1", Media: cti.MediaChat, Direction: cti.Inbound,
		Customer: cti.Customer{Email: "newbie@example.org", Name: "New Bie"}, Agents: []cti.AgentLeg{{ID: "l1"}}}
	req := cti.PopRequest{Agent: alice, Conversation: conv, Leg: &conv.Agents[0],
		Identity: cti.Identity{Kind: cti.IdentifyEmail, Value: "newbie@example.org"},
		Decision: cti.Decision{Action: cti.ActionCreate, Create: cti.CreateSpec{User: true, Ticket: true, Subject: "Chat with New Bie"}}}
	srv.InjectFault(zendesktest.Fault{Method: "POST", Route: "/tickets", Status: 422, Times: 1})
	res, err := p.Pop(context.Background(), req)
	if err == nil || len(res.Created) != 1 || res.Created[0].Kind != cti.KindUser || res.Shown != nil {
		t.Fatalf("partial: %+v, %v", res, err)
	}
	res2, err := p.Pop(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res2.Created) != 1 || res2.Created[0].Kind != cti.KindTicket || res2.Shown.RequesterID != res.Created[0].ID {
		t.Fatalf("retry: %+v", res2)
	}
	if n := len(srv.RequestsTo("POST", "/users")); n != 1 {
		t.Fatalf("user created %d times", n)
	}
	tk, _ := srv.Ticket(res2.Shown.ID)
	if tk.Subject != "Chat with New Bie" || tk.ViaChannel != "api" {
		t.Fatalf("ticket %+v", tk)
	}
	if d := srv.Displays(alice.ID); len(d) != 1 || d[0].ID != tk.ID {
		t.Fatalf("displays %+v", d)
	}
	// A second agent on the same conversation (a transfer) gets the same ticket.
	bob := cti.Agent{ID: zendesktest.DemoAgentBob}
	req.Agent = bob
	res3, err := p.Pop(context.Background(), req)
	if err != nil || len(res3.Created) != 0 || res3.Shown.ID != tk.ID {
		t.Fatalf("transfer: %+v, %v", res3, err)
	}
	if d := srv.Displays(bob.ID); len(d) != 1 || d[0].ID != tk.ID {
		t.Fatalf("bob's displays %+v", d)
	}
}

func TestPopperCreateBadRequests(t *testing.T) {
	t.Parallel()
	_, c := env(t, nil)
	p, _ := zendesk.NewPopper(c)
	ctx := context.Background()
	conv := voiceConv("c", "+15550004444")
	if _, err := p.Pop(ctx, createReq(conv, false, false, false)); !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("nothing to create: %v", err)
	}
	if _, err := p.Pop(ctx, createReq(conv, false, true, false)); !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("ticket without requester: %v", err)
	}
	req := createReq(conv, false, true, false)
	req.Decision.Create.Requester = &cti.Record{Kind: cti.KindUser, ID: zendesktest.DemoJane}
	res, err := p.Pop(ctx, req)
	if err != nil || res.Shown.RequesterID != zendesktest.DemoJane {
		t.Fatalf("ticket for a known requester: %+v, %v", res, err)
	}
	req.Conversation = nil
	if _, err := p.Pop(ctx, req); !errors.Is(err, cti.ErrInvalid) {
		t.Fatalf("no conversation: %v", err)
	}
}

// A creation once sent is seen through when the pop that started it gives
// up, and remembered: the pop that leads it returns what it created (the
// user) with its ctx's error, and starts nothing more (the ticket); a pop
// waiting for it returns when its own ctx is done; a later pop for the
// conversation reuses the user and creates the ticket.
func TestPopperCreationOutlivesItsCaller(t *testing.T) {
	t.Parallel()
	srv, c := env(t, []zendesktest.Option{zendesktest.WithLatency(500 * time.Millisecond)})
	p, _ := zendesk.NewPopper(c)
	conv := voiceConv("conv-late", "+15550004444")
	lead, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan cti.PopResult, 1)
	go func() {
		res, err := p.Pop(lead, createReq(conv, true, true, true))
		if !errors.Is(err, context.Canceled) {
			t.Errorf("leading pop: %v, want its cancellation", err)
		}
		first <- res
	}()
	// The user creation is at Zendesk (done on arrival, answered after
	// the latency) when the leading pop gives up.
	for deadline := time.Now().Add(10 * time.Second); len(srv.UsersWithPhone("+15550004444")) == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the user creation never reached Zendesk")
		}
	}
	cancel()
	wait, cancelWait := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelWait()
	start := time.Now()
	if _, err := p.Pop(wait, createReq(conv, true, true, true)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("waiting pop: %v, want its deadline", err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("the waiting pop returned after %v, not at its deadline", d)
	}
	res := <-first
	if len(res.Created) != 1 || res.Created[0].Kind != cti.KindUser || res.Shown != nil {
		t.Fatalf("leading pop: %+v", res)
	}
	again, err := p.Pop(context.Background(), createReq(conv, true, true, true))
	if err != nil || len(again.Created) != 1 || again.Created[0].Kind != cti.KindTicket || again.Shown == nil {
		t.Fatalf("later pop: %+v, %v", again, err)
	}
	if tk, _ := srv.Ticket(again.Shown.ID); tk.RequesterID != res.Created[0].ID {
		t.Errorf("the ticket's requester is %d, not the user the first pop created", tk.RequesterID)
	}
	if n := len(srv.RequestsTo("POST", "/channels/voice/tickets")); n != 1 {
		t.Errorf("%d voice tickets created, want 1", n)
	}
	if n := len(srv.RequestsTo("POST", "/users")); n != 1 {
		t.Errorf("%d users created, want 1", n)
	}
}
