package net

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// maxRW caps one Recv or Send: a CQE's result is an int32, and the stdlib
// caps a single read(2) or write(2) at 1 GiB for the same kind of reason.
const maxRW = 1 << 30

// Conn is a stream connection (TCP or Unix) whose I/O runs as proactor ops
// on one loop. It implements net.Conn, io.ReaderFrom and syscall.Conn, and
// the socket options of *net.TCPConn.
//
// At most one op is in flight per direction: Reads (and raw reads) are
// serialized by rmu, Writes (and ReadFrom, raw writes) by wmu, which is what
// lets each direction reuse one embedded op and allocate nothing per call.
type Conn struct {
	fd    netFD
	net   string   // "tcp", "tcp4", "tcp6" or "unix"; immutable
	laddr net.Addr // immutable
	raddr net.Addr // immutable

	rmu  sync.Mutex
	rw   waiter           // guarded by rmu
	recv proactor.Recv    // guarded by rmu
	rpol proactor.PollAdd // guarded by rmu
	// Direct reads (readNow), guarded by rmu: skip is how many Reads go
	// straight to the op before the next try, miss the length of the
	// current run of tries that found nothing.
	rskip, rmiss int

	wmu  sync.Mutex
	ww   waiter            // guarded by wmu
	send proactor.Send     // guarded by wmu
	wpol proactor.PollAdd  // guarded by wmu
	sf   proactor.Sendfile // guarded by wmu
}

var (
	_ net.Conn      = (*Conn)(nil)
	_ io.ReaderFrom = (*Conn)(nil)
	_ syscall.Conn  = (*Conn)(nil)
)

func newConn(loop *proactor.Loop, s int, network string, laddr, raddr net.Addr) *Conn {
	c := &Conn{net: network, laddr: laddr, raddr: raddr}
	c.fd.init(s, loop)
	c.rw.init(loop)
	c.ww.init(loop)
	c.recv.Fd = s
	c.send.Fd = s
	c.rpol = proactor.PollAdd{Fd: s, Events: unix.POLLIN}
	c.wpol = proactor.PollAdd{Fd: s, Events: unix.POLLOUT}
	return c
}

func (c *Conn) ok() bool { return c != nil && c.fd.loop != nil }

// Loop returns the proactor loop that runs this connection's ops. Code that
// submits its own ops on the socket (fs.SendFileFd, for one) must use this
// loop: Close forgets the descriptor on this loop only, and the epoll
// reactor of any other loop would keep state for the number, to be applied
// to whatever descriptor gets it next.
func (c *Conn) Loop() *proactor.Loop { return c.fd.loop }

func (c *Conn) opErr(op string, err error) error {
	if err == nil || err == io.EOF {
		return err
	}
	return &net.OpError{Op: op, Net: c.net, Source: c.laddr, Addr: c.raddr, Err: err}
}

