package syncmap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Zendesk is what the sync sink needs from Zendesk. *zendesk.Client
// implements it over the REST API; zendesk/zendesktest emulates it.
//
// Every method is safe for concurrent use and honours ctx. Failures are
// *cti.UpstreamError (wrapped or not) with Service "zendesk", the HTTP
// status and Retry-After, so that 429, 5xx and timeouts are retried by the
// engine; a 404 wraps cti.ErrNotFound (errors.Is(err, cti.ErrNotFound)); a
// 422 whose body names ticket fields (details.base[].ticket_field_id) wraps
// a *FieldError listing them. Implementations never put credentials in
// errors.
type Zendesk interface {
	TicketAPI
	CallAPI
}

// TicketAPI is the Support tickets part of Zendesk.
type TicketAPI interface {
	// Ticket returns one ticket (GET /api/v2/tickets/{id}). A deleted or
	// unknown ticket is cti.ErrNotFound.
	Ticket(ctx context.Context, id int64) (*Ticket, error)

	// Tickets returns the tickets that exist among ids (GET
	// /api/v2/tickets/show_many?ids=...), at most 100 ids per call; ids
	// that do not exist (deleted) are simply absent from the result, in
	// any order.
	Tickets(ctx context.Context, ids []int64) ([]Ticket, error)

	// TicketsByExternalID returns the tickets whose external_id is
	// externalID (GET /api/v2/tickets?external_id=...), none being an empty
	// slice and a nil error.
	TicketsByExternalID(ctx context.Context, externalID string) ([]Ticket, error)

	// RequestedTickets returns the tickets requested by user userID (GET
	// /api/v2/users/{id}/tickets/requested?sort_by=updated_at&sort_order=desc),
	// most recently updated first, at most 100 (the first page). An
	// unknown user is cti.ErrNotFound.
	RequestedTickets(ctx context.Context, userID int64) ([]Ticket, error)

	// CreateTicket creates a ticket (POST /api/v2/tickets) with its first
	// comment, tags, custom fields and external id in one request.
	CreateTicket(ctx context.Context, t NewTicket) (*Ticket, error)

	// UpdateTicket applies u to ticket id (PUT /api/v2/tickets/{id}) in
	// one request: the comment, custom fields and additional_tags are
	// written together or not at all. u.ID is ignored. A deleted ticket is
	// cti.ErrNotFound; a rejected custom field is a 422 wrapping
	// *FieldError.
	UpdateTicket(ctx context.Context, id int64, u TicketUpdate) (*Ticket, error)

	// UpdateMany applies up to 100 updates, each to its own ticket u.ID
	// with its own changes (PUT /api/v2/tickets/update_many with
	// {"tickets":[...]}), then polls the job status
	// (GET /api/v2/job_statuses/{id}) until it is completed or failed, or
	// ctx is done. It returns one result per update, in the order of
	// updates (matched by ticket id and position). A request-level failure
	// (429 on the submit or a poll, 5xx, job "failed" without results) is
	// an error and no result; per-ticket failures are in the results.
	// More than 100 updates is an error wrapping cti.ErrInvalid.
	UpdateMany(ctx context.Context, updates []TicketUpdate) ([]UpdateResult, error)

	// TicketComments returns the ticket's comments, newest first, at most
	// 100 (GET /api/v2/tickets/{id}/comments?sort_order=desc). A deleted
	// ticket is cti.ErrNotFound.
	TicketComments(ctx context.Context, ticketID int64) ([]Comment, error)
}

