package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"
)

// The machine probe measures how late this machine wakes a sleeping
// thread while the load runs: a separate process (this binary with
// -probe) sleeps 1 ms in a loop and records by how much each sleep
// overshot, until its standard input closes. A pop crosses several such
// wake-ups (websocket read, worker, HTTP client, loopback, server, and
// back), so the probe's tail is a floor under the pop latency's tail on
// this machine that no code in the process can go below.

// probeChild is the -probe mode: sleep, measure, print one line when
// stdin closes.
func probeChild() {
	stop := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stop)
	}()
	var over []time.Duration
	for {
		select {
		case <-stop:
			fmt.Println(probeSummary(over))
			return
		default:
		}
		t := time.Now()
		time.Sleep(time.Millisecond)
		over = append(over, time.Since(t)-time.Millisecond)
	}
}

func probeSummary(over []time.Duration) string {
	if len(over) == 0 {
		return "no samples"
	}
	slices.Sort(over)
	p := func(q float64) time.Duration { return rd(over[int(q*float64(len(over)-1))]) }
	n := 0
	for _, o := range over {
		if o > 5*time.Millisecond {
			n++
		}
	}
	return fmt.Sprintf("%d sleeps of 1ms overshot p50 %v, p99 %v, p99.9 %v, max %v; %d by more than 5ms",
		len(over), p(.5), p(.99), p(.999), rd(over[len(over)-1]), n)
}

// startProbe starts the machine probe; the returned func stops it and
// returns its summary (or why there is none).
func startProbe(ctx context.Context) func() string {
	exe, err := os.Executable()
	if err != nil {
		return func() string { return "probe not run: " + err.Error() }
	}
	cmd := exec.CommandContext(ctx, exe, "-probe")
	in, err := cmd.StdinPipe()
	if err != nil {
		return func() string { return "probe not run: " + err.Error() }
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return func() string { return "probe not run: " + err.Error() }
	}
	if err := cmd.Start(); err != nil {
		return func() string { return "probe not run: " + err.Error() }
	}
	return func() string {
		in.Close()
		line, _ := bufio.NewReader(out).ReadString('\n')
		_ = cmd.Wait()
		if line = strings.TrimSpace(line); line == "" {
			return "probe gave no answer"
		}
		return line
	}
}
