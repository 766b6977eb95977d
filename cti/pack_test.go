package cti

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// full is a conversation with every string field set, each its own
// allocation.
func full() *Conversation {
	s := func(v string) string { return strings.Clone(v) }
	at := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	return &Conversation{
		ID: s("c1"), Media: Media(s("message")), Channel: Channel(s("sms")), Direction: Direction(s("inbound")),
		Queue: Ref{s("q1"), s("Support")}, Campaign: Ref{s("k1"), s("Spring")},
		Customer: Customer{Address: s("+1415"), Phone: s("+1415"), Email: s("a@b"), Handle: s("h"), Name: s("Ann")},
		Agents: []AgentLeg{{ID: s("l1"), UserID: s("u1"), Name: s("Bob"), Email: s("b@c"), Queue: Ref{s("q1"), s("Support")},
			State: LegState(s("disconnected")), DisconnectType: s("transfer"), AlertTime: at,
			Wrapup: &Wrapup{Code: s("w"), Name: s("Resolved"), Category: s("cat"), Notes: s("n"), Tags: []string{s("t1"), s("t2")}},
			ACW:    ACWState(s("complete"))}},
		Attributes: map[string]string{s("k1"): s("v1"), s("k2"): s("v2")},
		StartTime:  at,
		Transfers:  []Transfer{{At: at, FromUser: Ref{s("u1"), s("Bob")}, ToQueue: Ref{s("q2"), s("Sales")}, ToUser: Ref{s("u2"), ""}}},
		Links:      Links{s("r"), s("i")},
		Content:    Content{s("es"), s("eb"), s("et"), s("rs"), s("rb"), s("rt"), s("tr"), s("su"), s("ss")},
	}
}

func TestPack(t *testing.T) {
	c := full()
	want := c.Clone()
	arena := c.pack("")
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("pack changed the conversation:\n%+v\nwant\n%+v", c, want)
	}
	c.eachString(func(s *string) {
		if !inArena(*s, arena) {
			t.Errorf("%q not in the arena", *s)
		}
	})
	for k, v := range c.Attributes {
		if !inArena(k, arena) || !inArena(v, arena) {
			t.Errorf("attribute %q=%q not in the arena", k, v)
		}
	}
	if c.Media != MediaMessage || inArena(string(c.Media), arena) {
		t.Errorf("media %q not interned", c.Media)
	}
	if a := c.pack(arena); a != arena || unsafeSame(a, arena) == false {
		t.Error("a packed conversation was packed again")
	}

	// A merge of an equal snapshot keeps the packed strings.
	c.Merge(full())
	if a := c.pack(arena); !unsafeSame(a, arena) {
		t.Error("merging an equal snapshot moved the strings")
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("merge changed the conversation:\n%+v\nwant\n%+v", c, want)
	}
	// A new value is packed into a new arena.
	o := full()
	o.Customer.Name = "Anna"
	c.Merge(o)
	if a := c.pack(arena); unsafeSame(a, arena) || c.Customer.Name != "Anna" || !inArena(c.Customer.Name, a) {
		t.Error("a new value was not packed")
	}
}

func unsafeSame(a, b string) bool { return len(a) == len(b) && inArena(a, b) }

func TestPackEmpty(t *testing.T) {
	c := &Conversation{Media: MediaVoice}
	if a := c.pack(""); a != "" {
		t.Errorf("arena %q for an empty conversation", a)
	}
}
