package net

import (
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
	"github.com/ringo-io/ringo/ring"
)

// netFD is one socket shared by the calls blocked on it and by Close.
//
// The kernel may hold an op on the descriptor until that op's final
// completion, and close(2) cancels nothing (io_uring requests keep their own
// file reference), so the descriptor is closed only after every op started
// through this netFD has completed. refs counts the calls that may start or
// have started such ops; Close marks the fd closing, cancels what is
// parked, waits for refs to reach zero and then closes.
type netFD struct {
	sysfd    int            // immutable; closed once, by Close, after refs is 0
	loop     *proactor.Loop // immutable: every op on sysfd runs on this loop
	cancelFn func()         // immutable: cancels every op on sysfd, on the loop

	mu      sync.Mutex
	closing bool          // set once by Close; no new call may start
	refs    int           // calls between incref and decref
	drained chan struct{} // made by Close when refs > 0, closed at refs 0
	// lateClose: Close ran on the loop goroutine while calls were in,
	// which it could not wait for; the last decref closes sysfd.
	lateClose bool
	rd, wd    deadline // read side (also Accept), write side
}

// deadline is one direction's deadline and the channel that interrupts the
// op parked in that direction. Guarded by netFD.mu.
//
// An op is given the deadline when it is submitted (SubmitTimeout turns it
// into a LINK_TIMEOUT or a loop timer), so an unchanged deadline costs
// nothing more. When the deadline changes, or the fd is closed, while ops
// are parked, cancel is closed (the parked call then cancels its op) and
// replaced; the woken call looks at the new state and either fails or
// submits again.
type deadline struct {
	t       time.Time
	cancel  chan struct{}
	waiters int // calls parked with cancel
}

func (fd *netFD) init(sysfd int, loop *proactor.Loop) {
	fd.sysfd = sysfd
	fd.loop = loop
	// Made once, so that interrupting a call allocates nothing.
	fd.cancelFn = func() { loop.CancelFdInLoop(sysfd) }
	fd.rd.cancel = make(chan struct{})
	fd.wd.cancel = make(chan struct{})
}

// incref lets a call use sysfd until decref; it fails once Close began.
func (fd *netFD) incref() error {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.closing {
		return net.ErrClosed
	}
	fd.refs++
	return nil
}

// enter is incref for a call that makes its syscall at once on its own
// goroutine instead of parking an op: it also fails with
// os.ErrDeadlineExceeded if d's deadline has passed. decref ends it.
func (fd *netFD) enter(d *deadline) error {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	return fd.enterLocked(d)
}

func (fd *netFD) enterLocked(d *deadline) error {
	if err := fd.stopped(d); err != nil {
		return err
	}
	fd.refs++
	return nil
}

func (fd *netFD) decref() {
	fd.mu.Lock()
	last := fd.decrefLocked()
	fd.mu.Unlock()
	if last {
		_ = closeSysfd(fd.loop, fd.sysfd)
	}
}

// decrefLocked drops a reference. It reports true when that was the last
// one and a Close made on the loop goroutine left sysfd for it: the caller
// then closes sysfd, after unlocking.
func (fd *netFD) decrefLocked() bool {
	fd.refs--
	if fd.refs > 0 {
		return false
	}
	if fd.drained != nil {
		close(fd.drained)
		fd.drained = nil
	}
	last := fd.lateClose
	fd.lateClose = false
	return last
}

// begin is enter for a call about to park an op in direction d: it also
// counts the call as parked there and returns what to hand to do.
func (fd *netFD) begin(d *deadline) (time.Time, <-chan struct{}, error) {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if err := fd.enterLocked(d); err != nil {
		return time.Time{}, nil, err
	}
	d.waiters++
	return d.t, d.cancel, nil
}

// end undoes begin. When the op was interrupted (it completed with
// -ECANCELED or -ETIME) it says why: net.ErrClosed, os.ErrDeadlineExceeded,
// or nil when the deadline moved and the call should submit again.
func (fd *netFD) end(d *deadline, interrupted bool) error {
	fd.mu.Lock()
	d.waiters--
	last := fd.decrefLocked()
	var why error
	if interrupted {
		why = fd.stopped(d)
	}
	fd.mu.Unlock()
	if last {
		_ = closeSysfd(fd.loop, fd.sysfd)
	}
	return why
}

