package ring

import (
	"errors"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Memory ordering. The SQ and CQ are single-producer single-consumer queues
// shared with the kernel. Go's sync/atomic operations are sequentially
// consistent, which is stronger than the acquire/release pairs liburing
// uses, and plain loads and stores would let the compiler reorder or elide
// the accesses. So:
//   - SQ tail: we publish SQEs with a store that must come after the SQE
//     contents are written (release): atomic.StoreUint32.
//   - SQ head: the kernel advances it as it consumes SQEs; we must see its
//     latest value before reusing a slot (acquire): atomic.LoadUint32.
//   - CQ tail: the kernel publishes CQEs; reading a CQE must come after
//     reading the tail that covers it (acquire): atomic.LoadUint32.
//   - CQ head: we hand slots back; the store must come after we finished
//     reading the CQEs (release): atomic.StoreUint32.
//   - SQ flags: written by the kernel at any time: atomic.LoadUint32.

// GetSQE returns the next free SQE, zeroed, or nil when the SQ is full (the
// caller submits, then tries again). The SQE is published by the next
// Submit.
func (r *Ring) GetSQE() *SQE {
	sq := &r.sq
	head := atomic.LoadUint32(sq.khead)
	if sq.sqeTail-head >= sq.entries {
		return nil
	}
	sqe := (*SQE)(unsafe.Add(sq.sqes, uintptr(sq.sqeTail&sq.mask)<<sq.shift*sizeofSQE))
	sq.sqeTail++
	*sqe = SQE{}
	if sq.shift != 0 {
		// The command area of an SQE128 too: stale bytes there would be
		// read by the kernel as the next URING_CMD's payload.
		*(*SQE)(unsafe.Add(unsafe.Pointer(sqe), sizeofSQE)) = SQE{}
	}
	return sqe
}

// SQSpace returns how many SQEs GetSQE can hand out before the SQ is full.
func (r *Ring) SQSpace() uint32 {
	return r.sq.entries - (r.sq.sqeTail - atomic.LoadUint32(r.sq.khead))
}

// SQPending returns how many SQEs have been handed out but not yet consumed
// by the kernel.
func (r *Ring) SQPending() uint32 {
	return r.sq.sqeTail - atomic.LoadUint32(r.sq.khead)
}

// flush publishes the SQEs handed out since the last flush and returns how
// many the kernel has not consumed yet.
func (r *Ring) flush() uint32 {
	sq := &r.sq
	if sq.sqeHead != sq.sqeTail {
		sq.sqeHead = sq.sqeTail
		atomic.StoreUint32(sq.ktail, sq.sqeTail)
	}
	return sq.sqeTail - atomic.LoadUint32(sq.khead)
}

// Submit publishes pending SQEs and tells the kernel, without waiting.
// It returns how many SQEs the kernel consumed.
func (r *Ring) Submit() (int, error) {
	return r.submit(0, nil)
}

// SubmitAndWait publishes pending SQEs and waits until at least waitNr CQEs
// are ready, in one io_uring_enter.
func (r *Ring) SubmitAndWait(waitNr uint32) (int, error) {
	return r.submit(waitNr, nil)
}

// SubmitAndWaitTimeout is SubmitAndWait that gives up after d, returning
// an error that matches unix.ETIME when nothing completed in time. Signals
// do not put the end off: a wait they interrupt goes on for what is left
// of d. On
// kernels without EXT_ARG (before 5.11) it queues a TIMEOUT SQE with
// UserDataTimeout, whose CQE Peek filters out.
func (r *Ring) SubmitAndWaitTimeout(waitNr uint32, d time.Duration) (int, error) {
	if d < 0 {
		d = 0
	}
	r.waitTs = timespec(d)
	if r.params.Features&FeatExtArg != 0 {
		r.waitEnd = time.Now().Add(d)
		r.waitArg = GetEventsArg{Ts: uint64(uintptr(unsafe.Pointer(&r.waitTs)))}
		return r.submit(waitNr, &r.waitArg)
	}
	sqe := r.GetSQE()
	if sqe == nil {
		if _, err := r.Submit(); err != nil {
			return 0, err
		}
		if sqe = r.GetSQE(); sqe == nil {
			return 0, os.NewSyscallError("io_uring_enter", unix.EBUSY)
		}
	}
	// count 1: fire after d or after one other completion, whichever
	// comes first; waitNr then counts the TIMEOUT's own CQE too.
	PrepTimeout(sqe, &r.waitTs, 1, 0)
	sqe.UserData = UserDataTimeout
	n, err := r.submit(waitNr, nil)
	var one [1]CQE
	if err == nil && r.Peek(one[:]) == 0 {
		// Only the TIMEOUT's CQE came (Peek consumed it): timed out,
		// as the EXT_ARG wait says with ETIME.
		return n, errWaitTimedOut
	}
	return n, err
}

func timespec(d time.Duration) Timespec {
	return Timespec{Sec: int64(d / time.Second), Nsec: int64(d % time.Second)}
}

// waitLeft sets up an EXT_ARG wait to be entered again with the time left
// of it; false once there is none, when the wait has timed out.
func (r *Ring) waitLeft() bool {
	left := time.Until(r.waitEnd)
	if left <= 0 {
		return false
	}
	r.waitTs = timespec(left)
	return true
}

var errWaitTimedOut = os.NewSyscallError("io_uring_enter", unix.ETIME)

func (r *Ring) submit(waitNr uint32, arg *GetEventsArg) (int, error) {
	submitted := 0
	for {
		toSubmit := r.flush()
		flags := r.enterFlags
		sqFlags := atomic.LoadUint32(r.sq.kflags)
		if sqFlags&SQCQOverflow != 0 {
			// CQEs wait in the kernel's overflow list; only an enter
			// with GETEVENTS moves them into the CQ.
			r.stats.CQOverflows++
			flags |= EnterGetEvents
		}
		if waitNr > 0 || sqFlags&SQTaskrun != 0 {
			flags |= EnterGetEvents
		}
		if r.flags&SetupSQPoll != 0 {
			// The SQPOLL thread consumes the SQ by itself; enter only
			// to wake it or to wait.
			if sqFlags&SQNeedWakeup != 0 {
				flags |= EnterSQWakeup
			} else if flags&EnterGetEvents == 0 {
				return int(toSubmit), nil
			}
		}
		if toSubmit == 0 && flags&EnterGetEvents == 0 {
			return submitted, nil
		}
		if waitNr > 0 && arg == nil {
			// Most waits are already satisfied once the submission has
			// run (inline completions, CQEs that arrived meanwhile), so
			// first enter without blocking, on the cheap raw path; block
			// in the kernel only if that was not enough.
			n, err := r.enter(toSubmit, 0, flags, nil)
			submitted += n
			if err == nil && r.CQReady() >= waitNr {
				return submitted, nil
			}
			if err == nil {
				toSubmit = r.flush()
			} else if !errors.Is(err, unix.EINTR) {
				return submitted, r.enterError(err)
			}
			flags |= enterMayBlock
		}
		n, err := r.enter(toSubmit, waitNr, flags, arg)
		submitted += n
		if err == nil && (arg == nil || n == 0 || r.CQReady() >= waitNr) {
			return submitted, nil
		}
		if err == nil {
			// The enter submitted, so the kernel returned the count
			// and dropped the wait's own result: a timeout, or a
			// signal that cut the wait short. Wait on for the rest.
			if !r.waitLeft() {
				return submitted, errWaitTimedOut
			}
			continue
		}
		if errors.Is(err, unix.EINTR) {
			// A signal (Go's preemption, a profiler) interrupted the
			// wait. A call that fails submitted nothing, so go round
			// again with the recomputed count, and a timed wait with
			// what is left of its time: steady signals must not put
			// its end off for ever.
			r.stats.EINTR++
			if arg != nil && !r.waitLeft() {
				return submitted, errWaitTimedOut
			}
			continue
		}
		return submitted, r.enterError(err)
	}
}

// enterError counts the errors a caller has to act on.
func (r *Ring) enterError(err error) error {
	switch {
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EBUSY):
		// Out of resources or the CQ overflowed: the caller must reap
		// CQEs, then submit again.
		r.stats.Busy++
	case errors.Is(err, unix.EBADR):
		// The kernel dropped CQEs (5.19+): never silent.
		r.stats.EBADR++
	}
	return err
}