// CallAPI is the Talk Partner Edition standard call object.
type CallAPI interface {
	// CreateCall creates a call record (POST /api/v2/calls with
	// {"call": {...}}). When c.Comment is set, Zendesk writes the Talk
	// Partner Edition voice comment on c.TicketID in the same request (or
	// creates a ticket for it when TicketID is 0). It returns the record
	// with its id (and ticket_id).
	CreateCall(ctx context.Context, c Call) (*Call, error)

	// UpdateCall updates a call record (PATCH /api/v2/calls/{id}): only the
	// non-zero fields of c are sent. The voice comment shows the call's
	// current data, so late data (recording, transcript, summary) appears
	// on the existing comment. A comment section in c is not sent. An
	// unknown call is cti.ErrNotFound.
	UpdateCall(ctx context.Context, id int64, c Call) (*Call, error)

	// Call returns one call record (GET /api/v2/calls/{id}). An unknown
	// call is cti.ErrNotFound.
	Call(ctx context.Context, id int64) (*Call, error)
}

// Ticket is a Zendesk ticket as the sink needs it.
type Ticket struct {
	ID           int64         `json:"id"`
	Subject      string        `json:"subject,omitempty"`
	Status       string        `json:"status,omitempty"` // new, open, pending, hold, solved, closed
	Tags         []string      `json:"tags,omitempty"`
	RequesterID  int64         `json:"requester_id,omitempty"`
	AssigneeID   int64         `json:"assignee_id,omitempty"`
	ExternalID   string        `json:"external_id,omitempty"`
	CustomFields []CustomField `json:"custom_fields,omitempty"`
	CreatedAt    time.Time     `json:"created_at,omitzero"`
	UpdatedAt    time.Time     `json:"updated_at,omitzero"`
}

// HasTag reports whether the ticket carries tag (Zendesk tags are
// lower-case).
func (t *Ticket) HasTag(tag string) bool {
	tag = strings.ToLower(tag)
	for _, x := range t.Tags {
		if strings.ToLower(x) == tag {
			return true
		}
	}
	return false
}

// CustomField is one ticket field value: {"id": 360000000001, "value": ...}.
type CustomField struct {
	ID    int64 `json:"id"`
	Value any   `json:"value"`
}

// CommentInput is the comment of a ticket create or update.
type CommentInput struct {
	// Body is plain text (Zendesk renders it as Markdown-ish text); HTMLBody,
	// when set, is used instead.
	Body     string `json:"body,omitempty"`
	HTMLBody string `json:"html_body,omitempty"`
	// Public false makes an internal note. Always sent.
	Public bool `json:"public"`
	// AuthorID is the Zendesk user the comment is attributed to (0: the
	// API user).
	AuthorID int64 `json:"author_id,omitempty"`
	// Uploads are the tokens of files uploaded with Uploader, attached to
	// this comment. An upload not attached within its token's life (60
	// minutes) is deleted by Zendesk.
	Uploads []string `json:"uploads,omitempty"`
}

// TicketUpdate is one ticket's changes (PUT /api/v2/tickets/{id} or an
// item of update_many).
type TicketUpdate struct {
	// ID is the ticket, used by UpdateMany.
	ID      int64         `json:"id,omitempty"`
	Comment *CommentInput `json:"comment,omitempty"`
	// CustomFields set ticket field values.
	CustomFields []CustomField `json:"custom_fields,omitempty"`
	// AdditionalTags are added to the ticket's tags (existing tags kept).
	AdditionalTags []string `json:"additional_tags,omitempty"`
	// Status changes the ticket status when set.
	Status string `json:"status,omitempty"`
}

// NewTicket is a ticket to create.
type NewTicket struct {
	Subject string        `json:"subject,omitempty"`
	Comment *CommentInput `json:"comment,omitempty"`
	// RequesterID is the end user the ticket is for.
	RequesterID int64 `json:"requester_id,omitempty"`
	// AssigneeID is the agent it is assigned to (0: none).
	AssigneeID int64 `json:"assignee_id,omitempty"`
	// ExternalID is searchable with TicketsByExternalID: the sink sets it
	// to make creating idempotent.
	ExternalID   string        `json:"external_id,omitempty"`
	Tags         []string      `json:"tags,omitempty"`
	CustomFields []CustomField `json:"custom_fields,omitempty"`
}

