package cti

import (
	"encoding/binary"
	"errors"
	"maps"
	"slices"
	"time"
)

// A compact binary encoding of ConvRecord for MemoryStore: one allocation
// per stored conversation (a deep copy takes a dozen), and several times
// faster than JSON. It is private to the process (no versioning): the
// memory store never outlives it.

var errCodec = errors.New("cti: corrupted record encoding")

type enc struct{ b []byte }

func (e *enc) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string) {
	e.uint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *enc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *enc) time(t time.Time) {
	if t.IsZero() {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1, 0)
	at := len(e.b)
	b, err := t.AppendBinary(e.b)
	if err != nil { // a zone offset that is not whole minutes: keep the instant
		b, _ = t.UTC().AppendBinary(e.b)
	}
	e.b = b
	e.b[at-1] = byte(len(e.b) - at) // 15 or 16 bytes
}

func (e *enc) record(r *Record) {
	e.str(string(r.Kind))
	e.int(r.ID)
	e.str(r.Name)
	e.str(r.Email)
	e.str(r.Phone)
	e.str(r.ExternalID)
	e.str(r.Status)
	e.int(r.RequesterID)
	e.int(r.OrganizationID)
	e.time(r.UpdatedAt)
	e.str(r.URL)
	e.records(r.OpenTickets)
}

// records encodes nil and empty apart: 0 is nil, n+1 is n records.
func (e *enc) records(rs []Record) {
	if rs == nil {
		e.uint(0)
		return
	}
	e.uint(uint64(len(rs)) + 1)
	for i := range rs {
		e.record(&rs[i])
	}
}

func (e *enc) recordPtr(r *Record) {
	e.bool(r != nil)
	if r != nil {
		e.record(r)
	}
}

func (e *enc) convRecord(r *ConvRecord) {
	e.str(r.ID)
	if r.Legs == nil {
		e.uint(0)
	} else {
		e.uint(uint64(len(r.Legs)) + 1)
		for _, k := range slices.Sorted(maps.Keys(r.Legs)) {
			e.str(k)
			l := r.Legs[k]
			e.bool(l != nil)
			if l == nil {
				continue
			}
			e.uint(uint64(l.Phase))
			e.str(l.Rule)
			e.bool(l.Matched)
			e.str(l.UserID)
			e.bool(l.Agent != nil)
			if a := l.Agent; a != nil {
				e.int(a.ID)
				e.str(a.Email)
				e.str(a.Name)
			}
			e.int(int64(l.PopTries))
			e.bool(l.PopDone)
			e.recordPtr(l.Popped)
			e.bool(l.Choosing)
			e.records(l.Candidates)
			e.time(l.DisconnectedAt)
			e.bool(l.Queued)
		}
	}
	e.recordPtr(r.Resolved)
	e.records(r.Created)
	e.bool(r.Identified)
	id := &r.Identity
	e.str(string(id.Kind))
	e.str(id.Value)
	e.str(string(id.Channel))
	e.str(id.Attribute)
	e.str(id.Target)
	e.records(r.Candidates)
	e.bool(r.More)
	e.bool(r.Done)
	e.time(r.UpdatedAt)
}

// encodeRecord returns r encoded, in an exactly sized allocation.
func encodeRecord(r *ConvRecord) []byte {
	var buf [1024]byte
	return slices.Clone(appendRecord(buf[:0], r))
}

// appendRecord appends r's encoding to b.
func appendRecord(b []byte, r *ConvRecord) []byte {
	e := enc{b: b}
	e.convRecord(r)
	return e.b
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() {
	d.err = errCodec
	d.b = nil
}

func (d *dec) uint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) int() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *dec) bool() bool {
	if len(d.b) == 0 {
		d.fail()
		return false
	}
	v := d.b[0] != 0
	d.b = d.b[1:]
	return v
}

func (d *dec) time() time.Time {
	if !d.bool() {
		return time.Time{}
	}
	if len(d.b) == 0 || int(d.b[0]) >= len(d.b) {
		d.fail()
		return time.Time{}
	}
	n := int(d.b[0])
	var t time.Time
	if err := t.UnmarshalBinary(d.b[1 : 1+n]); err != nil {
		d.fail()
	}
	d.b = d.b[1+n:]
	return t
}

func (d *dec) record(r *Record) {
	r.Kind = RecordKind(d.str())
	r.ID = d.int()
	r.Name = d.str()
	r.Email = d.str()
	r.Phone = d.str()
	r.ExternalID = d.str()
	r.Status = d.str()
	r.RequesterID = d.int()
	r.OrganizationID = d.int()
	r.UpdatedAt = d.time()
	r.URL = d.str()
	r.OpenTickets = d.records()
}

func (d *dec) records() []Record {
	n := d.uint()
	if n == 0 || d.err != nil {
		return nil
	}
	if n-1 > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	rs := make([]Record, n-1)
	for i := range rs {
		d.record(&rs[i])
	}
	return rs
}

func (d *dec) recordPtr() *Record {
	if !d.bool() {
		return nil
	}
	r := new(Record)
	d.record(r)
	return r
}

func (d *dec) convRecord(r *ConvRecord) {
	r.ID = d.str()
	if n := d.uint(); n > 0 && d.err == nil {
		if n-1 > uint64(len(d.b)) {
			d.fail()
			return
		}
		r.Legs = make(map[string]*LegRecord, n-1)
		for range n - 1 {
			k := d.str()
			if !d.bool() {
				r.Legs[k] = nil
				continue
			}
			l := new(LegRecord)
			l.Phase = Phase(d.uint())
			l.Rule = d.str()
			l.Matched = d.bool()
			l.UserID = d.str()
			if d.bool() {
				l.Agent = &Agent{ID: d.int(), Email: d.str(), Name: d.str()}
			}
			l.PopTries = int(d.int())
			l.PopDone = d.bool()
			l.Popped = d.recordPtr()
			l.Choosing = d.bool()
			l.Candidates = d.records()
			l.DisconnectedAt = d.time()
			l.Queued = d.bool()
			r.Legs[k] = l
		}
	}
	r.Resolved = d.recordPtr()
	r.Created = d.records()
	r.Identified = d.bool()
	id := &r.Identity
	id.Kind = IdentityKind(d.str())
	id.Value = d.str()
	id.Channel = Channel(d.str())
	id.Attribute = d.str()
	id.Target = d.str()
	r.Candidates = d.records()
	r.More = d.bool()
	r.Done = d.bool()
	r.UpdatedAt = d.time()
}

// decodeRecord decodes what encodeRecord encoded.
func decodeRecord(b []byte) (*ConvRecord, error) {
	d := dec{b: b}
	r := new(ConvRecord)
	d.convRecord(r)
	if d.err == nil && len(d.b) != 0 {
		d.fail()
	}
	if d.err != nil {
		return nil, d.err
	}
	return r, nil
}
