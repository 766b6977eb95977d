// Package matchtest is a conformance suite for cti.Matcher
// implementations, in the spirit of testing/slogtest: an integrator who
// writes their own matcher (or wraps one) proves it keeps the contract the
// engine relies on.
//
//	func TestMyMatcher(t *testing.T) {
//		matchtest.TestMatcher(t, func(t *testing.T, users []matchtest.User) cti.Matcher {
//			backend := newBackendWith(t, users) // make these users exist
//			return mymatcher.New(backend)
//		})
//	}
//
// The suite checks: no match is an empty result with a nil error (or
// cti.ErrNoMatch); a phone number in E.164 finds its user; emails match
// case-insensitively; results are most recently updated first, at most
// cti.MaxResults with More set beyond; Query.WithOpenTickets fills each
// user's unsolved tickets, most recently updated first; an external_id
// attribute finds its user; a done context ends the call with its error;
// returned records are the caller's own (mutating them changes nothing
// later); absurd input gives an error or nothing, never a panic; and
// concurrent calls are safe (run the suite with -race).
//
// A matcher that does not support an identity kind or target returns an
// error wrapping errors.ErrUnsupported for it; the subtests needing it are
// then skipped.
package matchtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// User is a customer the matcher under test must be able to find.
type User struct {
	ID         int64
	Name       string
	Email      string // as stored, mixed case allowed
	Phone      string // E.164
	ExternalID string
	UpdatedAt  time.Time
	// Tickets are the tickets the user requested, any status.
	Tickets []Ticket
}

// Ticket is a ticket requested by a User.
type Ticket struct {
	ID        int64
	Subject   string
	Status    string // new, open, pending, hold, solved, closed
	UpdatedAt time.Time
}

// Setup makes users exist in the matcher's backend and returns the matcher
// to test. It is called once per subtest, possibly in parallel.
type Setup func(t *testing.T, users []User) cti.Matcher

// Base is the time the suite's UpdatedAt values count from.
var Base = time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)

// TestMatcher runs the conformance suite against the matchers setup
// returns.
func TestMatcher(t *testing.T, setup Setup) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*testing.T, Setup)
	}{
		{"NoMatch", testNoMatch},
		{"Phone", testPhone},
		{"EmailCaseInsensitive", testEmail},
		{"Order", testOrder},
		{"Cap", testCap},
		{"OpenTickets", testOpenTickets},
		{"ExternalID", testExternalID},
		{"ContextDone", testContextDone},
		{"OwnCopies", testOwnCopies},
		{"AbsurdInput", testAbsurd},
		{"Concurrent", testConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, setup)
		})
	}
}

func phone(i int) string { return fmt.Sprintf("+1415555%04d", i) }

func phoneID(v string) cti.Identity { return cti.Identity{Kind: cti.IdentifyPhone, Value: v} }

// match runs m and fails on an error, skipping on ErrUnsupported; ErrNoMatch
// counts as an empty result.
func match(t *testing.T, m cti.Matcher, q cti.Query) cti.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := m.Match(ctx, q)
	switch {
	case errors.Is(err, errors.ErrUnsupported):
		t.Skipf("matcher does not support %s: %v", q.Identity.Key(), err)
	case errors.Is(err, cti.ErrNoMatch):
		if len(res.Records) > 0 {
			t.Fatalf("Match(%s) returned ErrNoMatch with %d records", q.Identity.Key(), len(res.Records))
		}
		return cti.Result{}
	case err != nil:
		t.Fatalf("Match(%s): %v", q.Identity.Key(), err)
	}
	return res
}

