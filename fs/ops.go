package fs

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
	"github.com/ringo-io/ringo/ring"
)

// fs-local ops: the proactor.Op shape for what proactor does not define yet
// (see the package doc's "Moving into proactor" note). Each runs through
// io_uring where the ring has its opcode; where it does not (an older or
// simulated kernel), the io_uring driver routes it to its epoll fallback,
// which calls Perform on a worker. So "FTRUNCATE on 6.9+, ftruncate(2)
// otherwise" needs no version check here: the engine's probe decides.

// ftruncateOp sets the size of Fd (IORING_OP_FTRUNCATE, 6.9).
type ftruncateOp struct {
	fd   int
	size int64
}

func (o *ftruncateOp) Opcode() ring.Op    { return ring.OpFtruncate }
func (o *ftruncateOp) PollFd() int        { return o.fd }
func (o *ftruncateOp) Readiness() uint32  { return 0 }
func (o *ftruncateOp) Prep(sqe *ring.SQE) { ring.PrepFtruncate(sqe, int32(o.fd), o.size) }
func (o *ftruncateOp) Perform() (int32, uint32) {
	return errnoRes(unix.Ftruncate(o.fd, o.size)), 0
}

// fadviseOp declares an access pattern (IORING_OP_FADVISE, 5.6). The SQE
// carries the length in 32 bits, so callers send longer ranges to
// fadvise(2) directly.
type fadviseOp struct {
	fd     int
	off    int64
	n      uint32
	advice int
}

func (o *fadviseOp) Opcode() ring.Op   { return ring.OpFadvise }
func (o *fadviseOp) PollFd() int       { return o.fd }
func (o *fadviseOp) Readiness() uint32 { return 0 }
func (o *fadviseOp) Prep(sqe *ring.SQE) {
	ring.PrepFadvise(sqe, int32(o.fd), uint64(o.off), o.n, uint32(o.advice))
}
func (o *fadviseOp) Perform() (int32, uint32) {
	return errnoRes(unix.Fadvise(o.fd, o.off, int64(o.n), o.advice)), 0
}

// spliceOutOp moves up to n bytes from the pipe r to the non-blocking
// socket sock with splice(2), run by the loop when the socket is writable
// (inline first), on both drivers: like proactor.Sendfile it reports an
// opcode no ring has, so the io_uring driver routes it to its epoll path.
//
// Why not IORING_OP_SPLICE for this half: SPLICE is not in io_uring's
// pollable set, so it always punts to io-wq and a full socket comes back as
// a literal -EAGAIN CQE; the loop then re-arms it as POLL_ADD with the
// SPLICE linked behind it, and on this kernel an ASYNC_CANCEL does not find
// an op waiting in such a link, so a context cancel or deadline could never
// end a transfer to a peer that stopped reading (observed: a hang). A
// non-blocking splice on the loop thread is also the cheaper way to drain
// a pipe (milvus-io/talon PR #591).
type spliceOutOp struct {
	r, sock int
	n       uint32
}

// opSpliceSyscall routes the op through the epoll path on every driver.
const opSpliceSyscall = proactor.OpSyscall

const spliceOutFlags = unix.SPLICE_F_MOVE | unix.SPLICE_F_NONBLOCK

func (o *spliceOutOp) Opcode() ring.Op   { return opSpliceSyscall }
func (o *spliceOutOp) PollFd() int       { return o.sock }
func (o *spliceOutOp) Readiness() uint32 { return unix.EPOLLOUT }
func (o *spliceOutOp) Prep(sqe *ring.SQE) {
	// Never called: no ring supports opSpliceSyscall.
	ring.PrepSplice(sqe, int32(o.r), -1, int32(o.sock), -1, o.n, spliceOutFlags)
}
func (o *spliceOutOp) Perform() (int32, uint32) {
	n, err := unix.Splice(o.r, nil, o.sock, nil, int(o.n), spliceOutFlags)
	if err != nil {
		return errnoRes(err), 0
	}
	return int32(n), 0
}

// errnoRes turns a syscall error into a CQE-style result.
func errnoRes(err error) int32 {
	if err == nil {
		return 0
	}
	if e, ok := err.(unix.Errno); ok {
		return -int32(e)
	}
	return -int32(unix.EIO)
}

// preadv2Nowait reads into p at off with flags RWF_NOWAIT (4.14): the
// kernel serves it from the page cache or answers EAGAIN instead of
// blocking. flags 0 is a plain read, for files in memory.
// One iovec on the stack is fine: the kernel reads it during the call only.
//
// It is a raw system call (no hand-off of the P to Go's scheduler): it
// never waits for a device, RWF_NOWAIT by its contract and a file in
// memory by its nature, so it costs what touching that much Go memory
// does, page faults included (a swapped-out tmpfs page is read in as a
// swapped-out heap page would be). One thing can make it wait: a seccomp
// user-notification supervisor (internal/seccomptest's Interrupt mode),
// which then needs a P of its own. The hand-off is 0.7 µs per call on
// the 2026-12-01 host: tmpfs 4 KiB reads at queue depth 1 went from
// 315-322k to 452-469k a second (fsbench -impl goroutines, 3 rounds).
func preadv2Nowait(fd int, p []byte, off int64, flags uintptr) (int, unix.Errno) {
	iov := unix.Iovec{Base: unsafe.SliceData(p)}
	iov.SetLen(len(p))
	// preadv2(fd, iov, iovcnt, pos_l, pos_h, flags); on 64-bit pos_l holds
	// the whole offset.
	r, _, e := unix.RawSyscall6(unix.SYS_PREADV2, uintptr(fd), uintptr(unsafe.Pointer(&iov)), 1, uintptr(off), 0, flags)
	if e != 0 {
		return 0, e
	}
	return int(r), 0
}