// ManyCreator is an optional interface of a Zendesk implementation that
// can create several tickets in one request; the sink uses it for a batch
// of new tickets (cti.BatchSink) when the implementation has it.
// *zendesk.Client implements it.
type ManyCreator interface {
	// CreateMany creates up to 100 tickets (POST
	// /api/v2/tickets/create_many with {"tickets":[...]}), then polls the
	// job status until it is completed or failed, or ctx is done. It
	// returns one result per ticket, in order. A request-level failure
	// (429, 5xx, a job failed without results) is an error and no result:
	// some tickets may exist anyway, so a retry looks them up by external
	// id. More than 100 tickets is an error wrapping cti.ErrInvalid.
	CreateMany(ctx context.Context, tickets []NewTicket) ([]CreateResult, error)
}

// CreateResult is the outcome of one ticket of CreateMany.
type CreateResult struct {
	// ID is the new ticket's id; 0 when it was not created.
	ID int64 `json:"id"`
	// Error and Details are Zendesk's reason for a failure.
	Error   string `json:"error,omitempty"`
	Details string `json:"details,omitempty"`
	// Err is nil when the ticket was created; else *FieldError when
	// Zendesk named rejected ticket fields, a *cti.UpstreamError with
	// Status 422 for another rejection, or a temporary *cti.UpstreamError
	// when the job gave no result for the ticket (unknown outcome).
	Err error `json:"-"`
}

// UpdateResult is the outcome of one update of UpdateMany (an entry of the
// job status results).
type UpdateResult struct {
	// ID is the ticket id.
	ID int64 `json:"id"`
	// Success is true when Zendesk updated the ticket ("status": "Updated").
	Success bool `json:"success"`
	// Error and Details are Zendesk's reason for a failure, e.g.
	// "TicketUpdateFailed", "RecordNotFound", "Field 360... is invalid".
	Error   string `json:"error,omitempty"`
	Details string `json:"details,omitempty"`
	// Err is the typed failure when Success is false: wraps cti.ErrNotFound
	// for a deleted ticket, *FieldError when Zendesk named rejected ticket
	// fields, else a *cti.UpstreamError with Status 422.
	Err error `json:"-"`
}

