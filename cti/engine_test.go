package cti_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
	"github.com/cxplay/ctikit/popup"
)

// --- test collaborators ------------------------------------------------------

// matcher finds users by phone from a fixed table and counts calls.
type matcher struct {
	mu    sync.Mutex
	users map[string][]cti.Record
	calls int
	err   error
}

func (m *matcher) Match(_ context.Context, q cti.Query) (cti.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.err != nil {
		return cti.Result{}, m.err
	}
	return cti.Result{Records: slices.Clone(m.users[q.Identity.Value])}, nil
}

func (m *matcher) Calls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

// strategy is a minimal pure decision: one → show, several → choose, none →
// create per nomatch.
var strategy = cti.StrategyFunc(func(in cti.DecideInput) cti.Decision {
	switch n := len(in.Result.Records); {
	case n == 1:
		return cti.Decision{Action: cti.ActionShow, Record: &in.Result.Records[0]}
	case n > 1 && in.Rule.Multiple == cti.MultipleChoose:
		return cti.Decision{Action: cti.ActionChoose, Candidates: in.Result.Records}
	case n > 1 && in.Rule.Multiple == cti.MultipleFirst:
		return cti.Decision{Action: cti.ActionShow, Record: &in.Result.Records[0]}
	case n == 0 && in.Rule.NoMatch != cti.NoMatchNothing:
		return cti.Decision{Action: cti.ActionCreate, Create: cti.CreateSpec{User: true}}
	}
	return cti.Decision{Action: cti.ActionNone}
})

type popCall struct {
	Conversation, Leg, User string
	Agent                   int64
	Decision                cti.Decision
}

// popper records pops; fail returns an error for a conversation.
type popper struct {
	mu     sync.Mutex
	calls  []popCall
	nextID int64
	fail   func(req cti.PopRequest) error
	block  func(req cti.PopRequest)
}

func (p *popper) Pop(_ context.Context, req cti.PopRequest) (cti.PopResult, error) {
	if p.block != nil {
		p.block(req)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, popCall{req.Conversation.ID, req.Leg.ID, req.Leg.UserID, req.Agent.ID, req.Decision})
	if p.fail != nil {
		if err := p.fail(req); err != nil {
			return cti.PopResult{}, err
		}
	}
	switch req.Decision.Action {
	case cti.ActionShow:
		r := *req.Decision.Record
		return cti.PopResult{Shown: &r}, nil
	case cti.ActionCreate:
		p.nextID++
		r := cti.Record{Kind: cti.KindUser, ID: 9000 + p.nextID, Phone: req.Conversation.Customer.Phone}
		return cti.PopResult{Shown: &r, Created: []cti.Record{r}}, nil
	}
	return cti.PopResult{}, errors.New("unexpected action " + string(req.Decision.Action))
}

func (p *popper) Calls() []popCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// sink records synced jobs; fail decides an error per attempt.
type sink struct {
	mu       sync.Mutex
	jobs     []*cti.SyncJob
	attempts map[string]int
	fail     func(job *cti.SyncJob, attempt int) error
}

func (s *sink) Sync(_ context.Context, job *cti.SyncJob) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.attempts == nil {
		s.attempts = map[string]int{}
	}
	s.attempts[job.Key]++
	if s.fail != nil {
		if err := s.fail(job, s.attempts[job.Key]); err != nil {
			return err
		}
	}
	s.jobs = append(s.jobs, job.Clone())
	return nil
}

func (s *sink) Jobs() []*cti.SyncJob {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.jobs)
}

func (s *sink) Keys() []string {
	var keys []string
	for _, j := range s.Jobs() {
		keys = append(keys, j.Key)
	}
	slices.Sort(keys)
	return keys
}

var directory = cti.DirectoryFunc(func(_ context.Context, leg *cti.AgentLeg) (cti.Agent, error) {
	if leg.UserID == "ghost" {
		return cti.Agent{}, fmt.Errorf("user %s: %w", leg.UserID, cti.ErrUnknownAgent)
	}
	var id int64
	for _, c := range leg.UserID {
		id = id*31 + int64(c)
	}
	return cti.Agent{ID: id, Email: leg.UserID + "@example.com"}, nil
})

// recorder collects hook notifications.
type recorder struct {
	mu      sync.Mutex
	events  []string
	pops    []cti.PopNotice
	syncs   []cti.SyncNotice
	errs    []cti.ErrorNotice
	choices []cti.Choice
}

func (r *recorder) hooks() cti.Hooks {
	return cti.Hooks{
		Event: func(e cti.Event) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.events = append(r.events, e.ConversationID+"/"+e.Leg.ID+":"+e.Type.String())
		},
		Pop: func(n cti.PopNotice) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.pops = append(r.pops, n)
		},
		Sync: func(n cti.SyncNotice) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.syncs = append(r.syncs, n)
		},
		Error: func(n cti.ErrorNotice) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.errs = append(r.errs, n)
		},
		Choice: func(c cti.Choice) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.choices = append(r.choices, c)
		},
	}
}

func (r *recorder) Events(prefix string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}

func (r *recorder) Errors() []cti.ErrorNotice {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errs)
}

func (r *recorder) SyncStates(key string) []cti.SyncState {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []cti.SyncState
	for _, n := range r.syncs {
		if n.Key == key {
			out = append(out, n.State)
		}
	}
	return out
}

// --- rig ----------------------------------------------------------------------

const (
	phoneAlice  = "+14155550100"
	phoneShared = "+14155550199"
	phoneNew    = "+14155550123"
)

func testRules() *cti.Rules {
	return &cti.Rules{
		Subscribe: cti.Subscribe{Queues: []string{"q-support"}},
		Rules: []cti.Rule{{
			Name:     "support",
			When:     cti.When{Queues: []string{"Support"}},
			Identify: []cti.IdentifySpec{{Kind: cti.IdentifyPhone}},
			Popup:    cti.PopupUser,
		}, {
			Name:     "sales-create",
			When:     cti.When{Queues: []string{"Sales"}},
			Identify: []cti.IdentifySpec{{Kind: cti.IdentifyPhone}},
			NoMatch:  cti.NoMatchCreateUser,
			PopOn:    cti.PopOnConnected,
		}},
	}
}

type rig struct {
	t       *testing.T
	ctx     context.Context
	src     *ctitest.Source
	eng     *cti.Engine
	store   *cti.MemoryStore
	matcher *matcher
	popper  *popper
	sink    *sink
	rec     *recorder
	stop    func() error
}

func newRig(t *testing.T, opts ...cti.Option) *rig {
	return newRigWith(t, cti.NewMemoryStore(), &sink{}, opts...)
}

func newRigWith(t *testing.T, store *cti.MemoryStore, sk *sink, opts ...cti.Option) *rig {
	t.Helper()
	return newRigRules(t, store, sk, testRules(), opts...)
}

func newRigRules(t *testing.T, store *cti.MemoryStore, sk *sink, rules *cti.Rules, opts ...cti.Option) *rig {
	t.Helper()
	r := &rig{
		t: t, src: ctitest.NewSource(), store: store, sink: sk, popper: &popper{}, rec: &recorder{},
		matcher: &matcher{users: map[string][]cti.Record{
			phoneAlice: {{Kind: cti.KindUser, ID: 1, Name: "Alice", Phone: phoneAlice}},
			phoneShared: {
				{Kind: cti.KindUser, ID: 2, Name: "Bob", Phone: phoneShared},
				{Kind: cti.KindUser, ID: 3, Name: "Carol", Phone: phoneShared},
			},
		}},
	}
	base := []cti.Option{
		cti.WithMatcher(r.matcher), cti.WithStrategy(strategy), cti.WithPopper(r.popper),
		cti.WithDirectory(directory), cti.WithSink(r.sink), cti.WithStore(r.store),
		cti.WithHooks(r.rec.hooks()),
	}
	eng, err := cti.NewEngine(r.src, rules, append(base, opts...)...)
	require.NoError(t, err)
	r.eng = eng
	ctx, cancel := context.WithCancel(context.Background())
	r.ctx = ctx
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	r.stop = func() error {
		cancel()
		return <-done
	}
	return r
}

