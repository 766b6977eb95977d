package zendesk_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/internal/testlog"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

func statuses(reqs []zendesktest.Request) []int {
	out := make([]int, len(reqs))
	for i, r := range reqs {
		out[i] = r.Status
	}
	return out
}

func TestTransportHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	srv.InjectFault(zendesktest.Fault{Route: "/tickets/", Status: 429, RetryAfter: time.Second, Times: 1})
	start := time.Now()
	tk, err := c.Ticket(context.Background(), zendesktest.DemoTicketJaneOpen)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("retried after %v, before Retry-After", el)
	}
	if tk.ID != zendesktest.DemoTicketJaneOpen {
		t.Fatalf("ticket %+v", tk)
	}
	got := statuses(srv.RequestsTo("GET", "/tickets/"))
	if len(got) != 2 || got[0] != 429 || got[1] != 200 {
		t.Fatalf("statuses %v", got)
	}
	if st := c.Transport().Stats(); st.RateLimited != 1 || st.Retries != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A 429 pauses every request of the client, not just the one that got it.
func TestTransport429StormPausesEveryone(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	srv.InjectFault(zendesktest.Fault{Route: "/search", Status: 429, RetryAfter: time.Second, Times: 1})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 100 * time.Millisecond)
			_, _, err := c.Searcher().SearchUsers(context.Background(), `email:"jane@example.com"`)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	reqs := srv.RequestsTo("GET", "/search")
	var t0 time.Time
	for _, r := range reqs {
		if r.Status == 429 {
			t0 = r.At
		}
	}
	if t0.IsZero() {
		t.Fatal("no 429 seen")
	}
	for _, r := range reqs {
		if d := r.At.Sub(t0); d > 50*time.Millisecond && d < 900*time.Millisecond {
			t.Fatalf("a request arrived %v after the 429, inside the Retry-After pause: %v", d, statuses(reqs))
		}
	}
	if len(reqs) != 9 {
		t.Fatalf("%d requests, want 8 + 1 retry", len(reqs))
	}
}

func TestTransportLongRetryAfterFailsFast(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil, zendesk.WithMaxWait(2*time.Second))
	srv.InjectFault(zendesktest.Fault{Route: "/tickets/", Status: 429, RetryAfter: 120 * time.Second, Times: 1})
	ctx := context.Background()
	start := time.Now()
	_, err := c.Ticket(ctx, zendesktest.DemoTicketJaneOpen)
	var ue *cti.UpstreamError
	if !errors.As(err, &ue) || ue.Status != 429 || ue.RetryAfter < 119*time.Second || !ue.Retryable() || ue.Service != "zendesk" || ue.Op != "show ticket" {
		t.Fatalf("err = %#v", err)
	}
	if d, ok := cti.RetryAfter(err); !ok || d < 119*time.Second {
		t.Fatalf("RetryAfter = %v %v", d, ok)
	}
	// The next call is not even sent while the pause holds.
	n := len(srv.Requests())
	_, err = c.User(ctx, zendesktest.DemoJane)
	if !errors.As(err, &ue) || ue.Status != 429 || ue.Op != "show user" || !cti.IsRetryable(err) {
		t.Fatalf("second err = %v", err)
	}
	if len(srv.Requests()) != n {
		t.Fatal("a request was sent during the Retry-After pause")
	}
	if time.Since(start) > time.Second {
		t.Fatal("waited instead of failing fast")
	}
}

func TestTransport5xx(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil, fast())
	ctx := context.Background()

	// Reads are retried through a burst of 503s.
	srv.InjectFault(zendesktest.Fault{Method: "GET", Route: "/users/", Status: 503, Times: 2})
	if _, err := c.User(ctx, zendesktest.DemoJane); err != nil {
		t.Fatal(err)
	}
	if got := statuses(srv.RequestsTo("GET", "/users/")); len(got) != 3 || got[2] != 200 {
		t.Fatalf("statuses %v", got)
	}

	// A plain create is not repeated after a 500: Zendesk may have written it.
	srv.InjectFault(zendesktest.Fault{Method: "POST", Route: "/users", Status: 500, Times: 1})
	_, err := c.CreateUser(ctx, zendesk.NewUser{Name: "X"})
	var ue *cti.UpstreamError
	if !errors.As(err, &ue) || ue.Status != 500 || !ue.Retryable() {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.RequestsTo("POST", "/users")); n != 1 {
		t.Fatalf("create user sent %d times", n)
	}

	// Too many failures: the last status comes back, retryable.
	srv.InjectFault(zendesktest.Fault{Method: "GET", Route: "/tickets/", Status: 502})
	_, err = c.Ticket(ctx, zendesktest.DemoTicketJaneOpen)
	if !errors.As(err, &ue) || ue.Status != 502 || !cti.IsRetryable(err) {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.RequestsTo("GET", "/tickets/")); n != zendesk.DefaultMaxRetries+1 {
		t.Fatalf("%d attempts, want %d", n, zendesk.DefaultMaxRetries+1)
	}
}

