package zendesktest

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// User is an emulated Zendesk user (end user, agent or admin).
type User struct {
	ID             int64
	Name           string
	Email          string // primary email (also an email identity)
	Phone          string // primary phone (also a phone_number identity)
	ExternalID     string
	Role           string // "end-user" (default), "agent", "admin"
	OrganizationID int64
	Tags           []string
	Notes          string
	UserFields     map[string]any
	Suspended      bool
	// Identities are extra identities (twitter, facebook, more emails and
	// phone numbers); Email and Phone become identities by themselves.
	Identities []Identity
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Identity is a user identity.
type Identity struct {
	ID       int64
	Type     string // email, phone_number, twitter, facebook, google, ...
	Value    string
	Verified bool
	Primary  bool
}

// Organization is an emulated organization.
type Organization struct {
	ID         int64
	Name       string
	ExternalID string
	Tags       []string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Ticket is an emulated ticket.
type Ticket struct {
	ID             int64
	Subject        string
	Description    string // the first comment's body
	Status         string // new, open, pending, hold, solved, closed
	Priority       string
	Type           string
	RequesterID    int64
	SubmitterID    int64
	AssigneeID     int64
	OrganizationID int64
	ExternalID     string
	Tags           []string
	// CustomFields are ticket field values by field id.
	CustomFields map[int64]any
	// ViaChannel is "api", "web", "voice", ...; ViaID the Talk via id.
	ViaChannel string
	ViaID      int
	Comments   []Comment
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Comment is a ticket comment.
type Comment struct {
	ID       int64
	Type     string // Comment, VoiceComment, TpeVoiceComment
	AuthorID int64
	Body     string
	HTMLBody string
	Public   bool
	// Data holds a voice comment's call data (from, to, recording_url, ...,
	// call_id for a Talk Partner Edition voice comment).
	Data map[string]any
	// Attachments are the files of the uploads the comment named
	// (comment.uploads).
	Attachments []Attachment
	CreatedAt   time.Time
}

// Display is one Talk Partner Edition screen pop the emulator received.
type Display struct {
	AgentID int64
	Kind    string // "user" or "ticket"
	ID      int64
	At      time.Time
}

// Call is a Talk Partner Edition call record: the fields as last written.
type Call struct {
	ID     int64
	Fields map[string]any
}

func (u *User) clone() User {
	c := *u
	c.Tags = slices.Clone(u.Tags)
	c.UserFields = maps.Clone(u.UserFields)
	c.Identities = slices.Clone(u.Identities)
	return c
}

func (t *Ticket) clone() Ticket {
	c := *t
	c.Tags = slices.Clone(t.Tags)
	c.CustomFields = maps.Clone(t.CustomFields)
	c.Comments = slices.Clone(t.Comments)
	for i := range c.Comments {
		c.Comments[i].Data = maps.Clone(t.Comments[i].Data)
		c.Comments[i].Attachments = slices.Clone(t.Comments[i].Attachments)
	}
	return c
}

func (o *Organization) clone() Organization {
	c := *o
	c.Tags = slices.Clone(o.Tags)
	return c
}

// isAgent reports whether the user is an agent or admin.
func (u *User) isAgent() bool { return u.Role == "agent" || u.Role == "admin" }

// normTags lower-cases, trims and de-duplicates tags as Zendesk does.
func normTags(in []string) []string {
	var out []string
	for _, t := range in {
		for _, f := range strings.Fields(t) {
			f = strings.ToLower(f)
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

var statusRank = map[string]int{"new": 0, "open": 1, "pending": 2, "hold": 3, "solved": 4, "closed": 5}
