package genesystest

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Customer is someone the traffic simulator plays conversations for. Phone
// is E.164; Handle is a social or messaging platform id (Facebook PSID,
// X id, LINE user id, ...).
type Customer struct {
	Name   string
	Phone  string
	Email  string
	Handle string
}

// DemoCustomers is the demo's customer base. Two share a phone (a
// household: several matches), and the last ones are unknown to any CRM
// seeded from this list (their details are not in it: no match).
func DemoCustomers() []Customer {
	return []Customer{
		{Name: "Pat Doe", Phone: "+14155550100", Email: "pat.doe@example.org", Handle: "7712345678901234"},
		{Name: "Sam Roe", Phone: "+14155550101", Email: "sam.roe@example.org", Handle: "1234567890"},
		{Name: "Kim Lee", Phone: "+447700900123", Email: "kim.lee@example.org", Handle: "U4af4980629c7f2b1e5d3a"},
		{Name: "Léa Martin", Phone: "+33612345678", Email: "lea.martin@example.fr", Handle: "17841400000000001"},
		{Name: "Jo Ray", Phone: "+12125550123", Email: "jo.ray@example.org", Handle: "b2a1f3c4-9d8e-4f7a-8b6c-5d4e3f2a1b0c"},
		{Name: "Alex Ray", Phone: "+12125550123", Email: "alex.ray@example.org", Handle: "ext-user-42"},
	}
}

// UnknownCustomers are callers no seeded CRM knows.
func UnknownCustomers() []Customer {
	return []Customer{
		{Name: "", Phone: "+16505550199", Email: "stranger@example.net", Handle: "9988776655"},
		{Name: "New Caller", Phone: "+61255550123", Email: "new.caller@example.com.au", Handle: "ig-new-user"},
	}
}

// Kind is a playable conversation kind: a Media, with the messaging
// platform for messages and social expressions.
type Kind struct {
	Media       Media
	MessageType string
}

// AllKinds lists every media and messaging channel the emulator plays.
func AllKinds() []Kind {
	return []Kind{
		{MediaVoice, ""}, {MediaCallback, ""}, {MediaChat, ""}, {MediaEmail, ""},
		{MediaMessage, "webmessaging"}, {MediaMessage, "sms"}, {MediaMessage, "whatsapp"}, {MediaMessage, "facebook"},
		{MediaMessage, "instagram"}, {MediaMessage, "twitter"}, {MediaMessage, "line"}, {MediaMessage, "open"},
		{MediaSocial, "facebook"}, {MediaSocial, "twitter"},
	}
}

// Traffic configures Play. Zero fields take defaults.
type Traffic struct {
	// Every is the time between new conversations (default 8 s).
	Every time.Duration
	// Pace is the time between the steps of one conversation (default 3 s).
	Pace time.Duration
	// Customers to play (default DemoCustomers plus UnknownCustomers).
	Customers []Customer
	// Agents are Genesys user ids (default all seeded users).
	Agents []string
	// Queues are queue ids (default all seeded queues).
	Queues []string
	// Kinds to play (default AllKinds).
	Kinds []Kind
	// Max is the most conversations in flight (default 6).
	Max int
	// Seed makes the sequence reproducible (0: random).
	Seed uint64
	// Observe, if set, is called with each conversation started, from
	// Play's goroutines (concurrently): it must be safe for concurrent use.
	Observe func(*Conversation)
}

