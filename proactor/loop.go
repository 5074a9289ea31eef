package proactor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

// ErrClosed is returned for work submitted to a closed Proactor or Loop.
var ErrClosed = errors.New("proactor: closed")

// ErrNilOp is returned for a nil Op, which would otherwise fail on the loop.
var ErrNilOp = errors.New("proactor: nil Op")

// errBusy is a driver's "could not queue now, retry after the next wait".
var errBusy = errors.New("proactor: submission queue full")

// Loop is one shard of the proactor: one driver (one ring, or one epoll
// reactor), the slab of ops in flight, the timers, and the goroutine that
// runs them. Handlers, Post functions and timer functions all run on that
// goroutine, one at a time.
type Loop struct {
	id  int
	p   *Proactor
	drv driver

	// Only whoever holds turn (below): the loop goroutine, or a caller.
	slab     slab
	timers   timerHeap
	timerSeq uint64
	// fdCancels: for each fd CancelFdInLoop cancelled by fd, the value of
	// fdCancelSeq then. An op started before (slot.armSeq below it) was
	// cancelled even if the driver found nothing of it in flight.
	fdCancelSeq uint64
	fdCancels   map[int]uint64
	backlog     []task    // submissions the driver could not take yet
	epoch       time.Time // immutable: any goroutine may read the loop's clock
	goid        uint64    // the loop goroutine's id, set before New returns
	m           Metrics
	closing     bool
	zcWaiting   int // slots of zero-copy sends waiting only for their notification
	// guarded: a frame below recovers handler panics (callHandler).
	guarded bool
	// wokeWaiter: this turn woke a goroutine parked in Do, or a handler
	// said it woke one (Woke).
	wokeWaiter bool
	bufs       *Buffers // receive buffers, set up on first use
	turnEnd    []func() // AtTurnEnd functions for this turn
	turnRun    []func() // the slice being run, kept for its array
	// Registered buffers and files (fixed.go).
	fixed fixedState

	// turn is the right to touch the fields above. The loop goroutine
	// holds it except while parked in Go's netpoller (releaseTurn), when a
	// goroutine in DoUntil may take it to run its op itself (callerTurn).
	turn sync.Mutex
	// inCaller is set while a DoUntil caller holds turn: deliver then
	// keeps completions meant for handlers in deferred, for the loop
	// goroutine, so that handlers still run only there.
	inCaller bool
	deferred []completion
	// flushOwned: a caller put SQEs in the ring and will enter for them;
	// joined counts the callers that added theirs meanwhile; crowd says
	// the last such yield gathered some; probe counts callerTurns
	// (callerTurn). flushOwned is written only by the turn's holder, but
	// the owner reads it without the turn while it waits to get it back
	// (the loop goroutine clears it when it takes the turn over).
	flushOwned atomic.Bool
	joined     int
	crowd      bool
	probe      uint32
	// gatheredFile counts the file ops (fileBatch) among the SQEs the
	// owner's enter is gathering.
	gatheredFile int
	// delivered counts the completions the loop goroutine delivered since
	// it last parked; releaseTurn moves it to lastBatch.
	delivered, lastBatch int
	// wakeAt is when the parked loop goroutine will wake for its first
	// timer, on the loop's clock; -1 for never.
	wakeAt time.Duration
	// starting is the op whose Prep runs now, for callerTurn's cleanup;
	// callerW is the waiter of the caller holding the turn.
	starting uint64
	callerW  *waiter

	// Shared with submitting goroutines.
	mu       sync.Mutex
	tasks    []task
	ntasks   atomic.Int32 // len(tasks), written under mu, read without it
	spare    []task
	sleeping atomic.Bool // the loop may be blocked in the driver's wait
	wakeups  atomic.Uint64
	closed   atomic.Bool // no more submissions are accepted
	done     chan struct{}
}

// completion is one CQE, or its emulation, as a driver delivers it.
type completion struct {
	ud    uint64
	res   int32
	flags uint32
}

// task is one request from any goroutine to the loop, queued by value.
type task struct {
	op      Op
	h       Handler
	w       *waiter
	timeout time.Duration // per-op deadline, 0 for none
	fn      func()
	cancel  *waiter // cancel the op this waiter waits for
	timer   *Timer  // schedule this timer
}

// waiter parks a goroutine in Do until its op's final completion.
type waiter struct {
	res   int32
	flags uint32
	// direct: the result was left here by the waiting goroutine's own
	// caller turn, with nothing sent on done.
	direct bool
	ud     uint64 // loop goroutine only: the op's user data once submitted
	// done receives the final completion and, when DoUntil queued a
	// cancel, that cancel's acknowledgement: a waiter goes back to the
	// pool only when no task of its loop can still refer to it.
	done chan struct{}
}

var waiterPool = sync.Pool{New: func() any { return &waiter{done: make(chan struct{}, 2)} }}

func newLoop(p *Proactor, id int) *Loop {
	l := &Loop{id: id, p: p, epoch: time.Now(), done: make(chan struct{})}
	l.m.Loop = id
	return l
}

// ID returns the loop's index in its Proactor.
func (l *Loop) ID() int { return l.id }

// Proactor returns the Proactor the loop belongs to.
func (l *Loop) Proactor() *Proactor { return l.p }

// Closed reports whether the loop has stopped accepting work (its
// Proactor is closing or closed). An op that completes with -ECANCELED on
// a closed loop was cancelled by that Close.
func (l *Loop) Closed() bool { return l.closed.Load() }

// Submit queues op; h runs on the loop goroutine with each completion.
// Safe from any goroutine. It fails only after Close.
func (l *Loop) Submit(op Op, h Handler) error {
	if op == nil {
		return ErrNilOp
	}
	return l.enqueue(task{op: op, h: h})
}

// SubmitTimeout is Submit with a deadline: if op has not completed after d
// it is cancelled and completes with -ETIME (through LINK_TIMEOUT on
// io_uring, the loop's timers on epoll). Not for multishot ops.
func (l *Loop) SubmitTimeout(op Op, d time.Duration, h Handler) error {
	if op == nil {
		return ErrNilOp
	}
	return l.enqueue(task{op: op, h: h, timeout: max(d, 1)})
}

