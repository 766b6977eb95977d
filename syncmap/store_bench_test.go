package syncmap_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/syncmap"
)

// BenchmarkStoreSave measures durable conversation saves (each one commit,
// fsync'd) from one writer and from 64 concurrent writers, as the engine's
// workers make them under load. ns/op is per save.
//
//	go test ./syncmap -run '^$' -bench StoreSave -benchtime 2000x
func BenchmarkStoreSave(b *testing.B) {
	for _, writers := range []int{1, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			st, err := syncmap.OpenStore(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism(writers)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					rec := &cti.ConvRecord{ID: fmt.Sprintf("c%07d", i), UpdatedAt: time.Now(),
						Legs: map[string]*cti.LegRecord{"l": {Phase: cti.PhaseConnected, Rule: "support", PopDone: true}}}
					if err := st.SaveConversation(ctx, rec); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