func (r *rig) send(cs ...*cti.Conversation) {
	r.t.Helper()
	require.NoError(r.t, r.src.Send(r.ctx, cs...))
	synctest.Wait()
}

func support(id string) *ctitest.Builder {
	return ctitest.NewConversation(id, cti.MediaVoice).Phone(phoneAlice).Queue("q-support", "Support")
}

// --- tests --------------------------------------------------------------------

func TestEngineVoiceLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		b := support("c1")
		r.send(b.Alert("l1", "u1"))
		require.Len(t, r.popper.Calls(), 1, "popped on alerting")
		p := r.popper.Calls()[0]
		assert.Equal(t, cti.ActionShow, p.Decision.Action)
		assert.Equal(t, int64(1), p.Decision.Record.ID)
		assert.Equal(t, "l1", p.Leg)

		r.send(b.Connect("l1"), b.Disconnect("l1"))
		assert.Empty(t, r.sink.Jobs(), "no sync before the wrap-up")
		r.send(b.End())
		r.send(b.Wrapup("l1", "code-sale", "resolved"))
		time.Sleep(time.Second)
		synctest.Wait()

		jobs := r.sink.Jobs()
		require.Len(t, jobs, 1)
		j := jobs[0]
		assert.Equal(t, "c1/l1", j.Key)
		assert.Equal(t, 1, j.Tries, "a first delivery says so")
		assert.Equal(t, "support", j.Rule)
		require.NotNil(t, j.Popped)
		assert.Equal(t, int64(1), j.Popped.ID)
		require.NotNil(t, j.Agent)
		assert.Equal(t, "u1@example.com", j.Agent.Email)
		assert.Equal(t, "code-sale", j.Conversation.Leg("l1").Wrapup.Code)
		assert.True(t, j.Conversation.Ended())
		assert.Equal(t, []string{"c1/l1:offered", "c1/l1:connected", "c1/l1:disconnected", "c1/l1:wrapup_done"}, r.rec.Events("c1/"))
		assert.Equal(t, []cti.SyncState{cti.SyncQueued, cti.SyncDone}, r.rec.SyncStates("c1/l1"))
		require.NoError(t, r.stop())
	})
}

func TestEngineDuplicatesFireOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		b := support("c1")
		s1, s2 := b.Alert("l1", "u1"), b.Connect("l1")
		s3, s4 := b.Disconnect("l1"), b.Wrapup("l1", "w", "")
		s5 := b.End()
		// Every update arrives twice (queue topic and user topic), and
		// Genesys replays some.
		for _, s := range []*cti.Conversation{s1, s1, s2, s1, s2, s3, s2, s3, s4, s4, s3, s5, s5, s4} {
			r.send(s.Clone())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Len(t, r.popper.Calls(), 1)
		assert.Equal(t, 1, r.matcher.Calls())
		assert.Equal(t, []string{"c1/l1"}, r.sink.Keys())
		assert.Equal(t, []string{"c1/l1:offered", "c1/l1:connected", "c1/l1:disconnected", "c1/l1:wrapup_done"}, r.rec.Events("c1/"))

		// A replay after the conversation finished is dropped.
		r.send(s1.Clone(), s4.Clone())
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Len(t, r.popper.Calls(), 1)
		assert.Len(t, r.sink.Jobs(), 1)
		require.NoError(t, r.stop())
	})
}

func TestEngineOutOfOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		b := support("c1")
		s1, s2 := b.Alert("l1", "u1"), b.Connect("l1")
		s3, s4 := b.Disconnect("l1"), b.Wrapup("l1", "w", "")
		// Connected arrives before alerting: offered and connected still
		// fire once, in order, and the pop happens once.
		r.send(s2, s1)
		assert.Equal(t, []string{"c1/l1:offered", "c1/l1:connected"}, r.rec.Events("c1/"))
		assert.Len(t, r.popper.Calls(), 1)
		// The wrap-up arrives before the disconnect.
		r.send(s4, s3)
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"c1/l1:offered", "c1/l1:connected", "c1/l1:disconnected", "c1/l1:wrapup_done"}, r.rec.Events("c1/"))
		jobs := r.sink.Jobs()
		require.Len(t, jobs, 1)
		assert.Equal(t, "w", jobs[0].Conversation.Leg("l1").Wrapup.Code, "a stale snapshot does not erase the wrap-up")

		// A leg first seen finished is synced but never popped.
		b2 := support("c2")
		b2.Alert("l1", "u1")
		b2.Connect("l1")
		b2.Disconnect("l1")
		r.send(b2.Wrapup("l1", "w", ""))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Len(t, r.popper.Calls(), 1, "no pop for a leg already over")
		assert.Equal(t, []string{"c1/l1", "c2/l1"}, r.sink.Keys())
		for _, j := range r.sink.Jobs() {
			if j.ConversationID == "c2" {
				require.Len(t, j.Candidates, 1, "the customer is identified for the sync even without a pop")
				assert.Equal(t, int64(1), j.Candidates[0].ID)
			}
		}
		require.NoError(t, r.stop())
	})
}

func TestEngineTransfer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		b := support("c1")
		r.send(b.Alert("a", "u1"), b.Connect("a"))
		r.send(b.Transfer("a", "b", "u2", cti.Ref{ID: "q-support", Name: "Support"}))
		assert.Equal(t, []string{"c1/a:offered", "c1/a:connected", "c1/a:transferred", "c1/a:disconnected", "c1/b:offered"}, r.rec.Events("c1/"))
		calls := r.popper.Calls()
		require.Len(t, calls, 2, "the new agent gets a pop")
		assert.Equal(t, "u2", calls[1].User)
		assert.Equal(t, int64(1), calls[1].Decision.Record.ID, "the same record as the first agent")
		assert.Equal(t, 1, r.matcher.Calls(), "the customer is identified once per conversation")

		r.send(b.Wrapup("a", "transferred", ""), b.Connect("b"))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"c1/a"}, r.sink.Keys(), "the first agent's segment syncs after their wrap-up")
		r.send(b.Hangup("b"), b.Wrapup("b", "done", "all good"))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"c1/a", "c1/b"}, r.sink.Keys())
		for _, j := range r.sink.Jobs() {
			assert.Equal(t, int64(1), j.Popped.ID)
		}
		require.Len(t, r.sink.Jobs()[1].Conversation.Transfers, 1)
		require.NoError(t, r.stop())
	})
}

