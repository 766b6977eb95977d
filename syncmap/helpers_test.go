package syncmap_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/syncmap/syncmaptest"
)

const (
	fieldDuration = "360000000001"
	fieldWrapup   = "360000000002"
	fieldNotes    = "360000000003"
	agentID       = 901
	requesterID   = 501
)

// testRules has one rule per sync target.
func testRules() *cti.Rules {
	fields := map[string]string{fieldDuration: "{{.CallDuration}}", fieldWrapup: "{{.WrapupName}}", fieldNotes: "{{.WrapupNotes}}"}
	rule := func(name string, target cti.SyncTicket, comment cti.CommentMode) cti.Rule {
		return cti.Rule{Name: name, Popup: cti.PopupNone,
			Sync: cti.SyncSpec{Ticket: target, Comment: comment, Fields: fields, Tags: []string{"genesys", "Voice Call"}}}
	}
	return &cti.Rules{Subscribe: cti.Subscribe{Queues: []string{"q1"}}, Rules: []cti.Rule{
		rule("popped", cti.SyncPopped, cti.CommentInternal),
		rule("latest", cti.SyncLatestOpen, cti.CommentPublic),
		rule("new", cti.SyncNew, cti.CommentInternal),
		{Name: "recording", Popup: cti.PopupNone, Sync: cti.SyncSpec{Ticket: cti.SyncPopped,
			Fields: map[string]string{fieldNotes: "{{.RecordingURL}}"}}},
	}}
}

// voiceJob is the finished sync job of a voice call, leg l1, agent 901.
func voiceJob(conv, rule string, popped *cti.Record) *cti.SyncJob {
	b := ctitest.NewConversation(conv, cti.MediaVoice).Phone("+14155550100").Queue("q1", "Support")
	b.Alert("l1", "u1")
	b.Connect("l1")
	b.Hangup("l1")
	c := b.Wrapup("l1", "wc-refund", "Customer wants a refund")
	c.Agents[0].Wrapup.Name, c.Agents[0].Wrapup.Category = "Refund", "Billing"
	c.Links.InteractionURL = "https://apps.mypurecloud.com/directory/#/engage/admin/interactions/" + conv
	return &cti.SyncJob{Key: cti.JobKey(conv, "l1"), ConversationID: conv, LegID: "l1", Rule: rule,
		Conversation: c, Agent: &cti.Agent{ID: agentID, Name: "Jane"}, Popped: popped, EnqueuedAt: time.Now()}
}

func ticketRec(id int64) *cti.Record {
	return &cti.Record{Kind: cti.KindTicket, ID: id, RequesterID: requesterID}
}

func userRec(id int64) *cti.Record { return &cti.Record{Kind: cti.KindUser, ID: id} }

// notices collects sink notices.
type notices struct {
	mu sync.Mutex
	ns []syncmap.Notice
}

func (n *notices) add(x syncmap.Notice) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.ns = append(n.ns, x)
}

func (n *notices) of(kind syncmap.NoticeKind) []syncmap.Notice {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []syncmap.Notice
	for _, x := range n.ns {
		if x.Kind == kind {
			out = append(out, x)
		}
	}
	return out
}

func newSink(t *testing.T, zd syncmap.Zendesk, opts ...syncmap.Option) (*syncmap.Sink, *notices) {
	t.Helper()
	n := &notices{}
	base := []syncmap.Option{syncmap.WithNotify(n.add), syncmap.WithUpdateRate(6000, 100), syncmap.WithBatchSettle(0)}
	s, err := syncmap.NewSink(zd, testRules(), append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return s, n
}

// syncUntilDone runs Sync like the engine would, retrying retryable errors
// (without waiting), and returns the final error.
func syncUntilDone(t *testing.T, s cti.Sink, job *cti.SyncJob) error {
	t.Helper()
	for i := 0; i < 50; i++ {
		err := s.Sync(context.Background(), job)
		var d *cti.Deferred
		switch {
		case err == nil:
			return nil
		case errors.As(err, &d):
			job.Deferrals++
		case cti.IsRetryable(err):
			job.Attempts++
		default:
			return err
		}
	}
	t.Fatalf("job %s never settled", job.Key)
	return nil
}

func commentsWith(f *syncmaptest.Fake, id int64, sub string) int {
	n := 0
	for _, c := range f.Comments(id) {
		if strings.Contains(c.Body, sub) {
			n++
		}
	}
	return n
}

func fieldValue(tk *syncmap.Ticket, id string) any {
	fid, _ := syncmap.ParseFieldID(id)
	for _, f := range tk.CustomFields {
		if f.ID == fid {
			return f.Value
		}
	}
	return nil
}
