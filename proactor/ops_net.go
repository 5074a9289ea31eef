package proactor

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/compat"
	"github.com/ringo-io/ringo/ring"
)

// The socket ops. Sockets that ringo creates are non-blocking, so that the
// same fd works on both drivers; io_uring arms its own poll for them.

// Accept accepts one connection on a listening socket (IORING_OP_ACCEPT,
// 5.5), or one per CQE while flags carry CQEFMore when Multishot (5.19).
// res is the new fd, non-blocking and close-on-exec.
type Accept struct {
	Fd        int
	Multishot bool
}

func (o *Accept) Opcode() ring.Op   { return ring.OpAccept }
func (o *Accept) PollFd() int       { return o.Fd }
func (o *Accept) Readiness() uint32 { return unix.EPOLLIN }
func (o *Accept) Prep(sqe *ring.SQE) {
	const flags = unix.SOCK_NONBLOCK | unix.SOCK_CLOEXEC
	if o.Multishot {
		ring.PrepAcceptMultishot(sqe, int32(o.Fd), flags)
	} else {
		ring.PrepAccept(sqe, int32(o.Fd), nil, nil, flags)
	}
}
func (o *Accept) Perform() (int32, uint32) {
	nfd, _, errno := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(o.Fd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if errno != 0 {
		return -int32(errno), 0
	}
	if o.Multishot {
		return int32(nfd), ring.CQEFMore
	}
	return int32(nfd), 0
}

// Connect connects a non-blocking socket to Addr (IORING_OP_CONNECT, 5.5).
// Addr holds a raw sockaddr of AddrLen bytes.
type Connect struct {
	Fd      int
	Addr    unix.RawSockaddrAny
	AddrLen uint32

	started bool // epoll: connect(2) issued, waiting for writability
}

func (o *Connect) Opcode() ring.Op   { return ring.OpConnect }
func (o *Connect) PollFd() int       { return o.Fd }
func (o *Connect) Readiness() uint32 { return unix.EPOLLOUT }
func (o *Connect) Prep(sqe *ring.SQE) {
	ring.PrepConnect(sqe, int32(o.Fd), unsafe.Pointer(&o.Addr), o.AddrLen)
}
func (o *Connect) Perform() (int32, uint32) {
	if !o.started {
		o.started = true
		_, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(o.Fd), uintptr(unsafe.Pointer(&o.Addr)), uintptr(o.AddrLen))
		switch errno {
		case 0:
			return 0, 0
		case unix.EINPROGRESS, unix.EINTR:
			return -int32(unix.EAGAIN), 0
		case unix.EAGAIN:
			// A unix listener's backlog is full. io_uring completes the
			// connect with -EAGAIN (checked on 6.18); so must epoll,
			// rather than wait for a writability that an unconnected
			// unix socket always has and then read SO_ERROR 0.
			o.started = false
			return -int32(unix.EAGAIN), compat.FlagAgainIsResult
		default:
			return -int32(errno), 0
		}
	}
	// Writable: the connect finished. Ask connect(2) again rather than
	// only reading SO_ERROR, as io_uring does on its retry: the second
	// call is what moves the socket to connected in the socket layer, so
	// that a later connect says EISCONN on both drivers, not 0 here.
	_, _, errno := unix.Syscall(unix.SYS_CONNECT, uintptr(o.Fd), uintptr(unsafe.Pointer(&o.Addr)), uintptr(o.AddrLen))
	switch errno {
	case 0:
		return 0, 0
	case unix.EALREADY, unix.EINPROGRESS, unix.EINTR:
		return -int32(unix.EAGAIN), 0
	case unix.EISCONN:
		// Connected before this call: SO_ERROR holds the outcome.
		v, err := unix.GetsockoptInt(o.Fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return errnoRes(err), 0
		}
		return -int32(v), 0
	default:
		return -int32(errno), 0
	}
}

// Recv receives into Buf (IORING_OP_RECV, 5.6). res is the byte count, 0 at
// end of stream.
type Recv struct {
	Fd    int
	Buf   []byte
	Flags int // MSG_* flags
}

