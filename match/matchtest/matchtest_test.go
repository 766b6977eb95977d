package matchtest_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/match/internal/zdfake"
	"github.com/cxplay/ctikit/match/matchtest"
)

func dirWith(users []matchtest.User) *zdfake.Dir {
	d := &zdfake.Dir{}
	for _, u := range users {
		d.AddUser(zdfake.User{ID: u.ID, Name: u.Name, Email: u.Email, Phone: u.Phone, ExternalID: u.ExternalID, UpdatedAt: u.UpdatedAt})
		for _, t := range u.Tickets {
			d.AddTicket(zdfake.Ticket{ID: t.ID, Subject: t.Subject, Status: t.Status, RequesterID: u.ID, UpdatedAt: t.UpdatedAt})
		}
	}
	return d
}

// breakages turn a good matcher into one that breaks one rule.
var breakages = map[string]func(cti.Matcher) cti.Matcher{
	"unsorted": func(m cti.Matcher) cti.Matcher {
		return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
			res, err := m.Match(ctx, q)
			slices.Reverse(res.Records)
			return res, err
		})
	},
	"nomore": func(m cti.Matcher) cti.Matcher {
		return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
			res, err := m.Match(ctx, q)
			res.More = false
			return res, err
		})
	},
	"casesensitive": func(m cti.Matcher) cti.Matcher {
		return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
			if q.Identity.Kind == cti.IdentifyEmail && q.Identity.Value != strings.ToLower(q.Identity.Value) {
				return cti.Result{}, nil
			}
			return m.Match(ctx, q)
		})
	},
	"ignorectx": func(m cti.Matcher) cti.Matcher {
		return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
			return m.Match(context.Background(), q)
		})
	},
	"shared": func(m cti.Matcher) cti.Matcher {
		var mu sync.Mutex
		memo := map[string]cti.Result{}
		return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
			mu.Lock()
			defer mu.Unlock()
			if r, ok := memo[match.CacheKey(q)]; ok {
				return r, nil
			}
			r, err := m.Match(ctx, q)
			if err == nil {
				memo[match.CacheKey(q)] = r
			}
			return r, err
		})
	},
	"noopen": func(m cti.Matcher) cti.Matcher {
		return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
			res, err := m.Match(ctx, q)
			for i := range res.Records {
				res.Records[i].OpenTickets = nil
			}
			return res, err
		})
	},
	"uncapped": func(m cti.Matcher) cti.Matcher {
		return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
			res, err := m.Match(ctx, q)
			if len(res.Records) == cti.MaxResults {
				res.Records = append(res.Records, res.Records[0])
			}
			return res, err
		})
	},
}

// TestBroken runs the suite against a broken matcher when asked to by
// TestSuiteCatchesBreakage; on its own it does nothing.
func TestBroken(t *testing.T) {
	b := breakages[os.Getenv("MATCHTEST_BROKEN")]
	if b == nil {
		t.Skip("run by TestSuiteCatchesBreakage")
	}
	matchtest.TestMatcher(t, func(t *testing.T, users []matchtest.User) cti.Matcher {
		z, err := match.NewZendesk(dirWith(users))
		if err != nil {
			t.Fatal(err)
		}
		return b(z)
	})
}

func TestSuiteCatchesBreakage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite in subprocesses")
	}
	want := map[string]string{
		"unsorted":      "TestBroken/Order",
		"nomore":        "TestBroken/Cap",
		"casesensitive": "TestBroken/EmailCaseInsensitive",
		"ignorectx":     "TestBroken/ContextDone",
		"shared":        "TestBroken/OwnCopies",
		"noopen":        "TestBroken/OpenTickets",
		"uncapped":      "TestBroken/Cap",
	}
	for name, sub := range want {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestBroken$", "-test.v")
			cmd.Env = append(os.Environ(), "MATCHTEST_BROKEN="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed a matcher broken by %q", name)
			}
			if !strings.Contains(string(out), "--- FAIL: "+sub+" ") {
				t.Errorf("breakage %q: want %s to fail; output:\n%s", name, sub, out)
			}
		})
	}
}

func TestGoodMatcherPasses(t *testing.T) {
	matchtest.TestMatcher(t, func(t *testing.T, users []matchtest.User) cti.Matcher {
		z, err := match.NewZendesk(dirWith(users))
		if err != nil {
			t.Fatal(err)
		}
		return z
	})
}
