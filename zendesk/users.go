package zendesk

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	zd "github.com/nukosuke/go-zendesk/zendesk"

	"github.com/cxplay/ctikit/cti"
)

// Zendesk user roles.
const (
	RoleEndUser = "end-user"
	RoleAgent   = "agent"
	RoleAdmin   = "admin"
)

// Zendesk user identity types.
const (
	IdentityEmail    = "email"
	IdentityPhone    = "phone_number"
	IdentityTwitter  = "twitter"
	IdentityFacebook = "facebook"
	IdentityGoogle   = "google"
)

// User is a Zendesk user.
type User struct {
	ID             int64          `json:"id,omitempty"`
	URL            string         `json:"url,omitempty"`
	Name           string         `json:"name"`
	Email          string         `json:"email,omitempty"`
	Phone          string         `json:"phone,omitempty"`
	ExternalID     string         `json:"external_id,omitempty"`
	Role           string         `json:"role,omitempty"`
	OrganizationID int64          `json:"organization_id,omitempty"`
	Tags           []string       `json:"tags,omitempty"`
	Notes          string         `json:"notes,omitempty"`
	UserFields     map[string]any `json:"user_fields,omitempty"`
	Active         bool           `json:"active,omitempty"`
	Suspended      bool           `json:"suspended,omitempty"`
	CreatedAt      time.Time      `json:"created_at,omitzero"`
	UpdatedAt      time.Time      `json:"updated_at,omitzero"`
}

// IsAgent reports whether the user is an agent or an admin.
func (u User) IsAgent() bool { return u.Role == RoleAgent || u.Role == RoleAdmin }

// Identity is a user identity: an email, a phone number, a social account.
type Identity struct {
	ID       int64  `json:"id,omitempty"`
	UserID   int64  `json:"user_id,omitempty"`
	Type     string `json:"type"`
	Value    string `json:"value"`
	Verified bool   `json:"verified,omitempty"`
	Primary  bool   `json:"primary,omitempty"`
}

// NewUser is a user to create. Identities are created with the user, in
// one request (Zendesk makes the first email the primary email).
type NewUser struct {
	Name           string         `json:"name"`
	Email          string         `json:"email,omitempty"`
	Phone          string         `json:"phone,omitempty"`
	ExternalID     string         `json:"external_id,omitempty"`
	Role           string         `json:"role,omitempty"`
	OrganizationID int64          `json:"organization_id,omitempty"`
	Notes          string         `json:"notes,omitempty"`
	Tags           []string       `json:"tags,omitempty"`
	UserFields     map[string]any `json:"user_fields,omitempty"`
	Identities     []Identity     `json:"identities,omitempty"`
	Verified       bool           `json:"verified,omitempty"`
}

// Organization is a Zendesk organization.
type Organization struct {
	ID         int64     `json:"id"`
	URL        string    `json:"url,omitempty"`
	Name       string    `json:"name"`
	ExternalID string    `json:"external_id,omitempty"`
	Tags       []string  `json:"tags,omitempty"`
	CreatedAt  time.Time `json:"created_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at,omitzero"`
}

