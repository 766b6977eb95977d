package zendesk_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

func TestDirectory(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil, fast())
	d, err := zendesk.NewDirectory(c, map[string]string{
		"genesys-user-bob":   "202",               // Genesys id → Zendesk id
		"ALICE@corp.example": "carol@example.com", // Genesys email → Zendesk email
		"genesys-user-jane":  "301",               // an end user: not an agent
	}, zendesk.WithCacheTTL(time.Hour, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name string
		leg  cti.AgentLeg
		want int64
		err  error
	}{
		{"by email", cti.AgentLeg{UserID: "g-1", Email: "Alice@Example.com"}, zendesktest.DemoAgentAlice, nil},
		{"override by Genesys id beats email", cti.AgentLeg{UserID: "genesys-user-bob", Email: "alice@example.com"}, zendesktest.DemoAgentBob, nil},
		{"override by email to an email", cti.AgentLeg{UserID: "g-3", Email: "alice@corp.example"}, zendesktest.DemoAdminCarol, nil},
		{"no such agent", cti.AgentLeg{UserID: "g-4", Email: "nobody@example.com"}, 0, cti.ErrUnknownAgent},
		{"an end user is not an agent", cti.AgentLeg{UserID: "g-5", Email: "jane@example.com"}, 0, cti.ErrUnknownAgent},
		{"override to an end user", cti.AgentLeg{UserID: "genesys-user-jane"}, 0, cti.ErrUnknownAgent},
		{"no email, no override", cti.AgentLeg{UserID: "g-6"}, 0, cti.ErrUnknownAgent},
	}
	for _, tt := range tests {
		a, err := d.Agent(ctx, &tt.leg)
		if !errors.Is(err, tt.err) || a.ID != tt.want {
			t.Errorf("%s: got %+v, %v; want %d, %v", tt.name, a, err, tt.want, tt.err)
		}
	}
	a, _ := d.Agent(ctx, &cti.AgentLeg{Email: "alice@example.com"})
	if a.Email != "alice@example.com" || a.Name != "Alice Agent" {
		t.Fatalf("agent = %+v", a)
	}

	// Cached: the same lookups make no request, hits and misses alike.
	n := len(srv.Requests())
	for _, tt := range tests {
		d.Agent(ctx, &tt.leg)
	}
	if len(srv.Requests()) != n {
		t.Fatalf("%d requests for cached lookups", len(srv.Requests())-n)
	}
	// Misses expire sooner.
	time.Sleep(250 * time.Millisecond)
	d.Agent(ctx, &cti.AgentLeg{Email: "nobody@example.com"})
	if len(srv.Requests()) != n+1 {
		t.Fatal("negative cache entry did not expire")
	}
}

func TestDirectoryCollapsesAndDoesNotCacheFailures(t *testing.T) {
	t.Parallel()
	srv, c := env(t, []zendesktest.Option{zendesktest.WithLatency(50 * time.Millisecond)}, zendesk.WithRetries(0))
	d, err := zendesk.NewDirectory(c, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	srv.InjectFault(zendesktest.Fault{Route: "/users/search", Status: 500, Times: 1})
	_, err = d.Agent(ctx, &cti.AgentLeg{Email: "bob@example.com"})
	if !cti.IsRetryable(err) || errors.Is(err, cti.ErrUnknownAgent) {
		t.Fatalf("failure = %v", err)
	}
	srv.ResetRequests()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := d.Agent(ctx, &cti.AgentLeg{Email: "bob@example.com"})
			if err != nil || a.ID != zendesktest.DemoAgentBob {
				t.Errorf("%+v, %v", a, err)
			}
		}()
	}
	wg.Wait()
	if n := len(srv.Requests()); n != 1 {
		t.Fatalf("20 concurrent lookups made %d requests", n)
	}
}

func TestDirectoryBadOverrides(t *testing.T) {
	t.Parallel()
	_, c := env(t, nil)
	for _, m := range []map[string]string{{"x": ""}, {"": "1"}, {"x": "not-an-id"}} {
		_, err := zendesk.NewDirectory(c, m)
		var ce *cti.ConfigError
		if !errors.As(err, &ce) || !errors.Is(err, cti.ErrInvalid) {
			t.Errorf("%v: %v", m, err)
		}
	}
}

func TestDirectoryCallerCancelDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	srv, c := env(t, []zendesktest.Option{zendesktest.WithLatency(200 * time.Millisecond)})
	d, _ := zendesk.NewDirectory(c, nil)
	leg := &cti.AgentLeg{Email: "bob@example.com"}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	errA := make(chan error, 1)
	go func() { _, err := d.Agent(short, leg); errA <- err }()
	time.Sleep(10 * time.Millisecond)
	a, err := d.Agent(context.Background(), leg)
	if err != nil || a.ID != zendesktest.DemoAgentBob {
		t.Fatalf("patient caller: %+v, %v", a, err)
	}
	if err := <-errA; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("impatient caller: %v", err)
	}
	if n := len(srv.RequestsTo("GET", "/users/search")); n != 1 {
		t.Fatalf("%d searches", n)
	}
}
