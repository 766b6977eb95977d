//go:build !linux

package zendesktest

import "time"

// sleeper is time.Sleep where no timerfd is available (see sleep_linux.go).
type sleeper struct{}

func newSleeper() *sleeper { return &sleeper{} }

func (*sleeper) sleep(d time.Duration) { time.Sleep(d) }

func (*sleeper) close() {}
