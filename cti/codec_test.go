package cti

import (
	"reflect"
	"testing"
	"time"
)

func fullRecord() *ConvRecord {
	at := time.Date(2026, 11, 24, 9, 0, 0, 123, time.UTC)
	rec := func(id int64) Record {
		return Record{Kind: KindUser, ID: id, Name: "n", Email: "e", Phone: "p", ExternalID: "x", Status: "open",
			RequesterID: 3, OrganizationID: -4, UpdatedAt: at, URL: "u",
			OpenTickets: []Record{{Kind: KindTicket, ID: id + 100, Status: "new", UpdatedAt: at.In(time.FixedZone("", 3600))}}}
	}
	r1, r2 := rec(1), rec(2)
	return &ConvRecord{
		ID: "c1",
		Legs: map[string]*LegRecord{
			"l1": {Phase: PhaseDisconnected, Rule: "all", Matched: true, UserID: "u1", Agent: &Agent{ID: 7, Email: "a@b", Name: "Al"},
				PopTries: 2, PopDone: true, Popped: &r1, Choosing: true, Candidates: []Record{r1, r2}, DisconnectedAt: at, Queued: true},
			"l2": {Candidates: []Record{}},
			"l3": nil,
		},
		Resolved: &r2, Created: []Record{r1}, Identified: true,
		Identity:   Identity{Kind: IdentifyAttribute, Value: "v", Channel: ChannelSMS, Attribute: "att", Target: "user_field.k"},
		Candidates: []Record{r2, r1}, More: true, Done: true, UpdatedAt: at,
	}
}

func TestRecordCodec(t *testing.T) {
	for _, r := range []*ConvRecord{fullRecord(), {ID: "c2"}, {}} {
		b := encodeRecord(r)
		got, err := decodeRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n%+v\nwant\n%+v", got, r)
		}
		for i := range b { // truncated: an error, never a panic
			if _, err := decodeRecord(b[:i]); err == nil {
				t.Errorf("%d of %d bytes decoded", i, len(b))
			}
		}
	}
}

// TestRecordCodecFields fails when a field is added to a type the codec
// encodes: encode and decode it, then update the counts.
func TestRecordCodecFields(t *testing.T) {
	for typ, n := range map[reflect.Type]int{
		reflect.TypeFor[ConvRecord](): 10, reflect.TypeFor[LegRecord](): 12, reflect.TypeFor[Record](): 12,
		reflect.TypeFor[Agent](): 3, reflect.TypeFor[Identity](): 5,
	} {
		if typ.NumField() != n {
			t.Errorf("%s has %d fields, the record codec knows %d", typ, typ.NumField(), n)
		}
	}
}