// Comment is a ticket comment as TicketComments returns it.
type Comment struct {
	ID int64 `json:"id"`
	// Type is "Comment", "VoiceComment" or "TpeVoiceComment".
	Type      string    `json:"type,omitempty"`
	Body      string    `json:"body,omitempty"`
	Public    bool      `json:"public"`
	AuthorID  int64     `json:"author_id,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	// CallID is, for a Talk Partner Edition voice comment, the id of the
	// call record it shows (data.call_id); 0 otherwise.
	CallID int64 `json:"call_id,omitempty"`
	// Attachments are the files attached to the comment.
	Attachments []Attachment `json:"attachments,omitempty"`
}

// Attachment is a file attached to a comment, or uploaded to be.
type Attachment struct {
	ID       int64  `json:"id"`
	FileName string `json:"file_name"`
	// ContentURL is where the file is served, without authentication
	// unless the account has private attachments on.
	ContentURL  string `json:"content_url"`
	ContentType string `json:"content_type,omitempty"`
	Size        int64  `json:"size,omitempty"`
}

// Upload is a file uploaded with Uploader, not attached to a comment yet.
type Upload struct {
	// Token attaches it: CommentInput.Uploads.
	Token string `json:"token"`
	// ExpiresAt is when Zendesk deletes it if it is still not attached.
	ExpiresAt  time.Time  `json:"expires_at,omitzero"`
	Attachment Attachment `json:"attachment"`
}

// Uploader is an optional interface of a Zendesk implementation that can
// upload files to attach to comments; the sink uses it to host
// recordings (WithRecordingUpload). *zendesk.Client implements it.
type Uploader interface {
	// Upload uploads size bytes of body as a file named name (POST
	// /api/v2/uploads?filename=name, the raw bytes as the request body,
	// Content-Type contentType). size -1 is unknown: the implementation
	// may then read body into memory first. A file Zendesk refuses (too
	// large: 413; a type the account does not allow: 422) is a
	// *cti.UpstreamError that is not retryable. body is read once: the
	// request is not retried after it has started to send it.
	Upload(ctx context.Context, name, contentType string, size int64, body io.Reader) (*Upload, error)
}

// Call is the Talk Partner Edition standard call object. Times are sent in
// ISO 8601; durations in seconds.
type Call struct {
	ID    int64 `json:"id,omitempty"`     // read-only
	AppID int64 `json:"app_id,omitempty"` // mandatory on create
	// ExternalID is the telephony system's id of the call: the sink sets
	// it to the sync's idempotency marker.
	ExternalID    string    `json:"external_id,omitempty"`
	TicketID      int64     `json:"ticket_id,omitempty"`
	AgentID       int64     `json:"agent_id,omitempty"`
	EndUserID     int64     `json:"end_user_id,omitempty"`
	FromLine      string    `json:"from_line,omitempty"`        // mandatory on create
	ToLine        string    `json:"to_line,omitempty"`          // mandatory on create
	Direction     string    `json:"direction,omitempty"`        // inbound | outbound; mandatory on create
	CallStartedAt time.Time `json:"call_started_at,omitzero"`   // mandatory on create
	CallEndedAt   time.Time `json:"call_ended_at,omitzero"`     // when the call ended
	Duration      int       `json:"duration,omitempty"`         // seconds
	TalkTime      int       `json:"talk_time,omitempty"`        // seconds
	QueueName     string    `json:"queue_name,omitempty"`       // the ACD queue
	Disposition   string    `json:"call_disposition,omitempty"` // the wrap-up
	// CompletionStatus is "completed", "abandoned_in_queue", ...
	CompletionStatus string `json:"completion_status,omitempty"`
	RecordingURL     string `json:"recording_url,omitempty"`
	Transcript       string `json:"transcript,omitempty"`
	Summary          string `json:"summary,omitempty"`
	// Comment, on create, writes the voice comment in the same request.
	Comment *CallComment `json:"comment,omitempty"`
}

// CallComment is the comment section of a create call request: the Talk
// Partner Edition voice comment, which shows the call record's data.
type CallComment struct {
	// AuthorID is the agent the comment is attributed to.
	AuthorID int64 `json:"author_id,omitempty"`
	// Title heads the voice comment, e.g. "Inbound call from +1415...".
	Title string `json:"title,omitempty"`
	// Public false makes it an internal note. Always sent.
	Public bool `json:"public"`
	// DisplayToAgent, when set, opens the ticket in that agent's browser.
	DisplayToAgent int64 `json:"display_to_agent,omitempty"`
}

// FieldError is Zendesk rejecting ticket field values (a 422 whose details
// name the fields). The sink drops the fields and syncs the rest.
type FieldError struct {
	// FieldIDs are the rejected ticket field ids, never empty.
	FieldIDs []int64
	// Message is Zendesk's description, e.g. "Field X is invalid".
	Message string
	// Err is the underlying error (a *cti.UpstreamError with Status 422).
	Err error
}

func (e *FieldError) Error() string {
	ids := make([]string, len(e.FieldIDs))
	for i, id := range e.FieldIDs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	s := "zendesk rejected ticket field " + strings.Join(ids, ", ")
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func (e *FieldError) Unwrap() error { return e.Err }

// RejectedFields returns the ticket field ids err says Zendesk rejected,
// nil when it is not (or does not wrap) a *FieldError.
func RejectedFields(err error) []int64 {
	var fe *FieldError
	if errors.As(err, &fe) {
		return fe.FieldIDs
	}
	return nil
}

// ParseFieldID parses a rule's ticket field id ("360000000001").
func ParseFieldID(s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("ticket field id %q is not a positive number", s)
	}
	return id, nil
}
