package popup

import (
	"fmt"
	"slices"

	"github.com/cxplay/ctikit/cti"
)

// SubjectFunc renders the subject of a ticket a rule creates. It must be
// pure and safe for concurrent use (the strategy calls it while deciding).
// The reference server plugs in syncmap templates; DefaultSubject is the
// default.
type SubjectFunc func(rule *cti.Rule, c *cti.Conversation) string

// Strategy is the standard pop-up strategy: a pure cti.Strategy following
// the rule's popup, multiple and nomatch options. The zero value is ready
// to use. See the package documentation for the decision table.
type Strategy struct {
	// Subject renders the subject of tickets to create; nil means
	// DefaultSubject.
	Subject SubjectFunc
}

var _ cti.Strategy = Strategy{}

// Decide implements cti.Strategy.
func (s Strategy) Decide(in cti.DecideInput) cti.Decision {
	r := in.Rule
	if r == nil {
		return none("no rule applies")
	}
	popup, multiple, nomatch := opts(r)
	if popup == cti.PopupNone {
		return none("rule " + r.Name + " pops nothing")
	}
	// Only users and tickets can be popped; a matcher returning anything
	// else (organizations) is ignored here.
	recs := slices.DeleteFunc(slices.Clone(in.Result.Records), func(rec cti.Record) bool {
		return rec.Kind != cti.KindUser && rec.Kind != cti.KindTicket
	})
	if len(recs) == 0 {
		return s.noMatch(in, popup, nomatch)
	}
	if len(recs) > 1 {
		switch multiple {
		case cti.MultipleNone:
			return none(fmt.Sprintf("%d records match and rule %s pops nothing then (multiple: none)", len(recs), r.Name))
		case cti.MultipleChoose:
			return choose(in, popup, recs)
		}
		// MultipleFirst: the most recently updated one, as if it were alone.
	}
	rec := recs[0]
	why := "one record matches"
	if len(recs) > 1 {
		why = fmt.Sprintf("the most recently updated of %d matches (multiple: first)", len(recs))
	}
	switch popup {
	case cti.PopupTicketLatestOpen:
		return s.latestOpen(in, nomatch, rec, why)
	case cti.PopupTicketNew:
		return s.newTicket(in, rec, why)
	default: // user
		return show(rec, why)
	}
}

// opts returns the rule's options with cti's defaults for unset ones.
func opts(r *cti.Rule) (cti.Popup, cti.Multiple, cti.NoMatch) {
	p, m, n := r.Popup, r.Multiple, r.NoMatch
	if p == "" {
		p = cti.PopupUser
	}
	if m == "" {
		m = cti.MultipleChoose
	}
	if n == "" {
		n = cti.NoMatchNothing
	}
	return p, m, n
}

func none(reason string) cti.Decision { return cti.Decision{Action: cti.ActionNone, Reason: reason} }

func show(rec cti.Record, why string) cti.Decision {
	r := rec
	r.OpenTickets = nil
	return cti.Decision{Action: cti.ActionShow, Record: &r, Reason: why + ": show " + rec.Ref()}
}

// LatestOpen returns the user's most recently updated unsolved ticket
// (cti.Unsolved; ties to the higher id) among rec.OpenTickets, and false
// when there is none.
func LatestOpen(rec cti.Record) (cti.Record, bool) {
	var best cti.Record
	found := false
	for _, t := range rec.OpenTickets {
		if !cti.Unsolved(t.Status) {
			continue
		}
		if !found || t.UpdatedAt.After(best.UpdatedAt) || (t.UpdatedAt.Equal(best.UpdatedAt) && t.ID > best.ID) {
			best, found = t, true
		}
	}
	return best, found
}

func (s Strategy) subject(in cti.DecideInput) string {
	f := s.Subject
	if f == nil {
		f = DefaultSubject
	}
	c := in.Conversation
	if c == nil {
		c = &cti.Conversation{}
	}
	return Truncate(f(in.Rule, c), MaxSubject)
}

