package zendesktest

import (
	"slices"
	"strings"
	"time"
)

// AddUser adds a user as seeded data (searchable at once) and returns it
// with its id and identities. A zero ID is assigned; Role defaults to
// end-user; Email and Phone become primary identities.
func (s *Server) AddUser(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.addUser(u, time.Now())
	return p.clone()
}

func (s *Server) addUser(u User, now time.Time) *User {
	if u.ID == 0 {
		u.ID = s.newID()
	} else if u.ID > s.next {
		s.next = u.ID
	}
	if u.Role == "" {
		u.Role = "end-user"
	}
	u.Email = strings.ToLower(strings.TrimSpace(u.Email))
	u.Tags = normTags(u.Tags)
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	var ids []Identity
	if u.Email != "" {
		ids = append(ids, Identity{Type: "email", Value: u.Email, Primary: true, Verified: true})
	}
	if u.Phone != "" {
		ids = append(ids, Identity{Type: "phone_number", Value: u.Phone, Primary: true})
	}
	for _, id := range u.Identities {
		if id.Type == "email" {
			id.Value = strings.ToLower(id.Value)
		}
		dup := slices.ContainsFunc(ids, func(x Identity) bool { return x.Type == id.Type && x.Value == id.Value })
		if !dup && id.Value != "" {
			ids = append(ids, id)
		}
	}
	for i := range ids {
		if ids[i].Type == "phone_number" && u.Phone == "" {
			u.Phone, ids[i].Primary = ids[i].Value, true
		}
		if ids[i].Type == "email" && u.Email == "" {
			u.Email, ids[i].Primary = strings.ToLower(ids[i].Value), true
		}
		if ids[i].ID == 0 {
			ids[i].ID = s.newID()
		}
	}
	u.Identities = ids
	p := &u
	s.users[u.ID] = p
	for _, id := range ids {
		s.indexValue(id.Value, u.ID)
	}
	return p
}

// indexValue notes that user id holds an identity with value v, for
// lookups by exact value (email, phone search) that would otherwise scan
// every user.
func (s *Server) indexValue(v string, id int64) {
	if !slices.Contains(s.byValue[v], id) {
		s.byValue[v] = append(s.byValue[v], id)
	}
}

// AddOrganization adds an organization (searchable at once).
func (s *Server) AddOrganization(o Organization) Organization {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o.ID == 0 {
		o.ID = s.newID()
	} else if o.ID > s.next {
		s.next = o.ID
	}
	now := time.Now()
	if o.CreatedAt.IsZero() {
		o.CreatedAt = now
	}
	if o.UpdatedAt.IsZero() {
		o.UpdatedAt = o.CreatedAt
	}
	o.Tags = normTags(o.Tags)
	s.orgs[o.ID] = &o
	return o.clone()
}

// AddTicket adds a ticket (searchable at once). Status defaults to "open";
// a Description becomes the first, public comment by the requester.
func (s *Server) AddTicket(t Ticket) Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.ID == 0 {
		t.ID = s.newID()
	} else if t.ID > s.next {
		s.next = t.ID
	}
	now := time.Now()
	if t.Status == "" {
		t.Status = "open"
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
	if t.ViaChannel == "" {
		t.ViaChannel = "web"
	}
	if t.OrganizationID == 0 {
		if u := s.users[t.RequesterID]; u != nil {
			t.OrganizationID = u.OrganizationID
		}
	}
	t.Tags = normTags(t.Tags)
	if t.CustomFields == nil {
		t.CustomFields = map[int64]any{}
	}
	if t.Description != "" && len(t.Comments) == 0 {
		t.Comments = []Comment{{ID: s.newID(), Type: "Comment", AuthorID: t.RequesterID, Body: t.Description, Public: true, CreatedAt: t.CreatedAt}}
	}
	s.tickets[t.ID] = &t
	return t.clone()
}

// User returns a user by id.
func (s *Server) User(id int64) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return User{}, false
	}
	return u.clone(), true
}

// UserByEmail returns the user with that email identity.
func (s *Server) UserByEmail(email string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.userByEmail(email); u != nil {
		return u.clone(), true
	}
	return User{}, false
}

func (s *Server) userByEmail(email string) *User {
	email = strings.ToLower(strings.TrimSpace(email))
	var found *User
	for _, id := range s.byValue[email] { // the lowest id holding it
		u := s.users[id]
		if u == nil || (found != nil && found.ID < id) {
			continue
		}
		for _, i := range u.Identities {
			if i.Type == "email" && i.Value == email {
				found = u
				break
			}
		}
	}
	return found
}

// userByExternalID returns the user (the lowest id) whose external id is
// id.
func (s *Server) userByExternalID(id string) *User {
	var found *User
	for _, u := range s.users {
		if u.ExternalID == id && (found == nil || u.ID < found.ID) {
			found = u
		}
	}
	return found
}

// Users returns every user, by id.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []User
	for _, id := range s.sortedUserIDs() {
		out = append(out, s.users[id].clone())
	}
	return out
}

// UsersWithPhone returns the users having this exact phone identity.
func (s *Server) UsersWithPhone(phone string) []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []User
	for _, id := range s.phoneHolders(phone) {
		out = append(out, s.users[id].clone())
	}
	return out
}

// phoneHolders returns the ids, ascending, of the users holding this exact
// phone identity, from the identity index (a scan of every user here cost
// the emulator more CPU than the process under test on a latency run).
func (s *Server) phoneHolders(phone string) []int64 {
	var out []int64
	for _, id := range s.byValue[phone] {
		if u := s.users[id]; u != nil && hasPhone(u, phone) && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func hasPhone(u *User, phone string) bool {
	return slices.ContainsFunc(u.Identities, func(i Identity) bool { return i.Type == "phone_number" && i.Value == phone })
}

func (s *Server) sortedUserIDs() []int64 {
	ids := make([]int64, 0, len(s.users))
	for id := range s.users {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Ticket returns a ticket by id (after finishing due jobs).
func (s *Server) Ticket(id int64) (Ticket, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle(time.Now())
	t, ok := s.tickets[id]
	if !ok {
		return Ticket{}, false
	}
	return t.clone(), true
}

// Tickets returns every ticket, by id.
func (s *Server) Tickets() []Ticket {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle(time.Now())
	ids := make([]int64, 0, len(s.tickets))
	for id := range s.tickets {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]Ticket, len(ids))
	for i, id := range ids {
		out[i] = s.tickets[id].clone()
	}
	return out
}

// Organization returns an organization by id.
func (s *Server) Organization(id int64) (Organization, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.orgs[id]
	if !ok {
		return Organization{}, false
	}
	return o.clone(), true
}

// Calls returns the call records, by id.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]int64, 0, len(s.calls))
	for id := range s.calls {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([]Call, len(ids))
	for i, id := range ids {
		c := s.calls[id]
		f := make(map[string]any, len(c.Fields))
		for k, v := range c.Fields {
			f[k] = v
		}
		out[i] = Call{ID: c.ID, Fields: f}
	}
	return out
}

// searchable reports whether a record is in the search index at now.
func (s *Server) searchable(kind string, id int64, now time.Time) bool {
	at, ok := s.search[searchKey{kind, id}]
	return !ok || !now.Before(at)
}

// indexLater marks a record created through the API: it becomes
// searchable after the index lag.
func (s *Server) indexLater(kind string, id int64, now time.Time) {
	if s.opt.indexLag > 0 {
		s.search[searchKey{kind, id}] = now.Add(s.opt.indexLag)
	}
}
