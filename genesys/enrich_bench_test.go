package genesys_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
)

// BenchmarkEnrichEnd: the Enricher at a conversation's end, against the
// emulator over loopback HTTP: a voice call (recording, analytics, speech
// analytics transcript, AI summary), a chat and a WhatsApp conversation
// with 30 messages. One op is
// one conversation; the names (agent, queue, wrap-up code) are cached
// after the first of each 64. Compare allocations: the HTTP round trips
// are the emulator's.
//
//	go test ./genesys -run '^$' -bench EnrichEnd -benchmem
func BenchmarkEnrichEnd(b *testing.B) {
	srv := gt.NewServer()
	defer srv.Close()
	client, err := genesys.NewClient(genesys.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, APIURL: srv.URL},
		genesys.WithRateLimits(1<<20, 1<<20, 1<<10))
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	ctx := context.Background()
	for _, kind := range []string{"voice", "chat", "whatsapp"} {
		b.Run(kind, func(b *testing.B) {
			const pool = 64
			convs := make([]*cti.Conversation, pool)
			for i := range convs {
				sp := gt.Spec{Media: gt.MediaVoice, From: fmt.Sprintf("+1415555%04d", i), Name: "Jane Roe", Queue: gt.QueueSupport}
				switch kind {
				case "chat":
					sp = gt.Spec{Media: gt.MediaChat, From: fmt.Sprintf("c%d@example.org", i), Name: "Kim", Body: "Hi", Queue: gt.QueueSupport}
				case "whatsapp":
					sp = gt.Spec{Media: gt.MediaMessage, MessageType: "whatsapp", From: fmt.Sprintf("+3361234%04d", i), Name: "Léa", Body: "Bonjour", Queue: gt.QueueSupport}
				}
				c := srv.Start(sp)
				leg := c.Alert(gt.AgentBob)
				c.Connect(leg)
				for k := range 30 {
					if k%2 == 0 {
						c.Say("", fmt.Sprintf("Customer line %d about the order", k))
					} else {
						c.Say(leg, fmt.Sprintf("Agent line %d with an answer", k))
					}
				}
				c.Summarize("The customer asked about an order; the agent answered.")
				c.Disconnect(leg)
				c.End()
				c.Wrapup(leg, gt.CodeResolved, "done")
				if convs[i], err = client.Conversation(ctx, c.ID, nil); err != nil {
					b.Fatal(err)
				}
			}
			var en *genesys.Enricher
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%pool == 0 {
					if en, err = genesys.NewEnricher(client); err != nil {
						b.Fatal(err)
					}
				}
				c := convs[i%pool].Clone()
				i++
				if err := en.Enrich(ctx, c); err != nil {
					b.Fatal(err)
				}
				if c.Content.Transcript == "" {
					b.Fatal("no transcript")
				}
			}
		})
	}
}