// An attended (consult) transfer is a transfer: the consulting agent's
// leg fires transferred, and its sync names the consulted agent.
func TestEngineConsultTransfer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		b := support("c1")
		r.send(b.Alert("a", "u1"), b.Connect("a"))
		r.send(b.Consult("a", "b", "u2"), b.Connect("b"))
		r.send(b.CompleteConsult("a", "b"))
		assert.Equal(t, []string{"c1/a:offered", "c1/a:connected", "c1/b:offered", "c1/b:connected", "c1/a:transferred", "c1/a:disconnected"}, r.rec.Events("c1/"))
		r.send(b.Wrapup("a", "transferred", ""))
		time.Sleep(time.Second)
		synctest.Wait()
		require.Equal(t, []string{"c1/a"}, r.sink.Keys())
		j := r.sink.Jobs()[0]
		require.True(t, j.Conversation.Leg("a").Transferred())
		require.Len(t, j.Conversation.Transfers, 1)
		tr := j.Conversation.Transfers[0]
		assert.Equal(t, cti.TransferConsult, tr.Kind)
		assert.Equal(t, "u2", tr.ToUser.ID)
		require.NoError(t, r.stop())
	})
}

func TestTransferKind(t *testing.T) {
	for dt, want := range map[string]string{
		"transfer": cti.TransferBlind, "Transfer": cti.TransferBlind, "transfer.consult": cti.TransferConsult,
		"transfer.conference": cti.TransferConference, "transfer.forward": cti.TransferForward,
		"transfer.noanswer": "", "transfer.notavailable": "", "transfer.donotdisturb": "", "client": "", "peer": "", "": "", "transfers": "",
		// the analytics API's names
		"consultTransfer": cti.TransferConsult, "conferenceTransfer": cti.TransferConference, "forwardTransfer": cti.TransferForward,
		"noAnswerTransfer": "", "notAvailableTransfer": "", "dndTransfer": "", "transportFailure": "",
	} {
		got, ok := cti.TransferKind(dt)
		assert.Equal(t, want, got, dt)
		assert.Equal(t, want != "", ok, dt)
		leg := cti.AgentLeg{State: cti.LegDisconnected, DisconnectType: dt}
		assert.Equal(t, want != "", leg.Transferred(), dt)
		leg.State = cti.LegConnected
		assert.False(t, leg.Transferred(), "a connected leg has not transferred: %s", dt)
	}
}

func TestEngineSimultaneousConversationsPerAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		voice := support("voice")
		chats := []*ctitest.Builder{
			ctitest.NewConversation("chat1", cti.MediaChat).Phone(phoneAlice).Queue("q-support", "Support"),
			ctitest.NewMessage("wa", cti.ChannelWhatsApp).Phone(phoneShared).Queue("q-support", "Support"),
			ctitest.NewMessage("sms", cti.ChannelSMS).Phone(phoneAlice).Queue("q-support", "Support"),
		}
		r.send(voice.Alert("l", "u1"))
		for _, c := range chats {
			r.send(c.Alert("l", "u1"))
		}
		r.send(voice.Connect("l"))
		for _, c := range chats {
			r.send(c.Connect("l"))
		}
		assert.Len(t, r.popper.Calls(), 3, "voice, chat and sms pop; whatsapp asks to choose")
		require.Len(t, r.rec.choices, 1)
		assert.Equal(t, "wa", r.rec.choices[0].ConversationID)

		// They end in a different order from how they started.
		for _, c := range []*ctitest.Builder{chats[2], voice, chats[0], chats[1]} {
			r.send(c.Hangup("l"), c.Wrapup("l", "w", ""))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"chat1/l", "sms/l", "voice/l", "wa/l"}, r.sink.Keys())
		require.NoError(t, r.stop())
	})
}

func TestEngineNoWrapupGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, cti.WithTiming(cti.Timing{Grace: 30 * time.Second}))
		b := support("c1")
		r.send(b.Alert("l1", "u1"))
		b.NoWrapup("l1")
		r.send(b.Connect("l1"), b.Hangup("l1"))
		time.Sleep(29 * time.Second)
		synctest.Wait()
		assert.Empty(t, r.sink.Jobs(), "waits the grace period for a late wrap-up")
		time.Sleep(2 * time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"c1/l1"}, r.sink.Keys())
		assert.Nil(t, r.sink.Jobs()[0].Conversation.Leg("l1").Wrapup)

		// A wrap-up that does come within the grace period is synced with it.
		b2 := support("c2")
		r.send(b2.Alert("l1", "u1"))
		b2.NoWrapup("l1")
		r.send(b2.Connect("l1"), b2.Hangup("l1"))
		time.Sleep(5 * time.Second)
		r.send(b2.Wrapup("l1", "late", ""))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"c1/l1", "c2/l1"}, r.sink.Keys())
		assert.Equal(t, "late", r.sink.Jobs()[1].Conversation.Leg("l1").Wrapup.Code)
		require.NoError(t, r.stop())
	})
}

func TestEngineWaitsForAfterCallWork(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		b := support("c1")
		r.send(b.Alert("l1", "u1"), b.Connect("l1"), b.Hangup("l1"), b.WrapupPending("l1", "w"))
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Empty(t, r.sink.Jobs(), "after-call work still pending")
		r.send(b.CompleteACW("l1"))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"c1/l1"}, r.sink.Keys())
		require.NoError(t, r.stop())
	})
}

func TestEngineWrapupTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, cti.WithTiming(cti.Timing{WrapupTimeout: 10 * time.Minute}))
		b := support("c1")
		r.send(b.Alert("l1", "u1"), b.Connect("l1"), b.Hangup("l1"))
		time.Sleep(9 * time.Minute)
		synctest.Wait()
		assert.Empty(t, r.sink.Jobs())
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		assert.Equal(t, []string{"c1/l1"}, r.sink.Keys(), "synced without the wrap-up that never came")
		require.NoError(t, r.stop())
	})
}

func TestEngineFailingPopper(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.popper.fail = func(req cti.PopRequest) error {
			if req.Conversation.ID == "bad" {
				return &cti.UpstreamError{Service: "zendesk", Op: "display", Status: 503}
			}
			return nil
		}
		bad, good := support("bad"), support("good")
		r.send(bad.Alert("l", "u1"), good.Alert("l", "u2"))
		r.send(bad.Connect("l"), good.Connect("l"))
		calls := r.popper.Calls()
		var badCalls int
		for _, c := range calls {
			if c.Conversation == "bad" {
				badCalls++
			}
		}
		assert.Equal(t, 2, badCalls, "the failed alerting pop is retried once on connect")
		errs := r.rec.Errors()
		require.Len(t, errs, 2)
		for _, e := range errs {
			assert.Equal(t, "bad", e.ConversationID)
			assert.Equal(t, "pop", e.Stage)
			assert.Equal(t, "support", e.Rule)
			assert.True(t, cti.IsRetryable(e.Err))
		}
		r.send(bad.Hangup("l"), bad.Wrapup("l", "w", ""), good.Hangup("l"), good.Wrapup("l", "w", ""))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"bad/l", "good/l"}, r.sink.Keys(), "a failed pop does not stop the sync")
		require.NoError(t, r.stop())
	})
}

func TestEngineSlowPopperDoesNotBlockOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		r := newRig(t)
		r.popper.block = func(req cti.PopRequest) {
			if req.Conversation.ID == "slow" {
				<-release
			}
		}
		slow, fast := support("slow"), support("fast")
		r.send(slow.Alert("l", "u1"))
		// The same agent's other conversation, and more updates of the
		// stuck one, queue up behind it without blocking the source.
		r.send(slow.Connect("l"), fast.Alert("l", "u1"), fast.Connect("l"), fast.Hangup("l"), fast.Wrapup("l", "w", ""))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"fast/l"}, r.sink.Keys())
		close(release)
		r.send(slow.Hangup("l"), slow.Wrapup("l", "w", ""))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Equal(t, []string{"fast/l", "slow/l"}, r.sink.Keys())
		require.NoError(t, r.stop())
	})
}