// A ticket creation whose response is lost is retried with the same
// Idempotency-Key: one ticket.
func TestTransportLostResponseIdempotent(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil, fast(), zendesk.WithAttemptTimeout(300*time.Millisecond))
	srv.InjectFault(zendesktest.Fault{Method: "POST", Route: "/tickets", Hold: 2 * time.Second, Times: 1})
	before := len(srv.Tickets())
	tk, err := c.CreateTicket(context.Background(), zendesk.NewTicket{
		Subject: "Sync", ExternalID: "ctikit:conv-1/leg-1", RequesterID: zendesktest.DemoJane,
		Comment: &zendesk.CommentInput{Body: "Call summary", Public: false},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Tickets()) - before; n != 1 {
		t.Fatalf("%d tickets created", n)
	}
	reqs := srv.RequestsTo("POST", "/tickets")
	if len(reqs) != 2 || reqs[0].IdempotencyKey == "" || reqs[0].IdempotencyKey != reqs[1].IdempotencyKey {
		t.Fatalf("requests %+v", reqs)
	}
	got, _ := srv.Ticket(tk.ID)
	if got.ExternalID != "ctikit:conv-1/leg-1" || got.Comments[0].Public {
		t.Fatalf("ticket %+v", got)
	}
}

func TestTransportAttemptTimeout(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil, fast(), zendesk.WithAttemptTimeout(300*time.Millisecond), zendesk.WithRetries(1))
	ctx := context.Background()
	srv.InjectFault(zendesktest.Fault{Method: "GET", Route: "/users/", Delay: 2 * time.Second, Times: 1})
	if _, err := c.User(ctx, zendesktest.DemoJane); err != nil {
		t.Fatalf("not retried after a timeout: %v", err)
	}
	srv.InjectFault(zendesktest.Fault{Method: "GET", Route: "/tickets/", Delay: 2 * time.Second})
	start := time.Now()
	_, err := c.Ticket(ctx, zendesktest.DemoTicketJaneOpen)
	var ue *cti.UpstreamError
	if !errors.As(err, &ue) || ue.Status != 0 || !cti.IsRetryable(err) {
		t.Fatalf("err = %#v", err)
	}
	if el := time.Since(start); el > 1500*time.Millisecond {
		t.Fatalf("took %v", el)
	}
}

// Pacing from the rate-limit headers avoids the 429 altogether.
func TestTransportPacesBeforeTheLimit(t *testing.T) {
	t.Parallel()
	srv, c := env(t, []zendesktest.Option{zendesktest.WithRateLimit(20, 1500*time.Millisecond)})
	srv.ResetRequests()
	ctx := context.Background()
	start := time.Now()
	for range 35 {
		if _, err := c.Ticket(ctx, zendesktest.DemoTicketJaneOpen); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range srv.Requests() {
		if r.Status == 429 {
			t.Fatalf("got a 429: pacing did not slow down (%v)", statuses(srv.Requests()))
		}
	}
	if el := time.Since(start); el < time.Second {
		t.Fatalf("35 requests with a budget of 20 per 1.5s took only %v", el)
	}
	if st := c.Transport().Stats(); st.Paced == 0 {
		t.Fatalf("stats %+v", st)
	}
	if rl := c.Transport().RateLimit(); rl.Limit != 20 {
		t.Fatalf("rate limit %+v", rl)
	}
}

func TestTransportTicketUpdateBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	upd := zendesk.TicketUpdate{AdditionalTags: []string{"x"}}

	// Client side: 5 updates per second.
	srv, c := env(t, nil, zendesk.WithTicketUpdateBudget(5, time.Second))
	start := time.Now()
	for range 10 {
		if _, err := c.UpdateTicket(ctx, zendesktest.DemoTicketJaneOpen, upd); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("10 updates at 5/s took %v", el)
	}
	// Reads do not spend it.
	start = time.Now()
	for range 10 {
		if _, err := c.Ticket(ctx, zendesktest.DemoTicketJaneOpen); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Fatalf("reads slowed by the update budget: %v", el)
	}

	// Server side: Zendesk's Update Ticket limit 429s while the account
	// has room; the pause holds updates only.
	srv.SetTicketUpdateLimit(2, time.Second)
	c2, _ := zendesk.New(cfg(srv))
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c2.UpdateTicket(ctx, zendesktest.DemoTicketJohnNew, upd); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // by now one update got its 429
	start = time.Now()
	if _, err := c2.User(ctx, zendesktest.DemoJane); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 500*time.Millisecond {
		t.Fatalf("a read waited %v for the ticket-update pause", el)
	}
	wg.Wait()
	var n429 int
	for _, r := range srv.RequestsTo("PUT", "/tickets/") {
		if r.Status == 429 {
			n429++
		}
	}
	if n429 == 0 {
		t.Fatal("the server's ticket-update limit was never hit")
	}
}

