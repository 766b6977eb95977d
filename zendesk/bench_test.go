package zendesk_test

import (
	"context"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// Client overhead per search over loopback HTTP; run with
// -benchtime and compare with the emulator's injected latency to size
// pop latency budgets.
func BenchmarkSearchUsers(b *testing.B) {
	for _, lat := range []time.Duration{0, 5 * time.Millisecond} {
		b.Run(lat.String(), func(b *testing.B) {
			srv := zendesktest.NewServer(zendesktest.WithoutRateLimits(), zendesktest.WithLatency(lat))
			defer srv.Close()
			srv.Seed(zendesktest.DemoSeed())
			c, _ := zendesk.New(zendesk.Config{URL: srv.URL, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken})
			s := c.Searcher()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := s.SearchUsers(ctx, `phone:"+14155550102"`); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkPopShowTicket(b *testing.B) {
	srv := zendesktest.NewServer(zendesktest.WithoutRateLimits())
	defer srv.Close()
	srv.Seed(zendesktest.DemoSeed())
	c, _ := zendesk.New(zendesk.Config{URL: srv.URL, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken})
	p, _ := zendesk.NewPopper(c)
	rec := cti.Record{Kind: cti.KindTicket, ID: zendesktest.DemoTicketJaneOpen}
	req := cti.PopRequest{Agent: cti.Agent{ID: zendesktest.DemoAgentAlice}, Decision: cti.Decision{Action: cti.ActionShow, Record: &rec}}
	ctx := context.Background()
	for b.Loop() {
		if _, err := p.Pop(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}
