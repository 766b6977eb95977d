package main

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// calls is figure 1: Zendesk calls per conversation, per strategy.
//
// Per strategy, a wave of first-time callers, then a wave of repeat calls
// by 3/7 as many of them (within the match cache TTL: 30% of the mix).
// The agent directory is warm, rate limits are out of the way. Every
// request the Zendesk emulator receives during a wave, until every
// conversation of the wave is synced, is counted.
func (r *runner) calls(ctx context.Context) error {
	w, err := newWorld(r.c.emulators, emuConfig{agents: r.c.agents, zendeskDelay: r.c.latency, cpus: r.c.emulatorCPUs})
	if err != nil {
		return err
	}
	defer w.close()
	w.limits(Limits{Rate: 1 << 30, RateWindow: time.Minute, Updates: 1 << 30, UpdatesWindow: time.Minute})
	sts := strategies()
	if r.c.only != "" {
		want := strings.Split(r.c.only, ",")
		sts = slices.DeleteFunc(sts, func(s strategy) bool { return !slices.Contains(want, s.name) })
		if len(sts) == 0 {
			return fmt.Errorf("-strategies %q: none of user, ticket:latest_open, ticket:new, nomatch create", r.c.only)
		}
	}
	tr := newTracker()
	st, err := w.start(ctx, stackOptions{rules: w.rulesFor(sts...), batch: r.c.batchCalls,
		updates: zendesk.Budget{Limit: 1 << 30, Per: time.Minute},
		store:   r.c.store, dir: r.storeDir(), hooks: tr.hooks(), log: r.log, batchWait: r.c.batchWait})
	if err != nil {
		return err
	}
	defer st.stop()

	fmt.Fprintf(r.out, "Figure 1: Zendesk calls per conversation (voice, rule per strategy, sync: popped, warm agent cache)\n")
	fmt.Fprintf(r.out, "  %d first-time callers per strategy, then %d of them call again within the cache TTL (30%% of the mix);\n",
		r.c.callers, r.c.callers*3/7)
	fmt.Fprintf(r.out, "  calls %v apart (%.1f ending per second), sync batch wait %v\n", r.c.gap, float64(time.Second)/float64(r.c.gap), r.c.batchWait)
	tw := tabwriter.NewWriter(r.out, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "strategy\tfirst call\tfloor\trepeat call\tmix (30%% repeat)\t\n")
	var details []string
	for _, s := range sts {
		custs := w.customers(s, r.c.callers)
		first, err := r.wave(ctx, w, tr, s, custs)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		again, err := r.wave(ctx, w, tr, s, custs[:r.c.callers*3/7])
		if err != nil {
			return fmt.Errorf("%s repeat: %w", s.name, err)
		}
		n1, n2 := float64(first.convs), float64(again.convs)
		mix := float64(first.total()+again.total()) / (n1 + n2)
		fmt.Fprintf(tw, "%s\t%.2f\t%d\t%.2f\t%.2f\t\n", s.name, float64(first.total())/n1, s.floorCalls,
			float64(again.total())/n2, mix)
		details = append(details, fmt.Sprintf("  %s (floor %d: %s)\n    first: %s\n    again: %s",
			s.name, s.floorCalls, s.why, first.breakdown(), again.breakdown()))
	}
	tw.Flush()
	fmt.Fprintln(r.out, "  per route, calls per conversation:")
	for _, d := range details {
		fmt.Fprintln(r.out, d)
	}
	fmt.Fprintln(r.out)
	return nil
}

// waveCount is what one wave cost.
type waveCount struct {
	convs  int
	routes map[string]int
}

func (c waveCount) total() int {
	n := 0
	for _, v := range c.routes {
		n += v
	}
	return n
}

func (c waveCount) breakdown() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c.routes)) {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, float64(c.routes[k])/float64(c.convs)))
	}
	return strings.Join(parts, ", ")
}

// idsRE matches numeric ids and job status ids (32 hex digits).
var idsRE = regexp.MustCompile(`/([0-9a-f]{32}|\d+)`)

// routeOf names a request by method and route with ids replaced.
func routeOf(q zendesktest.Request) string {
	return q.Method + " " + idsRE.ReplaceAllString(q.Route, "/:id")
}

// wave plays one call per customer, r.c.gap apart, and counts the Zendesk
// requests until they are all synced.
func (r *runner) wave(ctx context.Context, w *world, tr *tracker, s strategy, custs []customer) (waveCount, error) {
	w.z.ResetRequests()
	w.takeTimed()
	calls := make([]*call, len(custs))
	var wg sync.WaitGroup
	for i, cu := range custs {
		calls[i] = &call{cust: cu, queue: s.queue, agent: w.Agents[i%len(w.Agents)], ring: 300 * time.Millisecond, talk: 300 * time.Millisecond, ivr: 30 * time.Millisecond}
		wg.Go(func() { w.play(ctx, calls[i], nil) })
		if !sleep(ctx, r.c.gap) {
			return waveCount{}, ctx.Err()
		}
	}
	wg.Wait()
	ids := make([]string, len(calls))
	for i, c := range calls {
		ids[i] = c.id
	}
	if err := tr.waitSynced(ctx, ids, 60*time.Second); err != nil {
		return waveCount{}, err
	}
	// Let any call still on the wire land.
	time.Sleep(2 * r.c.latency)
	wc := waveCount{convs: len(custs), routes: map[string]int{}}
	for _, q := range w.z.Requests() {
		wc.routes[routeOf(q)]++
	}
	return wc, nil
}
