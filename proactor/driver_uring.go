package proactor

import (
	"errors"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/compat"
	"github.com/ringo-io/ringo/ring"
)

// Internal user data of the io_uring driver's own SQEs (udInternal set).
const (
	udWake    = udInternal | 1 // the eventfd read that wake() completes
	udCancel  = udInternal | 2 // ASYNC_CANCEL; its own result is not needed
	udReactor = udInternal | 4 // POLL_ADD on the fallback reactor's epoll fd
	// udRearmPoll|ud is the POLL_ADD linked before re-armed op ud. It has
	// the op's own user data in it, so that cancelling ud can cancel the
	// poll too: ASYNC_CANCEL does not find a request that waits in a link
	// chain behind another, only the head of the chain.
	udRearmPoll = udInternal | udLinkTimeout
)

// uringDriver runs ops on one ring. Only whoever holds the Loop's turn calls
// it (the loop goroutine, or a caller's turn), except wake.
type uringDriver struct {
	r           *ring.Ring
	supported   [256]bool // opcodes this ring runs; the rest go to the reactor
	canCancelFd bool      // IORING_ASYNC_CANCEL_FD (5.19)
	// features gates the modes the opcode probe cannot see (selection).
	features ring.Release
	// multishotAccept: IORING_ACCEPT_MULTISHOT (5.19). Without it a
	// multishot Accept runs on the epoll path, which keeps it armed.
	multishotAccept bool
	linkTO          bool // IORING_OP_LINK_TIMEOUT (5.5)
	mode            WaitMode

	// Wake-ups: an eventfd. WaitEnter keeps a READ of it armed in the
	// ring; WaitNetpoll registers it with the ring and parks on it.
	efd     int
	efile   *os.File // WaitNetpoll: the eventfd in Go's netpoller
	erc     syscall.RawConn
	readEfd func(fd uintptr) bool
	// muted: WaitNetpoll on 5.8+, where the eventfd is muted
	// (CQ_EVENTFD_DISABLED) except while the loop goroutine is parked:
	// awake, it reaps what comes without the kernel signalling anyone.
	muted   bool
	wakeBuf *[8]byte // heap memory the armed READ writes into
	// woken is set by wake before it writes efd. WaitNetpoll resets efd
	// by reading it, which can swallow a wake's write; woken is how the
	// loop still notices that wake.
	woken     atomic.Bool
	wakeArmed bool

	// Per-op fallback: ops the ring lacks run on an epoll reactor whose fd
	// the ring polls.
	reactor      *compat.Reactor
	reactorArmed bool
	fallback     map[uint64]struct{}
	// rearmed holds the ops that wait behind a POLL_ADD (see rearm) until
	// their final CQE: cancel must reach the poll as well.
	rearmed   map[uint64]struct{}
	fallbacks uint64
	l         *Loop // completions go to l.deliver
	reactorFn func(c compat.Completion)
	next      int // reap: the index of the next CQE to dispatch
}

