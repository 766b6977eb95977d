// Command loadtest drives the real ctikit engine and adapters (genesys
// Source over the Genesys emulator's websocket, zendesk client, match,
// popup, syncmap sink, memory or bbolt store; wired as
// examples/server/app.go does) against the Genesys and Zendesk emulators,
// and prints the figures of BENCHMARKS.md. The emulators run in a child
// process of their own (-emulators process; see emulators.go), as the
// vendors' services do for a deployed ctikit, so that their CPU, heap
// and garbage collection are not counted as ctikit's:
//
//  1. Zendesk calls per conversation, per pop-up strategy, against each
//     strategy's floor, for first-time callers and for a mix where 30% of
//     the conversations are callers calling again within the match cache
//     TTL;
//  2. pop latency with many conversations in flight, against the floor
//     (the strategy's sequential Zendesk round trips × the injected
//     delay);
//  5. sync throughput under Zendesk's Update Ticket limit, batching
//     (update_many) against one update per conversation, with time scaled.
//
// Run it with the defaults (under two minutes on two cores):
//
//	go run ./examples/loadtest
//
// -h lists the knobs (sizes, the injected delay, the time scale, the store).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strings"
	"time"
)

type config struct {
	phases   string
	latency  time.Duration
	agents   int
	callers  int
	inflight int
	hold     time.Duration
	syncN    int
	singleN  int
	perTick  int
	scale    float64
	store    string
	verbose  bool
	split    bool
	early    bool
	// batchCalls lets the calls phase batch syncs (update_many) as
	// deployed; off, each conversation pays its own write.
	batchCalls bool
	// batchWait is the engine's sync batch wait (cti.WithBatchWait), as
	// the reference server's CTI_SYNC_BATCH_WAIT.
	batchWait time.Duration
	// gap is the time between two calls of a figure 1 wave.
	gap time.Duration
	// only, when set, limits figure 1 to these strategies (comma list).
	only       string
	cpuprofile string
	memprofile string
	trace      string
	ivr        time.Duration
	// emulators: process (a child process, the default) or inproc.
	emulators string
	// genesysLatency is the Genesys emulator's REST round trip in the
	// latency phase.
	genesysLatency time.Duration
	// client is who pops in figure 2: ctikit, or the bare client
	// (bare.go) that shows what this machine allows any client.
	client string
	// cpus and emulatorCPUs pin this process and the emulators' (CPU
	// lists, "" for no pinning); machine is the CPUs the tool started
	// with, which the probe watches.
	cpus, emulatorCPUs string
	machine            []int
}

