package match_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/match/internal/zdfake"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestCacheBurstMakesOneSearch(t *testing.T) {
	t.Parallel()
	d := &zdfake.Dir{Delay: 50 * time.Millisecond}
	d.AddUser(user(1, "+14155551212"))
	c := match.NewCache(newZendesk(t, d), match.CacheOptions{})
	var wg sync.WaitGroup
	var found atomic.Int32
	for range 50 {
		wg.Go(func() {
			res, err := c.Match(context.Background(), query("+14155551212"))
			if err == nil && len(res.Records) == 1 {
				found.Add(1)
			}
		})
	}
	wg.Wait()
	if found.Load() != 50 {
		t.Errorf("%d of 50 callers found the user", found.Load())
	}
	if n := d.Calls(); n != 1 {
		t.Errorf("a burst of 50 identical lookups made %d searches, want 1", n)
	}
	if lookups, hits := c.Stats(); lookups != 1 || hits != 49 {
		t.Errorf("Stats = %d lookups, %d hits; want 1, 49", lookups, hits)
	}
}

// A caller whose cache miss came just before another caller's lookup
// ended (and filled the cache) takes the cached answer instead of
// searching again. Not parallel: it sets a package hook.
func TestCacheMissRacingAFinishedLookup(t *testing.T) {
	d := &zdfake.Dir{}
	d.AddUser(user(1, "+14155551212"))
	c := match.NewCache(newZendesk(t, d), match.CacheOptions{})
	missed, resume := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	match.SetMissHook(func() {
		if first.CompareAndSwap(false, true) {
			close(missed)
			<-resume // the other caller's lookup runs to the end meanwhile
		}
	})
	t.Cleanup(func() { match.SetMissHook(nil) })
	done := make(chan error)
	go func() {
		_, err := c.Match(context.Background(), query("+14155551212"))
		done <- err
	}()
	<-missed
	if _, err := c.Match(context.Background(), query("+14155551212")); err != nil {
		t.Fatal(err)
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := d.Calls(); n != 1 {
		t.Errorf("%d searches, want 1: the late caller searched again", n)
	}
}

func TestCacheTTL(t *testing.T) {
	t.Parallel()
	clk := &clock{now: t0}
	d := &zdfake.Dir{}
	d.AddUser(user(1, "+14155551212"))
	c := match.NewCache(newZendesk(t, d), match.CacheOptions{TTL: time.Minute, NegativeTTL: 5 * time.Second, Now: clk.Now})
	ctx := context.Background()
	known, unknown := query("+14155551212"), query("+14155550000")
	step := func(q cti.Query, wantCalls int64, what string) {
		t.Helper()
		if _, err := c.Match(ctx, q); err != nil {
			t.Fatal(err)
		}
		if n := d.Calls(); n != wantCalls {
			t.Errorf("%s: %d searches so far, want %d", what, n, wantCalls)
		}
	}
	step(known, 1, "first lookup")
	step(known, 1, "cached")
	step(unknown, 2, "first negative lookup")
	step(unknown, 2, "negative cached")
	clk.Add(6 * time.Second)
	step(unknown, 3, "negative expired after NegativeTTL")
	step(known, 3, "positive still cached")
	clk.Add(time.Minute)
	step(known, 4, "positive expired after TTL")
	c.Invalidate(known.Identity)
	step(known, 5, "after Invalidate")
	c.Purge()
	step(known, 6, "after Purge")
}

func TestCacheKeys(t *testing.T) {
	t.Parallel()
	d := &zdfake.Dir{}
	d.AddUser(zdfake.User{ID: 1, Email: "jane@example.com", Phone: "+14155551212", UpdatedAt: t0})
	d.AddTicket(zdfake.Ticket{ID: 5, Status: "open", RequesterID: 1, UpdatedAt: t0})
	c := match.NewCache(newZendesk(t, d), match.CacheOptions{})
	ctx := context.Background()
	email := func(v string) cti.Query { return cti.Query{Identity: cti.Identity{Kind: cti.IdentifyEmail, Value: v}} }
	c.Match(ctx, email("Jane@Example.com"))
	c.Match(ctx, email("jane@example.com "))
	if n := d.Calls(); n != 1 {
		t.Errorf("email case variants made %d searches, want 1", n)
	}
	// With open tickets is another key, but also answers plain queries.
	withOpen := query("+14155551212")
	withOpen.WithOpenTickets = true
	res, _ := c.Match(ctx, withOpen)
	if len(res.Records) != 1 || len(res.Records[0].OpenTickets) != 1 {
		t.Fatalf("with open tickets: %+v", res)
	}
	calls := d.Calls()
	res, _ = c.Match(ctx, query("+14155551212"))
	if d.Calls() != calls {
		t.Error("a plain query after one with open tickets searched again")
	}
	if len(res.Records) != 1 || res.Records[0].OpenTickets != nil {
		t.Errorf("plain query answered from the open-tickets entry: %+v, want no open tickets", res)
	}
}

func TestCacheErrorsNotCached(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	m := cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
		if calls.Add(1) == 1 {
			return cti.Result{}, &cti.UpstreamError{Service: "zendesk", Status: 500}
		}
		return cti.Result{Records: []cti.Record{{Kind: cti.KindUser, ID: 1}}}, nil
	})
	c := match.NewCache(m, match.CacheOptions{})
	if _, err := c.Match(context.Background(), query("+14155551212")); err == nil {
		t.Fatal("first call: want the error")
	}
	res, err := c.Match(context.Background(), query("+14155551212"))
	if err != nil || len(res.Records) != 1 {
		t.Errorf("second call = %+v, %v: the error was cached", res, err)
	}
}

