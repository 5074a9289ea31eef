package proactor

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

// The file ops. Regular files are not pollable, so on epoll they run on the
// worker pool (Readiness 0); set Pollable for a pipe, eventfd or socket,
// which must be non-blocking (epoll tries the op on the loop goroutine
// first, and io_uring answers -EAGAIN for it, which the loop waits out).

// curPos as an offset means "at the file position" (FEAT_RW_CUR_POS, 5.6).
const curPos = ^uint64(0)

// Read reads into Buf at Off (IORING_OP_READ, 5.6); Off < 0 reads at the
// file position. res is the byte count, 0 at end of file.
type Read struct {
	Fd       int
	Buf      []byte
	Off      int64
	Pollable bool
}

func (o *Read) Opcode() ring.Op   { return ring.OpRead }
func (o *Read) PollFd() int       { return o.Fd }
func (o *Read) Readiness() uint32 { return pollable(o.Pollable, unix.EPOLLIN) }
func (o *Read) Prep(sqe *ring.SQE) {
	ring.PrepRead(sqe, int32(o.Fd), capRW(o.Buf), offset(o.Off))
}
func (o *Read) Perform() (int32, uint32) {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(o.Buf)))
	if o.Off < 0 {
		return sysRes(unix.Syscall(unix.SYS_READ, uintptr(o.Fd), p, uintptr(len(o.Buf)))), 0
	}
	return sysRes(unix.Syscall6(unix.SYS_PREAD64, uintptr(o.Fd), p, uintptr(len(o.Buf)), uintptr(o.Off), 0, 0)), 0
}

// Write writes Buf at Off (IORING_OP_WRITE, 5.6); Off < 0 writes at the file
// position. res is the byte count, which may be short.
type Write struct {
	Fd       int
	Buf      []byte
	Off      int64
	Pollable bool
}

func (o *Write) Opcode() ring.Op   { return ring.OpWrite }
func (o *Write) PollFd() int       { return o.Fd }
func (o *Write) Readiness() uint32 { return pollable(o.Pollable, unix.EPOLLOUT) }
func (o *Write) Prep(sqe *ring.SQE) {
	ring.PrepWrite(sqe, int32(o.Fd), capRW(o.Buf), offset(o.Off))
}
func (o *Write) Perform() (int32, uint32) {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(o.Buf)))
	if o.Off < 0 {
		return sysRes(unix.Syscall(unix.SYS_WRITE, uintptr(o.Fd), p, uintptr(len(o.Buf)))), 0
	}
	return sysRes(unix.Syscall6(unix.SYS_PWRITE64, uintptr(o.Fd), p, uintptr(len(o.Buf)), uintptr(o.Off), 0, 0)), 0
}

// Readv reads into Iovs at Off (IORING_OP_READV, 5.1). The iovecs and the
// memory they point to belong to the op until it completes.
type Readv struct {
	Fd       int
	Iovs     []unix.Iovec
	Off      int64
	Pollable bool
}

func (o *Readv) Opcode() ring.Op   { return ring.OpReadv }
func (o *Readv) PollFd() int       { return o.Fd }
func (o *Readv) Readiness() uint32 { return pollable(o.Pollable, unix.EPOLLIN) }
func (o *Readv) Prep(sqe *ring.SQE) {
	ring.PrepReadv(sqe, int32(o.Fd), o.Iovs, offset(o.Off))
}
func (o *Readv) Perform() (int32, uint32) {
	return vectored(unix.SYS_PREADV, unix.SYS_READV, o.Fd, o.Iovs, o.Off), 0
}

// Writev writes Iovs at Off (IORING_OP_WRITEV, 5.1).
type Writev struct {
	Fd       int
	Iovs     []unix.Iovec
	Off      int64
	Pollable bool
}

func (o *Writev) Opcode() ring.Op   { return ring.OpWritev }
func (o *Writev) PollFd() int       { return o.Fd }
func (o *Writev) Readiness() uint32 { return pollable(o.Pollable, unix.EPOLLOUT) }
func (o *Writev) Prep(sqe *ring.SQE) {
	ring.PrepWritev(sqe, int32(o.Fd), o.Iovs, offset(o.Off))
}
func (o *Writev) Perform() (int32, uint32) {
	return vectored(unix.SYS_PWRITEV, unix.SYS_WRITEV, o.Fd, o.Iovs, o.Off), 0
}

func vectored(atOff, atPos uintptr, fd int, iovs []unix.Iovec, off int64) int32 {
	p := uintptr(unsafe.Pointer(unsafe.SliceData(iovs)))
	if off < 0 {
		return sysRes(unix.Syscall(atPos, uintptr(fd), p, uintptr(len(iovs))))
	}
	// preadv/pwritev take the offset split in two longs; on 64-bit the
	// high half is ignored.
	return sysRes(unix.Syscall6(atOff, uintptr(fd), p, uintptr(len(iovs)), uintptr(off), 0, 0))
}