func (o *Recv) Opcode() ring.Op   { return ring.OpRecv }
func (o *Recv) PollFd() int       { return o.Fd }
func (o *Recv) Readiness() uint32 { return unix.EPOLLIN }
func (o *Recv) Prep(sqe *ring.SQE) {
	ring.PrepRecv(sqe, int32(o.Fd), capRW(o.Buf), uint32(o.Flags))
}
func (o *Recv) Perform() (int32, uint32) {
	return recv(o.Fd, o.Buf, o.Flags), 0
}

// recv and send are raw system calls: with MSG_DONTWAIT they never sleep,
// so Go's hand-off of the P around a blocking call (entersyscall and
// exitsyscall) is pure cost, 0.7 µs a call on a host where a system call
// costs 1 µs. The epoll driver makes both per request: the file server's
// 1 KiB responses on epoll went from 21.7 to 15.5 µs of server CPU each
// (docs/BENCHMARKS.md).
func recv(fd int, buf []byte, flags int) int32 {
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)), uintptr(flags|unix.MSG_DONTWAIT), 0, 0)
	if errno != 0 {
		return -int32(errno)
	}
	return int32(n)
}

// Send sends Buf (IORING_OP_SEND, 5.6). res is the byte count, which may be
// short. MSG_NOSIGNAL is always added: a closed peer is -EPIPE, never
// SIGPIPE.
type Send struct {
	Fd    int
	Buf   []byte
	Flags int
}

func (o *Send) Opcode() ring.Op   { return ring.OpSend }
func (o *Send) PollFd() int       { return o.Fd }
func (o *Send) Readiness() uint32 { return unix.EPOLLOUT }
func (o *Send) Prep(sqe *ring.SQE) {
	ring.PrepSend(sqe, int32(o.Fd), capRW(o.Buf), uint32(o.Flags|unix.MSG_NOSIGNAL))
}
func (o *Send) Perform() (int32, uint32) {
	return send(o.Fd, o.Buf, o.Flags), 0
}

func send(fd int, buf []byte, flags int) int32 {
	n, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)), uintptr(flags|unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT), 0, 0)
	if errno != 0 {
		return -int32(errno)
	}
	return int32(n)
}

// SendZC sends Buf without copying it (IORING_OP_SEND_ZC, 6.0). It completes
// twice: first with the byte count and CQEFMore, then, once the kernel no
// longer reads Buf, with CQEFNotif. Buf must not change before the second.
// On epoll it is a copying send that reports the same two completions.
//
// The notification waits for the peer to acknowledge the bytes: a peer
// that stops reading holds it back, and a Do on the op with it, past any
// deadline (Buf is the kernel's until then), until the socket is reset or
// the peer reads. Proactor.Close does not wait for it: a send still
// waiting then keeps its op, and so Buf, referenced for the life of the
// process; its handler gets a final completion of -ECANCELED with
// CQEFNotif instead (the kernel may still read Buf), and a Do returns the
// data completion's result.
type SendZC struct {
	Fd    int
	Buf   []byte
	Flags int

	sent bool // epoll: the data completion was reported
}

// Opcode also starts a submission: the op may be sent again once done.
func (o *SendZC) Opcode() ring.Op {
	o.sent = false
	return ring.OpSendZC
}
func (o *SendZC) PollFd() int       { return o.Fd }
func (o *SendZC) Readiness() uint32 { return unix.EPOLLOUT }
func (o *SendZC) Prep(sqe *ring.SQE) {
	ring.PrepSendZC(sqe, int32(o.Fd), capRW(o.Buf), uint32(o.Flags|unix.MSG_NOSIGNAL), 0)
}
func (o *SendZC) Perform() (int32, uint32) {
	if o.sent {
		return 0, ring.CQEFNotif
	}
	if !zeroCopyFamily(o.Fd) {
		// io_uring refuses SEND_ZC on sockets without MSG_ZEROCOPY
		// support (unix sockets), still with two completions.
		o.sent = true
		return -int32(unix.EOPNOTSUPP), ring.CQEFMore
	}
	n := send(o.Fd, o.Buf, o.Flags)
	if n == -int32(unix.EAGAIN) {
		return n, 0
	}
	if n < 0 {
		// io_uring posts the notification even for a failed send.
		o.sent = true
		return n, ring.CQEFMore
	}
	o.sent = true
	return n, ring.CQEFMore
}

