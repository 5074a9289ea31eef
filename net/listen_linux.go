package net

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// ListenConfig holds the options for listening. The zero value listens on
// proactor.Default() with package net's defaults.
type ListenConfig struct {
	// Proactor runs the listener and the connections it accepts, each
	// pinned to one of its loops in turn; nil means proactor.Default().
	Proactor *proactor.Proactor
	// ReusePort sets SO_REUSEPORT, so that several listeners (one per
	// loop, say) can share the address and the kernel spreads connections.
	ReusePort bool
	// Backlog is listen(2)'s queue length; 0 means the system's
	// net.core.somaxconn, as package net uses.
	Backlog int
	// KeepAlive is the keep-alive period of accepted TCP connections: 0
	// means package net's default (15s), negative disables probes.
	KeepAlive time.Duration
	// FastOpen enables TCP Fast Open (TCP_FASTOPEN) on the listener.
	FastOpen bool
	// NotSentLowat sets TCP_NOTSENT_LOWAT on the listener, which accepted
	// connections inherit: a connection is writable, and a write or
	// sendfile goes on, only while fewer than this many bytes sit in its
	// send queue not yet sent. 0 leaves the system's value
	// (net.ipv4.tcp_notsent_lowat, unlimited by default); negative is
	// refused with EINVAL.
	//
	// A server of large responses wants it small (16 KiB to 128 KiB): the
	// bytes it has sent then go out from its own writes, on its own CPU.
	// Without it, a write fills the socket buffer (megabytes, autotuned)
	// and most of the transmitting is done later, when an ACK opens the
	// window: in the receive path of the CPU that processes the ACK, which
	// on loopback is the client's. It also keeps memory per connection
	// down to what is in flight. docs/BENCHMARKS.md has the measurements.
	NotSentLowat int
}

// Listen listens on the proactor.Default() loops; network is "tcp", "tcp4",
// "tcp6" or "unix".
func Listen(network, address string) (net.Listener, error) {
	var lc ListenConfig
	return lc.Listen(context.Background(), network, address)
}

// fastOpenQueue is the TCP_FASTOPEN queue length: how many connections may
// be pending with data but without a completed handshake (the value many
// servers use; the kernel caps it with net.core.somaxconn).
const fastOpenQueue = 256