type chooser struct {
	mu      sync.Mutex
	offered []cti.Choice
}

func (c *chooser) Offer(_ context.Context, ch cti.Choice) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offered = append(c.offered, ch)
	return nil
}

func TestEngineChoose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := &chooser{}
		r := newRig(t, cti.WithChooser(ch))
		b := support("c1").Phone(phoneShared)
		r.send(b.Alert("l1", "u1"))
		require.Len(t, ch.offered, 1)
		offer := ch.offered[0]
		assert.Len(t, offer.Candidates, 2)
		assert.Equal(t, "l1", offer.LegID)
		assert.Empty(t, r.popper.Calls(), "nothing popped until the agent picks")

		_, err := r.eng.Choose(r.ctx, "c1", "l1", &cti.Record{Kind: cti.KindUser, ID: 77})
		assert.ErrorIs(t, err, cti.ErrInvalid, "only an offered candidate can be picked")
		_, err = r.eng.Choose(r.ctx, "c1", "nope", &offer.Candidates[0])
		assert.ErrorIs(t, err, cti.ErrNoChoice)
		_, err = r.eng.Choose(r.ctx, "missing", "l1", &offer.Candidates[0])
		assert.ErrorIs(t, err, cti.ErrNotFound)
		_, err = r.eng.Choose(r.ctx, "c1", "l1", nil)
		assert.ErrorIs(t, err, cti.ErrInvalid, "the rule creates nothing on no match")

		res, err := r.eng.Choose(r.ctx, "c1", "l1", &offer.Candidates[1])
		require.NoError(t, err)
		require.NotNil(t, res.Shown)
		assert.Equal(t, int64(3), res.Shown.ID)
		require.Len(t, r.popper.Calls(), 1)
		assert.Equal(t, int64(3), r.popper.Calls()[0].Decision.Record.ID)
		_, err = r.eng.Choose(r.ctx, "c1", "l1", &offer.Candidates[0])
		assert.ErrorIs(t, err, cti.ErrNoChoice, "answered already")

		r.send(b.Connect("l1"), b.Hangup("l1"), b.Wrapup("l1", "w", ""))
		time.Sleep(time.Second)
		synctest.Wait()
		jobs := r.sink.Jobs()
		require.Len(t, jobs, 1)
		assert.Equal(t, int64(3), jobs[0].Popped.ID, "the sync writes to what the agent picked")
		assert.Len(t, jobs[0].Candidates, 2)
		require.NoError(t, r.stop())
	})
}

func TestEngineNoMatchCreatesOnceAcrossTransfer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		b := ctitest.NewConversation("c1", cti.MediaVoice).Phone(phoneNew).Queue("q-sales", "Sales")
		r.send(b.Alert("a", "u1"))
		assert.Empty(t, r.popper.Calls(), "sales pops on connected")
		r.send(b.Connect("a"))
		require.Len(t, r.popper.Calls(), 1)
		assert.Equal(t, cti.ActionCreate, r.popper.Calls()[0].Decision.Action)
		r.send(b.Transfer("a", "b", "u2", cti.Ref{}), b.Connect("b"))
		calls := r.popper.Calls()
		require.Len(t, calls, 2)
		assert.Equal(t, cti.ActionShow, calls[1].Decision.Action, "the second agent sees the created user, no second create")
		assert.Equal(t, int64(9001), calls[1].Decision.Record.ID)
		r.send(b.Wrapup("a", "w", ""), b.Hangup("b"), b.Wrapup("b", "w", ""))
		time.Sleep(time.Second)
		synctest.Wait()
		for _, j := range r.sink.Jobs() {
			assert.Equal(t, []cti.Record{{Kind: cti.KindUser, ID: 9001, Phone: phoneNew}}, j.Created)
		}
		require.NoError(t, r.stop())
	})
}

func TestEngineNoRuleNoUnknownAgent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		other := ctitest.NewConversation("other", cti.MediaVoice).Phone(phoneAlice).Queue("q-x", "Billing")
		r.send(other.Alert("l", "u1"), other.Connect("l"), other.Hangup("l"), other.Wrapup("l", "w", ""))
		ghost := support("ghost")
		r.send(ghost.Alert("l", "ghost"), ghost.Connect("l"))
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Empty(t, r.popper.Calls())
		assert.Empty(t, r.sink.Jobs(), "no rule: nothing synced")
		assert.Equal(t, []string{"other/l:offered", "other/l:connected", "other/l:disconnected", "other/l:wrapup_done"}, r.rec.Events("other/"), "events fire for every leg, rule or not")
		errs := r.rec.Errors()
		require.Len(t, errs, 1, "an unknown agent is reported once, not retried")
		assert.ErrorIs(t, errs[0].Err, cti.ErrUnknownAgent)
		assert.Equal(t, "directory", errs[0].Stage)
		require.NoError(t, r.stop())
	})
}

func TestEngineRestartNeitherPopsNorSyncsTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := cti.NewMemoryStore()
		sk := &sink{}
		r1 := newRigWith(t, store, sk)
		b := support("c1")
		s1, s2 := b.Alert("l1", "u1"), b.Connect("l1")
		r1.send(s1, s2)
		require.Len(t, r1.popper.Calls(), 1)
		done := support("c2")
		r1.send(done.Alert("l", "u1"), done.Connect("l"), done.Hangup("l"), done.Wrapup("l", "w", ""))
		time.Sleep(time.Second)
		synctest.Wait()
		require.NoError(t, r1.stop())

		// The process restarts on the same store: the source is told what
		// was open and replays it.
		r2 := newRigWith(t, store, sk)
		synctest.Wait()
		assert.Equal(t, []string{"c1"}, r2.src.Resumed())
		r2.send(s2.Clone(), b.Hangup("l1"), b.Wrapup("l1", "w", ""))
		r2.send(done.Snapshot())
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Empty(t, r2.popper.Calls(), "no second pop after restart")
		assert.Equal(t, []string{"c1/l1", "c2/l"}, sk.Keys(), "each leg synced once across the restart")
		assert.Equal(t, []string{"c1/l1:disconnected", "c1/l1:wrapup_done"}, r2.rec.Events("c1/"))
		require.NoError(t, r2.stop())
	})
}

func TestEngineOutboxSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := cti.NewMemoryStore()
		down := &sink{fail: func(*cti.SyncJob, int) error {
			return &cti.UpstreamError{Service: "zendesk", Status: 503}
		}}
		r1 := newRigWith(t, store, down)
		b := support("c1")
		r1.send(b.Alert("l1", "u1"), b.Connect("l1"), b.Hangup("l1"), b.Wrapup("l1", "w", ""))
		time.Sleep(time.Second)
		synctest.Wait()
		require.NoError(t, r1.stop())
		st, err := store.Stats(context.Background())
		require.NoError(t, err)
		assert.Equal(t, 1, st.Pending, "an undelivered sync stays in the outbox")

		up := &sink{}
		r2 := newRigWith(t, store, up)
		time.Sleep(5 * time.Minute) // past the backoff of the failed attempt
		synctest.Wait()
		assert.Equal(t, []string{"c1/l1"}, up.Keys())
		assert.Greater(t, up.Jobs()[0].Tries, 1, "a delivery after a restart knows it may not be the first")
		require.NoError(t, r2.stop())
	})
}

func TestEngineSyncRetriesAndDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sk := &sink{fail: func(job *cti.SyncJob, attempt int) error {
			switch {
			case job.ConversationID == "flaky" && attempt <= 2:
				return &cti.UpstreamError{Service: "zendesk", Op: "update ticket", Status: 429, RetryAfter: 20 * time.Second}
			case job.ConversationID == "broken":
				return &cti.UpstreamError{Service: "zendesk", Op: "update ticket", Status: 422}
			case job.ConversationID == "late" && attempt == 1:
				return cti.Later(time.Minute, "recording not ready")
			}
			return nil
		}}
		r := newRigWith(t, cti.NewMemoryStore(), sk)
		for _, id := range []string{"flaky", "broken", "late"} {
			b := support(id)
			r.send(b.Alert("l", "u1"), b.Connect("l"), b.Hangup("l"), b.Wrapup("l", "w", ""))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		assert.Empty(t, sk.Keys())
		assert.Equal(t, []cti.SyncState{cti.SyncQueued, cti.SyncDead}, r.rec.SyncStates("broken/l"))
		dead, err := r.store.DeadLetters(context.Background())
		require.NoError(t, err)
		require.Len(t, dead, 1)
		assert.Contains(t, dead[0].LastError, "422")

		time.Sleep(19 * time.Second)
		synctest.Wait()
		assert.Empty(t, sk.Keys(), "Retry-After is honoured")
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		assert.Equal(t, []string{"flaky/l", "late/l"}, sk.Keys())
		assert.Equal(t, []cti.SyncState{cti.SyncQueued, cti.SyncRetry, cti.SyncRetry, cti.SyncDone}, r.rec.SyncStates("flaky/l"))
		for _, j := range sk.Jobs() {
			if j.ConversationID == "flaky" {
				assert.Equal(t, 3, j.Tries, "every delivery start is counted")
			}
		}
		assert.Equal(t, []cti.SyncState{cti.SyncQueued, cti.SyncDeferred, cti.SyncDone}, r.rec.SyncStates("late/l"))
		st, _ := r.store.Stats(context.Background())
		assert.Equal(t, cti.OutboxStats{Pending: 0, Dead: 1}, st)
		require.NoError(t, r.stop())
	})
}

type batchSink struct {
	sink
	batches []int
}

func (b *batchSink) SyncBatch(ctx context.Context, jobs []*cti.SyncJob) []error {
	b.mu.Lock()
	b.batches = append(b.batches, len(jobs))
	b.mu.Unlock()
	errs := make([]error, len(jobs))
	for i, j := range jobs {
		errs[i] = b.Sync(ctx, j)
	}
	return errs
}

func TestEngineBatchesBacklog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bs := &batchSink{}
		src := ctitest.NewSource()
		store := cti.NewMemoryStore()
		// A backlog waiting in the outbox from before a restart.
		for i := range 250 {
			id := fmt.Sprintf("c%03d", i)
			require.NoError(t, store.Put(context.Background(), &cti.SyncJob{
				Key: cti.JobKey(id, "l"), ConversationID: id, LegID: "l", Rule: "support",
				Conversation: &cti.Conversation{ID: id}, EnqueuedAt: ctitest.Start.Add(time.Duration(i)),
			}))
		}
		eng, err := cti.NewEngine(src, testRules(), cti.WithMatcher(&matcher{}), cti.WithStrategy(strategy),
			cti.WithPopper(&popper{}), cti.WithDirectory(directory), cti.WithSink(bs), cti.WithStore(store))
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- eng.Run(ctx) }()
		time.Sleep(time.Second)
		synctest.Wait()
		cancel()
		require.NoError(t, <-done)
		assert.Len(t, bs.Jobs(), 250)
		assert.Equal(t, 250, sum(bs.batches))
		assert.LessOrEqual(t, len(bs.batches), 4, "a backlog goes out in batches of up to 100: %v", bs.batches)
		for _, n := range bs.batches {
			assert.LessOrEqual(t, n, 100)
		}
	})
}

func sum(xs []int) (n int) {
	for _, x := range xs {
		n += x
	}
	return n
}

func TestEngineRunOnceAndRequiredCollaborators(t *testing.T) {
	_, err := cti.NewEngine(ctitest.NewSource(), testRules())
	require.Error(t, err)
	for _, want := range []string{"Sink", "Matcher", "Strategy", "Popper", "Directory"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = cti.NewEngine(ctitest.NewSource(), &cti.Rules{}, cti.WithSink(&sink{}))
	var ce *cti.ConfigError
	require.ErrorAs(t, err, &ce)

	// Every rule counts, not only the first that pops: a later rule that
	// searches needs a Matcher (it would be called nil in a worker), and
	// so does one that pops nothing but identifies early.
	rs := testRules()
	rs.Rules = append([]cti.Rule{{Name: "new-ticket", When: cti.When{Queues: []string{"Billing"}}, Popup: cti.PopupTicketNew}}, rs.Rules...)
	_, err = cti.NewEngine(ctitest.NewSource(), rs, cti.WithStrategy(strategy), cti.WithPopper(&popper{}),
		cti.WithDirectory(directory), cti.WithSink(&sink{}))
	require.ErrorContains(t, err, "Matcher", "a later rule identifies by phone")
	early := &cti.Rules{Subscribe: rs.Subscribe, Rules: []cti.Rule{{Name: "early", When: cti.When{Queues: []string{"Support"}},
		Identify: []cti.IdentifySpec{{Kind: cti.IdentifyPhone}}, Popup: cti.PopupNone, IdentifyEarly: true}}}
	_, err = cti.NewEngine(ctitest.NewSource(), early, cti.WithSink(&sink{}))
	require.ErrorContains(t, err, "Matcher", "a rule that pops nothing but identifies early")
	assert.NotContains(t, err.Error(), "Popper", "a rule that pops nothing needs no popper")

	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		synctest.Wait()
		assert.Error(t, r.eng.Run(r.ctx), "Run twice")
		require.NoError(t, r.stop())
		assert.ErrorIs(t, r.eng.HandleConversation(context.Background(), &cti.Conversation{ID: "x"}), cti.ErrClosed)
	})
}

func TestEngineSourceFailureStopsRun(t *testing.T) {
	boom := errors.New("invalid client credentials")
	src := cti.SourceFunc(func(ctx context.Context, h cti.Handler) error { return boom })
	eng, err := cti.NewEngine(src, testRules(), cti.WithMatcher(&matcher{}), cti.WithStrategy(strategy),
		cti.WithPopper(&popper{}), cti.WithDirectory(directory), cti.WithSink(&sink{}))
	require.NoError(t, err)
	err = eng.Run(context.Background())
	assert.ErrorIs(t, err, boom)
}

func TestEngineRejectsSnapshotWithoutID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		err := r.src.Send(r.ctx, &cti.Conversation{})
		assert.ErrorIs(t, err, cti.ErrInvalid)
		require.NoError(t, r.stop())
	})
}

func TestEngineChoosePassesThroughStrategy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ch := &chooser{}
		// A ticket:new-like strategy: several users → choose; one user →
		// create a ticket for them.
		newTicket := cti.StrategyFunc(func(in cti.DecideInput) cti.Decision {
			if len(in.Result.Records) > 1 {
				return cti.Decision{Action: cti.ActionChoose, Candidates: in.Result.Records}
			}
			r := in.Result.Records[0]
			return cti.Decision{Action: cti.ActionCreate, Create: cti.CreateSpec{Ticket: true, Requester: &r}}
		})
		r := newRig(t, cti.WithChooser(ch), cti.WithStrategy(newTicket))
		b := support("c1").Phone(phoneShared)
		r.send(b.Alert("l1", "u1"))
		require.Len(t, ch.offered, 1)
		_, err := r.eng.Choose(r.ctx, "c1", "l1", &ch.offered[0].Candidates[1])
		require.NoError(t, err)
		calls := r.popper.Calls()
		require.Len(t, calls, 1)
		assert.Equal(t, cti.ActionCreate, calls[0].Decision.Action, "the pick is the requester of a new ticket")
		assert.Equal(t, int64(3), calls[0].Decision.Create.Requester.ID)
		assert.Equal(t, "picked by the agent", calls[0].Decision.Reason)
		require.NoError(t, r.stop())
	})
}

