package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/cxplay/ctikit/zendesk"
)

// sync is figure 5: conversations synced per minute under Zendesk's Update
// Ticket limit, with batching (the sink as a cti.BatchSink: update_many)
// and with one update per conversation.
//
// Time is scaled: the limit (100 updates a minute per account) applies per
// minute/scale, in the emulator, in the client's ticket-update budget and
// in the sink's write pacing alike; rates are reported per scaled minute
// ("/min"), i.e. as they would be per real minute. The account rate limit
// is lifted (it is another limit, and pops at this rate would exceed any
// plan). Customers call again and again (popup ticket:latest_open, sync:
// popped), so each ticket gets several syncs, which must land in order.
// The sink is held until every call has ended, so that the engine starts
// from a backlog and the rate measured is the sink's, not the callers'.
func (r *runner) sync(ctx context.Context) error {
	minute := time.Duration(float64(time.Minute) / r.c.scale)
	fmt.Fprintf(r.out, "Figure 5: sync throughput under the Update Ticket limit (%d per minute; time scaled ×%g: one minute = %v)\n",
		r.c.perTick, r.c.scale, minute)
	fmt.Fprintf(r.out, "  %d calls per customer (and ticket), about a second apart; the sink is held until all are queued, then drains the backlog\n", callsPerCustomer)
	tw := tabwriter.NewWriter(r.out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "sink\tconversations\tsynced/min\tZendesk writes\tother calls\tlost\tout of order\tdrained in\t\n")
	var rates [2]float64
	for i, batch := range []bool{false, true} {
		n := r.c.singleN
		name := "one update each"
		if batch {
			n, name = r.c.syncN, "batched (update_many)"
		}
		res, err := r.syncRun(ctx, batch, n, minute)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rates[i] = res.perMinute
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%d\t%d\t%d\t%d\t%v\t\n", name, n, res.perMinute, res.writes, res.reads, res.lost, res.outOfOrder,
			res.took.Round(100*time.Millisecond))
	}
	tw.Flush()
	fmt.Fprintf(r.out, "  batched / one each = %.1f×\n\n", rates[1]/rates[0])
	return nil
}

// callsPerCustomer is how many calls each customer of the sync phase makes.
const callsPerCustomer = 5

// middleRate is the rate of events ts over their middle 80% (the first ones
// ride the budgets' initial bursts), per minute.
func middleRate(ts []time.Time, minute time.Duration) float64 {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	lo, hi := len(ts)/10, len(ts)*9/10
	span := ts[hi].Sub(ts[lo])
	if span <= 0 {
		return 0
	}
	return float64(hi-lo) / (float64(span) / float64(minute))
}

type syncResult struct {
	perMinute     float64
	writes, reads int
	lost          int
	outOfOrder    int
	took          time.Duration
}