// Listen announces on the local address. ctx bounds name resolution only.
func (lc *ListenConfig) Listen(ctx context.Context, network, address string) (net.Listener, error) {
	p, err := pick(lc.Proactor)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	var l *Listener
	switch network {
	case "tcp", "tcp4", "tcp6":
		l, err = lc.listenTCP(ctx, p, network, address)
	case "unix":
		l, err = lc.listenUnix(p, address)
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

func pick(p *proactor.Proactor) (*proactor.Proactor, error) {
	if p != nil {
		return p, nil
	}
	return proactor.Default()
}

func (lc *ListenConfig) listenTCP(ctx context.Context, p *proactor.Proactor, network, address string) (*Listener, error) {
	s, err := lc.socketTCP(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return newListener(p, s, network, lc.KeepAlive, ""), nil
}

// socketTCP returns a listening TCP socket for address (shared by Listen
// and Serve).
func (lc *ListenConfig) socketTCP(ctx context.Context, network, address string) (int, error) {
	opErr := func(addr net.Addr, err error) error {
		return &net.OpError{Op: "listen", Net: network, Addr: addr, Err: err}
	}
	aps, err := resolveTCP(ctx, "listen", network, address)
	if err != nil {
		return -1, opErr(nil, err)
	}
	// Listen on one address, the first IPv4 one for "tcp" as package net
	// does, since a listener has one socket.
	ap := aps[0]
	if network == "tcp" {
		for _, a := range aps {
			if a.Addr().Unmap().Is4() {
				ap = a
				break
			}
		}
	}
	if network != "tcp6" {
		// A v4-mapped address is an IPv4 one to package net: it gets
		// an AF_INET socket, and ::ffff:0.0.0.0 is the wildcard.
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	addr := tcpAddr(ap)
	family, v6only := unix.AF_INET, false
	switch {
	case network == "tcp6" || (ap.Addr().Is6() && !ap.Addr().IsUnspecified()):
		family, v6only = unix.AF_INET6, network == "tcp6"
	case network == "tcp" && ap.Addr().IsUnspecified() && ipv6Works():
		// A wildcard "tcp" listener takes both families, like package
		// net's: one AF_INET6 socket with IPV6_V6ONLY off.
		family = unix.AF_INET6
		ap = netip.AddrPortFrom(netip.IPv6Unspecified(), ap.Port())
	}
	s, err := newSocket(family)
	if err != nil {
		return -1, opErr(addr, err)
	}
	if err := lc.setupTCP(s, family, v6only, ap); err != nil {
		unix.Close(s)
		return -1, opErr(addr, err)
	}
	return s, nil
}

func (lc *ListenConfig) setupTCP(s, family int, v6only bool, ap netip.AddrPort) error {
	// SO_REUSEADDR lets a restarted server bind while old connections sit
	// in TIME_WAIT, as package net sets on every listener.
	if err := setsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return err
	}
	if lc.ReusePort {
		if err := setsockoptInt(s, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return err
		}
	}
	if family == unix.AF_INET6 {
		if err := setsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolint(v6only)); err != nil {
			return err
		}
	}
	sa, err := inetSockaddr(family, ap)
	if err != nil {
		return err
	}
	if err := bind(s, &sa); err != nil {
		return err
	}
	if lc.FastOpen {
		if err := setsockoptInt(s, unix.IPPROTO_TCP, unix.TCP_FASTOPEN, fastOpenQueue); err != nil {
			return err
		}
	}
	if lc.NotSentLowat < 0 {
		return os.NewSyscallError("setsockopt", unix.EINVAL)
	}
	if lc.NotSentLowat > 0 {
		if err := setsockoptInt(s, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, lc.NotSentLowat); err != nil {
			return err
		}
	}
	return listen(s, lc.Backlog)
}

func listen(s, backlog int) error {
	if backlog <= 0 {
		backlog = somaxconn()
	}
	if err := unix.Listen(s, backlog); err != nil {
		return os.NewSyscallError("listen", err)
	}
	return nil
}

func (lc *ListenConfig) listenUnix(p *proactor.Proactor, address string) (*Listener, error) {
	s, path, err := lc.socketUnix(address)
	if err != nil {
		return nil, err
	}
	return newListener(p, s, "unix", -1, path), nil
}

// socketUnix returns a listening Unix socket for address and the path the
// caller must unlink when done ("" for an abstract address).
func (lc *ListenConfig) socketUnix(address string) (int, string, error) {
	addr := &net.UnixAddr{Name: address, Net: "unix"}
	opErr := func(err error) error {
		return &net.OpError{Op: "listen", Net: "unix", Addr: addr, Err: err}
	}
	sa, err := unixSockaddr(address)
	if err != nil {
		return -1, "", opErr(err)
	}
	s, err := newSocket(unix.AF_UNIX)
	if err != nil {
		return -1, "", opErr(err)
	}
	// No SO_REUSEADDR and no removal of an existing path: like package
	// net, binding to a path that exists fails with EADDRINUSE.
	if err := bind(s, &sa); err != nil {
		unix.Close(s)
		return -1, "", opErr(err)
	}
	if err := listen(s, lc.Backlog); err != nil {
		unix.Close(s)
		if address[0] != '@' {
			os.Remove(address)
		}
		return -1, "", opErr(err)
	}
	path := ""
	if address[0] != '@' {
		path = address // ours to unlink on Close
	}
	return s, path, nil
}

// somaxconn reads the kernel's cap on listen queues once, as package net
// does, so that a listener gets the longest queue the system allows.
var somaxconn = sync.OnceValue(func() int {
	const fallback = 4096 // the kernel default since 5.4
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		return fallback
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n <= 0 {
		return fallback
	}
	return n
})

// ipv6Works reports whether this system can open an IPv6 socket (IPv6 may
// be compiled out or disabled); checked once.
var ipv6Works = sync.OnceValue(func() bool {
	s, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(s)
	return true
})

// Listener is a listening socket whose Accept parks on an Accept op.
type Listener struct {
	fd        netFD
	p         *proactor.Proactor // accepted Conns go to its loops in turn
	net       string
	addr      net.Addr
	keepAlive time.Duration
	path      string // Unix socket path this listener created, or ""

	amu sync.Mutex
	aw  waiter          // guarded by amu
	acc proactor.Accept // guarded by amu
}

var _ net.Listener = (*Listener)(nil)

func newListener(p *proactor.Proactor, s int, network string, keepAlive time.Duration, path string) *Listener {
	l := &Listener{p: p, net: network, keepAlive: keepAlive, path: path}
	l.fd.init(s, p.Next())
	l.aw.init(l.fd.loop)
	l.acc.Fd = s
	l.addr = sockname(s, network, false)
	return l
}

// Accept waits for the next connection. When the process is out of
// descriptors (EMFILE, ENFILE) it backs off and retries instead of
// spinning, as net/http's server does, since a later Close will free some.
func (l *Listener) Accept() (net.Conn, error) {
	if l == nil || l.fd.loop == nil {
		return nil, syscall.EINVAL
	}
	l.amu.Lock()
	defer l.amu.Unlock()
	var backoff time.Duration
	ready := true // whether to try an accept from this goroutine first
	for {
		var res int32
		if ready {
			// Connections come in bursts, so the kernel's queue often
			// holds the next one: take it with a non-blocking accept4
			// from this goroutine, as package net does, and park an op
			// only when the queue is empty. An op per connection costs
			// a round trip through the loop, behind whatever else it
			// serves: with 1,000 echo connections opening at once the
			// last were accepted about 2 s late (client p99.9 2.1 s).
			if err := l.fd.enter(&l.fd.rd); err != nil {
				return nil, l.opErr("accept", err)
			}
			res = acceptNow(l.fd.sysfd)
			l.fd.decref()
			ready = res != -int32(unix.EAGAIN)
		}
		if !ready {
			dl, cancel, err := l.fd.begin(&l.fd.rd)
			if err != nil {
				return nil, l.opErr("accept", err)
			}
			var perr error
			res, perr = l.fd.do(&l.aw, &l.acc, dl, cancel)
			why := l.fd.end(&l.fd.rd, interrupted(res))
			if perr != nil {
				return nil, l.opErr("accept", perr)
			}
			if interrupted(res) {
				if why != nil {
					return nil, l.opErr("accept", why)
				}
				continue
			}
			// A connection came: more may follow it into the queue.
			ready = true
		}
		switch {
		case res >= 0:
			return l.newConn(int(res))
		case res == -int32(unix.EMFILE) || res == -int32(unix.ENFILE):
			// From 5ms doubling to 1s: net/http's values.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			if err := l.fd.sleep(&l.fd.rd, backoff); err != nil {
				return nil, l.opErr("accept", err)
			}
		case res == -int32(unix.EINTR) || res == -int32(unix.EAGAIN) || res == -int32(unix.ECONNABORTED):
			// ECONNABORTED: the peer gave up while queued; package
			// net's accept skips it too.
		default:
			return nil, l.opErr("accept", errnoErr("accept", res))
		}
	}
}

// acceptNow is one non-blocking accept4(2) on the listening socket, with
// the flags of proactor.Accept; it returns the new descriptor or the errno
// as a CQE would (-EAGAIN: none is queued).
func acceptNow(sysfd int) int32 {
	fd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(sysfd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -int32(e)
	}
	return int32(fd)
}

func (l *Listener) newConn(s int) (net.Conn, error) {
	if l.net != "unix" {
		// Best effort, as in package net: a failed option is not a
		// reason to drop a connection the peer already sees as open.
		_ = setsockoptInt(s, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		_ = setKeepAlive(s, l.keepAlive)
	}
	laddr := sockname(s, l.net, false)
	raddr := sockname(s, l.net, true)
	return newConn(l.p.Next(), s, l.net, laddr, raddr), nil
}

func (l *Listener) opErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return &net.OpError{Op: op, Net: l.net, Addr: l.addr, Err: err}
}

// Close stops listening: a blocked Accept returns net.ErrClosed. A Unix
// socket path the listener created is removed.
func (l *Listener) Close() error {
	if l == nil || l.fd.loop == nil {
		return syscall.EINVAL
	}
	err := l.fd.Close()
	if err == nil && l.path != "" {
		// Like package net: remove the path we bound, now that nothing
		// listens on it.
		_ = os.Remove(l.path)
	}
	return l.opErr("close", err)
}

// Addr returns the listener's network address.
func (l *Listener) Addr() net.Addr {
	if l == nil {
		return nil
	}
	return l.addr
}

// SetDeadline sets a deadline for Accept, the blocked call included; the
// zero time means none.
func (l *Listener) SetDeadline(t time.Time) error {
	if l == nil || l.fd.loop == nil {
		return syscall.EINVAL
	}
	if err := l.fd.setDeadline(t, true, false); err != nil {
		return &net.OpError{Op: "set", Net: l.net, Addr: l.addr, Err: err}
	}
	return nil
}
