package compat

import (
	"encoding/binary"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// eventfdOne is the 8-byte counter increment eventfd(2) expects, in host
// byte order.
var eventfdOne = func() (b [8]byte) {
	binary.NativeEndian.PutUint64(b[:], 1)
	return
}()

// waker wakes Poll out of epoll_wait through an eventfd registered in the
// epoll set. The atomics keep the common case free of syscalls: a Wake while
// the loop is running only sets woken, which the loop reads before it
// sleeps.
type waker struct {
	fd int // the eventfd; immutable until close

	sleeping atomic.Bool // Poll is in, or about to enter, a blocking epoll_wait
	woken    atomic.Bool // a Wake or a worker result that no Poll has consumed
	pending  atomic.Bool // an eventfd write is outstanding; the loop has not read it

	buf [8]byte // loop goroutine only: target of the eventfd read

	// mu keeps a slow-path write from racing with close: without it a
	// Wake that saw sleeping just before Close could write to an fd
	// number that has since been reused.
	mu     sync.Mutex
	closed bool
}

// wake is Reactor.Wake: write the eventfd only if Poll might be asleep.
func (w *waker) wake() {
	w.woken.Store(true)
	if w.sleeping.Load() {
		w.write()
	}
}

// signal is how workers report results. It writes the eventfd even when
// Poll is not sleeping, because the loop may be waiting on the epoll fd from
// elsewhere (the io_uring driver's POLL_ADD on Fd), which sleeping does not
// track. File ops cost far more than this write, and pending collapses a
// burst of results into one write.
func (w *waker) signal() {
	w.woken.Store(true)
	w.write()
}

func (w *waker) write() {
	if !w.pending.CompareAndSwap(false, true) {
		return // a write is outstanding; the loop will see it
	}
	w.mu.Lock()
	if !w.closed {
		// EAGAIN would mean the counter is at its maximum, which is as
		// readable as it gets; nothing else can fail on a valid eventfd.
		_, _ = unix.Write(w.fd, eventfdOne[:])
	}
	w.mu.Unlock()
}

// drain consumes the eventfd after epoll reported it. Loop goroutine.
func (w *waker) drain() {
	// Read first, then clear pending. The other order loses wake-ups: a
	// signal between the clear and the read would write the eventfd and
	// have its count consumed here, leaving pending set with nothing
	// outstanding, so every later write would be skipped and a loop
	// parked on Fd would never wake. In this order a signal racing with
	// the read finds pending still set and skips its write, which is
	// safe: it stored woken first, and Poll cleared woken before calling
	// drain, so Pending reports it before anyone parks.
	_, _ = unix.Read(w.fd, w.buf[:])
	w.pending.Store(false)
}

func (w *waker) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if err := unix.Close(w.fd); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}
