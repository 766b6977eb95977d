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
			srv := benchServer(b, zendesktest.WithLatency(lat))
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
	srv := benchServer(b)
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

// benchServer is the demo emulator with a limit no benchmark reaches.
// WithoutRateLimits alone is not enough: it still sends Zendesk's rate
// limit headers, and once their remaining count falls below a fifth the
// client paces itself, as it should (a run of 2,000 searches measured
// 69 ms per search: the pacing interval, not the client).
func benchServer(b *testing.B, opts ...zendesktest.Option) *zendesktest.Server {
	srv := zendesktest.NewServer(opts...)
	b.Cleanup(srv.Close)
	srv.SetRateLimit(1<<30, time.Minute)
	srv.SetTicketUpdateLimit(1<<30, time.Minute)
	srv.Seed(zendesktest.DemoSeed())
	return srv
}
