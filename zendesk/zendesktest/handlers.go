package zendesktest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// call is one request being served, with s.mu held.
type call struct {
	s         *Server
	w         http.ResponseWriter
	r         *http.Request
	route     string
	body      []byte
	principal string
	ids       []int64
}

// route matches the request path against pattern ("users/:id/identities")
// and collects the :id values.
func (c *call) is(method, pattern string) bool {
	if c.r.Method != method {
		return false
	}
	segs := strings.Split(strings.Trim(c.route, "/"), "/")
	pat := strings.Split(pattern, "/")
	if len(segs) != len(pat) {
		return false
	}
	var ids []int64
	for i, p := range pat {
		if p == ":id" {
			n, err := strconv.ParseInt(segs[i], 10, 64)
			if err != nil {
				return false
			}
			ids = append(ids, n)
			continue
		}
		if p != segs[i] {
			return false
		}
	}
	c.ids = ids
	return true
}

func (c *call) serve() {
	switch {
	case c.is("GET", "search"):
		c.search(false)
	case c.is("GET", "search/count"):
		c.search(true)
	case c.is("GET", "users/search"):
		c.userSearch()
	case c.is("GET", "users"):
		c.listUsers()
	case c.is("GET", "users/me"):
		if u := c.principalUser(); u != nil {
			writeJSON(c.w, http.StatusOK, map[string]any{"user": c.s.userJSON(u)})
		} else {
			writeJSON(c.w, http.StatusOK, map[string]any{"user": map[string]any{"id": nil, "name": "Anonymous user", "role": "end-user"}})
		}
	case c.is("POST", "users"):
		c.createUser()
	case c.is("POST", "users/create_or_update"):
		c.createOrUpdateUser()
	case c.is("GET", "users/:id"):
		c.showUser(c.ids[0])
	case c.is("GET", "users/:id/identities"):
		c.identities(c.ids[0])
	case c.is("POST", "users/:id/identities"):
		c.addIdentity(c.ids[0])
	case c.is("GET", "users/:id/tickets/requested"):
		c.requested(c.ids[0])
	case c.is("GET", "organizations/search"):
		c.orgSearch()
	case c.is("GET", "organizations/:id"):
		c.showOrg(c.ids[0])
	case c.is("GET", "tickets"):
		c.listTickets()
	case c.is("POST", "tickets"):
		c.createTicket()
	case c.is("GET", "tickets/show_many"):
		c.showMany()
	case c.is("POST", "tickets/create_many"):
		c.createMany()
	case c.is("PUT", "tickets/update_many"):
		c.updateMany()
	case c.is("GET", "tickets/:id"):
		c.showTicket(c.ids[0])
	case c.is("PUT", "tickets/:id"):
		c.updateTicket(c.ids[0])
	case c.is("GET", "tickets/:id/comments"):
		c.comments(c.ids[0])
	case c.is("GET", "job_statuses/:id"), c.r.Method == "GET" && strings.HasPrefix(c.route, "/job_statuses/"):
		c.jobStatus(strings.TrimPrefix(c.route, "/job_statuses/"))
	case c.is("POST", "channels/voice/agents/:id/users/:id/display"):
		c.display("user", c.ids[0], c.ids[1])
	case c.is("POST", "channels/voice/agents/:id/tickets/:id/display"):
		c.display("ticket", c.ids[0], c.ids[1])
	case c.is("POST", "channels/voice/tickets"):
		c.voiceTicket()
	case c.is("POST", "uploads"):
		c.upload()
	case c.is("GET", "attachments/:id"):
		c.showAttachment(c.ids[0])
	case c.is("POST", "calls"):
		c.createCall()
	case c.is("PATCH", "calls/:id"):
		c.updateCall(c.ids[0])
	case c.is("GET", "calls/:id"):
		c.showCall(c.ids[0])
	default:
		writeError(c.w, http.StatusNotFound, "InvalidEndpoint", "Not found")
	}
}

func (c *call) notFound() { writeError(c.w, http.StatusNotFound, "RecordNotFound", "Not found") }

func (c *call) badJSON(err error) {
	writeError(c.w, http.StatusBadRequest, "Unprocessable Entity", "Server could not parse JSON: "+err.Error())
}

func (c *call) principalUser() *User {
	if c.principal == "oauth" {
		for _, id := range c.s.sortedUserIDs() {
			if c.s.users[id].Role == "admin" {
				return c.s.users[id]
			}
		}
		return nil
	}
	return c.s.userByEmail(c.principal)
}

func (c *call) principalID() int64 {
	if u := c.principalUser(); u != nil {
		return u.ID
	}
	return 0
}