func newUringDriver(l *Loop, opts Options, sel selection) (*uringDriver, error) {
	ropts := []ring.Option{ring.WithRelease(sel.release), ring.WithCQSize(opts.Entries * 4), ring.WithClamp()}
	if opts.Wait == WaitEnter {
		// DEFER_TASKRUN (6.1) keeps completion work off the loop thread
		// until it enters to reap. COOP_TASKRUN alone flags the thread
		// (TIF_NOTIFY_SIGNAL) instead, and that flag makes the loop's own
		// blocking-free system calls return early to run the work: 16% of
		// the file server's sendfile(2) calls were restarted that way
		// (docs/BENCHMARKS.md). COOP_TASKRUN stays for 5.19-6.0, where
		// the setup ladder drops DEFER_TASKRUN. Both need one submitting
		// thread, which the locked loop thread is.
		ropts = append(ropts, ring.WithDeferTaskrun(), ring.WithCoopTaskrun(), ring.WithTaskrunFlag(), ring.WithSingleIssuer())
	}
	r, err := ring.New(opts.Entries, ropts...)
	if err != nil {
		return nil, err
	}
	d := &uringDriver{r: r, l: l, mode: opts.Wait, wakeBuf: new([8]byte)}
	probe, err := r.Probe()
	if err != nil && !errors.Is(err, ring.ErrNoProbe) {
		r.Close()
		return nil, err
	}
	for op := ring.Op(0); op < ring.OpLast; op++ {
		d.supported[op] = supports(probe, sel.release, op)
	}
	d.features = sel.features
	d.canCancelFd = d.features.Has(ring.Release{Major: 5, Minor: 19})
	d.multishotAccept = d.features.Has(ring.Release{Major: 5, Minor: 19})
	d.linkTO = d.supported[ring.OpLinkTimeout]
	d.efd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		r.Close()
		return nil, os.NewSyscallError("eventfd", err)
	}
	if d.mode == WaitNetpoll {
		if err := r.RegisterEventfd(d.efd); err != nil {
			unix.Close(d.efd)
			r.Close()
			return nil, err
		}
		d.efile = os.NewFile(uintptr(d.efd), "ringo-eventfd")
		if d.erc, err = d.efile.SyscallConn(); err != nil {
			d.efile.Close()
			r.Close()
			return nil, err
		}
		d.readEfd = func(fd uintptr) bool {
			_, err := unix.Read(int(fd), d.wakeBuf[:])
			return err != unix.EAGAIN
		}
		d.muted = r.MuteEventfd(true)
	}
	if d.mode == WaitEnter {
		// 5.18+: saves an fd lookup per enter. The registration belongs
		// to this thread, which the loop goroutine is locked to; optional.
		_ = r.RegisterRingFd()
	}
	d.reactorFn = func(c compat.Completion) {
		if c.Flags&ring.CQEFMore == 0 {
			delete(d.fallback, c.UserData)
		}
		d.l.deliver(c.UserData, c.Res, c.Flags)
	}
	return d, nil
}

// sqe returns a free SQE, submitting to make room if the SQ is full.
func (d *uringDriver) sqe() *ring.SQE {
	if s := d.r.GetSQE(); s != nil {
		return s
	}
	if _, err := d.r.Submit(); err != nil {
		return nil
	}
	return d.r.GetSQE()
}

// runs reports whether the ring itself runs op, whose opcode is code;
// the rest goes to the epoll path.
func (d *uringDriver) runs(code ring.Op, op Op) bool {
	if !d.supported[code] {
		return false
	}
	if code == ring.OpAccept && !d.multishotAccept {
		if a, ok := op.(*Accept); ok && a.Multishot {
			return false
		}
	}
	return true
}

// submitPlain queues op (without a deadline) if the ring itself runs it
// and the SQ has room, and reports whether it did: the hot path of start,
// small enough to be inlined there. Otherwise submit decides.
func (d *uringDriver) submitPlain(ud uint64, op Op, code ring.Op) bool {
	if !d.supported[code] || code == ring.OpAccept {
		return false
	}
	s := d.r.GetSQE()
	if s == nil {
		return false
	}
	op.Prep(s)
	s.UserData = ud
	return true
}

func (d *uringDriver) submit(ud uint64, op Op, code ring.Op, ts *ring.Timespec) error {
	if !d.runs(code, op) {
		if ts != nil {
			return errNoLinkTimeout
		}
		return d.toReactor(ud, op)
	}
	if ts != nil {
		if !d.linkTO {
			return errNoLinkTimeout
		}
		if d.r.SQSpace() < 2 {
			if _, err := d.r.Submit(); err != nil || d.r.SQSpace() < 2 {
				return errBusy
			}
		}
	}
	s := d.r.GetSQE()
	if s == nil {
		if s = d.sqe(); s == nil {
			return errBusy
		}
	}
	op.Prep(s)
	s.UserData = ud
	if ts != nil {
		s.Flags |= ring.SQEIOLink
		t := d.r.GetSQE()
		ring.PrepLinkTimeout(t, ts, 0)
		t.UserData = ud | udLinkTimeout
	}
	return nil
}

