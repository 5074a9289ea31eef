package compat

// The epoll driver's contract with the engine (proactor).
//
// The engine owns a slab of operations; each has a 64-bit user_data that is
// opaque here. It hands an op in with Submit and gets back Completions that
// carry exactly what an io_uring CQE for the same op would carry. Everything
// below is called from one goroutine, the loop that owns the Reactor, except
// Wake, which any goroutine may call.
//
// func NewReactor(cfg Config) (*Reactor, error)
//     Create the epoll instance and the wake-up eventfd. No goroutine is
//     started: workers start on the first op that needs one.
//
// func (r *Reactor) Submit(ud uint64, op Op)
//     Start op. Like Go's netpoller, it may make a first non-blocking attempt
//     at once and waits for readiness only on -EAGAIN, but it never delivers
//     a completion from inside Submit: results are queued for the next Poll.
//     Ops on one fd and direction complete in submission order; a multishot
//     op keeps the head of its queue until its final completion. An op
//     whose fd epoll refuses (EPERM: a regular file) runs on the worker pool.
//     An op with Readiness 0 always runs on the pool.
//     After Close, Submit drops op and it never completes.
//
// func (r *Reactor) Cancel(ud uint64) int32
//     Answer what IORING_OP_ASYNC_CANCEL would: 0 if the op was found
//     waiting (it completes with -ECANCELED at the next Poll), -EALREADY if a
//     worker is running it (it completes with its real result), -ENOENT if no
//     such op is pending (it completed already, perhaps not yet delivered, or
//     was never submitted). A multishot op cancelled while armed ends with a
//     final -ECANCELED completion without FlagMore.
//
// func (r *Reactor) CancelFd(fd int) int
//     Cancel every op waiting on fd, including worker jobs not yet started
//     whose Op.Fd is fd (each completes with -ECANCELED), return how many,
//     and forget fd (EPOLL_CTL_DEL), so the caller may close it. Ops a worker
//     is running still complete with their real result. The engine must call
//     CancelFd before it closes any fd it ever submitted a pollable op on:
//     fd numbers are reused, and state kept for a closed fd would otherwise
//     be applied to its successor.
//
// func (r *Reactor) Poll(timeout time.Duration, deliver func(Completion)) error
//     Wait up to timeout (0: do not block; < 0: forever) for readiness, a
//     worker result or a Wake; perform the ready ops; then call deliver once
//     per completion, in the order they were queued. It does not block when
//     completions are already queued. Completions queued by calls deliver
//     makes (a Submit that succeeds at once) wait for the next Poll, so a
//     chatty handler cannot keep one Poll running forever. Returns ErrClosed
//     after Close; deliver must not call Poll.
//
// func (r *Reactor) Pending() bool
//     Report whether the next Poll has work that needs no waiting: queued
//     completions, worker results, a Wake, or an fd whose drain was cut
//     short for fairness. A loop that blocks somewhere other than Poll (the
//     io_uring driver waiting on Fd) must check Pending first.
//
// func (r *Reactor) Wake()
//     Make a Poll that is blocked, or the next one, return promptly. Safe
//     from any goroutine, and cheap when no Poll is blocked: it touches the
//     eventfd only when Poll is asleep in epoll_wait.
//
// func (r *Reactor) Fd() int
//     The epoll fd. It polls readable when epoll has events for Poll,
//     including worker results, so the io_uring driver can watch it with
//     IORING_OP_POLL_ADD and call Poll(0, ...) when it fires.
//
// func (r *Reactor) Close() error
//     Cancel everything and deliver nothing further: the engine treats every
//     op it still holds as cancelled (to receive the -ECANCELED completions
//     instead, Cancel the ops and Poll until they are delivered before
//     calling Close). Waits for ops running on workers to return, stops the
//     workers, closes the epoll fd and the eventfd. Safe to call twice.

