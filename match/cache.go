package match

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/internal/flight"
)

// CacheOptions configures Cache. The zero value is valid: every field has
// a default.
type CacheOptions struct {
	// TTL is how long a result with records is reused. Default 1 minute;
	// negative: results with records are not cached. Keep it short when
	// rules pop the latest open ticket: a ticket solved meanwhile would
	// still be offered.
	TTL time.Duration
	// NegativeTTL is how long "no match" is reused. Default 10 seconds;
	// negative: not cached. Keep it short: a customer created by an agent
	// should be found on the next call (see popup.Dedupe for customers
	// ctikit created itself).
	NegativeTTL time.Duration
	// MaxEntries bounds the cache. Default 10,000.
	MaxEntries int
	// LookupTimeout bounds one lookup, which every caller asking the same
	// query meanwhile waits for (besides the leading caller's ctx).
	// Default 30 seconds.
	LookupTimeout time.Duration
	// Key returns the cache key of a query, "" to bypass the cache.
	// Default CacheKey.
	Key func(cti.Query) string
	// Now returns the current time. Default time.Now.
	Now func() time.Time
}

func (o *CacheOptions) defaults() {
	if o.TTL == 0 {
		o.TTL = time.Minute
	}
	if o.NegativeTTL == 0 {
		o.NegativeTTL = 10 * time.Second
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 10000
	}
	if o.LookupTimeout <= 0 {
		o.LookupTimeout = 30 * time.Second
	}
	if o.Key == nil {
		o.Key = CacheKey
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// CacheKey is the default cache key: Identity.Key() with the value trimmed
// (and lower-cased for emails), plus "|open" when the query asks for open
// tickets.
func CacheKey(q cti.Query) string {
	id := q.Identity
	id.Value = strings.TrimSpace(id.Value)
	if id.Value == "" {
		return ""
	}
	if id.Kind == cti.IdentifyEmail || (id.Kind == cti.IdentifyAttribute && id.Target == cti.TargetEmail) {
		id.Value = strings.ToLower(id.Value)
	}
	k := id.Key()
	if q.WithOpenTickets {
		k += "|open"
	}
	return k
}

// Cache returns a caching middleware; see NewCache.
func Cache(o CacheOptions) Middleware {
	return func(next cti.Matcher) cti.Matcher { return NewCache(next, o) }
}

// Cached is a caching cti.Matcher built by NewCache.
type Cached struct {
	next cti.Matcher
	o    CacheOptions

	mu sync.Mutex
	m  map[string]cacheEntry
	// gen counts Invalidate and Purge calls: a lookup started before one
	// is neither cached nor shared with callers that came after it.
	gen     uint64
	flights flight.Group[cti.Result] // lookups in progress, by generation and key

	calls   atomic.Int64 // cacheable calls
	lookups atomic.Int64 // calls to next
}

type cacheEntry struct {
	res     cti.Result
	expires time.Time
}

// NewCache returns a matcher that remembers next's results: results with
// records for TTL, empty results for NegativeTTL. Concurrent identical
// queries (same key) share one call to next: a burst of calls from one
// number makes one search. Errors are never cached. A query without open
// tickets is also answered from a cached result with them.
//
// The first caller of a key runs the lookup on its own goroutine (a
// lookup on a fresh goroutine grew its stack on every pop: ~50 µs on the
// pop's path); the others wait for it. Each caller gets its own copy of
// the records. A waiting caller whose ctx is done stops waiting at once
// (with ctx.Err()). When the leading caller's ctx is done (or next
// panics), its lookup stops, and the callers still waiting start another
// lookup. A lookup is bounded by LookupTimeout. The cache assumes next's
// result depends only on the key (by default the identity): a matcher
// that also reads Query.Conversation needs its own Key. Safe for
// concurrent use.
func NewCache(next cti.Matcher, o CacheOptions) *Cached {
	o.defaults()
	return &Cached{next: next, o: o, m: map[string]cacheEntry{}}
}

// Stats returns how many queries reached next (lookups) and how many
// cacheable calls did not start a lookup of their own (hits: answered from
// the cache, or by sharing another caller's lookup). Approximate while
// lookups are in flight.
func (c *Cached) Stats() (lookups, hits int64) {
	l := c.lookups.Load()
	return l, max(0, c.calls.Load()-l)
}

// Invalidate forgets what is cached for an identity (with and without open
// tickets), e.g. after an agent edited the customer. A lookup in flight
// when it is called may have read the customer before the edit: its
// result goes to the callers already waiting for it, is not cached, and
// later callers look up again.
func (c *Cached) Invalidate(id cti.Identity) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.m, c.o.Key(cti.Query{Identity: id}))
	delete(c.m, c.o.Key(cti.Query{Identity: id, WithOpenTickets: true}))
}

