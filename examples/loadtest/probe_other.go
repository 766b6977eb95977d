//go:build !linux

package main

import (
	"errors"
	"time"
)

func probeCPUs() []int { return []int{0} }

func pinThread(int) (func() time.Duration, error) {
	return func() time.Duration { return 0 }, errors.New("pinning threads is not supported on this OS")
}

func sleepThread(d time.Duration) { time.Sleep(d) }

func pinProcess([]int) error {
	return errors.New("pinning a process to CPUs is not supported on this OS")
}