func (d *uringDriver) rearm(ud uint64, op Op) error {
	if _, ok := d.fallback[ud]; ok {
		return d.toReactor(ud, op)
	}
	if d.r.SQSpace() < 2 {
		if _, err := d.r.Submit(); err != nil || d.r.SQSpace() < 2 {
			return errBusy
		}
	}
	// POLL_ADD, then the op linked after it: the op runs once the fd is
	// ready. A failed or cancelled poll cancels the op with it.
	p := d.r.GetSQE()
	events := uint32(unix.POLLIN)
	if op.Readiness() == unix.EPOLLOUT {
		events = unix.POLLOUT
	}
	ring.PrepPollAdd(p, int32(op.PollFd()), events)
	p.Flags |= ring.SQEIOLink
	p.UserData = udRearmPoll | ud
	s := d.r.GetSQE()
	op.Prep(s)
	s.UserData = ud
	if d.rearmed == nil {
		d.rearmed = map[uint64]struct{}{}
	}
	d.rearmed[ud] = struct{}{}
	return nil
}

func (d *uringDriver) toReactor(ud uint64, op Op) error {
	if d.reactor == nil {
		r, err := compat.NewReactor(compat.Config{OnPanic: d.l.ReportPanic})
		if err != nil {
			return err
		}
		d.reactor = r
		d.fallback = map[uint64]struct{}{}
	}
	d.fallbacks++
	d.fallback[ud] = struct{}{}
	d.reactor.Submit(ud, op)
	return nil
}

func (d *uringDriver) cancel(ud uint64) {
	if _, ok := d.fallback[ud]; ok {
		d.reactor.Cancel(ud)
		return
	}
	if s := d.sqe(); s != nil {
		ring.PrepCancel(s, ud, 0)
		s.UserData = udCancel
	}
	if _, ok := d.rearmed[ud]; ok {
		// Cancelling the poll cancels the op linked behind it (-ECANCELED);
		// if the poll already fired, the cancel above found the op.
		if s := d.sqe(); s != nil {
			ring.PrepCancel(s, udRearmPoll|ud, 0)
			s.UserData = udCancel
		}
	}
}

func (d *uringDriver) cancelFd(fd int) bool {
	// Ops that fell back to the reactor are cancelled there on every
	// kernel, or its state for fd would outlive fd and meet the next fd
	// with the same number.
	if d.reactor != nil {
		d.reactor.CancelFd(fd)
	}
	if !d.canCancelFd {
		return false
	}
	if s := d.sqe(); s != nil {
		ring.PrepCancelFd(s, int32(fd), 0)
		s.UserData = udCancel
		return true
	}
	return false
}

// eventfdOne is the 8-byte 1 that wake adds to the eventfd. A package
// variable, never written: a local one escapes to the heap in race builds
// (x/sys/unix hands the buffer to the race detector), one allocation per
// wake-up.
var eventfdOne = [8]byte{1}

func (d *uringDriver) wake() {
	d.woken.Store(true)
	// A full counter (EAGAIN) already means "wake up".
	unix.Write(d.efd, eventfdOne[:])
}

func (d *uringDriver) armInternal() {
	if d.mode == WaitEnter && !d.wakeArmed {
		if s := d.sqe(); s != nil {
			ring.PrepRead(s, int32(d.efd), d.wakeBuf[:], 0)
			s.UserData = udWake
			d.wakeArmed = true
		}
	}
	if d.reactor != nil && !d.reactorArmed {
		if s := d.sqe(); s != nil {
			ring.PrepPollAdd(s, int32(d.reactor.Fd()), unix.POLLIN)
			s.UserData = udReactor
			d.reactorArmed = true
		}
	}
}

