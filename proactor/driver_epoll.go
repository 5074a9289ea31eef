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
	r       *compat.Reactor
	mode    WaitMode
	pf      *os.File // WaitNetpoll: dup of the epoll fd in Go's netpoller
	rc      syscall.RawConn
	deliver func(ud uint64, res int32, flags uint32)
	fn      func(c compat.Completion)
	got     int // completions delivered by the current Poll
	polls   uint64
	parkFn  func(uintptr) bool
}

func newEpollDriver(opts Options) (*epollDriver, error) {
	r, err := compat.NewReactor(compat.Config{Workers: opts.Workers})
	if err != nil {
		return nil, err
	}
	d := &epollDriver{r: r, mode: opts.Wait}
	d.fn = func(c compat.Completion) { d.got++; d.deliver(c.UserData, c.Res, c.Flags) }
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
		d.parkFn = func(uintptr) bool {
			d.polls++
			d.r.Poll(0, d.fn)
			// A wake-up with no completion (a task for the loop) must
			// end the wait too, or the loop parks again past it.
			return d.got > 0 || d.r.Woke() || d.r.Pending()
		}
	}
	return d, nil
}

func (d *epollDriver) submit(ud uint64, op Op, ts *ring.Timespec) error {
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

func (d *epollDriver) wait(timeout time.Duration, deliver func(ud uint64, res int32, flags uint32)) error {
	d.deliver = deliver
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
	err := d.rc.Read(d.parkFn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

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