func fromZD(u zd.User) User {
	return User{
		ID: u.ID, URL: u.URL, Name: u.Name, Email: u.Email, Phone: u.Phone, ExternalID: u.ExternalID,
		Role: u.Role, OrganizationID: u.OrganizationID, Tags: u.Tags, Notes: u.Notes,
		UserFields: u.UserFields, Active: u.Active, Suspended: u.Suspended,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

// User returns user id (GET /api/v2/users/{id}). An unknown user is an
// error wrapping cti.ErrNotFound.
func (c *Client) User(ctx context.Context, id int64) (User, error) {
	u, err := c.z.GetUser(ctx, id)
	if err != nil {
		return User{}, c.fail("show user", err)
	}
	return fromZD(u), nil
}

// FindUsers runs GET /api/v2/users/search?query=... and returns the first
// page (up to 100 users). The query is a Zendesk search expression such
// as `email:"jane@example.com"`; it is URL-encoded here. Like all searches
// it lags behind recent changes.
func (c *Client) FindUsers(ctx context.Context, query string) ([]User, error) {
	users, _, err := c.z.SearchUsers(ctx, &zd.SearchUsersOptions{Query: query, PageOptions: zd.PageOptions{PerPage: 100}})
	if err != nil {
		return nil, c.fail("search users", err)
	}
	out := make([]User, len(users))
	for i, u := range users {
		out[i] = fromZD(u)
	}
	return out, nil
}

// CreateUser creates a user with its identities (POST /api/v2/users).
func (c *Client) CreateUser(ctx context.Context, u NewUser) (User, error) {
	if strings.TrimSpace(u.Name) == "" {
		return User{}, fmt.Errorf("zendesk create user: %w: a name is required", cti.ErrInvalid)
	}
	for i, id := range u.Identities {
		if id.Type == "" || id.Value == "" {
			return User{}, fmt.Errorf("zendesk create user: %w: identity %d needs a type and a value", cti.ErrInvalid, i)
		}
	}
	var out struct {
		User User `json:"user"`
	}
	if err := c.postJSON(ctx, "create user", "/users.json", map[string]any{"user": u}, &out); err != nil {
		return User{}, err
	}
	if out.User.ID == 0 {
		return User{}, fmt.Errorf("zendesk create user: %w", &syntaxError{what: "response", err: fmt.Errorf("no user id")})
	}
	return out.User, nil
}

// UserByKey returns the user whose email or external id (field "email" or
// "external_id") is value, without the search index, which lags by
// minutes: POST /api/v2/users/create_or_update with that key alone, which
// finds the user and changes nothing else. A user that does not exist is
// not created (Zendesk refuses one without a name): the error is
// Zendesk's 422. Use it when a creation was refused because the key is
// taken.
func (c *Client) UserByKey(ctx context.Context, field, value string) (User, error) {
	if field != "email" && field != "external_id" {
		return User{}, fmt.Errorf("zendesk user by key: %w: field %q: want email or external_id", cti.ErrInvalid, field)
	}
	if strings.TrimSpace(value) == "" {
		return User{}, fmt.Errorf("zendesk user by key: %w: an empty %s", cti.ErrInvalid, field)
	}
	var out struct {
		User User `json:"user"`
	}
	if err := c.postJSON(ctx, "user by key", "/users/create_or_update.json", map[string]any{"user": map[string]string{field: value}}, &out); err != nil {
		return User{}, err
	}
	if out.User.ID == 0 {
		return User{}, fmt.Errorf("zendesk user by key: %w", &syntaxError{what: "response", err: fmt.Errorf("no user id")})
	}
	return out.User, nil
}

// Identities returns a user's identities (GET /api/v2/users/{id}/identities).
func (c *Client) Identities(ctx context.Context, userID int64) ([]Identity, error) {
	var out struct {
		Identities []Identity `json:"identities"`
	}
	if err := c.getJSON(ctx, "list identities", "/users/"+itoa(userID)+"/identities.json", &out); err != nil {
		return nil, err
	}
	return out.Identities, nil
}

// AddIdentity adds an identity to a user (POST /api/v2/users/{id}/identities).
func (c *Client) AddIdentity(ctx context.Context, userID int64, id Identity) (Identity, error) {
	var out struct {
		Identity Identity `json:"identity"`
	}
	in := map[string]any{"identity": map[string]string{"type": id.Type, "value": id.Value}}
	if err := c.postJSON(ctx, "add identity", "/users/"+itoa(userID)+"/identities.json", in, &out); err != nil {
		return Identity{}, err
	}
	return out.Identity, nil
}

// Organization returns organization id (GET /api/v2/organizations/{id}).
func (c *Client) Organization(ctx context.Context, id int64) (Organization, error) {
	var out struct {
		Organization Organization `json:"organization"`
	}
	err := c.getJSON(ctx, "show organization", "/organizations/"+itoa(id)+".json", &out)
	return out.Organization, err
}

// SearchOptions are the optional parameters of Search.
type SearchOptions struct {
	SortBy    string // updated_at, created_at, priority, status, ticket_type; "" = relevance
	SortOrder string // asc or desc
	PerPage   int    // 1..100, default 100
	Page      int    // 1-based, default 1
}

// SearchResult is one page of a unified search.
type SearchResult struct {
	Users         []User
	Tickets       []Ticket
	Organizations []Organization
	// Count is the total number of results Zendesk reports.
	Count int
	// More is set when there is a next page.
	More bool
}

// Search runs GET /api/v2/search with query (a full Zendesk search
// expression, e.g. `type:user phone:"+14155551212"`), URL-encoding it so
// that a "+" stays a plus. Result types other than user, ticket and
// organization are skipped (go-zendesk's Search fails on them).
func (c *Client) Search(ctx context.Context, query string, opt SearchOptions) (SearchResult, error) {
	q := url.Values{"query": {query}}
	if opt.SortBy != "" {
		q.Set("sort_by", opt.SortBy)
	}
	if opt.SortOrder != "" {
		q.Set("sort_order", opt.SortOrder)
	}
	per := opt.PerPage
	if per <= 0 || per > 100 {
		per = 100
	}
	q.Set("per_page", itoa(int64(per)))
	if opt.Page > 1 {
		q.Set("page", itoa(int64(opt.Page)))
	}
	body, err := c.z.Get(ctx, "/search.json?"+q.Encode())
	if err != nil {
		return SearchResult{}, c.fail("search", err)
	}
	res, err := decodeSearch(body)
	if err != nil {
		return SearchResult{}, fmt.Errorf("zendesk search: %w", &syntaxError{what: "response", err: err})
	}
	return res, nil
}

// decodeSearch decodes a search response. Each result is decoded once as a
// user, the result type CTI searches ask for, with its result_type; a
// ticket or an organization is decoded again as such. (Reading
// result_type first cost a third pass over every user, on the pop's path.)
func decodeSearch(body []byte) (SearchResult, error) {
	var out struct {
		Raw      []json.RawMessage `json:"results"`
		Count    int               `json:"count"`
		NextPage *string           `json:"next_page"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return SearchResult{}, err
	}
	res := SearchResult{Count: out.Count, More: out.NextPage != nil && *out.NextPage != ""}
	for _, b := range out.Raw {
		var hit struct {
			Type string `json:"result_type"`
			User
		}
		if err := json.Unmarshal(b, &hit); err != nil {
			// Not a user's shape: find the type alone.
			var head struct {
				Type string `json:"result_type"`
			}
			if herr := json.Unmarshal(b, &head); herr != nil {
				return SearchResult{}, herr
			}
			if head.Type == "user" {
				return SearchResult{}, err
			}
			hit.Type, hit.User = head.Type, User{}
		}
		switch hit.Type {
		case "user":
			res.Users = append(res.Users, hit.User)
		case "ticket":
			var t ticketJSON
			if err := json.Unmarshal(b, &t); err != nil {
				return SearchResult{}, err
			}
			res.Tickets = append(res.Tickets, t.public())
		case "organization":
			var o Organization
			if err := json.Unmarshal(b, &o); err != nil {
				return SearchResult{}, err
			}
			res.Organizations = append(res.Organizations, o)
		}
	}
	return res, nil
}

// UserRecord is the cti.Record of a user.
func (c *Client) UserRecord(u User) cti.Record {
	return cti.Record{
		Kind: cti.KindUser, ID: u.ID, Name: u.Name, Email: u.Email, Phone: u.Phone,
		ExternalID: u.ExternalID, OrganizationID: u.OrganizationID, UpdatedAt: u.UpdatedAt,
		URL: c.AgentURL(cti.KindUser, u.ID),
	}
}

// OrganizationRecord is the cti.Record of an organization.
func (c *Client) OrganizationRecord(o Organization) cti.Record {
	return cti.Record{
		Kind: cti.KindOrganization, ID: o.ID, Name: o.Name, ExternalID: o.ExternalID,
		UpdatedAt: o.UpdatedAt, URL: c.AgentURL(cti.KindOrganization, o.ID),
	}
}

// Me returns the authenticated user (GET /api/v2/users/me).
func (c *Client) Me(ctx context.Context) (User, error) {
	var out struct {
		User User `json:"user"`
	}
	err := c.getJSON(ctx, "show current user", "/users/me.json", &out)
	return out.User, err
}

// Ping checks that Zendesk answers and accepts the credentials (for health
// checks): GET /api/v2/users/me must name a signed-in user, not the
// anonymous one Zendesk returns for bad credentials on some accounts.
func (c *Client) Ping(ctx context.Context) error {
	u, err := c.Me(ctx)
	if err != nil {
		return err
	}
	if u.ID == 0 {
		return &cti.UpstreamError{Service: "zendesk", Op: "ping", Status: 401, Err: fmt.Errorf("not signed in: check the email and API token")}
	}
	return nil
}
