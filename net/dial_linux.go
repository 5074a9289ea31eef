package net

import (
	"context"
	"net"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// Dialer holds the options for connecting. The zero value dials on
// proactor.Default() with package net's defaults.
type Dialer struct {
	// Proactor runs the connection; nil means proactor.Default(). Each
	// connection is pinned to the next of its loops.
	Proactor *proactor.Proactor
	// Timeout bounds the whole dial, name resolution included; 0 means
	// none (the context may still bound it).
	Timeout time.Duration
	// KeepAlive is the TCP keep-alive period: 0 means package net's
	// default (15s), negative disables probes.
	KeepAlive time.Duration
}

// Dial connects to address on the proactor.Default() loops.
func Dial(network, address string) (net.Conn, error) {
	var d Dialer
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address with the zero Dialer.
func DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var d Dialer
	return d.DialContext(ctx, network, address)
}

// Dial connects to address.
func (d *Dialer) Dial(network, address string) (net.Conn, error) {
	return d.DialContext(context.Background(), network, address)
}

// DialContext connects to address. The connect runs as a Connect op, which
// ctx's cancellation or deadline (and Timeout) cancel. Names are resolved
// with net.DefaultResolver and the addresses tried in the order it gives;
// the first address's error is returned if none answers.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	opErr := func(addr net.Addr, err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: addr, Err: err}
	}
	p, err := pick(d.Proactor)
	if err != nil {
		return nil, opErr(nil, err)
	}
	if d.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d.Timeout)
		defer cancel()
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
		aps, err := resolveTCP(ctx, "dial", network, address)
		if err != nil {
			return nil, opErr(nil, err)
		}
		var first error
		for _, ap := range aps {
			c, err := d.dialTCP(ctx, p, network, ap)
			if err == nil {
				return c, nil
			}
			if first == nil {
				first = err
			}
			if ctx.Err() != nil {
				break // the rest would fail the same way
			}
		}
		return nil, first
	case "unix":
		raddr := &net.UnixAddr{Name: address, Net: "unix"}
		sa, err := unixSockaddr(address)
		if err != nil {
			return nil, opErr(raddr, err)
		}
		return dial(ctx, p, unix.AF_UNIX, "unix", &sa, raddr, nil)
	}
	return nil, opErr(nil, net.UnknownNetworkError(network))
}

func (d *Dialer) dialTCP(ctx context.Context, p *proactor.Proactor, network string, ap netip.AddrPort) (*Conn, error) {
	family := unix.AF_INET
	if !ap.Addr().Unmap().Is4() {
		family = unix.AF_INET6
	}
	raddr := tcpAddr(ap)
	sa, err := inetSockaddr(family, ap)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err}
	}
	return dial(ctx, p, family, network, &sa, raddr, func(s int) {
		// Best effort, as package net: the connection is up either way.
		_ = setsockoptInt(s, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		_ = setKeepAlive(s, d.KeepAlive)
	})
}

// dial makes one socket and connects it with a Connect op on the loop the
// Conn will live on.
func dial(ctx context.Context, p *proactor.Proactor, family int, network string, sa *sockaddr, raddr net.Addr, setup func(int)) (*Conn, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Addr: raddr, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, opErr(err)
	}
	s, err := newSocket(family)
	if err != nil {
		return nil, opErr(err)
	}
	// The Conn's own netFD runs the connect, so that it is cancelled and
	// waited for like any later op; the context's Done (closed at its
	// deadline too) is the cancel channel.
	c := newConn(p.Next(), s, network, nil, raddr)
	// The op holds the sockaddr the kernel reads, so it lives on the heap
	// until its final completion, which do waits for.
	op := &proactor.Connect{Fd: s, Addr: sa.raw, AddrLen: sa.len}
	res, err := c.fd.doCtx(&c.ww, op, ctx.Done())
	switch {
	case err != nil:
	case res == -int32(unix.ECANCELED) && ctx.Err() != nil:
		err = ctx.Err()
	case res < 0:
		err = errnoErr("connect", res)
	}
	if err != nil {
		_ = c.fd.Close()
		return nil, opErr(err)
	}
	if setup != nil {
		setup(s)
	}
	c.laddr = sockname(s, network, false)
	return c, nil
}
