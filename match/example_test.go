package match_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/match/internal/zdfake"
)

// trace is a middleware that prints when a query enters and leaves it.
func trace(name string) match.Middleware {
	return func(next cti.Matcher) cti.Matcher {
		return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
			fmt.Println(name, "in")
			res, err := next.Match(ctx, q)
			fmt.Println(name, "out")
			return res, err
		})
	}
}

// Chain(a, b)(m) is a(b(m)): the first middleware sees the query first and
// the result last.
func ExampleChain() {
	m := cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
		fmt.Println("matcher")
		return cti.Result{}, nil
	})
	wrapped := match.Chain(trace("outer"), trace("inner"))(m)
	wrapped.Match(context.Background(), cti.Query{Identity: cti.Identity{Kind: cti.IdentifyPhone, Value: "+14155551212"}})
	// Output:
	// outer in
	// inner in
	// matcher
	// inner out
	// outer out
}

// A matcher as the reference server wires it: the Zendesk matcher over a
// Searcher (*zendesk.Client's Searcher() in production), a cache in front
// so that a burst of lookups for one caller makes one search.
func Example() {
	dir := &zdfake.Dir{} // stands in for zendesk.Client.Searcher()
	dir.AddUser(zdfake.User{ID: 42, Name: "Jane Doe", Phone: "(415) 555-1212"})
	dir.AddTicket(zdfake.Ticket{ID: 7, Subject: "Refund", Status: "open", RequesterID: 42})

	z, err := match.NewZendesk(dir, match.WithRegion("US"))
	if err != nil {
		panic(err)
	}
	m := match.Chain(match.Cache(match.CacheOptions{}))(z)

	q := cti.Query{Identity: cti.Identity{Kind: cti.IdentifyPhone, Value: "tel:+14155551212"}, WithOpenTickets: true}
	var wg sync.WaitGroup
	for range 10 { // the same call seen on the queue and user topics, by several agents
		wg.Go(func() { m.Match(context.Background(), q) })
	}
	wg.Wait()
	res, _ := m.Match(context.Background(), q)
	u := res.Records[0]
	fmt.Println(u.Ref(), u.Name, "open:", u.OpenTickets[0].Ref())
	fmt.Println("searches:", len(dir.Queries()))
	// Output:
	// user/42 Jane Doe open: ticket/7
	// searches: 2
}

func ExampleNormalizer_Normalize() {
	n, _ := match.NewNormalizer("FR")
	for _, s := range []string{"sip:+33612345678@10.0.0.1;user=phone", "06 12 34 56 78", "33612345678", "anonymous", "36111"} {
		fmt.Printf("%q\n", n.Normalize(s))
	}
	// Output:
	// "+33612345678"
	// "+33612345678"
	// "+33612345678"
	// ""
	// "36111"
}

func ExamplePhoneQuery() {
	n, _ := match.NewNormalizer("US")
	p, _ := n.Parse("+14155551212")
	fmt.Println(match.PhoneQuery(p.Formats()[:3]))
	// Output:
	// phone:"+14155551212" phone:"+1 415-555-1212" phone:"(415) 555-1212"
}
