package zendesktest

import (
	"syscall"
	"time"
)

// preciseSleep blocks the calling thread for d in nanosleep(2): unlike
// time.Sleep it does not depend on the runtime's millisecond poller
// timeout.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil) // EINTR: the caller loops until its deadline
}