func TestEngineEndlessDeferralGoesToDeadLetters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sk := &sink{fail: func(*cti.SyncJob, int) error { return cti.Later(time.Second, "transcript not ready") }}
		r := newRigWith(t, cti.NewMemoryStore(), sk)
		b := support("c1")
		r.send(b.Alert("l1", "u1"), b.Connect("l1"), b.Hangup("l1"), b.Wrapup("l1", "w", ""))
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		states := r.rec.SyncStates("c1/l1")
		require.NotEmpty(t, states)
		assert.Equal(t, cti.SyncDead, states[len(states)-1], "never silently acknowledged")
		dead, err := r.store.DeadLetters(context.Background())
		require.NoError(t, err)
		require.Len(t, dead, 1)
		assert.Contains(t, dead[0].LastError, "deferred 50 times")
		require.NoError(t, r.stop())
	})
}

// A sink's checkpoint, given with a deferral, comes back with the next
// delivery of the job (and survives in the store: the job is saved with
// it); a deferral without one keeps the last.
func TestEngineDeferralKeepsCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var seen []string
		sk := &sink{fail: func(j *cti.SyncJob, n int) error {
			seen = append(seen, j.Checkpoint)
			switch n {
			case 1:
				return &cti.Deferred{After: time.Second, Reason: "recording not ready", Checkpoint: "call 7"}
			case 2:
				return cti.Later(time.Second, "still not ready")
			}
			return nil
		}}
		store := cti.NewMemoryStore()
		r := newRigWith(t, store, sk)
		b := support("c1")
		r.send(b.Alert("l1", "u1"), b.Connect("l1"), b.Hangup("l1"), b.Wrapup("l1", "w", ""))
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, []string{"", "call 7", "call 7"}, seen)
		require.Len(t, sk.Jobs(), 1)
		require.NoError(t, r.stop())
	})
}

// TestEngineSavesEveryLeg: the record saved for a conversation holds each
// leg's record (the engine keeps them apart from the record between saves).
func TestEngineSavesEveryLeg(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := cti.NewMemoryStore()
		r := newRigWith(t, store, &sink{})
		b := support("c1")
		r.send(b.Alert("a", "u1"), b.Connect("a"))
		r.send(b.Transfer("a", "b", "u2", cti.Ref{ID: "q-support", Name: "Support"}))
		synctest.Wait()
		rec, err := store.LoadConversation(context.Background(), "c1")
		require.NoError(t, err)
		require.Len(t, rec.Legs, 2)
		a, bl := rec.Legs["a"], rec.Legs["b"]
		require.NotNil(t, a)
		require.NotNil(t, bl)
		assert.Equal(t, cti.PhaseDisconnected, a.Phase)
		assert.Equal(t, "u1", a.UserID)
		assert.Equal(t, cti.PhaseOffered, bl.Phase)
		assert.Equal(t, "u2", bl.UserID)
		assert.True(t, a.PopDone && bl.PopDone)
		require.NotNil(t, bl.Popped)
		assert.Equal(t, int64(1), bl.Popped.ID)
		require.NoError(t, r.stop())
	})
}

// TestEngineWorkersReused: a conversation that activates while a worker is
// idle runs on that worker (no new goroutine per activation); idle workers
// exit after their keepalive, and Stats says so.
func TestEngineWorkersReused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		c1 := support("c1")
		r.send(c1.Alert("l1", "u1"))
		st := r.eng.Stats()
		assert.Equal(t, 0, st.Busy, "every snapshot acted on")
		assert.Equal(t, 1, st.Workers, "the worker stays for the next activation")
		for i := range 5 {
			r.send(support(fmt.Sprintf("c%d", i+2)).Alert("l1", "u1"))
			assert.Equal(t, 1, r.eng.Stats().Workers, "activation %d reuses the idle worker", i+2)
		}
		require.Len(t, r.popper.Calls(), 6)
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, cti.Stats{}, r.eng.Stats(), "idle workers exit after their keepalive")
		r.send(c1.Connect("l1"))
		assert.Equal(t, 1, r.eng.Stats().Workers, "a new worker when none waits")
		require.NoError(t, r.stop())
		assert.Equal(t, cti.Stats{}, r.eng.Stats(), "Run returned: no worker left")
	})
}

// TestEngineBackfillsSinceLastRun: a running engine marks its store alive
// every AliveEvery and when it stops; the next run hands that time to the
// source (cti.Backfiller) before running it. A first run, on a store that
// never saw an engine, asks for nothing; a run younger than AliveEvery
// has not replaced the previous mark (if it died then, the next run would
// still look back over the earlier downtime).
func TestEngineBackfillsSinceLastRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := cti.NewMemoryStore()
		r1 := newRigWith(t, store, &sink{})
		synctest.Wait()
		assert.Empty(t, r1.src.Backfilled(), "nothing to look back on")
		started := time.Now()
		last, err := store.LastAlive(r1.ctx)
		require.NoError(t, err)
		assert.True(t, last.IsZero(), "not marked at start: %v", last)

		time.Sleep(cti.AliveEvery + time.Second)
		synctest.Wait()
		last, _ = store.LastAlive(r1.ctx)
		assert.True(t, last.Equal(started.Add(cti.AliveEvery)), "marked alive every AliveEvery: %v", last)

		time.Sleep(10 * time.Second)
		stopped := time.Now()
		require.NoError(t, r1.stop())

		time.Sleep(time.Minute) // down
		r2 := newRigWith(t, store, &sink{})
		synctest.Wait()
		got := r2.src.Backfilled()
		require.Len(t, got, 1)
		assert.True(t, got[0].Equal(stopped), "looks back to when the last run stopped: %v, want %v", got[0], stopped)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		last, _ = store.LastAlive(r2.ctx)
		assert.True(t, last.Equal(stopped), "a run that dies before its first mark leaves the last one: %v", last)
		require.NoError(t, r2.stop())

		// Down longer than finished conversations are remembered (2 h by
		// default): the look-back stops short of that, so nothing synced
		// before the downtime is found again without its record.
		time.Sleep(5 * time.Hour)
		r3 := newRigWith(t, store, &sink{})
		synctest.Wait()
		got = r3.src.Backfilled()
		require.Len(t, got, 1)
		assert.Equal(t, 2*time.Hour-10*time.Minute, time.Since(got[0]), "looks back Tombstone less 10 minutes")

		// The source has a look-up still to do (a gap's, from an hour
		// ago): the marks stay at its start, so a stop now does not lose it.
		gap := time.Now().Add(-time.Hour)
		r3.src.SetPending(gap)
		time.Sleep(cti.AliveEvery + time.Second)
		synctest.Wait()
		last, _ = store.LastAlive(r3.ctx)
		assert.True(t, last.Equal(gap), "marked at the pending look-up's start: %v, want %v", last, gap)
		require.NoError(t, r3.stop())
		last, _ = store.LastAlive(context.Background())
		assert.True(t, last.Equal(gap), "stop marked at the pending look-up's start: %v, want %v", last, gap)
		r4 := newRigWith(t, store, &sink{})
		synctest.Wait()
		assert.Equal(t, []time.Time{gap}, r4.src.Backfilled(), "the next run looks back over it again")
		require.NoError(t, r4.stop())
	})
}

