package proactor

import (
	"errors"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/compat"
	"github.com/ringo-io/ringo/ring"
)

// epollDriver runs ops on compat's epoll reactor, which emulates io_uring's
// completions (same results, same negative errnos).
//
// With WaitNetpoll an idle loop parks in Go's netpoller on (a dup of) the
// reactor's epoll fd instead of blocking its thread in epoll_wait: a
// goroutine blocked in a syscall keeps its P until sysmon takes it back,
// which at GOMAXPROCS=1 delays every goroutine the loop should be waking.
type epollDriver struct {
	r      *compat.Reactor
	mode   WaitMode
	pf     *os.File // WaitNetpoll: dup of the epoll fd in Go's netpoller
	rc     syscall.RawConn
	l      *Loop // completions go to l.deliver
	fn     func(c compat.Completion)
	got    int // completions delivered by the current Poll
	polls  uint64
	parkFn func(uintptr) bool
	held   bool // parkFn returned holding the Loop's turn
}

func newEpollDriver(l *Loop, opts Options) (*epollDriver, error) {
	r, err := compat.NewReactor(compat.Config{Workers: opts.Workers, OnPanic: l.ReportPanic})
	if err != nil {
		return nil, err
	}
	d := &epollDriver{r: r, l: l, mode: opts.Wait}
	d.fn = func(c compat.Completion) { d.got++; d.l.deliver(c.UserData, c.Res, c.Flags) }
	if d.mode == WaitNetpoll {
		fd, err := unix.FcntlInt(uintptr(r.Fd()), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			r.Close()
			return nil, os.NewSyscallError("fcntl", err)
		}
		unix.SetNonblock(fd, true)
		d.pf = os.NewFile(uintptr(fd), "ringo-epoll")
		if d.rc, err = d.pf.SyscallConn(); err != nil {
			d.pf.Close()
			r.Close()
			return nil, err
		}
		// rc.Read calls parkFn, and parks between calls while it
		// returns false: each call takes the Loop's turn, and gives it
		// back only to park.
		d.parkFn = func(uintptr) bool {
			deferred := d.l.acquireTurn()
			d.polls++
			d.r.Poll(0, d.fn)
			// A wake-up with no completion (a task for the loop) must
			// end the wait too, or the loop parks again past it.
			d.held = deferred || d.got > 0 || d.r.Woke() || d.r.Pending()
			if !d.held {
				// Nothing delivered since wait's releaseTurn: keep the
				// loop's lastBatch as that one set it.
				d.l.turn.Unlock()
			}
			return d.held
		}
	}
	return d, nil
}

func (d *epollDriver) submit(ud uint64, op Op, _ ring.Op, ts *ring.Timespec) error {
	if ts != nil {
		return errNoLinkTimeout
	}
	d.r.Submit(ud, op)
	return nil
}

func (d *epollDriver) rearm(ud uint64, op Op) error {
	d.r.Submit(ud, op)
	return nil
}

func (d *epollDriver) cancel(ud uint64) { d.r.Cancel(ud) }

func (d *epollDriver) cancelFd(fd int) bool {
	d.r.CancelFd(fd)
	return true
}

func (d *epollDriver) wait(timeout time.Duration) error {
	d.got = 0
	if d.r.Pending() {
		timeout = 0
	}
	if d.mode != WaitNetpoll || timeout == 0 {
		d.polls++
		return d.r.Poll(timeout, d.fn)
	}
	if timeout > 0 {
		d.pf.SetReadDeadline(time.Now().Add(timeout))
	} else {
		d.pf.SetReadDeadline(time.Time{})
	}
	// Read calls parkFn (a non-blocking Poll) and parks until the epoll
	// fd is readable whenever it found nothing to do.
	d.held = false
	d.l.releaseTurn()
	err := d.rc.Read(d.parkFn)
	if !d.held {
		d.l.acquireTurn() // Read gave up (a deadline) while parked
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

// callerWait polls for a DoUntil caller. The reactor's wake-up state is
// kept for whoever polls next, and a caller's poll may have consumed what
// was meant for the parked loop goroutine (a Signal for a queued task, a
// worker's result it did not collect): pass that on.
func (d *epollDriver) callerWait() error {
	err := d.wait(0)
	if d.r.Woke() || d.r.Pending() {
		d.l.wakeups.Add(1)
		d.r.Signal()
	}
	return err
}

func (d *epollDriver) wakeBy(t time.Time) { d.pf.SetReadDeadline(t) }

func (d *epollDriver) wake() {
	if d.mode == WaitNetpoll {
		d.r.Signal()
		return
	}
	d.r.Wake()
}

func (d *epollDriver) close() error {
	var err error
	if d.pf != nil {
		err = d.pf.Close()
	}
	return errors.Join(err, d.r.Close())
}

func (d *epollDriver) stats(m *Metrics) { m.Enters = d.polls }

// poll looks at the epoll fd with a zero-timeout poll(2), which, unlike
// epoll_wait, consumes no event: it is readable while epoll has any.
func (d *epollDriver) poll() bool {
	if d.r.Pending() {
		return true
	}
	fds := [1]unix.PollFd{{Fd: int32(d.r.Fd()), Events: unix.POLLIN}}
	n, err := unix.Poll(fds[:], 0)
	if err == unix.EINTR {
		// A signal (Go preempts a goroutine that runs 10 ms with one)
		// is no event. Counted as one, it ended every poll early, so an
		// idle loop never finished a quiet Spin and polled for good.
		return false
	}
	return err != nil || n > 0
}