func main() {
	var c config
	flag.StringVar(&c.phases, "phases", "calls,latency,sync", "phases to run: calls (figure 1), latency (figure 2), sync (figure 5)")
	flag.DurationVar(&c.latency, "latency", 20*time.Millisecond, "round-trip delay the Zendesk emulator adds to every request")
	flag.DurationVar(&c.genesysLatency, "genesys-latency", 20*time.Millisecond, "latency: round-trip delay the Genesys emulator adds to every REST request (the syncs' enrichment; 0: it answers at once, as in the other phases)")
	flag.IntVar(&c.agents, "agents", 200, "agents (Genesys users mapped to Zendesk agents)")
	flag.IntVar(&c.callers, "callers", 140, "calls: first-time callers per strategy (then 3/7 as many repeat calls: 30% of the mix)")
	flag.IntVar(&c.inflight, "inflight", 1000, "latency: conversations in flight (steady state)")
	flag.DurationVar(&c.hold, "hold", 15*time.Second, "latency: how long each conversation stays up (arrival rate = inflight/hold)")
	flag.DurationVar(&c.ivr, "ivr", 30*time.Millisecond, "latency: time in IVR and queue before the call rings an agent (0: the first update the engine sees is the ringing one)")
	flag.IntVar(&c.syncN, "sync", 2000, "sync: conversations synced with batching")
	flag.IntVar(&c.singleN, "single", 200, "sync: conversations synced one update each")
	flag.IntVar(&c.perTick, "limit", 100, "sync: the Update Ticket limit per scaled minute")
	flag.Float64Var(&c.scale, "scale", 10, "sync: time scale (10: Zendesk's per-minute limit applies per 6 s)")
	flag.StringVar(&c.store, "store", "bolt", "store: bolt (durable, as in production) or memory")
	flag.BoolVar(&c.batchCalls, "batch-calls", true, "calls: the sink batches (update_many) when several syncs are due together, as deployed; false: one update each")
	flag.DurationVar(&c.batchWait, "batch-wait", time.Second, "how long a due sync waits to share a Zendesk write (the reference server's CTI_SYNC_BATCH_WAIT default)")
	flag.DurationVar(&c.gap, "gap", 10*time.Millisecond, "calls: time between two calls of a wave")
	flag.StringVar(&c.only, "strategies", "", "calls: only these strategies (comma list of user, ticket:latest_open, ticket:new, nomatch create); default all")
	flag.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file (this process: ctikit and the load driver; the emulators only with -emulators inproc)")
	flag.StringVar(&c.memprofile, "memprofile", "", "write an allocation profile of the whole run to this file (go tool pprof -sample_index=alloc_space; this process, as -cpuprofile)")
	flag.StringVar(&c.trace, "trace", "", "write an execution trace of the whole run to this file (this process, as -cpuprofile)")
	flag.BoolVar(&c.verbose, "v", false, "log the engine at debug level to stderr")
	flag.StringVar(&c.emulators, "emulators", "process", "where the Genesys and Zendesk emulators run: process (a child process, as the vendors' services are not in ctikit's) or inproc (in this process)")
	probe := flag.Bool("probe", false, "internal: run as the machine probe (see probe.go)")
	emuChild := flag.Bool("emulators-child", false, "internal: run as the emulators' process (see emulators.go)")
	flag.BoolVar(&c.early, "early", false, "latency: the rules identify early (identify_early: the search while in IVR/queue, see -ivr); the floor is then the round trips left on the ring's path")
	flag.StringVar(&c.client, "client", "ctikit", "latency: who pops: ctikit (the engine, wired as the reference server) or bare (the same Zendesk requests from a minimal client with no engine, store or sync: this machine's own floor, see bare.go)")
	flag.BoolVar(&c.split, "split", false, "latency: split ctikit's share (engine, request out, response back) and show the slowest calls")
	flag.StringVar(&c.cpus, "cpus", "", "pin this process (ctikit and the load driver) to these CPUs, as taskset -c takes them (0-1,3); default: not pinned")
	flag.StringVar(&c.emulatorCPUs, "emulators-cpus", "", "pin the emulators' process to these CPUs (with -emulators process); default: not pinned")
	flag.Parse()
	c.machine = probeCPUs()
	if c.cpus != "" {
		cpus, err := parseCPUs(c.cpus)
		if err == nil {
			err = pinProcess(cpus)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest: -cpus:", err)
			os.Exit(2)
		}
	}
	if *probe {
		probeChild()
		return
	}
	if err := c.check(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(2)
	}
	if *emuChild {
		emulatorChild(emuConfig{agents: c.agents, zendeskDelay: c.latency, genesysDelay: c.genesysLatency})
		return
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt)
	defer cancel()
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if c.trace != "" {
		f, err := os.Create(c.trace)
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		if err := trace.Start(f); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		defer trace.Stop()
	}
	if err := run(ctx, c, os.Stdout); err != nil {
		trace.Stop()
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
	if c.memprofile != "" {
		if err := writeAllocs(c.memprofile); err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
	}
}

// check rejects flag combinations that cannot run or would mislead,
// before any phase runs.
func (c config) check() error {
	switch c.client {
	case "ctikit":
	case "bare":
		if c.early {
			// The bare client searches after the ring: the early floor
			// (without the search) would count its search as overhead.
			return errors.New("-client bare identifies at the ring: it cannot run with -early")
		}
	default:
		return fmt.Errorf("-client %q: want ctikit or bare", c.client)
	}
	if c.emulatorCPUs != "" {
		if c.emulators != "process" {
			return errors.New("-emulators-cpus pins the emulators' process: it needs -emulators process")
		}
		if _, err := parseCPUs(c.emulatorCPUs); err != nil {
			return fmt.Errorf("-emulators-cpus: %w", err)
		}
	}
	return nil
}

// writeAllocs writes the allocation profile of the run so far.
func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func run(ctx context.Context, c config, out io.Writer) error {
	start := time.Now()
	log := slog.New(slog.DiscardHandler)
	if c.verbose {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	fmt.Fprintf(out, "ctikit load test: %s, GOMAXPROCS=%d, Zendesk delay %v, store %s\n\n",
		runtime.Version(), runtime.GOMAXPROCS(0), c.latency, c.store)
	dir, err := os.MkdirTemp("", "ctikit-loadtest-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r := &runner{c: c, out: out, log: log, dir: dir}
	for _, p := range strings.Split(c.phases, ",") {
		var err error
		switch strings.TrimSpace(p) {
		case "calls":
			err = r.calls(ctx)
		case "latency":
			err = r.latency(ctx)
		case "sync":
			err = r.sync(ctx)
		case "":
		default:
			err = fmt.Errorf("unknown phase %q", p)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	fmt.Fprintf(out, "total %v\n", time.Since(start).Round(100*time.Millisecond))
	return nil
}

type runner struct {
	c   config
	out io.Writer
	log *slog.Logger
	dir string
	n   int
}

// storeDir is a fresh bbolt directory per engine.
func (r *runner) storeDir() string {
	r.n++
	return fmt.Sprintf("%s/state-%d", r.dir, r.n)
}