// Do submits op and parks the calling goroutine until its final
// completion. If ctx ends first, the op is cancelled and Do still waits
// for the kernel to finish with it (its buffers are the kernel's until
// then), returning ctx's error if the cancel won and the op's real result
// if the op had already completed. A deadline on ctx becomes the op's own
// timeout and a deadline that ends the op is reported as -ETIME with
// context.DeadlineExceeded. res < 0 is -errno, as in a Handler.
func (l *Loop) Do(ctx context.Context, op Op) (res int32, flags uint32, err error) {
	deadline, _ := ctx.Deadline()
	res, flags, err = l.DoUntil(op, deadline, ctx.Done())
	if err != nil {
		return res, flags, err
	}
	if res == -int32(unix.ECANCELED) || res == -int32(unix.ETIME) {
		if err := ctx.Err(); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				// ctx's own timer and the op's deadline race; either
				// way the deadline ended it.
				res = -int32(unix.ETIME)
			}
			return res, flags, err
		}
		// -ETIME is a Timeout op's own result too; for it, the deadline
		// cut it short only if that has passed (ctx's timer may not have
		// fired yet). For any other op it always means the deadline.
		_, isTimeout := op.(*Timeout)
		if res == -int32(unix.ETIME) && !deadline.IsZero() && (!isTimeout || !time.Now().Before(deadline)) {
			return res, flags, context.DeadlineExceeded
		}
	}
	return res, flags, nil
}

// DoUntil is the allocation-free core of Do, for callers that manage their
// own deadlines (net.Conn): it parks until op's final completion. A
// non-zero deadline cancels the op when it passes (the op then completes
// with -ETIME); a close of cancel cancels it (-ECANCELED), and DoUntil
// still waits for the final completion. err is only ErrClosed (or ErrNilOp).
func (l *Loop) DoUntil(op Op, deadline time.Time, cancel <-chan struct{}) (res int32, flags uint32, err error) {
	if op == nil {
		return 0, 0, ErrNilOp
	}
	w := waiterPool.Get().(*waiter)
	t := task{op: op, w: w}
	if !deadline.IsZero() {
		t.timeout = max(time.Until(deadline), 1)
	}
	if !l.callerTurn(t) {
		if err := l.enqueue(t); err != nil {
			waiterPool.Put(w)
			return 0, 0, err
		}
	} else if w.direct {
		// It completed in this goroutine's own turn, and finish left
		// the result in w instead of sending it on the channel.
		res, flags = w.res, w.flags
		w.direct = false
		waiterPool.Put(w)
		return res, flags, nil
	}
	if cancel != nil {
		select {
		case <-w.done:
		case <-cancel:
			// The queue is FIFO, so the loop sees this cancel after the
			// submission. Wait for both the completion and the cancel's
			// acknowledgement: if the op finished first, the cancel task
			// still holds w, and w must not be reused (perhaps on another
			// loop) until the loop is done with it.
			queued := l.enqueue(task{cancel: w}) == nil
			<-w.done
			if queued {
				<-w.done
			}
		}
	} else {
		<-w.done
	}
	res, flags = w.res, w.flags
	waiterPool.Put(w)
	return res, flags, nil
}

// OnLoop reports whether it is called on the loop goroutine: from a
// handler, a posted function or a timer. Code there must not wait for the
// loop (Do, or anything that waits on a completion), which would wait for
// itself. It costs about a microsecond: for rare calls like a Close, not
// for every op.
func (l *Loop) OnLoop() bool { return goid() == l.goid }

// CurrentLoop returns the loop whose goroutine calls it (from a handler, a
// posted function or a timer of that loop), of any Proactor, or nil on
// any other goroutine. A loop that waits for another can deadlock with it
// if that one waits back, so code that would wait for a loop can check
// this first. It costs about a microsecond, as OnLoop.
func CurrentLoop() *Loop {
	l, _ := loopsByG.Load(goid())
	cur, _ := l.(*Loop)
	return cur
}

// loopsByG maps the goroutine id of every running loop to its Loop.
var loopsByG sync.Map

// goid is the calling goroutine's id, read from the header runtime.Stack
// prints ("goroutine 18 [running]:"); golang.org/x/net/http2 finds it the
// same way.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b, _ = bytes.CutPrefix(b, []byte("goroutine "))
	var id uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			break
		}
		id = id*10 + uint64(c-'0')
	}
	return id
}

// Post runs fn on the loop goroutine. Safe from any goroutine. After Close
// it returns ErrClosed and fn never runs; a nil error means fn will run,
// before the loop exits.
func (l *Loop) Post(fn func()) error {
	return l.enqueue(task{fn: fn})
}

// AfterFunc runs f on the loop goroutine after d. Safe from any goroutine.
// Timers still pending when the loop closes never fire, and on a closed
// loop f never runs (the Timer's Stop reports false).
func (l *Loop) AfterFunc(d time.Duration, f func()) *Timer {
	// The deadline counts from now, not from when the loop gets to the
	// task: timers set in order must fire in order even when the loop
	// takes them in different turns. epoch is immutable, so any
	// goroutine may read the loop's clock.
	t := &Timer{l: l, f: f, idx: -1, when: l.now() + max(d, 0)}
	if l.enqueue(task{timer: t}) != nil {
		// A closed loop: f will never run, so the timer was never
		// pending, and Stop says so.
		t.state.Store(timerStopped)
	}
	return t
}

// AtTurnEnd runs f once, on the loop goroutine, after this turn's
// completions, tasks and timers and before the loop waits again. It is the
// place to batch what a turn's handlers produced: net's callback API
// flushes every connection written to in a turn there, so their sends
// reach the kernel together in the enter that starts the wait. Only from
// the loop goroutine; unlike Post it costs no wake-up. A function that
// calls AtTurnEnd again runs that one in the same turn.
func (l *Loop) AtTurnEnd(f func()) {
	l.turnEnd = append(l.turnEnd, f)
}

// runTurnEnd runs the AtTurnEnd functions, including any they add.
func (l *Loop) runTurnEnd() {
	for len(l.turnEnd) > 0 {
		fns := l.turnEnd
		l.turnEnd, l.turnRun = l.turnRun[:0], nil
		for i, f := range fns {
			fns[i] = nil
			l.call(f)
		}
		l.turnRun = fns[:0]
	}
}

// Woke tells the loop that the running handler woke a goroutine (sent to
// a channel it waits on, say). Only from the loop goroutine. A WaitEnter
// loop keeps its P while it blocks in the kernel, so such a goroutine
// would run only once sysmon took the P back (20 µs to 10 ms); told, the
// loop yields before it blocks. Do's own waiters need no call.
func (l *Loop) Woke() { l.wokeWaiter = true }

