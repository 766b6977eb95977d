package zendesk

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
)

// The ticket, comment and call types are package syncmap's, so that
// *Client implements syncmap.Zendesk; the aliases save importing syncmap.
type (
	Ticket       = syncmap.Ticket
	NewTicket    = syncmap.NewTicket
	TicketUpdate = syncmap.TicketUpdate
	CommentInput = syncmap.CommentInput
	Comment      = syncmap.Comment
	CustomField  = syncmap.CustomField
	UpdateResult = syncmap.UpdateResult
	CreateResult = syncmap.CreateResult
	Call         = syncmap.Call
	CallComment  = syncmap.CallComment
	FieldError   = syncmap.FieldError
	Attachment   = syncmap.Attachment
	Upload       = syncmap.Upload
)

// ticketJSON is a ticket as Zendesk sends it, decoded leniently: a custom
// field value may be a string, number, bool, list or null (go-zendesk's
// CustomField rejects numbers and panics on a missing id).
type ticketJSON struct {
	ID             int64             `json:"id"`
	URL            string            `json:"url"`
	ExternalID     string            `json:"external_id"`
	Subject        string            `json:"subject"`
	Description    string            `json:"description"`
	Status         string            `json:"status"`
	RequesterID    int64             `json:"requester_id"`
	AssigneeID     int64             `json:"assignee_id"`
	OrganizationID int64             `json:"organization_id"`
	Tags           []string          `json:"tags"`
	CustomFields   []json.RawMessage `json:"custom_fields"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

func (t ticketJSON) public() Ticket {
	out := Ticket{
		ID: t.ID, Subject: t.Subject, Status: t.Status, Tags: t.Tags, RequesterID: t.RequesterID,
		AssigneeID: t.AssigneeID, ExternalID: t.ExternalID, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
	for _, raw := range t.CustomFields {
		var f struct {
			ID    json.Number `json:"id"`
			Value any         `json:"value"`
		}
		if json.Unmarshal(raw, &f) != nil {
			continue
		}
		id, err := f.ID.Int64()
		if err != nil || id <= 0 {
			continue
		}
		out.CustomFields = append(out.CustomFields, CustomField{ID: id, Value: f.Value})
	}
	return out
}

func (t ticketJSON) record(c *Client) cti.Record {
	return cti.Record{
		Kind: cti.KindTicket, ID: t.ID, Name: t.Subject, ExternalID: t.ExternalID, Status: t.Status,
		RequesterID: t.RequesterID, OrganizationID: t.OrganizationID, UpdatedAt: t.UpdatedAt,
		URL: c.AgentURL(cti.KindTicket, t.ID),
	}
}

// TicketRecord is the cti.Record of a ticket.
func (c *Client) TicketRecord(t Ticket) cti.Record {
	return cti.Record{
		Kind: cti.KindTicket, ID: t.ID, Name: t.Subject, ExternalID: t.ExternalID, Status: t.Status,
		RequesterID: t.RequesterID, UpdatedAt: t.UpdatedAt, URL: c.AgentURL(cti.KindTicket, t.ID),
	}
}

func (c *Client) ticket(ctx context.Context, id int64) (ticketJSON, error) {
	var out struct {
		Ticket ticketJSON `json:"ticket"`
	}
	err := c.getJSON(ctx, "show ticket", "/tickets/"+itoa(id)+".json", &out)
	return out.Ticket, err
}

// Ticket returns ticket id (GET /api/v2/tickets/{id}); a deleted or
// unknown ticket is an error wrapping cti.ErrNotFound.
func (c *Client) Ticket(ctx context.Context, id int64) (*Ticket, error) {
	t, err := c.ticket(ctx, id)
	if err != nil {
		return nil, err
	}
	p := t.public()
	return &p, nil
}

// Tickets returns the tickets that exist among ids (GET
// /api/v2/tickets/show_many), at most 100 ids.
func (c *Client) Tickets(ctx context.Context, ids []int64) ([]Ticket, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > 100 {
		return nil, fmt.Errorf("zendesk show many tickets: %w: %d ids, at most 100", cti.ErrInvalid, len(ids))
	}
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = itoa(id)
	}
	return c.ticketList(ctx, "show many tickets", "/tickets/show_many.json?ids="+strings.Join(s, ","))
}

// TicketsByExternalID returns the tickets whose external_id is externalID
// (GET /api/v2/tickets?external_id=...).
func (c *Client) TicketsByExternalID(ctx context.Context, externalID string) ([]Ticket, error) {
	if externalID == "" {
		return nil, fmt.Errorf("zendesk tickets by external id: %w: empty external id", cti.ErrInvalid)
	}
	return c.ticketList(ctx, "tickets by external id", "/tickets.json?"+url.Values{"external_id": {externalID}}.Encode())
}

// RequestedTickets returns the first 100 tickets user userID requested,
// most recently updated first (GET /api/v2/users/{id}/tickets/requested).
// An unknown user is an error wrapping cti.ErrNotFound.
func (c *Client) RequestedTickets(ctx context.Context, userID int64) ([]Ticket, error) {
	ts, err := c.requested(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Ticket, len(ts))
	for i, t := range ts {
		out[i] = t.public()
	}
	return out, nil
}

func (c *Client) requested(ctx context.Context, userID int64) ([]ticketJSON, error) {
	var out struct {
		Tickets []ticketJSON `json:"tickets"`
	}
	q := url.Values{"sort_by": {"updated_at"}, "sort_order": {"desc"}, "per_page": {"100"}}
	if err := c.getJSON(ctx, "list requested tickets", "/users/"+itoa(userID)+"/tickets/requested.json?"+q.Encode(), &out); err != nil {
		return nil, err
	}
	sortByUpdated(out.Tickets)
	return out.Tickets, nil
}

// sortByUpdated orders tickets most recently updated first, ties by id
// descending, whatever order the server used.
func sortByUpdated(ts []ticketJSON) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && newer(ts[j], ts[j-1]); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}

func newer(a, b ticketJSON) bool {
	if !a.UpdatedAt.Equal(b.UpdatedAt) {
		return a.UpdatedAt.After(b.UpdatedAt)
	}
	return a.ID > b.ID
}

// UnsolvedTickets returns the user's requested tickets that are new, open,
// pending or on hold, most recently updated first, as records.
func (c *Client) UnsolvedTickets(ctx context.Context, userID int64) ([]cti.Record, error) {
	ts, err := c.requested(ctx, userID)
	if err != nil {
		return nil, err
	}
	var out []cti.Record
	for _, t := range ts {
		if cti.Unsolved(t.Status) {
			out = append(out, t.record(c))
		}
	}
	return out, nil
}

func (c *Client) ticketList(ctx context.Context, op, path string) ([]Ticket, error) {
	var out struct {
		Tickets []ticketJSON `json:"tickets"`
	}
	if err := c.getJSON(ctx, op, path, &out); err != nil {
		return nil, err
	}
	res := make([]Ticket, len(out.Tickets))
	for i, t := range out.Tickets {
		res[i] = t.public()
	}
	return res, nil
}

// CreateTicket creates a ticket with its first comment (POST
// /api/v2/tickets). When t.ExternalID is set, or ctx carries
// WithIdempotencyKey, the request carries an Idempotency-Key so that a
// retry after a lost response cannot create a second ticket.
func (c *Client) CreateTicket(ctx context.Context, t NewTicket) (*Ticket, error) {
	tj, err := c.createTicket(ctx, t)
	if err != nil {
		return nil, err
	}
	p := tj.public()
	return &p, nil
}

// hasFirstComment reports whether t has the non-blank first comment
// Zendesk requires of a new ticket.
func hasFirstComment(t NewTicket) bool {
	return t.Comment != nil && (strings.TrimSpace(t.Comment.Body) != "" || strings.TrimSpace(t.Comment.HTMLBody) != "")
}

func (c *Client) createTicket(ctx context.Context, t NewTicket) (ticketJSON, error) {
	if !hasFirstComment(t) {
		return ticketJSON{}, fmt.Errorf("zendesk create ticket: %w: a ticket needs a first comment", cti.ErrInvalid)
	}
	body := map[string]any{"ticket": t}
	if idempotencyKeyFrom(ctx) == "" && t.ExternalID != "" {
		b, _ := json.Marshal(body)
		sum := sha256.Sum256(b)
		ctx = WithIdempotencyKey(ctx, "ctikit:"+hex.EncodeToString(sum[:16]))
	}
	var out struct {
		Ticket ticketJSON `json:"ticket"`
	}
	if err := c.postJSON(ctx, "create ticket", "/tickets.json", body, &out); err != nil {
		return ticketJSON{}, err
	}
	if out.Ticket.ID == 0 {
		return ticketJSON{}, fmt.Errorf("zendesk create ticket: %w", &syntaxError{what: "response", err: errors.New("no ticket id")})
	}
	return out.Ticket, nil
}

// UpdateTicket applies u to ticket id in one request (PUT
// /api/v2/tickets/{id}): comment, custom fields, additional tags and
// status together. u.ID is ignored. Ticket updates spend the transport's
// ticket-update budget.
func (c *Client) UpdateTicket(ctx context.Context, id int64, u TicketUpdate) (*Ticket, error) {
	u.ID = 0
	var out struct {
		Ticket ticketJSON `json:"ticket"`
	}
	if err := c.putJSON(ctx, "update ticket", "/tickets/"+itoa(id)+".json", map[string]any{"ticket": u}, &out); err != nil {
		return nil, err
	}
	p := out.Ticket.public()
	return &p, nil
}

// JobStatus is a background job (update_many).
type JobStatus struct {
	ID       string      `json:"id"`
	URL      string      `json:"url,omitempty"`
	Status   string      `json:"status"` // queued, working, completed, failed, killed
	Total    int         `json:"total,omitempty"`
	Progress int         `json:"progress,omitempty"`
	Message  string      `json:"message,omitempty"`
	Results  []JobResult `json:"results,omitempty"`
}

// Done reports whether the job has finished, well or not.
func (j JobStatus) Done() bool {
	return j.Status == "completed" || j.Status == "failed" || j.Status == "killed"
}

// JobResult is one entry of a job's results.
type JobResult struct {
	ID            int64  `json:"id"`
	Index         *int   `json:"index,omitempty"`
	Action        string `json:"action,omitempty"`
	Success       *bool  `json:"success,omitempty"`
	Status        string `json:"status,omitempty"`
	Error         string `json:"error,omitempty"`
	Details       string `json:"details,omitempty"`
	TicketFieldID int64  `json:"ticket_field_id,omitempty"`
}

// JobStatus reads a job status (GET /api/v2/job_statuses/{id}).
func (c *Client) JobStatus(ctx context.Context, id string) (JobStatus, error) {
	var out struct {
		JobStatus JobStatus `json:"job_status"`
	}
	err := c.getJSON(ctx, "show job status", "/job_statuses/"+url.PathEscape(id)+".json", &out)
	return out.JobStatus, err
}

// UpdateMany applies up to 100 updates, each to its own ticket (PUT
// /api/v2/tickets/update_many with {"tickets": [...]}), polls the job
// status until it is done or ctx ends, and returns one result per update,
// in order.
func (c *Client) UpdateMany(ctx context.Context, updates []TicketUpdate) ([]UpdateResult, error) {
	const op = "update many tickets"
	if len(updates) == 0 {
		return nil, nil
	}
	if len(updates) > 100 {
		return nil, fmt.Errorf("zendesk %s: %w: %d updates, at most 100", op, cti.ErrInvalid, len(updates))
	}
	for i, u := range updates {
		if u.ID <= 0 {
			return nil, fmt.Errorf("zendesk %s: %w: update %d has no ticket id", op, cti.ErrInvalid, i)
		}
	}
	var sub struct {
		JobStatus JobStatus `json:"job_status"`
	}
	if err := c.putJSON(ctx, op, "/tickets/update_many.json", map[string]any{"tickets": updates}, &sub); err != nil {
		return nil, err
	}
	js, err := c.waitJob(ctx, op, sub.JobStatus)
	if err != nil {
		return nil, err
	}
	return c.jobResults(op, updates, js.Results), nil
}

// waitJob polls a submitted job until it is done; a job that ended
// without completing and without results is a temporary error.
func (c *Client) waitJob(ctx context.Context, op string, js JobStatus) (JobStatus, error) {
	if js.ID == "" {
		return js, fmt.Errorf("zendesk %s: %w", op, &syntaxError{what: "response", err: errors.New("no job status id")})
	}
	for attempt := 0; !js.Done(); attempt++ {
		if err := sleep(ctx, c.jobPoll(attempt)); err != nil {
			return js, fmt.Errorf("zendesk %s: waiting for job %s: %w", op, js.ID, err)
		}
		next, err := c.JobStatus(ctx, js.ID)
		if err != nil {
			return js, err
		}
		js = next
	}
	if js.Status != "completed" && len(js.Results) == 0 {
		return js, &cti.UpstreamError{Service: "zendesk", Op: op, Status: 0, Temporary: true,
			Err: fmt.Errorf("job %s %s: %s", js.ID, js.Status, c.scrub(js.Message))}
	}
	return js, nil
}

// CreateMany creates up to 100 tickets in one request (POST
// /api/v2/tickets/create_many with {"tickets": [...]}), polls the job
// status until it is done or ctx ends, and returns one result per ticket,
// in order (Zendesk's bulk create results carry the index and the new
// id). It implements syncmap.ManyCreator. Unlike CreateTicket there is no
// Idempotency-Key: a caller that may retry after an unknown outcome looks
// its tickets up by external id first.
func (c *Client) CreateMany(ctx context.Context, tickets []NewTicket) ([]CreateResult, error) {
	const op = "create many tickets"
	if len(tickets) == 0 {
		return nil, nil
	}
	if len(tickets) > 100 {
		return nil, fmt.Errorf("zendesk %s: %w: %d tickets, at most 100", op, cti.ErrInvalid, len(tickets))
	}
	for i, t := range tickets {
		if !hasFirstComment(t) {
			return nil, fmt.Errorf("zendesk %s: %w: ticket %d has no first comment", op, cti.ErrInvalid, i)
		}
	}
	var sub struct {
		JobStatus JobStatus `json:"job_status"`
	}
	if err := c.postJSON(ctx, op, "/tickets/create_many.json", map[string]any{"tickets": tickets}, &sub); err != nil {
		return nil, err
	}
	js, err := c.waitJob(ctx, op, sub.JobStatus)
	if err != nil {
		return nil, err
	}
	out := make([]CreateResult, len(tickets))
	got := make([]bool, len(tickets))
	for k, r := range js.Results {
		i := k // no index: results in request order
		if r.Index != nil {
			i = *r.Index
		}
		if i < 0 || i >= len(tickets) || got[i] {
			continue
		}
		got[i] = true
		if r.Error == "" && r.ID > 0 && (r.Success == nil || *r.Success) {
			out[i] = CreateResult{ID: r.ID}
			continue
		}
		out[i] = CreateResult{Error: r.Error, Details: c.scrub(r.Details), Err: c.resultError(op, r)}
	}
	for i := range out {
		if !got[i] {
			out[i] = CreateResult{Error: "NoResult", Details: "the job status has no result for this ticket",
				Err: &cti.UpstreamError{Service: "zendesk", Op: op, Temporary: true, Err: errors.New("the job status has no result for this ticket")}}
		}
	}
	return out, nil
}

// jobResults pairs job results with updates: by index when Zendesk gives
// one, else by ticket id in order.
func (c *Client) jobResults(op string, updates []TicketUpdate, results []JobResult) []UpdateResult {
	out := make([]UpdateResult, len(updates))
	used := make([]bool, len(results))
	find := func(i int, id int64) *JobResult {
		for k := range results {
			if !used[k] && results[k].Index != nil && *results[k].Index == i {
				used[k] = true
				return &results[k]
			}
		}
		for k := range results {
			if !used[k] && results[k].Index == nil && results[k].ID == id {
				used[k] = true
				return &results[k]
			}
		}
		return nil
	}
	for i, u := range updates {
		r := find(i, u.ID)
		ur := UpdateResult{ID: u.ID}
		switch {
		case r == nil:
			ur.Error = "NoResult"
			ur.Details = "the job status has no result for this ticket"
			ur.Err = &cti.UpstreamError{Service: "zendesk", Op: op, Temporary: true, Err: errors.New(ur.Details)}
		case r.Error == "" && (r.Success == nil || *r.Success):
			ur.Success = true
		default:
			ur.Error, ur.Details = r.Error, c.scrub(r.Details)
			ur.Err = c.resultError(op, *r)
		}
		out[i] = ur
	}
	return out
}

func (c *Client) resultError(op string, r JobResult) error {
	status := 422
	ae := &APIError{Status: status, Code: cmpOr(r.Error, "TicketUpdateFailed"), Description: c.scrub(r.Details)}
	low := strings.ToLower(r.Error + " " + r.Details)
	if r.Error == "RecordNotFound" || strings.Contains(low, "not found") {
		ae.Status = 404
	}
	if r.ID != 0 {
		op += " (ticket " + itoa(r.ID) + ")"
	}
	ue := &cti.UpstreamError{Service: "zendesk", Op: op, Status: ae.Status, Err: ae}
	if ae.Status == 404 {
		return ue
	}
	ids := fieldIDsInText(r.Details)
	if r.TicketFieldID > 0 && !slices.Contains(ids, r.TicketFieldID) {
		ids = append([]int64{r.TicketFieldID}, ids...)
	}
	if len(ids) > 0 {
		return &FieldError{FieldIDs: ids, Message: ae.Description, Err: ue}
	}
	return ue
}

// TicketComments returns a ticket's comments, newest first, at most 100
// (GET /api/v2/tickets/{id}/comments?sort_order=desc), with their
// attachments.
func (c *Client) TicketComments(ctx context.Context, ticketID int64) ([]Comment, error) {
	var out struct {
		Comments []struct {
			ID        int64     `json:"id"`
			Type      string    `json:"type"`
			Body      string    `json:"body"`
			HTMLBody  string    `json:"html_body"`
			Public    bool      `json:"public"`
			AuthorID  int64     `json:"author_id"`
			CreatedAt time.Time `json:"created_at"`
			Data      struct {
				CallID json.Number `json:"call_id"`
			} `json:"data"`
			Attachments []Attachment `json:"attachments"`
		} `json:"comments"`
	}
	q := url.Values{"sort_order": {"desc"}, "per_page": {"100"}}
	if err := c.getJSON(ctx, "list comments", "/tickets/"+itoa(ticketID)+"/comments.json?"+q.Encode(), &out); err != nil {
		return nil, err
	}
	res := make([]Comment, len(out.Comments))
	for i, cm := range out.Comments {
		callID, _ := cm.Data.CallID.Int64()
		res[i] = Comment{ID: cm.ID, Type: cm.Type, Body: cmpOr(cm.Body, cm.HTMLBody), Public: cm.Public,
			AuthorID: cm.AuthorID, CreatedAt: cm.CreatedAt, CallID: callID}
		if len(cm.Attachments) > 0 {
			res[i].Attachments = cm.Attachments
		}
	}
	// Newest first whatever order the server used.
	for i := 1; i < len(res); i++ {
		for j := i; j > 0 && (res[j].CreatedAt.After(res[j-1].CreatedAt) ||
			res[j].CreatedAt.Equal(res[j-1].CreatedAt) && res[j].ID > res[j-1].ID); j-- {
			res[j], res[j-1] = res[j-1], res[j]
		}
	}
	return res, nil
}