// enterMayBlock is a private flag bit (never passed to the kernel) that
// selects the blocking syscall path.
const enterMayBlock = 1 << 31

// enter is io_uring_enter(2). A call that cannot block for long (no wait
// asked for) uses RawSyscall and saves Go's scheduler hand-off, about 300 ns
// per call here; a call that may block uses Syscall, so that the P is
// released to run other goroutines meanwhile.
func (r *Ring) enter(toSubmit, minComplete, flags uint32, arg *GetEventsArg) (int, error) {
	mayBlock := flags&enterMayBlock != 0 || minComplete > 0
	flags &^= enterMayBlock
	var argp, argsz uintptr
	if arg != nil {
		flags |= EnterExtArg
		argp, argsz = uintptr(unsafe.Pointer(arg)), unsafe.Sizeof(*arg)
	}
	r.stats.Enters++
	var n uintptr
	var errno unix.Errno
	if !mayBlock {
		n, _, errno = unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFd), uintptr(toSubmit), 0, uintptr(flags), argp, argsz)
	} else {
		n, _, errno = unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.enterFd), uintptr(toSubmit), uintptr(minComplete), uintptr(flags), argp, argsz)
	}
	if errno != 0 {
		return 0, os.NewSyscallError("io_uring_enter", errno)
	}
	r.stats.Submitted += uint64(n)
	return int(n), nil
}