// zeroCopyFamily reports whether fd is a socket that supports zero-copy
// sends: only TCP and UDP over IPv4 and IPv6 do (SOCK_SUPPORT_ZC). Anything
// else, including a failed lookup, is left to send(2) to judge.
func zeroCopyFamily(fd int) bool {
	d, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	return err != nil || d == unix.AF_INET || d == unix.AF_INET6
}

// Shutdown shuts down part of a full-duplex connection (IORING_OP_SHUTDOWN, 5.11).
type Shutdown struct {
	Fd  int
	How int // unix.SHUT_RD, SHUT_WR, SHUT_RDWR
}

func (o *Shutdown) Opcode() ring.Op    { return ring.OpShutdown }
func (o *Shutdown) PollFd() int        { return o.Fd }
func (o *Shutdown) Readiness() uint32  { return 0 }
func (o *Shutdown) Prep(sqe *ring.SQE) { ring.PrepShutdown(sqe, int32(o.Fd), o.How) }
func (o *Shutdown) Perform() (int32, uint32) {
	return errnoRes(unix.Shutdown(o.Fd, o.How)), 0
}

// PollAdd waits until Fd has one of Events (poll(2) bits) (IORING_OP_POLL_ADD,
// 5.1). res is the events that fired.
type PollAdd struct {
	Fd     int
	Events uint32
}

func (o *PollAdd) Opcode() ring.Op    { return ring.OpPollAdd }
func (o *PollAdd) PollFd() int        { return o.Fd }
func (o *PollAdd) Readiness() uint32  { return pollToEpoll(o.Events) }
func (o *PollAdd) Prep(sqe *ring.SQE) { ring.PrepPollAdd(sqe, int32(o.Fd), o.Events) }
func (o *PollAdd) Perform() (int32, uint32) {
	fds := []unix.PollFd{{Fd: int32(o.Fd), Events: int16(o.Events)}}
	n, err := unix.Poll(fds, 0)
	if err != nil {
		return errnoRes(err), 0
	}
	if n == 0 {
		return -int32(unix.EAGAIN), 0
	}
	return int32(uint16(fds[0].Revents)), 0
}

func pollToEpoll(ev uint32) uint32 {
	if ev&unix.POLLOUT != 0 {
		return unix.EPOLLOUT
	}
	return unix.EPOLLIN
}

// Nop does nothing (IORING_OP_NOP, 5.1): the cost of a round trip.
type Nop struct{}

func (Nop) Opcode() ring.Op          { return ring.OpNop }
func (Nop) PollFd() int              { return -1 }
func (Nop) Readiness() uint32        { return unix.EPOLLIN }
func (Nop) Prep(sqe *ring.SQE)       { ring.PrepNop(sqe) }
func (Nop) Perform() (int32, uint32) { return 0, 0 }

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

// Timeout completes with -ETIME after D, or -ECANCELED if cancelled first.
// The loop serves it from its timer heap on both drivers: no SQE, no
// syscall, so many of them cost little.
type Timeout struct{ D time.Duration }

func (o *Timeout) Opcode() ring.Op    { return ring.OpTimeout }
func (o *Timeout) PollFd() int        { return -1 }
func (o *Timeout) Readiness() uint32  { return 0 }
func (o *Timeout) Prep(sqe *ring.SQE) { ring.PrepNop(sqe) } // never used: the loop serves it
func (o *Timeout) Perform() (int32, uint32) {
	return -int32(unix.ETIME), 0
}
