package compat

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Small ops of the shape proactor's ops will have: a descriptor, the
// readiness that gates it and one non-blocking attempt that returns an
// io_uring-style result. They are reused across submissions, as slab slots
// are, so the benchmarks measure the reactor and not the test.

func errRes(err error) int32 {
	if err == nil {
		return 0
	}
	return -int32(err.(unix.Errno))
}

// recvOp is IORING_OP_RECV into buf.
type recvOp struct {
	fd  int
	buf []byte
	n   int // bytes of buf filled by the last successful attempt
}

func (o *recvOp) PollFd() int       { return o.fd }
func (o *recvOp) Readiness() uint32 { return unix.EPOLLIN }
func (o *recvOp) Perform() (int32, uint32) {
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(o.fd),
		uintptr(unsafe.Pointer(&o.buf[0])), uintptr(len(o.buf)), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return -int32(errno), 0
	}
	o.n = int(n)
	return int32(n), 0
}

// sendOp is IORING_OP_SEND of buf, with MSG_NOSIGNAL as ringo always passes.
type sendOp struct {
	fd  int
	buf []byte
}

func (o *sendOp) PollFd() int       { return o.fd }
func (o *sendOp) Readiness() uint32 { return unix.EPOLLOUT }
func (o *sendOp) Perform() (int32, uint32) {
	n, _, errno := unix.Syscall6(unix.SYS_SENDTO, uintptr(o.fd),
		uintptr(unsafe.Pointer(&o.buf[0])), uintptr(len(o.buf)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, 0, 0)
	if errno != 0 {
		return -int32(errno), 0
	}
	return int32(n), 0
}

// acceptOp is IORING_OP_ACCEPT, multishot (5.19) when multishot is set: it
// then reports FlagMore with every connection and stays armed.
type acceptOp struct {
	fd        int
	multishot bool
}

func (o *acceptOp) PollFd() int       { return o.fd }
func (o *acceptOp) Readiness() uint32 { return unix.EPOLLIN }
func (o *acceptOp) Perform() (int32, uint32) {
	nfd, _, err := unix.Accept4(o.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
	if err != nil {
		return errRes(err), 0
	}
	if o.multishot {
		return int32(nfd), FlagMore
	}
	return int32(nfd), 0
}

// preadOp is IORING_OP_READ at an offset. readiness is normally 0 (a regular
// file goes to the pool); a test sets EPOLLIN to hand a file in as if it
// were pollable. nowaitOnce makes the first attempt fail with -EAGAIN, as
// preadv2(RWF_NOWAIT) does when the page cache misses, so that the reactor
// has to try to wait on the file.
type preadOp struct {
	fd         int
	buf        []byte
	off        int64
	readiness  uint32
	nowaitOnce bool
}

func (o *preadOp) PollFd() int       { return o.fd }
func (o *preadOp) Readiness() uint32 { return o.readiness }
func (o *preadOp) Perform() (int32, uint32) {
	if o.nowaitOnce {
		o.nowaitOnce = false
		return -int32(unix.EAGAIN), 0
	}
	n, err := unix.Pread(o.fd, o.buf, o.off)
	if err != nil {
		return errRes(err), 0
	}
	return int32(n), 0
}

// funcOp runs fn; tests use it for ops with a scripted behaviour.
type funcOp struct {
	fd        int
	readiness uint32
	fn        func() (int32, uint32)
}

func (o *funcOp) PollFd() int              { return o.fd }
func (o *funcOp) Readiness() uint32        { return o.readiness }
func (o *funcOp) Perform() (int32, uint32) { return o.fn() }
