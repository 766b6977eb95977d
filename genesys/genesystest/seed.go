package genesystest

import (
	"net/http"
	"slices"
	"strings"
)

// Division is a Genesys division: the category a wrap-up code (or queue)
// belongs to.
type Division struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// User is a Genesys user (an agent).
type User struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

// Queue is an ACD queue.
type Queue struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// WrapupCode is a wrap-up code; Division is its category as Genesys models
// it.
type WrapupCode struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Division Division `json:"division"`
}

// Campaign is an outbound campaign.
type Campaign struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	QueueID string `json:"queueId"`
}

// Seed is the directory data a Server starts with.
type Seed struct {
	Users       []User
	Queues      []Queue
	WrapupCodes []WrapupCode
	Campaigns   []Campaign
}

var homeDivision = Division{ID: "0b4e6c4b-5a1e-4f3c-9b25-000000000001", Name: "Home"}

// Demo directory ids, stable so that configs and tests can name them.
const (
	AgentAlice = "a1b2c3d4-0000-4000-8000-00000000a11c"
	AgentBob   = "a1b2c3d4-0000-4000-8000-0000000000b0"
	AgentCarol = "a1b2c3d4-0000-4000-8000-000000000ca0"
	AgentDave  = "a1b2c3d4-0000-4000-8000-000000000da0"

	QueueSupport = "9e1c0f00-0000-4000-8000-00000000a001"
	QueueSales   = "9e1c0f00-0000-4000-8000-00000000a002"
	QueueBilling = "9e1c0f00-0000-4000-8000-00000000a003"
	QueueSocial  = "9e1c0f00-0000-4000-8000-00000000a004"

	CodeResolved  = "c0de0000-0000-4000-8000-000000000001"
	CodeFollowUp  = "c0de0000-0000-4000-8000-000000000002"
	CodeSale      = "c0de0000-0000-4000-8000-000000000003"
	CodeNoSale    = "c0de0000-0000-4000-8000-000000000004"
	CodeRefund    = "c0de0000-0000-4000-8000-000000000005"
	CodeComplaint = "c0de0000-0000-4000-8000-000000000006"

	CampaignRenewals = "ca300000-0000-4000-8000-000000000001"
)

// DemoSeed is a small contact center: four agents, four queues, wrap-up
// codes in three categories (divisions), one outbound campaign.
func DemoSeed() Seed {
	support := Division{ID: "d1v00000-0000-4000-8000-000000000001", Name: "Customer Support"}
	sales := Division{ID: "d1v00000-0000-4000-8000-000000000002", Name: "Sales"}
	billing := Division{ID: "d1v00000-0000-4000-8000-000000000003", Name: "Billing"}
	return Seed{
		Users: []User{
			{ID: AgentAlice, Name: "Alice Martin", Email: "alice.martin@example.com"},
			{ID: AgentBob, Name: "Bob Okafor", Email: "bob.okafor@example.com"},
			{ID: AgentCarol, Name: "Carol Nguyen", Email: "carol.nguyen@example.com"},
			{ID: AgentDave, Name: "Dave Schmidt", Email: "dave.schmidt@example.com"},
		},
		Queues: []Queue{
			{ID: QueueSupport, Name: "Support"},
			{ID: QueueSales, Name: "Sales"},
			{ID: QueueBilling, Name: "Billing"},
			{ID: QueueSocial, Name: "Social Care"},
		},
		WrapupCodes: []WrapupCode{
			{ID: CodeResolved, Name: "Resolved", Division: support},
			{ID: CodeFollowUp, Name: "Follow-up needed", Division: support},
			{ID: CodeComplaint, Name: "Complaint", Division: support},
			{ID: CodeSale, Name: "Sale", Division: sales},
			{ID: CodeNoSale, Name: "No sale", Division: sales},
			{ID: CodeRefund, Name: "Refund issued", Division: billing},
		},
		Campaigns: []Campaign{{ID: CampaignRenewals, Name: "Renewals 2026", QueueID: QueueSales}},
	}
}

