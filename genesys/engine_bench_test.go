package genesys_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/genesys"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/syncmap"
	pc "github.com/mypurecloud/platform-client-sdk-go/v157/platformclientv2"
)

// The benchmarks in this file measure the engine step the issue calls
// "decode + route + dedupe": a notification frame goes through the real
// Source frame path (split, duplicate check, lean decode, phone
// normalization, tracking) into the real cti.Engine (shard mailbox,
// per-conversation worker: load, merge, rule match, leg phases, pop with
// instant collaborators, save to the memory store), and the same body
// arriving again on the agent's topic is dropped as an exact duplicate.
// See BenchmarkStream for the comparison and how to run it.

// benchRules applies to every media: identify by phone, email or handle,
// pop the user.
func benchRules() *cti.Rules {
	return &cti.Rules{
		Subscribe: cti.Subscribe{Queues: []string{"q"}},
		Rules: []cti.Rule{{
			Name: "all",
			Identify: []cti.IdentifySpec{{Kind: cti.IdentifyPhone}, {Kind: cti.IdentifyEmail},
				{Kind: cti.IdentifySocial}},
			Popup: cti.PopupUser, Multiple: cti.MultipleFirst,
		}},
	}
}

// instantEngine builds an engine whose collaborators answer at once; its
// source is never run (frames are handed to it with HandleFrame). It counts
// pops and syncs.
func instantEngine(tb testing.TB, opts ...cti.Option) (*cti.Engine, *benchCounts, func()) {
	tb.Helper()
	var n benchCounts
	m := cti.MatcherFunc(func(context.Context, cti.Query) (cti.Result, error) {
		return cti.Result{Records: []cti.Record{{Kind: cti.KindUser, ID: 1}}}, nil
	})
	p := cti.PopperFunc(func(_ context.Context, req cti.PopRequest) (cti.PopResult, error) {
		n.pops.Add(1)
		return cti.PopResult{Shown: req.Decision.Record}, nil
	})
	d := cti.DirectoryFunc(func(_ context.Context, l *cti.AgentLeg) (cti.Agent, error) {
		return cti.Agent{ID: 7, Email: "agent@example.com"}, nil
	})
	strategy := cti.StrategyFunc(func(in cti.DecideInput) cti.Decision {
		if len(in.Result.Records) == 0 {
			return cti.Decision{Action: cti.ActionNone}
		}
		r := in.Result.Records[0]
		return cti.Decision{Action: cti.ActionShow, Record: &r}
	})
	running := make(chan struct{})
	idle := cti.SourceFunc(func(ctx context.Context, _ cti.Handler) error {
		close(running) // the engine accepts snapshots once it runs its source
		<-ctx.Done()
		return nil
	})
	base := []cti.Option{cti.WithMatcher(m), cti.WithStrategy(strategy), cti.WithPopper(p), cti.WithDirectory(d),
		cti.WithSink(cti.SinkFunc(func(context.Context, *cti.SyncJob) error { n.syncs.Add(1); return nil }))}
	eng, err := cti.NewEngine(idle, benchRules(), append(base, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	<-running
	return eng, &n, func() { cancel(); <-done }
}

// benchCounts counts what an instantEngine popped and synced.
type benchCounts struct{ pops, syncs atomic.Int64 }

// streamUpdate is one conversation update as Genesys sends it: the frame on the
// queue topic and the same body on the agent's topic (dropped as an exact
// duplicate).
type streamUpdate struct{ queue, user []byte }

// lifecycle plays convs conversations on the Genesys emulator, cycling
// through every media and messaging channel (genesystest.AllKinds), each
// with its own customer, and returns their updates in order: start (in
// queue), alerting, connected, and unless live, disconnected and wrapped
// up. Conversations are interleaved ten at a time, as in a contact center.
func lifecycle(tb testing.TB, convs int, live bool) []streamUpdate {
	tb.Helper()
	g := gt.NewServer(gt.WithSeed(gt.DemoSeed()))
	defer g.Close()
	kinds := gt.AllKinds()
	agents := []string{gt.AgentAlice, gt.AgentBob, gt.AgentCarol}
	qtopic := "v2.routing.queues." + gt.QueueSupport + ".conversations"
	var out []streamUpdate
	for base := 0; base < convs; base += 10 {
		type conv struct {
			c     *gt.Conversation
			leg   string
			agent string
		}
		var batch []conv
		emit := func(cv conv) {
			utopic := qtopic
			if cv.agent != "" {
				utopic = "v2.users." + cv.agent + ".conversations"
			}
			out = append(out, streamUpdate{queue: cv.c.Frame(qtopic), user: cv.c.Frame(utopic)})
		}
		for i := base; i < min(base+10, convs); i++ {
			k := kinds[i%len(kinds)]
			sp := gt.Spec{ID: fmt.Sprintf("b3c0e7a2-0000-4000-8000-%012d", i), Media: k.Media, MessageType: k.MessageType,
				Queue: gt.QueueSupport, Name: fmt.Sprintf("Customer %d", i),
				Attributes: map[string]string{"ivr.AccountNumber": fmt.Sprintf("AC-%06d", i), "ivr.Intent": "billing"}}
			switch {
			case k.Media == gt.MediaEmail || k.Media == gt.MediaChat:
				sp.From = fmt.Sprintf("customer%d@example.org", i)
				sp.Subject, sp.Body = "Question about my order", "Hello, my order has not arrived yet."
			case k.Media == gt.MediaVoice || k.Media == gt.MediaCallback || k.MessageType == "sms" || k.MessageType == "whatsapp":
				sp.From = fmt.Sprintf("+1415%07d", 5550000+i)
			default:
				sp.From = fmt.Sprintf("handle-%d", i)
				sp.Body = "Hi, I have a question."
			}
			cv := conv{c: g.Start(sp), agent: agents[i%len(agents)]}
			emit(conv{c: cv.c})
			batch = append(batch, cv)
		}
		for i := range batch {
			batch[i].leg = batch[i].c.Alert(batch[i].agent)
			emit(batch[i])
		}
		for _, cv := range batch {
			cv.c.Connect(cv.leg)
			emit(cv)
		}
		if live {
			continue
		}
		for _, cv := range batch {
			cv.c.Disconnect(cv.leg)
			emit(cv)
		}
		for _, cv := range batch {
			cv.c.Wrapup(cv.leg, gt.CodeResolved, "Resolved on first contact.")
			emit(cv)
		}
	}
	return out
}

// waitIdle waits until the engine has acted on everything it received and
// delivered syncs syncs.
func waitIdle(tb testing.TB, eng *cti.Engine, n *benchCounts, syncs int64) {
	deadline := time.Now().Add(time.Minute)
	for i := 0; ; i++ {
		st := eng.Stats()
		if st.Busy == 0 && st.Deliveries == 0 && n.syncs.Load() >= syncs {
			return
		}
		if i%1024 == 0 && time.Now().After(deadline) {
			tb.Fatalf("engine not idle after a minute: %+v, %d syncs of %d", st, n.syncs.Load(), syncs)
		}
		runtime.Gosched()
	}
}

func benchSource(tb testing.TB, client *genesys.Client) *genesys.Source {
	tb.Helper()
	norm, err := match.NewNormalizer("US")
	if err != nil {
		tb.Fatal(err)
	}
	src, err := genesys.NewSource(client, genesys.WithQueues(gt.QueueSupport), genesys.WithoutAgentDetails(),
		genesys.WithPhoneNormalizer(norm.Normalize))
	if err != nil {
		tb.Fatal(err)
	}
	return src
}

// BenchmarkStream compares, per conversation update of a realistic stream
// (every media, start to wrap-up, each update also arriving on the agent's
// topic), five ways of consuming it:
//
//   - sdk: decode the frame into the SDK's model
//     (Conversationeventtopicconversation), as the SDK's notification
//     handler does; duplicates are decoded too (the SDK has no dedupe);
//   - lean: ctikit's decoder on the frame, once (duplicates not counted);
//   - stdlib: encoding/json into the same lean structs, once: the
//     issue's "plain lean decode" baseline (no mapping to a
//     cti.Conversation, duplicates not counted);
//   - source: the Source frame path (split, duplicate check, decode,
//     phone normalization, tracking) into a no-op handler, duplicate
//     included;
//   - engine: the same into a running cti.Engine with instant
//     collaborators: the shard mailbox and the conversation's worker
//     (load, merge, rule, leg phases, pop, save, sync enqueue and
//     delivery), timed until the workers are idle.
//
// One op is one update. Run on one core:
//
//	go test ./genesys -run '^$' -bench Stream -cpu 1 -count 6
func BenchmarkStream(b *testing.B) {
	const convs = 700 // 50 of each kind
	ups := lifecycle(b, convs, false)
	var bytesPer int64
	for _, u := range ups {
		bytesPer += int64(len(u.queue))
	}
	bytesPer /= int64(len(ups))
	client, err := genesys.NewClient(genesys.Config{ClientID: "x", ClientSecret: "y", APIURL: "http://127.0.0.1:1"})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()

	b.Run("sdk", func(b *testing.B) {
		b.SetBytes(bytesPer)
		b.ReportAllocs()
		for i := range b.N {
			u := ups[i%len(ups)]
			for _, f := range [][]byte{u.queue, u.user} {
				var env struct {
					TopicName string                                `json:"topicName"`
					EventBody pc.Conversationeventtopicconversation `json:"eventBody"`
				}
				if err := json.Unmarshal(f, &env); err != nil || env.EventBody.Id == nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("lean", func(b *testing.B) {
		dec := &genesys.Decoder{}
		b.SetBytes(bytesPer)
		b.ReportAllocs()
		for i := range b.N {
			if _, c, err := dec.Frame(ups[i%len(ups)].queue, fixedTime); err != nil || c == nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stdlib", func(b *testing.B) {
		b.SetBytes(bytesPer)
		b.ReportAllocs()
		for i := range b.N {
			if _, id, err := genesys.StdlibFrame(ups[i%len(ups)].queue); err != nil || id == "" {
				b.Fatal(err)
			}
		}
	})
	b.Run("source", func(b *testing.B) {
		h := cti.HandlerFunc(func(context.Context, *cti.Conversation) error { return nil })
		var src *genesys.Source
		b.SetBytes(bytesPer)
		b.ReportAllocs()
		for i := range b.N {
			if i%len(ups) == 0 {
				src = benchSource(b, client) // a fresh dedupe window and tracking per pass
			}
			u := ups[i%len(ups)]
			genesys.HandleFrame(src, h, u.queue)
			genesys.HandleFrame(src, h, u.user)
		}
	})
	b.Run("engine", func(b *testing.B) {
		var (
			eng  *cti.Engine
			stop func()
			src  *genesys.Source
			n    *benchCounts
		)
		start := func() {
			eng, n, stop = instantEngine(b)
			src = benchSource(b, client)
			runtime.GC()
		}
		b.SetBytes(bytesPer)
		b.ReportAllocs()
		b.StopTimer()
		start()
		b.StartTimer()
		for i := range b.N {
			k := i % len(ups)
			if k == 0 && i > 0 {
				// A fresh engine per pass: the conversations are new again.
				waitIdle(b, eng, n, convs)
				b.StopTimer()
				if n.pops.Load() != convs || n.syncs.Load() != convs {
					b.Fatalf("%d pops, %d syncs for %d conversations", n.pops.Load(), n.syncs.Load(), convs)
				}
				stop()
				start()
				b.StartTimer()
			}
			genesys.HandleFrame(src, eng, ups[k].queue)
			genesys.HandleFrame(src, eng, ups[k].user)
			// Let the worker take this update before the next one comes,
			// as at any real rate (on one core it would otherwise merge
			// the whole conversation into one snapshot and pop nothing).
			runtime.Gosched()
		}
		waitIdle(b, eng, n, 0) // a partial pass: its conversations are acted on, their syncs may be due
		b.StopTimer()
		if st := src.Stats(); st.Malformed+st.Unknown > 0 {
			b.Fatalf("stats %+v", st)
		}
		stop()
	})
}

// BenchmarkEngineMemoryDecoded measures the heap the engine holds per live
// conversation (alerting, then connected; popped) when the snapshots come
// from the real decoder: 10,000 conversations of every media and
// messaging channel, delivered through the Source frame path (the
// source's tracking, dedupe window and the phone normalizer's memory are
// counted too).
// heapB/conv is the growth of heap in use (spans) after two GCs (the
// second empties the sync.Pool victim caches the frame generation left,
// which a single GC leaves in the baseline and then frees during the
// measurement); liveB/conv that of live objects. The state store is the
// in-memory one (its copies of the records are on the heap) or the bbolt
// one the reference server uses (records in its file mapping).
//
//	go test ./genesys -run '^$' -bench EngineMemoryDecoded -benchtime 1x -count 3
func BenchmarkEngineMemoryDecoded(b *testing.B) {
	const n = 10000
	client, err := genesys.NewClient(genesys.Config{ClientID: "x", ClientSecret: "y", APIURL: "http://127.0.0.1:1"})
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	for _, store := range []string{"memory", "bolt"} {
		b.Run("store="+store, func(b *testing.B) {
			for range b.N {
				ups := lifecycle(b, n, true)
				src := benchSource(b, client)
				var opts []cti.Option
				if store == "bolt" {
					st, err := syncmap.OpenStore(b.TempDir())
					if err != nil {
						b.Fatal(err)
					}
					defer st.Close()
					opts = append(opts, cti.WithStore(st))
				}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&before)
				eng, counts, stop := instantEngine(b, opts...)
				for i := range ups {
					genesys.HandleFrame(src, eng, ups[i].queue)
					genesys.HandleFrame(src, eng, ups[i].user)
				}
				deadline := time.Now().Add(time.Minute)
				for st := eng.Stats(); (st.Busy > 0 || st.Deliveries > 0) && time.Now().Before(deadline); st = eng.Stats() {
					time.Sleep(5 * time.Millisecond)
				}
				runtime.GC()
				runtime.GC()
				runtime.ReadMemStats(&after)
				if st := src.Stats(); st.Delivered != len(ups) || counts.pops.Load() != n {
					b.Fatalf("delivered %d of %d, %d pops (%+v)", st.Delivered, len(ups), counts.pops.Load(), st)
				}
				b.ReportMetric(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/n, "heapB/conv")
				b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/n, "liveB/conv")
				stop()
				runtime.KeepAlive(src)
				runtime.KeepAlive(ups) // the frames are counted before and after
			}
		})
	}
}
