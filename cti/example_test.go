package cti_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
)

// An engine wired with in-memory collaborators: a call from a known number
// pops the customer for the agent, and after the wrap-up the agent's segment
// is synced once.
func ExampleEngine() {
	rules := &cti.Rules{
		Subscribe: cti.Subscribe{Queues: []string{"q-support"}},
		Rules: []cti.Rule{{
			Name:     "support",
			When:     cti.When{Media: []string{"voice"}},
			Identify: []cti.IdentifySpec{{Kind: cti.IdentifyPhone}},
			Popup:    cti.PopupUser,
		}},
	}
	crm := cti.MatcherFunc(func(_ context.Context, q cti.Query) (cti.Result, error) {
		if q.Identity.Value == "+14155550100" {
			return cti.Result{Records: []cti.Record{{Kind: cti.KindUser, ID: 42, Name: "Alice"}}}, nil
		}
		return cti.Result{}, nil
	})
	pick := cti.StrategyFunc(func(in cti.DecideInput) cti.Decision {
		if len(in.Result.Records) == 1 {
			return cti.Decision{Action: cti.ActionShow, Record: &in.Result.Records[0]}
		}
		return cti.Decision{Action: cti.ActionNone}
	})
	popped := make(chan struct{})
	screen := cti.PopperFunc(func(_ context.Context, req cti.PopRequest) (cti.PopResult, error) {
		fmt.Printf("pop %s for agent %d\n", req.Decision.Record.Name, req.Agent.ID)
		close(popped)
		return cti.PopResult{Shown: req.Decision.Record}, nil
	})
	agents := cti.DirectoryFunc(func(_ context.Context, leg *cti.AgentLeg) (cti.Agent, error) {
		return cti.Agent{ID: 7, Email: leg.Email}, nil
	})
	synced := make(chan struct{})
	zendesk := cti.SinkFunc(func(_ context.Context, job *cti.SyncJob) error {
		w := job.Conversation.Leg(job.LegID).Wrapup
		fmt.Printf("sync %s to %s: wrap-up %s\n", job.Key, job.Popped.Ref(), w.Code)
		close(synced)
		return nil
	})

	src := ctitest.NewSource()
	eng, err := cti.NewEngine(src, rules, cti.WithMatcher(crm), cti.WithStrategy(pick),
		cti.WithPopper(screen), cti.WithDirectory(agents), cti.WithSink(zendesk))
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- eng.Run(ctx) }()

	call := ctitest.NewConversation("conv-1", cti.MediaVoice).Phone("+14155550100")
	_ = src.Send(ctx, call.Alert("leg-1", "genesys-user-1"))
	<-popped // (snapshots that arrive together coalesce: a call already over is not popped)
	_ = src.Send(ctx, call.Connect("leg-1"), call.Hangup("leg-1"), call.Wrapup("leg-1", "sale", ""))
	select {
	case <-synced:
	case <-time.After(10 * time.Second):
	}
	cancel()
	fmt.Println("stopped:", <-done)
	// Output:
	// pop Alice for agent 7
	// sync conv-1/leg-1 to user/42: wrap-up sale
	// stopped: <nil>
}

// A Matcher is one method; MatcherFunc adapts a function, and wrapping one
// matcher in another adds behaviour such as normalization or caching.
func ExampleMatcherFunc() {
	byEmail := map[string]cti.Record{"alice@example.com": {Kind: cti.KindUser, ID: 42, Name: "Alice"}}
	var m cti.Matcher = cti.MatcherFunc(func(_ context.Context, q cti.Query) (cti.Result, error) {
		if r, ok := byEmail[q.Identity.Value]; ok {
			return cti.Result{Records: []cti.Record{r}}, nil
		}
		return cti.Result{}, nil
	})
	caseless := func(next cti.Matcher) cti.Matcher {
		return cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
			if q.Identity.Kind == cti.IdentifyEmail {
				q.Identity.Value = strings.ToLower(q.Identity.Value)
			}
			return next.Match(ctx, q)
		})
	}
	res, _ := caseless(m).Match(context.Background(), cti.Query{Identity: cti.Identity{Kind: cti.IdentifyEmail, Value: "Alice@Example.com"}})
	fmt.Println(len(res.Records), res.Records[0].Ref())
	// Output: 1 user/42
}
