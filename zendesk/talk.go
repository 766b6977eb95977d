package zendesk

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// Talk Partner Edition via ids of tickets created through
// POST /api/v2/channels/voice/tickets.
const (
	ViaVoicemail    = 44
	ViaInboundCall  = 45
	ViaOutboundCall = 46
)

// DisplayUser opens user userID's profile in agent agentID's browser
// (POST /api/v2/channels/voice/agents/{agent_id}/users/{user_id}/display).
// An unknown agent or user is an error wrapping cti.ErrNotFound.
func (c *Client) DisplayUser(ctx context.Context, agentID, userID int64) error {
	_, err := c.z.Post(ctx, "/channels/voice/agents/"+itoa(agentID)+"/users/"+itoa(userID)+"/display.json", struct{}{})
	return c.fail("display user", err)
}

// DisplayTicket opens ticket ticketID in agent agentID's browser
// (POST /api/v2/channels/voice/agents/{agent_id}/tickets/{ticket_id}/display).
func (c *Client) DisplayTicket(ctx context.Context, agentID, ticketID int64) error {
	_, err := c.z.Post(ctx, "/channels/voice/agents/"+itoa(agentID)+"/tickets/"+itoa(ticketID)+"/display.json", struct{}{})
	return c.fail("display ticket", err)
}

// VoiceComment is the voice comment of a voicemail (or finished call)
// ticket: the recording and call details.
type VoiceComment struct {
	From              string    `json:"from"`
	To                string    `json:"to"`
	RecordingURL      string    `json:"recording_url"`
	StartedAt         time.Time `json:"started_at"`
	CallDuration      int       `json:"call_duration"` // seconds
	AnsweredByID      int64     `json:"answered_by_id,omitempty"`
	TranscriptionText string    `json:"transcription_text,omitempty"`
	Location          string    `json:"location,omitempty"`
}

// VoiceTicket is a ticket created through Talk Partner Edition.
type VoiceTicket struct {
	NewTicket
	// ViaID is ViaInboundCall, ViaOutboundCall or ViaVoicemail.
	ViaID int
	// VoiceComment is required for a voicemail; omit it for a live call
	// (the recording does not exist yet).
	VoiceComment *VoiceComment
	// DisplayToAgent, when set, opens the new ticket in that agent's
	// browser in the same request.
	DisplayToAgent int64
}

// CreateVoiceTicket creates a ticket through POST
// /api/v2/channels/voice/tickets. The request carries no idempotency key:
// a 5xx is not retried (see DefaultCheckRetry).
func (c *Client) CreateVoiceTicket(ctx context.Context, vt VoiceTicket) (*Ticket, error) {
	tj, err := c.createVoiceTicket(ctx, vt)
	if err != nil {
		return nil, err
	}
	p := tj.public()
	return &p, nil
}

func (c *Client) createVoiceTicket(ctx context.Context, vt VoiceTicket) (ticketJSON, error) {
	const op = "create voice ticket"
	switch vt.ViaID {
	case ViaInboundCall, ViaOutboundCall:
	case ViaVoicemail:
		if vt.VoiceComment == nil {
			return ticketJSON{}, fmt.Errorf("zendesk %s: %w: a voicemail ticket needs a voice comment", op, cti.ErrInvalid)
		}
	default:
		return ticketJSON{}, fmt.Errorf("zendesk %s: %w: via id %d: want 44 (voicemail), 45 (inbound call) or 46 (outbound call)", op, cti.ErrInvalid, vt.ViaID)
	}
	type ticket struct {
		NewTicket
		ViaID        int           `json:"via_id"`
		VoiceComment *VoiceComment `json:"voice_comment,omitempty"`
	}
	in := struct {
		DisplayToAgent int64  `json:"display_to_agent,omitempty"`
		Ticket         ticket `json:"ticket"`
	}{vt.DisplayToAgent, ticket{vt.NewTicket, vt.ViaID, vt.VoiceComment}}
	var out struct {
		Ticket ticketJSON `json:"ticket"`
	}
	if err := c.postJSON(ctx, op, "/channels/voice/tickets.json", in, &out); err != nil {
		return ticketJSON{}, err
	}
	if out.Ticket.ID == 0 {
		return ticketJSON{}, fmt.Errorf("zendesk %s: %w", op, &syntaxError{what: "response", err: errors.New("no ticket id")})
	}
	return out.Ticket, nil
}

// CreateCall creates a Talk Partner Edition call record (POST
// /api/v2/calls with {"call": {...}}); with c.Comment it also writes the
// voice comment (creating a ticket when c.TicketID is 0). c.AppID defaults
// to the client's WithAppID.
func (c *Client) CreateCall(ctx context.Context, call Call) (*Call, error) {
	const op = "create call"
	if call.AppID == 0 {
		call.AppID = c.appID
	}
	call.ID = 0
	var missing []string
	if call.AppID == 0 {
		missing = append(missing, "app_id (set WithAppID)")
	}
	if call.FromLine == "" {
		missing = append(missing, "from_line")
	}
	if call.ToLine == "" {
		missing = append(missing, "to_line")
	}
	if call.Direction == "" {
		missing = append(missing, "direction")
	}
	if call.CallStartedAt.IsZero() {
		missing = append(missing, "call_started_at")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("zendesk %s: %w: missing %v", op, cti.ErrInvalid, missing)
	}
	var out struct {
		Call Call `json:"call"`
	}
	if err := c.postJSON(ctx, op, "/calls", map[string]any{"call": call}, &out); err != nil {
		return nil, err
	}
	return &out.Call, nil
}

// UpdateCall updates call record id (PATCH /api/v2/calls/{id}) with the
// non-zero fields of call; its ID, AppID and Comment are not sent.
func (c *Client) UpdateCall(ctx context.Context, id int64, call Call) (*Call, error) {
	call.ID, call.AppID, call.Comment = 0, 0, nil
	var out struct {
		Call Call `json:"call"`
	}
	if err := c.patchJSON(ctx, "update call", "/calls/"+itoa(id), map[string]any{"call": call}, &out); err != nil {
		return nil, err
	}
	return &out.Call, nil
}

// Call returns call record id (GET /api/v2/calls/{id}).
func (c *Client) Call(ctx context.Context, id int64) (*Call, error) {
	var out struct {
		Call Call `json:"call"`
	}
	if err := c.getJSON(ctx, "show call", "/calls/"+itoa(id), &out); err != nil {
		return nil, err
	}
	return &out.Call, nil
}
