package zendesktest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// term is one condition of a search query: key op value, or free text.
type term struct {
	neg   bool
	key   string // lower-case; "" for free text
	op    string // ":", "<", ">", "<=", ">="
	value string
}

// parseQuery splits a Zendesk search expression into terms. Values may be
// double quoted; repeated "key:value" terms of one key are ORed by the
// matcher, different keys ANDed.
func parseQuery(q string) ([]term, error) {
	var toks []string
	var b strings.Builder
	inQ := false
	for _, r := range q {
		switch {
		case r == '"':
			inQ = !inQ
			b.WriteRune(r)
		case (r == ' ' || r == '\t' || r == '\n') && !inQ:
			if b.Len() > 0 {
				toks = append(toks, b.String())
				b.Reset()
			}
		default:
			b.WriteRune(r)
		}
	}
	if inQ {
		return nil, fmt.Errorf("unbalanced double quote in %q", q)
	}
	if b.Len() > 0 {
		toks = append(toks, b.String())
	}
	var terms []term
	for _, tok := range toks {
		t := term{}
		if strings.HasPrefix(tok, "-") && len(tok) > 1 {
			t.neg, tok = true, tok[1:]
		}
		if strings.HasPrefix(tok, `"`) {
			t.value = strings.Trim(tok, `"`)
			terms = append(terms, t)
			continue
		}
		i := strings.IndexAny(tok, ":<>")
		if i <= 0 {
			t.value = tok
			terms = append(terms, t)
			continue
		}
		t.key = strings.ToLower(tok[:i])
		rest := tok[i:]
		switch {
		case strings.HasPrefix(rest, "<="), strings.HasPrefix(rest, ">="):
			t.op, rest = rest[:2], rest[2:]
		default:
			t.op, rest = rest[:1], rest[1:]
		}
		t.value = strings.Trim(rest, `"`)
		terms = append(terms, t)
	}
	return terms, nil
}

// query is a parsed search: result type and grouped conditions.
type query struct {
	typ    string // user, ticket, organization, or "" for all
	groups [][]term
}

func compile(q string) (query, error) {
	terms, err := parseQuery(q)
	if err != nil {
		return query{}, err
	}
	var out query
	idx := map[string]int{}
	for _, t := range terms {
		if t.key == "type" && t.op == ":" && !t.neg {
			out.typ = strings.ToLower(t.value)
			continue
		}
		if t.key == "" || t.op != ":" || t.neg {
			out.groups = append(out.groups, []term{t})
			continue
		}
		if i, ok := idx[t.key]; ok {
			out.groups[i] = append(out.groups[i], t)
			continue
		}
		idx[t.key] = len(out.groups)
		out.groups = append(out.groups, []term{t})
	}
	return out, nil
}

