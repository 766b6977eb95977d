package zendesk_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/match/matchtest"
	"github.com/cxplay/ctikit/syncmap/syncmaptest"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// The sink's contract suite, against the client over the emulator.
func TestSyncmapConformance(t *testing.T) {
	syncmaptest.TestZendesk(t, func(t *testing.T) syncmaptest.Env {
		srv := zendesktest.NewServer(zendesktest.WithoutRateLimits())
		t.Cleanup(srv.Close)
		srv.Seed(zendesktest.DemoSeed())
		srv.RejectField(360099)
		c, err := zendesk.New(cfg(srv), zendesk.WithAppID(735264))
		if err != nil {
			t.Fatal(err)
		}
		return syncmaptest.Env{Zendesk: c, RequesterID: zendesktest.DemoJane, AgentID: zendesktest.DemoAgentAlice,
			FieldID: 360001, RejectedFieldID: 360099, RejectedValue: "no_such_option", TalkAppID: 735264,
			Fetch: httpFetch}
	})
}

// httpFetch GETs a content_url without credentials, as a browser playing
// a recording does.
func httpFetch(ctx context.Context, contentURL string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, contentURL, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", contentURL, resp.Status)
	}
	return b, resp.Header.Get("Content-Type"), err
}

// Package match's matcher over the client's Searcher keeps the matcher
// contract, end to end through HTTP and the emulator's search.
func TestMatcherConformance(t *testing.T) {
	matchtest.TestMatcher(t, func(t *testing.T, users []matchtest.User) cti.Matcher {
		srv := zendesktest.NewServer(zendesktest.WithoutRateLimits())
		t.Cleanup(srv.Close)
		for _, u := range users {
			srv.AddUser(zendesktest.User{ID: u.ID, Name: u.Name, Email: u.Email, Phone: u.Phone, ExternalID: u.ExternalID,
				CreatedAt: u.UpdatedAt, UpdatedAt: u.UpdatedAt})
			for _, tk := range u.Tickets {
				srv.AddTicket(zendesktest.Ticket{ID: tk.ID, Subject: tk.Subject, Status: tk.Status, RequesterID: u.ID,
					CreatedAt: tk.UpdatedAt, UpdatedAt: tk.UpdatedAt})
			}
		}
		c, err := zendesk.New(cfg(srv))
		if err != nil {
			t.Fatal(err)
		}
		m, err := match.NewZendesk(c.Searcher())
		if err != nil {
			t.Fatal(err)
		}
		return m
	})
}
