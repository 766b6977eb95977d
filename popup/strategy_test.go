package popup_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/popup"
)

var t0 = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)

func at(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

func ticket(id int64, status string, h int, requester int64) cti.Record {
	return cti.Record{Kind: cti.KindTicket, ID: id, Name: fmt.Sprint("T", id), Status: status, UpdatedAt: at(h), RequesterID: requester}
}

func userRec(id int64, h int, open ...cti.Record) cti.Record {
	return cti.Record{Kind: cti.KindUser, ID: id, Name: fmt.Sprint("U", id), UpdatedAt: at(h), OpenTickets: open}
}

// Record sets, most recently updated first as a matcher returns them.
var (
	noRecs = []cti.Record{}
	// user 1 has open tickets 11 (updated h5) and 12 (h7), and a solved one
	// (h9) that a sloppy matcher left in.
	oneUserOpen   = []cti.Record{userRec(1, 10, ticket(11, "open", 5, 1), ticket(12, "pending", 7, 1), ticket(13, "solved", 9, 1))}
	oneUserNoOpen = []cti.Record{userRec(2, 10, ticket(21, "closed", 9, 2))}
	ivrTicket     = []cti.Record{ticket(31, "solved", 3, 5)}
	ivrOrphan     = []cti.Record{ticket(32, "open", 3, 0)}
	twoUsers      = []cti.Record{userRec(3, 9), userRec(1, 8, ticket(11, "open", 5, 1), ticket(12, "hold", 7, 1))}
	orgOnly       = []cti.Record{{Kind: cti.KindOrganization, ID: 70}}
)

func describe(d cti.Decision) string {
	switch d.Action {
	case cti.ActionNone:
		return "none"
	case cti.ActionShow:
		return "show " + d.Record.Ref()
	case cti.ActionChoose:
		var refs []string
		for _, c := range d.Candidates {
			refs = append(refs, c.Ref())
		}
		return "choose " + strings.Join(refs, " ")
	case cti.ActionCreate:
		var parts []string
		if d.Create.User {
			parts = append(parts, "user")
		}
		if d.Create.Ticket {
			parts = append(parts, "ticket")
		}
		s := "create " + strings.Join(parts, "+")
		if d.Create.Requester != nil {
			s += " for " + d.Create.Requester.Ref()
		}
		return s
	}
	return "?" + string(d.Action)
}

func voiceConv() *cti.Conversation {
	return &cti.Conversation{ID: "c1", Media: cti.MediaVoice, Direction: cti.Inbound,
		Customer: cti.Customer{Phone: "+14155551212", Name: "Jane Doe"}}
}

func decide(popupKind cti.Popup, multiple cti.Multiple, nomatch cti.NoMatch, recs []cti.Record) cti.Decision {
	rule := &cti.Rule{Name: "r", Popup: popupKind, Multiple: multiple, NoMatch: nomatch}
	return popup.Strategy{}.Decide(cti.DecideInput{Rule: rule, Conversation: voiceConv(), Result: cti.Result{Records: recs}})
}

func TestStrategyTable(t *testing.T) {
	t.Parallel()
	const (
		user   = cti.PopupUser
		latest = cti.PopupTicketLatestOpen
		newT   = cti.PopupTicketNew
		off    = cti.PopupNone

		choose = cti.MultipleChoose
		first  = cti.MultipleFirst
		mnone  = cti.MultipleNone

		nothing = cti.NoMatchNothing
		cu      = cti.NoMatchCreateUser
		ct      = cti.NoMatchCreateTicket
		cut     = cti.NoMatchCreateUserAndTicket
	)
	tests := []struct {
		popup    cti.Popup
		multiple cti.Multiple
		nomatch  cti.NoMatch
		recs     []cti.Record
		want     string
	}{
		// popup none never pops, whatever matched.
		{off, choose, cut, noRecs, "none"},
		{off, first, cut, oneUserOpen, "none"},
		{off, choose, cut, twoUsers, "none"},

		// popup user
		{user, choose, nothing, oneUserOpen, "show user/1"},
		{user, choose, nothing, ivrTicket, "show ticket/31"},
		{user, choose, nothing, twoUsers, "choose user/3 user/1"},
		{user, first, nothing, twoUsers, "show user/3"},
		{user, mnone, cut, twoUsers, "none"},
		{user, choose, nothing, noRecs, "none"},
		{user, choose, cu, noRecs, "create user"},
		{user, choose, ct, noRecs, "create user+ticket"},
		{user, choose, cut, noRecs, "create user+ticket"},
		{user, choose, cu, orgOnly, "create user"}, // an organization is not a customer to pop
		{"", "", "", oneUserOpen, "show user/1"},   // defaults: user, choose, nothing
		{"", "", "", twoUsers, "choose user/3 user/1"},
		{"", "", "", noRecs, "none"},

		// popup ticket:latest_open
		{latest, choose, nothing, oneUserOpen, "show ticket/12"},
		{latest, choose, cut, oneUserOpen, "show ticket/12"},
		{latest, choose, nothing, oneUserNoOpen, "show user/2"},
		{latest, choose, cu, oneUserNoOpen, "show user/2"},
		{latest, choose, ct, oneUserNoOpen, "create ticket for user/2"},
		{latest, choose, cut, oneUserNoOpen, "create ticket for user/2"},
		{latest, choose, nothing, ivrTicket, "show ticket/31"}, // the ticket the caller keyed in, even solved
		{latest, choose, nothing, twoUsers, "choose user/3 ticket/12"},
		{latest, first, nothing, twoUsers, "show user/3"},
		{latest, first, ct, twoUsers, "create ticket for user/3"},
		{latest, mnone, cut, twoUsers, "none"},
		{latest, choose, nothing, noRecs, "none"},
		{latest, choose, cu, noRecs, "create user"},
		{latest, choose, ct, noRecs, "create user+ticket"},
		{latest, choose, cut, noRecs, "create user+ticket"},

		// popup ticket:new
		{newT, choose, nothing, oneUserOpen, "create ticket for user/1"},
		{newT, choose, nothing, ivrTicket, "create ticket for user/5"},
		{newT, choose, nothing, ivrOrphan, "show ticket/32"},
		{newT, choose, nothing, twoUsers, "choose user/3 user/1"},
		{newT, first, nothing, twoUsers, "create ticket for user/3"},
		{newT, mnone, cut, twoUsers, "none"},
		{newT, choose, nothing, noRecs, "none"},
		{newT, choose, cu, noRecs, "create user+ticket"},
		{newT, choose, ct, noRecs, "create user+ticket"},
		{newT, choose, cut, noRecs, "create user+ticket"},
	}
	for _, tt := range tests {
		d := decide(tt.popup, tt.multiple, tt.nomatch, tt.recs)
		if got := describe(d); got != tt.want {
			t.Errorf("popup %q multiple %q nomatch %q, %d records: got %q, want %q (reason: %s)",
				tt.popup, tt.multiple, tt.nomatch, len(tt.recs), got, tt.want, d.Reason)
		}
		if d.Reason == "" {
			t.Errorf("popup %q multiple %q nomatch %q: decision without a reason", tt.popup, tt.multiple, tt.nomatch)
		}
	}
}

// TestStrategyInvariants checks every combination of options and record
// sets for properties that hold whatever the decision.
func TestStrategyInvariants(t *testing.T) {
	t.Parallel()
	popups := []cti.Popup{"", cti.PopupNone, cti.PopupUser, cti.PopupTicketLatestOpen, cti.PopupTicketNew}
	multiples := []cti.Multiple{"", cti.MultipleChoose, cti.MultipleFirst, cti.MultipleNone}
	nomatches := []cti.NoMatch{"", cti.NoMatchNothing, cti.NoMatchCreateUser, cti.NoMatchCreateTicket, cti.NoMatchCreateUserAndTicket}
	sets := map[string][]cti.Record{"none": noRecs, "oneUserOpen": oneUserOpen, "oneUserNoOpen": oneUserNoOpen,
		"ivrTicket": ivrTicket, "ivrOrphan": ivrOrphan, "twoUsers": twoUsers, "orgOnly": orgOnly}
	convs := map[string]*cti.Conversation{
		"voice":    voiceConv(),
		"callback": {Media: cti.MediaCallback, Customer: cti.Customer{Phone: "+1"}},
		"email":    {Media: cti.MediaEmail, Customer: cti.Customer{Email: "a@b.c"}},
		"whatsapp": {Media: cti.MediaMessage, Channel: cti.ChannelWhatsApp},
		"nil":      nil,
	}
	n := 0
	for _, p := range popups {
		for _, m := range multiples {
			for _, nm := range nomatches {
				for sname, recs := range sets {
					for cname, conv := range convs {
						n++
						rule := &cti.Rule{Name: "r", Popup: p, Multiple: m, NoMatch: nm}
						before := fmt.Sprintf("%#v", recs)
						in := cti.DecideInput{Rule: rule, Conversation: conv, Result: cti.Result{Records: recs}}
						d := popup.Strategy{}.Decide(in)
						where := fmt.Sprintf("popup %q multiple %q nomatch %q records %s conv %s → %s", p, m, nm, sname, cname, describe(d))
						if again := (popup.Strategy{}).Decide(in); !reflect.DeepEqual(d, again) {
							t.Errorf("%s: not deterministic", where)
						}
						if fmt.Sprintf("%#v", recs) != before {
							t.Errorf("%s: modified its input records", where)
						}
						if d.Reason == "" {
							t.Errorf("%s: no reason", where)
						}
						pops := 0
						for _, r := range recs {
							if r.Kind == cti.KindUser || r.Kind == cti.KindTicket {
								pops++
							}
						}
						switch d.Action {
						case cti.ActionNone:
							if p != cti.PopupNone && pops == 1 {
								t.Errorf("%s: one record matched and nothing is popped", where)
							}
						case cti.ActionShow:
							if d.Record == nil || (d.Record.Kind != cti.KindUser && d.Record.Kind != cti.KindTicket) || d.Record.OpenTickets != nil {
								t.Errorf("%s: shows %+v", where, d.Record)
							}
						case cti.ActionChoose:
							if pops < 2 || (m != "" && m != cti.MultipleChoose) || len(d.Candidates) < 2 || len(d.Candidates) > cti.MaxResults {
								t.Errorf("%s: choose with %d records", where, pops)
							}
						case cti.ActionCreate:
							c := d.Create
							if p == cti.PopupNone || (!c.User && !c.Ticket) {
								t.Errorf("%s: bad create %+v", where, c)
							}
							if c.User && pops > 0 {
								t.Errorf("%s: creates a user although %d records matched", where, pops)
							}
							if c.Ticket && !c.User && (c.Requester == nil || c.Requester.ID <= 0 || c.Requester.Kind != cti.KindUser) {
								t.Errorf("%s: a ticket without a requester", where)
							}
							if c.Ticket && c.Subject == "" {
								t.Errorf("%s: a ticket without a subject", where)
							}
							wantVoice := conv != nil && (conv.Media == cti.MediaVoice || conv.Media == cti.MediaCallback)
							if c.Ticket && c.Voice != wantVoice {
								t.Errorf("%s: Voice = %v", where, c.Voice)
							}
						default:
							t.Errorf("%s: unknown action", where)
						}
						if p == cti.PopupNone && d.Action != cti.ActionNone {
							t.Errorf("%s: popup none pops", where)
						}
					}
				}
			}
		}
	}
	if n < 2000 {
		t.Fatalf("only %d combinations", n)
	}
	if d := (popup.Strategy{}).Decide(cti.DecideInput{}); d.Action != cti.ActionNone {
		t.Errorf("no rule: %s", describe(d))
	}
}

func TestStrategyCandidatesCollapse(t *testing.T) {
	t.Parallel()
	// Two users whose latest open ticket is the same (a ticket id matched
	// alongside its requester): nothing left to choose.
	recs := []cti.Record{userRec(1, 9, ticket(11, "open", 5, 1)), ticket(11, "open", 5, 1)}
	d := decide(cti.PopupTicketLatestOpen, cti.MultipleChoose, cti.NoMatchNothing, recs)
	if describe(d) != "show ticket/11" {
		t.Errorf("got %s", describe(d))
	}
}

func TestStrategySubject(t *testing.T) {
	t.Parallel()
	rule := &cti.Rule{Name: "r", Popup: cti.PopupTicketNew}
	in := cti.DecideInput{Rule: rule, Conversation: voiceConv(), Result: cti.Result{Records: oneUserOpen}}
	if got := (popup.Strategy{}).Decide(in).Create.Subject; got != "Call from Jane Doe (+14155551212)" {
		t.Errorf("default subject = %q", got)
	}
	s := popup.Strategy{Subject: func(r *cti.Rule, c *cti.Conversation) string {
		return r.Name + ":" + c.ID + ":" + strings.Repeat("x", 500)
	}}
	got := s.Decide(in).Create.Subject
	if !strings.HasPrefix(got, "r:c1:x") || len([]rune(got)) != popup.MaxSubject || !strings.HasSuffix(got, "…") {
		t.Errorf("custom subject = %q (%d runes), want it rendered by the hook and cut to %d", got, len([]rune(got)), popup.MaxSubject)
	}
}

func TestLatestOpen(t *testing.T) {
	t.Parallel()
	u := userRec(1, 0, ticket(1, "solved", 9, 1), ticket(2, "hold", 4, 1), ticket(3, "new", 4, 1), ticket(4, "closed", 8, 1))
	got, ok := popup.LatestOpen(u)
	if !ok || got.ID != 3 {
		t.Errorf("LatestOpen = %v %v, want ticket 3 (latest unsolved, tie to the higher id)", got.ID, ok)
	}
	if _, ok := popup.LatestOpen(userRec(2, 0, ticket(5, "solved", 1, 2))); ok {
		t.Error("LatestOpen found a solved ticket")
	}
}
