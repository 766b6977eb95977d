package zendesktest

import "time"

// Seed is data to load into an emulator: organizations first, then users,
// then tickets. Ids given are kept (keep them below 1000: the emulator
// numbers new records from 1001).
type Seed struct {
	Organizations []Organization
	Users         []User
	Tickets       []Ticket
}

// Seed loads d. Seeded records are searchable at once.
func (s *Server) Seed(d Seed) {
	for _, o := range d.Organizations {
		s.AddOrganization(o)
	}
	for _, u := range d.Users {
		s.AddUser(u)
	}
	for _, t := range d.Tickets {
		s.AddTicket(t)
	}
}

// Demo ids: agents, customers and tickets of DemoSeed.
const (
	DemoOrgAcme  = 100
	DemoOrgGlobe = 101

	DemoAgentAlice = 201 // alice@example.com, agent
	DemoAgentBob   = 202 // bob@example.com, agent
	DemoAdminCarol = 203 // carol@example.com, admin

	DemoJane   = 301 // +14155550101, jane@example.com, Acme, external id CUST-1001, plan_code GOLD
	DemoJohn   = 302 // +14155550102 (shared with Joan), john@example.com
	DemoJoan   = 303 // +14155550102 (shared with John), joan@example.com
	DemoPierre = 304 // +33612345678, X handle pmartin
	DemoMaria  = 305 // Facebook id 1000123456789, maria@example.es
	DemoNat    = 306 // phone stored in national format "(415) 555-0106"
	DemoLiam   = 307 // WhatsApp +447700900123, Globex

	DemoTicketJaneOpen    = 401 // open, most recently updated of Jane's
	DemoTicketJanePending = 402 // pending
	DemoTicketJaneSolved  = 403 // solved
	DemoTicketJohnNew     = 404 // new
	DemoTicketJoanHold    = 405 // hold
	DemoTicketPierreDone  = 406 // closed
	DemoTicketLiamOpen    = 407 // open
)

// DemoSeed is a small account for demos and tests: three agents, seven
// customers (two sharing a phone number, one with a phone stored in
// national format, social identities), two organizations and tickets in
// every status. Times are relative to now, so "most recently updated"
// orderings hold.
func DemoSeed() Seed {
	now := time.Now().UTC().Truncate(time.Second)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	day := 24 * time.Hour
	return Seed{
		Organizations: []Organization{
			{ID: DemoOrgAcme, Name: "Acme Corp", ExternalID: "ACME", CreatedAt: ago(400 * day)},
			{ID: DemoOrgGlobe, Name: "Globex", ExternalID: "GLOBEX", CreatedAt: ago(300 * day)},
		},
		Users: []User{
			{ID: DemoAgentAlice, Name: "Alice Agent", Email: "alice@example.com", Role: "agent", CreatedAt: ago(500 * day)},
			{ID: DemoAgentBob, Name: "Bob Agent", Email: "bob@example.com", Role: "agent", CreatedAt: ago(500 * day)},
			{ID: DemoAdminCarol, Name: "Carol Admin", Email: "carol@example.com", Role: "admin", CreatedAt: ago(500 * day)},
			{ID: DemoJane, Name: "Jane Doe", Email: "jane@example.com", Phone: "+14155550101", ExternalID: "CUST-1001",
				OrganizationID: DemoOrgAcme, UserFields: map[string]any{"plan_code": "GOLD"}, Tags: []string{"vip"},
				CreatedAt: ago(200 * day), UpdatedAt: ago(2 * day)},
			{ID: DemoJohn, Name: "John Doe", Email: "john@example.com", Phone: "+14155550102",
				CreatedAt: ago(150 * day), UpdatedAt: ago(1 * day)},
			{ID: DemoJoan, Name: "Joan Doe", Email: "joan@example.com", Phone: "+14155550102",
				CreatedAt: ago(120 * day), UpdatedAt: ago(3 * day)},
			{ID: DemoPierre, Name: "Pierre Martin", Email: "pierre@example.fr", Phone: "+33612345678",
				Identities: []Identity{{Type: "twitter", Value: "pmartin"}}, CreatedAt: ago(100 * day), UpdatedAt: ago(10 * day)},
			{ID: DemoMaria, Name: "Maria Garcia", Email: "maria@example.es",
				Identities: []Identity{{Type: "facebook", Value: "1000123456789"}}, CreatedAt: ago(90 * day), UpdatedAt: ago(20 * day)},
			{ID: DemoNat, Name: "Nat National", Phone: "(415) 555-0106", CreatedAt: ago(80 * day), UpdatedAt: ago(30 * day)},
			{ID: DemoLiam, Name: "Liam Smith", Phone: "+447700900123", OrganizationID: DemoOrgGlobe,
				CreatedAt: ago(60 * day), UpdatedAt: ago(5 * day)},
		},
		Tickets: []Ticket{
			{ID: DemoTicketJaneOpen, Subject: "Router keeps rebooting", Description: "My router reboots every hour.", Status: "open",
				RequesterID: DemoJane, AssigneeID: DemoAgentAlice, CreatedAt: ago(5 * day), UpdatedAt: ago(1 * time.Hour)},
			{ID: DemoTicketJanePending, Subject: "Invoice question", Description: "Why was I charged twice?", Status: "pending",
				RequesterID: DemoJane, CreatedAt: ago(10 * day), UpdatedAt: ago(2 * day)},
			{ID: DemoTicketJaneSolved, Subject: "Password reset", Description: "I cannot log in.", Status: "solved",
				RequesterID: DemoJane, CreatedAt: ago(30 * day), UpdatedAt: ago(25 * day)},
			{ID: DemoTicketJohnNew, Subject: "New order", Description: "I would like to order 3 units.", Status: "new",
				RequesterID: DemoJohn, CreatedAt: ago(1 * day), UpdatedAt: ago(1 * day)},
			{ID: DemoTicketJoanHold, Subject: "Waiting for parts", Description: "Replacement part on its way.", Status: "hold",
				RequesterID: DemoJoan, AssigneeID: DemoAgentBob, CreatedAt: ago(7 * day), UpdatedAt: ago(3 * day)},
			{ID: DemoTicketPierreDone, Subject: "Livraison", Description: "Colis reçu, merci.", Status: "closed",
				RequesterID: DemoPierre, CreatedAt: ago(60 * day), UpdatedAt: ago(50 * day)},
			{ID: DemoTicketLiamOpen, Subject: "WhatsApp order status", Description: "Where is my order?", Status: "open",
				RequesterID: DemoLiam, CreatedAt: ago(2 * day), UpdatedAt: ago(6 * time.Hour)},
		},
	}
}