import (
	"errors"
	"math"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// FlagMore is io_uring's IORING_CQE_F_MORE: the op that produced this
// completion stays armed and will complete again. compat cannot import ring,
// so it restates the ABI value (include/uapi/linux/io_uring.h).
const FlagMore uint32 = 1 << 1

// FlagAgainIsResult, returned by Perform together with -EAGAIN, makes that
// -EAGAIN the op's result instead of "not ready, wait". connect(2) on a
// non-blocking unix socket whose listener's backlog is full says EAGAIN,
// and io_uring completes the connect with -EAGAIN; waiting for writability
// instead would never end, since an unconnected unix socket is always
// writable. The reactor strips the flag before delivering the completion.
// No io_uring CQE flag uses this bit with a negative result (the high 16
// bits carry a buffer id only with IORING_CQE_F_BUFFER, after a success).
const FlagAgainIsResult uint32 = 1 << 31

// Op is what the reactor needs from an operation. proactor's ops satisfy it.
type Op interface {
	// PollFd is the descriptor whose readiness gates the op.
	PollFd() int
	// Readiness is unix.EPOLLIN or unix.EPOLLOUT for ops on pollable fds
	// (sockets, pipes, eventfds), or 0 for ops that must run on the worker
	// pool because their fd is not pollable (regular files, fsync, openat,
	// statx, fallocate, close...).
	Readiness() uint32
	// Perform makes one attempt and returns the io_uring-style result and
	// CQE flags. For pollable ops it must not block: it returns -EAGAIN when
	// the fd is not ready. A multishot op (accept, recv from provided
	// buffers) sets FlagMore in flags while it stays armed; the reactor then
	// keeps it and calls Perform again. On a worker Perform may block.
	Perform() (res int32, flags uint32)
}

// Completion is one emulated CQE.
type Completion struct {
	UserData uint64
	Res      int32
	Flags    uint32
}

// Config sizes a Reactor.
type Config struct {
	// Workers bounds the pool that runs ops on unpollable descriptors.
	// Zero means 4, io_uring's io-wq is bounded similarly per ring.
	Workers int
	// OnPanic, if set, receives the value of a panic in an Op's Perform,
	// on the loop goroutine (for a worker's, from the Poll that delivers
	// its result). The op completes with -EINVAL: an Op of another
	// package that panics fails alone instead of killing the process.
	OnPanic func(v any)
}

// ErrClosed is returned by Poll after Close.
var ErrClosed = errors.New("compat: reactor closed")

var errReentrant = errors.New("compat: Poll called from a deliver callback")

const (
	defaultWorkers = 4

	// maxEvents is the size of the fixed epoll_wait buffer. Events beyond it
	// stay queued in the kernel for the next Poll, so it bounds the latency
	// of one Poll, not correctness. 128 is what Go's runtime uses.
	maxEvents = 128

	// drainBudget bounds how many attempts one fd direction gets per Poll.
	// Edge-triggered epoll requires draining until EAGAIN; a multishot
	// receive on a fast sender might never see it, so after this many
	// attempts the fd goes on the run queue and the next Poll resumes it
	// without waiting for an edge that will not come.
	drainBudget = 64

	// baseEvents is the registration every fd gets on its first waiting
	// op. EPOLLOUT is added only while a write waits (epoll(7): a writable
	// socket would otherwise report every time the read side does).
	baseEvents = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET
)

// Reactor is the epoll driver. See the contract above.
type Reactor struct {
	epfd int // immutable until Close
	wake waker

	// Loop goroutine only.
	fds       map[int]*fdState // fds with a registration or a waiting op
	byUD      map[uint64]*entry
	free      *entry       // entries ready for reuse, linked through next
	ready     []Completion // queued for the next Poll's deliver calls
	spare     []Completion // the previous batch's storage, reused
	runq      []*fdState   // fds whose drain ran out of budget
	runqSpare []*fdState
	events    [maxEvents]unix.EpollEvent
	inPoll    bool
	woke      bool // the last Poll consumed a Wake or Signal; see Woke
	closed    bool
	onPanic   func(any)

	pool pool
}

// NewReactor creates the epoll instance and its wake-up eventfd.
func NewReactor(cfg Config) (*Reactor, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = defaultWorkers
	}
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	// Level-triggered on purpose: the eventfd stays readable until Poll
	// reads it, so a signal raised while the loop is busy elsewhere keeps
	// Fd readable for whoever waits on it next.
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(evfd)
		unix.Close(epfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	r := &Reactor{
		epfd:    epfd,
		fds:     make(map[int]*fdState),
		byUD:    make(map[uint64]*entry),
		ready:   make([]Completion, 0, 64),
		spare:   make([]Completion, 0, 64),
		onPanic: cfg.OnPanic,
	}
	r.wake.fd = evfd
	r.pool.init(cfg.Workers, r.wake.signal)
	return r, nil
}

// perform runs op.Perform on the loop goroutine; a panic there fails the
// op (-EINVAL, final) and goes to Config.OnPanic.
func (r *Reactor) perform(op Op) (int32, uint32) {
	res, flags, panicked := performSafe(op)
	if panicked != nil {
		r.reportPanic(panicked)
	}
	return res, flags
}

func (r *Reactor) reportPanic(v any) {
	if r.onPanic != nil {
		r.onPanic(v)
	}
}

// performSafe runs op.Perform and turns a panic into a failed op and the
// panic's value. Workers call it directly: their panic travels with the
// result to the loop goroutine.
func performSafe(op Op) (res int32, flags uint32, panicked any) {
	defer func() {
		if v := recover(); v != nil {
			res, flags, panicked = -int32(unix.EINVAL), 0, v
		}
	}()
	res, flags = op.Perform()
	return res, flags, nil
}

// Fd returns the epoll descriptor.
func (r *Reactor) Fd() int { return r.epfd }

// Submit starts op; its completion is delivered by a later Poll.
func (r *Reactor) Submit(ud uint64, op Op) {
	if r.closed {
		return
	}
	want := op.Readiness()
	if want == 0 {
		r.toPool(ud, op)
		return
	}
	dir := dirOf(want)
	fd := op.PollFd()
	st := r.fds[fd]
	if st != nil {
		if st.unpollable {
			r.toPool(ud, op)
			return
		}
		if !st.q[dir].empty() {
			// Earlier ops on this direction are waiting for readiness;
			// attempting now would let this one overtake them.
			r.park(st, dir, ud, op)
			return
		}
	}
	// Try first, wait only on EAGAIN: most sends, and receives on busy
	// connections, never touch epoll at all.
	for budget := drainBudget; budget > 0; budget-- {
		res, flags := r.perform(op)
		if res == -int32(unix.EAGAIN) {
			if flags&FlagAgainIsResult != 0 {
				r.post(ud, res, flags&^FlagAgainIsResult)
				return
			}
			r.park(r.fdState(st, fd), dir, ud, op)
			return
		}
		r.post(ud, res, flags)
		if flags&FlagMore == 0 {
			return
		}
	}
	// A multishot op that is still producing: keep it armed and let the
	// next Poll continue where this left off.
	st = r.fdState(st, fd)
	r.park(st, dir, ud, op)
	r.schedule(st, dir)
}

// Cancel cancels the op with user_data ud, answering as ASYNC_CANCEL would.
func (r *Reactor) Cancel(ud uint64) int32 {
	e := r.byUD[ud]
	if e == nil {
		return -int32(unix.ENOENT)
	}
	if e.where == onPool {
		return r.cancelJob(e)
	}
	st := e.fd
	st.q[e.where].remove(e)
	r.post(ud, -int32(unix.ECANCELED), 0)
	r.release(e)
	r.arm(st) // the last waiting write takes EPOLLOUT with it
	return 0
}

// CancelFd cancels every op waiting on fd and forgets fd.
func (r *Reactor) CancelFd(fd int) int {
	n := 0
	if st := r.fds[fd]; st != nil {
		for dir := range st.q {
			for e := st.q[dir].head; e != nil; {
				next := e.next
				r.post(e.ud, -int32(unix.ECANCELED), 0)
				r.release(e)
				e = next
				n++
			}
			st.q[dir] = entryList{}
		}
		if st.mask != 0 {
			// The error is ignored: if the caller closed fd already the
			// kernel has dropped the registration itself.
			_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		}
		st.dead = true // it may still sit on the run queue
		delete(r.fds, fd)
	}
	return n + r.cancelJobsOnFd(fd)
}

// Pending reports whether Poll has work that needs no waiting.
func (r *Reactor) Pending() bool {
	return len(r.ready) > 0 || len(r.runq) > 0 || r.wake.woken.Load()
}

// Wake makes a blocked or future Poll return promptly. Any goroutine.
func (r *Reactor) Wake() { r.wake.wake() }

// Woke reports whether the last Poll consumed a Wake or Signal. A loop
// that waits on Fd outside Poll needs it: the wake-up it was waiting for may
// carry no completion (new work for the loop itself), and once Poll has
// consumed it nothing else remembers it.
func (r *Reactor) Woke() bool { return r.woke }

// Signal wakes a loop that waits for the epoll fd (Fd) somewhere other
// than Poll, such as Go's netpoller or an io_uring POLL_ADD: unlike Wake it
// always makes Fd readable (bursts collapse into one eventfd write). Any
// goroutine.
func (r *Reactor) Signal() { r.wake.signal() }

// Poll waits for and performs ready ops, then delivers completions.
func (r *Reactor) Poll(timeout time.Duration, deliver func(Completion)) error {
	if r.closed {
		return ErrClosed
	}
	if r.inPoll {
		return errReentrant
	}
	r.inPoll = true
	defer func() { r.inPoll = false }()
	r.woke = false

	// Fds left over from the last Poll's budget are resumed after waiting,
	// so they cannot make this Poll block.
	runq := r.runq
	r.runq = r.runqSpare[:0]
	if len(r.ready) > 0 || len(runq) > 0 {
		timeout = 0
	}
	err := r.wait(timeout)
	for _, st := range runq {
		bits := st.runBits
		st.runBits = 0
		if st.dead {
			continue
		}
		for dir := range st.q {
			if bits&(1<<dir) != 0 {
				r.drain(st, dir)
			}
		}
		r.arm(st)
	}
	clear(runq) // do not keep forgotten fds alive
	r.runqSpare = runq[:0]
	r.collect()
	if err != nil {
		return err
	}

	batch := r.ready
	r.ready = r.spare[:0]
	for i := range batch {
		if r.closed {
			break
		}
		deliver(batch[i])
	}
	r.spare = batch[:0]
	return nil
}

// wait runs epoll_wait once and performs the ops its events make ready.
func (r *Reactor) wait(timeout time.Duration) error {
	msec := toMsec(timeout)
	if msec != 0 {
		// Publish that we are about to sleep, then look for a Wake that
		// came first. Wake does the mirror image (store woken, load
		// sleeping), so with sequentially consistent atomics at least one
		// side sees the other: no wake-up is lost, and Wake writes the
		// eventfd only when a sleeper might miss it.
		r.wake.sleeping.Store(true)
		if r.wake.woken.Load() {
			msec = 0
		}
	}
	var start time.Time
	if msec > 0 {
		start = time.Now()
	}
	n, err := 0, error(nil)
	for {
		n, err = unix.EpollWait(r.epfd, r.events[:], msec)
		if err != unix.EINTR {
			break
		}
		// A signal (Go's preemption SIGURG among them) is no reason to
		// return early; resume with what is left of the timeout.
		if msec > 0 {
			left := timeout - time.Since(start)
			if left < 0 {
				left = 0
			}
			msec = toMsec(left)
		}
	}
	r.wake.sleeping.Store(false)
	// Consume Wakes before collecting worker results (Poll does that after
	// wait): a result posted after this point leaves woken set, so the
	// next Poll or Pending sees it.
	if r.wake.woken.Swap(false) {
		r.woke = true
	}
	if err != nil {
		return os.NewSyscallError("epoll_wait", err)
	}
	for i := range n {
		ev := &r.events[i]
		fd := int(ev.Fd)
		if fd == r.wake.fd {
			r.wake.drain()
			continue
		}
		st := r.fds[fd]
		if st == nil {
			continue // forgotten by CancelFd after epoll_wait returned it
		}
		// EPOLLERR and EPOLLHUP wake both directions: the ops' own
		// syscalls then report the error or EOF, as io_uring would.
		if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			r.drain(st, dirRead)
		}
		if ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			r.drain(st, dirWrite)
		}
		r.arm(st)
	}
	return nil
}

// Close cancels everything, delivers nothing further, waits for running
// worker ops and releases the descriptors.
func (r *Reactor) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.pool.close()
	// Waiting ops simply stop being watched; closing the epoll fd drops
	// every registration at once.
	clear(r.fds)
	clear(r.byUD)
	r.free = nil
	r.ready, r.spare, r.runq, r.runqSpare = nil, nil, nil, nil
	err := r.wake.close()
	if cerr := unix.Close(r.epfd); cerr != nil && err == nil {
		err = os.NewSyscallError("close", cerr)
	}
	return err
}

// post queues one completion for the next Poll.
func (r *Reactor) post(ud uint64, res int32, flags uint32) {
	r.ready = append(r.ready, Completion{UserData: ud, Res: res, Flags: flags})
}

// toMsec converts a Poll timeout to epoll_wait's milliseconds, rounding up
// so that a short positive timeout waits instead of spinning.
func toMsec(d time.Duration) int {
	switch {
	case d < 0:
		return -1
	case d == 0:
		return 0
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	if ms > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(ms)
}