// setDeadline sets the deadline of the directions given and interrupts the
// ops parked there, so that a blocked call sees the new deadline at once.
func (fd *netFD) setDeadline(t time.Time, read, write bool) error {
	fd.mu.Lock()
	defer fd.mu.Unlock()
	if fd.closing {
		return net.ErrClosed
	}
	changed := false
	if read {
		changed = fd.rd.set(t) || changed
	}
	if write {
		changed = fd.wd.set(t) || changed
	}
	if changed {
		fd.interrupt()
	}
	return nil
}

// set changes the deadline and reports whether calls parked with it must be
// interrupted (their cancel channel is then closed and replaced).
func (d *deadline) set(t time.Time) bool {
	if t.Equal(d.t) {
		return false
	}
	d.t = t
	if d.waiters > 0 {
		close(d.cancel)
		d.cancel = make(chan struct{})
		return true
	}
	return false
}

// sleep waits for dur, cut short by d's deadline, a change to it, or
// Close. Accept uses it to back off when the process is out of
// descriptors; the error says why it must stop retrying (net.ErrClosed,
// os.ErrDeadlineExceeded), nil when it may try again.
func (fd *netFD) sleep(d *deadline, dur time.Duration) error {
	fd.mu.Lock()
	if err := fd.stopped(d); err != nil {
		fd.mu.Unlock()
		return err
	}
	if !d.t.IsZero() {
		dur = min(dur, time.Until(d.t))
	}
	// As a waiter, a SetDeadline in the meantime closes ch.
	d.waiters++
	ch := d.cancel
	fd.mu.Unlock()
	t := time.NewTimer(dur)
	select {
	case <-t.C:
	case <-ch:
		t.Stop()
	}
	fd.mu.Lock()
	defer fd.mu.Unlock()
	d.waiters--
	return fd.stopped(d)
}

// stopped says whether a call waiting on d must give up: net.ErrClosed
// after Close, os.ErrDeadlineExceeded once d's deadline passed.
func (fd *netFD) stopped(d *deadline) error {
	switch {
	case fd.closing:
		return net.ErrClosed
	case !d.t.IsZero() && !time.Now().Before(d.t):
		return os.ErrDeadlineExceeded
	}
	return nil
}

// Close cancels the parked ops, waits until every call using sysfd has
// returned, and closes it. The second call returns net.ErrClosed.
func (fd *netFD) Close() error {
	fd.mu.Lock()
	if fd.closing {
		fd.mu.Unlock()
		return net.ErrClosed
	}
	fd.closing = true
	// Each parked call sees its channel closed and cancels its op. That
	// holds even for an op submitted after this point by a call that
	// passed begin just before: the cancel follows the submission through
	// the loop's FIFO queue.
	close(fd.rd.cancel)
	close(fd.wd.cancel)
	fd.interrupt()
	if fd.refs > 0 && proactor.CurrentLoop() != nil {
		// A handler, posted function or timer closed it while calls are
		// in: on its own loop they finish only after this returns, and
		// waiting on another loop could deadlock with one that waits
		// back. The last of them closes sysfd.
		fd.lateClose = true
		fd.mu.Unlock()
		return nil
	}
	var drained chan struct{}
	if fd.refs > 0 {
		drained = make(chan struct{})
		fd.drained = drained
	}
	fd.mu.Unlock()
	if drained != nil {
		<-drained
	}
	return closeSysfd(fd.loop, fd.sysfd)
}

