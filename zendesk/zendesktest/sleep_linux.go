package zendesktest

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// sleeper waits for short durations precisely without holding a P.
//
// It arms a timerfd and reads it through the runtime's network poller:
// the waiting goroutine is parked like one reading a socket, and the
// poller's epoll_wait returns as soon as the timer fires, whatever its own
// millisecond timeout. (An earlier version slept in nanosleep(2), which is
// precise too but keeps the thread's P for the whole sleep: on two cores
// the process under test lost a P to the emulator's sleeps for 5–20 ms at
// a time, which execution traces showed as runnable goroutines waiting
// while the CPU was half idle.)
type sleeper struct {
	f   *os.File // nil: the timerfd could not be made; time.Sleep
	fd  int
	buf [8]byte
}

func newSleeper() *sleeper {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return &sleeper{}
	}
	// A non-blocking descriptor: os.NewFile registers it with the poller.
	return &sleeper{f: os.NewFile(uintptr(fd), "timerfd"), fd: fd}
}

// sleep waits for d (> 0).
func (s *sleeper) sleep(d time.Duration) {
	if s.f == nil {
		time.Sleep(d)
		return
	}
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(d))}
	if err := unix.TimerfdSettime(s.fd, 0, &spec, nil); err != nil {
		time.Sleep(d)
		return
	}
	// The read returns the expiration count once the timer has fired.
	if _, err := s.f.Read(s.buf[:]); err != nil {
		// Not expected from a timerfd; rather than fail again at once on
		// every call, sleep the plain way from now on.
		s.close()
		s.f = nil
		time.Sleep(d)
	}
}

func (s *sleeper) close() {
	if s.f != nil {
		_ = s.f.Close()
	}
}
