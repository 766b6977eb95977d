package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cxplay/ctikit/cti"
	gt "github.com/cxplay/ctikit/genesys/genesystest"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// Strategy names, one queue (and rule) each.
const (
	stUser    = "user"
	stLatest  = "ticket:latest_open"
	stNew     = "ticket:new"
	stNoMatch = "nomatch create"
)

// strategy is one pop-up strategy under test: its rule, and its floors.
type strategy struct {
	name  string
	queue string
	rule  cti.Rule
	// known: callers exist in Zendesk; open: each has an open ticket.
	known, open bool
	// floorCalls: the Zendesk calls a first-time caller's conversation
	// cannot do without; floorRTs: the round trips that must finish,
	// one after the other, before the display request can be sent.
	floorCalls, floorRTs int
	// earlyRTs: floorRTs with identify_early (-early): the search round
	// trips are done before the ring.
	earlyRTs int
	why      string
}

func strategies() []strategy {
	sync := cti.SyncSpec{Ticket: cti.SyncPopped, Comment: cti.CommentInternal, Tags: []string{"genesys", "loadtest"},
		Fields: map[string]string{"360000000001": "{{.CallDuration}}", "360000000002": "{{.WrapupName}}"}}
	rule := func(name, queue string, p cti.Popup, nm cti.NoMatch) cti.Rule {
		return cti.Rule{Name: name, When: cti.When{Queues: []string{queue}, Media: []string{"voice"}, Direction: cti.Inbound},
			Identify: []cti.IdentifySpec{{Kind: cti.IdentifyPhone}}, Popup: p, PopOn: cti.PopOnAlerting,
			Multiple: cti.MultipleFirst, NoMatch: nm, Sync: sync}
	}
	return []strategy{
		{name: stUser, queue: qUser, rule: rule("user", qUser, cti.PopupUser, cti.NoMatchNothing), known: true, open: true,
			floorCalls: 3, floorRTs: 1, why: "search, display user; sync: new ticket with the comment (write)"},
		{name: stLatest, queue: qLatest, rule: rule("latest", qLatest, cti.PopupTicketLatestOpen, cti.NoMatchNothing), known: true, open: true,
			floorCalls: 4, floorRTs: 2, why: "search, open tickets, display ticket; sync: comment (write)"},
		{name: stNew, queue: qNew, rule: rule("new", qNew, cti.PopupTicketNew, cti.NoMatchNothing), known: true,
			floorCalls: 3, floorRTs: 1, why: "search, create voice ticket (displays it); sync: comment (write)"},
		{name: stNoMatch, queue: qNoMatch, rule: rule("nomatch", qNoMatch, cti.PopupTicketLatestOpen, cti.NoMatchCreateUserAndTicket),
			floorCalls: 4, floorRTs: 2, earlyRTs: 1, why: "search (no match), create user, create voice ticket (displays it); sync: comment (write)"},
	}
}

// Genesys queue ids, one per strategy.
const (
	qUser    = "9e1c0f00-0000-4000-8000-0000000f0001"
	qLatest  = "9e1c0f00-0000-4000-8000-0000000f0002"
	qNew     = "9e1c0f00-0000-4000-8000-0000000f0003"
	qNoMatch = "9e1c0f00-0000-4000-8000-0000000f0004"
)

// rulesFor is the rules file of one strategy: the engine subscribes to
// its queue and to every agent (so each update also arrives on the
// agent's topic, as in production).
func (w *world) rulesFor(sts ...strategy) *cti.Rules {
	r := &cti.Rules{}
	for _, s := range sts {
		r.Subscribe.Queues = append(r.Subscribe.Queues, s.queue)
		r.Rules = append(r.Rules, s.rule)
	}
	for _, a := range w.Agents {
		r.Subscribe.Users = append(r.Subscribe.Users, a.GenesysID)
	}
	return r
}

// newWorld starts both emulators: in a child process (process) or in this
// one (inproc).
func newWorld(mode string, c emuConfig) (*world, error) {
	var (
		e   *emulators
		err error
	)
	switch mode {
	case "process":
		e, err = startRemote(c)
	case "inproc":
		e = startLocal(c)
	default:
		err = fmt.Errorf("-emulators %q: want process or inproc", mode)
	}
	if err != nil {
		return nil, err
	}
	return &world{emulators: e}, nil
}

// customer is a caller: their phone, and their Zendesk user and open
// ticket when they have them.
type customer struct {
	phone  string
	user   int64
	ticket int64
}

var phoneSeq atomic.Int64