// page cuts a list by per_page and page and writes the envelope.
func (c *call) page(key string, items []map[string]any, extra map[string]any) {
	q := c.r.URL.Query()
	per, _ := strconv.Atoi(q.Get("per_page"))
	if per <= 0 || per > 100 {
		per = 100
	}
	pg, _ := strconv.Atoi(q.Get("page"))
	if pg <= 0 {
		pg = 1
	}
	total := len(items)
	from := min((pg-1)*per, total)
	to := min(from+per, total)
	out := map[string]any{key: items[from:to], "count": total, "next_page": nil, "previous_page": nil}
	link := func(p int) string {
		v := c.r.URL.Query()
		v.Set("page", strconv.Itoa(p))
		return c.s.URL + c.r.URL.Path + "?" + v.Encode()
	}
	if to < total {
		out["next_page"] = link(pg + 1)
	}
	if pg > 1 {
		out["previous_page"] = link(pg - 1)
	}
	for k, v := range extra {
		out[k] = v
	}
	writeJSON(c.w, http.StatusOK, out)
}

// --- search ---------------------------------------------------------------

func (c *call) search(count bool) {
	q := c.r.URL.Query()
	raw := q.Get("query")
	if strings.TrimSpace(raw) == "" {
		writeError(c.w, http.StatusBadRequest, "InvalidSearchQuery", "query is required")
		return
	}
	cq, err := compile(raw)
	if err != nil {
		writeError(c.w, http.StatusBadRequest, "InvalidSearchQuery", err.Error())
		return
	}
	hits := c.s.runSearch(cq, time.Now())
	if count {
		writeJSON(c.w, http.StatusOK, map[string]any{"count": len(hits)})
		return
	}
	per, _ := strconv.Atoi(q.Get("per_page"))
	pg, _ := strconv.Atoi(q.Get("page"))
	if per <= 0 || per > 100 {
		per = 100
	}
	if pg > 1 && pg*per > 1000 {
		writeError(c.w, http.StatusUnprocessableEntity, "InvalidPaginationParameter", "search results are limited to 1000")
		return
	}
	sortHits(hits, q.Get("sort_by"), q.Get("sort_order"))
	if len(hits) > 1000 {
		hits = hits[:1000]
	}
	items := make([]map[string]any, len(hits))
	for i, h := range hits {
		items[i] = c.s.hitJSON(h)
	}
	c.page("results", items, map[string]any{"facets": nil})
}

func (c *call) userSearch() {
	q := c.r.URL.Query()
	var cq query
	switch {
	case q.Get("external_id") != "":
		cq = query{typ: "user", groups: [][]term{{{key: "external_id", op: ":", value: q.Get("external_id")}}}}
	case strings.TrimSpace(q.Get("query")) != "":
		var err error
		if cq, err = compile(q.Get("query")); err != nil {
			writeError(c.w, http.StatusBadRequest, "InvalidSearchQuery", err.Error())
			return
		}
		cq.typ = "user"
	default:
		writeError(c.w, http.StatusBadRequest, "InvalidSearchQuery", "query or external_id is required")
		return
	}
	hits := c.s.runSearch(cq, time.Now())
	sortHits(hits, "", "")
	items := make([]map[string]any, len(hits))
	for i, h := range hits {
		items[i] = c.s.userJSON(c.s.users[h.id])
	}
	c.page("users", items, nil)
}

func (c *call) orgSearch() {
	q := c.r.URL.Query()
	var items []map[string]any
	ids := make([]int64, 0, len(c.s.orgs))
	for id := range c.s.orgs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		o := c.s.orgs[id]
		if (q.Get("external_id") != "" && o.ExternalID == q.Get("external_id")) || (q.Get("name") != "" && eqFold(o.Name, q.Get("name"))) {
			items = append(items, c.s.orgJSON(o))
		}
	}
	c.page("organizations", items, nil)
}

// --- users ----------------------------------------------------------------

func (c *call) listUsers() {
	q := c.r.URL.Query()
	roles := append(q["role[]"], q["role"]...)
	var items []map[string]any
	for _, id := range c.s.sortedUserIDs() {
		u := c.s.users[id]
		if len(roles) == 0 || slices.Contains(roles, u.Role) {
			items = append(items, c.s.userJSON(u))
		}
	}
	c.page("users", items, nil)
}

func (c *call) showUser(id int64) {
	u := c.s.users[id]
	if u == nil {
		c.notFound()
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"user": c.s.userJSON(u)})
}

type identityIn struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

var identityTypes = []string{"email", "twitter", "facebook", "google", "phone_number", "agent_forwarding", "any_channel", "foreign", "sdk", "messaging"}

// userIn decodes the request's {"user": {...}} into a T; nil when it
// answered the request with an error.
func userIn[T any](c *call) *T {
	var in struct {
		User *T `json:"user"`
	}
	if err := decodeBody(c.body, &in); err != nil {
		c.badJSON(err)
		return nil
	}
	if in.User == nil {
		writeError(c.w, http.StatusBadRequest, "InvalidValue", "user is required")
	}
	return in.User
}

