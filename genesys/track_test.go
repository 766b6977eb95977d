package genesys

import (
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestTrackKeepsOneID: every snapshot of a tracked conversation is given
// the one kept copy of its id, which is also the tracking map's key.
func TestTrackKeepsOneID(t *testing.T) {
	s := &Source{tracked: map[string]tracking{}}
	now := time.Now()
	first := s.track(strings.Clone("b3c0e7a2-0000-4000-8000-000000000001"), now)
	again := s.track(strings.Clone("b3c0e7a2-0000-4000-8000-000000000001"), now.Add(time.Second))
	if unsafe.StringData(first) != unsafe.StringData(again) {
		t.Fatal("a later snapshot got another copy of the id")
	}
	for k, v := range s.tracked {
		if unsafe.StringData(k) != unsafe.StringData(first) || v.id != first {
			t.Fatal("the tracking map's key is not the kept id")
		}
		if v.seen != now.Add(time.Second).UnixNano() {
			t.Fatalf("seen = %d, want the last one", v.seen)
		}
	}
	other := s.track("b3c0e7a2-0000-4000-8000-000000000002", now)
	if other != "b3c0e7a2-0000-4000-8000-000000000002" || first != "b3c0e7a2-0000-4000-8000-000000000001" {
		t.Fatalf("ids %q %q", first, other)
	}
	if len(s.tracked) != 2 {
		t.Fatalf("tracked %d", len(s.tracked))
	}
}

func TestIDSlab(t *testing.T) {
	var b idSlab
	var ids []string
	for i := range 100 {
		ids = append(ids, b.copy(strings.Repeat(string(rune('a'+i%26)), 1+i%40)))
	}
	for i, id := range ids {
		if want := strings.Repeat(string(rune('a'+i%26)), 1+i%40); id != want {
			t.Fatalf("id %d = %q, want %q", i, id, want)
		}
	}
	if long := strings.Repeat("x", 500); b.copy(long) != long {
		t.Fatal("long id")
	}
	if b.copy("") != "" {
		t.Fatal("empty id")
	}
}