// SubmitInLoop starts op at once and returns its id for CancelInLoop. Only
// from the loop goroutine (a Handler, a Post function or a timer function):
// it skips the queue and the wake-up that other goroutines need.
func (l *Loop) SubmitInLoop(op Op, h Handler) (uint64, error) {
	if op == nil {
		return 0, ErrNilOp
	}
	if l.closing {
		return 0, ErrClosed
	}
	return l.startOp(op, h, nil, 0), nil
}

// CancelInLoop cancels the op with id: it completes with -ECANCELED, or
// with its result if it finished first. Only from the loop goroutine.
func (l *Loop) CancelInLoop(id uint64) { l.cancel(id) }

// CancelFdInLoop cancels every op on fd, so that fd can then be closed,
// including ops still waiting for room in a full SQ (they complete with
// -ECANCELED without ever starting). Only from the loop goroutine.
func (l *Loop) CancelFdInLoop(fd int) {
	for i := 0; i < len(l.backlog); {
		if t := l.backlog[i]; t.op != nil && t.op.PollFd() == fd {
			l.backlog = append(l.backlog[:i], l.backlog[i+1:]...)
			l.finish(t.h, t.w, -int32(unix.ECANCELED), 0)
			continue
		}
		i++
	}
	if l.bufs != nil {
		for _, s := range append([]starvedRecv(nil), l.bufs.starved...) {
			if s.op.PollFd() == fd {
				l.cancel(s.ud)
			}
		}
	}
	if l.drv.cancelFd(fd) {
		// By fd: the slots are not marked. A buffered receive whose end
		// (ENOBUFS) is already queued, or that the loop re-arms itself,
		// would otherwise take up the fd again; cancelledSlot looks here.
		l.fdCancelSeq++
		if l.fdCancels == nil {
			l.fdCancels = make(map[int]uint64)
		}
		l.fdCancels[fd] = l.fdCancelSeq
		return
	}
	l.slab.each(func(ud uint64, sl *slot) {
		if sl.op != nil && sl.op.PollFd() == fd {
			l.cancel(ud)
		}
	})
}

func (l *Loop) enqueue(t task) error {
	// closed is checked under mu, where close sets it, so no task can
	// land behind the shutdown task and be left unrun.
	l.mu.Lock()
	if l.closed.Load() {
		l.mu.Unlock()
		return ErrClosed
	}
	l.tasks = append(l.tasks, t)
	n := len(l.tasks)
	l.ntasks.Store(int32(n))
	l.mu.Unlock()
	// The loop sets sleeping before its last look at the queue, so
	// either it sees this task or we see it sleeping and wake it. Only
	// the first task of a batch needs to.
	if n == 1 && l.sleeping.Load() {
		l.wakeups.Add(1)
		l.drv.wake()
	}
	return nil
}

// fileBatch is the most file ops (fileOpInRing) a gathered enter holds (see
// callerTurn): the caller that brings their number to it enters at once,
// for everything in the ring. Gathering saves syscalls, but file ops have
// a device behind them that idles while their SQEs wait, and the block
// layer holds a batch back (plugs it) until the enter has issued all of
// it. One enter for all of them also keeps a batch together: it completes
// together and is resubmitted together, in lockstep with the device.
// Measured on this machine's virtio disk, 4 KiB O_DIRECT random reads from
// 32 goroutines, three interleaved rounds: one enter for all gave
// 82.9k-87.9k IOPS, batches of 3 gave 104.3k-107.3k, fio 97.2k-108.9k
// (batches of 2 and 4 were close to 3); fio itself made to submit and reap
// 32 at a time falls to 77k-84k. Reads from tmpfs and O_DIRECT at queue
// depth 128 did not change (docs/BENCHMARKS.md, "O_DIRECT random reads").
const fileBatch = 3

// fileOpInRing reports whether op is a file op that goes in the ring: one
// for a descriptor epoll cannot wait on (a regular file or block device
// read, write or sync, an open, a stat: the ops Readiness says 0 for, bar
// the loop's own Timeout and a socket's Shutdown) and whose opcode the
// ring has (the others run on the epoll driver's workers, and an enter
// does nothing for them).
func (l *Loop) fileOpInRing(op Op) bool {
	switch op.(type) {
	case *Timeout, *Shutdown:
		return false
	}
	d, ok := l.drv.(*uringDriver)
	if !ok {
		return false
	}
	// Opcode first: a fixed op resolves its file and buffer there, and
	// its Readiness depends on them.
	code := op.Opcode()
	return op.Readiness() == 0 && d.supported[code]
}