// A caller that gives up returns at once, and does not fail the callers
// waiting for the lookup it led.
func TestCacheCallerCancelDoesNotFailOthers(t *testing.T) {
	t.Parallel()
	d := &zdfake.Dir{Delay: 100 * time.Millisecond}
	d.AddUser(user(1, "+14155551212"))
	c := match.NewCache(newZendesk(t, d), match.CacheOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.Match(ctx, query("+14155551212"))
		first <- err
	}()
	for d.Calls() == 0 { // the first caller leads the lookup
		time.Sleep(time.Millisecond)
	}
	second := make(chan cti.Result, 1)
	go func() {
		res, _ := c.Match(context.Background(), query("+14155551212"))
		second <- res
	}()
	cancel()
	select {
	case err := <-first:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("canceled caller got %v", err)
		}
	case <-time.After(50 * time.Millisecond):
		t.Error("canceled caller still waiting for the shared lookup")
	}
	if res := <-second; len(res.Records) != 1 {
		t.Errorf("the other caller got %+v: the leader's cancellation leaked into its answer", res)
	}
	// The leader's lookup stopped with it; the other caller looked up again.
	if n := d.Calls(); n != 2 {
		t.Errorf("%d searches, want 2", n)
	}
}

func TestCacheBounded(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	m := cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
		calls.Add(1)
		return cti.Result{Records: []cti.Record{{Kind: cti.KindUser, ID: 1}}}, nil
	})
	c := match.NewCache(m, match.CacheOptions{MaxEntries: 100})
	for i := range 1000 {
		c.Match(context.Background(), query("+1415555"+string(rune('0'+i%10))+time.Duration(i).String()))
	}
	if calls.Load() != 1000 {
		t.Errorf("%d lookups for 1000 distinct keys", calls.Load())
	}
	if n := match.CacheLen(c); n > 100 || n < 50 {
		t.Errorf("cache holds %d entries, want at most MaxEntries 100 (and not emptied)", n)
	}
}

func TestCacheBypassEmptyKey(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	m := cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
		calls.Add(1)
		return cti.Result{}, nil
	})
	c := match.NewCache(m, match.CacheOptions{Key: func(cti.Query) string { return "" }})
	c.Match(context.Background(), query("+14155551212"))
	c.Match(context.Background(), query("+14155551212"))
	if calls.Load() != 2 {
		t.Errorf("empty key: %d lookups, want 2 (bypass)", calls.Load())
	}
}

// A lookup that panics does not leave its key waiting for it forever.
func TestCacheLookupPanicDoesNotWedgeTheKey(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	m := cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
		if calls.Add(1) == 1 {
			panic("matcher bug")
		}
		return cti.Result{Records: []cti.Record{{Kind: cti.KindUser, ID: 1}}}, nil
	})
	c := match.NewCache(m, match.CacheOptions{})
	func() {
		defer func() {
			if recover() == nil {
				t.Error("the panic did not reach the caller")
			}
		}()
		_, _ = c.Match(context.Background(), query("+14155551212"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := c.Match(ctx, query("+14155551212"))
	if err != nil || len(res.Records) != 1 {
		t.Fatalf("after a panicked lookup: %+v, %v", res, err)
	}
}

// An Invalidate while a lookup is in flight (the agent edited the customer
// meanwhile): the lookup's answer, which may predate the edit, is not
// cached, and a caller arriving after the Invalidate does not share it.
func TestCacheInvalidateDuringLookup(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	var (
		mu    sync.Mutex
		calls int
		name  = "Old Name"
	)
	next := cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
		mu.Lock()
		calls++
		n, first := name, calls == 1
		mu.Unlock()
		if first {
			close(started)
			<-release
		}
		return cti.Result{Records: []cti.Record{{Kind: cti.KindUser, ID: 1, Name: n}}}, nil
	})
	c := match.NewCache(next, match.CacheOptions{})
	ctx := context.Background()
	first := make(chan cti.Result)
	go func() { res, _ := c.Match(ctx, query("+14155551212")); first <- res }()
	<-started
	mu.Lock()
	name = "New Name"
	mu.Unlock()
	c.Invalidate(cti.Identity{Kind: cti.IdentifyPhone, Value: "+14155551212"})
	// While the old lookup is still held: a new caller looks up again
	// (sharing the old lookup, it would wait for it until its deadline).
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if res, err := c.Match(wctx, query("+14155551212")); err != nil || res.Records[0].Name != "New Name" {
		t.Errorf("caller after Invalidate, old lookup in flight: %+v, %v; want New Name", res.Records, err)
	}
	cancel()
	close(release)
	if res := <-first; res.Records[0].Name != "Old Name" {
		t.Errorf("the caller that started the old lookup got %q", res.Records[0].Name)
	}
	if res, _ := c.Match(ctx, query("+14155551212")); res.Records[0].Name != "New Name" {
		t.Errorf("after the old lookup ended: %q, want New Name (the old answer cached over the new)", res.Records[0].Name)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("%d lookups, want 2", calls)
	}
}