// TestEngineIdentifiesEarly: with identify_early the customer is
// identified while the conversation waits in queue, and the pop only
// shows; without it nothing is searched before an agent; a failed early
// search is made again by the pop.
func TestEngineIdentifiesEarly(t *testing.T) {
	early := func() *cti.Rules {
		rs := testRules()
		rs.Rules[0].IdentifyEarly = true
		return rs
	}
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		r.send(support("c0").Snapshot())
		assert.Zero(t, r.matcher.Calls(), "searched before an agent without identify_early")
		require.NoError(t, r.stop())

		r = newRigRules(t, cti.NewMemoryStore(), &sink{}, early())
		b := support("c1")
		r.send(b.Snapshot())
		assert.Equal(t, 1, r.matcher.Calls(), "identified while queued")
		assert.Empty(t, r.popper.Calls(), "no agent yet: no pop")
		r.send(b.Snapshot()) // another update while queued
		assert.Equal(t, 1, r.matcher.Calls(), "identified once")
		r.send(b.Alert("l1", "u1"))
		require.Len(t, r.popper.Calls(), 1)
		p := r.popper.Calls()[0]
		assert.Equal(t, cti.ActionShow, p.Decision.Action)
		assert.Equal(t, int64(1), p.Decision.Record.ID)
		assert.Equal(t, 1, r.matcher.Calls(), "the pop used the early identification")

		// A sales conversation: its rule does not identify early.
		r.send(ctitest.NewConversation("c2", cti.MediaVoice).Phone(phoneAlice).Queue("q-sales", "Sales").Snapshot())
		assert.Equal(t, 1, r.matcher.Calls(), "a rule without identify_early searched early")
		require.NoError(t, r.stop())

		// Rung in a queue whose rule searches differently (it wants the
		// open tickets): the pop searches again.
		rs := early()
		rs.Rules[1].Popup, rs.Rules[1].PopOn = cti.PopupTicketLatestOpen, cti.PopOnAlerting
		r = newRigRules(t, cti.NewMemoryStore(), &sink{}, rs)
		b = support("c4")
		r.send(b.Snapshot())
		assert.Equal(t, 1, r.matcher.Calls())
		b.Queue("q-sales", "Sales")
		r.send(b.Alert("l1", "u1"))
		assert.Equal(t, 2, r.matcher.Calls(), "the early search was reused by a rule that searches differently")
		require.NoError(t, r.stop())

		r = newRigRules(t, cti.NewMemoryStore(), &sink{}, early())
		r.matcher.mu.Lock()
		r.matcher.err = &cti.UpstreamError{Service: "zendesk", Op: "search", Status: 503}
		r.matcher.mu.Unlock()
		b = support("c3")
		r.send(b.Snapshot())
		assert.Equal(t, 1, r.matcher.Calls())
		r.matcher.mu.Lock()
		r.matcher.err = nil
		r.matcher.mu.Unlock()
		r.send(b.Alert("l1", "u1"))
		assert.Equal(t, 2, r.matcher.Calls(), "the pop searched again after a failed early search")
		require.Len(t, r.popper.Calls(), 1)
		assert.Equal(t, int64(1), r.popper.Calls()[0].Decision.Record.ID)
		require.NoError(t, r.stop())
	})
}

// TestEngineIdentifiesOnceEverythingIsKnown: identify_early runs on the
// first snapshot in the queue, before the flow there has set the
// attribute the rule identifies by. "Nothing to search by yet" is not
// "identified, no match": the pop searches by the attribute. Likewise a
// search that found nothing by the phone alone, the attribute not set
// yet, is made again once it is.
func TestEngineIdentifiesOnceEverythingIsKnown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rs := testRules()
		rs.Rules[0].IdentifyEarly = true
		rs.Rules[0].Identify = []cti.IdentifySpec{{Kind: cti.IdentifyAttribute, Attribute: "Phone", Target: cti.TargetPhone}}
		r := newRigRules(t, cti.NewMemoryStore(), &sink{}, rs)
		b := support("c1")
		r.send(b.Snapshot())
		assert.Zero(t, r.matcher.Calls(), "searched with nothing to search by")
		b.Attr("Phone", phoneAlice)
		r.send(b.Alert("l1", "u1"))
		assert.Equal(t, 1, r.matcher.Calls(), "searched by the attribute once it is known")
		if calls := r.popper.Calls(); assert.Len(t, calls, 1) {
			assert.Equal(t, int64(1), calls[0].Decision.Record.ID, "Alice popped")
		}
		require.NoError(t, r.stop())

		rs = testRules()
		rs.Rules[0].IdentifyEarly = true
		rs.Rules[0].Identify = []cti.IdentifySpec{{Kind: cti.IdentifyPhone}, {Kind: cti.IdentifyAttribute, Attribute: "Account", Target: cti.TargetPhone}}
		r = newRigRules(t, cti.NewMemoryStore(), &sink{}, rs)
		b = ctitest.NewConversation("c2", cti.MediaVoice).Phone("+15550009999").Queue("q-support", "Support")
		r.send(b.Snapshot())
		assert.Equal(t, 1, r.matcher.Calls(), "searched early by the phone")
		b.Attr("Account", phoneAlice)
		r.send(b.Alert("l1", "u1"))
		assert.Equal(t, 3, r.matcher.Calls(), "searched again, by the phone and then the attribute now known")
		if calls := r.popper.Calls(); assert.Len(t, calls, 1) {
			assert.Equal(t, int64(1), calls[0].Decision.Record.ID, "Alice popped")
		}
		require.NoError(t, r.stop())
	})
}

// openTicketsMatcher finds two users for every number; Bob (2) has an
// open ticket, given only when the query asks for open tickets.
type openTicketsMatcher struct {
	mu      sync.Mutex
	queries []cti.Query
}

func (m *openTicketsMatcher) Match(_ context.Context, q cti.Query) (cti.Result, error) {
	m.mu.Lock()
	m.queries = append(m.queries, q)
	m.mu.Unlock()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	bob := cti.Record{Kind: cti.KindUser, ID: 2, Name: "Bob", UpdatedAt: at}
	carol := cti.Record{Kind: cti.KindUser, ID: 3, Name: "Carol", UpdatedAt: at.Add(-time.Hour)}
	if q.WithOpenTickets {
		bob.OpenTickets = []cti.Record{{Kind: cti.KindTicket, ID: 77, Status: "open", RequesterID: 2, UpdatedAt: at}}
	}
	return cti.Result{Records: []cti.Record{bob, carol}}, nil
}

func (m *openTicketsMatcher) Queries() []cti.Query {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.queries)
}