// callerTurn starts t's op from the calling goroutine when the loop is
// parked in Go's netpoller, and reaps what has completed. Queueing the op
// instead costs an eventfd write, the loop goroutine's wake-up through the
// netpoller and a wake back: for an op that completes at once (a NOP, a
// send with room, a read from the page cache) that is several syscalls,
// where this is one io_uring_enter and the caller need not park at all.
//
// Ops still go to the kernel in batches when many goroutines submit. A
// caller that expects company puts its SQE in the ring, marks the enter as
// its own (flushOwned) and yields (runtime.Gosched, about 300 ns here);
// callers that run meanwhile only add their SQEs and park, and the owner's
// enter takes them all (or the loop goroutine's, if it wakes first). It
// expects company when the loop goroutine's last turn delivered several
// completions (lastBatch: the goroutines they woke tend to submit again),
// when its own last yield gathered others (crowd: a pack of goroutines
// that never park), and on one op in 64, to find out. Otherwise it enters
// at once. On io_uring an enter gathers at most fileBatch file ops: a
// device waits for them.
//
// It declines, and the op is queued as usual, when the loop is running or
// blocked in a syscall (WaitEnter), has tasks queued (they go first), or
// the op may wait on io_uring for its fd to become readable (below).
// Completions the enter reaps for waiters are delivered here (a channel
// send); those for handlers wait in deferred for the loop goroutine, so
// that handlers run only there, and it is woken for them, as it is when
// the turn left it anything else to do.
func (l *Loop) callerTurn(t task) (started bool) {
	// Asked first: before the op starts (once it runs, on an epoll
	// worker say, the op is not ours to call, and Opcode may write to it),
	// and on io_uring it resolves a fixed op's file and buffer, which
	// Readiness and PollFd below report.
	file := l.fileOpInRing(t.op)
	_, connect := t.op.(*Connect)
	if l.p.backend == Uring && (connect || t.op.Readiness() == unix.EPOLLIN && t.op.PollFd() >= 0) {
		// A receive or an accept may wait for its peer, and io_uring
		// runs the completion's task work on the thread that submitted:
		// for a caller that is whatever thread it ran on, likely asleep
		// by then. Tried with net.Conn's reads: a 1-connection echo took
		// 57 µs per round trip instead of 33 (perf stat: 2.5 context
		// switches per message instead of 0.2). The loop goroutine's
		// thread is the one parked in the netpoller, woken anyway. The
		// same goes for a connect, which waits for the handshake.
		return false
	}
	if !l.turn.TryLock() {
		return false
	}
	// User code runs in the turn (an Op's Prep, or on epoll any ready
	// op's Perform). If it panics the panic goes on to the caller, but
	// the loop must not stay locked out: free the slot of an op whose
	// Prep panicked (its SQE, zeroed, completes as a stale NOP), give the
	// turn back, and let the loop goroutine submit what is in the ring.
	held := true
	defer func() {
		if held {
			l.dropStarting()
			l.callerW = nil
			l.inCaller = false
			l.flushOwned.Store(false)
			l.turn.Unlock()
			l.drv.wake()
		}
	}()
	idle := l.ntasks.Load() == 0 && !l.closed.Load()
	if !idle || l.closing || len(l.backlog) > 0 {
		held = false
		l.turn.Unlock()
		return false
	}
	l.m.CallerTurns++
	l.callerW = t.w
	l.callerRun(t, false)
	l.callerW = nil
	if l.flushOwned.Load() {
		l.joined++
		if file {
			if l.gatheredFile++; l.gatheredFile >= fileBatch {
				// Enough file ops wait for the device: this caller
				// enters for them (and for what else is in the ring)
				// rather than the owner, once every woken goroutine ran.
				l.gatheredFile = 0
				l.callerW = t.w
				l.callerRun(task{}, true)
				l.callerW = nil
			}
		}
		held = false
		l.turn.Unlock()
		return true // the owner's enter takes this op too
	}
	l.probe++
	if l.crowd || l.lastBatch > 1 || l.probe%64 == 0 {
		l.flushOwned.Store(true)
		l.joined = 0
		l.gatheredFile = 0
		if file {
			l.gatheredFile = 1
		}
		held = false
		l.turn.Unlock()
		runtime.Gosched()
		// Take the turn back, unless the loop goroutine took it over
		// meanwhile: its enter takes this op, and it may keep the turn
		// for long (running, or polling with Options.Spin), so waiting
		// on the mutex could leave this caller stuck while traffic lasts.
		for !l.turn.TryLock() {
			if !l.flushOwned.Load() {
				return true
			}
			runtime.Gosched()
		}
		held = true
		l.crowd = l.joined > 0
		if !l.flushOwned.Load() {
			held = false
			l.turn.Unlock()
			return true // the loop goroutine entered for us
		}
		l.flushOwned.Store(false)
	}
	l.lastBatch = 0 // what it woke has had its turn
	l.callerW = t.w
	l.callerRun(task{}, true)
	l.callerW = nil
	held = false
	l.turn.Unlock()
	return true
}

// callerRun is a caller's part of a turn: start t's op, or with enter
// submit and reap. It wakes the parked loop goroutine if that left it
// work: deferred completions, a backlog, re-armed ops or turn-end
// functions. A timer due before the loop meant to wake (a deadline on an
// op the driver cannot link one to) only moves its wake-up earlier.
func (l *Loop) callerRun(t task, enter bool) {
	rearms := l.m.Rearms
	l.inCaller = true
	if enter {
		if err := l.drv.callerWait(); err != nil {
			l.p.logError(l, err)
		}
	} else {
		l.start(t)
	}
	l.inCaller = false
	if len(l.deferred) > 0 || len(l.backlog) > 0 || len(l.turnEnd) > 0 || l.m.Rearms != rearms {
		l.wakeups.Add(1)
		l.drv.wake()
		return
	}
	if f := l.timers.first(); f != nil && (l.wakeAt < 0 || f.when < l.wakeAt) {
		l.wakeAt = f.when
		l.drv.wakeBy(l.epoch.Add(f.when))
	}
}

// releaseTurn is called by a driver's wait right before it parks the loop
// goroutine in Go's netpoller, and acquireTurn right after: in between, a
// DoUntil caller may run a turn (callerTurn).
func (l *Loop) releaseTurn() {
	l.lastBatch, l.delivered = l.delivered, 0
	l.turn.Unlock()
}

// acquireTurn takes the turn back and delivers the completions a caller's
// turn kept for the loop goroutine, before the driver reaps newer ones,
// and reports whether there were any (the loop must then run its turn).
// SQEs callers left in the ring go in with the loop's next enter.
func (l *Loop) acquireTurn() bool {
	l.turn.Lock()
	l.flushOwned.Store(false)
	if len(l.deferred) == 0 {
		return false
	}
	for i := 0; i < len(l.deferred); i++ { // deliver may append
		c := l.deferred[i]
		l.deliver(c.ud, c.res, c.flags)
	}
	clear(l.deferred)
	l.deferred = l.deferred[:0]
	return true
}

func (l *Loop) now() time.Duration { return time.Since(l.epoch) }

