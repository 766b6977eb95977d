package popup_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/popup"
)

// fakePopper creates users and tickets the way the Zendesk popper does.
type fakePopper struct {
	mu       sync.Mutex
	nextID   int64
	users    int
	tickets  int
	reqs     []cti.PopRequest
	delay    time.Duration
	failNext error // returned (after creating nothing) by the next pop
	failShow error // returned after creating, as a failed display
}

func (f *fakePopper) Pop(ctx context.Context, req cti.PopRequest) (cti.PopResult, error) {
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
			return cti.PopResult{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if err := f.failNext; err != nil {
		f.failNext = nil
		return cti.PopResult{}, err
	}
	var res cti.PopResult
	d := req.Decision
	switch d.Action {
	case cti.ActionShow:
		r := *d.Record
		res.Shown = &r
	case cti.ActionCreate:
		requester := d.Create.Requester
		if d.Create.User {
			f.nextID++
			f.users++
			u := cti.Record{Kind: cti.KindUser, ID: f.nextID, Phone: req.Conversation.Customer.Phone}
			res.Created = append(res.Created, u)
			requester, res.Shown = &u, &u
		}
		if d.Create.Ticket {
			f.nextID++
			f.tickets++
			tk := cti.Record{Kind: cti.KindTicket, ID: f.nextID, Status: "new", RequesterID: requester.ID, Name: d.Create.Subject}
			res.Created = append(res.Created, tk)
			res.Shown = &tk
		}
	default:
		return res, fmt.Errorf("fake popper: %w: %s", cti.ErrInvalid, d.Action)
	}
	if err := f.failShow; err != nil {
		f.failShow = nil
		return res, err
	}
	return res, nil
}

func (f *fakePopper) counts() (users, tickets, pops int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.users, f.tickets, len(f.reqs)
}

// call pops for an unknown caller the way the engine does: the strategy
// decides from an empty match result, the popper performs.
func call(t *testing.T, p cti.Popper, rule *cti.Rule, phone, email string) (cti.PopResult, error) {
	t.Helper()
	conv := &cti.Conversation{ID: "c-" + phone, Media: cti.MediaVoice, Customer: cti.Customer{Phone: phone, Email: email}}
	id := cti.Identity{Kind: cti.IdentifyPhone, Value: phone}
	if phone == "" {
		id = cti.Identity{Kind: cti.IdentifyEmail, Value: email}
	}
	dec := popup.Strategy{}.Decide(cti.DecideInput{Rule: rule, Conversation: conv, Identity: id})
	return p.Pop(context.Background(), cti.PopRequest{Agent: cti.Agent{ID: 900}, Conversation: conv, Rule: rule, Identity: id, Decision: dec})
}

func rule(p cti.Popup, nm cti.NoMatch) *cti.Rule {
	return &cti.Rule{Name: "r", Popup: p, Multiple: cti.MultipleChoose, NoMatch: nm}
}

func TestDedupeSecondCallBeforeIndexCatchesUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rule       *cti.Rule
		wantSecond string // what the second call shows
		wantUsers  int
		wantTix    int
	}{
		{rule(cti.PopupUser, cti.NoMatchCreateUser), "user/1", 1, 0},
		{rule(cti.PopupUser, cti.NoMatchCreateUserAndTicket), "user/1", 1, 1},
		{rule(cti.PopupTicketLatestOpen, cti.NoMatchCreateUserAndTicket), "ticket/2", 1, 1},
		{rule(cti.PopupTicketLatestOpen, cti.NoMatchCreateTicket), "ticket/2", 1, 1},
		{rule(cti.PopupTicketLatestOpen, cti.NoMatchCreateUser), "user/1", 1, 0},
		{rule(cti.PopupTicketNew, cti.NoMatchCreateUser), "ticket/3", 1, 2}, // a new ticket per call, one customer
	}
	for _, tt := range tests {
		name := string(tt.rule.Popup) + "/" + string(tt.rule.NoMatch)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := &fakePopper{}
			d := popup.Dedupe(f, popup.DedupeOptions{})
			if _, err := call(t, d, tt.rule, "+14155551212", ""); err != nil {
				t.Fatal(err)
			}
			res, err := call(t, d, tt.rule, "+14155551212", "")
			if err != nil {
				t.Fatal(err)
			}
			if res.Shown == nil || res.Shown.Ref() != tt.wantSecond {
				t.Errorf("second call showed %v, want %s", res.Shown, tt.wantSecond)
			}
			users, tix, _ := f.counts()
			if users != tt.wantUsers || tix != tt.wantTix {
				t.Errorf("created %d users and %d tickets, want %d and %d", users, tix, tt.wantUsers, tt.wantTix)
			}
			// A third call: still one customer.
			call(t, d, tt.rule, "+14155551212", "")
			if users, _, _ := f.counts(); users != tt.wantUsers {
				t.Errorf("after a third call: %d users", users)
			}
		})
	}
}