// Fsync flushes Fd to storage (IORING_OP_FSYNC, 5.1); Datasync skips
// metadata that reading the data back does not need (fdatasync).
type Fsync struct {
	Fd       int
	Datasync bool
}

func (o *Fsync) Opcode() ring.Op   { return ring.OpFsync }
func (o *Fsync) PollFd() int       { return o.Fd }
func (o *Fsync) Readiness() uint32 { return 0 }
func (o *Fsync) Prep(sqe *ring.SQE) {
	var flags uint32
	if o.Datasync {
		flags = ring.FsyncDatasync
	}
	ring.PrepFsync(sqe, int32(o.Fd), flags)
}
func (o *Fsync) Perform() (int32, uint32) {
	if o.Datasync {
		return errnoRes(unix.Fdatasync(o.Fd)), 0
	}
	return errnoRes(unix.Fsync(o.Fd)), 0
}

// Openat opens Path relative to Dir (IORING_OP_OPENAT, 5.6). res is the fd.
// Path must end in a NUL byte (see CString).
type Openat struct {
	Dir   int
	Path  []byte
	Flags int
	Mode  uint32
}

func (o *Openat) Opcode() ring.Op   { return ring.OpOpenat }
func (o *Openat) PollFd() int       { return o.Dir }
func (o *Openat) Readiness() uint32 { return 0 }
func (o *Openat) Prep(sqe *ring.SQE) {
	ring.PrepOpenat(sqe, int32(o.Dir), cstr(o.Path), uint32(o.Flags|unix.O_CLOEXEC), o.Mode)
}
func (o *Openat) Perform() (int32, uint32) {
	return sysRes(unix.Syscall6(unix.SYS_OPENAT, uintptr(o.Dir), uintptr(unsafe.Pointer(cstr(o.Path))), uintptr(o.Flags|unix.O_CLOEXEC), uintptr(o.Mode), 0, 0)), 0
}

// Openat2 opens Path relative to Dir with How, whose Resolve flags can
// confine the lookup (RESOLVE_BENEATH) (IORING_OP_OPENAT2, 5.6).
type Openat2 struct {
	Dir  int
	Path []byte
	How  unix.OpenHow
}

func (o *Openat2) Opcode() ring.Op   { return ring.OpOpenat2 }
func (o *Openat2) PollFd() int       { return o.Dir }
func (o *Openat2) Readiness() uint32 { return 0 }
func (o *Openat2) Prep(sqe *ring.SQE) {
	o.How.Flags |= unix.O_CLOEXEC
	ring.PrepOpenat2(sqe, int32(o.Dir), cstr(o.Path), &o.How)
}
func (o *Openat2) Perform() (int32, uint32) {
	o.How.Flags |= unix.O_CLOEXEC
	return sysRes(unix.Syscall6(unix.SYS_OPENAT2, uintptr(o.Dir), uintptr(unsafe.Pointer(cstr(o.Path))), uintptr(unsafe.Pointer(&o.How)), unsafe.Sizeof(o.How), 0, 0)), 0
}

// Close closes Fd (IORING_OP_CLOSE, 5.6). Cancel the fd's ops first:
// closing does not cancel io_uring requests (Loop.CancelFd).
type Close struct{ Fd int }

func (o *Close) Opcode() ring.Op          { return ring.OpClose }
func (o *Close) PollFd() int              { return o.Fd }
func (o *Close) Readiness() uint32        { return 0 }
func (o *Close) Prep(sqe *ring.SQE)       { ring.PrepClose(sqe, int32(o.Fd)) }
func (o *Close) Perform() (int32, uint32) { return errnoRes(unix.Close(o.Fd)), 0 }

// Statx stats Path relative to Dir, or Dir itself with AT_EMPTY_PATH and an
// empty Path (IORING_OP_STATX, 5.6), into Stat.
type Statx struct {
	Dir   int
	Path  []byte
	Flags int
	Mask  uint32
	Stat  unix.Statx_t
}

func (o *Statx) Opcode() ring.Op   { return ring.OpStatx }
func (o *Statx) PollFd() int       { return o.Dir }
func (o *Statx) Readiness() uint32 { return 0 }
func (o *Statx) Prep(sqe *ring.SQE) {
	ring.PrepStatx(sqe, int32(o.Dir), cstr(o.Path), uint32(o.Flags), o.Mask, &o.Stat)
}
func (o *Statx) Perform() (int32, uint32) {
	return sysRes(unix.Syscall6(unix.SYS_STATX, uintptr(o.Dir), uintptr(unsafe.Pointer(cstr(o.Path))), uintptr(o.Flags), uintptr(o.Mask), uintptr(unsafe.Pointer(&o.Stat)), 0)), 0
}

