package cti_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
)

// benchEngine runs an engine with instant collaborators and returns it with
// its source, a pop counter and a stop function.
func benchEngine(b *testing.B) (*ctitest.Source, *atomic.Int64, func()) {
	b.Helper()
	var pops atomic.Int64
	m := cti.MatcherFunc(func(context.Context, cti.Query) (cti.Result, error) {
		return cti.Result{Records: []cti.Record{{Kind: cti.KindUser, ID: 1}}}, nil
	})
	p := cti.PopperFunc(func(_ context.Context, req cti.PopRequest) (cti.PopResult, error) {
		pops.Add(1)
		return cti.PopResult{Shown: req.Decision.Record}, nil
	})
	src := ctitest.NewSource()
	eng, err := cti.NewEngine(src, testRules(), cti.WithMatcher(m), cti.WithStrategy(strategy), cti.WithPopper(p),
		cti.WithDirectory(directory), cti.WithSink(cti.SinkFunc(func(context.Context, *cti.SyncJob) error { return nil })))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- eng.Run(ctx) }()
	return src, &pops, func() { cancel(); <-done }
}

// realistic is a voice call snapshot like Genesys sends: a customer, an
// agent leg and a dozen IVR attributes.
func realistic(id string) *ctitest.Builder {
	b := ctitest.NewConversation(id, cti.MediaVoice).Phone("+14155550100").Queue("0f9c1f3a-5d2e-4a8b-9c61-2b7e3f4a5d60", "Support")
	for i := range 12 {
		b.Attr(fmt.Sprintf("ivr.Attribute%02d", i), fmt.Sprintf("value-%02d-%s", i, id))
	}
	return b
}

// BenchmarkEngineMemory measures the heap the engine holds per live
// conversation (alerting → connected, popped, not yet ended).
// Reproduce: go test ./cti -run '^$' -bench EngineMemory -benchtime 1x
func BenchmarkEngineMemory(b *testing.B) {
	const n = 10000
	for range b.N {
		snaps := make([][2]*cti.Conversation, n)
		for i := range snaps {
			bd := realistic(fmt.Sprintf("conv-%05d", i))
			snaps[i] = [2]*cti.Conversation{bd.Alert("leg-a", fmt.Sprintf("user-%03d", i%200)), bd.Connect("leg-a")}
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		src, pops, stop := benchEngine(b)
		ctx := context.Background()
		for i := range snaps {
			if err := src.Send(ctx, snaps[i][0], snaps[i][1]); err != nil {
				b.Fatal(err)
			}
			snaps[i] = [2]*cti.Conversation{}
		}
		deadline := time.Now().Add(time.Minute)
		for pops.Load() < n && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // let workers exit
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "heapB/conv")
		b.ReportMetric(float64(pops.Load()), "pops")
		stop()
	}
}

// BenchmarkEngineDuplicate measures handing the engine a snapshot it has
// already seen (the same update on the queue and the user topic), end to
// end through the conversation's worker.
func BenchmarkEngineDuplicate(b *testing.B) {
	src, _, stop := benchEngine(b)
	defer stop()
	ctx := context.Background()
	const convs = 1000
	snaps := make([]*cti.Conversation, convs)
	for i := range snaps {
		bd := realistic(fmt.Sprintf("c%d", i))
		bd.Alert("leg-a", "user-1")
		snaps[i] = bd.Connect("leg-a")
		if err := src.Send(ctx, snaps[i].Clone()); err != nil {
			b.Fatal(err)
		}
	}
	clones := make([]*cti.Conversation, b.N)
	for i := range clones {
		clones[i] = snaps[i%convs].Clone()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := src.Send(ctx, clones[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMerge measures folding one snapshot into another.
func BenchmarkMerge(b *testing.B) {
	bd := realistic("c")
	s1 := bd.Alert("leg-a", "user-1")
	s2 := bd.Connect("leg-a")
	b.ReportAllocs()
	for range b.N {
		c := s1.Clone()
		c.Merge(s2)
	}
}