func (c *call) createUser() {
	nu := userIn[struct {
		Name           string         `json:"name"`
		Email          string         `json:"email"`
		Phone          string         `json:"phone"`
		ExternalID     string         `json:"external_id"`
		Role           string         `json:"role"`
		OrganizationID int64          `json:"organization_id"`
		Notes          string         `json:"notes"`
		Tags           []string       `json:"tags"`
		UserFields     map[string]any `json:"user_fields"`
		Identities     []identityIn   `json:"identities"`
	}](c)
	if nu == nil {
		return
	}
	if strings.TrimSpace(nu.Name) == "" {
		invalid(c.w, "name", map[string]any{"description": "Name:  is too short (minimum is 1 character)", "error": "BlankValue"})
		return
	}
	if nu.Role != "" && nu.Role != "end-user" && nu.Role != "agent" && nu.Role != "admin" {
		invalid(c.w, "role", map[string]any{"description": "Role: is invalid", "error": "InvalidValue"})
		return
	}
	u := User{Name: nu.Name, Email: nu.Email, Phone: nu.Phone, ExternalID: nu.ExternalID, Role: nu.Role,
		OrganizationID: nu.OrganizationID, Notes: nu.Notes, Tags: nu.Tags, UserFields: nu.UserFields}
	for _, id := range nu.Identities {
		if !slices.Contains(identityTypes, id.Type) || strings.TrimSpace(id.Value) == "" {
			invalid(c.w, "identities", map[string]any{"description": fmt.Sprintf("Identity %q/%q is invalid", id.Type, id.Value), "error": "InvalidValue"})
			return
		}
		if id.Type == "email" && u.Email == "" {
			u.Email = id.Value // the first email is the primary one
			continue
		}
		u.Identities = append(u.Identities, Identity{Type: id.Type, Value: id.Value})
	}
	if u.Email != "" && !strings.Contains(u.Email, "@") {
		invalid(c.w, "email", map[string]any{"description": "Email: " + u.Email + " is not properly formatted", "error": "InvalidFormat"})
		return
	}
	for _, id := range append([]Identity{{Type: "email", Value: u.Email}}, u.Identities...) {
		if id.Type == "email" && id.Value != "" && c.s.userByEmail(id.Value) != nil {
			invalid(c.w, "email", map[string]any{"description": "Email: " + strings.ToLower(id.Value) + " is already being used by another user", "error": "DuplicateValue"})
			return
		}
	}
	if u.ExternalID != "" && c.s.userByExternalID(u.ExternalID) != nil {
		invalid(c.w, "external_id", map[string]any{"description": "External ID: has already been taken", "error": "DuplicateValue"})
		return
	}
	if u.OrganizationID != 0 && c.s.orgs[u.OrganizationID] == nil {
		invalid(c.w, "organization_id", map[string]any{"description": "Organization: is invalid", "error": "InvalidValue"})
		return
	}
	now := time.Now()
	p := c.s.addUser(u, now)
	c.s.indexLater("user", p.ID, now)
	writeJSON(c.w, http.StatusCreated, map[string]any{"user": c.s.userJSON(p)})
}

// createOrUpdateUser is POST /api/v2/users/create_or_update: the user
// holding the given email (any email identity) or external id is updated
// and returned (200), without the search index's lag; otherwise the user
// is created as by POST /users (201). Of an existing user's fields, only
// the name is updated here.
func (c *call) createOrUpdateUser() {
	key := userIn[struct {
		Name       string `json:"name"`
		Email      string `json:"email"`
		ExternalID string `json:"external_id"`
	}](c)
	if key == nil {
		return
	}
	var u *User
	if key.Email != "" {
		u = c.s.userByEmail(key.Email)
	}
	if u == nil && key.ExternalID != "" {
		u = c.s.userByExternalID(key.ExternalID)
	}
	if u == nil {
		c.createUser()
		return
	}
	if n := strings.TrimSpace(key.Name); n != "" {
		u.Name = n
		u.UpdatedAt = time.Now()
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"user": c.s.userJSON(u)})
}

func (c *call) identities(id int64) {
	u := c.s.users[id]
	if u == nil {
		c.notFound()
		return
	}
	items := make([]map[string]any, len(u.Identities))
	for i, idn := range u.Identities {
		items[i] = c.s.identityJSON(u, idn)
	}
	c.page("identities", items, nil)
}

func (c *call) addIdentity(id int64) {
	u := c.s.users[id]
	if u == nil {
		c.notFound()
		return
	}
	var in struct {
		Identity *identityIn `json:"identity"`
	}
	if err := decodeBody(c.body, &in); err != nil {
		c.badJSON(err)
		return
	}
	if in.Identity == nil || !slices.Contains(identityTypes, in.Identity.Type) || in.Identity.Value == "" {
		invalid(c.w, "identity", map[string]any{"description": "Identity is invalid", "error": "InvalidValue"})
		return
	}
	v := in.Identity.Value
	if in.Identity.Type == "email" {
		v = strings.ToLower(v)
		if c.s.userByEmail(v) != nil {
			invalid(c.w, "value", map[string]any{"description": "Value: " + v + " is already being used by another user", "error": "DuplicateValue"})
			return
		}
	}
	idn := Identity{ID: c.s.newID(), Type: in.Identity.Type, Value: v}
	u.Identities = append(u.Identities, idn)
	c.s.indexValue(v, u.ID)
	if idn.Type == "email" && u.Email == "" {
		u.Email = v
	}
	if idn.Type == "phone_number" && u.Phone == "" {
		u.Phone = v
	}
	u.UpdatedAt = time.Now()
	writeJSON(c.w, http.StatusCreated, map[string]any{"identity": c.s.identityJSON(u, idn)})
}

