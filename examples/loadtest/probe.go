package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The machine probe measures how late this machine wakes a sleeping
// thread while the load runs: a separate process (this binary with
// -probe) with one thread pinned to each CPU it may use (where the OS
// allows pinning; else one thread), each sleeping probeSleep in a loop
// and recording by how much each sleep overshot, until its standard input
// closes. Where the OS says how long the thread then waited on the run
// queue behind other threads (Linux: /proc/thread-self/schedstat), that
// part is told apart: it is this machine's own load (the load tool, the
// emulators, ctikit); the rest is the kernel's timer and the hypervisor
// running the virtual CPU late, which no process in the machine can
// change.
//
// A pop crosses several such wake-ups (websocket read, worker, HTTP
// client, loopback, server, and back), so the probe's tail is a floor
// under the pop latency's tail on this machine. Each late wake-up (over
// probeLate) is also reported with its time, so that figure 2 can tell
// the pops during which a CPU stalled from the others.
//
// Two pinned threads sleeping 1 ms each took the one-round-trip
// strategies' p50 from 1.04 to 1.05 of the floor: a pinned thread must
// preempt whatever runs on its CPU to wake. At 2 ms each, the machine
// wakes the probe as often as it woke the earlier single 1 ms thread.

// probeLate is the overshoot from which a probe wake-up is reported as a
// stall with its time.
const probeLate = time.Millisecond

// probeSleep is how long each probe thread sleeps between wake-ups.
const probeSleep = 2 * time.Millisecond

// stall is one probe wake-up later than probeLate: the probe on cpu
// should have woken at from and woke at to; rq of the lateness was spent
// waiting on the run queue behind the machine's other threads.
type stall struct {
	cpu      int
	from, to time.Time
	rq       time.Duration
}

func (s stall) over() time.Duration { return s.to.Sub(s.from) }

// probeResult is what the probe reports.
type probeResult struct {
	summary string
	ran     bool    // the probe ran and reported
	stalls  []stall // by from
}

// outside is how much of the stall the probe's thread was not waiting
// behind the machine's own threads: the kernel's timer and the
// hypervisor.
func (s stall) outside() time.Duration { return s.over() - s.rq }

// during classifies what the probe saw during [from, to]: a stall more
// than probeLate late by itself, outside the machine's own load
// (stalled); else a run-queue wait of more than probeLate behind the
// machine's own threads, the load tool's, the emulators' and ctikit's
// (busy); else nothing (quiet).
func (p *probeResult) during(from, to time.Time) probeSeen {
	seen := seenQuiet
	for _, s := range p.stalls {
		if s.from.After(to) {
			break
		}
		if s.to.Before(from) {
			continue
		}
		if s.outside() > probeLate {
			return seenStalled
		}
		if s.rq > probeLate {
			seen = seenBusy
		}
	}
	return seen
}

// probeSeen is what the probe saw during a pop.
type probeSeen int

const (
	seenQuiet   probeSeen = iota
	seenBusy              // the CPUs were busy with the machine's own threads
	seenStalled           // a CPU stalled outside the machine's own load
)

func (s probeSeen) String() string {
	return [...]string{"machine quiet", "CPUs busy", "machine stalled"}[s]
}

// mark notes on a slow call's line what the probe saw during it.
func (p *probeResult) mark(w window) string {
	if !p.ran {
		return ""
	}
	return "; " + p.during(w.from, w.to).String()
}

type probeSample struct{ over, rq time.Duration }