// matches reports whether every group has a term that holds.
func (q query) matches(hold func(term) bool) bool {
	for _, g := range q.groups {
		ok := false
		for _, t := range g {
			if hold(t) != t.neg {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func eqFold(a, b string) bool { return strings.EqualFold(strings.TrimSpace(a), strings.TrimSpace(b)) }

// like compares case-insensitively; a trailing * matches a prefix.
func like(have, want string) bool {
	if p, ok := strings.CutSuffix(want, "*"); ok {
		return strings.HasPrefix(strings.ToLower(have), strings.ToLower(p))
	}
	return eqFold(have, want)
}

func containsFold(have, want string) bool {
	return want != "" && strings.Contains(strings.ToLower(have), strings.ToLower(strings.TrimSuffix(want, "*")))
}

func parseID(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil
}

// userHolds evaluates one term against a user. Phone numbers compare as
// exact strings, as Zendesk does.
func (s *Server) userHolds(u *User, t term) bool {
	switch t.key {
	case "":
		v := t.value
		if containsFold(u.Name, v) || containsFold(u.Notes, v) || like(u.ExternalID, v) {
			return true
		}
		return slices.ContainsFunc(u.Identities, func(i Identity) bool { return like(i.Value, v) || i.Value == v })
	case "phone":
		return slices.ContainsFunc(u.Identities, func(i Identity) bool { return i.Type == "phone_number" && i.Value == t.value }) || (u.Phone != "" && u.Phone == t.value)
	case "email":
		return slices.ContainsFunc(u.Identities, func(i Identity) bool { return i.Type == "email" && like(i.Value, t.value) })
	case "external_id":
		return u.ExternalID != "" && u.ExternalID == t.value
	case "role":
		return eqFold(u.Role, t.value)
	case "name":
		return like(u.Name, t.value) || containsFold(u.Name, t.value)
	case "organization", "organization_id":
		if id, ok := parseID(t.value); ok {
			return u.OrganizationID == id
		}
		o := s.orgs[u.OrganizationID]
		return o != nil && like(o.Name, t.value)
	case "tags", "tag":
		return slices.Contains(u.Tags, strings.ToLower(t.value))
	case "notes", "details":
		return containsFold(u.Notes, t.value)
	case "created", "updated":
		return compareTime(u.CreatedAt, u.UpdatedAt, t)
	}
	// A custom user field, by key.
	v, ok := u.UserFields[t.key]
	if !ok || v == nil {
		return false
	}
	return like(fmt.Sprint(v), t.value)
}

func compareTime(created, updated time.Time, t term) bool {
	at := created
	if t.key == "updated" {
		at = updated
	}
	want, err := time.Parse("2006-01-02", t.value)
	if err != nil {
		if want, err = time.Parse(time.RFC3339, t.value); err != nil {
			return false
		}
	}
	switch t.op {
	case "<":
		return at.Before(want)
	case ">":
		return at.After(want)
	case "<=":
		return !at.After(want)
	case ">=":
		return !at.Before(want)
	}
	y1, m1, d1 := at.UTC().Date()
	y2, m2, d2 := want.Date()
	return y1 == y2 && m1 == m2 && d1 == d2
}

func (s *Server) ticketHolds(tk *Ticket, t term) bool {
	switch t.key {
	case "":
		if id, ok := parseID(t.value); ok && id == tk.ID {
			return true
		}
		if containsFold(tk.Subject, t.value) || containsFold(tk.Description, t.value) {
			return true
		}
		return slices.ContainsFunc(tk.Comments, func(c Comment) bool { return containsFold(c.Body, t.value) })
	case "status":
		have, ok1 := statusRank[tk.Status]
		want, ok2 := statusRank[strings.ToLower(t.value)]
		if !ok1 || !ok2 {
			return false
		}
		switch t.op {
		case "<":
			return have < want
		case ">":
			return have > want
		case "<=":
			return have <= want
		case ">=":
			return have >= want
		}
		return have == want
	case "requester_id", "requester", "submitter", "assignee", "assignee_id":
		id := tk.RequesterID
		switch t.key {
		case "submitter":
			id = tk.SubmitterID
		case "assignee", "assignee_id":
			id = tk.AssigneeID
		}
		if want, ok := parseID(t.value); ok {
			return id == want
		}
		if t.value == "none" {
			return id == 0
		}
		u := s.users[id]
		return u != nil && slices.ContainsFunc(u.Identities, func(i Identity) bool { return i.Type == "email" && like(i.Value, t.value) })
	case "organization", "organization_id":
		if id, ok := parseID(t.value); ok {
			return tk.OrganizationID == id
		}
		o := s.orgs[tk.OrganizationID]
		return o != nil && like(o.Name, t.value)
	case "tags", "tag":
		return slices.Contains(tk.Tags, strings.ToLower(t.value))
	case "subject":
		return containsFold(tk.Subject, t.value)
	case "external_id":
		return tk.ExternalID != "" && tk.ExternalID == t.value
	case "priority":
		return eqFold(tk.Priority, t.value)
	case "ticket_type":
		return eqFold(tk.Type, t.value)
	case "via":
		return eqFold(tk.ViaChannel, t.value)
	case "created", "updated":
		return compareTime(tk.CreatedAt, tk.UpdatedAt, t)
	}
	if id, ok := parseID(strings.TrimPrefix(t.key, "custom_field_")); ok {
		v, ok := tk.CustomFields[id]
		return ok && like(fmt.Sprint(v), t.value)
	}
	return false
}

func (s *Server) orgHolds(o *Organization, t term) bool {
	switch t.key {
	case "":
		return containsFold(o.Name, t.value) || o.ExternalID == t.value
	case "name":
		return like(o.Name, t.value)
	case "external_id":
		return o.ExternalID != "" && o.ExternalID == t.value
	case "tags", "tag":
		return slices.Contains(o.Tags, strings.ToLower(t.value))
	case "created", "updated":
		return compareTime(o.CreatedAt, o.UpdatedAt, t)
	}
	return false
}

// hit is one search result.
type hit struct {
	kind    string
	id      int64
	created time.Time
	updated time.Time
	json    map[string]any
}

// runSearch evaluates q over the searchable records. Called with s.mu held.
func (s *Server) runSearch(q query, now time.Time) []hit {
	var hits []hit
	if ids, ok := s.phoneCandidates(q); ok {
		// Only users holding one of the numbers can match: check those.
		for _, id := range ids {
			if u := s.users[id]; u != nil && s.searchable("user", u.ID, now) && q.matches(func(t term) bool { return s.userHolds(u, t) }) {
				hits = append(hits, hit{"user", u.ID, u.CreatedAt, u.UpdatedAt, nil})
			}
		}
		return hits
	}
	if q.typ == "" || q.typ == "user" {
		for _, u := range s.users {
			if s.searchable("user", u.ID, now) && q.matches(func(t term) bool { return s.userHolds(u, t) }) {
				hits = append(hits, hit{"user", u.ID, u.CreatedAt, u.UpdatedAt, nil})
			}
		}
	}
	if q.typ == "" || q.typ == "ticket" {
		for _, tk := range s.tickets {
			if s.searchable("ticket", tk.ID, now) && q.matches(func(t term) bool { return s.ticketHolds(tk, t) }) {
				hits = append(hits, hit{"ticket", tk.ID, tk.CreatedAt, tk.UpdatedAt, nil})
			}
		}
	}
	if q.typ == "" || q.typ == "organization" {
		for _, o := range s.orgs {
			if s.searchable("organization", o.ID, now) && q.matches(func(t term) bool { return s.orgHolds(o, t) }) {
				hits = append(hits, hit{"organization", o.ID, o.CreatedAt, o.UpdatedAt, nil})
			}
		}
	}
	return hits
}

// phoneCandidates returns the users that may match a user search made of
// phone:"…" terms only (one ORed group, how CTI lookups search), from the
// identity index; ok is false for any other query.
func (s *Server) phoneCandidates(q query) (ids []int64, ok bool) {
	if q.typ != "user" || len(q.groups) != 1 {
		return nil, false
	}
	for _, t := range q.groups[0] {
		if t.key != "phone" || t.neg || t.op != ":" {
			return nil, false
		}
	}
	for _, t := range q.groups[0] {
		for _, id := range s.byValue[t.value] {
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
	}
	return ids, true
}

// sortHits orders by sort_by/sort_order (default: relevance, emulated as
// id ascending).
func sortHits(hits []hit, by, order string) {
	desc := order != "asc"
	slices.SortStableFunc(hits, func(a, b hit) int {
		var c int
		switch by {
		case "updated_at":
			c = a.updated.Compare(b.updated)
		case "created_at":
			c = a.created.Compare(b.created)
		default:
			return cmpInt(a.id, b.id)
		}
		if c == 0 {
			c = cmpInt(a.id, b.id)
		}
		if desc {
			c = -c
		}
		return c
	})
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *Server) hitJSON(h hit) map[string]any {
	var m map[string]any
	switch h.kind {
	case "user":
		m = s.userJSON(s.users[h.id])
	case "ticket":
		m = s.ticketJSON(s.tickets[h.id])
	case "organization":
		m = s.orgJSON(s.orgs[h.id])
	}
	m["result_type"] = h.kind
	return m
}
