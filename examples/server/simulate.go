package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/config"
	"github.com/cxplay/ctikit/genesys"
	"github.com/cxplay/ctikit/match"
	"github.com/cxplay/ctikit/popup"
	"github.com/cxplay/ctikit/syncmap"
	"github.com/cxplay/ctikit/zendesk"
	"github.com/cxplay/ctikit/zendesk/zendesktest"
)

// readConversation reads a recorded conversation: notification frames
// ({"topicName": ..., "eventBody": {...}}) or bare conversation bodies (the
// eventBody, or GET /api/v2/conversations/{id}), as a JSON array or one
// JSON value per line, in the order they arrived.
func readConversation(r io.Reader, dec *genesys.Decoder) ([]*cti.Conversation, error) {
	data, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return nil, err
	}
	var raws []json.RawMessage
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		if err := json.Unmarshal(t, &raws); err != nil {
			return nil, fmt.Errorf("not a JSON array of frames: %w", err)
		}
	} else {
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			if l := bytes.TrimSpace(sc.Bytes()); len(l) > 0 {
				raws = append(raws, json.RawMessage(bytes.Clone(l)))
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	var out []*cti.Conversation
	at := time.Now()
	for i, raw := range raws {
		var frame struct {
			TopicName string          `json:"topicName"`
			EventBody json.RawMessage `json:"eventBody"`
		}
		body := []byte(raw)
		if json.Unmarshal(raw, &frame) == nil && len(frame.EventBody) > 0 {
			if !strings.HasSuffix(frame.TopicName, ".conversations") {
				continue // heartbeats and other topics
			}
			body = frame.EventBody
		}
		c, err := dec.Conversation(body, at.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no conversation frames found")
	}
	return out, nil
}

// runSimulate replays a conversation through the real engine and rules with
// a dry-run popper and sink: it prints what would be searched, popped,
// created and written, and touches no Zendesk. Customers are looked up in
// the demo's Zendesk emulator as a stand-in.
func runSimulate(ctx context.Context, path, cfgPath string, out io.Writer) error {
	var cfg *config.Config
	var err error
	if cfgPath != "" {
		cfg, err = config.Load(cfgPath)
	} else {
		cfg, err = config.Parse(demoRules)
	}
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	norm, err := match.NewNormalizer("US")
	if err != nil {
		return err
	}
	snaps, err := readConversation(f, &genesys.Decoder{Phone: norm.Normalize})
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}

	z := zendesktest.NewServer(zendesktest.WithoutRateLimits())
	defer z.Close()
	z.Seed(zendesktest.DemoSeed())
	zc, err := zendesk.New(zendesk.Config{URL: z.URL, Email: zendesktest.DefaultEmail, APIToken: zendesktest.DefaultAPIToken})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	say("simulating %d snapshot(s) of conversation %s against %d rule(s); Zendesk is not touched (customers are looked up in the demo data)", len(snaps), snaps[0].ID, len(cfg.Rules.Rules))

	zm, err := match.NewZendesk(zc.Searcher(), match.WithNormalizer(norm))
	if err != nil {
		return err
	}
	matcher := cti.MatcherFunc(func(ctx context.Context, q cti.Query) (cti.Result, error) {
		res, err := zm.Match(ctx, q)
		var found []string
		for _, r := range res.Records {
			found = append(found, r.Ref()+" "+r.Name)
		}
		say("  identify by %s %q: %d found %v", q.Identity.Kind, q.Identity.Value, len(res.Records), found)
		return res, err
	})
	var nextID int64 = 900000
	popper := cti.PopperFunc(func(_ context.Context, req cti.PopRequest) (cti.PopResult, error) {
		d := req.Decision
		switch d.Action {
		case cti.ActionShow:
			say("  would pop %s (%s) for agent %s", d.Record.Ref(), d.Record.Name, req.Leg.Name)
			return cti.PopResult{Shown: d.Record}, nil
		case cti.ActionCreate:
			var made []cti.Record
			if d.Create.User {
				nextID++
				made = append(made, cti.Record{Kind: cti.KindUser, ID: nextID, Name: "(new customer)"})
			}
			if d.Create.Ticket {
				nextID++
				made = append(made, cti.Record{Kind: cti.KindTicket, ID: nextID, Name: d.Create.Subject})
			}
			say("  would create %v (subject %q) and pop it for agent %s", refs(made), d.Create.Subject, req.Leg.Name)
			shown := made[len(made)-1]
			return cti.PopResult{Shown: &shown, Created: made}, nil
		}
		return cti.PopResult{}, nil
	})
	dir := cti.DirectoryFunc(func(_ context.Context, leg *cti.AgentLeg) (cti.Agent, error) {
		return cti.Agent{ID: 1, Email: leg.Email, Name: leg.Name}, nil
	})
	mapper, err := syncmap.NewMapper(&cfg.Rules, syncmap.WithFormat(cfg.Time.Format()))
	if err != nil {
		return err
	}
	synced := make(chan struct{}, 64)
	sink := cti.SinkFunc(func(ctx context.Context, job *cti.SyncJob) error {
		u, err := mapper.Map(ctx, job)
		if err != nil {
			return err
		}
		target := "the popped record's ticket"
		if r := cfg.Rules.Rule(job.Rule); r != nil {
			target = string(r.Sync.Ticket) + " ticket"
		}
		say("  sync %s (rule %s) would write to the %s:", job.Key, job.Rule, target)
		keys := make([]string, 0, len(u.Fields))
		for k := range u.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			say("    field %s = %v", k, u.Fields[k])
		}
		if len(u.Tags) > 0 {
			say("    tags %s", strings.Join(u.Tags, " "))
		}
		if u.Comment != "" {
			vis := "internal"
			if u.Public {
				vis = "public"
			}
			say("    %s comment:\n      %s", vis, strings.ReplaceAll(strings.TrimSpace(u.Comment), "\n", "\n      "))
		}
		synced <- struct{}{}
		return nil
	})
	src := cti.SourceFunc(func(ctx context.Context, h cti.Handler) error {
		for _, s := range snaps {
			if err := h.HandleConversation(ctx, s); err != nil {
				return err
			}
			time.Sleep(5 * time.Millisecond) // let each step be seen, as live
		}
		<-ctx.Done()
		return nil
	})
	eng, err := cti.NewEngine(src, &cfg.Rules, cti.WithMatcher(matcher), cti.WithStrategy(popup.Strategy{Subject: subjects(cfg)}),
		cti.WithPopper(popper), cti.WithDirectory(dir), cti.WithSink(sink),
		cti.WithTiming(cti.Timing{Grace: 10 * time.Millisecond, WrapupTimeout: 50 * time.Millisecond}),
		cti.WithHooks(cti.Hooks{
			Event: func(e cti.Event) {
				rule := e.Rule
				if rule == "" {
					rule = "no rule applies"
				}
				say("%s: %s %s (%s, rule %s)", e.Leg.Name, e.Type, e.Conversation.Kind(), e.ConversationID, rule)
			},
			Choice: func(c cti.Choice) { say("  would ask %s to choose among %v", c.Leg.Name, refs(c.Candidates)) },
			Error:  func(n cti.ErrorNotice) { say("  %s failed: %v", n.Stage, n.Err) },
		}))
	if err != nil {
		return err
	}
	legs := 0
	for _, l := range snaps[len(snaps)-1].Agents {
		if cfg.Rules.Match(snaps[len(snaps)-1], &l) != nil {
			legs++
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	for range legs {
		select {
		case <-synced:
		case <-ctx.Done():
		}
	}
	time.Sleep(20 * time.Millisecond)
	cancel()
	return <-done
}

func refs(rs []cti.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Ref()
	}
	return out
}
