package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// probeCPUs are the CPUs this process may run on.
func probeCPUs() []int {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return []int{0}
	}
	var cpus []int
	for c := range 1024 {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return []int{0}
	}
	return cpus
}

// pinThread pins the calling (locked) thread to cpu, drops its timer
// slack to 1 ns (the default 50 µs would count as lateness), and returns
// a func reading the thread's run-queue wait so far. On an error the
// thread is left unpinned and the func returns 0.
func pinThread(cpu int) (func() time.Duration, error) {
	zero := func() time.Duration { return 0 }
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return zero, fmt.Errorf("pin to CPU %d: %w", cpu, err)
	}
	f, err := os.Open("/proc/thread-self/schedstat")
	if err != nil {
		return zero, nil // pinned; no run-queue figure
	}
	// The file stays open as long as the thread, which ends with the
	// probe process.
	buf := make([]byte, 128)
	return func() time.Duration {
		n, err := f.ReadAt(buf, 0)
		if n == 0 && err != nil {
			return 0
		}
		// "<on-CPU ns> <run-queue wait ns> <timeslices>"
		fields := bytes.Fields(buf[:n])
		if len(fields) < 2 {
			return 0
		}
		v, _ := strconv.ParseInt(string(fields[1]), 10, 64)
		return time.Duration(v)
	}, nil
}

// sleepThread sleeps the calling thread in the kernel (not the Go
// scheduler: the probe measures the machine's wake-ups, not the
// runtime's).
func sleepThread(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	for unix.Nanosleep(&ts, &ts) == unix.EINTR {
	}
}

// pinProcess restricts every thread of this process to cpus; threads
// started afterwards inherit the mask of the thread that starts them, so
// the whole process stays there.
func pinProcess(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	// A thread started by one not pinned yet escapes a pass: pass again
	// until a pass finds no thread it has not pinned.
	pinned := map[int]bool{}
	for {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("pin to CPUs %s: %w", formatCPUs(cpus), err)
		}
		fresh := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || pinned[tid] {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin to CPUs %s: %w", formatCPUs(cpus), err)
			}
			pinned[tid], fresh = true, true
		}
		if !fresh {
			return nil
		}
	}
}
