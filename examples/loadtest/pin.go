package main

import (
	"fmt"
	"strconv"
	"strings"
)

// CPU pinning (-cpus, -emulators-cpus): on a machine with cores to spare,
// ctikit's process and the emulators' can be kept off each other's CPUs,
// so that figure 2 shows ctikit's tail rather than the two processes'
// contention. The machine probe always watches every CPU the load tool
// started with.

// parseCPUs parses a CPU list as taskset -c takes it: "1", "0-3",
// "0,2-3".
func parseCPUs(s string) ([]int, error) {
	var cpus []int
	seen := map[int]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(hi)
		}
		if err != nil || a < 0 || b < a || b >= maxCPU {
			return nil, fmt.Errorf("CPU list %q: %q is not a CPU number or range (0–%d)", s, part, maxCPU-1)
		}
		for c := a; c <= b; c++ {
			if !seen[c] {
				seen[c] = true
				cpus = append(cpus, c)
			}
		}
	}
	return cpus, nil
}

// maxCPU bounds the CPU numbers a list may name.
const maxCPU = 1024

// formatCPUs is the list of cpus as parseCPUs reads it.
func formatCPUs(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}
