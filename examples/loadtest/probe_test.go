package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestReadProbeAndClassify(t *testing.T) {
	base := time.Unix(1_800_000_000, 0)
	at := func(ms int) int64 { return base.Add(time.Duration(ms) * time.Millisecond).UnixNano() }
	ms := int64(time.Millisecond)
	out := strings.Join([]string{
		"a thread pinned to each of 2 CPUs, 3 sleeps",
		// cpu from to rq: a stall of 5 ms, 4 of them behind the machine's own threads
		"1 " + itoa(at(100)) + " " + itoa(at(105)) + " " + itoa(4*ms),
		// a stall of 3 ms outside the machine's load
		"0 " + itoa(at(50)) + " " + itoa(at(53)) + " 0",
		"",
	}, "\n")
	p, err := readProbe(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if !p.ran || !strings.HasPrefix(p.summary, "a thread pinned") || len(p.stalls) != 2 {
		t.Fatalf("read %+v", p)
	}
	if !p.stalls[0].from.Equal(base.Add(50 * time.Millisecond)) {
		t.Fatalf("stalls not in time order: %+v", p.stalls)
	}
	w := func(from, to int) (time.Time, time.Time) {
		return base.Add(time.Duration(from) * time.Millisecond), base.Add(time.Duration(to) * time.Millisecond)
	}
	for _, c := range []struct {
		from, to int
		want     probeSeen
	}{
		{0, 40, seenQuiet},
		{40, 51, seenStalled},  // overlaps the outside stall's start
		{52, 60, seenStalled},  // inside it
		{54, 99, seenQuiet},    // between the two
		{104, 130, seenBusy},   // the run-queue stall: 1 ms outside, 4 behind the load
		{40, 130, seenStalled}, // both: the outside stall wins
	} {
		from, to := w(c.from, c.to)
		if got := p.during(from, to); got != c.want {
			t.Errorf("[%d, %d] ms: %v, want %v", c.from, c.to, got, c.want)
		}
	}
	for _, bad := range []string{"", "summary\n1 2 3\n", "summary\n1 2 x 4\n"} {
		if _, err := readProbe(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