// syncRun plays n calls by n/callsPerCustomer customers (one after the
// other, a second apart), then lets the engine sync them and checks every
// ticket.
func (r *runner) syncRun(ctx context.Context, batch bool, n int, minute time.Duration) (syncResult, error) {
	const per = callsPerCustomer
	w, err := newWorld(r.c.emulators, emuConfig{agents: r.c.agents, zendeskDelay: r.c.latency, cpus: r.c.emulatorCPUs})
	if err != nil {
		return syncResult{}, err
	}
	defer w.close()
	w.limits(Limits{Rate: 1 << 30, RateWindow: time.Minute, Updates: r.c.perTick, UpdatesWindow: minute})
	var s strategy
	for _, x := range strategies() {
		if x.name == stLatest {
			s = x
		}
	}
	tr := newTracker()
	gate := make(chan struct{})
	st, err := w.start(ctx, stackOptions{rules: w.rulesFor(s), batch: batch,
		updates: zendesk.Budget{Limit: r.c.perTick, Per: minute},
		store:   r.c.store, dir: r.storeDir(), hooks: tr.hooks(), log: r.log, gate: gate, batchWait: r.c.batchWait})
	if err != nil {
		return syncResult{}, err
	}
	defer st.stop()
	custs := w.customers(s, (n+per-1)/per)
	w.z.ResetRequests()
	w.takeTimed()

	// Each customer calls per times, a second apart; customers call in
	// parallel, starting over the first second.
	order := make([][]*call, len(custs)) // per customer, in call order
	var wg sync.WaitGroup
	for i, cu := range custs {
		wg.Go(func() {
			if !sleep(ctx, time.Duration(i)*time.Second/time.Duration(len(custs))) {
				return
			}
			for k := range per {
				if i*per+k >= n {
					return
				}
				c := &call{cust: cu, queue: s.queue, agent: w.Agents[(i*per+k)%len(w.Agents)],
					ring: 300 * time.Millisecond, talk: 300 * time.Millisecond, ivr: 30 * time.Millisecond}
				w.play(ctx, c, nil)
				order[i] = append(order[i], c)
				if !sleep(ctx, 350*time.Millisecond) { // between two calls of one customer
					return
				}
			}
		})
	}
	wg.Wait()
	var ids []string
	for _, cs := range order {
		for _, c := range cs {
			ids = append(ids, c.id)
		}
	}
	// Every job queued: open the sink.
	if err := tr.waitQueued(ctx, ids, time.Minute); err != nil {
		return syncResult{}, err
	}
	start := time.Now()
	close(gate)
	if err := tr.waitSynced(ctx, ids, 3*time.Minute); err != nil {
		return syncResult{}, err
	}
	res := syncResult{took: time.Since(start)}
	tr.mu.Lock()
	var done []time.Time
	for _, id := range ids {
		done = append(done, tr.synced[id])
	}
	tr.mu.Unlock()
	res.perMinute = middleRate(done, minute)

	// Zendesk calls made by the sink (the pops' calls are not counted).
	for _, q := range w.z.Requests() {
		switch route := routeOf(q); {
		case q.Method == "PUT" || route == "POST /tickets":
			res.writes++
		case strings.HasPrefix(route, "GET /job_statuses") || route == "GET /tickets/show_many" || route == "GET /tickets/:id":
			res.reads++
		}
	}

	// Every call synced once to its customer's ticket, in call order.
	for i, cs := range order {
		t, ok := w.z.Ticket(custs[i].ticket)
		if !ok {
			res.lost += len(cs)
			continue
		}
		var got []string
		for _, cm := range t.Comments {
			for _, c := range cs {
				if strings.Contains(cm.Body, c.id) {
					got = append(got, c.id)
				}
			}
		}
		for _, c := range cs {
			switch k := count(got, c.id); {
			case k == 0:
				res.lost++
				if r.c.verbose {
					for _, ot := range w.z.Tickets() {
						for _, cm := range ot.Comments {
							if strings.Contains(cm.Body, c.id) {
								fmt.Fprintf(os.Stderr, "lost call %s (ticket %d) is on ticket %d (requester %d, status %s)\n", c.id, t.ID, ot.ID, ot.RequesterID, ot.Status)
							}
						}
					}
				}
			case k > 1:
				return res, fmt.Errorf("conversation %s synced %d times to ticket %d", c.id, k, t.ID)
			}
		}
		want := make([]string, 0, len(cs))
		for _, c := range cs {
			if slices.Contains(got, c.id) {
				want = append(want, c.id)
			}
		}
		if !slices.Equal(got, want) {
			res.outOfOrder++
			if r.c.verbose {
				fmt.Fprintf(os.Stderr, "ticket %d out of order:\n", t.ID)
				for _, c := range cs {
					tr.mu.Lock()
					fmt.Fprintf(os.Stderr, "  call %s alerted %s queued %s synced %s, comment #%d\n", c.id, c.alertedAt.Format("05.000"),
						tr.queued[c.id].Format("05.000"), tr.synced[c.id].Format("05.000"), slices.Index(got, c.id))
					tr.mu.Unlock()
				}
			}
		}
	}
	if r.c.verbose || res.lost > 0 {
		for _, e := range tr.errors() {
			fmt.Fprintln(os.Stderr, "engine:", e)
		}
	}
	return res, nil
}

func count(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}
