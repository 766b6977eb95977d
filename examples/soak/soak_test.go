package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSoakShort is the short soak: the reference server, built and run as
// a child process in real mode against the emulators hosted by the test,
// SIGKILLed three times while 40 conversations of every media are played
// and synced, restarted each time on the same state directory. Every leg
// must be synced exactly once and popped at most once.
func TestSoakShort(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the soak builds and runs the server")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var log testLog
	log.t = t
	rep, err := Run(ctx, Options{
		Conversations: 40, InFlight: 10, Agents: 6, Kills: 3,
		Pace: 300 * time.Millisecond, Seed: seed(), Dir: dir, Settle: 90 * time.Second, Log: &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + rep.String())
	if !rep.OK() {
		t.Errorf("the soak broke a guarantee (seed %d); server logs in %s", rep.Seed, dir)
		keepLogs(t, dir)
	}
	if rep.Synced == 0 || rep.Kills != 3 {
		t.Errorf("synced %d legs with %d kills: the soak did not run", rep.Synced, rep.Kills)
	}
}

// seed reads CTI_SOAK_SEED to replay a run (0: random).
func seed() uint64 {
	var s uint64
	for _, c := range os.Getenv("CTI_SOAK_SEED") {
		if c < '0' || c > '9' {
			return 0
		}
		s = s*10 + uint64(c-'0')
	}
	return s
}

type testLog struct{ t *testing.T }

func (l *testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// keepLogs prints the tail of every server log of a failed run.
func keepLogs(t *testing.T, dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if len(e.Name()) > 7 && e.Name()[:7] == "server-" {
			b, _ := os.ReadFile(dir + "/" + e.Name())
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s (tail):\n%s", e.Name(), b)
		}
	}
}
