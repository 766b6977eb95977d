package genesys_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/genesys"
)

// TestRawRequest: the requests ctikit makes without the SDK's models (the
// per-conversation GETs, the bulk and query POSTs) carry what the SDK's
// API client sent: the query (empty values left out), Accept, the bearer
// token, a JSON body with its Content-Type; and a call in flight ends
// when the client is closed.
func TestRawRequest(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []*http.Request
		body []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"tok-1","token_type":"bearer","expires_in":86400}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen, body = append(seen, r), b
		mu.Unlock()
		if r.URL.Path == "/api/v2/slow" {
			w.Header().Set("Retry-After", "30")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	c, err := genesys.NewClient(genesys.Config{ClientID: "id", ClientSecret: "secret", APIURL: srv.URL, LoginURL: srv.URL},
		genesys.WithRetryPolicy(genesys.RetryPolicy{Backoff: func(int) time.Duration { return 5 * time.Millisecond }, MaxWait: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	got, err := c.Raw(ctx, "get", http.MethodGet, "/api/v2/conversations/chats/c%2F1/messages", map[string]string{"sortOrder": "ascending", "maxResults": "100", "after": ""}, nil)
	if err != nil || string(got) != `{"ok":true}` {
		t.Fatalf("GET = %q, %v", got, err)
	}
	mu.Lock()
	r := seen[len(seen)-1]
	mu.Unlock()
	if r.URL.EscapedPath() != "/api/v2/conversations/chats/c%2F1/messages" || r.URL.RawQuery != "maxResults=100&sortOrder=ascending" {
		t.Errorf("GET %s?%s", r.URL.EscapedPath(), r.URL.RawQuery)
	}
	if r.Header.Get("Accept") != "application/json" || r.Header.Get("Authorization") != "Bearer tok-1" {
		t.Errorf("GET headers %v", r.Header)
	}

	if _, err := c.Raw(ctx, "post", http.MethodPost, "/api/v2/bulk", map[string]string{"useNormalizedMessage": "false"}, []string{"m1", "m2"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	r, b := seen[len(seen)-1], body
	mu.Unlock()
	var ids []string
	if r.Method != http.MethodPost || r.URL.RawQuery != "useNormalizedMessage=false" || r.Header.Get("Content-Type") != "application/json" ||
		json.Unmarshal(b, &ids) != nil || len(ids) != 2 || ids[1] != "m2" {
		t.Errorf("POST %s?%s %q %v", r.URL.Path, r.URL.RawQuery, b, r.Header)
	}

	// A call waiting out a 429's Retry-After ends when the client closes.
	done := make(chan error, 1)
	go func() {
		_, err := c.Raw(ctx, "slow", http.MethodGet, "/api/v2/slow", nil, nil)
		done <- err
	}()
	for {
		mu.Lock()
		n := len(seen)
		last := seen[n-1].URL.Path
		mu.Unlock()
		if last == "/api/v2/slow" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("the call succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a call waiting on Retry-After outlived Close")
	}
}