// customers creates n callers for strategy s (known ones in Zendesk).
func (w *world) customers(s strategy, n int) []customer {
	out := make([]customer, n)
	for i := range out {
		k := phoneSeq.Add(1)
		c := customer{phone: fmt.Sprintf("+1%03d%07d", 200+k/10000000, 5550000+k%10000000)}
		if s.known {
			u := w.z.AddUser(zendesktest.User{Name: fmt.Sprintf("Customer %d", k), Phone: c.phone})
			c.user = u.ID
			if s.open {
				t := w.z.AddTicket(zendesktest.Ticket{Subject: "Order question", Status: "open", RequesterID: u.ID,
					Description: "Earlier question about an order."})
				c.ticket = t.ID
			}
		}
		out[i] = c
	}
	return out
}

// call is one scripted inbound voice call.
type call struct {
	cust  customer
	queue string
	agent Agent
	// ring is alert → connect; talk is connect → hang-up; the wrap-up
	// follows 50 ms later.
	ring, talk time.Duration
	ivr        time.Duration // start → ringing; 0: the call starts ringing
	id         string        // set when started
	alertedAt  time.Time
}

// play runs the call on the Genesys emulator; release (may be nil) holds
// the call connected until closed.
func (w *world) play(ctx context.Context, c *call, release <-chan struct{}) {
	c.id = newConvID()
	w.g.Start(gt.Spec{ID: c.id, Media: gt.MediaVoice, From: c.cust.phone, Name: "", Queue: c.queue,
		Attributes: map[string]string{"ivr.Intent": "billing", "ivr.Language": "en-US"}})
	if c.ivr > 0 && !sleep(ctx, c.ivr) { // IVR and queue
		return
	}
	c.alertedAt = time.Now()
	leg := w.g.Alert(c.id, c.agent.GenesysID)
	if !sleep(ctx, c.ring) {
		return
	}
	w.g.Connect(c.id, leg)
	if !sleep(ctx, c.talk) {
		return
	}
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return
		}
	}
	w.g.Disconnect(c.id, leg)
	if !sleep(ctx, 50*time.Millisecond) {
		return
	}
	w.g.Wrapup(c.id, leg, gt.CodeResolved, "Customer asked about an order; resolved.")
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// tracker collects what the engine's hooks report.
type tracker struct {
	mu     sync.Mutex
	pops   map[string]popSeen // conversation id →
	synced map[string]time.Time
	queued map[string]time.Time
	errs   []string
	notify chan struct{}
}

type popSeen struct {
	received time.Time // the snapshot's ObservedAt (frame read)
	agent    int64
	shown    *cti.Record
	err      error
}

func newTracker() *tracker {
	return &tracker{pops: map[string]popSeen{}, synced: map[string]time.Time{}, queued: map[string]time.Time{}, notify: make(chan struct{}, 1)}
}

func (t *tracker) hooks() cti.Hooks {
	return cti.Hooks{
		Pop: func(n cti.PopNotice) {
			now := time.Now()
			t.mu.Lock()
			if _, ok := t.pops[n.ConversationID]; !ok {
				t.pops[n.ConversationID] = popSeen{received: now.Add(-n.Latency), agent: n.Agent.ID, shown: n.Result.Shown, err: n.Err}
			}
			t.mu.Unlock()
		},
		Sync: func(n cti.SyncNotice) {
			if n.State == cti.SyncQueued {
				t.mu.Lock()
				t.queued[n.ConversationID] = time.Now()
				t.mu.Unlock()
			}
			if n.State != cti.SyncDone && n.State != cti.SyncDead {
				return
			}
			t.mu.Lock()
			t.synced[n.ConversationID] = time.Now()
			if n.State == cti.SyncDead {
				t.errs = append(t.errs, "dead letter "+n.Key+": "+errString(n.Err))
			}
			t.mu.Unlock()
			select {
			case t.notify <- struct{}{}:
			default:
			}
		},
		Error: func(n cti.ErrorNotice) {
			t.mu.Lock()
			if len(t.errs) < 20 {
				t.errs = append(t.errs, n.Stage+" "+n.ConversationID+": "+errString(n.Err))
			}
			t.mu.Unlock()
		},
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// waitSynced waits until every conversation of ids is synced.
func (t *tracker) waitSynced(ctx context.Context, ids []string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		t.mu.Lock()
		missing := 0
		for _, id := range ids {
			if _, ok := t.synced[id]; !ok {
				missing++
			}
		}
		t.mu.Unlock()
		if missing == 0 {
			return nil
		}
		select {
		case <-t.notify:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			return fmt.Errorf("%d of %d conversations not synced after %v (errors: %s)", missing, len(ids), timeout, strings.Join(t.errors(), "; "))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// waitQueued waits until the engine has queued the sync of every
// conversation of ids.
func (t *tracker) waitQueued(ctx context.Context, ids []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		t.mu.Lock()
		missing := 0
		for _, id := range ids {
			if _, ok := t.queued[id]; !ok {
				missing++
			}
		}
		t.mu.Unlock()
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d conversations not queued after %v (errors: %s)", missing, len(ids), timeout, strings.Join(t.errors(), "; "))
		}
		if !sleep(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func (t *tracker) errors() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.errs...)
}
