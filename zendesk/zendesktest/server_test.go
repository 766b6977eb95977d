package zendesktest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

type client struct {
	t    *testing.T
	base string
	auth string
}

func newClient(t *testing.T, srv *zendesktest.Server) *client {
	return &client{t: t, base: srv.APIURL(), auth: "Basic " + base64.StdEncoding.EncodeToString([]byte(zendesktest.DefaultEmail+"/token:"+zendesktest.DefaultAPIToken))}
}

func (c *client) do(method, path string, body any) (int, http.Header, map[string]any) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, resp.Header, out
}

func search(c *client, q string, extra ...string) []float64 {
	c.t.Helper()
	v := url.Values{"query": {q}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	st, _, out := c.do("GET", "/search.json?"+v.Encode(), nil)
	if st != 200 {
		c.t.Fatalf("search %q: %d %v", q, st, out)
	}
	var ids []float64
	for _, r := range out["results"].([]any) {
		ids = append(ids, r.(map[string]any)["id"].(float64))
	}
	return ids
}

func same(a []float64, b ...float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func demo(t *testing.T, opts ...zendesktest.Option) (*zendesktest.Server, *client) {
	srv := zendesktest.NewServer(opts...)
	t.Cleanup(srv.Close)
	srv.Seed(zendesktest.DemoSeed())
	return srv, newClient(t, srv)
}

func TestAuth(t *testing.T) {
	t.Parallel()
	srv, c := demo(t)
	cases := map[string]int{
		c.auth: 200,
		"Bearer " + zendesktest.DefaultOAuthToken: 200,
		"Bearer wrong": 401,
		"Basic " + base64.StdEncoding.EncodeToString([]byte(zendesktest.DefaultEmail+"/token:wrong")):                  401,
		"Basic " + base64.StdEncoding.EncodeToString([]byte(zendesktest.DefaultEmail+":"+zendesktest.DefaultAPIToken)): 401,
		"": 401,
	}
	for auth, want := range cases {
		c2 := *c
		c2.auth = auth
		if st, _, _ := c2.do("GET", "/users/301.json", nil); st != want {
			t.Errorf("%q: %d, want %d", auth, st, want)
		}
	}
	reqs := srv.Requests()
	principals := map[string]bool{}
	for _, r := range reqs {
		principals[r.Principal] = true
	}
	if !principals[zendesktest.DefaultEmail] || !principals["oauth"] || !principals[""] {
		t.Fatalf("principals %v", principals)
	}
}

func TestSearchSyntax(t *testing.T) {
	t.Parallel()
	_, c := demo(t)
	tests := []struct {
		q    string
		want []float64
	}{
		{`type:user phone:+14155550102`, []float64{302, 303}},
		{`type:user phone:"+14155550102"`, []float64{302, 303}},
		{`type:user phone:14155550102`, nil},
		{`type:user phone:"(415) 555-0106"`, []float64{306}},
		{`type:user role:agent`, []float64{201, 202}},
		{`type:user role:admin -email:admin@example.com`, []float64{203}},
		{`type:user email:JOHN@example.com email:joan@example.com`, []float64{302, 303}},
		{`type:user email:jo*`, []float64{302, 303}},
		{`type:user organization:"Acme Corp"`, []float64{301}},
		{`type:user tags:vip`, []float64{301}},
		{`type:ticket requester_id:301 status<solved`, []float64{401, 402}},
		{`type:ticket requester_id:301 status>=solved`, []float64{403}},
		{`type:ticket requester:jane@example.com status:pending`, []float64{402}},
		{`type:ticket status:hold`, []float64{405}},
		{`type:organization external_id:ACME`, []float64{100}},
		{`type:user "1000123456789"`, []float64{305}},
	}
	for _, tt := range tests {
		if got := search(c, tt.q); !same(got, tt.want...) {
			t.Errorf("%s: %v, want %v", tt.q, got, tt.want)
		}
	}
	if got := search(c, "type:ticket requester_id:301", "sort_by", "updated_at", "sort_order", "desc"); !same(got, 401, 402, 403) {
		t.Errorf("sorted: %v", got)
	}
	if st, _, _ := c.do("GET", "/search.json?query="+url.QueryEscape(`type:user name:"unbalanced`), nil); st != 400 {
		t.Errorf("unbalanced quote: %d", st)
	}
	// A raw "+" in a query string is a space: Zendesk then finds nothing.
	st, _, out := c.do("GET", "/search.json?query=type:user%20phone:+14155550102", nil)
	if st != 200 || len(out["results"].([]any)) != 0 {
		t.Errorf("raw plus: %d %v", st, out)
	}
	st, _, out = c.do("GET", "/search/count.json?query=type:user+role:agent", nil)
	if st != 200 || out["count"].(float64) != 2 {
		t.Errorf("count: %d %v", st, out)
	}
}

func TestPaginationAndRequested(t *testing.T) {
	t.Parallel()
	_, c := demo(t)
	st, _, out := c.do("GET", "/users/301/tickets/requested.json?sort_by=updated_at&sort_order=desc&per_page=2", nil)
	if st != 200 || out["count"].(float64) != 3 || out["next_page"] == nil || len(out["tickets"].([]any)) != 2 {
		t.Fatalf("page 1: %d %v", st, out)
	}
	if id := out["tickets"].([]any)[0].(map[string]any)["id"].(float64); id != 401 {
		t.Fatalf("first %v", id)
	}
	next, _ := url.Parse(out["next_page"].(string))
	st, _, out = c.do("GET", strings.TrimPrefix(next.Path, "/api/v2")+"?"+next.RawQuery, nil)
	if st != 200 || len(out["tickets"].([]any)) != 1 || out["previous_page"] == nil {
		t.Fatalf("page 2: %d %v", st, out)
	}
	if st, _, _ := c.do("GET", "/users/999/tickets/requested.json", nil); st != 404 {
		t.Fatalf("unknown user: %d", st)
	}
}

func TestRateLimitHeadersAnd429(t *testing.T) {
	t.Parallel()
	_, c := demo(t, zendesktest.WithRateLimit(3, time.Minute))
	for i := range 3 {
		st, h, _ := c.do("GET", "/users/301.json", nil)
		if st != 200 || h.Get("X-Rate-Limit") != "3" || h.Get("X-Rate-Limit-Remaining") != string(rune('2'-i)) || h.Get("ratelimit-reset") == "" {
			t.Fatalf("request %d: %d %v", i, st, h)
		}
	}
	st, h, out := c.do("GET", "/users/301.json", nil)
	if st != 429 || h.Get("Retry-After") == "" || out["error"] != "APIRateLimitExceeded" {
		t.Fatalf("over budget: %d %v %v", st, h, out)
	}
}

func TestTicketLifecycle(t *testing.T) {
	t.Parallel()
	srv, c := demo(t, zendesktest.WithJobDelay(0))
	// Bad JSON and unknown endpoints.
	if st, _, _ := c.do("POST", "/tickets.json", "not an object"); st != 400 {
		t.Fatalf("bad body: %d", st)
	}
	if st, _, out := c.do("GET", "/nope.json", nil); st != 404 || out["error"] != "InvalidEndpoint" {
		t.Fatalf("unknown endpoint: %d %v", st, out)
	}
	// Create needs a comment.
	if st, _, out := c.do("POST", "/tickets.json", map[string]any{"ticket": map[string]any{"subject": "x"}}); st != 422 || out["error"] != "RecordInvalid" {
		t.Fatalf("blank description: %d %v", st, out)
	}
	st, _, out := c.do("POST", "/tickets.json", map[string]any{"ticket": map[string]any{
		"subject": "Hello", "comment": map[string]any{"body": "first"}, "requester": map[string]any{"name": "Neo", "email": "neo@example.com"},
		"tags": []string{"A", "b"}, "custom_fields": []map[string]any{{"id": 1, "value": "v"}}}})
	if st != 201 {
		t.Fatalf("create: %d %v", st, out)
	}
	tk := out["ticket"].(map[string]any)
	id := int64(tk["id"].(float64))
	if tk["status"] != "new" || tk["requester_id"] == nil {
		t.Fatalf("ticket %v", tk)
	}
	if u, ok := srv.UserByEmail("neo@example.com"); !ok || u.Name != "Neo" {
		t.Fatal("inline requester not created")
	}
	path := "/tickets/" + itoa(id) + ".json"
	st, _, out = c.do("PUT", path, map[string]any{"ticket": map[string]any{
		"comment": map[string]any{"body": "note", "public": false}, "additional_tags": []string{"c"}, "remove_tags": []string{"a"}, "status": "solved"}})
	if st != 200 {
		t.Fatalf("update: %d %v", st, out)
	}
	got, _ := srv.Ticket(id)
	if got.Status != "solved" || strings.Join(got.Tags, ",") != "b,c" || len(got.Comments) != 2 || got.Comments[1].Public {
		t.Fatalf("stored %+v", got)
	}
	c.do("PUT", path, map[string]any{"ticket": map[string]any{"status": "closed"}})
	if st, _, _ := c.do("PUT", path, map[string]any{"ticket": map[string]any{"comment": map[string]any{"body": "late"}}}); st != 422 {
		t.Fatalf("closed ticket updated: %d", st)
	}
	// update_many with ids and one change for all.
	st, _, out = c.do("PUT", "/tickets/update_many.json?ids=404,405", map[string]any{"ticket": map[string]any{"status": "open"}})
	if st != 200 {
		t.Fatalf("update_many: %d %v", st, out)
	}
	job := out["job_status"].(map[string]any)
	if job["status"] != "queued" {
		t.Fatalf("job %v", job)
	}
	st, _, out = c.do("GET", "/job_statuses/"+job["id"].(string)+".json", nil)
	job = out["job_status"].(map[string]any)
	if st != 200 || job["status"] != "completed" || len(job["results"].([]any)) != 2 {
		t.Fatalf("job status %d %v", st, job)
	}
	for _, id := range []int64{404, 405} {
		if tk, _ := srv.Ticket(id); tk.Status != "open" {
			t.Fatalf("ticket %d %s", id, tk.Status)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	_, c := demo(t)
	body := map[string]any{"ticket": map[string]any{"comment": map[string]any{"body": "x"}, "requester_id": 301}}
	post := func(key string, b any) (int, http.Header, map[string]any) {
		bb, _ := json.Marshal(b)
		req, _ := http.NewRequest("POST", c.base+"/tickets.json", bytes.NewReader(bb))
		req.Header.Set("Authorization", c.auth)
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, resp.Header, out
	}
	st1, h1, o1 := post("k1", body)
	st2, h2, o2 := post("k1", body)
	if st1 != 201 || st2 != 201 || h1.Get("x-idempotency-lookup") != "miss" || h2.Get("x-idempotency-lookup") != "hit" ||
		o1["ticket"].(map[string]any)["id"] != o2["ticket"].(map[string]any)["id"] {
		t.Fatalf("%d %d %v %v", st1, st2, h2, o2)
	}
	body["ticket"].(map[string]any)["subject"] = "changed"
	if st, _, _ := post("k1", body); st != 400 {
		t.Fatalf("key reused with another body: %d", st)
	}
}

func TestCloseEndsStalledRequests(t *testing.T) {
	t.Parallel()
	srv := zendesktest.NewServer()
	srv.InjectFault(zendesktest.Fault{Delay: time.Hour})
	c := newClient(t, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequest("GET", c.base+"/users/1.json", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	srv.Close()
	<-done
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	srv.Close() // twice is fine
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	srv, c := demo(t, zendesktest.WithoutRateLimits())
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 4 {
			case 0:
				c.do("POST", "/users.json", map[string]any{"user": map[string]any{"name": "U", "identities": []map[string]any{{"type": "phone_number", "value": "+1555000" + itoa(int64(1000+i))}}}})
			case 1:
				search(c, "type:user role:agent")
			case 2:
				c.do("PUT", "/tickets/401.json", map[string]any{"ticket": map[string]any{"additional_tags": []string{"t" + itoa(int64(i))}}})
			case 3:
				c.do("POST", "/channels/voice/agents/201/users/301/display.json", map[string]any{})
			}
			srv.Tickets()
			srv.Requests()
		}()
	}
	wg.Wait()
	if len(srv.Displays(201)) != 4 || len(srv.Requests()) != 16 {
		t.Fatalf("displays %d requests %d", len(srv.Displays(201)), len(srv.Requests()))
	}
}

func TestVoiceAndCalls(t *testing.T) {
	t.Parallel()
	srv, c := demo(t)
	if st, _, _ := c.do("POST", "/channels/voice/tickets.json", map[string]any{"ticket": map[string]any{"comment": map[string]any{"body": "x"}}}); st != 422 {
		t.Fatalf("no via_id: %d", st)
	}
	if st, _, _ := c.do("POST", "/channels/voice/agents/301/tickets/401/display.json", map[string]any{}); st != 404 {
		t.Fatalf("display to an end user: %d", st)
	}
	if st, _, _ := c.do("POST", "/channels/voice/agents/201/tickets/999/display.json", map[string]any{}); st != 404 {
		t.Fatalf("display of a missing ticket: %d", st)
	}
	if st, _, _ := c.do("POST", "/calls", map[string]any{"call": map[string]any{"app_id": 1}}); st != 422 {
		t.Fatalf("call without mandatory fields: %d", st)
	}
	st, _, out := c.do("POST", "/calls", map[string]any{"call": map[string]any{"app_id": 1, "from_line": "+15550009999",
		"to_line": "+18005550000", "call_started_at": "2026-11-24T09:00:00Z", "direction": "inbound",
		"comment": map[string]any{"title": "Call", "display_to_agent": 202}}})
	if st != 201 {
		t.Fatalf("create call: %d %v", st, out)
	}
	call := out["call"].(map[string]any)
	tid := int64(call["ticket_id"].(float64))
	tk, _ := srv.Ticket(tid)
	u, _ := srv.User(tk.RequesterID)
	if u.Phone != "+15550009999" || len(srv.Displays(202)) != 1 || len(srv.Calls()) != 1 {
		t.Fatalf("ticket %+v user %+v", tk, u)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestLatencyHoldsEachRequestConcurrently(t *testing.T) {
	t.Parallel()
	const lat = 100 * time.Millisecond
	srv, c := demo(t, zendesktest.WithLatency(lat))
	var wg sync.WaitGroup
	start := time.Now()
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			if code, _, _ := c.do("GET", "/users/me.json", nil); code != 200 {
				t.Errorf("status %d", code)
			}
			if d := time.Since(t0); d < lat {
				t.Errorf("answered after %v, before the %v latency", d, lat)
			}
		}()
	}
	wg.Wait()
	// Held side by side, not one after the other (10 × 100 ms).
	if d := time.Since(start); d > 8*lat {
		t.Errorf("10 requests took %v: held one after the other", d)
	}
	srv.SetLatency(0)
	t0 := time.Now()
	c.do("GET", "/users/me.json", nil)
	if d := time.Since(t0); d >= lat {
		t.Errorf("latency 0: answered after %v", d)
	}
}

func TestLatencyCancelAndClose(t *testing.T) {
	t.Parallel()
	srv := zendesktest.NewServer(zendesktest.WithLatency(time.Hour))
	c := newClient(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/users/me.json", nil)
	req.Header.Set("Authorization", c.auth)
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled request: %v", err)
	}
	got := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("GET", c.base+"/users/me.json", nil)
		req.Header.Set("Authorization", c.auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- 0
			return
		}
		resp.Body.Close()
		got <- resp.StatusCode
	}()
	time.Sleep(50 * time.Millisecond)
	srv.Close()
	if code := <-got; code != http.StatusServiceUnavailable && code != 0 {
		t.Fatalf("held request on Close: %d", code)
	}
	for _, r := range srv.Requests() {
		if r.Status == 200 {
			t.Errorf("%s %s answered 200 within an hour's latency", r.Method, r.Path)
		}
	}
}

func TestLatencyProcessesOnArrival(t *testing.T) {
	t.Parallel()
	const lat = 300 * time.Millisecond
	srv, c := demo(t, zendesktest.WithLatency(lat))
	done := make(chan int, 1)
	t0 := time.Now()
	go func() {
		code, _, _ := c.do("POST", "/users.json", map[string]any{"user": map[string]any{"name": "Ann", "email": "ann@example.com"}})
		done <- code
	}()
	deadline := time.Now().Add(lat / 2)
	for {
		if _, ok := srv.UserByEmail("ann@example.com"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the user was not created on arrival")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case code := <-done:
		t.Fatalf("answered %d after %v, before the latency", code, time.Since(t0))
	default:
	}
	if code := <-done; code != http.StatusCreated {
		t.Fatalf("status %d", code)
	}
	if d := time.Since(t0); d < lat {
		t.Errorf("answered after %v", d)
	}
}

// TestSharedPhoneNumber: a user's shared_phone_number says whether another
// user holds the same phone identity, including one added through the
// identities API after both were created.
func TestSharedPhoneNumber(t *testing.T) {
	t.Parallel()
	srv := zendesktest.NewServer()
	t.Cleanup(srv.Close)
	c := newClient(t, srv)
	a := srv.AddUser(zendesktest.User{Name: "A", Phone: "+15550001111"})
	b := srv.AddUser(zendesktest.User{Name: "B", Phone: "+15550002222"})
	shared := func(u zendesktest.User) bool {
		t.Helper()
		st, _, out := c.do("GET", "/users/"+itoa(u.ID)+".json", nil)
		if st != 200 {
			t.Fatalf("get user %d: %d", u.ID, st)
		}
		return out["user"].(map[string]any)["shared_phone_number"].(bool)
	}
	if shared(a) || shared(b) {
		t.Fatal("distinct phones reported as shared")
	}
	if st, _, out := c.do("POST", "/users/"+itoa(b.ID)+"/identities.json", map[string]any{"identity": map[string]any{"type": "phone_number", "value": "+15550001111"}}); st != 201 {
		t.Fatalf("add identity: %d %v", st, out)
	}
	if !shared(a) {
		t.Fatal("A's phone is now B's too: shared_phone_number false")
	}
	if shared(b) {
		t.Fatal("B's own phone is not shared")
	}
	got := srv.UsersWithPhone("+15550001111")
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("UsersWithPhone: %+v", got)
	}
}

// TestRequestLogBounded: WithRequestLog(n) keeps the last n requests, in
// order, for Requests and RequestsTo.
func TestRequestLogBounded(t *testing.T) {
	srv, c := demo(t, zendesktest.WithoutRateLimits(), zendesktest.WithRequestLog(3))
	for i := range 10 {
		if st, _, out := c.do("GET", "/users/"+strconv.Itoa(i+1)+".json", nil); st != 200 && st != 404 {
			t.Fatalf("request %d: %d %v", i, st, out)
		}
	}
	reqs := srv.Requests()
	if len(reqs) != 3 {
		t.Fatalf("kept %d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if want := "/users/" + strconv.Itoa(8+i); r.Route != want {
			t.Errorf("request %d: %s, want %s", i, r.Route, want)
		}
	}
	if got := srv.RequestsTo("GET", "/users/"); len(got) != 3 {
		t.Errorf("RequestsTo: %d requests, want 3", len(got))
	}
	srv2, all := demo(t, zendesktest.WithoutRateLimits())
	for range 10 {
		all.do("GET", "/users/1.json", nil)
	}
	if n := len(srv2.Requests()); n != 10 {
		t.Errorf("by default every request is kept: %d, want 10", n)
	}
}
