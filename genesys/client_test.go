package genesys_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
)

func TestConfigRegions(t *testing.T) {
	cases := []struct{ region, api, login, apps string }{
		{"mypurecloud.com", "https://api.mypurecloud.com", "https://login.mypurecloud.com", "https://apps.mypurecloud.com"},
		{"us-east-1", "https://api.mypurecloud.com", "https://login.mypurecloud.com", "https://apps.mypurecloud.com"},
		{"mypurecloud.ie", "https://api.mypurecloud.ie", "https://login.mypurecloud.ie", "https://apps.mypurecloud.ie"},
		{"eu-central-1", "https://api.mypurecloud.de", "https://login.mypurecloud.de", "https://apps.mypurecloud.de"},
		{"mypurecloud.jp", "https://api.mypurecloud.jp", "https://login.mypurecloud.jp", "https://apps.mypurecloud.jp"},
		{"ap-southeast-2", "https://api.mypurecloud.com.au", "https://login.mypurecloud.com.au", "https://apps.mypurecloud.com.au"},
		{"usw2.pure.cloud", "https://api.usw2.pure.cloud", "https://login.usw2.pure.cloud", "https://apps.usw2.pure.cloud"},
		{"ca-central-1", "https://api.cac1.pure.cloud", "https://login.cac1.pure.cloud", "https://apps.cac1.pure.cloud"},
		{"EU-WEST-2", "https://api.euw2.pure.cloud", "https://login.euw2.pure.cloud", "https://apps.euw2.pure.cloud"},
		{"aps1.pure.cloud", "https://api.aps1.pure.cloud", "https://login.aps1.pure.cloud", "https://apps.aps1.pure.cloud"},
		{"ap-northeast-2", "https://api.apne2.pure.cloud", "https://login.apne2.pure.cloud", "https://apps.apne2.pure.cloud"},
		{"apne3.pure.cloud", "https://api.apne3.pure.cloud", "https://login.apne3.pure.cloud", "https://apps.apne3.pure.cloud"},
		{"sa-east-1", "https://api.sae1.pure.cloud", "https://login.sae1.pure.cloud", "https://apps.sae1.pure.cloud"},
		{"me_central_1", "https://api.mec1.pure.cloud", "https://login.mec1.pure.cloud", "https://apps.mec1.pure.cloud"},
		{"eu-central-2", "https://api.euc2.pure.cloud", "https://login.euc2.pure.cloud", "https://apps.euc2.pure.cloud"},
		{"us-east-2", "https://api.use2.us-gov-pure.cloud", "https://login.use2.us-gov-pure.cloud", "https://apps.use2.us-gov-pure.cloud"},
		{"https://api.mypurecloud.ie/", "https://api.mypurecloud.ie", "https://login.mypurecloud.ie", "https://apps.mypurecloud.ie"},
		{"xyz9.pure.cloud", "https://api.xyz9.pure.cloud", "https://login.xyz9.pure.cloud", "https://apps.xyz9.pure.cloud"},
	}
	for _, c := range cases {
		cfg := genesys.Config{ClientID: "id", ClientSecret: "s", Region: c.region}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", c.region, err)
			continue
		}
		if cfg.APIBase() != c.api || cfg.LoginBase() != c.login || cfg.AppsBase() != c.apps {
			t.Errorf("%s: api %s login %s apps %s", c.region, cfg.APIBase(), cfg.LoginBase(), cfg.AppsBase())
		}
	}
	for _, bad := range []string{"us-east-9", "mars", "example.com"} {
		err := genesys.Config{ClientID: "id", ClientSecret: "s", Region: bad}.Validate()
		var ce *cti.ConfigError
		if !errors.As(err, &ce) || ce.Path != "Region" || ce.Value != bad || !strings.Contains(ce.Reason, "eu-west-1") {
			t.Errorf("region %q: %v, want a ConfigError listing the regions", bad, err)
		}
	}
	// Explicit URLs.
	cfg := genesys.Config{ClientID: "id", ClientSecret: "s", APIURL: "https://api.inindca.com/"}
	if cfg.Validate() != nil || cfg.LoginBase() != "https://login.inindca.com" || cfg.AppsBase() != "https://apps.inindca.com" {
		t.Errorf("derived from API URL: %s %s", cfg.LoginBase(), cfg.AppsBase())
	}
	cfg = genesys.Config{ClientID: "id", ClientSecret: "s", APIURL: "http://127.0.0.1:9999", LoginURL: "http://127.0.0.1:9998"}
	if cfg.LoginBase() != "http://127.0.0.1:9998" || cfg.AppsBase() != "http://127.0.0.1:9999" {
		t.Errorf("explicit: %s %s", cfg.LoginBase(), cfg.AppsBase())
	}
	if got := cfg.InteractionURL("c-1"); got != "http://127.0.0.1:9999/directory/#/engage/admin/interactions/c-1" {
		t.Errorf("InteractionURL = %s", got)
	}
	if got := (genesys.Config{Region: "eu-west-1"}).InteractionURL("abc"); got != "https://apps.mypurecloud.ie/directory/#/engage/admin/interactions/abc" {
		t.Errorf("InteractionURL = %s", got)
	}
	if err := (genesys.Config{ClientID: "id", ClientSecret: "s", APIURL: "ftp://x"}).Validate(); err == nil || !strings.Contains(err.Error(), "APIURL") {
		t.Errorf("ftp URL: %v", err)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	cases := []struct {
		env  func(string) (string, bool)
		path string
	}{
		{env(), genesys.EnvClientID},
		{env(genesys.EnvClientID, "id"), genesys.EnvClientSecret},
		{env(genesys.EnvClientID, "id", genesys.EnvClientSecret, "sec"), genesys.EnvRegion},
		{env(genesys.EnvClientID, "id", genesys.EnvClientSecret, "sec", genesys.EnvRegion, "nowhere"), genesys.EnvRegion},
		{env(genesys.EnvClientID, "id", genesys.EnvClientSecret, "sec", genesys.EnvAPIURL, "api.mypurecloud.com"), genesys.EnvAPIURL},
		{env(genesys.EnvClientID, "id", genesys.EnvClientSecret, "sec", genesys.EnvRegion, "eu-west-1", genesys.EnvLoginURL, "::"), genesys.EnvLoginURL},
	}
	for i, c := range cases {
		_, err := genesys.ConfigFromLookup(c.env)
		var ce *cti.ConfigError
		if !errors.As(err, &ce) || ce.Path != c.path {
			t.Errorf("case %d: %v, want an error naming %s", i, err, c.path)
		}
		if err != nil && strings.Contains(err.Error(), "sec") && !strings.Contains(err.Error(), "SECRET") {
			t.Errorf("case %d: error may leak the secret: %v", i, err)
		}
	}
	cfg, err := genesys.ConfigFromLookup(env(genesys.EnvClientID, " id ", genesys.EnvClientSecret, "sec", genesys.EnvRegion, "mypurecloud.de"))
	if err != nil || cfg.ClientID != "id" || cfg.APIBase() != "https://api.mypurecloud.de" {
		t.Fatalf("ConfigFromLookup = %+v, %v", cfg, err)
	}
	t.Setenv(genesys.EnvClientID, "env-id")
	t.Setenv(genesys.EnvClientSecret, "env-secret")
	t.Setenv(genesys.EnvRegion, "")
	t.Setenv(genesys.EnvAPIURL, "http://127.0.0.1:1")
	t.Setenv(genesys.EnvLoginURL, "")
	if cfg, err := genesys.ConfigFromEnv(); err != nil || cfg.ClientID != "env-id" || cfg.LoginBase() != "http://127.0.0.1:1" {
		t.Errorf("ConfigFromEnv = %+v, %v", cfg, err)
	}
}