// closeSysfd closes a descriptor that ops were submitted on, once none is
// in flight. The loop must forget it first (CancelFdInLoop): the epoll
// reactor keeps per-fd state that would otherwise be applied to the next
// socket that gets the same number. Post gives no completion, so a Nop
// behind it in the loop's FIFO queue is the barrier: when the Nop is back,
// the posted function has run. Only then may the number be reused.
func closeSysfd(loop *proactor.Loop, sysfd int) error {
	switch cur := proactor.CurrentLoop(); {
	case cur == loop:
		// On the loop goroutine (Close from a handler): forget it here;
		// waiting for the loop would wait for this call.
		loop.CancelFdInLoop(sysfd)
	case cur != nil:
		// Another loop's goroutine: waiting here could deadlock with
		// that loop closing one of ours the same way. The owner forgets
		// and closes it, a moment after this returns.
		if loop.Post(func() {
			loop.CancelFdInLoop(sysfd)
			unix.Close(sysfd)
		}) == nil {
			return nil
		}
	case loop.Post(func() { loop.CancelFdInLoop(sysfd) }) == nil:
		// Post fails only once the loop is closed and keeps no fd state.
		_, _, _ = loop.DoUntil(proactor.Nop{}, time.Time{}, nil)
	}
	if err := unix.Close(sysfd); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}

// waiter parks the goroutine of one direction of one socket until the final
// completion of the op it submitted. It belongs to that direction (never
// pooled or shared), so a completion can never reach the wrong call.
type waiter struct {
	done chan int32
	h    proactor.Handler // w.complete, bound once
	loop *proactor.Loop
}

func (w *waiter) init(loop *proactor.Loop) {
	w.done = make(chan int32, 1)
	w.h = w.complete
	w.loop = loop
}

func (w *waiter) complete(res int32, flags uint32) {
	if flags&ring.CQEFMore == 0 {
		w.done <- res
		w.loop.Woke() // or a WaitEnter loop blocks on the P the reader needs
	}
}

// do submits op on the fd's loop with deadline dl (zero: none) and parks
// until its final completion. cancel is the channel begin returned for the
// op's direction; err is only the loop's proactor.ErrClosed.
//
// The wait is a plain receive: whoever closes cancel (Close, or a deadline
// change while ops are parked: interrupt) also cancels the fd's ops on the
// loop. That cancel must reach the loop after this op: if cancel is
// already closed once the op is queued, this call cancels it itself, after
// its own submission in the loop's FIFO queue; otherwise the closer's
// cancel is queued later than the submission. A select on cancel and the
// completion cost about 5% of a net.Conn echo's CPU at 1,000 connections
// (selectgo, sellock).
//
// The cancel is by fd (every op on sysfd, the other direction's too, which
// just submits again), not by op: Loop.DoUntil cancels by op but shares its
// waiters between loops, which races (see the package's report), and
// SubmitInLoop returns an id only on the loop goroutine.
func (fd *netFD) do(w *waiter, op proactor.Op, dl time.Time, cancel <-chan struct{}) (int32, error) {
	if err := fd.submit(w, op, dl); err != nil {
		return 0, err
	}
	select {
	case <-cancel:
		_ = fd.loop.Post(fd.cancelFn) // a closed loop has completed every op
	default:
	}
	return <-w.done, nil
}

// doCtx is do for a cancel channel nobody else acts on (a dial's context):
// it waits for either, and cancels the op itself.
func (fd *netFD) doCtx(w *waiter, op proactor.Op, done <-chan struct{}) (int32, error) {
	if err := fd.submit(w, op, time.Time{}); err != nil {
		return 0, err
	}
	select {
	case res := <-w.done:
		return res, nil
	case <-done:
		_ = fd.loop.Post(fd.cancelFn)
		return <-w.done, nil
	}
}

func (fd *netFD) submit(w *waiter, op proactor.Op, dl time.Time) error {
	if dl.IsZero() {
		return fd.loop.Submit(op, w.h)
	}
	return fd.loop.SubmitTimeout(op, max(time.Until(dl), 1), w.h)
}

// interrupt cancels the ops parked on the fd, for Close and deadline
// changes; fd.mu is held and the directions' cancel channels are closed.
func (fd *netFD) interrupt() {
	if fd.rd.waiters+fd.wd.waiters > 0 {
		_ = fd.loop.Post(fd.cancelFn)
	}
}

// interrupted reports whether res says the op was cut short by a cancel
// (Close or a deadline change) or by its deadline.
func interrupted(res int32) bool {
	return res == -int32(unix.ECANCELED) || res == -int32(unix.ETIME)
}