// Read reads up to len(b) bytes with one receive. It returns io.EOF once
// the peer has shut down its side and everything it sent has been read.
func (c *Conn) Read(b []byte) (int, error) {
	if !c.ok() {
		return 0, syscall.EINVAL
	}
	if len(b) > maxRW {
		b = b[:maxRW]
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(b) == 0 {
		// As package net: no syscall, but a closed Conn is still an error.
		if err := c.fd.incref(); err != nil {
			return 0, c.opErr("read", err)
		}
		c.fd.decref()
		return 0, nil
	}
	if n, err, ok := c.readNow(b); ok {
		return n, err
	}
	for {
		dl, cancel, err := c.fd.begin(&c.fd.rd)
		if err != nil {
			return 0, c.opErr("read", err)
		}
		c.recv.Buf = b
		res, perr := c.fd.do(&c.rw, &c.recv, dl, cancel)
		c.recv.Buf = nil // do not keep the caller's buffer alive
		why := c.fd.end(&c.fd.rd, interrupted(res))
		switch {
		case perr != nil:
			return 0, c.opErr("read", perr)
		case res > 0:
			return int(res), nil
		case res == 0:
			return 0, io.EOF
		case interrupted(res):
			if why != nil {
				return 0, c.opErr("read", why)
			}
		case res == -int32(unix.EINTR) || res == -int32(unix.EAGAIN):
		default:
			// "read", not "recvfrom": the name package net reports, so
			// that messages and checks written for it still match.
			return 0, c.opErr("read", errnoErr("read", res))
		}
	}
}

// readNow tries a non-blocking read(2) from the calling goroutine, as
// package net always does first, and reports ok when that settled the
// Read. A busy server finds the next request already queued: with 1,000
// echo connections the standard library's reads found data 99% of the
// time (strace), where a RECV op costs a round trip through the loop and
// a park and wake-up of this goroutine. Where the data is not there yet
// (a connection waiting on its peer) the try is a wasted syscall, so after
// one that finds nothing the next Reads skip it, 1, 2, 4 and up to 16 of
// them, and a hit starts over.
func (c *Conn) readNow(b []byte) (n int, err error, ok bool) {
	if c.rskip > 0 {
		c.rskip--
		return 0, nil, false
	}
	if err := c.fd.enter(&c.fd.rd); err != nil {
		return 0, c.opErr("read", err), true
	}
	var r int
	for {
		r, err = unix.Read(c.fd.sysfd, b)
		if err != unix.EINTR {
			break
		}
	}
	c.fd.decref()
	switch {
	case r > 0:
		c.rmiss = 0
		return r, nil, true
	case err == nil:
		return 0, io.EOF, true
	case err == unix.EAGAIN:
		c.rskip = min(1<<c.rmiss, 16)
		c.rmiss = min(c.rmiss+1, 4)
		return 0, nil, false
	default:
		return 0, c.opErr("read", os.NewSyscallError("read", err)), true
	}
}

// Write writes all of b, looping over short sends, unless an error or the
// write deadline stops it; it returns how much was sent.
func (c *Conn) Write(b []byte) (int, error) {
	if !c.ok() {
		return 0, syscall.EINVAL
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if len(b) == 0 {
		// As package net: no data, but a passed deadline still says so.
		if err := c.fd.enter(&c.fd.wd); err != nil {
			return 0, c.opErr("write", err)
		}
		c.fd.decref()
		return 0, nil
	}
	nn := 0
	for nn < len(b) {
		dl, cancel, err := c.fd.begin(&c.fd.wd)
		if err != nil {
			return nn, c.opErr("write", err)
		}
		c.send.Buf = b[nn:min(len(b), nn+maxRW)]
		res, perr := c.fd.do(&c.ww, &c.send, dl, cancel)
		c.send.Buf = nil
		why := c.fd.end(&c.fd.wd, interrupted(res))
		switch {
		case perr != nil:
			return nn, c.opErr("write", perr)
		case res > 0:
			nn += int(res)
		case res == 0:
			return nn, c.opErr("write", io.ErrUnexpectedEOF)
		case interrupted(res):
			if why != nil {
				return nn, c.opErr("write", why)
			}
		case res == -int32(unix.EINTR) || res == -int32(unix.EAGAIN):
		default:
			return nn, c.opErr("write", errnoErr("write", res))
		}
	}
	return nn, nil
}

// Close cancels any blocked Read or Write (they return net.ErrClosed),
// waits for their ops to complete, and closes the socket. Called on a loop
// goroutine (a handler, posted function or timer), where waiting could
// stop that loop, it returns at once and the socket is closed moments
// later, by its own loop or by the last call still using it.
func (c *Conn) Close() error {
	if !c.ok() {
		return syscall.EINVAL
	}
	return c.opErr("close", c.fd.Close())
}

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr {
	if !c.ok() {
		return nil
	}
	return c.laddr
}

// RemoteAddr returns the remote network address.
func (c *Conn) RemoteAddr() net.Addr {
	if !c.ok() {
		return nil
	}
	return c.raddr
}

// SetDeadline sets the read and write deadlines. A blocked Read or Write
// sees the change at once; a deadline in the past makes it return
// os.ErrDeadlineExceeded promptly. The zero time means no deadline.
func (c *Conn) SetDeadline(t time.Time) error { return c.setDeadline(t, true, true) }

// SetReadDeadline sets the deadline for Read calls, the blocked one
// included.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.setDeadline(t, true, false) }

// SetWriteDeadline sets the deadline for Write calls, the blocked one
// included. After a timeout part of the data may have been sent.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.setDeadline(t, false, true) }

func (c *Conn) setDeadline(t time.Time, read, write bool) error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.setDeadline(t, read, write); err != nil {
		return &net.OpError{Op: "set", Net: c.net, Addr: c.laddr, Err: err}
	}
	return nil
}

// CloseRead shuts down the reading side: later Reads return io.EOF.
func (c *Conn) CloseRead() error { return c.shutdown(unix.SHUT_RD) }

// CloseWrite shuts down the writing side: the peer reads io.EOF once it
// has everything sent before, and may still write back.
func (c *Conn) CloseWrite() error { return c.shutdown(unix.SHUT_WR) }

func (c *Conn) shutdown(how int) error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.incref(); err != nil {
		return c.opErr("close", err)
	}
	defer c.fd.decref()
	// shutdown(2) never blocks, so it needs no op (and IORING_OP_SHUTDOWN
	// only exists since 5.11).
	if err := unix.Shutdown(c.fd.sysfd, how); err != nil {
		return c.opErr("close", os.NewSyscallError("shutdown", err))
	}
	return nil
}

// setsockopt applies one integer option under a reference, so that it
// never reaches a closed (and maybe reused) descriptor number.
func (c *Conn) setsockopt(level, name, v int) error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.incref(); err != nil {
		return c.opErr("set", err)
	}
	defer c.fd.decref()
	return c.opErr("set", setsockoptInt(c.fd.sysfd, level, name, v))
}

