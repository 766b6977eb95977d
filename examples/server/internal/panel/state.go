// Package panel is the agent panel of the reference server: the page a
// Zendesk agent sees in the Zendesk app (ZAF) sidebar or top bar. It shows
// the agent's active conversations (several at once), who the customer is,
// the matched records, the list to choose from when several match, what was
// popped, and each conversation's sync status, with live updates over
// Server-Sent Events. It implements cti.Chooser and feeds on cti.Hooks.
package panel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// Chooser is the engine side of a choice: cti.Engine implements it.
type Chooser interface {
	Choose(ctx context.Context, conversationID, legID string, pick *cti.Record) (cti.PopResult, error)
}

// Item is one conversation leg as an agent sees it.
type Item struct {
	ConversationID string       `json:"conversationId"`
	LegID          string       `json:"legId"`
	AgentID        int64        `json:"agentId"`
	UserID         string       `json:"userId"`
	Kind           string       `json:"kind"` // voice, email, whatsapp, ...
	Direction      string       `json:"direction,omitempty"`
	Customer       cti.Customer `json:"customer"`
	Queue          string       `json:"queue,omitempty"`
	Rule           string       `json:"rule,omitempty"`
	State          string       `json:"state"` // offered, connected, transferred, disconnected, wrapup_done
	Candidates     []cti.Record `json:"candidates,omitempty"`
	More           bool         `json:"more,omitempty"`
	Choosing       bool         `json:"choosing,omitempty"`
	CanCreate      bool         `json:"canCreate,omitempty"`
	Decision       string       `json:"decision,omitempty"` // what the strategy decided, in words
	Popped         *cti.Record  `json:"popped,omitempty"`
	Created        []cti.Record `json:"created,omitempty"`
	PopError       string       `json:"popError,omitempty"`
	Sync           string       `json:"sync,omitempty"` // queued, done, retry, deferred, dead
	SyncError      string       `json:"syncError,omitempty"`
	Updated        time.Time    `json:"updated"`
}

func (it *Item) key() string { return it.ConversationID + "/" + it.LegID }

// finished reports whether the item no longer needs the agent.
func (it *Item) finished() bool {
	return it.Sync == string(cti.SyncDone) || it.Sync == string(cti.SyncDead)
}

// Update is what subscribers receive.
type Update struct {
	Type  string `json:"type"` // "item" or "remove"
	Item  *Item  `json:"item,omitempty"`
	Key   string `json:"key,omitempty"`
	Agent int64  `json:"agent"`
}

// Options configure a Panel.
type Options struct {
	// Directory maps a Genesys agent to the Zendesk agent, for events that
	// arrive before the engine resolved the agent. Required.
	Directory cti.Directory
	// Chooser is the engine; set it with SetChooser when the engine is
	// built after the panel.
	Chooser Chooser
	// ZendeskURL is the account URL (https://acme.zendesk.com), for links.
	ZendeskURL string
	// Keep is how long finished items stay visible (default 10 minutes).
	Keep time.Duration
	// MaxItems bounds the items kept per agent (default 50).
	MaxItems int
	Logger   *slog.Logger
}

// Panel holds what every agent sees. Safe for concurrent use.
type Panel struct {
	opt Options
	log *slog.Logger

	mu      sync.Mutex
	chooser Chooser
	items   map[string]*Item // by conversation/leg
	byUser  map[string]int64 // Genesys user id → Zendesk agent id
	subs    map[int64]map[chan Update]struct{}
	agents  map[int64]cti.Agent
	closed  bool // CloseStreams was called
}

// New returns a Panel.
func New(opt Options) (*Panel, error) {
	if opt.Directory == nil {
		return nil, errors.New("panel: Options.Directory is required")
	}
	if opt.Keep == 0 {
		opt.Keep = 10 * time.Minute
	}
	if opt.MaxItems == 0 {
		opt.MaxItems = 50
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Panel{
		opt: opt, log: log, chooser: opt.Chooser,
		items: map[string]*Item{}, byUser: map[string]int64{},
		subs: map[int64]map[chan Update]struct{}{}, agents: map[int64]cti.Agent{},
	}, nil
}

// SetChooser sets the engine that answers choices.
func (p *Panel) SetChooser(c Chooser) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.chooser = c
}

// Hooks returns the engine hooks that keep the panel current.
func (p *Panel) Hooks() cti.Hooks {
	return cti.Hooks{
		Event: p.onEvent,
		Pop:   p.onPop,
		Sync:  p.onSync,
	}
}

