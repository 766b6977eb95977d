package zendesk_test

import (
	"context"
	"fmt"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// A client on the emulator, searching a phone number two customers share.
func Example() {
	srv := zendesktest.NewServer()
	defer srv.Close()
	srv.Seed(zendesktest.DemoSeed())

	c, err := zendesk.New(zendesk.Config{URL: srv.URL, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken})
	if err != nil {
		fmt.Println(err)
		return
	}
	users, more, err := c.Searcher().SearchUsers(context.Background(), `phone:"+14155550102"`)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, u := range users {
		fmt.Println(u.Ref(), u.Name)
	}
	fmt.Println("more:", more)
	// Output:
	// user/302 John Doe
	// user/303 Joan Doe
	// more: false
}

// The reference server builds its client from the environment; missing
// variables are all named at once.
func ExampleConfigFromLookup() {
	env := map[string]string{"ZENDESK_URL": "acme"}
	_, err := zendesk.ConfigFromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	fmt.Println(err)

	env["ZENDESK_EMAIL"], env["ZENDESK_API_TOKEN"] = "ops@acme.example", "xxxx"
	cfg, _ := zendesk.ConfigFromLookup(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	base, _ := cfg.BaseURL()
	fmt.Println(base)
	// Output:
	// ZENDESK_EMAIL: not set: set it to the email address of the Zendesk user who owns the API token (or set ZENDESK_OAUTH_TOKEN instead)
	// ZENDESK_API_TOKEN: not set: create an API token in Zendesk Admin Center > Apps and integrations > APIs > Zendesk API (or set ZENDESK_OAUTH_TOKEN instead)
	// https://acme.zendesk.com/api/v2
}

// The directory maps a Genesys agent to the Zendesk agent by email, or by
// the rules file's agents: overrides.
func ExampleNewDirectory() {
	srv := zendesktest.NewServer()
	defer srv.Close()
	srv.Seed(zendesktest.DemoSeed())
	c, _ := zendesk.New(zendesk.Config{URL: srv.URL, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken})

	dir, _ := zendesk.NewDirectory(c, map[string]string{"genesys-user-42": "bob@example.com"})
	ctx := context.Background()
	for _, leg := range []cti.AgentLeg{
		{UserID: "genesys-user-7", Email: "alice@example.com"},
		{UserID: "genesys-user-42", Email: "robert@genesys.example"},
		{UserID: "genesys-user-9", Email: "nobody@example.com"},
	} {
		a, err := dir.Agent(ctx, &leg)
		fmt.Println(leg.UserID, "→", a.ID, a.Name, err)
	}
	// Output:
	// genesys-user-7 → 201 Alice Agent <nil>
	// genesys-user-42 → 202 Bob Agent <nil>
	// genesys-user-9 → 0  zendesk directory: cti: unknown agent: no Zendesk agent with email nobody@example.com
}

// The popper creates the unknown caller and a voice ticket, which opens in
// the agent's browser (Talk Partner Edition).
func ExamplePopper() {
	srv := zendesktest.NewServer()
	defer srv.Close()
	srv.Seed(zendesktest.DemoSeed())
	c, _ := zendesk.New(zendesk.Config{URL: srv.URL, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken})
	p, _ := zendesk.NewPopper(c)

	conv := &cti.Conversation{ID: "c-1", Media: cti.MediaVoice, Direction: cti.Inbound,
		Customer: cti.Customer{Phone: "+15550001234"}}
	res, err := p.Pop(context.Background(), cti.PopRequest{
		Agent: cti.Agent{ID: zendesktest.DemoAgentAlice}, Conversation: conv,
		Identity: cti.Identity{Kind: cti.IdentifyPhone, Value: "+15550001234"},
		Decision: cti.Decision{Action: cti.ActionCreate, Create: cti.CreateSpec{User: true, Ticket: true, Voice: true}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range res.Created {
		fmt.Println("created", r.Kind, r.Name)
	}
	for _, d := range srv.Displays(zendesktest.DemoAgentAlice) {
		fmt.Println("displayed", d.Kind, "to agent", d.AgentID, d.ID == res.Shown.ID)
	}
	// Output:
	// created user Caller +15550001234
	// created ticket Inbound call from +15550001234
	// displayed ticket to agent 201 true
}

// End-of-conversation writes: one ticket update carries the comment, the
// custom fields and the tags.
func ExampleClient_UpdateTicket() {
	srv := zendesktest.NewServer()
	defer srv.Close()
	srv.Seed(zendesktest.DemoSeed())
	c, _ := zendesk.New(zendesk.Config{URL: srv.URL, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken})

	t, err := c.UpdateTicket(context.Background(), zendesktest.DemoTicketJaneOpen, zendesk.TicketUpdate{
		Comment:        &zendesk.CommentInput{Body: "Call 4m05s, wrap-up: Resolved", AuthorID: zendesktest.DemoAgentAlice},
		CustomFields:   []zendesk.CustomField{{ID: 360000000001, Value: "245"}},
		AdditionalTags: []string{"genesys", "resolved"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.ID, t.Status, t.Tags, t.CustomFields)
	// Output:
	// 401 open [genesys resolved] [{360000000001 245}]
}
