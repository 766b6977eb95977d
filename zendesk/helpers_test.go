package zendesk_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// env starts an emulator seeded with the demo account and a client on it.
func env(t *testing.T, sopts []zendesktest.Option, copts ...zendesk.Option) (*zendesktest.Server, *zendesk.Client) {
	t.Helper()
	srv := zendesktest.NewServer(sopts...)
	t.Cleanup(srv.Close)
	srv.Seed(zendesktest.DemoSeed())
	c, err := zendesk.New(cfg(srv), copts...)
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func cfg(srv *zendesktest.Server) zendesk.Config {
	return zendesk.Config{URL: srv.URL, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken}
}

// fast are transport policies that keep tests quick: short backoff.
func fast() zendesk.Option {
	return zendesk.WithPolicies(nil, func(attempt int, resp *http.Response) time.Duration {
		if d := zendesk.DefaultBackoff(attempt, resp); resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			return d
		}
		return 10 * time.Millisecond
	}, nil)
}