// Offer implements cti.Chooser: the candidates go to the agent's panel.
func (p *Panel) Offer(_ context.Context, c cti.Choice) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rememberAgent(c.Leg.UserID, c.Agent)
	it := p.item(c.ConversationID, c.LegID, c.Agent.ID)
	it.UserID = c.Leg.UserID
	it.Rule = c.Rule
	it.Candidates = slices.Clone(c.Candidates)
	it.More = c.More
	it.Choosing = true
	it.CanCreate = c.CanCreate
	it.Decision = fmt.Sprintf("%d records match: pick one", len(c.Candidates))
	p.publish(it)
	return nil
}

func (p *Panel) rememberAgent(userID string, a cti.Agent) {
	if a.ID == 0 {
		return
	}
	if userID != "" {
		p.byUser[userID] = a.ID
	}
	p.agents[a.ID] = a
}

// agentFor resolves the Zendesk agent of a Genesys user; it may call the
// directory (without holding the lock).
func (p *Panel) agentFor(leg *cti.AgentLeg) (int64, bool) {
	p.mu.Lock()
	id, ok := p.byUser[leg.UserID]
	p.mu.Unlock()
	if ok {
		return id, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := p.opt.Directory.Agent(ctx, leg)
	if err != nil {
		return 0, false
	}
	p.mu.Lock()
	p.rememberAgent(leg.UserID, a)
	p.mu.Unlock()
	return a.ID, true
}

// item returns the item for a leg, creating it; p.mu is held.
func (p *Panel) item(convID, legID string, agent int64) *Item {
	k := convID + "/" + legID
	it := p.items[k]
	if it == nil {
		it = &Item{ConversationID: convID, LegID: legID, AgentID: agent, State: "offered"}
		p.items[k] = it
	}
	if agent != 0 {
		it.AgentID = agent
	}
	it.Updated = time.Now()
	return it
}

func (p *Panel) onEvent(e cti.Event) {
	agent, ok := p.agentFor(&e.Leg)
	if !ok {
		return // not a Zendesk agent: nobody to show it to
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	it := p.item(e.ConversationID, e.Leg.ID, agent)
	it.UserID = e.Leg.UserID
	it.Rule = e.Rule
	if c := e.Conversation; c != nil {
		it.Kind, it.Direction, it.Customer = c.Kind(), string(c.Direction), c.Customer
		q := e.Leg.Queue
		if q.IsZero() {
			q = c.Queue
		}
		it.Queue = q.Name
		if it.Queue == "" {
			it.Queue = q.ID
		}
	}
	it.State = e.Type.String()
	p.publish(it)
}

func (p *Panel) onPop(n cti.PopNotice) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rememberAgent(n.UserID, n.Agent)
	agent := n.Agent.ID
	if agent == 0 {
		agent = p.byUser[n.UserID]
	}
	if agent == 0 {
		return
	}
	it := p.item(n.ConversationID, n.LegID, agent)
	it.Rule = n.Rule
	if n.Decision.Action != cti.ActionChoose {
		it.Decision = describe(n.Decision)
	}
	if n.Result.Shown != nil {
		r := *n.Result.Shown
		it.Popped = &r
		it.Choosing = false
	}
	it.Created = append(it.Created, n.Result.Created...)
	it.PopError = ""
	if n.Err != nil {
		it.PopError = n.Err.Error()
	}
	p.publish(it)
}

func (p *Panel) onSync(n cti.SyncNotice) {
	p.mu.Lock()
	defer p.mu.Unlock()
	it := p.items[n.ConversationID+"/"+n.LegID]
	if it == nil {
		return
	}
	it.Sync = string(n.State)
	it.SyncError = ""
	if n.Err != nil {
		it.SyncError = n.Err.Error()
	}
	it.Updated = time.Now()
	p.publish(it)
}

func describe(d cti.Decision) string {
	switch d.Action {
	case cti.ActionShow:
		if d.Record != nil {
			return "show " + d.Record.Ref()
		}
	case cti.ActionCreate:
		var what []string
		if d.Create.User {
			what = append(what, "user")
		}
		if d.Create.Ticket {
			what = append(what, "ticket")
		}
		return fmt.Sprintf("no match: create %v", what)
	case cti.ActionNone:
		if d.Reason != "" {
			return "nothing to pop: " + d.Reason
		}
		return "nothing to pop"
	}
	return string(d.Action)
}

// publish sends a copy of it to the agent's subscribers; p.mu is held.
func (p *Panel) publish(it *Item) {
	c := *it
	c.Candidates = slices.Clone(it.Candidates)
	c.Created = slices.Clone(it.Created)
	u := Update{Type: "item", Item: &c, Agent: it.AgentID}
	for ch := range p.subs[it.AgentID] {
		select {
		case ch <- u:
		default:
			// A subscriber that cannot keep up is dropped; its EventSource
			// reconnects and gets a fresh snapshot.
			delete(p.subs[it.AgentID], ch)
			close(ch)
		}
	}
	p.prune(it.AgentID)
}

// prune forgets finished items past Keep and the oldest past MaxItems; p.mu is held.
func (p *Panel) prune(agent int64) {
	var mine []*Item
	now := time.Now()
	for k, it := range p.items {
		if it.finished() && now.Sub(it.Updated) > p.opt.Keep {
			delete(p.items, k)
			p.notifyRemove(it)
			continue
		}
		if it.AgentID == agent {
			mine = append(mine, it)
		}
	}
	if len(mine) <= p.opt.MaxItems {
		return
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].Updated.Before(mine[j].Updated) })
	for _, it := range mine[:len(mine)-p.opt.MaxItems] {
		delete(p.items, it.key())
		p.notifyRemove(it)
	}
}

