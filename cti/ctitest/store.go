package ctitest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
)

// TestStore checks that a cti.Store keeps its contract: state round-trips
// and is copied, OpenConversations and PruneConversations select by Done
// and age, the outbox replaces by key, returns due jobs oldest first with
// the next deadline, acks and buries, and everything is safe for
// concurrent use. newStore returns an empty store; it is called once per
// subtest.
func TestStore(t *testing.T, newStore func(t *testing.T) cti.Store) {
	t.Helper()
	ctx := context.Background()
	t0 := Start

	t.Run("StateRoundTrip", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.LoadConversation(ctx, "nope"); err == nil || !isNotFound(err) {
			t.Fatalf("Load(unknown) = %v, want ErrNotFound", err)
		}
		rec := &cti.ConvRecord{ID: "c1", UpdatedAt: t0, Legs: map[string]*cti.LegRecord{
			"l1": {Phase: cti.PhaseConnected, Rule: "r", Matched: true, PopDone: true,
				Popped: &cti.Record{Kind: cti.KindUser, ID: 5, OpenTickets: []cti.Record{{Kind: cti.KindTicket, ID: 9}}},
				Agent:  &cti.Agent{ID: 7}, DisconnectedAt: t0},
		}, Resolved: &cti.Record{Kind: cti.KindUser, ID: 5}, Identified: true,
			Identity: cti.Identity{Kind: cti.IdentifyPhone, Value: "+14155550100"}}
		must(t, s.SaveConversation(ctx, rec))
		rec.Legs["l1"].Phase = cti.PhaseDone // the store must have copied
		rec.Legs["l1"].Popped.ID = 6
		got, err := s.LoadConversation(ctx, "c1")
		must(t, err)
		l := got.Legs["l1"]
		if l == nil || l.Phase != cti.PhaseConnected || l.Popped.ID != 5 || l.Agent.ID != 7 || len(l.Popped.OpenTickets) != 1 {
			t.Fatalf("Load = %+v, want the record as saved", l)
		}
		if !l.DisconnectedAt.Equal(t0) || !got.Identified || got.Identity.Value != "+14155550100" || got.Resolved.ID != 5 {
			t.Fatalf("Load lost fields: %+v", got)
		}
	})

	t.Run("Alive", func(t *testing.T) {
		a, ok := newStore(t).(cti.AliveStore)
		if !ok {
			t.Skip("not a cti.AliveStore")
		}
		got, err := a.LastAlive(ctx)
		must(t, err)
		if !got.IsZero() {
			t.Fatalf("LastAlive of a new store = %v, want zero", got)
		}
		for _, at := range []time.Time{t0, t0.Add(30 * time.Second)} {
			must(t, a.MarkAlive(ctx, at))
			got, err := a.LastAlive(ctx)
			must(t, err)
			if !got.Equal(at) {
				t.Fatalf("LastAlive = %v, want %v", got, at)
			}
		}
	})

	t.Run("OpenAndPrune", func(t *testing.T) {
		s := newStore(t)
		must(t, s.SaveConversation(ctx, &cti.ConvRecord{ID: "open", UpdatedAt: t0}))
		must(t, s.SaveConversation(ctx, &cti.ConvRecord{ID: "old", Done: true, UpdatedAt: t0}))
		must(t, s.SaveConversation(ctx, &cti.ConvRecord{ID: "recent", Done: true, UpdatedAt: t0.Add(time.Hour)}))
		ids, err := s.OpenConversations(ctx)
		must(t, err)
		if fmt.Sprint(ids) != "[open]" {
			t.Fatalf("OpenConversations = %v, want [open]", ids)
		}
		n, err := s.PruneConversations(ctx, t0.Add(time.Minute))
		must(t, err)
		if n != 1 {
			t.Fatalf("Prune deleted %d, want 1", n)
		}
		if _, err := s.LoadConversation(ctx, "old"); !isNotFound(err) {
			t.Fatalf("pruned record still there: %v", err)
		}
		for _, id := range []string{"open", "recent"} {
			if _, err := s.LoadConversation(ctx, id); err != nil {
				t.Fatalf("Load(%s) after prune: %v", id, err)
			}
		}
	})

	t.Run("SaveWithJobs", func(t *testing.T) {
		s := newStore(t)
		js, ok := s.(cti.JobSaver)
		if !ok {
			t.Skip("not a cti.JobSaver")
		}
		job := func(key string) *cti.SyncJob {
			return &cti.SyncJob{Key: key, ConversationID: "c1", LegID: key, Rule: "r", EnqueuedAt: t0,
				Conversation: &cti.Conversation{ID: "c1", Attributes: map[string]string{"a": key}}}
		}
		// A job that replaces one already pending, and a new one.
		old := job("l1")
		old.Attempts = 2
		must(t, s.Put(ctx, old))
		rec := &cti.ConvRecord{ID: "c1", UpdatedAt: t0, Done: true, Legs: map[string]*cti.LegRecord{
			"l1": {Phase: cti.PhaseDone, Queued: true}, "l2": {Phase: cti.PhaseDone, Queued: true}}}
		jobs := []*cti.SyncJob{job("l1"), job("l2")}
		must(t, js.SaveConversationWithJobs(ctx, rec, jobs))
		jobs[0].Conversation.Attributes["a"] = "changed" // the store must have copied
		rec.Legs["l2"].Queued = false
		got, err := s.LoadConversation(ctx, "c1")
		must(t, err)
		if !got.Done || got.Legs["l1"] == nil || !got.Legs["l2"].Queued {
			t.Fatalf("Load = %+v, want the record as saved", got)
		}
		due, _, err := s.Due(ctx, t0.Add(time.Minute), 10)
		must(t, err)
		if len(due) != 2 || due[0].Key == due[1].Key {
			t.Fatalf("Due = %v, want l1 and l2", keys(due))
		}
		for _, j := range due {
			if j.Attempts != 0 || j.Conversation == nil || j.Conversation.Attributes["a"] != j.Key {
				t.Fatalf("Due has %+v, want the job as saved (replacing the pending one)", j)
			}
		}
		// With no jobs it is a save.
		must(t, js.SaveConversationWithJobs(ctx, &cti.ConvRecord{ID: "c2", UpdatedAt: t0}, nil))
		if _, err := s.LoadConversation(ctx, "c2"); err != nil {
			t.Fatalf("Load(c2) = %v", err)
		}
	})

	t.Run("OutboxOrderAndDeadlines", func(t *testing.T) {
		s := newStore(t)
		job := func(key string, enq, next time.Time) *cti.SyncJob {
			return &cti.SyncJob{Key: key, ConversationID: key, LegID: "l", Rule: "r", EnqueuedAt: enq, NextAttempt: next,
				Conversation: &cti.Conversation{ID: key, Attributes: map[string]string{"a": "b"}}}
		}
		must(t, s.Put(ctx, job("b", t0.Add(2*time.Second), time.Time{})))
		must(t, s.Put(ctx, job("a", t0.Add(time.Second), t0)))
		must(t, s.Put(ctx, job("later", t0, t0.Add(time.Hour))))
		due, next, err := s.Due(ctx, t0.Add(time.Minute), 10)
		must(t, err)
		if len(due) != 2 || due[0].Key != "a" || due[1].Key != "b" {
			t.Fatalf("Due = %v, want [a b] oldest first", keys(due))
		}
		if !next.Equal(t0.Add(time.Hour)) {
			t.Fatalf("next = %v, want %v", next, t0.Add(time.Hour))
		}
		if due[0].Conversation == nil || due[0].Conversation.Attributes["a"] != "b" {
			t.Fatalf("Due lost the conversation: %+v", due[0])
		}
		due, _, _ = s.Due(ctx, t0.Add(time.Minute), 1)
		if len(due) != 1 || due[0].Key != "a" {
			t.Fatalf("Due(limit 1) = %v", keys(due))
		}
		// Put replaces by key.
		j := job("a", t0.Add(time.Second), t0.Add(2*time.Hour))
		j.Attempts = 3
		j.Checkpoint = "call 7 ticket 9" // a sink's, kept for its next delivery
		must(t, s.Put(ctx, j))
		due, _, _ = s.Due(ctx, t0.Add(time.Minute), 10)
		if len(due) != 1 || due[0].Key != "b" {
			t.Fatalf("after rescheduling a: Due = %v, want [b]", keys(due))
		}
		due, _, _ = s.Due(ctx, t0.Add(3*time.Hour), 10)
		if len(due) != 3 {
			t.Fatalf("Due(later) = %v, want 3 jobs", keys(due))
		}
		for _, d := range due {
			if d.Key == "a" && (d.Attempts != 3 || d.Checkpoint != "call 7 ticket 9") {
				t.Fatalf("replaced job lost its attempts or checkpoint: %+v", d)
			}
		}
		must(t, s.Ack(ctx, "b"))
		must(t, s.Ack(ctx, "unknown"))
		must(t, s.Bury(ctx, due[0], "422 field rejected"))
		due, _, _ = s.Due(ctx, t0.Add(3*time.Hour), 10)
		if len(due) != 1 {
			t.Fatalf("after ack and bury: Due = %v, want 1 job", keys(due))
		}
		if in, ok := s.(cti.OutboxInspector); ok {
			st, err := in.Stats(ctx)
			must(t, err)
			if st != (cti.OutboxStats{Pending: 1, Dead: 1}) {
				t.Fatalf("Stats = %+v, want 1 pending, 1 dead", st)
			}
			dead, err := in.DeadLetters(ctx)
			must(t, err)
			if len(dead) != 1 || dead[0].LastError != "422 field rejected" {
				t.Fatalf("DeadLetters = %+v", dead)
			}
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				check := func(err error) {
					if err != nil {
						t.Error(err)
					}
				}
				for k := range 25 {
					id := fmt.Sprintf("c%d-%d", i, k)
					check(s.SaveConversation(ctx, &cti.ConvRecord{ID: id, UpdatedAt: t0}))
					check(s.Put(ctx, &cti.SyncJob{Key: id, ConversationID: id, EnqueuedAt: t0}))
					_, _, err := s.Due(ctx, t0, 5)
					check(err)
					check(s.Ack(ctx, id))
				}
			})
		}
		wg.Wait()
		ids, err := s.OpenConversations(ctx)
		must(t, err)
		if len(ids) != 200 {
			t.Fatalf("OpenConversations = %d ids, want 200", len(ids))
		}
		due, _, err := s.Due(ctx, t0, 0)
		must(t, err)
		if len(due) != 0 {
			t.Fatalf("Due after acking everything = %d jobs", len(due))
		}
	})
}

func isNotFound(err error) bool { return errors.Is(err, cti.ErrNotFound) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func keys(js []*cti.SyncJob) []string {
	var out []string
	for _, j := range js {
		out = append(out, j.Key)
	}
	return out
}