func (c *call) showOrg(id int64) {
	o := c.s.orgs[id]
	if o == nil {
		c.notFound()
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"organization": c.s.orgJSON(o)})
}

// --- tickets --------------------------------------------------------------

// sortedTickets lists tickets passing keep by sort_by/sort_order (default
// id ascending).
func (c *call) sortedTickets(keep func(*Ticket) bool) []map[string]any {
	var hits []hit
	for _, t := range c.s.tickets {
		if keep(t) {
			hits = append(hits, hit{kind: "ticket", id: t.ID, created: t.CreatedAt, updated: t.UpdatedAt})
		}
	}
	q := c.r.URL.Query()
	by, order := q.Get("sort_by"), q.Get("sort_order")
	if by == "" || by == "id" {
		by = ""
		slices.SortFunc(hits, func(a, b hit) int {
			if order == "desc" {
				return cmpInt(b.id, a.id)
			}
			return cmpInt(a.id, b.id)
		})
	} else {
		if order == "" {
			order = "asc"
		}
		sortHits(hits, by, order)
	}
	items := make([]map[string]any, len(hits))
	for i, h := range hits {
		items[i] = c.s.ticketJSON(c.s.tickets[h.id])
	}
	return items
}

func (c *call) listTickets() {
	ext := c.r.URL.Query().Get("external_id")
	c.page("tickets", c.sortedTickets(func(t *Ticket) bool { return ext == "" || t.ExternalID == ext }), nil)
}

func (c *call) requested(userID int64) {
	if c.s.users[userID] == nil {
		c.notFound()
		return
	}
	c.page("tickets", c.sortedTickets(func(t *Ticket) bool { return t.RequesterID == userID }), nil)
}

func (c *call) showMany() {
	var items []map[string]any
	for _, f := range strings.Split(c.r.URL.Query().Get("ids"), ",") {
		if id, ok := parseID(f); ok {
			if t := c.s.tickets[id]; t != nil {
				items = append(items, c.s.ticketJSON(t))
			}
		}
	}
	if len(items) > 100 {
		items = items[:100]
	}
	c.page("tickets", items, nil)
}

func (c *call) showTicket(id int64) {
	t := c.s.tickets[id]
	if t == nil {
		c.notFound()
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"ticket": c.s.ticketJSON(t)})
}

func (c *call) comments(id int64) {
	t := c.s.tickets[id]
	if t == nil {
		c.notFound()
		return
	}
	cs := slices.Clone(t.Comments)
	if c.r.URL.Query().Get("sort_order") == "desc" {
		slices.Reverse(cs)
	}
	items := make([]map[string]any, len(cs))
	for i, cm := range cs {
		items[i] = c.s.commentJSON(cm)
	}
	c.page("comments", items, nil)
}

type commentIn struct {
	Body     string   `json:"body"`
	HTMLBody string   `json:"html_body"`
	Public   *bool    `json:"public"`
	AuthorID int64    `json:"author_id"`
	Uploads  []string `json:"uploads"`
}

type fieldIn struct {
	ID    json.Number `json:"id"`
	Value any         `json:"value"`
}

type voiceIn struct {
	From              string      `json:"from"`
	To                string      `json:"to"`
	RecordingURL      string      `json:"recording_url"`
	StartedAt         string      `json:"started_at"`
	CallDuration      json.Number `json:"call_duration"`
	AnsweredByID      int64       `json:"answered_by_id"`
	TranscriptionText string      `json:"transcription_text"`
	Location          string      `json:"location"`
}