// TestSecretsNeverLeak runs auth failures, refreshes, faults and a whole
// conversation with debug logging and checks that neither the client
// secret nor any access token appears in logs, errors or String forms.
func TestSecretsNeverLeak(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := gt.NewServer(gt.WithHeartbeat(40*time.Millisecond), gt.WithLogger(log))
	defer srv.Close()
	cfg := genesys.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, APIURL: srv.URL}
	var errs []error

	bad := cfg
	bad.ClientSecret = srv.ClientSecret + "-typo"
	badClient, err := genesys.NewClient(bad, genesys.WithClientLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	errs = append(errs, badClient.CheckAuth(context.Background()))
	badClient.Close()

	client, err := genesys.NewClient(cfg, genesys.WithClientLogger(log),
		genesys.WithRetryPolicy(genesys.RetryPolicy{MaxRetries: -1}))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	src, err := genesys.NewSource(client, genesys.WithQueues(gt.QueueSupport), genesys.WithLogger(log),
		genesys.WithTiming(fastTiming), genesys.WithReconnectBackoff(fastBackoff))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	stop := run(t, src, col)
	waitReady(t, &env{srv: srv, client: client}, src, genesys.QueueTopic(gt.QueueSupport))
	conv := srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550300", Queue: gt.QueueSupport})
	leg := conv.Alert(gt.AgentAlice)
	srv.RevokeTokens() // next call: 401, refresh
	conv.Connect(leg)
	conv.End()
	conv.Wrapup(leg, gt.CodeResolved, "")
	c := col.wait(t, conv.ID, "wrap-up", wrappedUp(leg))
	srv.FailREST(gt.Fault{Status: http.StatusInternalServerError, Times: -1, PathPrefix: "/api/v2/analytics"})
	errs = append(errs, src.Enrich(context.Background(), c))
	srv.ClearFaults()
	srv.RevokeTokens()
	errs = append(errs, src.Enrich(context.Background(), c.Clone()))
	_ = stop()

	secrets := append(srv.IssuedTokens(), srv.ClientSecret, bad.ClientSecret)
	if len(secrets) < 4 {
		t.Fatalf("expected at least 2 tokens issued, got %v", srv.IssuedTokens())
	}
	mu.Lock()
	text := logs.String()
	mu.Unlock()
	for _, e := range errs {
		if e != nil {
			text += "\n" + e.Error() + fmt.Sprintf("%+v %#v", e, e)
		}
	}
	text += cfg.String() + fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg)
	var lb bytes.Buffer
	slog.New(slog.NewTextHandler(&lb, nil)).Info("cfg", "cfg", cfg)
	text += lb.String()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Fatalf("a secret (%.6s…) appears in logs or errors", s)
		}
	}
	if !strings.Contains(text, "genesys: request") || errs[0] == nil {
		t.Fatalf("the test saw no debug logs or no auth error: %q", text[:min(300, len(text))])
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func userCall(ctx context.Context, c *genesys.Client) (*cti.Conversation, error) {
	return c.Conversation(ctx, "nope", nil)
}

func TestClientRefreshOn401(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	conv := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550400", Queue: gt.QueueSupport})
	if _, err := e.client.Conversation(ctx, conv.ID, nil); err != nil {
		t.Fatal(err)
	}
	e.srv.RevokeTokens()
	c, err := e.client.Conversation(ctx, conv.ID, nil)
	if err != nil || c.ID != conv.ID {
		t.Fatalf("after revocation: %v, %v", c, err)
	}
	if n := e.srv.Stats().TokensIssued; n != 2 {
		t.Errorf("tokens issued = %d, want 2 (a refresh on 401)", n)
	}
}

func TestClientRefreshBeforeExpiry(t *testing.T) {
	e := newEnv(t, gt.WithTokenTTL(1500*time.Millisecond))
	ctx := context.Background()
	if err := e.client.CheckAuth(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(800 * time.Millisecond) // past half the token's life, before its end
	if _, err := userCall(ctx, e.client); !errors.Is(err, cti.ErrNotFound) {
		t.Fatalf("call = %v, want not found", err)
	}
	st := e.srv.Stats()
	if st.TokensIssued != 2 {
		t.Errorf("tokens issued = %d, want 2 (refreshed ahead of expiry)", st.TokensIssued)
	}
	if st.Requests["GET /api/v2/conversations/{id}"] != 1 {
		t.Errorf("requests = %v: the call should have gone once, with the new token (no 401)", st.Requests)
	}
}

func TestClientRetries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	conv := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155550500", Queue: gt.QueueSupport})
	path := "/api/v2/conversations/" + conv.ID

	// 429 with Retry-After: waited, then success.
	e.srv.FailREST(gt.Fault{PathPrefix: path, Status: http.StatusTooManyRequests, RetryAfter: time.Second, Times: 1})
	start := time.Now()
	if _, err := e.client.Conversation(ctx, conv.ID, nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, before Retry-After", d)
	}
	// 503 twice: retried.
	e.srv.FailREST(gt.Fault{PathPrefix: path, Status: http.StatusServiceUnavailable, Times: 2})
	if _, err := e.client.Conversation(ctx, conv.ID, nil); err != nil {
		t.Fatal(err)
	}
	// 429 forever: the status and Retry-After come back, retryable.
	e.srv.FailREST(gt.Fault{PathPrefix: path, Status: http.StatusTooManyRequests, RetryAfter: 60 * time.Second, Times: -1})
	_, err := e.client.Conversation(ctx, conv.ID, nil)
	var ue *cti.UpstreamError
	if !errors.As(err, &ue) || ue.Status != 429 || ue.RetryAfter != time.Minute || !cti.IsRetryable(err) {
		t.Fatalf("err = %#v, want a retryable 429 with Retry-After 1m", err)
	}
	if ra, ok := cti.RetryAfter(err); !ok || ra != time.Minute {
		t.Errorf("cti.RetryAfter = %v %v", ra, ok)
	}
	e.srv.ClearFaults()
	// 404: not retryable, cti.ErrNotFound.
	_, err = e.client.Conversation(ctx, "missing", nil)
	if !errors.Is(err, cti.ErrNotFound) || cti.IsRetryable(err) || !errors.As(err, &ue) || ue.Status != 404 {
		t.Errorf("404 = %v", err)
	}
	// The error says what Genesys said (its error body's code and message).
	if err == nil || !strings.Contains(err.Error(), "not.found: conversation not found") {
		t.Errorf("404 = %v, want the error body's code and message", err)
	}
	// 400: permanent.
	e.srv.FailREST(gt.Fault{PathPrefix: path, Status: http.StatusBadRequest, Times: 1})
	if _, err := e.client.Conversation(ctx, conv.ID, nil); !errors.As(err, &ue) || ue.Status != 400 || cti.IsRetryable(err) {
		t.Errorf("400 = %v", err)
	}
}

func TestClientCancel(t *testing.T) {
	e := newEnv(t)
	e.srv.FailREST(gt.Fault{Status: http.StatusTooManyRequests, RetryAfter: 2 * time.Second, Times: -1, PathPrefix: "/api/v2/conversations/"})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := e.client.Conversation(ctx, "x", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("returned after %v: the wait ignored the context", d)
	}
}

func TestClientConcurrentAndPaced(t *testing.T) {
	srv := gt.NewServer()
	defer srv.Close()
	client, err := genesys.NewClient(genesys.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, APIURL: srv.URL},
		genesys.WithRateLimits(1200, 0, 1)) // one call every 50 ms
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conv := srv.Start(gt.Spec{Media: gt.MediaChat, From: "x@example.org", Queue: gt.QueueSupport})
	var wg sync.WaitGroup
	start := time.Now()
	for range 12 {
		wg.Go(func() {
			if _, err := client.Conversation(context.Background(), conv.ID, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("12 calls at 20/s took %v, want ≥ 550ms of pacing", d)
	}
	if n := srv.Stats().TokensIssued; n != 1 {
		t.Errorf("tokens issued = %d, want 1 (concurrent callers share the fetch)", n)
	}
}

// TestConversationsDuring: the analytics details query through the SDK,
// against the emulator: every page, queue and user predicates (more than
// one query's worth), no repeats, nothing outside the interval.
func TestConversationsDuring(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	from := time.Now().Add(-time.Second)
	var support []string
	for i := range 130 {
		c := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: fmt.Sprintf("+1415555%04d", i), Queue: gt.QueueSupport})
		support = append(support, c.ID)
	}
	sales := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155559000", Queue: gt.QueueSales})
	sales.Alert(gt.AgentCarol)
	billing := e.srv.Start(gt.Spec{Media: gt.MediaVoice, From: "+14155559001", Queue: gt.QueueBilling})
	to := time.Now().Add(time.Second)

	ids, err := e.client.ConversationsDuring(ctx, from, to, []string{gt.QueueSupport}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Oldest first; calls started in the same millisecond may come in any
	// order.
	if !slices.Equal(slices.Sorted(slices.Values(ids)), slices.Sorted(slices.Values(support))) {
		t.Fatalf("support queue: %d ids, want the %d support calls", len(ids), len(support))
	}
	if n := e.srv.Stats().Requests["POST /api/v2/analytics/conversations/details/query"]; n != 2 {
		t.Errorf("%d queries for 130 conversations, want 2 pages of 100", n)
	}

	// 60 queues (two queries) and a user: support, and sales through
	// Carol; billing stays out.
	queues := []string{gt.QueueSupport}
	for i := range 59 {
		queues = append(queues, fmt.Sprintf("9e1c0f00-0000-4000-8000-0000000b%04d", i))
	}
	ids, err = e.client.ConversationsDuring(ctx, from, to, queues, []string{gt.AgentCarol})
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 131 || !slices.Contains(ids, sales.ID) || slices.Contains(ids, billing.ID) {
		t.Errorf("queues and Carol: %d ids (sales %v, billing %v), want the 130 support calls and the sales one",
			len(ids), slices.Contains(ids, sales.ID), slices.Contains(ids, billing.ID))
	}

	ids, err = e.client.ConversationsDuring(ctx, from.Add(-time.Hour), from.Add(-time.Minute), []string{gt.QueueSupport}, nil)
	if err != nil || len(ids) != 0 {
		t.Errorf("an interval before every call: %d ids, %v", len(ids), err)
	}
}