// Purge forgets everything.
func (c *Cached) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.m)
}

// testHookMiss, set by tests, runs between a cache miss and the lookup.
var testHookMiss func()

// Match implements cti.Matcher.
func (c *Cached) Match(ctx context.Context, q cti.Query) (cti.Result, error) {
	if err := ctx.Err(); err != nil {
		return cti.Result{}, err
	}
	key := c.o.Key(q)
	if key == "" {
		return c.next.Match(ctx, q)
	}
	c.calls.Add(1)
	res, ok, gen := c.get(key, q)
	if ok {
		return res, nil
	}
	if testHookMiss != nil {
		testHookMiss()
	}
	fkey := strconv.FormatUint(gen, 10) + "\x00" + key
	for {
		res, err := c.flights.Do(ctx, fkey, func() (cti.Result, error, bool) { return c.lookup(ctx, key, q, gen) })
		if errors.Is(err, flight.ErrAbandoned) {
			continue // the caller that looked up gave up: look up again
		}
		if err != nil {
			return cti.Result{}, err
		}
		return cloneResult(res, true), nil
	}
}

// lookup asks next for the callers of key; it abandons the lookup (for
// the callers waiting to look up again) when ctx is done.
func (c *Cached) lookup(ctx context.Context, key string, q cti.Query, gen uint64) (cti.Result, error, bool) {
	// A lookup that ended between this call's cache miss and now has
	// filled the cache: no second search.
	if res, ok, _ := c.get(key, q); ok {
		return res, nil, false
	}
	c.lookups.Add(1)
	lctx, cancel := context.WithTimeout(ctx, c.o.LookupTimeout)
	res, err := c.next.Match(lctx, q)
	cancel()
	if errors.Is(err, cti.ErrNoMatch) {
		res, err = cti.Result{}, nil
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return cti.Result{}, cerr, true
		}
		return cti.Result{}, err, false
	}
	c.put(key, res, gen)
	return res, nil, false
}

// get returns the cached result for key (or, for a query without open
// tickets, the one with them), and the cache's generation.
func (c *Cached) get(key string, q cti.Query) (res cti.Result, ok bool, gen uint64) {
	now := c.o.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[key]; ok && now.Before(e.expires) {
		return cloneResult(e.res, true), true, c.gen
	}
	if !q.WithOpenTickets {
		q.WithOpenTickets = true
		if k := c.o.Key(q); k != key {
			if e, ok := c.m[k]; ok && now.Before(e.expires) {
				return cloneResult(e.res, false), true, c.gen
			}
		}
	}
	return cti.Result{}, false, c.gen
}

// put caches res for key, unless the cache was invalidated or purged
// since generation gen, when the lookup that found res started.
func (c *Cached) put(key string, res cti.Result, gen uint64) {
	ttl := c.o.TTL
	if len(res.Records) == 0 {
		ttl = c.o.NegativeTTL
	}
	if ttl <= 0 {
		return
	}
	now := c.o.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return // what it found may predate the edit Invalidate was told of
	}
	if len(c.m) >= c.o.MaxEntries {
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		// Still full: drop about a tenth, in map (random) order.
		for k := range c.m {
			if len(c.m) < c.o.MaxEntries-c.o.MaxEntries/10 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = cacheEntry{res: cloneResult(res, true), expires: now.Add(ttl)}
}

// cloneResult deep-copies a result, with or without open tickets.
func cloneResult(r cti.Result, withOpen bool) cti.Result {
	if r.Records == nil {
		return cti.Result{More: r.More}
	}
	out := cti.Result{Records: make([]cti.Record, len(r.Records)), More: r.More}
	for i, rec := range r.Records {
		if withOpen && rec.OpenTickets != nil {
			rec.OpenTickets = append([]cti.Record(nil), rec.OpenTickets...)
		} else {
			rec.OpenTickets = nil
		}
		out.Records[i] = rec
	}
	return out
}
