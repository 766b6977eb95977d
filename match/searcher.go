package match

import (
	"context"

	"github.com/cxplay/ctikit/cti"
)

// Searcher is what package match needs from Zendesk. *zendesk.Client
// implements it; tests use an in-memory directory or the zendesktest
// emulator.
//
// # Queries
//
// SearchUsers and SearchOrganizations take a Zendesk search expression
// (the syntax of GET /api/v2/search and /api/v2/users/search) WITHOUT the
// "type:" keyword: the implementation adds type:user / type:organization
// when it uses /api/v2/search, and does all URL encoding. The matcher only
// writes these forms:
//
//	phone:"+14155551212" phone:"(415) 555-1212"   repeated keyword: OR (any of the values)
//	email:"jane@example.com"                      case-insensitive
//	external_id:"A-1234"
//	organization:12345                            users of organization 12345
//	plan_code:"GOLD-7"                            a custom user field, by its key
//	"some handle"                                 quoted free text
//
// Repeating the same keyword ORs its values, different keywords AND, as
// Zendesk search does (tags:a tags:b finds either tag). Values are double
// quoted and never contain a double quote. Phone values match exactly, as
// strings: "+1 (415)-555-1212" does not find "+14155551212".
//
// # Contract
//
// Every method is safe for concurrent use and honours ctx (cancellation
// and deadline end the call with an error wrapping ctx.Err()). Failures are
// errors, ideally *cti.UpstreamError (wrapped or not) so that callers can
// tell a retryable failure (429, 5xx, timeouts) from a permanent one.
// Records carry Kind, ID, Name, UpdatedAt and, where Zendesk has them,
// Email, Phone, ExternalID, OrganizationID, URL (and Status, RequesterID on
// tickets). Implementations hold no per-call state; the matcher adds no
// retries of its own (put them in the client's transport).
type Searcher interface {
	// SearchUsers runs a user search and returns the first page: at most
	// 100 users, most recently updated first (sort_by=updated_at,
	// sort_order=desc), and more=true when Zendesk has more results than
	// returned. No result is an empty slice and a nil error. Zendesk's
	// search index lags: users created in the last minutes may be missing.
	SearchUsers(ctx context.Context, query string) (users []cti.Record, more bool, err error)

	// SearchOrganizations is SearchUsers for organizations (Kind
	// organization records): first page, at most 100, most recently
	// updated first, more=true when there are more.
	SearchOrganizations(ctx context.Context, query string) (orgs []cti.Record, more bool, err error)

	// OpenTickets returns the unsolved tickets (status new, open, pending
	// or hold: cti.Unsolved) requested by user userID, most recently
	// updated first, at most 100. It reads the user's requested tickets
	// (GET /api/v2/users/{id}/tickets/requested), not the search index, so
	// a ticket created a moment ago is included. A user with no unsolved
	// ticket, or no such user, gives an empty slice and a nil error.
	OpenTickets(ctx context.Context, userID int64) ([]cti.Record, error)

	// Ticket returns ticket id (GET /api/v2/tickets/{id}), any status. A
	// ticket that does not exist or was deleted gives an error wrapping
	// cti.ErrNotFound.
	Ticket(ctx context.Context, id int64) (cti.Record, error)
}

// IdentityLister is an optional interface of a Searcher: the user
// identities of a user (GET /api/v2/users/{id}/identities). When the
// Searcher has it, social identities (X, Facebook, messaging ids) are
// verified against the candidates' identities, so a free-text hit on a
// name or a note does not count as a match. Same concurrency and error
// contract as Searcher; an unknown user gives an empty slice.
type IdentityLister interface {
	UserIdentities(ctx context.Context, userID int64) ([]UserIdentity, error)
}

// UserIdentity is one Zendesk user identity.
type UserIdentity struct {
	// Type is the Zendesk identity type: "email", "twitter", "facebook",
	// "google", "phone_number", "agent_forwarding", "any_channel",
	// "foreign", "sdk" or "messaging".
	Type string `json:"type"`
	// Value is the identifier: an address, a handle, a platform id.
	Value string `json:"value"`
}