func ids(recs []cti.Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func wantIDs(t *testing.T, what string, got []cti.Record, want ...int64) {
	t.Helper()
	g := ids(got)
	if fmt.Sprint(g) != fmt.Sprint(want) {
		t.Errorf("%s: got ids %v, want %v", what, g, want)
	}
}

func testNoMatch(t *testing.T, setup Setup) {
	m := setup(t, []User{{ID: 1, Name: "Ann", Email: "ann@example.com", Phone: phone(1), UpdatedAt: Base}})
	for _, id := range []cti.Identity{
		phoneID(phone(2)),
		{Kind: cti.IdentifyEmail, Value: "nobody@example.com"},
	} {
		res := match(t, m, cti.Query{Identity: id})
		if len(res.Records) != 0 || res.More {
			t.Errorf("Match(%s) = %d records (more %v), want none", id.Key(), len(res.Records), res.More)
		}
	}
}

func testPhone(t *testing.T, setup Setup) {
	m := setup(t, []User{
		{ID: 1, Name: "Ann", Phone: phone(1), UpdatedAt: Base},
		{ID: 2, Name: "Bob", Phone: phone(2), UpdatedAt: Base},
	})
	res := match(t, m, cti.Query{Identity: phoneID(phone(2))})
	wantIDs(t, "phone "+phone(2), res.Records, 2)
	if len(res.Records) == 1 && res.Records[0].Kind != cti.KindUser {
		t.Errorf("record kind = %q, want user", res.Records[0].Kind)
	}
}

func testEmail(t *testing.T, setup Setup) {
	m := setup(t, []User{
		{ID: 1, Name: "Jane", Email: "Jane.Doe@Example.com", UpdatedAt: Base},
		{ID: 2, Name: "John", Email: "john@example.com", UpdatedAt: Base},
	})
	for _, v := range []string{"Jane.Doe@Example.com", "jane.doe@example.com", "JANE.DOE@EXAMPLE.COM"} {
		res := match(t, m, cti.Query{Identity: cti.Identity{Kind: cti.IdentifyEmail, Value: v}})
		wantIDs(t, "email "+v, res.Records, 1)
	}
}

func testOrder(t *testing.T, setup Setup) {
	shared := phone(7)
	// Stored in an order unrelated to UpdatedAt.
	var users []User
	for i, h := range []int{3, 1, 4, 0, 2} {
		users = append(users, User{ID: int64(10 + i), Name: fmt.Sprint("U", i), Phone: shared, UpdatedAt: Base.Add(time.Duration(h) * time.Hour)})
	}
	m := setup(t, users)
	res := match(t, m, cti.Query{Identity: phoneID(shared)})
	// Most recently updated first: hours 4, 3, 2, 1, 0.
	wantIDs(t, "shared phone", res.Records, 12, 10, 14, 11, 13)
	if res.More {
		t.Error("More set with 5 results")
	}
}

func testCap(t *testing.T, setup Setup) {
	shared := phone(9)
	const n = cti.MaxResults + 5
	var users []User
	for i := range n {
		// Interleave the update times so that storage order is not the answer.
		h := (i * 7) % n
		users = append(users, User{ID: int64(100 + i), Name: fmt.Sprint("C", i), Phone: shared, UpdatedAt: Base.Add(time.Duration(h) * time.Minute)})
	}
	m := setup(t, users)
	res := match(t, m, cti.Query{Identity: phoneID(shared)})
	if len(res.Records) != cti.MaxResults || !res.More {
		t.Fatalf("%d matching users: got %d records, More %v; want %d and More", n, len(res.Records), res.More, cti.MaxResults)
	}
	for i, r := range res.Records {
		want := Base.Add(time.Duration(n-1-i) * time.Minute)
		if !r.UpdatedAt.Equal(want) {
			t.Errorf("record %d (id %d) updated %v, want %v: not the most recently updated, in order", i, r.ID, r.UpdatedAt, want)
		}
	}
}

func testOpenTickets(t *testing.T, setup Setup) {
	tk := func(id int64, status string, h int) Ticket {
		return Ticket{ID: id, Subject: fmt.Sprint("T", id), Status: status, UpdatedAt: Base.Add(time.Duration(h) * time.Hour)}
	}
	m := setup(t, []User{{
		ID: 1, Name: "Ann", Phone: phone(1), UpdatedAt: Base,
		Tickets: []Ticket{tk(501, "solved", 9), tk(502, "open", 2), tk(503, "pending", 5), tk(504, "closed", 8), tk(505, "new", 1), tk(506, "hold", 3)},
	}})
	res := match(t, m, cti.Query{Identity: phoneID(phone(1)), WithOpenTickets: true})
	if len(res.Records) != 1 {
		t.Fatalf("got %d records, want 1", len(res.Records))
	}
	open := res.Records[0].OpenTickets
	wantIDs(t, "open tickets", open, 503, 506, 502, 505)
	for _, o := range open {
		if o.Kind != cti.KindTicket || !cti.Unsolved(o.Status) {
			t.Errorf("open ticket %d: kind %q status %q", o.ID, o.Kind, o.Status)
		}
	}
}

func testExternalID(t *testing.T, setup Setup) {
	m := setup(t, []User{
		{ID: 1, Name: "Ann", ExternalID: "CRM-0001", UpdatedAt: Base},
		{ID: 2, Name: "Bob", ExternalID: "CRM-0002", UpdatedAt: Base},
	})
	id := cti.Identity{Kind: cti.IdentifyAttribute, Attribute: "AccountNumber", Target: cti.TargetExternalID, Value: "CRM-0002"}
	res := match(t, m, cti.Query{Identity: id})
	wantIDs(t, "external_id CRM-0002", res.Records, 2)
}

func testContextDone(t *testing.T, setup Setup) {
	m := setup(t, []User{{ID: 1, Name: "Ann", Phone: phone(1), UpdatedAt: Base}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := m.Match(ctx, cti.Query{Identity: phoneID(phone(1))})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Match with a canceled context: err = %v, want context.Canceled", err)
	}
	if len(res.Records) != 0 {
		t.Errorf("Match with a canceled context returned %d records", len(res.Records))
	}
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	if _, err := m.Match(dctx, cti.Query{Identity: phoneID(phone(1))}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Match past its deadline: err = %v, want context.DeadlineExceeded", err)
	}
}

func testOwnCopies(t *testing.T, setup Setup) {
	m := setup(t, []User{{ID: 1, Name: "Ann", Phone: phone(1), UpdatedAt: Base,
		Tickets: []Ticket{{ID: 9, Subject: "T", Status: "open", UpdatedAt: Base}}}})
	q := cti.Query{Identity: phoneID(phone(1)), WithOpenTickets: true}
	res := match(t, m, q)
	if len(res.Records) != 1 || len(res.Records[0].OpenTickets) != 1 {
		t.Fatalf("got %+v, want one user with one open ticket", res)
	}
	res.Records[0].Name = "changed"
	res.Records[0].OpenTickets[0].Status = "solved"
	res.Records[0].OpenTickets = append(res.Records[0].OpenTickets, cti.Record{ID: 99})
	again := match(t, m, q)
	if len(again.Records) != 1 || again.Records[0].Name != "Ann" || len(again.Records[0].OpenTickets) != 1 || again.Records[0].OpenTickets[0].Status != "open" {
		t.Errorf("after the caller modified a result, a new Match returned %+v", again)
	}
}

func testAbsurd(t *testing.T, setup Setup) {
	m := setup(t, []User{{ID: 1, Name: "Ann", Email: "ann@example.com", Phone: phone(1), UpdatedAt: Base}})
	for _, id := range []cti.Identity{
		phoneID(strings.Repeat("9", 100000)),
		phoneID("\x00\xff\"; DROP TABLE users; --"),
		phoneID(`" OR phone:* OR "`),
		{Kind: cti.IdentifyEmail, Value: strings.Repeat("a", 5000) + "@example.com"},
		{Kind: cti.IdentifyEmail, Value: `ann@example.com" email:"*`},
		{Kind: cti.IdentifyAttribute, Attribute: "A", Target: cti.TargetExternalID, Value: strings.Repeat("x", 1<<20)},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := m.Match(ctx, cti.Query{Identity: id})
		cancel()
		if err == nil && len(res.Records) > 0 {
			t.Errorf("Match(%.40q...) found %v: absurd input must find nothing (or fail)", id.Value, ids(res.Records))
		}
	}
}

func testConcurrent(t *testing.T, setup Setup) {
	const n = 8
	var users []User
	for i := range n {
		users = append(users, User{ID: int64(i + 1), Name: fmt.Sprint("U", i), Email: fmt.Sprintf("u%d@example.com", i),
			Phone: phone(i), UpdatedAt: Base.Add(time.Duration(i) * time.Minute),
			Tickets: []Ticket{{ID: int64(1000 + i), Status: "open", UpdatedAt: Base}}})
	}
	m := setup(t, users)
	var wg sync.WaitGroup
	errs := make(chan error, 64*4)
	for g := range 64 {
		wg.Go(func() {
			i := g % n
			for _, q := range []cti.Query{
				{Identity: phoneID(phone(i)), WithOpenTickets: g%2 == 0},
				{Identity: cti.Identity{Kind: cti.IdentifyEmail, Value: fmt.Sprintf("U%d@EXAMPLE.com", i)}},
			} {
				res, err := m.Match(context.Background(), q)
				if errors.Is(err, errors.ErrUnsupported) {
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("%s: %w", q.Identity.Key(), err)
					continue
				}
				if len(res.Records) != 1 || res.Records[0].ID != int64(i+1) {
					errs <- fmt.Errorf("%s: got ids %v, want [%d]", q.Identity.Key(), ids(res.Records), i+1)
				}
				if q.WithOpenTickets && len(res.Records) == 1 && len(res.Records[0].OpenTickets) != 1 {
					errs <- fmt.Errorf("%s: got %d open tickets, want 1", q.Identity.Key(), len(res.Records[0].OpenTickets))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