// probeChild is the -probe mode: sleep, measure, print a summary line
// and then one line per stall when stdin closes.
func probeChild() {
	cpus := probeCPUs()
	runtime.GOMAXPROCS(len(cpus) + 1)
	var stop atomic.Bool
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop.Store(true)
	}()
	var (
		mu      sync.Mutex
		samples []probeSample
		stalls  []stall
		pinned  = true
		wg      sync.WaitGroup
	)
	for _, cpu := range cpus {
		wg.Go(func() {
			runtime.LockOSThread() // the thread ends with the goroutine
			runDelay, err := pinThread(cpu)
			if err != nil {
				mu.Lock()
				pinned = false
				mu.Unlock()
				if cpu != cpus[0] {
					return // unpinned, one thread is enough
				}
			}
			var mine []probeSample
			var late []stall
			for !stop.Load() {
				t0, rq0 := time.Now(), runDelay()
				sleepThread(probeSleep)
				t1, rq1 := time.Now(), runDelay()
				s := probeSample{t1.Sub(t0) - probeSleep, rq1 - rq0}
				mine = append(mine, s)
				if s.over > probeLate {
					late = append(late, stall{cpu, t0.Add(probeSleep), t1, s.rq})
				}
			}
			mu.Lock()
			samples = append(samples, mine...)
			stalls = append(stalls, late...)
			mu.Unlock()
		})
	}
	wg.Wait()
	fmt.Println(probeSummary(samples, len(cpus), pinned))
	for _, s := range stalls {
		fmt.Printf("%d %d %d %d\n", s.cpu, s.from.UnixNano(), s.to.UnixNano(), s.rq)
	}
}

func probeSummary(ss []probeSample, cpus int, pinned bool) string {
	if len(ss) == 0 {
		return "no samples"
	}
	over := make([]time.Duration, len(ss))
	outside := make([]time.Duration, len(ss))
	n := 0
	for i, s := range ss {
		over[i], outside[i] = s.over, s.over-s.rq
		if s.over > 5*time.Millisecond {
			n++
		}
	}
	slices.Sort(over)
	slices.Sort(outside)
	p := func(ds []time.Duration, q float64) time.Duration { return rd(ds[int(q*float64(len(ds)-1))]) }
	where := "one thread"
	if pinned {
		where = fmt.Sprintf("a thread pinned to each of %d CPUs", cpus)
	}
	return fmt.Sprintf("%s, %d sleeps of %v overshot p50 %v, p99 %v, p99.9 %v, max %v (%d by more than 5ms); "+
		"not counting run-queue waits behind the machine's own load: p99 %v, p99.9 %v, max %v",
		where, len(ss), probeSleep, p(over, .5), p(over, .99), p(over, .999), rd(over[len(over)-1]), n,
		p(outside, .99), p(outside, .999), rd(outside[len(outside)-1]))
}

// startProbe starts the machine probe; the returned func stops it and
// returns what it saw (or, in summary, why it saw nothing).
func startProbe(ctx context.Context, cpus []int) func() *probeResult {
	fail := func(err error) func() *probeResult {
		return func() *probeResult { return &probeResult{summary: "probe not run: " + err.Error()} }
	}
	exe, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	cmd := exec.CommandContext(ctx, exe, "-probe", "-cpus", formatCPUs(cpus))
	in, err := cmd.StdinPipe()
	if err != nil {
		return fail(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	return func() *probeResult {
		in.Close()
		res, err := readProbe(out)
		_ = cmd.Wait()
		if err != nil {
			return &probeResult{summary: "probe gave no answer: " + err.Error()}
		}
		return res
	}
}

// readProbe reads the probe's summary line and stall lines.
func readProbe(r io.Reader) (*probeResult, error) {
	sc := bufio.NewScanner(r)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, io.ErrUnexpectedEOF
	}
	res := &probeResult{summary: strings.TrimSpace(sc.Text()), ran: true}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			return nil, fmt.Errorf("stall line %q", sc.Text())
		}
		var v [4]int64
		for i := range f {
			n, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("stall line %q: %w", sc.Text(), err)
			}
			v[i] = n
		}
		res.stalls = append(res.stalls, stall{int(v[0]), time.Unix(0, v[1]), time.Unix(0, v[2]), time.Duration(v[3])})
	}
	slices.SortFunc(res.stalls, func(a, b stall) int { return a.from.Compare(b.from) })
	return res, sc.Err()
}