func TestSecretsNeverInErrorsOrLogs(t *testing.T) {
	t.Parallel()
	var logs testlog.Buffer
	srv := zendesktest.NewServer(zendesktest.WithAPIToken("ops@example.com", "s3cr3t-T0KEN-value"))
	t.Cleanup(srv.Close)
	good := zendesk.Config{URL: srv.URL, Email: "ops@example.com", APIToken: "s3cr3t-T0KEN-value"}
	bad := good
	bad.APIToken = "wr0ng-T0KEN-value"
	ctx := context.Background()
	var errs []error
	for _, cf := range []zendesk.Config{good, bad} {
		c, err := zendesk.New(cf, zendesk.WithLogger(logs.Logger()), fast())
		if err != nil {
			t.Fatal(err)
		}
		srv.InjectFault(zendesktest.Fault{Route: "/tickets/", Status: 503, Times: 2})
		_, err = c.Ticket(ctx, 424242)
		errs = append(errs, err)
		_, err = c.User(ctx, 1)
		errs = append(errs, err)
		errs = append(errs, fmtErr(cf))
	}
	dead, _ := zendesk.New(zendesk.Config{URL: "http://127.0.0.1:1", Email: "ops@example.com", APIToken: "s3cr3t-T0KEN-value"},
		zendesk.WithLogger(logs.Logger()), fast(), zendesk.WithRetries(1))
	_, err := dead.Ticket(ctx, 1)
	errs = append(errs, err)
	var ue *cti.UpstreamError
	if !errors.As(errs[4], &ue) || ue.Status != 401 || ue.Retryable() {
		t.Fatalf("bad token: %v", errs[4])
	}
	secrets := []string{"s3cr3t-T0KEN-value", "wr0ng-T0KEN-value",
		base64.StdEncoding.EncodeToString([]byte("ops@example.com/token:s3cr3t-T0KEN-value"))}
	all := logs.String()
	for _, e := range errs {
		if e != nil {
			all += "\n" + e.Error()
		}
	}
	if !strings.Contains(all, "retrying") {
		t.Fatalf("nothing was logged: %q", all)
	}
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Fatalf("secret %q leaked in:\n%s", s, all)
		}
	}
	// The emulator recorded who called, never the secret.
	for _, r := range srv.Requests() {
		if strings.Contains(r.Principal, "T0KEN") {
			t.Fatalf("principal %q", r.Principal)
		}
	}
}

// fmtErr renders a config every way a careless log line might.
func fmtErr(c zendesk.Config) error {
	return errors.New(strings.Join([]string{c.String(), c.GoString(), c.LogValue().String()}, " "))
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	srv := zendesktest.NewServer()
	t.Cleanup(srv.Close)
	srv.Seed(zendesktest.DemoSeed())
	c, err := zendesk.New(zendesk.Config{URL: srv.URL, OAuthToken: zendesktest.DefaultOAuthToken})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.User(context.Background(), zendesktest.DemoJane); err != nil {
		t.Fatal(err)
	}
	if p := srv.Requests()[0].Principal; p != "oauth" {
		t.Fatalf("principal %q", p)
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	bad, _ := zendesk.New(zendesk.Config{URL: srv.URL, Email: "x@example.com", APIToken: "nope"})
	var ue *cti.UpstreamError
	if err := bad.Ping(context.Background()); !errors.As(err, &ue) || ue.Status != 401 {
		t.Fatalf("bad credentials: %v", err)
	}
}
