package net

import (
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
	c := rc.c
	if err := c.fd.incref(); err != nil {
		return c.opErr("raw-control", err)
	}
	defer c.fd.decref()
	f(uintptr(c.fd.sysfd))
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
