package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/cxplay/ctikit/zendesk"
)

// latency is figure 2: pop latency with many conversations in flight,
// against the floor.
//
// Calls for the four strategies (one queue each, in turn) arrive at
// inflight/hold per second and each stays up for hold (ringing 1 s, then
// talking), so that about inflight conversations are in flight once the
// first hold has passed; the calls arriving during the second hold are
// measured: from the moment the source read the alerting update off the
// websocket (the snapshot's ObservedAt, reported by the engine's pop
// hook) to the moment the display request (or the voice ticket creation
// that displays) arrived at the Zendesk emulator. The floor is the
// strategy's sequential round trips before that request × the emulator's
// delay. What is above the floor is split into the time the emulator held
// the requests beyond its delay (timer overshoot, its own processing
// under its one lock) and the rest (ctikit, both HTTP stacks, the
// scheduler, the garbage collector). Rate limits are off (no Zendesk
// plan allows the stress setting's request rate; this measures ctikit,
// not the plan).
func (r *runner) latency(ctx context.Context) error {
	w, err := newWorld(r.c.emulators, emuConfig{agents: r.c.agents, zendeskDelay: r.c.latency, genesysDelay: r.c.genesysLatency, cpus: r.c.emulatorCPUs})
	if err != nil {
		return err
	}
	defer w.close()
	w.limits(Limits{Rate: 1 << 30, RateWindow: time.Minute, Updates: 1 << 30, UpdatesWindow: time.Minute})
	sts := strategies()
	if r.c.early {
		for i := range sts {
			sts[i].rule.IdentifyEarly = true
			sts[i].floorRTs = sts[i].earlyRTs
		}
	}
	tr := newTracker()
	// settle waits, once every call has been played, until the pops are
	// recorded (and ctikit's syncs done).
	var settle func(ids []string) error
	switch r.c.client {
	case "ctikit":
		st, err := w.start(ctx, stackOptions{rules: w.rulesFor(sts...), batch: true,
			updates: zendesk.Budget{Limit: 1 << 30, Per: time.Minute},
			store:   r.c.store, dir: r.storeDir(), hooks: tr.hooks(), log: r.log, batchWait: r.c.batchWait})
		if err != nil {
			return err
		}
		defer st.stop()
		settle = func(ids []string) error { return tr.waitSynced(ctx, ids, 2*time.Minute) }
	case "bare":
		b, err := startBare(ctx, w, tr, sts)
		if err != nil {
			return err
		}
		defer b.stop()
		settle = func([]string) error { return b.stop() }
	default:
		return fmt.Errorf("-client %q: want ctikit or bare", r.c.client)
	}

	rate := float64(r.c.inflight) / r.c.hold.Seconds()
	fmt.Fprintf(r.out, "Figure 2: pop latency (alerting update read → display request at Zendesk), %d conversations in flight\n", r.c.inflight)
	fmt.Fprintf(r.out, "  %.0f calls/s over the four strategies, each up %v; measured: the calls arriving once %d are in flight; Zendesk delay %v per request, Genesys %v per REST request\n",
		rate, r.c.hold, r.c.inflight, r.c.latency, r.c.genesysLatency)
	if r.c.client == "bare" {
		fmt.Fprintf(r.out, "  popped by the bare client (-client bare: the same Zendesk requests from net/http, no engine, store or sync; its share is in the ctikit column)\n")
	}
	stopProbe := startProbe(ctx, r.c.machine)
	res, err := r.latencyRun(ctx, w, tr, sts, settle)
	probe := stopProbe()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(r.out, 2, 4, 2, ' ', tabwriter.AlignRight)
	var detail bytes.Buffer // per strategy, under the table
	fmt.Fprintf(tw, "strategy\tpops\tin flight\tfloor\tp50\tp99\tmax\tp50/floor\tp99/floor\tp99-floor\tctikit p50/p99\temulator p50/p99\t\n")
	for i, s := range sts {
		res := res[i]
		floor := time.Duration(s.floorRTs) * r.c.latency
		p50, p99, mx := pct(res.lat, 50), pct(res.lat, 99), pct(res.lat, 100)
		fmt.Fprintf(tw, "%s\t%d\t%d–%d\t%v\t%v\t%v\t%v\t%s\t%s\t%v\t%v / %v\t%v / %v\t\n", s.name, len(res.lat), res.minFlight, res.maxFlight,
			floor, rd(p50), rd(p99), rd(mx), ratio(p50, floor), ratio(p99, floor), rd(p99-floor),
			rd(pct(res.own, 50)), rd(pct(res.own, 99)), rd(pct(res.emu, 50)), rd(pct(res.emu, 99)))
		if r.c.verbose || r.c.split {
			fmt.Fprintf(&detail, "  %s: read → first request p50/p99 %v / %v\n", s.name, rd(pct(res.pre, 50)), rd(pct(res.pre, 99)))
			fmt.Fprintf(&detail, "    ctikit split p50/p99: engine %v / %v, request out %v / %v, response back %v / %v\n",
				rd(pct(res.engine, 50)), rd(pct(res.engine, 99)), rd(pct(res.out, 50)), rd(pct(res.out, 99)), rd(pct(res.back, 50)), rd(pct(res.back, 99)))
			slices.SortFunc(res.splits, func(a, b callSplit) int { return cmp.Compare(b.lat, a.lat) })
			for _, c := range res.splits[:min(3, len(res.splits))] {
				fmt.Fprintf(&detail, "    slow: %s%s\n", c.desc, probe.mark(c.w))
			}
			if probe.ran { // and the slowest of the quiet ones not shown yet
				quiet := slices.DeleteFunc(slices.Clone(res.splits[min(3, len(res.splits)):]), func(c callSplit) bool {
					return probe.during(c.w.from, c.w.to) != seenQuiet
				})
				for _, c := range quiet[:min(3, len(quiet))] {
					fmt.Fprintf(&detail, "    slow: %s%s\n", c.desc, probe.mark(c.w))
				}
			}
		}
		if res.missing > 0 {
			fmt.Fprintf(&detail, "  %s: %d measured calls without a display%s\n", s.name, res.missing, res.firstErr)
		}
	}
	tw.Flush()
	_, _ = detail.WriteTo(r.out)
	fmt.Fprintf(r.out, "  machine probe (a separate process, during the run): %s\n", probe.summary)
	if probe.ran {
		fmt.Fprintf(r.out, "  above the floor, by what the probe saw during the pop (a wake-up over %v late: by itself, a machine stall; waiting behind this machine's own threads, CPUs busy):\n", probeLate)
		for i, s := range sts {
			floor := time.Duration(s.floorRTs) * r.c.latency
			var by [3][]time.Duration
			for _, w := range res[i].windows {
				k := probe.during(w.from, w.to)
				by[k] = append(by[k], w.to.Sub(w.from)-floor)
			}
			fmt.Fprintf(r.out, "    %s:", s.name)
			for k, ds := range by {
				sep := ","
				if k == len(by)-1 {
					sep = "\n"
				}
				fmt.Fprintf(r.out, " %s %d, p50 %v, p99 %v%s", probeSeen(k), len(ds), rd(pct(ds, 50)), rd(pct(ds, 99)), sep)
			}
		}
	}
	fmt.Fprintln(r.out)
	return nil
}