// Load adds (or replaces) directory data.
func (s *Server) Load(seed Seed) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range seed.Users {
		s.users[u.ID] = u
	}
	for _, q := range seed.Queues {
		s.queues[q.ID] = q
	}
	for _, c := range seed.WrapupCodes {
		s.codes[c.ID] = c
	}
	for _, c := range seed.Campaigns {
		s.campaigns[c.ID] = c
	}
}

// Users returns the seeded users, sorted by id.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b User) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Queues returns the seeded queues, sorted by id.
func (s *Server) Queues() []Queue {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Queue, 0, len(s.queues))
	for _, q := range s.queues {
		out = append(out, q)
	}
	slices.SortFunc(out, func(a, b Queue) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// codeName returns a wrap-up code's name; call with s.mu held.
func (s *Server) codeName(id string) string { return s.codes[id].Name }

func divisionJSON(d Division) map[string]any {
	if d.ID == "" {
		d = homeDivision
	}
	return map[string]any{"id": d.ID, "name": d.Name, "selfUri": "/api/v2/authorization/divisions/" + d.ID}
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	u, ok := s.users[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "not.found", "user not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": u.ID, "name": u.Name, "email": u.Email, "username": u.Email, "state": "active",
		"division": divisionJSON(homeDivision), "version": 1, "acdAutoAnswer": false,
		"primaryContactInfo": []any{map[string]any{"address": u.Email, "mediaType": "EMAIL", "type": "PRIMARY"}},
		"selfUri":            "/api/v2/users/" + u.ID,
	})
}

func queueJSON(q Queue) map[string]any {
	return map[string]any{
		"id": q.ID, "name": q.Name, "division": divisionJSON(homeDivision), "memberCount": 4, "userMemberCount": 4,
		"joinedMemberCount": 4, "scoringMethod": "TimestampAndPriority", "skillEvaluationMethod": "ALL",
		"acwSettings": map[string]any{"wrapupPrompt": "MANDATORY_TIMEOUT", "timeoutMs": 30000},
		"selfUri":     "/api/v2/routing/queues/" + q.ID,
	}
}

func (s *Server) getQueue(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	q, ok := s.queues[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "not.found", "queue not found")
		return
	}
	writeJSON(w, http.StatusOK, queueJSON(q))
}

// listQueues implements GET /api/v2/routing/queues?name=... (exact name,
// case-insensitive; Genesys also accepts a trailing * wildcard).
func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) {
	name := strings.ToLower(r.URL.Query().Get("name"))
	var ents []any
	for _, q := range s.Queues() {
		n := strings.ToLower(q.Name)
		if name == "" || n == name || (strings.HasSuffix(name, "*") && strings.HasPrefix(n, strings.TrimSuffix(name, "*"))) {
			ents = append(ents, queueJSON(q))
		}
	}
	if ents == nil {
		ents = []any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entities": ents, "pageSize": 25, "pageNumber": 1, "total": len(ents), "pageCount": 1})
}

func (s *Server) getWrapupCode(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c, ok := s.codes[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "not.found", "wrap-up code not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": c.ID, "name": c.Name, "division": divisionJSON(c.Division),
		"dateCreated": "2026-01-05T09:00:00Z", "createdBy": AgentAlice, "selfUri": "/api/v2/routing/wrapupcodes/" + c.ID,
	})
}

func (s *Server) getCampaign(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c, ok := s.campaigns[r.PathValue("id")]
	s.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "not.found", "campaign not found")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": c.ID, "name": c.Name, "version": 3, "dialingMode": "preview", "campaignStatus": "on",
		"queue":       map[string]any{"id": c.QueueID, "selfUri": "/api/v2/routing/queues/" + c.QueueID},
		"contactList": map[string]any{"id": "list-1", "name": "Renewal contacts"},
		"division":    divisionJSON(homeDivision), "selfUri": "/api/v2/outbound/campaigns/" + c.ID,
	})
}