// run is the loop goroutine. It sets up the driver, reports that on
// ready, then serves until close.
func (l *Loop) run(lockThread bool, ready chan<- error) {
	defer close(l.done)
	l.turn.Lock()
	defer l.turn.Unlock()
	if lockThread {
		// SINGLE_ISSUER rings must be entered from one thread, and a
		// thread blocked in io_uring_enter is how this mode waits.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	drv, err := l.p.newDriver(l)
	if err != nil {
		l.closed.Store(true)
		ready <- fmt.Errorf("loop %d: %w", l.id, err)
		return
	}
	l.drv = drv
	l.goid = goid()
	loopsByG.Store(l.goid, l)
	defer loopsByG.Delete(l.goid)
	ready <- nil // publishes goid
	for {
		l.runTasks()
		l.runTimers()
		l.runTurnEnd()
		if l.closing && l.slab.inUse == l.zcWaiting {
			l.orphanZC()
			break
		}
		timeout := time.Duration(-1)
		l.wakeAt = -1
		if len(l.timers) > 0 {
			timeout = l.timers.next(l.now())
			l.wakeAt = l.timers[0].when
		}
		if len(l.backlog) > 0 {
			timeout = 0
		}
		if timeout != 0 && l.p.opts.Spin > 0 {
			if l.spinWait(timeout) {
				timeout = 0
			} else if len(l.timers) > 0 {
				// The spin used up part of the wait.
				timeout = l.timers.next(l.now())
			}
		}
		if timeout != 0 && l.wokeWaiter && l.p.opts.Wait == WaitEnter {
			// A WaitEnter loop keeps its P while it blocks in the kernel
			// (io_uring_enter, epoll_wait), and the goroutines this turn
			// woke in Do are queued on that P: they would run only once
			// sysmon took the P back, 20 µs to 10 ms later (NopBlocking:
			// 44-73 µs per op at GOMAXPROCS 1 and 2). Let them run first.
			runtime.Gosched()
		}
		l.wokeWaiter = false
		if timeout != 0 {
			l.sleeping.Store(true)
			l.mu.Lock()
			pending := len(l.tasks)
			l.mu.Unlock()
			if pending > 0 {
				timeout = 0
			}
		}
		err := l.drv.wait(timeout)
		l.sleeping.Store(false)
		if err != nil {
			l.p.logError(l, err)
		}
	}
	if l.bufs != nil {
		l.bufs.close()
	}
	if err := l.drv.close(); err != nil {
		l.p.logError(l, err)
	}
}

// spinWait polls for a completion or a queued task for up to Options.Spin
// (never past timeout, when that is positive) before the loop sleeps, and
// reports whether it found one. A completion found by polling costs no
// sleep, wake-up or context switch, and while the loop is not sleeping no
// submitter has to wake it. A loop parked in the netpoller (WaitNetpoll)
// yields between looks, so the goroutines its completions woke can run
// (and submit again) on the same P; a WaitEnter loop's locked thread does
// not, since handing its P to another goroutine costs a thread switch.
func (l *Loop) spinWait(timeout time.Duration) bool {
	spin := l.p.opts.Spin
	if timeout > 0 {
		spin = min(spin, timeout)
	}
	yield := l.p.opts.Wait == WaitNetpoll
	start := time.Now()
	for {
		if l.drv.poll() {
			l.m.SpinHits++
			return true
		}
		if l.queued() {
			return true
		}
		if yield {
			runtime.Gosched()
		}
		if time.Since(start) >= spin {
			l.m.SpinMisses++
			return false
		}
	}
}

// queued reports whether tasks wait in the submission queue.
func (l *Loop) queued() bool { return l.ntasks.Load() > 0 }

func (l *Loop) runTasks() {
	// Retry what the driver refused last turn, first, to keep order.
	if len(l.backlog) > 0 {
		backlog := l.backlog
		l.backlog = nil
		for i, t := range backlog {
			l.startGuarded(t)
			backlog[i] = task{}
		}
	}
	l.mu.Lock()
	tasks := l.tasks
	l.tasks, l.spare = l.spare[:0], nil
	l.ntasks.Store(0)
	l.mu.Unlock()
	for i := range tasks {
		t := &tasks[i]
		switch {
		case t.op != nil:
			if l.closing {
				l.finish(t.h, t.w, -int32(unix.ECANCELED), 0)
			} else {
				l.startGuarded(*t)
			}
		case t.cancel != nil:
			l.cancelWaiter(t.cancel)
			t.cancel.done <- struct{}{} // the ack DoUntil waits for
		case t.fn != nil:
			if !l.closing {
				l.call(t.fn)
			}
		case t.timer != nil:
			l.schedule(t.timer)
		}
		*t = task{}
	}
	l.spare = tasks[:0]
}

// start gives a task's op a slot and hands it to the driver.
func (l *Loop) start(t task) uint64 { return l.startOp(t.op, t.h, t.w, t.timeout) }

// startGuarded is start for the tasks the loop goroutine takes from other
// goroutines. The op's own code runs inside (Opcode, Prep, on epoll a
// first Perform), and an Op of another package may panic there: that op
// fails with -EINVAL, the panic is reported as a handler's would be, and
// the loop goes on, instead of taking the process down. The slot is
// freed; an SQE the panicking Prep had, zeroed, completes as a stale NOP.
func (l *Loop) startGuarded(t task) {
	defer func() {
		if v := recover(); v != nil {
			l.dropStarting()
			l.ReportPanic(v)
			l.finish(t.h, t.w, -int32(unix.EINVAL), 0)
		}
	}()
	l.start(t)
}

// dropStarting frees the slot of the op whose own code panicked while it
// started (l.starting); no timer or companion CQE is set up by then.
func (l *Loop) dropStarting() {
	if sl := l.slab.lookup(l.starting); sl != nil {
		l.slab.release(uint32(l.starting), sl)
	}
	l.starting = 0
}

// startOp is start with the task's fields as arguments, which spares
// SubmitInLoop a task on the stack. The common case (no deadline, the
// driver takes the op) stays in this small frame; the rest is in
// startTimed and startFailed.
func (l *Loop) startOp(op Op, h Handler, w *waiter, timeout time.Duration) uint64 {
	idx, sl := l.slab.alloc()
	sl.op, sl.h, sl.w = op, h, w
	ud := makeUD(idx, sl.gen)
	l.starting = ud // from here the op's own code runs (startGuarded)
	sl.code = op.Opcode()
	sl.armSeq = l.fdCancelSeq
	if w != nil {
		w.ud = ud
	}
	if _, ok := op.(*Timeout); ok || timeout > 0 {
		l.starting = 0 // startTimed marks its own submission
		return l.startTimed(&task{op: op, h: h, w: w, timeout: timeout}, ud, idx, sl)
	}
	var err error
	if d, ok := l.drv.(*uringDriver); !ok || !d.submitPlain(ud, op, sl.code) {
		err = l.drv.submit(ud, op, sl.code, nil)
	}
	l.starting = 0
	if err != nil {
		return l.startFailed(&task{op: op, h: h, w: w}, ud, idx, sl, err)
	}
	l.m.Submitted[sl.code]++
	return ud
}

// startTimed is start for a Timeout op (a loop timer) or an op with a
// deadline (a LINK_TIMEOUT, or a loop timer where none can be linked).
func (l *Loop) startTimed(t *task, ud uint64, idx uint32, sl *slot) uint64 {
	if to, ok := t.op.(*Timeout); ok {
		sl.loopTimeout = true
		d := to.D
		if t.timeout > 0 {
			d = min(d, t.timeout) // a deadline ends it as it ends any op
		}
		sl.timer = l.slotTimer(sl, ud, d, true)
		l.m.Submitted[ring.OpTimeout]++
		return ud
	}
	sl.ts = ring.Timespec{Sec: int64(t.timeout / time.Second), Nsec: int64(t.timeout % time.Second)}
	sl.deadline = l.now() + t.timeout
	l.starting = ud
	err := l.drv.submit(ud, t.op, sl.code, &sl.ts)
	l.starting = 0
	if err == nil {
		sl.linked = true
		l.m.Submitted[sl.code]++
		return ud
	}
	if errors.Is(err, errNoLinkTimeout) {
		// This driver (or this op on it) cannot link a timeout: use a
		// loop timer that cancels the op. Armed after submit, which
		// relies on no driver completing an op inside submit (none
		// does: io_uring's only submits, the reactor's never delivers
		// from Submit). One that did would free the slot first, and the
		// slot's timer would be armed for an op that is gone.
		err = l.drv.submit(ud, t.op, sl.code, nil)
		if err == nil {
			sl.timer = l.slotTimer(sl, ud, t.timeout, false)
			l.m.Submitted[sl.code]++
			return ud
		}
	}
	return l.startFailed(t, ud, idx, sl, err)
}

// startFailed handles a submission the driver refused with err: a full SQ
// puts the task in the backlog for the next turn; anything else completes
// the op with the error, as the kernel would have.
func (l *Loop) startFailed(t *task, ud uint64, idx uint32, sl *slot, err error) uint64 {
	if errors.Is(err, errBusy) {
		l.m.SQFull++
		l.slab.release(idx, sl)
		if t.w != nil {
			t.w.ud = 0
		}
		l.backlog = append(l.backlog, *t)
		return 0
	}
	l.m.Submitted[sl.code]++
	l.complete(ud, errnoRes(err), 0)
	return ud
}

// cancelWaiter cancels the op DoUntil's w waits for, wherever it is: in
// flight, or in the backlog the driver refused (there w.ud is 0).
func (l *Loop) cancelWaiter(w *waiter) {
	if w.ud != 0 {
		l.cancel(w.ud)
		return
	}
	for i, t := range l.backlog {
		if t.w == w {
			l.backlog = append(l.backlog[:i], l.backlog[i+1:]...)
			l.finish(t.h, t.w, -int32(unix.ECANCELED), 0)
			return
		}
	}
}

// slotTimer arms sl's own timer for its op ud, due in d: then it completes
// the op with -ETIME (etime: a Timeout op), or cancels it so that it
// completes with -ETIME (a deadline). The timer and its callback are made
// once per slot, not per op.
func (l *Loop) slotTimer(sl *slot, ud uint64, d time.Duration, etime bool) *Timer {
	t := sl.ownTimer
	if t == nil {
		t = &Timer{l: l, idx: -1}
		t.f = func() { l.slotTimerFired(sl) }
		sl.ownTimer = t
	}
	l.timers.remove(t) // never in the heap here; cheap insurance against a double push
	sl.timerUD, sl.timerETime = ud, etime
	t.when = l.now() + max(d, 0)
	t.state.Store(timerPending)
	l.schedule(t)
	return t
}

func (l *Loop) slotTimerFired(sl *slot) {
	ud := sl.timerUD
	if l.slab.lookup(ud) != sl {
		return // the op ended, and the slot may hold another by now
	}
	if sl.timerETime {
		l.complete(ud, -int32(unix.ETIME), 0)
		return
	}
	sl.timedOut = true
	l.cancel(ud)
}

// againIsResult reports whether -EAGAIN is op's answer rather than "not
// ready": for a connect it means the listener's backlog is full (io_uring
// polls for EINPROGRESS itself), and trying again at once would spin.
func againIsResult(op Op) bool {
	_, ok := op.(*Connect)
	return ok
}

func (l *Loop) newTimer(d time.Duration, f func()) *Timer {
	t := &Timer{l: l, f: f, when: l.now() + d}
	l.schedule(t)
	return t
}

// schedule puts t in the loop's heap, after the timers due at the same
// time that were scheduled before it.
func (l *Loop) schedule(t *Timer) {
	l.timerSeq++
	t.seq = l.timerSeq
	l.timers.push(t)
}

func (l *Loop) cancel(ud uint64) {
	sl := l.slab.lookup(ud)
	if sl == nil {
		return // already completed
	}
	if l.bufs != nil && l.bufs.unstarve(ud) {
		// Paused for lack of buffers: not in the driver at all.
		l.complete(ud, -int32(unix.ECANCELED), 0)
		return
	}
	if sl.loopTimeout {
		l.timers.remove(sl.timer)
		l.complete(ud, -int32(unix.ECANCELED), 0)
		return
	}
	sl.cancelled = true
	l.drv.cancel(ud)
}

func (l *Loop) runTimers() {
	if len(l.timers) == 0 {
		return // no clock read: it is a vDSO call, per turn
	}
	now := l.now()
	for t := l.timers.popDue(now); t != nil; t = l.timers.popDue(now) {
		if t.state.CompareAndSwap(timerPending, timerFired) {
			l.call(t.f)
		}
	}
}

// deliver receives every CQE (or emulated one) from the driver. The
// common case, the one completion of a plain op, goes straight to
// completeSlot; everything else takes deliverSlow.
func (l *Loop) deliver(ud uint64, res int32, flags uint32) {
	if ud&udLinkTimeout == 0 && res != -int32(unix.EAGAIN) {
		// In a caller's turn only waiters are served here; the rest is
		// kept for the loop goroutine (deliverSlow).
		if sl := l.slab.lookup(ud); sl != nil && !isRecvBuffers(sl.op) && (!l.inCaller || sl.w != nil) {
			if !l.inCaller {
				l.delivered++
				if l.sleeping.Load() {
					// Awake and about to run tasks again: a Post from
					// this completion's handler needs no wake-up.
					l.sleeping.Store(false)
				}
			}
			l.completeSlot(ud, sl, res, flags)
			return
		}
	}
	l.deliverSlow(ud, res, flags)
}

func isRecvBuffers(op Op) bool {
	_, ok := op.(*RecvBuffers)
	return ok
}

// deliverSlow is deliver for a caller's turn, a LINK_TIMEOUT's CQE, an
// -EAGAIN to re-arm, a stale CQE and buffered receives.
func (l *Loop) deliverSlow(ud uint64, res int32, flags uint32) {
	if l.inCaller {
		// A DoUntil caller's turn: the loop goroutine is still parked, so
		// sleeping stays set, and only waiters are served here.
		if sl := l.slab.lookup(ud &^ udLinkTimeout); sl == nil || sl.w == nil {
			l.deferred = append(l.deferred, completion{ud, res, flags})
			return
		}
	} else {
		l.delivered++
		if l.sleeping.Load() {
			// Awake and about to run tasks again: a Post from this
			// completion's handler needs no wake-up.
			l.sleeping.Store(false)
		}
	}
	if ud&udLinkTimeout != 0 {
		l.linkTimeoutDone(ud&^udLinkTimeout, res)
		return
	}
	if res == -int32(unix.EAGAIN) {
		// io_uring can hand back EAGAIN for a non-blocking socket (a
		// request punted to io-wq, or no FAST_POLL): run it again once
		// the fd is ready, as the epoll driver would.
		if sl := l.slab.lookup(ud); sl != nil && sl.op.Readiness() != 0 && !againIsResult(sl.op) {
			if err := l.drv.rearm(ud, sl.op); err == nil {
				l.m.Rearms++
				if sl.deadline != 0 && sl.timer == nil {
					// The op's LINK_TIMEOUT ended with the attempt that
					// said EAGAIN; the re-armed op keeps its deadline
					// through a loop timer.
					sl.timer = l.slotTimer(sl, ud, sl.deadline-l.now(), false)
				}
				return
			}
		}
	}
	sl := l.slab.lookup(ud)
	if sl == nil {
		if flags&ring.CQEFBuffer != 0 && l.bufs != nil {
			// A stale completion that still took a buffer: give it
			// back, or the pool shrinks for good.
			l.bufs.taken++
			l.bufs.Release(uint16(flags >> ring.CQEBufferShift))
		}
		l.m.Stale++
		return
	}
	if rb, ok := sl.op.(*RecvBuffers); ok {
		if flags&ring.CQEFBuffer != 0 {
			rb.Bufs.taken++
			if res <= 0 {
				// Kernels before 5.19 can attach a buffer to an empty or
				// failed receive; handlers release only what carried
				// data, so give it back here.
				rb.Bufs.Release(uint16(flags >> ring.CQEBufferShift))
				flags &^= ring.CQEFBuffer
			}
		}
		if res == -int32(unix.ENOBUFS) {
			if l.cancelledSlot(sl) {
				// The cancel found nothing in flight: this was the
				// final completion.
				l.completeSlot(ud, sl, -int32(unix.ECANCELED), 0)
				return
			}
			// Out of buffers: pause this receive until one comes back,
			// instead of failing the connection.
			rb.Bufs.starve(ud, sl.op)
			l.m.BufferStalls++
			return
		}
		if rb.again(res, flags) {
			// Multishot emulated: deliver as the kernel would have, then
			// arm the receive again under the same ud.
			l.callHandlerSafe(sl.h, res, flags|ring.CQEFMore) // the re-arm below must run
			switch s := l.slab.lookup(ud); {
			case s == nil:
			case l.cancelledSlot(s):
				// Cancelled (by the handler, say) while nothing was in
				// flight: this is its final completion.
				l.completeSlot(ud, s, -int32(unix.ECANCELED), 0)
			default:
				if err := l.drv.submit(ud, s.op, s.code, nil); err != nil {
					l.complete(ud, errnoRes(err), 0)
				}
			}
			return
		}
	}
	l.completeSlot(ud, sl, res, flags)
}

// cancelledSlot reports whether sl's op was cancelled: by its id, or by
// its fd after it started.
func (l *Loop) cancelledSlot(sl *slot) bool {
	if sl.cancelled {
		return true
	}
	if l.fdCancels == nil || sl.op == nil {
		return false
	}
	seq, ok := l.fdCancels[sl.op.PollFd()]
	return ok && seq > sl.armSeq
}

// linkTimeoutDone handles the companion CQE of a LINK_TIMEOUT: -ETIME if it
// fired (the op was cancelled), anything else if the op finished first.
func (l *Loop) linkTimeoutDone(ud uint64, res int32) {
	sl := l.slab.lookup(ud)
	if sl == nil {
		l.m.Stale++
		return
	}
	sl.linked = false
	if res == -int32(unix.ETIME) {
		sl.timedOut = true
	}
	if sl.held {
		sl.held = false
		l.complete(ud, sl.heldRes, sl.heldFlags)
	}
}

// complete delivers one completion of the op with ud and frees its slot
// after the final one.
func (l *Loop) complete(ud uint64, res int32, flags uint32) {
	sl := l.slab.lookup(ud)
	if sl == nil {
		l.m.Stale++
		return
	}
	l.completeSlot(ud, sl, res, flags)
}

// completeSlot is complete for the slot sl that ud names.
func (l *Loop) completeSlot(ud uint64, sl *slot, res int32, flags uint32) {
	final := flags&ring.CQEFMore == 0
	if final && flags&ring.CQEFNotif == 0 && !sl.zcData && (sl.code == ring.OpSendZC || sl.code == ring.OpSendmsgZC) {
		// io_uring ends every zero-copy send with its notification,
		// a failed or cancelled one too, while a cancel or timeout in
		// the epoll emulation answers once: deliver both, so that a
		// handler that frees its buffer at the notification sees one.
		// The first goes to the handler under its own recover: a panic
		// unwinding to the dispatch's would skip the second, and the
		// slot would be held until Close.
		g := l.guarded
		l.guarded = false
		l.completeSlot(ud, sl, res, flags|ring.CQEFMore)
		l.guarded = g
		res, flags = 0, ring.CQEFNotif
	}
	if final && !sl.linked && !sl.timedOut && sl.timer == nil && (sl.w == nil || flags&ring.CQEFNotif == 0) {
		// The common case: an op without a deadline ends (for a waiter,
		// not with a zero-copy send's notification, handled below).
		h, w, code := sl.h, sl.w, sl.code
		if sl.zcData {
			l.zcWaiting--
		}
		l.slab.release(uint32(ud), sl)
		l.m.Completed[code]++
		if w != nil {
			l.finish(nil, w, res, flags)
		} else if h != nil {
			l.callHandler(h, res, flags)
		}
		return
	}
	if final && sl.linked {
		// Wait for the LINK_TIMEOUT's own CQE, which says whether the
		// deadline is why the op ended.
		sl.held, sl.heldRes, sl.heldFlags = true, res, flags
		return
	}
	if sl.timedOut && res == -int32(unix.ECANCELED) {
		res = -int32(unix.ETIME)
	}
	if final {
		if sl.timer != nil {
			l.timers.remove(sl.timer)
		}
		h, w, code, zc := sl.h, sl.w, sl.code, sl.zcData
		if zc {
			l.zcWaiting--
		}
		l.slab.release(uint32(ud), sl)
		l.m.Completed[code]++
		if w != nil && flags&ring.CQEFNotif != 0 && zc {
			// The final CQE of a zero-copy send is its notification:
			// the waiter keeps the data CQE's result (the op has ended,
			// so without CQEFMore).
			res, flags = w.res, w.flags&^ring.CQEFMore
		}
		l.finish(h, w, res, flags)
		return
	}
	if !sl.zcData && (sl.code == ring.OpSendZC || sl.code == ring.OpSendmsgZC) {
		// The data CQE: only the notification is to come, which Close
		// does not wait for (see orphanZC).
		sl.zcData = true
		l.zcWaiting++
	}
	if sl.w != nil {
		// An intermediate CQE (zero-copy send data): remember it, wake
		// the waiter only at the final one.
		sl.w.res, sl.w.flags = res, flags
		return
	}
	l.callHandler(sl.h, res, flags)
}

func (l *Loop) finish(h Handler, w *waiter, res int32, flags uint32) {
	if w != nil {
		w.res, w.flags = res, flags
		w.ud = 0
		if l.inCaller && w == l.callerW {
			// The caller's own op, in its own turn, on its goroutine:
			// no channel needed (DoUntil).
			w.direct = true
			return
		}
		w.done <- struct{}{}
		l.wokeWaiter = true
		return
	}
	if h != nil {
		l.callHandler(h, res, flags)
	}
}

// callHandler runs a handler; a panic is reported and the loop goes on.
// Under a frame that recovers for it (l.guarded, set by the io_uring
// driver's dispatch) it only calls h; guarded is cleared meanwhile, so
// that whatever h runs in turn (a SubmitInLoop whose op fails at once)
// recovers its own panics.
func (l *Loop) callHandler(h Handler, res int32, flags uint32) {
	if !l.guarded {
		l.callHandlerSafe(h, res, flags)
		return
	}
	l.guarded = false
	h(res, flags)
	l.guarded = true
}

// callHandlerSafe is callHandler with its own recover, for callers that
// have work left after the handler returns.
func (l *Loop) callHandlerSafe(h Handler, res int32, flags uint32) {
	defer l.recoverPanic()
	h(res, flags)
}

func (l *Loop) call(f func()) {
	defer l.recoverPanic()
	f()
}

func (l *Loop) recoverPanic() {
	if v := recover(); v != nil {
		l.ReportPanic(v)
	}
}

// ReportPanic reports v as a handler panic of this loop (counted in
// Metrics.Panics, passed to Options.OnPanic or logged), as if a handler
// had panicked with it. It is for code that calls user callbacks from its
// own handlers and recovers their panics itself, to put its own state
// right before the loop goes on. Loop goroutine only.
func (l *Loop) ReportPanic(v any) {
	l.m.Panics++
	l.p.reportPanic(l, v)
}

// zcOrphans keeps the zero-copy sends whose notification had not come when
// their loop closed: the kernel may read their buffers until it does, and
// the loop will not be there to see it. Never shrinks; it grows only by
// sends to peers that stopped reading at Close.
var zcOrphans struct {
	sync.Mutex
	ops []Op
}

// orphanZC lets the loop exit with zero-copy sends still waiting for their
// notification (a peer that does not read holds it back for good, and
// Close must not wait for it): their ops go to zcOrphans, their Do callers
// get the data completion's result, and their handlers a final completion
// of -ECANCELED with CQEFNotif, so that every op still ends once.
func (l *Loop) orphanZC() {
	if l.zcWaiting == 0 {
		return
	}
	zcOrphans.Lock()
	defer zcOrphans.Unlock()
	l.slab.each(func(ud uint64, sl *slot) {
		zcOrphans.ops = append(zcOrphans.ops, sl.op)
		h, w := sl.h, sl.w
		l.zcWaiting--
		l.slab.release(uint32(ud), sl)
		switch {
		case w != nil:
			l.finish(nil, w, w.res, w.flags&^ring.CQEFMore)
		case h != nil:
			l.callHandlerSafe(h, -int32(unix.ECANCELED), ring.CQEFNotif)
		}
	})
}

// shutdown cancels everything in flight; run exits once the slab is empty.
func (l *Loop) shutdown() {
	l.closing = true
	l.slab.each(func(ud uint64, sl *slot) { l.cancel(ud) })
	for len(l.backlog) > 0 {
		t := l.backlog[0]
		l.backlog = l.backlog[1:]
		l.finish(t.h, t.w, -int32(unix.ECANCELED), 0)
	}
	// Pending timers never fire after Close.
	for len(l.timers) > 0 {
		l.timers.remove(l.timers[0])
	}
}

// close stops the loop: new submissions fail, queued ones complete with
// -ECANCELED, ops in flight are cancelled, and it returns once the driver
// has reported every op's final completion and released its resources.
func (l *Loop) close() {
	l.mu.Lock()
	if l.closed.Swap(true) || l.drv == nil {
		l.mu.Unlock()
		<-l.done
		return
	}
	l.tasks = append(l.tasks, task{fn: l.shutdown})
	l.ntasks.Store(int32(len(l.tasks)))
	l.mu.Unlock()
	l.drv.wake()
	<-l.done
}

// snapshot copies the loop's metrics, on the loop goroutine.
func (l *Loop) snapshot() Metrics {
	if l.closed.Load() {
		return l.m
	}
	ch := make(chan Metrics, 1)
	_ = l.Post(func() { // after Close, l.done below answers
		m := l.m
		m.Wakeups = l.wakeups.Load()
		m.Inflight = l.slab.inUse
		m.Timers = len(l.timers)
		l.drv.stats(&m)
		ch <- m
	})
	select {
	case m := <-ch:
		return m
	case <-l.done:
		return l.m
	}
}

func (l *Loop) String() string { return fmt.Sprintf("loop %d", l.id) }