// CQReady returns how many CQEs are waiting to be reaped.
func (r *Ring) CQReady() uint32 {
	return atomic.LoadUint32(r.cq.ktail) - atomic.LoadUint32(r.cq.khead)
}

// Peek copies up to len(cqes) ready CQEs into cqes, without a syscall, and
// returns how many. They stay in the ring until Advance. CQEs of the
// internal wait timeout are consumed and never returned.
func (r *Ring) Peek(cqes []CQE) int {
	cq := &r.cq
	head := atomic.LoadUint32(cq.khead)
	tail := atomic.LoadUint32(cq.ktail)
	n := 0
	for head+uint32(n) != tail && n < len(cqes) {
		c := r.cqeAt(head + uint32(n))
		if c.UserData == UserDataTimeout {
			if n > 0 {
				break // Advance must pass the batch before it can be consumed
			}
			head++
			atomic.StoreUint32(cq.khead, head)
			continue
		}
		cqes[n] = *c
		n++
	}
	return n
}

// ReadyCQEs returns the ready CQEs in place, without copying them: the run
// from the CQ head to the tail or to the end of the ring's array, whichever
// comes first (after a wrap, the rest comes on the next call, once Advance
// has passed this run). They stay valid until Advance. Unlike Peek it does
// not hide the CQEs of SubmitAndWaitTimeout's own TIMEOUT (kernels before
// 5.11): their user data is UserDataTimeout, which the caller must skip.
// A CQE32 ring has no []CQE view; it gets nil and uses PeekCQE32.
func (r *Ring) ReadyCQEs() []CQE {
	cq := &r.cq
	head := atomic.LoadUint32(cq.khead)
	n := atomic.LoadUint32(cq.ktail) - head
	if n == 0 || cq.shift != 0 {
		return nil
	}
	i := head & cq.mask
	n = min(n, cq.mask+1-i)
	return unsafe.Slice((*CQE)(unsafe.Add(cq.cqes, uintptr(i)*sizeofCQE)), n)
}

func (r *Ring) cqeAt(i uint32) *CQE {
	return (*CQE)(unsafe.Add(r.cq.cqes, uintptr(i&r.cq.mask)<<r.cq.shift*sizeofCQE))
}

// Advance marks n CQEs returned by Peek as consumed, returning their slots
// to the kernel.
func (r *Ring) Advance(n int) {
	if n > 0 {
		atomic.StoreUint32(r.cq.khead, atomic.LoadUint32(r.cq.khead)+uint32(n))
	}
}

// PeekCQE32 copies one ready CQE of a CQE32 ring, if any, and consumes it.
func (r *Ring) PeekCQE32(out *CQE32) bool {
	cq := &r.cq
	head := atomic.LoadUint32(cq.khead)
	if atomic.LoadUint32(cq.ktail) == head {
		return false
	}
	*out = *(*CQE32)(unsafe.Pointer(r.cqeAt(head)))
	atomic.StoreUint32(cq.khead, head+1)
	return true
}

// CQOverflowPending reports whether the kernel holds CQEs in its overflow
// list (the next enter must pass GETEVENTS, which Submit does).
func (r *Ring) CQOverflowPending() bool {
	return atomic.LoadUint32(r.sq.kflags)&SQCQOverflow != 0
}

// CQDropped returns how many CQEs the kernel dropped for lack of space
// (only without FEAT_NODROP, or when it could not allocate).
func (r *Ring) CQDropped() uint32 { return atomic.LoadUint32(r.cq.koverflow) }
