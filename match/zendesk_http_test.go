package match_test

import (
	"context"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/match/matchtest"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// emulated starts the Zendesk emulator with users and returns the real
// client's Searcher over HTTP.
func emulated(t *testing.T, opts ...zendesktest.Option) (*zendesktest.Server, match.Searcher) {
	t.Helper()
	srv := zendesktest.NewServer(append([]zendesktest.Option{zendesktest.WithoutRateLimits()}, opts...)...)
	t.Cleanup(srv.Close)
	c, err := zendesk.New(zendesk.Config{URL: srv.URL, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c.Searcher()
}

func seed(srv *zendesktest.Server, users []matchtest.User) {
	for _, u := range users {
		srv.AddUser(zendesktest.User{ID: u.ID, Name: u.Name, Email: u.Email, Phone: u.Phone, ExternalID: u.ExternalID,
			CreatedAt: u.UpdatedAt, UpdatedAt: u.UpdatedAt})
		for _, tk := range u.Tickets {
			srv.AddTicket(zendesktest.Ticket{ID: tk.ID, Subject: tk.Subject, Status: tk.Status, RequesterID: u.ID,
				CreatedAt: tk.UpdatedAt, UpdatedAt: tk.UpdatedAt})
		}
	}
}

// TestZendeskClientConformance runs the matcher conformance suite against
// the real zendesk client talking HTTP to the Zendesk emulator.
func TestZendeskClientConformance(t *testing.T) {
	matchtest.TestMatcher(t, func(t *testing.T, users []matchtest.User) cti.Matcher {
		srv, s := emulated(t)
		seed(srv, users)
		return match.Chain(match.Cache(match.CacheOptions{}))(newZendesk(t, s, match.WithRegion("US")))
	})
}

// TestZendeskClientConformanceUncached is the same without the cache.
func TestZendeskClientConformanceUncached(t *testing.T) {
	matchtest.TestMatcher(t, func(t *testing.T, users []matchtest.User) cti.Matcher {
		srv, s := emulated(t)
		seed(srv, users)
		return newZendesk(t, s, match.WithRegion("US"))
	})
}

// TestZendeskClientPhoneFormats: the OR'ed phone query finds numbers the
// emulator stores in national format, over HTTP, in one search request.
func TestZendeskClientPhoneFormats(t *testing.T) {
	t.Parallel()
	srv, s := emulated(t)
	srv.AddUser(zendesktest.User{ID: 5001, Name: "Jane", Phone: "(415) 555-1212", UpdatedAt: t0})
	srv.AddUser(zendesktest.User{ID: 5002, Name: "Other", Phone: "+14155550000", UpdatedAt: t0})
	srv.AddUser(zendesktest.User{ID: 5003, Name: "Fan", UpdatedAt: t0,
		Identities: []zendesktest.Identity{{Type: "twitter", Value: "acme_fan"}}})
	srv.AddUser(zendesktest.User{ID: 5004, Name: "Notes", Notes: "acme_fan club", UpdatedAt: t0.Add(time.Hour)})
	z := newZendesk(t, s, match.WithRegion("US"))
	srv.ResetRequests()
	res, err := z.Match(context.Background(), query("sip:+14155551212@10.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 || res.Records[0].ID != 5001 {
		t.Fatalf("got %+v, want user 5001", res.Records)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("%d requests, want 1 search", n)
	}
	res, err = z.Match(context.Background(), cti.Query{Identity: cti.Identity{Kind: cti.IdentifySocial, Channel: cti.ChannelTwitter, Value: "@acme_fan"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 || res.Records[0].ID != 5003 {
		t.Errorf("twitter handle: got %+v, want only user 5003 (identity verified)", res.Records)
	}
}
