package proactor

import (
	"time"

	"github.com/ringo-io/ringo/compat"
	"github.com/ringo-io/ringo/ring"
)

// epollDriver runs ops on compat's epoll reactor, which emulates io_uring's
// completions (same results, same negative errnos).
type epollDriver struct {
	r       *compat.Reactor
	deliver func(ud uint64, res int32, flags uint32)
	fn      func(c compat.Completion)
	polls   uint64
}

func newEpollDriver(opts Options) (*epollDriver, error) {
	r, err := compat.NewReactor(compat.Config{Workers: opts.Workers})
	if err != nil {
		return nil, err
	}
	d := &epollDriver{r: r}
	d.fn = func(c compat.Completion) { d.deliver(c.UserData, c.Res, c.Flags) }
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
	if d.r.Pending() {
		timeout = 0
	}
	d.polls++
	return d.r.Poll(timeout, d.fn)
}

func (d *epollDriver) wake() { d.r.Wake() }

func (d *epollDriver) close() error { return d.r.Close() }

func (d *epollDriver) stats(m *Metrics) { m.Enters = d.polls }
