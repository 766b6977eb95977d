// Command soak checks the reference server's delivery guarantees under
// process crashes and load.
//
// It runs the Genesys Cloud and Zendesk emulators in this process, builds
// examples/server and runs it as a child in real mode (environment
// pointing at the emulators, a rules file covering every media, a state
// directory), plays conversations of every media (some transferred),
// SIGKILLs the server at random moments and restarts it on the same state
// directory, and at the end checks in the Zendesk emulator that every
// conversation leg was synced exactly once (its marker tag on one ticket,
// one sync comment per leg) and popped at most once, with nothing left in
// the outbox. It samples the server's memory and goroutines from /metrics.
//
//	go run ./examples/soak                                   300 conversations, 10 kills
//	go run ./examples/soak -conversations 1000 -inflight 1000 -agents 200 -hold 2m -kills 0   load
//
// It exits 1 when a guarantee was broken.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var o Options
	flag.IntVar(&o.Conversations, "conversations", 300, "conversations to play in all")
	flag.IntVar(&o.InFlight, "inflight", 20, "most conversations live at once")
	flag.IntVar(&o.Agents, "agents", 8, "agents (Genesys users mapped to Zendesk agents)")
	flag.IntVar(&o.Kills, "kills", 10, "SIGKILLs of the server (each followed by a restart on the same state)")
	flag.DurationVar(&o.Pace, "pace", 500*time.Millisecond, "time between the steps of one conversation")
	flag.DurationVar(&o.Hold, "hold", 0, "how long each conversation stays connected (default: -pace)")
	flag.Uint64Var(&o.Seed, "seed", 0, "random seed (0: random; printed in the report)")
	flag.StringVar(&o.Server, "server", "", "a built examples/server binary (default: go build it)")
	flag.StringVar(&o.Dir, "dir", "", "work directory: state, rules, server logs (default: a temporary one, kept on failure)")
	flag.DurationVar(&o.Settle, "settle", 0, "longest wait for the last syncs (default: from the sync rate limit)")
	flag.BoolVar(&o.Race, "race", false, "build the server with the race detector")
	flag.BoolVar(&o.Talk, "talk", false, "write voice syncs as Talk Partner Edition call records (CTI_TALK_APP_ID)")
	flag.BoolVar(&o.Recordings, "recordings", false, "copy voice recordings into Zendesk (CTI_RECORDING_UPLOAD), each checked to be attached exactly once")
	flag.IntVar(&o.ZendeskRate, "zendesk-rate", 1_000_000, "the Zendesk emulator's API limit, requests a minute (Enterprise: 700)")
	flag.StringVar(&o.LogLevel, "log-level", "info", "the server's log level (CTI_LOG_LEVEL), in DIR/server-NNN.log")
	flag.Parse()
	o.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	fmt.Print(rep)
	if !rep.OK() {
		os.Exit(1)
	}
}
