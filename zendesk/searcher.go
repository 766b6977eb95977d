package zendesk

import (
	"context"
	"errors"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
)

// Searcher is the client seen as a match.Searcher (and
// match.IdentityLister): the searches package match runs to identify a
// customer. It is a separate type because match.Searcher.Ticket and
// syncmap.TicketAPI.Ticket, both on the Client otherwise, differ.
// Safe for concurrent use.
type Searcher struct{ c *Client }

// Searcher returns the client's match.Searcher.
func (c *Client) Searcher() *Searcher { return &Searcher{c: c} }

// SearchUsers runs GET /api/v2/search?query=type:user QUERY sorted by
// updated_at descending and returns the first page (at most 100 users).
func (s *Searcher) SearchUsers(ctx context.Context, query string) ([]cti.Record, bool, error) {
	res, err := s.c.Search(ctx, "type:user "+query, SearchOptions{SortBy: "updated_at", SortOrder: "desc", PerPage: 100})
	if err != nil {
		return nil, false, err
	}
	out := make([]cti.Record, len(res.Users))
	for i, u := range res.Users {
		out[i] = s.c.UserRecord(u)
	}
	return out, res.More || res.Count > len(out), nil
}

// SearchOrganizations is SearchUsers for type:organization.
func (s *Searcher) SearchOrganizations(ctx context.Context, query string) ([]cti.Record, bool, error) {
	res, err := s.c.Search(ctx, "type:organization "+query, SearchOptions{SortBy: "updated_at", SortOrder: "desc", PerPage: 100})
	if err != nil {
		return nil, false, err
	}
	out := make([]cti.Record, len(res.Organizations))
	for i, o := range res.Organizations {
		out[i] = s.c.OrganizationRecord(o)
	}
	return out, res.More || res.Count > len(out), nil
}

// OpenTickets returns the user's unsolved requested tickets, most recently
// updated first; an unknown user has none.
func (s *Searcher) OpenTickets(ctx context.Context, userID int64) ([]cti.Record, error) {
	out, err := s.c.UnsolvedTickets(ctx, userID)
	if errors.Is(err, cti.ErrNotFound) {
		return []cti.Record{}, nil
	}
	if out == nil && err == nil {
		out = []cti.Record{}
	}
	return out, err
}

// Ticket returns ticket id as a record; an unknown ticket wraps
// cti.ErrNotFound.
func (s *Searcher) Ticket(ctx context.Context, id int64) (cti.Record, error) {
	t, err := s.c.ticket(ctx, id)
	if err != nil {
		return cti.Record{}, err
	}
	return t.record(s.c), nil
}

// UserIdentities returns the user's identities; an unknown user has none.
func (s *Searcher) UserIdentities(ctx context.Context, userID int64) ([]match.UserIdentity, error) {
	ids, err := s.c.Identities(ctx, userID)
	if errors.Is(err, cti.ErrNotFound) {
		return []match.UserIdentity{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]match.UserIdentity, len(ids))
	for i, id := range ids {
		out[i] = match.UserIdentity{Type: id.Type, Value: id.Value}
	}
	return out, nil
}