// SetNoDelay controls Nagle's algorithm (TCP only). It is off by default:
// TCP_NODELAY is set on every TCP Conn, as package net does.
func (c *Conn) SetNoDelay(noDelay bool) error {
	return c.setsockopt(unix.IPPROTO_TCP, unix.TCP_NODELAY, boolint(noDelay))
}

// SetKeepAlive enables or disables TCP keep-alive probes.
func (c *Conn) SetKeepAlive(keepalive bool) error {
	return c.setsockopt(unix.SOL_SOCKET, unix.SO_KEEPALIVE, boolint(keepalive))
}

// SetKeepAlivePeriod sets how long the connection stays idle before the
// first keep-alive probe, rounded up to whole seconds, as
// net.TCPConn.SetKeepAlivePeriod: 0 means 15 s, negative leaves it as is.
// It does not turn probes on or off (SetKeepAlive does).
func (c *Conn) SetKeepAlivePeriod(d time.Duration) error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.incref(); err != nil {
		return c.opErr("set", err)
	}
	defer c.fd.decref()
	return c.opErr("set", setKeepAliveParams(c.fd.sysfd, net.KeepAliveConfig{Idle: d, Interval: -1, Count: -1}))
}

// SetKeepAliveConfig configures keep-alive probes as
// net.TCPConn.SetKeepAliveConfig: Enable turns them on or off, and the
// timing is set either way; zero fields take package net's defaults (15 s,
// 15 s, 9 probes), negative ones leave the system's value.
func (c *Conn) SetKeepAliveConfig(config net.KeepAliveConfig) error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.incref(); err != nil {
		return c.opErr("set", err)
	}
	defer c.fd.decref()
	return c.opErr("set", setKeepAliveConfig(c.fd.sysfd, config))
}

// SetLinger sets SO_LINGER: sec < 0 is the default (close returns at once
// and the kernel sends what is left in the background); sec == 0 discards
// unsent data and resets the connection on Close; sec > 0 lingers.
func (c *Conn) SetLinger(sec int) error {
	if !c.ok() {
		return syscall.EINVAL
	}
	if err := c.fd.incref(); err != nil {
		return c.opErr("set", err)
	}
	defer c.fd.decref()
	l := unix.Linger{}
	if sec >= 0 {
		l.Onoff, l.Linger = 1, int32(sec)
	}
	if err := unix.SetsockoptLinger(c.fd.sysfd, unix.SOL_SOCKET, unix.SO_LINGER, &l); err != nil {
		return c.opErr("set", os.NewSyscallError("setsockopt", err))
	}
	return nil
}

// SetReadBuffer sets the socket's receive buffer size (SO_RCVBUF).
func (c *Conn) SetReadBuffer(bytes int) error {
	return c.setsockopt(unix.SOL_SOCKET, unix.SO_RCVBUF, bytes)
}

// SetWriteBuffer sets the socket's send buffer size (SO_SNDBUF).
func (c *Conn) SetWriteBuffer(bytes int) error {
	return c.setsockopt(unix.SOL_SOCKET, unix.SO_SNDBUF, bytes)
}

func boolint(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setKeepAlive applies a ListenConfig/Dialer KeepAlive value as package
// net does: negative leaves probes off, otherwise they are on with this
// idle time (0: 15 s) and package net's interval and count.
func setKeepAlive(s int, d time.Duration) error {
	if d < 0 {
		return nil
	}
	return setKeepAliveConfig(s, net.KeepAliveConfig{Enable: true, Idle: d})
}

// setKeepAliveConfig turns probes on and sets their timing: as package
// net, 0 is its default (15 s, 15 s, 9 probes) and negative leaves the
// system's value. Periods are rounded up to whole seconds.
func setKeepAliveConfig(s int, ka net.KeepAliveConfig) error {
	if err := setsockoptInt(s, unix.SOL_SOCKET, unix.SO_KEEPALIVE, boolint(ka.Enable)); err != nil {
		return err
	}
	return setKeepAliveParams(s, ka)
}

// setKeepAliveParams sets the idle time, interval and count of ka, as
// package net: 0 is its default, negative leaves the value alone.
func setKeepAliveParams(s int, ka net.KeepAliveConfig) error {
	for _, o := range []struct {
		name, v, def int
	}{
		{unix.TCP_KEEPIDLE, keepAliveSecs(ka.Idle), 15},
		{unix.TCP_KEEPINTVL, keepAliveSecs(ka.Interval), 15},
		{unix.TCP_KEEPCNT, ka.Count, 9},
	} {
		v := o.v
		if v < 0 {
			continue
		}
		if v == 0 {
			v = o.def
		}
		if err := setsockoptInt(s, unix.IPPROTO_TCP, o.name, v); err != nil {
			return err
		}
	}
	return nil
}