// voice reports whether tickets for c are created as Talk Partner Edition
// voice tickets: voice calls and callbacks (a callback is a call).
func voice(c *cti.Conversation) bool {
	return c != nil && (c.Media == cti.MediaVoice || c.Media == cti.MediaCallback)
}

func (s Strategy) create(in cti.DecideInput, user, ticket bool, requester *cti.Record, reason string) cti.Decision {
	spec := cti.CreateSpec{User: user, Ticket: ticket}
	if ticket {
		spec.Subject = s.subject(in)
		spec.Voice = voice(in.Conversation)
		if requester != nil {
			r := *requester
			r.OpenTickets = nil
			spec.Requester = &r
		}
	}
	return cti.Decision{Action: cti.ActionCreate, Create: spec, Reason: reason}
}

// noMatch decides for an unknown customer.
func (s Strategy) noMatch(in cti.DecideInput, popup cti.Popup, nomatch cti.NoMatch) cti.Decision {
	name := in.Rule.Name
	switch nomatch {
	case cti.NoMatchCreateUser:
		if popup == cti.PopupTicketNew {
			return s.create(in, true, true, nil, "no match: create the customer and the new ticket rule "+name+" asks for (popup: ticket:new, nomatch: create_user)")
		}
		return s.create(in, true, false, nil, "no match: create the customer (nomatch: create_user)")
	case cti.NoMatchCreateTicket:
		return s.create(in, true, true, nil, "no match: create a ticket, and the customer as its requester since a Zendesk ticket needs one (nomatch: create_ticket)")
	case cti.NoMatchCreateUserAndTicket:
		return s.create(in, true, true, nil, "no match: create the customer and a ticket (nomatch: create_user_and_ticket)")
	}
	return none("no match and rule " + name + " creates nothing (nomatch: nothing)")
}

// latestOpen decides ticket:latest_open for one record.
func (s Strategy) latestOpen(in cti.DecideInput, nomatch cti.NoMatch, rec cti.Record, why string) cti.Decision {
	if rec.Kind == cti.KindTicket { // a ticket id from the IVR: that is the ticket
		return show(rec, why)
	}
	if t, ok := LatestOpen(rec); ok {
		return show(t, why+", its latest open ticket")
	}
	if nomatch == cti.NoMatchCreateTicket || nomatch == cti.NoMatchCreateUserAndTicket {
		return s.create(in, false, true, &rec, why+" but has no open ticket: create one for "+rec.Ref()+" (nomatch creates tickets)")
	}
	return show(rec, why+" but has no open ticket")
}

// newTicket decides ticket:new for one record.
func (s Strategy) newTicket(in cti.DecideInput, rec cti.Record, why string) cti.Decision {
	requester := rec
	if rec.Kind == cti.KindTicket {
		if rec.RequesterID <= 0 {
			return show(rec, why+" (a ticket whose requester is unknown)")
		}
		requester = cti.Record{Kind: cti.KindUser, ID: rec.RequesterID}
	}
	return s.create(in, false, true, &requester, why+": create a new ticket for "+requester.Ref())
}

// choose offers the candidates. For ticket:latest_open each user is
// replaced by their latest open ticket when they have one, so that what the
// agent picks is what the rule pops.
func choose(in cti.DecideInput, popup cti.Popup, recs []cti.Record) cti.Decision {
	cands := make([]cti.Record, 0, len(recs))
	for _, rec := range recs {
		if popup == cti.PopupTicketLatestOpen && rec.Kind == cti.KindUser {
			if t, ok := LatestOpen(rec); ok {
				rec = t
			}
		}
		rec.OpenTickets = nil
		if !slices.ContainsFunc(cands, rec.Same) {
			cands = append(cands, rec)
		}
	}
	if len(cands) == 1 { // several users, one shared latest ticket
		return show(cands[0], fmt.Sprintf("%d records match, all with the same latest open ticket", len(recs)))
	}
	return cti.Decision{Action: cti.ActionChoose, Candidates: cands,
		Reason: fmt.Sprintf("%d records match: the agent chooses (multiple: choose)", len(recs))}
}