type ticketIn struct {
	ID          int64      `json:"id"`
	Subject     *string    `json:"subject"`
	Comment     *commentIn `json:"comment"`
	Description string     `json:"description"`
	Status      *string    `json:"status"`
	Priority    *string    `json:"priority"`
	Type        *string    `json:"type"`
	RequesterID int64      `json:"requester_id"`
	Requester   *struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"requester"`
	SubmitterID    int64         `json:"submitter_id"`
	AssigneeID     *int64        `json:"assignee_id"`
	ExternalID     *string       `json:"external_id"`
	Tags           *[]string     `json:"tags"`
	AdditionalTags []string      `json:"additional_tags"`
	RemoveTags     []string      `json:"remove_tags"`
	CustomFields   []fieldIn     `json:"custom_fields"`
	Fields         []fieldIn     `json:"fields"`
	ViaID          int           `json:"via_id"`
	VoiceComment   *voiceIn      `json:"voice_comment"`
	SafeUpdate     bool          `json:"safe_update"`
	UpdatedStamp   *time.Time    `json:"updated_stamp"`
	Collaborators  []interface{} `json:"collaborators"`
}

// apiErr is a failed validation: status and body.
type apiErr struct {
	status int
	body   map[string]any
	// for job results
	code, details string
	fieldID       int64
}

func (e *apiErr) write(w http.ResponseWriter) { writeJSON(w, e.status, e.body) }

func recordInvalid(field, desc, code string) *apiErr {
	return &apiErr{status: 422, code: "RecordInvalid", details: desc, body: map[string]any{
		"error": "RecordInvalid", "description": "Record validation errors",
		"details": map[string]any{field: []map[string]any{{"description": desc, "error": code}}},
	}}
}

// checkFields validates custom field values; a rejected field gives the
// 422 Zendesk sends, naming it in details.base[].ticket_field_id.
func (s *Server) checkFields(fs []fieldIn) (map[int64]any, *apiErr) {
	out := map[int64]any{}
	for _, f := range fs {
		id, err := f.ID.Int64()
		if err != nil || id <= 0 {
			return nil, recordInvalid("base", fmt.Sprintf("Ticket field id %q is invalid", f.ID), "InvalidValue")
		}
		if s.rejected[id] {
			desc := fmt.Sprintf("Field %d is invalid: the value %v is not allowed", id, f.Value)
			return nil, &apiErr{status: 422, code: "RecordInvalid", details: desc, fieldID: id, body: map[string]any{
				"error": "RecordInvalid", "description": "Record validation errors",
				"details": map[string]any{"base": []map[string]any{{"description": desc, "error": "InvalidValue", "ticket_field_id": id}}},
			}}
		}
		out[id] = f.Value
	}
	return out, nil
}

func validStatus(s string) bool { _, ok := statusRank[s]; return ok }

func (c *call) createTicket() {
	var in struct {
		Ticket *ticketIn `json:"ticket"`
	}
	if err := decodeBody(c.body, &in); err != nil {
		c.badJSON(err)
		return
	}
	if in.Ticket == nil {
		writeError(c.w, http.StatusBadRequest, "InvalidValue", "ticket is required")
		return
	}
	key := c.r.Header.Get("Idempotency-Key")
	sum := sha256.Sum256(c.body)
	hash := hex.EncodeToString(sum[:])
	if key != "" {
		if e, ok := c.s.idem[key]; ok && time.Since(e.at) < 2*time.Hour {
			if e.hash != hash {
				writeError(c.w, http.StatusBadRequest, "IdempotentRequestError", "Idempotency key reused with a different request")
				return
			}
			if t := c.s.tickets[e.ticketID]; t != nil {
				c.w.Header().Set("x-idempotency-lookup", "hit")
				writeJSON(c.w, http.StatusCreated, map[string]any{"ticket": c.s.ticketJSON(t), "audit": map[string]any{}})
				return
			}
		}
	}
	t, e := c.newTicket(in.Ticket, "api")
	if e != nil {
		e.write(c.w)
		return
	}
	if key != "" {
		c.s.idem[key] = idemEntry{hash: hash, ticketID: t.ID, at: time.Now()}
		c.w.Header().Set("x-idempotency-lookup", "miss")
	}
	writeJSON(c.w, http.StatusCreated, map[string]any{"ticket": c.s.ticketJSON(t), "audit": map[string]any{"ticket_id": t.ID}})
}

// newTicket validates and creates a ticket.
func (c *call) newTicket(in *ticketIn, via string) (*Ticket, *apiErr) {
	s := c.s
	now := time.Now()
	body := ""
	var html string
	public := true
	author := c.principalID()
	if in.Comment != nil {
		body, html = in.Comment.Body, in.Comment.HTMLBody
		if in.Comment.Public != nil {
			public = *in.Comment.Public
		}
		if in.Comment.AuthorID != 0 {
			if s.users[in.Comment.AuthorID] == nil {
				return nil, recordInvalid("author_id", "Author: is invalid", "InvalidValue")
			}
			author = in.Comment.AuthorID
		}
	}
	if body == "" && html == "" {
		body = in.Description
	}
	if strings.TrimSpace(body) == "" && strings.TrimSpace(html) == "" && in.VoiceComment == nil {
		return nil, recordInvalid("description", "Description: cannot be blank", "BlankValue")
	}
	requester := in.RequesterID
	switch {
	case requester != 0:
		if s.users[requester] == nil {
			return nil, recordInvalid("requester", "Requester: is invalid", "InvalidValue")
		}
	case in.Requester != nil && in.Requester.Email != "":
		if u := s.userByEmail(in.Requester.Email); u != nil {
			requester = u.ID
		} else {
			u := s.addUser(User{Name: cmpOr(in.Requester.Name, in.Requester.Email), Email: in.Requester.Email}, now)
			s.indexLater("user", u.ID, now)
			requester = u.ID
		}
	case in.VoiceComment != nil && in.VoiceComment.From != "":
		requester = c.userForPhone(in.VoiceComment.From, now)
	default:
		requester = c.principalID()
	}
	status := ""
	if in.Status != nil {
		status = *in.Status
		if !validStatus(status) {
			return nil, recordInvalid("status", "Status: is invalid", "InvalidValue")
		}
	}
	var assignee int64
	if in.AssigneeID != nil && *in.AssigneeID != 0 {
		a := s.users[*in.AssigneeID]
		if a == nil || !a.isAgent() {
			return nil, recordInvalid("assignee_id", "Assignee: is invalid", "InvalidValue")
		}
		assignee = *in.AssigneeID
	}
	if status == "" {
		status = "new"
		if assignee != 0 {
			status = "open"
		}
	}
	fields, e := s.checkFields(append(in.CustomFields, in.Fields...))
	if e != nil {
		return nil, e
	}
	var uploads []string
	if in.Comment != nil {
		uploads = in.Comment.Uploads
	}
	if e := s.checkUploads(uploads, now); e != nil {
		return nil, e
	}
	t := &Ticket{ID: s.newID(), Status: status, RequesterID: requester, SubmitterID: author, AssigneeID: assignee,
		CustomFields: fields, ViaChannel: via, CreatedAt: now, UpdatedAt: now}
	if in.Subject != nil {
		t.Subject = *in.Subject
	}
	if in.Priority != nil {
		t.Priority = *in.Priority
	}
	if in.Type != nil {
		t.Type = *in.Type
	}
	if in.ExternalID != nil {
		t.ExternalID = *in.ExternalID
	}
	if in.Tags != nil {
		t.Tags = normTags(*in.Tags)
	}
	t.Tags = normTags(append(t.Tags, in.AdditionalTags...))
	if u := s.users[requester]; u != nil {
		t.OrganizationID = u.OrganizationID
	}
	if body != "" || html != "" {
		t.Comments = append(t.Comments, Comment{ID: s.newID(), Type: "Comment", AuthorID: author, Body: body, HTMLBody: html, Public: public,
			Attachments: s.attach(uploads), CreatedAt: now})
		t.Description = cmpOr(body, stripTags(html))
	}
	if v := in.VoiceComment; v != nil {
		t.Comments = append(t.Comments, voiceComment(s.newID(), author, v, now))
		if t.Description == "" {
			t.Description = t.Comments[len(t.Comments)-1].Body
		}
	}
	if t.Subject == "" {
		t.Subject = truncate(strings.SplitN(t.Description, "\n", 2)[0], 80)
	}
	s.tickets[t.ID] = t
	s.indexLater("ticket", t.ID, now)
	return t, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// userForPhone finds the user with this exact phone identity, or creates
// an end user for it.
func (c *call) userForPhone(phone string, now time.Time) int64 {
	if ids := c.s.phoneHolders(phone); len(ids) > 0 {
		return ids[0]
	}
	u := c.s.addUser(User{Name: "Caller " + phone, Phone: phone}, now)
	c.s.indexLater("user", u.ID, now)
	return u.ID
}

func voiceComment(id, author int64, v *voiceIn, now time.Time) Comment {
	dur, _ := v.CallDuration.Int64()
	data := map[string]any{"from": v.From, "to": v.To, "recording_url": v.RecordingURL, "started_at": v.StartedAt,
		"call_duration": dur, "answered_by_id": v.AnsweredByID, "transcription_text": v.TranscriptionText, "location": v.Location}
	body := fmt.Sprintf("Call from: %s\nCall to: %s\nTime of call: %s\nLength of phone call: %d seconds", v.From, v.To, v.StartedAt, dur)
	if v.AnsweredByID != 0 {
		body += fmt.Sprintf("\nAnswered by: %d", v.AnsweredByID)
	}
	if v.TranscriptionText != "" {
		body += "\n\nTranscription:\n" + v.TranscriptionText
	}
	return Comment{ID: id, Type: "VoiceComment", AuthorID: author, Body: body, Public: false, Data: data, CreatedAt: now}
}

// applyUpdate validates then applies in to t, all or nothing.
func (c *call) applyUpdate(t *Ticket, in *ticketIn) *apiErr {
	s := c.s
	if t.Status == "closed" {
		return recordInvalid("status", "Status: closed prevents ticket update", "ClosedTicket")
	}
	if in.SafeUpdate && in.UpdatedStamp != nil && !in.UpdatedStamp.Equal(t.UpdatedAt.Truncate(time.Second)) && in.UpdatedStamp.Before(t.UpdatedAt.Truncate(time.Second)) {
		return &apiErr{status: 409, code: "UpdateConflict", details: "Safe Update prevented the update due to outdated ticket data",
			body: map[string]any{"error": "UpdateConflict", "description": "Safe Update prevented the update due to outdated ticket data. Please fetch the latest ticket data and try again."}}
	}
	fields, e := s.checkFields(append(in.CustomFields, in.Fields...))
	if e != nil {
		return e
	}
	if in.Status != nil && !validStatus(*in.Status) {
		return recordInvalid("status", "Status: is invalid", "InvalidValue")
	}
	if in.AssigneeID != nil && *in.AssigneeID != 0 {
		if a := s.users[*in.AssigneeID]; a == nil || !a.isAgent() {
			return recordInvalid("assignee_id", "Assignee: is invalid", "InvalidValue")
		}
	}
	author := c.principalID()
	if in.Comment != nil && in.Comment.AuthorID != 0 {
		if s.users[in.Comment.AuthorID] == nil {
			return recordInvalid("author_id", "Author: is invalid", "InvalidValue")
		}
		author = in.Comment.AuthorID
	}
	if in.Comment != nil && strings.TrimSpace(in.Comment.Body) == "" && strings.TrimSpace(in.Comment.HTMLBody) == "" {
		return recordInvalid("comment", "Comment: cannot be blank", "BlankValue")
	}
	if len(t.Comments) >= 5000 && (in.Comment != nil || in.VoiceComment != nil) {
		return recordInvalid("base", "The ticket has reached its 5000 comments limit", "CommentLimit")
	}
	now := time.Now()
	if in.Comment != nil {
		if e := s.checkUploads(in.Comment.Uploads, now); e != nil {
			return e
		}
	}
	for id, v := range fields {
		t.CustomFields[id] = v
	}
	if in.Status != nil {
		t.Status = *in.Status
	}
	if in.AssigneeID != nil {
		t.AssigneeID = *in.AssigneeID
		if t.Status == "new" && t.AssigneeID != 0 {
			t.Status = "open"
		}
	}
	if in.Subject != nil {
		t.Subject = *in.Subject
	}
	if in.Priority != nil {
		t.Priority = *in.Priority
	}
	if in.ExternalID != nil {
		t.ExternalID = *in.ExternalID
	}
	if in.Tags != nil {
		t.Tags = normTags(*in.Tags)
	}
	t.Tags = normTags(append(t.Tags, in.AdditionalTags...))
	for _, rm := range normTags(in.RemoveTags) {
		t.Tags = slices.DeleteFunc(t.Tags, func(x string) bool { return x == rm })
	}
	if cm := in.Comment; cm != nil {
		public := true
		if cm.Public != nil {
			public = *cm.Public
		}
		t.Comments = append(t.Comments, Comment{ID: s.newID(), Type: "Comment", AuthorID: author, Body: cm.Body, HTMLBody: cm.HTMLBody, Public: public,
			Attachments: s.attach(cm.Uploads), CreatedAt: now})
		if t.Status == "new" && public && s.users[author] != nil && s.users[author].isAgent() {
			t.Status = "open"
		}
	}
	if in.VoiceComment != nil {
		t.Comments = append(t.Comments, voiceComment(s.newID(), author, in.VoiceComment, now))
	}
	t.UpdatedAt = now
	return nil
}

func (c *call) updateTicket(id int64) {
	t := c.s.tickets[id]
	if t == nil {
		c.notFound()
		return
	}
	var in struct {
		Ticket *ticketIn `json:"ticket"`
	}
	if err := decodeBody(c.body, &in); err != nil {
		c.badJSON(err)
		return
	}
	if in.Ticket == nil {
		writeError(c.w, http.StatusBadRequest, "InvalidValue", "ticket is required")
		return
	}
	if e := c.applyUpdate(t, in.Ticket); e != nil {
		e.write(c.w)
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"ticket": c.s.ticketJSON(t), "audit": map[string]any{"ticket_id": t.ID}})
}

// --- Talk Partner Edition -------------------------------------------------

func (c *call) display(kind string, agentID, id int64) {
	a := c.s.users[agentID]
	if a == nil || !a.isAgent() {
		c.notFound()
		return
	}
	if (kind == "user" && c.s.users[id] == nil) || (kind == "ticket" && c.s.tickets[id] == nil) {
		c.notFound()
		return
	}
	c.s.displays = append(c.s.displays, Display{AgentID: agentID, Kind: kind, ID: id, At: time.Now()})
	c.w.Header().Set("Content-Type", "application/json; charset=utf-8")
	c.w.WriteHeader(http.StatusOK)
}

func (c *call) voiceTicket() {
	var in struct {
		DisplayToAgent int64     `json:"display_to_agent"`
		Ticket         *ticketIn `json:"ticket"`
	}
	if err := decodeBody(c.body, &in); err != nil {
		c.badJSON(err)
		return
	}
	if in.Ticket == nil {
		writeError(c.w, http.StatusBadRequest, "InvalidValue", "ticket is required")
		return
	}
	switch in.Ticket.ViaID {
	case 44:
		if in.Ticket.VoiceComment == nil {
			recordInvalid("voice_comment", "Voice comment: is required for a voicemail", "BlankValue").write(c.w)
			return
		}
	case 45, 46:
	default:
		recordInvalid("via_id", "Via: is invalid: want 44, 45 or 46", "InvalidValue").write(c.w)
		return
	}
	if in.DisplayToAgent != 0 {
		if a := c.s.users[in.DisplayToAgent]; a == nil || !a.isAgent() {
			recordInvalid("display_to_agent", "Display to agent: is invalid", "InvalidValue").write(c.w)
			return
		}
	}
	t, e := c.newTicket(in.Ticket, "voice")
	if e != nil {
		e.write(c.w)
		return
	}
	t.ViaID = in.Ticket.ViaID
	if in.DisplayToAgent != 0 {
		c.s.displays = append(c.s.displays, Display{AgentID: in.DisplayToAgent, Kind: "ticket", ID: t.ID, At: time.Now()})
	}
	writeJSON(c.w, http.StatusCreated, map[string]any{"ticket": c.s.ticketJSON(t)})
}

func (c *call) createCall() {
	var in struct {
		Call map[string]any `json:"call"`
	}
	if err := decodeBody(c.body, &in); err != nil {
		c.badJSON(err)
		return
	}
	f := in.Call
	if f == nil {
		writeError(c.w, http.StatusBadRequest, "InvalidValue", "call is required")
		return
	}
	for _, k := range []string{"app_id", "from_line", "to_line", "call_started_at", "direction"} {
		if v, ok := f[k]; !ok || v == nil || v == "" {
			recordInvalid(k, strings.ReplaceAll(k, "_", " ")+": is required", "BlankValue").write(c.w)
			return
		}
	}
	if d := fmt.Sprint(f["direction"]); d != "inbound" && d != "outbound" {
		recordInvalid("direction", "direction: want inbound or outbound", "InvalidValue").write(c.w)
		return
	}
	for _, k := range []string{"call_started_at", "call_ended_at"} {
		if v, ok := f[k].(string); ok && v != "" {
			if _, err := time.Parse(time.RFC3339, v); err != nil {
				recordInvalid(k, k+": is not an ISO 8601 date", "InvalidValue").write(c.w)
				return
			}
		}
	}
	comment, _ := f["comment"].(map[string]any)
	delete(f, "comment")
	delete(f, "id")
	now := time.Now()
	var ticket *Ticket
	if v, ok := f["ticket_id"]; ok && v != nil {
		id, _ := toInt(v)
		if ticket = c.s.tickets[id]; ticket == nil {
			recordInvalid("ticket_id", "Ticket: is invalid", "InvalidValue").write(c.w)
			return
		}
	}
	id := c.s.newID()
	if comment != nil {
		author, _ := toInt(comment["author_id"])
		if author == 0 {
			author, _ = toInt(f["agent_id"])
		}
		if author != 0 && c.s.users[author] == nil {
			recordInvalid("comment.author_id", "Author: is invalid", "InvalidValue").write(c.w)
			return
		}
		if author == 0 {
			author = c.principalID()
		}
		public, _ := comment["public"].(bool)
		title, _ := comment["title"].(string)
		if ticket == nil {
			line := fmt.Sprint(f["from_line"])
			if f["direction"] == "outbound" {
				line = fmt.Sprint(f["to_line"])
			}
			requester, _ := toInt(f["end_user_id"])
			if requester == 0 || c.s.users[requester] == nil {
				requester = c.userForPhone(line, now)
			}
			subject := cmpOr(title, "Call with "+line)
			ticket = &Ticket{ID: c.s.newID(), Subject: subject, Description: subject, Status: "new", RequesterID: requester,
				SubmitterID: author, CustomFields: map[int64]any{}, ViaChannel: "voice", ViaID: 45, CreatedAt: now, UpdatedAt: now}
			if f["direction"] == "outbound" {
				ticket.ViaID = 46
			}
			if u := c.s.users[requester]; u != nil {
				ticket.OrganizationID = u.OrganizationID
			}
			c.s.tickets[ticket.ID] = ticket
			c.s.indexLater("ticket", ticket.ID, now)
			f["ticket_id"] = ticket.ID
		}
		ticket.Comments = append(ticket.Comments, Comment{ID: c.s.newID(), Type: "TpeVoiceComment", AuthorID: author,
			Body: cmpOr(title, "Call"), Public: public, Data: map[string]any{"call_id": id}, CreatedAt: now})
		ticket.UpdatedAt = now
		if agent, _ := toInt(comment["display_to_agent"]); agent != 0 {
			if a := c.s.users[agent]; a != nil && a.isAgent() {
				c.s.displays = append(c.s.displays, Display{AgentID: agent, Kind: "ticket", ID: ticket.ID, At: now})
			}
		}
	}
	f["id"] = id
	f["created_at"], f["updated_at"] = ts(now), ts(now)
	c.s.calls[id] = &Call{ID: id, Fields: f}
	writeJSON(c.w, http.StatusCreated, map[string]any{"call": f})
}

func (c *call) updateCall(id int64) {
	cl := c.s.calls[id]
	if cl == nil {
		c.notFound()
		return
	}
	var in struct {
		Call map[string]any `json:"call"`
	}
	if err := decodeBody(c.body, &in); err != nil {
		c.badJSON(err)
		return
	}
	if in.Call == nil {
		writeError(c.w, http.StatusBadRequest, "InvalidValue", "call is required")
		return
	}
	for k, v := range in.Call {
		switch k {
		case "id", "app_id", "comment", "created_at", "updated_at":
			continue
		}
		cl.Fields[k] = v
	}
	cl.Fields["updated_at"] = ts(time.Now())
	writeJSON(c.w, http.StatusOK, map[string]any{"call": cl.Fields})
}

func (c *call) showCall(id int64) {
	cl := c.s.calls[id]
	if cl == nil {
		c.notFound()
		return
	}
	writeJSON(c.w, http.StatusOK, map[string]any{"call": cl.Fields})
}

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case float64:
		return int64(x), true
	case int64:
		return x, true
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}
