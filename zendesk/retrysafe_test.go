package zendesk_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// A ticket update may add a comment: after a timeout (the write may have
// happened, its response lost) or a 5xx, the transport does not repeat
// it, or the comment would be added twice. The caller retries after
// checking (the sync's marker).
func TestTransportTicketUpdateNotRepeated(t *testing.T) {
	t.Parallel()
	srv, c := env(t, nil, fast(), zendesk.WithAttemptTimeout(300*time.Millisecond))
	ctx := context.Background()
	upd := zendesk.TicketUpdate{Comment: &zendesk.CommentInput{Body: "once only"}}
	before, _ := srv.Ticket(zendesktest.DemoTicketJaneOpen)

	srv.InjectFault(zendesktest.Fault{Method: "PUT", Route: "/tickets/", Hold: 2 * time.Second, Times: 1})
	_, err := c.UpdateTicket(ctx, zendesktest.DemoTicketJaneOpen, upd)
	if !cti.IsRetryable(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	srv.InjectFault(zendesktest.Fault{Method: "PUT", Route: "/tickets/", Status: 500, Times: 1})
	_, err = c.UpdateTicket(ctx, zendesktest.DemoTicketJaneOpen, upd)
	if !cti.IsRetryable(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	// The emulator records a request when its handler ends: the held one's
	// ends once the server notices the client gave up on it.
	n := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if n = len(srv.RequestsTo("PUT", "/tickets/")); n >= 2 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("%d ticket updates sent, want 2 (none repeated)", n)
	}
	after, _ := srv.Ticket(zendesktest.DemoTicketJaneOpen)
	if n := len(after.Comments) - len(before.Comments); n != 1 {
		t.Fatalf("%d comments added, want 1 (the held write)", n)
	}

	// update_many is a ticket update too; a PUT elsewhere is still repeated.
	for _, tc := range []struct {
		path string
		safe bool
	}{
		{"/api/v2/tickets/update_many.json", false},
		{"/api/v2/tickets/401.json", false},
		{"/api/v2/users/12.json", true},
		{"/api/v2/channels/voice/calls/5.json", true},
	} {
		req, _ := http.NewRequest("PUT", srv.URL+tc.path, nil)
		if got := zendesk.RetrySafe(req); got != tc.safe {
			t.Errorf("RetrySafe(PUT %s) = %v, want %v", tc.path, got, tc.safe)
		}
	}
}