// ratio is d/floor, or "—" for a floor of no round trip (-early).
func ratio(d, floor time.Duration) string {
	if floor == 0 {
		return "—"
	}
	return fmt.Sprintf("%.3f", float64(d)/float64(floor))
}

func rd(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

type latencyResult struct {
	lat []time.Duration // read → display request arrived
	own []time.Duration // of which outside the emulator: ctikit, HTTP, scheduling
	emu []time.Duration // of which inside the emulator beyond the delay (timer overshoot, processing)
	pre []time.Duration // update read → first Zendesk request arrived
	// own, split (each call's parts add up to its own):
	engine               []time.Duration // read → first request sent, plus response read → next request sent
	out                  []time.Duration // sent → arrived at the emulator (client transport, loopback, server)
	back                 []time.Duration // answered → response read by the client
	splits               []callSplit     // each call's split, for -split
	windows              []window        // each call's ring read → display arrived
	minFlight, maxFlight int
	missing              int
	firstErr             string // ": " and the first pop error, if any
}

// window is when a measured pop ran: from its ring update's read to its
// display request's arrival.
type window struct{ from, to time.Time }

// callSplit is one measured call's latency and its split, as printed.
type callSplit struct {
	lat  time.Duration
	desc string
	w    window
}

var (
	phoneInQuery = regexp.MustCompile(`%2B(\d{6,15})|\+(\d{6,15})`)
	idInPath     = regexp.MustCompile(`/(users|tickets)/(\d+)`)
)

// attribute finds, for each measured call, the Zendesk requests made for
// its customer up to the display (search, open tickets, user creation,
// the display or the voice ticket that displays) and splits the time from
// the alerting update to the display's arrival into the floor, the time
// the emulator held the requests beyond the delay, and the rest.
func (r *runner) attribute(w *world, sts []strategy, calls []*call, kind []int, tr *tracker, from time.Time, res []latencyResult) {
	timed := w.takeTimed()
	w.z.ResetRequests()
	users := map[int64]string{} // user id → phone
	for _, u := range w.z.Users() {
		if u.Phone != "" {
			users[u.ID] = u.Phone
		}
	}
	ticketUser := map[int64]int64{}
	for _, t := range w.z.Tickets() {
		ticketUser[t.ID] = t.RequesterID
	}
	type hop struct {
		q       timedRequest
		display bool
	}
	byPhone := map[string][]hop{}
	for _, q := range timed {
		route := strings.TrimSuffix(strings.TrimPrefix(q.Path, "/api/v2"), ".json")
		phone, display := "", false
		switch {
		case q.Method == "GET" && route == "/search":
			if m := phoneInQuery.FindStringSubmatch(q.Query); m != nil {
				phone = "+" + m[1] + m[2]
			}
		case q.Method == "POST" && route == "/users":
			if m := phoneInQuery.FindStringSubmatch(string(q.Body)); m != nil {
				phone = "+" + m[1] + m[2]
			}
		case q.Method == "POST" && route == "/channels/voice/tickets":
			var body struct {
				Ticket struct {
					RequesterID int64 `json:"requester_id"`
				} `json:"ticket"`
			}
			if json.Unmarshal(q.Body, &body) == nil {
				phone, display = users[body.Ticket.RequesterID], true
			}
		case q.Method == "POST" && strings.HasPrefix(route, "/channels/voice/agents/"):
			m := idInPath.FindAllStringSubmatch(route, -1)
			if len(m) == 1 {
				id, _ := strconv.ParseInt(m[0][2], 10, 64)
				if m[0][1] == "tickets" {
					id = ticketUser[id]
				}
				phone, display = users[id], true
			}
		case q.Method == "GET" && strings.HasSuffix(route, "/tickets/requested"):
			if m := idInPath.FindStringSubmatch(route); m != nil {
				id, _ := strconv.ParseInt(m[2], 10, 64)
				phone = users[id]
			}
		}
		if phone != "" {
			byPhone[phone] = append(byPhone[phone], hop{q, display})
		}
	}
	d := r.c.latency
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i, c := range calls {
		if c.alertedAt.Before(from) {
			continue
		}
		res := &res[kind[i]]
		floor := time.Duration(sts[kind[i]].floorRTs) * d
		p, ok := tr.pops[c.id]
		// The pop's requests: those that arrived after the ring was read
		// (an early search, -early, comes before).
		hops := slices.DeleteFunc(slices.Clone(byPhone[c.cust.phone]), func(h hop) bool { return ok && h.q.Arrived.Before(p.received) })
		slices.SortFunc(hops, func(a, b hop) int { return a.q.Arrived.Compare(b.q.Arrived) })
		di := slices.IndexFunc(hops, func(h hop) bool { return h.display })
		if !ok || p.err != nil || di < 0 {
			if p.err != nil && res.firstErr == "" {
				res.firstErr = ": " + p.err.Error()
			}
			res.missing++
			continue
		}
		total := hops[di].q.Arrived.Sub(p.received)
		var held time.Duration
		for _, h := range hops[:di] {
			held += h.q.Answered.Sub(h.q.Arrived)
		}
		emu := held - time.Duration(di)*d
		res.lat = append(res.lat, total)
		res.windows = append(res.windows, window{p.received, hops[di].q.Arrived})
		res.emu = append(res.emu, emu)
		res.own = append(res.own, total-floor-emu)
		res.pre = append(res.pre, hops[0].q.Arrived.Sub(p.received))
		if hops[0].q.sent.IsZero() {
			continue
		}
		eng := hops[0].q.sent.Sub(p.received)
		var out, back time.Duration
		for j, h := range hops[:di+1] {
			out += h.q.Arrived.Sub(h.q.sent)
			if j < di {
				back += h.q.got.Sub(h.q.Answered)
				eng += hops[j+1].q.sent.Sub(h.q.got)
			}
		}
		res.engine = append(res.engine, eng)
		res.out = append(res.out, out)
		res.back = append(res.back, back)
		res.splits = append(res.splits, callSplit{total, fmt.Sprintf("%v: own %v = engine %v + out %v + back %v (emulator +%v, %d hops)",
			rd(total), rd(total-floor-emu), rd(eng), rd(out), rd(back), rd(emu), di+1), res.windows[len(res.windows)-1]})
	}
}

func (r *runner) latencyRun(ctx context.Context, w *world, tr *tracker, sts []strategy, settle func(ids []string) error) ([]latencyResult, error) {
	total := 2 * r.c.inflight
	custs := make([][]customer, len(sts))
	for i, s := range sts {
		custs[i] = w.customers(s, (total+len(sts)-1)/len(sts))
	}
	gap := time.Duration(float64(r.c.hold) / float64(r.c.inflight))
	var (
		wg       sync.WaitGroup
		inflight atomic.Int64
		minF     = 1 << 30
		maxF     int
	)
	calls := make([]*call, total)
	kind := make([]int, total)
	start := time.Now()
	measureFrom := start.Add(r.c.hold)
	for i := range total {
		// Pace arrivals on the clock (not on sleeps, which drift).
		if d := time.Until(start.Add(time.Duration(i) * gap)); d > 0 && !sleep(ctx, d) {
			return nil, ctx.Err()
		}
		k := i % len(sts)
		c := &call{cust: custs[k][i/len(sts)], queue: sts[k].queue, agent: w.Agents[i%len(w.Agents)],
			ring: time.Second, talk: r.c.hold - time.Second, ivr: r.c.ivr}
		calls[i], kind[i] = c, k
		n := int(inflight.Add(1))
		if time.Now().After(measureFrom) {
			minF, maxF = min(minF, n), max(maxF, n)
		}
		wg.Go(func() {
			defer inflight.Add(-1)
			w.play(ctx, c, nil)
		})
	}
	wg.Wait()
	ids := make([]string, len(calls))
	for i, c := range calls {
		ids[i] = c.id
	}
	if err := settle(ids); err != nil {
		return nil, err
	}
	res := make([]latencyResult, len(sts))
	for i := range res {
		res[i].minFlight, res[i].maxFlight = minF, maxF
	}
	r.attribute(w, sts, calls, kind, tr, measureFrom, res)
	return res, nil
}
