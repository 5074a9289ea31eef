package proactor

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

var errNoLinkTimeout = errors.New("proactor: driver cannot link a timeout")

// The driver contract.
//
// A driver is the kernel mechanism under one Loop: io_uring (driver_uring.go)
// or the epoll reactor of package compat (driver_epoll.go). The Loop owns the
// op slab, timers and dispatch; a driver only moves ops to the kernel and
// completions back. Every method but wake is called by whoever holds the
// Loop's turn (the loop goroutine, or a DoUntil caller running a turn for
// it while it is parked: Loop.callerTurn), one at a time, so a driver needs
// no locks of its own. Completions go to the Loop's deliver.
//
// submit(ud, op, code, timeout)
//
//	Starts op, identified by user data ud; code is op.Opcode(), which the
//	Loop has already asked for. It never reports the completion
//	synchronously: the result arrives through a later wait, exactly once
//	per CQE the op posts (once, or several times for a multishot op while
//	flags carry CQEFMore; twice for a zero-copy send). It fails only when
//	the op could not be queued at all (errBusy: retry after the next wait).
//
// rearm(ud, op)
//
//	Runs op again, under the same ud, once its fd is ready: the Loop calls
//	it when an op completed with -EAGAIN that means "not ready" (io_uring
//	without FAST_POLL, or MSG_DONTWAIT). The op stays cancellable by ud
//	(cancel and cancelFd reach it while it waits), but any LINK_TIMEOUT
//	ended with the first attempt: the Loop keeps the deadline itself.
//
// cancel(ud)
//
//	Asks that the op with ud end early. The op still completes, with
//	-ECANCELED or with its real result if it finished first; until that
//	completion its buffers belong to the kernel. Cancelling an op that has
//	already completed is a no-op.
//
// cancelFd(fd)
//
//	Cancels every op on fd, as cancel does for each, so that fd can be
//	closed without a request still holding it (close(2) does not cancel
//	io_uring requests).
//
// wait(timeout)
//
//	Flushes what submit queued, waits up to timeout (0: do not block, <0:
//	until something happens) for completions or a wake, and calls the
//	Loop's deliver for each completion in the order the kernel posted
//	them. It returns early, with no completion, after wake. When it parks
//	the goroutine in Go's netpoller (WaitNetpoll) it calls the Loop's
//	releaseTurn before and acquireTurn after, and touches nothing of the
//	driver's while it does not hold the turn: a caller may run a turn
//	meanwhile.
//
// poll()
//
//	Flushes what submit queued and reports, without blocking and without
//	consuming anything, whether a wait would return at once: completions,
//	a wake, or an error for wait to report.
//	The Loop calls it in a loop before it sleeps (Options.Spin): io_uring
//	looks at its CQ in shared memory, epoll needs a poll(2) per look.
//
// callerWait()
//
//	wait(0) for a DoUntil caller running a turn while the loop goroutine
//	is parked: it may silence how completions wake that goroutine (the
//	ring's eventfd), since the caller reaps them itself, but it must leave
//	a wake for any completion posted meanwhile that it did not reap.
//
// wakeBy(t)
//
//	Makes a wait parked in Go's netpoller return by t at the latest, for a
//	caller's turn that added a timer due before the loop's wake-up.
//
// wake()
//
//	Makes a blocked or the next wait return promptly. Safe from any
//	goroutine; the Loop calls it only when the loop may be blocked.
//
// close()
//
//	Called once every op has completed: releases the kernel objects.
//
// registerBuffers(iovs), unregisterBuffers()
//
//	Register memory outside the Go heap as the kernel's fixed buffers
//	(READ_FIXED, WRITE_FIXED) and drop them. A driver with no such
//	registration returns errNoRegister: the Loop then emulates them with
//	pread and pwrite on the same memory (fixed.go). The Loop calls
//	unregisterBuffers only when no op in flight uses them.
//
// registerFiles(fds), unregisterFiles()
//
//	The same for the fixed-file table (IOSQE_FIXED_FILE); -1 is an empty
//	slot. errNoRegister: the Loop maps indexes back to the fds itself.
type driver interface {
	submit(ud uint64, op Op, code ring.Op, timeout *ring.Timespec) error
	rearm(ud uint64, op Op) error
	cancel(ud uint64)
	cancelFd(fd int) bool
	wait(timeout time.Duration) error
	poll() bool
	callerWait() error
	wakeBy(t time.Time)
	wake()
	close() error
	// stats adds the driver's counters to m.
	stats(m *Metrics)
	registerBuffers(iovs []unix.Iovec) error
	unregisterBuffers() error
	registerFiles(fds []int32) error
	unregisterFiles() error
}