func (d *uringDriver) wait(timeout time.Duration) error {
	if d.reactor != nil && d.reactor.Pending() {
		timeout = 0
	}
	d.armInternal()
	var err error
	switch {
	case d.r.CQReady() > 0 || timeout == 0:
		_, err = d.r.Submit()
	case d.mode == WaitNetpoll:
		err = d.netpollWait(timeout)
	case timeout < 0:
		_, err = d.r.SubmitAndWait(1)
	default:
		_, err = d.r.SubmitAndWaitTimeout(1, timeout)
		if errors.Is(err, unix.ETIME) {
			err = nil
		}
	}
	if err != nil && (errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EBUSY)) {
		err = nil // reap below, then the next turn submits again
	}
	d.reap()
	if d.reactor != nil && d.reactor.Pending() {
		d.reactor.Poll(0, d.reactorFn)
	}
	return err
}

// callerWait mutes the ring's eventfd (CQ_EVENTFD_DISABLED, 5.8) for the
// caller's enter and reap, as the loop goroutine keeps it muted while it
// runs: the signal per batch of CQEs was a quarter of a NOP's round trip
// here (perf: io_eventfd_signal), and would only wake the parked loop
// goroutine for completions the caller takes itself. The loop goroutine is
// woken explicitly for a CQE posted after the reap, before the unmute, and
// for the fallback reactor: the caller may have reaped its POLL_ADD (which
// only the loop re-arms before it parks) or consumed a wake-up of it.
func (d *uringDriver) callerWait() error {
	if d.muted {
		d.r.MuteEventfd(true)
	}
	err := d.wait(0)
	if d.muted {
		d.r.MuteEventfd(false)
	}
	// SQEs can also stay behind in the SQ: the kernel stops a batch at
	// an SQE that fails before it is issued (no SUBMIT_ALL), or enter
	// says EAGAIN or EBUSY; the loop goroutine submits them again.
	if (d.muted && d.r.CQReady() > 0) || d.r.SQPending() > 0 ||
		(d.reactor != nil && (!d.reactorArmed || d.reactor.Woke() || d.reactor.Pending())) {
		d.l.wakeups.Add(1)
		d.wake()
	}
	return err
}

// poll submits and reports whether the CQ holds completions. Looking
// costs no syscall unless the kernel flags task work in the SQ (TASKRUN_FLAG
// rings, which run it only when the thread enters): Submit then enters to
// run it. A submission error says true, for wait to report. The fallback
// reactor is armed first, so that its readiness shows as a CQE too.
func (d *uringDriver) poll() bool {
	d.armInternal()
	if _, err := d.r.Submit(); err != nil {
		return true
	}
	return d.r.CQReady() > 0 || (d.reactor != nil && d.reactor.Pending())
}

func (d *uringDriver) wakeBy(t time.Time) { d.efile.SetReadDeadline(t) }

