package proactor

import (
	"github.com/ringo-io/ringo/ring"
)

// Op is an operation that runs on either driver (monoio's OpAble is the
// model). On io_uring it is one SQE, prepared by Prep. On epoll it is a
// readiness interest (PollFd, Readiness) and a non-blocking syscall
// (Perform) that returns what the CQE would have carried. Either way the
// handler receives (res, flags) with io_uring's meaning: res >= 0 is the
// result, res < 0 is -errno, and flags are ring.CQEF* bits.
//
// An Op value owns the memory the kernel may touch (buffers, iovecs,
// sockaddrs, paths): it must not be changed or reused until its final
// completion, which the Loop guarantees to deliver even after a cancel.
// The ops in this package are plain structs that callers may embed and
// reuse, so that a steady-state submission allocates nothing.
type Op interface {
	// Opcode is the io_uring opcode Prep uses. When the ring (or the
	// simulated kernel) lacks it, the io_uring driver runs the op through
	// the epoll path instead (per-op fallback).
	Opcode() ring.Op
	// Prep fills sqe for io_uring; the Loop sets UserData.
	Prep(sqe *ring.SQE)
	// PollFd is the descriptor whose readiness gates Perform.
	PollFd() int
	// Readiness is the epoll event Perform waits for (EPOLLIN or
	// EPOLLOUT), or 0 for an op on a descriptor that cannot be polled
	// (regular files, fsync, open, stat): the epoll driver runs those on a
	// bounded worker pool.
	Readiness() uint32
	// Perform makes one attempt with the non-blocking syscall and returns
	// the io_uring-style result; -EAGAIN means "not ready, wait". A
	// multishot op returns ring.CQEFMore in flags while it stays armed.
	Perform() (res int32, flags uint32)
}

// Handler receives an op's completion on the loop goroutine. It must not
// block: it runs between the loop's reaping of one completion and the next.
// A multishot op calls it once per CQE; the last call has no ring.CQEFMore.
type Handler func(res int32, flags uint32)

// Pseudo-opcodes, from the top of the byte down, one per kind so that each
// has its own metrics counter: no ring supports them, so the io_uring
// driver runs the ops that report them through its epoll path, where they
// run inline when their fd is ready. 255 is sendfile(2), 254 a buffered
// receive whose buffer the loop selects (opSelectRecv, buffers.go), and
// OpSyscall is for ops of other packages that exist only as a syscall.
const (
	opSendfile ring.Op = 255
	// OpSyscall is the opcode an Op defined outside this package reports
	// when it has no io_uring opcode and must always run as its
	// non-blocking syscall (fs's splice from a pipe to a socket does).
	OpSyscall ring.Op = 253
)
