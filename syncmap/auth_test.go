package syncmap_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// A 401 from Zendesk (credentials revoked, rotated, or a blip) fails the
// sync retryably: the engine keeps the job and retries it, instead of
// burying it in the dead letters. Found by the server's secrets test,
// where a 401 on one read sent two syncs to the dead letters.
func TestSinkUnauthorizedIsRetried(t *testing.T) {
	t.Parallel()
	e := newEmu(t)
	s, _ := newSink(t, e.zd)
	tk := e.srv.AddTicket(zendesktest.Ticket{RequesterID: e.requester, Status: "open", Subject: "Billing", Description: "Hi"}).ID
	for _, f := range []zendesktest.Fault{
		{Method: "GET", Route: "/tickets", Status: http.StatusUnauthorized, Times: 1},
		{Method: "PUT", Route: "/tickets", Status: http.StatusUnauthorized, Times: 1},
	} {
		job := e.job("auth-"+f.Method, "popped", tk)
		e.srv.InjectFault(f)
		err := s.Sync(context.Background(), job)
		if err == nil || !cti.IsRetryable(err) {
			t.Fatalf("%s 401: err = %v, want a retryable error", f.Method, err)
		}
		if err := syncUntilDone(t, s, job); err != nil {
			t.Fatal(err)
		}
		if got := e.ticket(t, tk); !got.HasTag(syncmap.MarkerTag(job.Key)) {
			t.Fatalf("%s 401: not synced after the credentials worked again", f.Method)
		}
	}
}