// Play runs simulated contact-center traffic until ctx is done: every
// Traffic.Every a conversation of a random kind for a random customer
// rings a random agent, who answers, sometimes transfers it, talks (chat,
// messages, email reply), hangs up and wraps up; some get a Genesys AI
// summary. Several overlap, so one agent often has several at once. Play
// returns when ctx is done and every conversation it started has stopped
// (mid-way ones are left as they are).
func (s *Server) Play(ctx context.Context, t Traffic) {
	if t.Every <= 0 {
		t.Every = 8 * time.Second
	}
	if t.Pace <= 0 {
		t.Pace = 3 * time.Second
	}
	if len(t.Customers) == 0 {
		t.Customers = append(DemoCustomers(), UnknownCustomers()...)
	}
	if len(t.Agents) == 0 {
		for _, u := range s.Users() {
			t.Agents = append(t.Agents, u.ID)
		}
	}
	if len(t.Queues) == 0 {
		for _, q := range s.Queues() {
			t.Queues = append(t.Queues, q.ID)
		}
	}
	if len(t.Kinds) == 0 {
		t.Kinds = AllKinds()
	}
	if t.Max <= 0 {
		t.Max = 6
	}
	seed := t.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	slots := make(chan struct{}, t.Max)
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(t.Every)
	defer tick.Stop()
	for {
		select {
		case slots <- struct{}{}:
			sc := t.scenario(rng)
			wg.Go(func() {
				defer func() { <-slots }()
				s.playOne(ctx, t, sc)
			})
		case <-ctx.Done():
			return
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

type scenario struct {
	kind      Kind
	cust      Customer
	queue     string
	agent     string
	agent2    string
	transfer  bool
	summarize bool
	code      string
	code2     string
	custHangs bool
}

func (t Traffic) scenario(rng *rand.Rand) scenario {
	pick := func(ss []string) string { return ss[rng.IntN(len(ss))] }
	codes := []string{CodeResolved, CodeFollowUp, CodeSale, CodeNoSale, CodeRefund, CodeComplaint}
	sc := scenario{
		kind: t.Kinds[rng.IntN(len(t.Kinds))], cust: t.Customers[rng.IntN(len(t.Customers))],
		queue: pick(t.Queues), agent: pick(t.Agents), agent2: pick(t.Agents),
		transfer: rng.IntN(4) == 0, summarize: rng.IntN(2) == 0, code: pick(codes), code2: pick(codes),
		custHangs: rng.IntN(2) == 0,
	}
	return sc
}

func (s *Server) playOne(ctx context.Context, t Traffic, sc scenario) {
	wait := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-ctx.Done():
			return false
		case <-s.quit:
			return false
		}
	}
	c := sc.cust
	sp := Spec{Media: sc.kind.Media, MessageType: sc.kind.MessageType, Name: c.Name, Queue: sc.queue,
		Attributes: map[string]string{"demo.scenario": string(sc.kind.Media) + "/" + sc.kind.MessageType}}
	switch {
	case sc.kind.Media == MediaEmail || sc.kind.Media == MediaChat:
		sp.From = c.Email
	case sc.kind.Media == MediaVoice || sc.kind.Media == MediaCallback || sc.kind.MessageType == "sms" || sc.kind.MessageType == "whatsapp":
		sp.From = c.Phone
	default:
		sp.From = c.Handle
	}
	switch sc.kind.Media {
	case MediaEmail:
		sp.Subject, sp.Body = "Question about my order", "Hello, my order has not arrived yet. Can you help?"
	case MediaChat, MediaMessage, MediaSocial:
		sp.Body = "Hi, I have a question about my order."
	}
	conv := s.Start(sp)
	if t.Observe != nil {
		t.Observe(conv)
	}
	leg := conv.Alert(sc.agent)
	if !wait(t.Pace) {
		return
	}
	conv.Connect(leg)
	if sc.kind.Media != MediaEmail { // chat and messages; for calls, the speech analytics transcript
		conv.Say(leg, "Hello! Let me look into that for you.")
		conv.Say("", "Thanks, it's order 2026-1182.")
	}
	if !wait(t.Pace) {
		return
	}
	legs := []string{leg}
	codes := []string{sc.code}
	if sc.transfer {
		conv.Transfer(leg, sc.queue)
		if !wait(t.Pace / 2) {
			return
		}
		l2 := conv.Alert(sc.agent2)
		if !wait(t.Pace / 2) {
			return
		}
		conv.Connect(l2)
		legs, codes = append(legs, l2), append(codes, sc.code2)
		if !wait(t.Pace) {
			return
		}
	}
	last := legs[len(legs)-1]
	if sc.kind.Media == MediaEmail {
		conv.Reply("Your order ships today; you will get a tracking number by email.")
	}
	if sc.summarize {
		conv.Summarize("The customer asked about order 2026-1182; the agent confirmed it ships today.")
	}
	if sc.custHangs {
		conv.End()
	} else {
		conv.Disconnect(last)
	}
	for i, l := range legs {
		if !wait(t.Pace / 2) {
			return
		}
		conv.Wrapup(l, codes[i], "Demo wrap-up notes.")
	}
}
