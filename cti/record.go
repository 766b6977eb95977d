package cti

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// RecordKind is the kind of a Zendesk record.
type RecordKind string

// Record kinds.
const (
	KindUser         RecordKind = "user"
	KindTicket       RecordKind = "ticket"
	KindOrganization RecordKind = "organization"
)

// Record is a Zendesk user, ticket or organization: a candidate a matcher
// found, something a popper showed or created.
type Record struct {
	Kind RecordKind `json:"kind"`
	ID   int64      `json:"id"`
	// Name is the user's or organization's name, or the ticket's subject.
	Name           string    `json:"name,omitempty"`
	Email          string    `json:"email,omitempty"`
	Phone          string    `json:"phone,omitempty"`
	ExternalID     string    `json:"externalId,omitempty"`
	Status         string    `json:"status,omitempty"`      // ticket status
	RequesterID    int64     `json:"requesterId,omitempty"` // ticket requester
	OrganizationID int64     `json:"organizationId,omitempty"`
	UpdatedAt      time.Time `json:"updatedAt,omitzero"`
	URL            string    `json:"url,omitempty"`
	// OpenTickets, on a user the matcher was asked for tickets
	// (Query.WithOpenTickets), are the user's unsolved tickets (new, open,
	// pending, hold), most recently updated first.
	OpenTickets []Record `json:"openTickets,omitempty"`
}

// Ref is a short printable reference such as "user/123".
func (r Record) Ref() string { return string(r.Kind) + "/" + strconv.FormatInt(r.ID, 10) }

// Same reports whether r and o are the same Zendesk object.
func (r Record) Same(o Record) bool { return r.Kind == o.Kind && r.ID == o.ID }

// equal reports whether r and o hold the same values.
func (r *Record) equal(o *Record) bool {
	return r.Kind == o.Kind && r.ID == o.ID && r.Name == o.Name && r.Email == o.Email && r.Phone == o.Phone &&
		r.ExternalID == o.ExternalID && r.Status == o.Status && r.RequesterID == o.RequesterID &&
		r.OrganizationID == o.OrganizationID && r.UpdatedAt == o.UpdatedAt && r.URL == o.URL &&
		(r.OpenTickets == nil) == (o.OpenTickets == nil) &&
		slices.EqualFunc(r.OpenTickets, o.OpenTickets, func(a, b Record) bool { return a.equal(&b) })
}

// Unsolved reports whether a ticket status counts as open: new, open,
// pending or hold.
func Unsolved(status string) bool {
	switch status {
	case "new", "open", "pending", "hold":
		return true
	}
	return false
}

// IdentityKind is the kind of customer identifier a rule searches by.
type IdentityKind string

// Identity kinds, as written in a rule's identify list.
const (
	IdentifyPhone     IdentityKind = "phone"
	IdentifyEmail     IdentityKind = "email"
	IdentifySocial    IdentityKind = "social"
	IdentifyAttribute IdentityKind = "attribute"
)

// Attribute targets: where the value of a participant attribute is looked
// up. A user field is written "user_field.KEY".
const (
	TargetExternalID   = "external_id"
	TargetEmail        = "email"
	TargetPhone        = "phone"
	TargetTicketID     = "ticket_id"
	TargetOrganization = "organization" // organization external_id
	TargetUserField    = "user_field."  // prefix: user_field.KEY
)

// Identity is one customer identifier to search by, with its value taken
// from a conversation.
type Identity struct {
	Kind  IdentityKind `json:"kind"`
	Value string       `json:"value"`
	// Channel is the social channel of an IdentifySocial identity.
	Channel Channel `json:"channel,omitempty"`
	// Attribute is the participant attribute an IdentifyAttribute value came from.
	Attribute string `json:"attribute,omitempty"`
	// Target is where an IdentifyAttribute value is looked up (see Target*).
	Target string `json:"target,omitempty"`
}

// Key is a stable cache key for the identity.
func (i Identity) Key() string {
	var b strings.Builder
	b.WriteString(string(i.Kind))
	b.WriteByte(':')
	if i.Kind == IdentifySocial {
		b.WriteString(string(i.Channel))
		b.WriteByte(':')
	}
	if i.Kind == IdentifyAttribute {
		b.WriteString(i.Target)
		b.WriteByte(':')
	}
	b.WriteString(i.Value)
	return b.String()
}

func (i Identity) String() string { return i.Key() }

// Query asks a Matcher for the records behind one identity.
type Query struct {
	Identity Identity
	// WithOpenTickets asks for each user's unsolved tickets (Record.OpenTickets).
	WithOpenTickets bool
	// Conversation is the conversation being identified, for matchers that
	// look at more than the identity. Read-only; may be nil.
	Conversation *Conversation
}

// MaxResults is the number of candidates a matcher returns at most; it sets
// Result.More when there were more.
const MaxResults = 25

// Result is what a matcher found, most recently updated first.
type Result struct {
	Records []Record `json:"records,omitempty"`
	// More is set when the search found more than Records holds.
	More bool `json:"more,omitempty"`
}

// Agent is the Zendesk agent behind a Genesys user.
type Agent struct {
	ID    int64  `json:"id"` // Zendesk user id
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
}

// Action is what a pop-up decision asks for.
type Action string

// Decision actions.
const (
	ActionNone   Action = "none"   // show nothing
	ActionShow   Action = "show"   // show Decision.Record
	ActionChoose Action = "choose" // let the agent pick one of Decision.Candidates
	ActionCreate Action = "create" // create per Decision.Create, then show it
)

// CreateSpec says what to create when a decision is ActionCreate.
type CreateSpec struct {
	// User asks for a new end user built from the conversation's customer.
	User bool `json:"user,omitempty"`
	// Ticket asks for a new ticket; its requester is the created user, or
	// Requester when set.
	Ticket    bool    `json:"ticket,omitempty"`
	Requester *Record `json:"requester,omitempty"`
	// Subject of the new ticket.
	Subject string `json:"subject,omitempty"`
	// Voice asks for a Talk Partner Edition voice ticket (voice media).
	Voice bool `json:"voice,omitempty"`
}

// Decision is a pop-up strategy's pure verdict for one agent leg.
type Decision struct {
	Action     Action     `json:"action"`
	Record     *Record    `json:"record,omitempty"`     // ActionShow
	Candidates []Record   `json:"candidates,omitempty"` // ActionChoose
	Create     CreateSpec `json:"create,omitzero"`      // ActionCreate
	// Reason explains the decision for logs and the agent panel.
	Reason string `json:"reason,omitempty"`
}
