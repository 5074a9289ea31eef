package net

import (
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// SyscallConn returns a raw view of the socket for options and syscalls
// package net does not wrap. Its Read and Write wait for readiness with a
// PollAdd op on the Conn's loop, honouring the deadlines and Close.
func (c *Conn) SyscallConn() (syscall.RawConn, error) {
	if !c.ok() {
		return nil, syscall.EINVAL
	}
	return rawConn{c}, nil
}

type rawConn struct{ c *Conn }

// Control calls f with the descriptor, which stays open until f returns.
func (rc rawConn) Control(f func(fd uintptr)) error {
	return rc.c.opErr("raw-control", rc.c.fd.control(f))
}

// control calls f with sysfd, which stays open until f returns.
func (fd *netFD) control(f func(fd uintptr)) error {
	if err := fd.incref(); err != nil {
		return err
	}
	defer fd.decref()
	f(uintptr(fd.sysfd))
	return nil
}

// Read calls f until it returns true, waiting for the socket to be
// readable between calls.
func (rc rawConn) Read(f func(fd uintptr) (done bool)) error {
	c := rc.c
	c.rmu.Lock()
	defer c.rmu.Unlock()
	return c.rawWait("raw-read", &c.fd.rd, &c.rw, &c.rpol, f)
}

// Write calls f until it returns true, waiting for the socket to be
// writable between calls.
func (rc rawConn) Write(f func(fd uintptr) (done bool)) error {
	c := rc.c
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.rawWait("raw-write", &c.fd.wd, &c.ww, &c.wpol, f)
}

func (c *Conn) rawWait(op string, d *deadline, w *waiter, poll *proactor.PollAdd, f func(uintptr) bool) error {
	for {
		dl, cancel, err := c.fd.begin(d)
		if err != nil {
			return c.opErr(op, err)
		}
		if f(uintptr(c.fd.sysfd)) {
			c.fd.end(d, false)
			return nil
		}
		res, perr := c.fd.do(w, poll, dl, cancel)
		why := c.fd.end(d, interrupted(res))
		switch {
		case perr != nil:
			return c.opErr(op, perr)
		case res >= 0:
			// Ready, or an error or hang-up: f sees which.
		case interrupted(res):
			if why != nil {
				return c.opErr(op, why)
			}
		case res == -int32(unix.EINTR) || res == -int32(unix.EAGAIN):
		default:
			return c.opErr(op, errnoErr("poll", res))
		}
	}
}

// File returns a copy of the socket's descriptor as an *os.File, as
// package net's TCPConn.File does (to pass it to a child process, say).
// Closing one does not close the other. The copy shares the socket, so it
// stays non-blocking: reading it from another program must expect EAGAIN.
// As with package net, calling the File's Fd method puts the shared
// socket in blocking mode, which would stall this Conn's own calls; use
// the File's SyscallConn in this process instead.
func (c *Conn) File() (*os.File, error) {
	if !c.ok() {
		return nil, syscall.EINVAL
	}
	f, err := c.fd.dupFile(c.net, c.laddr, c.raddr)
	return f, c.opErr("file", err)
}

// SyscallConn returns a raw view of the listening socket, for options
// package net does not wrap. As with package net's listeners, only
// Control is supported: Read and Write return syscall.EINVAL.
func (l *Listener) SyscallConn() (syscall.RawConn, error) {
	if l == nil || l.fd.loop == nil {
		return nil, syscall.EINVAL
	}
	return rawListener{l}, nil
}

// File returns a copy of the listening socket's descriptor as an
// *os.File, as package net's TCPListener.File does.
func (l *Listener) File() (*os.File, error) {
	if l == nil || l.fd.loop == nil {
		return nil, syscall.EINVAL
	}
	f, err := l.fd.dupFile(l.net, l.addr, nil)
	return f, l.opErr("file", err)
}

type rawListener struct{ l *Listener }

func (rl rawListener) Control(f func(fd uintptr)) error {
	return rl.l.opErr("raw-control", rl.l.fd.control(f))
}

func (rawListener) Read(func(uintptr) bool) error  { return syscall.EINVAL }
func (rawListener) Write(func(uintptr) bool) error { return syscall.EINVAL }

// dupFile dups sysfd (close-on-exec) into an *os.File named as package
// net names them: "tcp:127.0.0.1:80->127.0.0.1:5000".
func (fd *netFD) dupFile(network string, laddr, raddr net.Addr) (*os.File, error) {
	if err := fd.incref(); err != nil {
		return nil, err
	}
	defer fd.decref()
	nfd, err := unix.FcntlInt(uintptr(fd.sysfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("dupfd", err)
	}
	var ls, rs string
	if laddr != nil {
		ls = laddr.String()
	}
	if raddr != nil {
		rs = raddr.String()
	}
	return os.NewFile(uintptr(nfd), network+":"+ls+"->"+rs), nil
}