// TestEngineTransferToARuleThatSearchesDifferently: a leg popped under a
// rule that searched without open tickets (the agent has not picked yet),
// then a transfer to a queue whose rule pops the latest open ticket. The
// second leg searches again, with open tickets, and shows Bob's ticket
// instead of creating one. The other way round, a search with open
// tickets serves a rule that does not want them.
func TestEngineTransferToARuleThatSearchesDifferently(t *testing.T) {
	rules := func(first, second cti.Popup) *cti.Rules {
		return &cti.Rules{
			Subscribe: cti.Subscribe{Queues: []string{"q-front", "q-billing"}},
			Rules: []cti.Rule{{
				Name: "front", When: cti.When{Queues: []string{"Front"}},
				Identify: []cti.IdentifySpec{{Kind: cti.IdentifyPhone}},
				Popup:    first, Multiple: cti.MultipleChoose,
			}, {
				Name: "billing", When: cti.When{Queues: []string{"Billing"}},
				Identify: []cti.IdentifySpec{{Kind: cti.IdentifyPhone}},
				Popup:    second, Multiple: cti.MultipleFirst, NoMatch: cti.NoMatchCreateTicket,
			}},
		}
	}
	run := func(t *testing.T, rs *cti.Rules) (*rig, *openTicketsMatcher) {
		m := &openTicketsMatcher{}
		r := newRigRules(t, cti.NewMemoryStore(), &sink{}, rs, cti.WithMatcher(m), cti.WithStrategy(popup.Strategy{}),
			cti.WithChooser(cti.ChooserFunc(func(context.Context, cti.Choice) error { return nil })))
		b := ctitest.NewConversation("c1", cti.MediaVoice).Phone(phoneShared).Queue("q-front", "Front")
		r.send(b.Alert("a", "u1"), b.Connect("a"))
		r.send(b.Transfer("a", "b", "u2", cti.Ref{ID: "q-billing", Name: "Billing"}))
		return r, m
	}
	synctest.Test(t, func(t *testing.T) {
		r, m := run(t, rules(cti.PopupUser, cti.PopupTicketLatestOpen))
		calls := r.popper.Calls()
		require.Len(t, calls, 1, "front offers a choice, billing pops")
		d := calls[0].Decision
		if d.Action != cti.ActionShow || d.Record == nil || d.Record.ID != 77 {
			t.Errorf("billing leg: %s %+v (%s), want to show Bob's open ticket 77", d.Action, d.Record, d.Reason)
		}
		if q := m.Queries(); len(q) != 2 || q[0].WithOpenTickets || !q[1].WithOpenTickets {
			t.Errorf("searches %+v, want one without open tickets, then one with", q)
		}
		require.NoError(t, r.stop())

		r, m = run(t, rules(cti.PopupTicketLatestOpen, cti.PopupUser))
		assert.Len(t, m.Queries(), 1, "a search with open tickets searched again for a rule that does not want them")
		require.NoError(t, r.stop())
	})
}

// TestEngineWokenWorkerRunsBeforeTheReaderGoesOn: when a snapshot wakes
// its conversation's worker, HandleConversation yields, so that the
// worker runs now instead of once the source's reading goroutine blocks
// (figure 2: 0.1–0.15 ms on the pop's path). With one P, the pop has been
// made when the call returns — but for the scheduler's fairness check
// (every 61st schedule takes the global queue first, where the yielding
// caller waits), and the race detector's shuffles: most calls, not all.
// Without the yield, none.
func TestEngineWokenWorkerRunsBeforeTheReaderGoesOn(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	r := newRig(t)
	defer func() { require.NoError(t, r.stop()) }()
	pops := func() int {
		r.rec.mu.Lock()
		defer r.rec.mu.Unlock()
		return len(r.rec.pops)
	}
	// Running: a conversation in IVR (no agent, nothing to pop) is taken.
	ivr := support("c-ivr").Snapshot()
	for errors.Is(r.eng.HandleConversation(r.ctx, ivr), cti.ErrClosed) {
		time.Sleep(time.Millisecond)
	}
	const calls = 50
	popped := 0
	for i := range calls {
		snap := support(fmt.Sprintf("c%d", i)).Alert("l1", "u1")
		time.Sleep(200 * time.Microsecond) // not a burst: each, as a reader between frames
		before := pops()
		require.NoError(t, r.eng.HandleConversation(r.ctx, snap))
		if pops() > before {
			popped++
		}
	}
	assert.GreaterOrEqual(t, popped, calls*4/5, "calls that returned after their pop")
}

// TestEngineEnrichOutageDoesNotBury: a transiently failing enrichment
// delays a sync a few times, then the sync goes on with what is known. It
// does not use up the attempts a bounded policy gives the sink, nor depend
// on the policy's Retryable, which judges the sink's errors.
func TestEngineEnrichOutageDoesNotBury(t *testing.T) {
	for name, policy := range map[string]cti.RetryPolicy{
		"MaxAttempts 3":          {MaxAttempts: 3},
		"MaxAttempts 2":          {MaxAttempts: 2},
		"a Retryable of its own": {Retryable: func(error) bool { return false }},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				down := cti.EnricherFunc(func(context.Context, *cti.Conversation) error {
					return &cti.UpstreamError{Service: "genesys", Op: "analytics", Status: 503}
				})
				store := cti.NewMemoryStore()
				r := newRigWith(t, store, &sink{}, cti.WithEnricher(down), cti.WithRetry(policy))
				b := support("c1")
				r.send(b.Alert("l1", "u1"))
				r.send(b.Connect("l1"), b.Hangup("l1"), b.Wrapup("l1", "w", ""))
				time.Sleep(10 * time.Minute)
				synctest.Wait()
				st, err := store.Stats(context.Background())
				require.NoError(t, err)
				assert.Zero(t, st.Dead, "buried for an enrichment outage")
				assert.Equal(t, []string{"c1/l1"}, r.sink.Keys(), "synced without the enrichment")
				require.NoError(t, r.stop())
			})
		})
	}
}

// TestEngineSkippedAfterCallWorkEndsTheLeg: the agent skipped after-call
// work and no wrap-up code comes: the leg is done and synced after the
// grace period, not after the wrap-up timeout (hours).
func TestEngineSkippedAfterCallWorkEndsTheLeg(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		b := support("c1")
		r.send(b.Alert("l1", "u1"))
		r.send(b.Connect("l1"))
		r.send(b.Hangup("l1"))
		s := b.Snapshot()
		s.Leg("l1").WrapupExpected, s.Leg("l1").ACW = true, cti.ACWSkipped
		r.send(s)
		time.Sleep(time.Minute)
		synctest.Wait()
		assert.Equal(t, []string{"c1/l1"}, r.sink.Keys(), "synced once after-call work is over")
		require.NoError(t, r.stop())
	})
}

// TestEngineEventOwnsItsLeg: an Event's Leg, wrap-up included, is the
// event's own copy (that of its Conversation), not the engine's, which
// later snapshots rewrite: a hook may keep it and read it elsewhere.
func TestEngineEventOwnsItsLeg(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var evs []cti.Event
		r := newRig(t, cti.WithHooks(cti.Hooks{Event: func(e cti.Event) { mu.Lock(); evs = append(evs, e); mu.Unlock() }}))
		b := support("c1")
		r.send(b.Alert("l1", "u1"))
		r.send(b.Connect("l1"))
		r.send(b.Hangup("l1"), b.Wrapup("l1", "w", "notes"))
		time.Sleep(time.Minute)
		synctest.Wait()
		require.NoError(t, r.stop())
		mu.Lock()
		defer mu.Unlock()
		var wrapped int
		for _, e := range evs {
			if e.Leg.Wrapup == nil {
				continue
			}
			wrapped++
			if e.Leg.Wrapup != e.Conversation.Leg(e.Leg.ID).Wrapup {
				t.Errorf("%s: the event's leg shares its wrap-up with the engine", e.Type)
			}
		}
		assert.NotZero(t, wrapped, "no event with a wrap-up")
	})
}