func (p *Panel) notifyRemove(it *Item) {
	for ch := range p.subs[it.AgentID] {
		select {
		case ch <- Update{Type: "remove", Key: it.key(), Agent: it.AgentID}:
		default:
		}
	}
}

// Items returns a copy of an agent's items, most recent first.
func (p *Panel) Items(agent int64) []Item {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Item
	for _, it := range p.items {
		if it.AgentID == agent {
			c := *it
			c.Candidates = slices.Clone(it.Candidates)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Updated.Equal(out[j].Updated) {
			return out[i].Updated.After(out[j].Updated)
		}
		return out[i].key() < out[j].key()
	})
	return out
}

// Agents lists the agents the panel has seen (for the demo's agent picker).
func (p *Panel) Agents() []cti.Agent {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]cti.Agent, 0, len(p.agents))
	for _, a := range p.agents {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// AddAgent makes an agent known before any conversation (demo seeding).
func (p *Panel) AddAgent(userID string, a cti.Agent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rememberAgent(userID, a)
}

// subscribe registers a channel for an agent's updates. After CloseStreams
// the channel comes closed.
func (p *Panel) subscribe(agent int64) (chan Update, func()) {
	ch := make(chan Update, 64)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		close(ch)
		return ch, func() {}
	}
	if p.subs[agent] == nil {
		p.subs[agent] = map[chan Update]struct{}{}
	}
	p.subs[agent][ch] = struct{}{}
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		if _, ok := p.subs[agent][ch]; ok {
			delete(p.subs[agent], ch)
			close(ch)
		}
	}
}

// CloseStreams ends every live stream (/api/stream) and those opened later,
// so that an HTTP server's Shutdown, which waits for running handlers, is
// not held up by open panels. Call it when the server shuts down; the
// pages reconnect once it is back.
func (p *Panel) CloseStreams() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for agent, chs := range p.subs {
		for ch := range chs {
			close(ch)
		}
		delete(p.subs, agent)
	}
}

// ErrForbidden: the agent asked about a conversation that is not theirs.
var ErrForbidden = errors.New("panel: not your conversation")

// Choose answers a choice on behalf of agent; pick nil asks for a new record.
func (p *Panel) Choose(ctx context.Context, agent int64, convID, legID string, pick *cti.Record) (cti.PopResult, error) {
	p.mu.Lock()
	it := p.items[convID+"/"+legID]
	if it == nil || it.AgentID != agent {
		p.mu.Unlock()
		return cti.PopResult{}, ErrForbidden
	}
	ch := p.chooser
	var rec *cti.Record
	if pick != nil {
		for _, c := range it.Candidates {
			if c.Same(*pick) {
				c := c
				rec = &c
			}
		}
	}
	p.mu.Unlock()
	if ch == nil {
		return cti.PopResult{}, cti.ErrClosed
	}
	if pick != nil && rec == nil {
		return cti.PopResult{}, fmt.Errorf("%w: %s is not one of the candidates", cti.ErrInvalid, pick.Ref())
	}
	return ch.Choose(ctx, convID, legID, rec)
}
