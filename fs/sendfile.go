package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// SendMethod chooses how SendFile moves file bytes to a socket.
type SendMethod int

const (
	// SendAuto is DefaultSendMethod.
	SendAuto SendMethod = iota
	// SendSyscall uses non-blocking sendfile(2): on the calling
	// goroutine while the socket has room, then as an op on the loop,
	// which waits for writability (both drivers; io_uring has no
	// sendfile opcode). See sendSyscall.
	SendSyscall
	// SendSplice uses two splices through a pooled pipe, sequenced:
	// file→pipe as IORING_OP_SPLICE (on epoll: splice(2) on a worker),
	// then pipe→socket as a non-blocking splice(2) on the loop when the
	// socket is writable (see spliceOutOp for why not a second SPLICE op).
	SendSplice
)

func (m SendMethod) String() string {
	switch m {
	case SendSyscall:
		return "sendfile"
	case SendSplice:
		return "splice"
	}
	return "auto"
}

// DefaultSendMethod is what SendAuto means. sendfile(2), by measurement
// (BenchmarkSendFile in this package, and performance.md §3.3): on this
// machine kind a SPLICE pair through the ring cost 1.9-2.3x a sendfile(2)
// per file at 1-16 KiB and 1.1-1.25x at 64 KiB-1 MiB, because SPLICE is not
// pollable and always punts to io-wq.
var DefaultSendMethod = SendSyscall

// ErrFileShrunk is matched by SendFile's error when the file ended before
// n bytes were sent (it was truncated during the transfer, or n went past
// its end); it also matches io.ErrUnexpectedEOF.
var ErrFileShrunk = errors.New("file ended before the requested bytes were sent")

// maxSendChunk bounds one sendfile(2) call: the kernel moves at most
// 0x7ffff000 bytes per call anyway, and the op's result is an int32.
const maxSendChunk = 1 << 30

// SendFile sends n bytes of f from off to the socket sock without copying
// them through user space, and returns how many it sent. It runs on loop
// (nil: f's loop). sock must be a non-blocking stream socket, as package
// net's are; a blocking one is refused, as it would stall the loop. Pass
// the loop that owns sock (net.Conn.Loop for package net's connections):
// the epoll driver keeps per-descriptor state on the loop an op ran on, and
// only the owner's close makes that loop forget it.
//
// A short transfer is continued until n bytes are sent. When the file ends
// first (truncated during the transfer) SendFile returns what it sent and
// an error matching ErrFileShrunk; when the peer goes away it returns what
// it sent and the errno (EPIPE, ECONNRESET); when ctx ends, ctx's error.
// Either way nothing is left in flight.
func SendFile(ctx context.Context, loop *proactor.Loop, sock int, f *File, off, n int64) (int64, error) {
	if f == nil {
		return 0, &PathError{Op: "sendfile", Err: unix.EBADF}
	}
	if !f.acquire() {
		return 0, f.pathErr("sendfile", ErrClosed)
	}
	defer f.release()
	if loop == nil {
		loop = f.loop
	}
	// The ops run on sock, out of reach of Close's cancel by fd (and a
	// peer that stops reading would hold them, and Close, for good):
	// Close cancels their context instead, the File's own or, with a
	// ctx of the caller's that can end, one that either cancels.
	sctx := f.closed
	if ctx != nil && ctx.Done() != nil {
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		defer context.AfterFunc(f.closed, cancel)()
		sctx = cctx
	}
	sent, err := sendFile(sctx, DefaultSendMethod, loop, sock, f.fd, f.name, off, n, !f.userNoInline)
	if err != nil && f.closing() && errors.Is(err, context.Canceled) &&
		(ctx == nil || ctx.Err() == nil) {
		err = f.pathErr("sendfile", ErrClosed)
	}
	return sent, err
}

// SendFileFd is SendFile for a descriptor fs does not own (nil loop: the
// default proactor's next loop).
func SendFileFd(ctx context.Context, loop *proactor.Loop, sock, fd int, off, n int64) (int64, error) {
	return SendFileMethod(ctx, SendAuto, loop, sock, fd, off, n)
}

// SendFileMethod is SendFileFd with an explicit method.
func SendFileMethod(ctx context.Context, m SendMethod, loop *proactor.Loop, sock, fd int, off, n int64) (int64, error) {
	if loop == nil {
		p, err := proactor.Default()
		if err != nil {
			return 0, &PathError{Op: "sendfile", Path: fdName(fd), Err: err}
		}
		loop = p.Next()
	}
	return sendFile(ctx, m, loop, sock, fd, fdName(fd), off, n, true)
}

func fdName(fd int) string { return fmt.Sprintf("fd %d", fd) }

func sendFile(ctx context.Context, m SendMethod, loop *proactor.Loop, sock, fd int, name string, off, n int64, inline bool) (int64, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if off < 0 || n < 0 {
		return 0, &PathError{Op: "sendfile", Path: name, Err: unix.EINVAL}
	}
	if n == 0 {
		return 0, nil
	}
	// One fcntl: a blocking socket would block the loop goroutine
	// inside the op, and everything else on the loop with it.
	fl, err := unix.FcntlInt(uintptr(sock), unix.F_GETFL, 0)
	if err != nil {
		return 0, os.NewSyscallError("fcntl", err)
	}
	if fl&unix.O_NONBLOCK == 0 {
		return 0, &PathError{Op: "sendfile", Path: name, Err: errors.New("fs: SendFile needs a non-blocking socket")}
	}
	if m == SendAuto {
		m = DefaultSendMethod
	}
	if m == SendSplice {
		sent, err, handled := sendSplice(ctx, loop, sock, fd, name, off, n)
		if handled {
			return sent, err
		}
		// No pipe to be had (the loop's pool is at its bound): sendfile
		// needs none.
	}
	return sendSyscall(ctx, loop, sock, fd, name, off, n, inline)
}

// doOn runs op on loop with ctx's deadline and cancel; res < 0 is returned
// as an error.
func doOn(ctx context.Context, loop *proactor.Loop, op proactor.Op) (int32, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	deadline, _ := ctx.Deadline()
	res, _, err := loop.DoUntil(op, deadline, ctx.Done())
	for err == nil && interrupted(res) && ctx.Err() == nil {
		res, _, err = loop.DoUntil(op, deadline, ctx.Done())
	}
	if err != nil {
		return 0, err
	}
	if res >= 0 {
		return res, nil
	}
	if res == -int32(unix.ECANCELED) || res == -int32(unix.ETIME) {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if res == -int32(unix.ETIME) && !deadline.IsZero() && time.Now().After(deadline) {
			return res, context.DeadlineExceeded
		}
	}
	return res, unix.Errno(-res)
}

func shrunk(name string, sent, n int64) error {
	return &PathError{Op: "sendfile", Path: name, Err: fmt.Errorf("%w (%d of %d bytes sent): %w", ErrFileShrunk, sent, n, io.ErrUnexpectedEOF)}
}

// sendErr names the operation and file; errors.Is still finds the errno
// or ctx's error inside.
func sendErr(op, name string, err error) error {
	return &PathError{Op: op, Path: name, Err: err}
}
