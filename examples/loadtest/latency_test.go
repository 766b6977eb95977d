package main

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLatencyPhaseBothClients runs a small figure 2 with each client
// (-client ctikit and bare), the emulators in this process: every
// strategy's measured calls are popped and attributed — their display
// request found among the emulator's — so that the two tables compare the
// same requests.
func TestLatencyPhaseBothClients(t *testing.T) {
	row := regexp.MustCompile(`(?m)^\s*(user|ticket:latest_open|ticket:new|nomatch create)\s+(\d+)\s`)
	for _, client := range []string{"ctikit", "bare"} {
		t.Run(client, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			r := &runner{c: config{latency: 2 * time.Millisecond, genesysLatency: 2 * time.Millisecond, agents: 8,
				inflight: 16, hold: 1500 * time.Millisecond, ivr: 30 * time.Millisecond, store: "memory",
				batchWait: 50 * time.Millisecond, emulators: "inproc", client: client, split: true},
				out: &out, log: slog.New(slog.DiscardHandler), dir: t.TempDir()}
			require.NoError(t, r.latency(ctx))
			t.Log("\n" + out.String())
			rows := row.FindAllStringSubmatch(out.String(), -1)
			require.Len(t, rows, 4, "one row per strategy")
			for _, m := range rows {
				n, err := strconv.Atoi(m[2])
				require.NoError(t, err)
				require.Positive(t, n, "%s: measured pops", m[1])
			}
			require.NotContains(t, out.String(), "without a display")
		})
	}
	t.Run("flags", func(t *testing.T) {
		require.NoError(t, config{client: "ctikit", early: true}.check())
		require.ErrorContains(t, config{client: "bare", early: true}.check(), "-early")
		require.ErrorContains(t, config{client: "other"}.check(), `-client "other"`)
	})
	t.Run("unknown", func(t *testing.T) {
		r := &runner{c: config{agents: 2, emulators: "inproc", client: "other"}, out: &bytes.Buffer{}, log: slog.New(slog.DiscardHandler), dir: t.TempDir()}
		require.ErrorContains(t, r.latency(context.Background()), `-client "other"`)
	})
}
