package zendesk_test

import (
	"context"
	"errors"
	"github.com/cxplay/ctikit/zendesk"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

func ids(rs []cti.Record) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func eqIDs(t *testing.T, what string, got []cti.Record, want ...int64) {
	t.Helper()
	g := ids(got)
	if len(g) != len(want) {
		t.Fatalf("%s: got %v, want %v", what, g, want)
	}
	for i := range g {
		if g[i] != want[i] {
			t.Fatalf("%s: got %v, want %v", what, g, want)
		}
	}
}

func TestSearcherUsers(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	s := c.Searcher()
	ctx := context.Background()
	tests := []struct {
		name  string
		query string
		want  []int64
	}{
		{"shared phone, most recently updated first", `phone:"+14155550102"`, []int64{zendesktest.DemoJohn, zendesktest.DemoJoan}},
		{"repeated keyword ORs", `phone:"+14155550101" phone:"(415) 555-0106"`, []int64{zendesktest.DemoJane, zendesktest.DemoNat}},
		{"phone is an exact string", `phone:"+1 (415) 555-0101"`, nil},
		{"email is case-insensitive", `email:"JANE@example.com"`, []int64{zendesktest.DemoJane}},
		{"external id", `external_id:"CUST-1001"`, []int64{zendesktest.DemoJane}},
		{"user field", `plan_code:"GOLD"`, []int64{zendesktest.DemoJane}},
		{"organization", `organization:100`, []int64{zendesktest.DemoJane}},
		{"free text on a social identity", `"pmartin"`, []int64{zendesktest.DemoPierre}},
		{"different keywords AND", `phone:"+14155550102" email:"joan@example.com"`, []int64{zendesktest.DemoJoan}},
	}
	for _, tt := range tests {
		got, more, err := s.SearchUsers(ctx, tt.query)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if more {
			t.Errorf("%s: more = true", tt.name)
		}
		eqIDs(t, tt.name, got, tt.want...)
	}
	// The "+" travelled as %2B, so Zendesk saw a plus, not a space.
	reqs := srv.RequestsTo("GET", "/search")
	if len(reqs) == 0 || !strings.Contains(reqs[0].Query.Get("query"), `phone:"+14155550102"`) {
		t.Fatalf("query not received intact: %+v", reqs)
	}
	if reqs[0].Query.Get("sort_by") != "updated_at" || reqs[0].Query.Get("sort_order") != "desc" {
		t.Fatalf("not sorted by updated_at desc: %v", reqs[0].Query)
	}
	r, _, _ := s.SearchUsers(ctx, `email:"jane@example.com"`)
	if r[0].Kind != cti.KindUser || r[0].Name != "Jane Doe" || r[0].Phone != "+14155550101" || r[0].OrganizationID != 100 ||
		r[0].ExternalID != "CUST-1001" || r[0].UpdatedAt.IsZero() || !strings.HasSuffix(r[0].URL, "/agent/users/301") {
		t.Fatalf("record = %+v", r[0])
	}
}

func TestSearcherOrganizationsTicketsIdentities(t *testing.T) {
	t.Parallel()
	_, c := env(t, nil)
	s := c.Searcher()
	ctx := context.Background()
	orgs, _, err := s.SearchOrganizations(ctx, `external_id:"GLOBEX"`)
	if err != nil {
		t.Fatal(err)
	}
	eqIDs(t, "orgs", orgs, zendesktest.DemoOrgGlobe)
	if orgs[0].Kind != cti.KindOrganization || orgs[0].Name != "Globex" {
		t.Fatalf("org = %+v", orgs[0])
	}

	open, err := s.OpenTickets(ctx, zendesktest.DemoJane)
	if err != nil {
		t.Fatal(err)
	}
	eqIDs(t, "Jane's open tickets", open, zendesktest.DemoTicketJaneOpen, zendesktest.DemoTicketJanePending)
	if open[0].Status != "open" || open[0].RequesterID != zendesktest.DemoJane || open[0].Kind != cti.KindTicket {
		t.Fatalf("ticket record = %+v", open[0])
	}
	none, err := s.OpenTickets(ctx, 999999)
	if err != nil || none == nil || len(none) != 0 {
		t.Fatalf("unknown user: %v, %v", none, err)
	}

	tk, err := s.Ticket(ctx, zendesktest.DemoTicketJaneSolved)
	if err != nil || tk.Status != "solved" || tk.Name != "Password reset" {
		t.Fatalf("ticket = %+v, %v", tk, err)
	}
	if _, err := s.Ticket(ctx, 999999); !errors.Is(err, cti.ErrNotFound) {
		t.Fatalf("missing ticket: %v", err)
	}

	idn, err := s.UserIdentities(ctx, zendesktest.DemoPierre)
	if err != nil {
		t.Fatal(err)
	}
	want := map[match.UserIdentity]bool{{Type: "email", Value: "pierre@example.fr"}: true,
		{Type: "phone_number", Value: "+33612345678"}: true, {Type: "twitter", Value: "pmartin"}: true}
	if len(idn) != len(want) {
		t.Fatalf("identities = %v", idn)
	}
	for _, i := range idn {
		if !want[i] {
			t.Fatalf("unexpected identity %v", i)
		}
	}
	if got, err := s.UserIdentities(ctx, 999999); err != nil || len(got) != 0 {
		t.Fatalf("unknown user identities: %v, %v", got, err)
	}
}

func TestSearcherIndexLag(t *testing.T) {
	t.Parallel()
	_, c := env(t, []zendesktest.Option{zendesktest.WithIndexLag(time.Hour)})
	ctx := context.Background()
	u, err := c.CreateUser(ctx, zendesk.NewUser{Name: "New Caller", Identities: []zendesk.Identity{{Type: zendesk.IdentityPhone, Value: "+15550001111"}}})
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := c.Searcher().SearchUsers(ctx, `phone:"+15550001111"`)
	if err != nil || len(got) != 0 {
		t.Fatalf("new user searchable at once: %v, %v", got, err)
	}
	// Reads that are not searches see it.
	if back, err := c.User(ctx, u.ID); err != nil || back.Phone != "+15550001111" {
		t.Fatalf("show user: %+v, %v", back, err)
	}
}