func TestDedupeConcurrentCallsCreateOnce(t *testing.T) {
	t.Parallel()
	f := &fakePopper{delay: 30 * time.Millisecond}
	d := popup.Dedupe(f, popup.DedupeOptions{})
	r := rule(cti.PopupTicketLatestOpen, cti.NoMatchCreateUserAndTicket)
	var wg sync.WaitGroup
	var shown sync.Map
	var fails atomic.Int32
	for range 20 {
		wg.Go(func() {
			res, err := call(t, d, r, "+14155551212", "")
			if err != nil || res.Shown == nil {
				fails.Add(1)
				return
			}
			shown.Store(res.Shown.Ref(), true)
		})
	}
	wg.Wait()
	users, tix, pops := f.counts()
	if users != 1 || tix != 1 {
		t.Errorf("20 simultaneous calls created %d users, %d tickets; want 1 and 1", users, tix)
	}
	if pops != 20 || fails.Load() != 0 {
		t.Errorf("%d pops reached the popper, %d failed; want every agent popped", pops, fails.Load())
	}
	n := 0
	shown.Range(func(k, _ any) bool { n++; return true })
	if n != 1 {
		t.Error("the calls showed different records")
	}
}

func TestDedupeFailedCreateIsRetried(t *testing.T) {
	t.Parallel()
	f := &fakePopper{failNext: &cti.UpstreamError{Service: "zendesk", Status: 503}}
	d := popup.Dedupe(f, popup.DedupeOptions{})
	r := rule(cti.PopupUser, cti.NoMatchCreateUser)
	if _, err := call(t, d, r, "+14155551212", ""); err == nil {
		t.Fatal("want the popper's error")
	}
	res, err := call(t, d, r, "+14155551212", "")
	if err != nil || len(res.Created) != 1 {
		t.Errorf("after a failed create the next call = %+v, %v; want it to create", res, err)
	}
}

func TestDedupeRemembersWhenDisplayFailed(t *testing.T) {
	t.Parallel()
	f := &fakePopper{failShow: errors.New("display failed")}
	d := popup.Dedupe(f, popup.DedupeOptions{})
	r := rule(cti.PopupUser, cti.NoMatchCreateUser)
	if res, err := call(t, d, r, "+14155551212", ""); err == nil || len(res.Created) != 1 {
		t.Fatalf("first call = %+v, %v", res, err)
	}
	call(t, d, r, "+14155551212", "")
	if users, _, _ := f.counts(); users != 1 {
		t.Errorf("%d users created: the user created before the display failed was forgotten", users)
	}
}

