package cti_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/cxplay/ctikit/cti"
	"github.com/cxplay/ctikit/cti/ctitest"
)

func TestMemoryStore(t *testing.T) {
	ctitest.TestStore(t, func(*testing.T) cti.Store { return cti.NewMemoryStore() })
}

// TestMemoryStoreReusesEncoding: a save overwriting the previous encoding
// in place (shorter, then longer) loads back what was saved last.
func TestMemoryStoreReusesEncoding(t *testing.T) {
	ctx := context.Background()
	s := cti.NewMemoryStore()
	long := &cti.ConvRecord{ID: "c1", Legs: map[string]*cti.LegRecord{"l1": {Phase: cti.PhaseConnected, Rule: "a rule with a long name", UserID: "u1"}},
		UpdatedAt: time.Unix(100, 0).UTC()}
	short := &cti.ConvRecord{ID: "c1", Legs: map[string]*cti.LegRecord{}, Done: true, UpdatedAt: time.Unix(200, 0).UTC()}
	for i, want := range []*cti.ConvRecord{long, short, long, short} {
		if err := s.SaveConversation(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadConversation(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("save %d: loaded %+v, want %+v", i, got, want)
		}
	}
	if n, _ := s.PruneConversations(ctx, time.Unix(200, 0)); n != 0 {
		t.Fatalf("pruned %d updated at the cutoff", n)
	}
	if n, _ := s.PruneConversations(ctx, time.Unix(201, 0)); n != 1 {
		t.Fatalf("pruned %d, want 1", n)
	}
}