// netpollWait submits, then parks the goroutine in Go's netpoller until the
// ring's eventfd (signalled per CQE, and by wake) is readable.
func (d *uringDriver) netpollWait(timeout time.Duration) error {
	if _, err := d.r.Submit(); err != nil {
		return err
	}
	if d.r.CQReady() > 0 {
		return nil // inline completions: no need to park
	}
	if d.muted {
		d.r.MuteEventfd(false)
	}
	// Reset the eventfd, then look again: a CQE posted before the reset
	// is in the CQ now, one posted after it signals the eventfd again.
	// The same goes for wakes, through woken: a wake whose write the
	// reset swallowed had set woken before it wrote.
	unix.Read(d.efd, d.wakeBuf[:])
	if d.r.CQReady() > 0 || d.woken.Swap(false) {
		if d.muted {
			d.r.MuteEventfd(true)
		}
		return nil
	}
	if timeout > 0 {
		d.efile.SetReadDeadline(time.Now().Add(timeout))
	} else {
		d.efile.SetReadDeadline(time.Time{})
	}
	d.l.releaseTurn()
	err := d.erc.Read(d.readEfd)
	d.l.acquireTurn()
	if d.muted {
		d.r.MuteEventfd(true)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	return err
}

// reap delivers every ready CQE, read in place in the CQ. Internal ones
// (bit 63, including the ring's own wait TIMEOUT's) go to internal.
func (d *uringDriver) reap() {
	for {
		cqes := d.r.ReadyCQEs()
		if len(cqes) == 0 {
			return
		}
		for d.next = 0; d.next < len(cqes); {
			d.dispatch(cqes)
		}
		d.r.Advance(len(cqes))
	}
}

// dispatch delivers cqes from d.next on. It recovers handler panics for the
// whole batch, so that callHandler need not defer a recover per CQE (a
// tenth of the engine's own cost per NOP): l.guarded tells it an enclosing
// frame recovers. d.next is always the CQE after the one being delivered,
// which is where reap resumes after a panic. The handler must be the last
// thing each delivery does, as a panic skips whatever follows it up to here.
func (d *uringDriver) dispatch(cqes []ring.CQE) {
	l := d.l
	defer func() {
		if v := recover(); v != nil {
			l.guarded = false
			l.m.Panics++
			l.p.reportPanic(l, v)
		}
	}()
	l.guarded = true
	for i := d.next; i < len(cqes); i++ {
		d.next = i + 1
		c := &cqes[i]
		if c.UserData&udInternal != 0 {
			// The fallback reactor's completions come through its Poll,
			// which must not be unwound by a handler's panic.
			l.guarded = false
			d.internal(c)
			l.guarded = true
			continue
		}
		if len(d.rearmed) > 0 && c.Flags&ring.CQEFMore == 0 {
			delete(d.rearmed, c.UserData)
		}
		l.deliver(c.UserData, c.Res, c.Flags)
	}
	l.guarded = false
}

func (d *uringDriver) internal(c *ring.CQE) {
	switch c.UserData {
	case udWake:
		d.wakeArmed = false
	case udReactor:
		d.reactorArmed = false
		d.reactor.Poll(0, d.reactorFn)
	}
}

// close runs once every op has completed: cancel the driver's own SQEs,
// drain their CQEs, then release the ring, the reactor and the eventfd.
func (d *uringDriver) close() error {
	for d.wakeArmed || d.reactorArmed {
		for _, ud := range []uint64{udWake, udReactor} {
			if s := d.sqe(); s != nil {
				ring.PrepCancel(s, ud, 0)
				s.UserData = udCancel
			}
		}
		if _, err := d.r.SubmitAndWaitTimeout(1, 100*time.Millisecond); err != nil && !errors.Is(err, unix.ETIME) {
			break
		}
		d.reap()
	}
	var errs []error
	if d.reactor != nil {
		errs = append(errs, d.reactor.Close())
	}
	errs = append(errs, d.r.Close())
	if d.efile != nil {
		errs = append(errs, d.efile.Close())
	} else {
		errs = append(errs, unix.Close(d.efd))
	}
	return errors.Join(errs...)
}

func (d *uringDriver) stats(m *Metrics) {
	s := d.r.Stats()
	m.Enters, m.SQEs, m.CQOverflows, m.EINTR = s.Enters, s.Submitted, s.CQOverflows, s.EINTR
	m.Fallbacks = d.fallbacks
}

// bufRing decides how the loop provides receive buffers on this ring: a
// registered buffer ring (br, 5.19), or else, with provide set, buffers
// handed over by IORING_OP_PROVIDE_BUFFERS (5.7); neither when the ring
// runs no RECV or lacks both (the loop then selects buffers itself on the
// epoll path). multishot says whether a recv can stay armed (6.0).
func (d *uringDriver) bufRing(entries uint32) (br *ring.BufRing, provide, multishot bool) {
	if !d.supported[ring.OpRecv] {
		return nil, false, false
	}
	multishot = d.features.Has(ring.Release{Major: 6, Minor: 0})
	if d.r.Release().Has(ring.Release{Major: 5, Minor: 19}) {
		// On a native kernel this is tried whatever uname says: a
		// backported kernel may have buffer rings, an old one refuses.
		if br, err := d.r.RegisterBufRing(entries, bufferGroup); err == nil {
			return br, false, multishot
		}
	}
	if d.supported[ring.OpProvideBuffers] {
		return nil, true, multishot
	}
	return nil, false, false
}
