package syncmap_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/syncmap/syncmaptest"
)

func exampleJob() *cti.SyncJob {
	b := ctitest.NewConversation("c-42", cti.MediaVoice).Phone("+14155550100").Queue("q1", "Support").Attr("Tier", "gold")
	b.Alert("l1", "u1")
	b.Connect("l1")
	b.Hangup("l1")
	c := b.Wrapup("l1", "wc-1", "Wants a refund")
	c.Agents[0].Wrapup.Name = "Refund"
	return &cti.SyncJob{Key: cti.JobKey("c-42", "l1"), ConversationID: "c-42", LegID: "l1", Rule: "support",
		Conversation: c, Agent: &cti.Agent{ID: 901, Name: "Jane"}, EnqueuedAt: ctitest.Start}
}

// A rule's fields are templates over the data points; times render in the
// configured zone and layout.
func ExampleMapper() {
	paris, _ := time.LoadLocation("Europe/Paris")
	rules := &cti.Rules{Rules: []cti.Rule{{Name: "support", Sync: cti.SyncSpec{
		Comment: cti.CommentNone,
		Fields:  map[string]string{"360000000001": "{{.CallDuration}}", "360000000002": `{{.Value "Segment"}} / {{.WrapupName}} at {{.StartTime}}`},
		Tags:    []string{"Genesys"},
	}}}}
	m, err := syncmap.NewMapper(rules,
		syncmap.WithFormat(syncmap.Format{Location: paris, Layout: "15:04"}),
		syncmap.WithComputed("Segment", `{{if eq (.Attr "Tier") "gold"}}VIP{{else}}standard{{end}}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	up, _ := m.Map(context.Background(), exampleJob())
	fmt.Println(up.Fields["360000000001"])
	fmt.Println(up.Fields["360000000002"])
	fmt.Println(up.Tags)
	// Output:
	// 0:00:05
	// VIP / Refund at 10:00
	// [genesys ctikit_d314e39c24ca2bcf]
}

// The sink writes the comment, fields and marker tag in one update; a
// second delivery of the same job writes nothing.
func ExampleSink() {
	zd := syncmaptest.NewFake() // a *zendesk.Client in production
	ticket := zd.AddTicket(syncmap.Ticket{RequesterID: 501})
	rules := &cti.Rules{Rules: []cti.Rule{{Name: "support", Sync: cti.SyncSpec{
		Ticket: cti.SyncPopped, Comment: cti.CommentInternal,
		Fields: map[string]string{"360000000001": "{{.CallDuration}}"},
	}}}}
	sink, err := syncmap.NewSink(zd, rules, syncmap.WithBatchSettle(0))
	if err != nil {
		fmt.Println(err)
		return
	}
	job := exampleJob()
	job.Popped = &cti.Record{Kind: cti.KindTicket, ID: ticket}
	for range 2 { // delivered twice: a crash before the outbox ack
		if err := sink.Sync(context.Background(), job); err != nil {
			fmt.Println(err)
		}
	}
	cs := zd.Comments(ticket)
	fmt.Println(len(cs), "comment, internal:", !cs[0].Public)
	fmt.Println(zd.Get(ticket).Tags)
	// Output:
	// 1 comment, internal: true
	// [ctikit_d314e39c24ca2bcf]
}

// The durable store keeps pending syncs across restarts.
func ExampleOpenStore() {
	dir, _ := os.MkdirTemp("", "ctikit-state")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	store, err := syncmap.OpenStore(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = store.Put(ctx, exampleJob())
	_ = store.Close() // or a crash

	store, _ = syncmap.OpenStore(dir)
	defer store.Close()
	due, _, _ := store.Due(ctx, time.Now(), 10)
	fmt.Println(len(due), due[0].Key)
	// Output: 1 c-42/l1
}