// Fallocate allocates or punches space (IORING_OP_FALLOCATE, 5.6).
type Fallocate struct {
	Fd       int
	Mode     uint32
	Off, Len int64
}

func (o *Fallocate) Opcode() ring.Op   { return ring.OpFallocate }
func (o *Fallocate) PollFd() int       { return o.Fd }
func (o *Fallocate) Readiness() uint32 { return 0 }
func (o *Fallocate) Prep(sqe *ring.SQE) {
	ring.PrepFallocate(sqe, int32(o.Fd), o.Mode, uint64(o.Off), uint64(o.Len))
}
func (o *Fallocate) Perform() (int32, uint32) {
	return errnoRes(unix.Fallocate(o.Fd, o.Mode, o.Off, o.Len)), 0
}

// Splice moves up to N bytes from In to Out, one of which is a pipe
// (IORING_OP_SPLICE, 5.7); a pipe's offset is -1.
type Splice struct {
	In, Out       int
	OffIn, OffOut int64
	N             uint32
	Flags         uint32
}

func (o *Splice) Opcode() ring.Op   { return ring.OpSplice }
func (o *Splice) PollFd() int       { return o.Out }
func (o *Splice) Readiness() uint32 { return 0 }
func (o *Splice) Prep(sqe *ring.SQE) {
	ring.PrepSplice(sqe, int32(o.In), o.OffIn, int32(o.Out), o.OffOut, o.N, o.Flags)
}
func (o *Splice) Perform() (int32, uint32) {
	var offIn, offOut *int64
	if o.OffIn >= 0 {
		v := o.OffIn
		offIn = &v
	}
	if o.OffOut >= 0 {
		v := o.OffOut
		offOut = &v
	}
	n, err := unix.Splice(o.In, offIn, o.Out, offOut, int(o.N), int(o.Flags))
	if err != nil {
		return errnoRes(err), 0
	}
	return int32(n), 0
}

// Sendfile sends N bytes of File from Off to the socket Sock with
// sendfile(2). There is no io_uring opcode for it, so on both drivers it
// runs as a non-blocking syscall: inline when the socket has room, on
// writability otherwise. res is the byte count, which may be short.
type Sendfile struct {
	Sock, File int
	Off        int64
	N          int
}

func (o *Sendfile) Opcode() ring.Op   { return opSendfile }
func (o *Sendfile) PollFd() int       { return o.Sock }
func (o *Sendfile) Readiness() uint32 { return unix.EPOLLOUT }
func (o *Sendfile) Prep(sqe *ring.SQE) {
	// Never called: no ring supports opSendfile, so the io_uring driver
	// routes this op through the epoll path.
	ring.PrepNop(sqe)
}
func (o *Sendfile) Perform() (int32, uint32) {
	off := o.Off
	n, err := unix.Sendfile(o.Sock, o.File, &off, o.N)
	if err != nil {
		return errnoRes(err), 0
	}
	return int32(n), 0
}

func pollable(p bool, ev uint32) uint32 {
	if p {
		return ev
	}
	return 0
}

// maxRW is the most one read or write moves, as read(2) and write(2) cap
// it (Linux's MAX_RW_COUNT); it also keeps the result within an int32.
const maxRW = 0x7ffff000

// capRW cuts b to maxRW for an SQE, whose length field has 32 bits: a
// longer buffer would wrap around (4 GiB became a read of 0 bytes). The
// transfer is short instead, as from the syscall, and callers loop.
func capRW(b []byte) []byte { return b[:min(len(b), maxRW)] }

func offset(off int64) uint64 {
	if off < 0 {
		return curPos
	}
	return uint64(off)
}

func sysRes(r1, _ uintptr, errno unix.Errno) int32 {
	if errno != 0 {
		return -int32(errno)
	}
	return int32(r1)
}

// CString returns s as a NUL-terminated byte slice for the path ops.
func CString(s string) []byte {
	b := make([]byte, len(s)+1)
	copy(b, s)
	return b
}

// cstr returns a pointer to the NUL-terminated path b, or to an empty
// string if b is empty; a path without its NUL would let the kernel read
// past the slice, so that is refused as the empty path.
func cstr(b []byte) *byte {
	if len(b) == 0 || b[len(b)-1] != 0 {
		return &emptyPath[0]
	}
	return &b[0]
}

var emptyPath = [1]byte{0}