func TestDedupeTTL(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := &fakePopper{}
	d := popup.Dedupe(f, popup.DedupeOptions{TTL: 10 * time.Minute, Now: clock})
	r := rule(cti.PopupUser, cti.NoMatchCreateUser)
	call(t, d, r, "+14155551212", "")
	mu.Lock()
	now = now.Add(9 * time.Minute)
	mu.Unlock()
	call(t, d, r, "+14155551212", "")
	if users, _, _ := f.counts(); users != 1 {
		t.Fatalf("within TTL: %d users", users)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	call(t, d, r, "+14155551212", "") // the index has caught up long ago; this is a real new decision
	if users, _, _ := f.counts(); users != 2 {
		t.Errorf("after TTL: %d users, want the decision passed through", users)
	}
	d.Forget(cti.Identity{Kind: cti.IdentifyPhone, Value: "+14155551212"})
	call(t, d, r, "+14155551212", "")
	if users, _, _ := f.counts(); users != 3 {
		t.Errorf("after Forget: %d users", users)
	}
}

func TestDedupeByAnyIdentity(t *testing.T) {
	t.Parallel()
	f := &fakePopper{}
	d := popup.Dedupe(f, popup.DedupeOptions{})
	r := rule(cti.PopupUser, cti.NoMatchCreateUser)
	call(t, d, r, "+14155551212", "jane@example.com") // identified by phone, email known
	res, _ := call(t, d, r, "", "Jane@Example.com")   // an email conversation from the same customer
	if users, _, _ := f.counts(); users != 1 || res.Shown == nil || res.Shown.ID != 1 {
		t.Errorf("%d users, shown %v: the customer's email was not remembered", users, res.Shown)
	}
	call(t, d, r, "+14155550000", "") // another number: another customer
	if users, _, _ := f.counts(); users != 2 {
		t.Errorf("%d users after a different number", users)
	}
}

func TestDedupePassThrough(t *testing.T) {
	t.Parallel()
	f := &fakePopper{}
	d := popup.Dedupe(f, popup.DedupeOptions{})
	u := cti.Record{Kind: cti.KindUser, ID: 77}
	conv := &cti.Conversation{Media: cti.MediaVoice}
	reqs := []cti.PopRequest{
		{Conversation: conv, Identity: cti.Identity{Kind: cti.IdentifyPhone, Value: "+14155551212"}, Decision: cti.Decision{Action: cti.ActionShow, Record: &u}},
		{Conversation: conv, Identity: cti.Identity{Kind: cti.IdentifyPhone, Value: "+14155551212"}, Decision: cti.Decision{Action: cti.ActionCreate, Create: cti.CreateSpec{Ticket: true, Requester: &u}}},
		// withheld number: nothing to remember it by
		{Conversation: conv, Identity: cti.Identity{Kind: cti.IdentifyPhone}, Decision: cti.Decision{Action: cti.ActionCreate, Create: cti.CreateSpec{User: true}}},
		{Conversation: conv, Identity: cti.Identity{Kind: cti.IdentifyPhone}, Decision: cti.Decision{Action: cti.ActionCreate, Create: cti.CreateSpec{User: true}}},
	}
	for i, req := range reqs {
		if _, err := d.Pop(context.Background(), req); err != nil {
			t.Fatalf("pop %d: %v", i, err)
		}
	}
	users, tix, pops := f.counts()
	if pops != 4 || users != 2 || tix != 1 {
		t.Errorf("pops %d users %d tickets %d; want 4 pops, each withheld caller created (2), 1 ticket", pops, users, tix)
	}
	for i := range reqs {
		if f.reqs[i].Decision.Action != reqs[i].Decision.Action || f.reqs[i].Decision.Create != reqs[i].Decision.Create {
			t.Errorf("pop %d changed: %+v", i, f.reqs[i].Decision)
		}
	}
}

func TestDedupeWaiterHonoursContext(t *testing.T) {
	t.Parallel()
	f := &fakePopper{delay: 200 * time.Millisecond}
	d := popup.Dedupe(f, popup.DedupeOptions{})
	r := rule(cti.PopupUser, cti.NoMatchCreateUser)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { call(t, d, r, "+14155551212", "") })
	time.Sleep(20 * time.Millisecond)
	conv := &cti.Conversation{Media: cti.MediaVoice, Customer: cti.Customer{Phone: "+14155551212"}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := d.Pop(ctx, cti.PopRequest{Conversation: conv, Rule: r, Identity: cti.Identity{Kind: cti.IdentifyPhone, Value: "+14155551212"},
		Decision: cti.Decision{Action: cti.ActionCreate, Create: cti.CreateSpec{User: true}}})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 150*time.Millisecond {
		t.Errorf("waiting pop: %v after %v, want its deadline", err, time.Since(start))
	}
}

func TestIdentityKey(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		id   cti.Identity
		want string
	}{
		{cti.Identity{Kind: cti.IdentifyPhone, Value: "+1 (415) 555-1212"}, "phone:14155551212"},
		{cti.Identity{Kind: cti.IdentifyPhone, Value: "anonymous"}, ""},
		{cti.Identity{Kind: cti.IdentifyPhone, Value: "1234"}, ""},
		{cti.Identity{Kind: cti.IdentifySocial, Channel: cti.ChannelWhatsApp, Value: "14155551212"}, "phone:14155551212"},
		{cti.Identity{Kind: cti.IdentifyAttribute, Target: cti.TargetPhone, Value: "+14155551212"}, "phone:14155551212"},
		{cti.Identity{Kind: cti.IdentifyEmail, Value: " Jane@Example.com"}, "email:jane@example.com"},
		{cti.Identity{Kind: cti.IdentifySocial, Channel: cti.ChannelTwitter, Value: "@Acme"}, "social:twitter:acme"},
		{cti.Identity{Kind: cti.IdentifyAttribute, Target: cti.TargetExternalID, Value: "A-1"}, "attribute:external_id:A-1"},
		{cti.Identity{Kind: cti.IdentifyEmail}, ""},
	} {
		if got := popup.IdentityKey(tt.id); got != tt.want {
			t.Errorf("IdentityKey(%+v) = %q, want %q", tt.id, got, tt.want)
		}
	}
}

func TestDedupeBounded(t *testing.T) {
	t.Parallel()
	f := &fakePopper{}
	d := popup.Dedupe(f, popup.DedupeOptions{MaxEntries: 50})
	r := rule(cti.PopupUser, cti.NoMatchCreateUser)
	for i := range 500 {
		call(t, d, r, fmt.Sprintf("+1415555%04d", i), "")
	}
	if n := popup.DedupeLen(d); n > 50 {
		t.Errorf("memory holds %d keys, MaxEntries 50", n)
	}
	// The most recent customer is still remembered.
	call(t, d, r, "+14155550499", "")
	if users, _, _ := f.counts(); users != 500 {
		t.Errorf("%d users: the latest customer was forgotten", users)
	}
}
