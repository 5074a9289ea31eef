package net

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockaddr is a raw socket address ready for bind(2) or a Connect op.
type sockaddr struct {
	raw unix.RawSockaddrAny
	len uint32
}

// inetSockaddr encodes ap for a socket of family (AF_INET or AF_INET6; an
// IPv4 address on an AF_INET6 socket becomes its v4-mapped form).
func inetSockaddr(family int, ap netip.AddrPort) (sockaddr, error) {
	var sa sockaddr
	ip := ap.Addr()
	port := ap.Port()
	switch family {
	case unix.AF_INET:
		if !ip.Unmap().Is4() {
			return sa, &net.AddrError{Err: "non-IPv4 address", Addr: ip.String()}
		}
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw))
		p.Family = unix.AF_INET
		putPort(&p.Port, port)
		p.Addr = ip.Unmap().As4()
		sa.len = unix.SizeofSockaddrInet4
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa.raw))
		p.Family = unix.AF_INET6
		putPort(&p.Port, port)
		p.Addr = ip.As16()
		if z := ip.Zone(); z != "" {
			id, err := zoneID(z)
			if err != nil {
				return sa, err
			}
			p.Scope_id = id
		}
		sa.len = unix.SizeofSockaddrInet6
	default:
		return sa, unix.EAFNOSUPPORT
	}
	return sa, nil
}

// putPort stores port in network byte order, whatever the host's order.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(src *uint16) int {
	b := (*[2]byte)(unsafe.Pointer(src))
	return int(b[0])<<8 | int(b[1])
}

func zoneID(zone string) (uint32, error) {
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, &net.AddrError{Err: "unknown zone", Addr: zone}
	}
	return uint32(ifi.Index), nil
}

// unixSockaddr encodes a Unix socket path; a leading '@' names a socket in
// the abstract namespace, as in package net.
func unixSockaddr(name string) (sockaddr, error) {
	var sa sockaddr
	p := (*unix.RawSockaddrUnix)(unsafe.Pointer(&sa.raw))
	// The path needs room for its NUL unless it is abstract. A NUL inside
	// would cut a path short, or make a path abstract, silently: refused.
	if name == "" || len(name) >= len(p.Path) || strings.IndexByte(name, 0) >= 0 {
		return sa, unix.EINVAL
	}
	p.Family = unix.AF_UNIX
	for i := 0; i < len(name); i++ {
		p.Path[i] = int8(name[i])
	}
	sa.len = uint32(unsafe.Offsetof(p.Path)) + uint32(len(name))
	if name[0] == '@' {
		p.Path[0] = 0
	} else {
		sa.len++ // count the NUL, as the kernel's own sun_path does
	}
	return sa, nil
}

// sockname returns the local (or, with peer, the remote) address of s, as
// the net.Addr type package net uses for that network, or nil if unknown.
func sockname(s int, network string, peer bool) net.Addr {
	var raw unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	call := uintptr(unix.SYS_GETSOCKNAME)
	if peer {
		call = unix.SYS_GETPEERNAME
	}
	_, _, errno := unix.RawSyscall(call, uintptr(s), uintptr(unsafe.Pointer(&raw)), uintptr(unsafe.Pointer(&n)))
	if errno != 0 {
		return nil
	}
	return rawToAddr(&raw, n, network)
}

func rawToAddr(raw *unix.RawSockaddrAny, n uint32, network string) net.Addr {
	switch raw.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(raw))
		ip := make(net.IP, net.IPv4len)
		copy(ip, p.Addr[:])
		return &net.TCPAddr{IP: ip, Port: getPort(&p.Port)}
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(raw))
		ip := make(net.IP, net.IPv6len)
		copy(ip, p.Addr[:])
		a := &net.TCPAddr{IP: ip, Port: getPort(&p.Port)}
		if p.Scope_id != 0 {
			if ifi, err := net.InterfaceByIndex(int(p.Scope_id)); err == nil {
				a.Zone = ifi.Name
			} else {
				a.Zone = strconv.FormatUint(uint64(p.Scope_id), 10)
			}
		}
		return a
	case unix.AF_UNIX:
		p := (*unix.RawSockaddrUnix)(unsafe.Pointer(raw))
		// An unnamed socket has only the family (n == 2): its name is "".
		// An abstract one starts with NUL, shown as '@' as package net does.
		l := int(n) - int(unsafe.Offsetof(p.Path))
		l = max(0, min(l, len(p.Path)))
		b := make([]byte, 0, l)
		for i := 0; i < l; i++ {
			c := byte(p.Path[i])
			if c == 0 {
				if i == 0 {
					c = '@'
				} else {
					break
				}
			}
			b = append(b, c)
		}
		return &net.UnixAddr{Name: string(b), Net: network}
	}
	return nil
}

// Which families a TCP network may use.
func familyOK(network string, ip netip.Addr) bool {
	switch network {
	case "tcp4":
		return ip.Unmap().Is4()
	case "tcp6":
		return ip.Is6() && !ip.Is4In6()
	}
	return true
}

// resolveTCP turns "host:port" into the addresses to try, in the order the
// resolver gave them. An empty host is the wildcard when listening and the
// local system (loopback) when dialing, as in package net.
func resolveTCP(ctx context.Context, op, network, address string) ([]netip.AddrPort, error) {
	host, service, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	port, err := net.DefaultResolver.LookupPort(ctx, network, service)
	if err != nil {
		return nil, err
	}
	if port < 0 || port > 65535 {
		return nil, &net.AddrError{Err: "invalid port", Addr: address}
	}
	p := uint16(port)
	if host == "" {
		var ip netip.Addr
		switch {
		case op == "listen" && network == "tcp6":
			ip = netip.IPv6Unspecified()
		case op == "listen":
			ip = netip.IPv4Unspecified()
		case network == "tcp6":
			ip = netip.IPv6Loopback()
		default:
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		return []netip.AddrPort{netip.AddrPortFrom(ip, p)}, nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !familyOK(network, ip) {
			return nil, &net.AddrError{Err: "no suitable address found", Addr: host}
		}
		return []netip.AddrPort{netip.AddrPortFrom(ip, p)}, nil
	}
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	var out []netip.AddrPort
	for _, ia := range ips {
		ip, ok := netip.AddrFromSlice(ia.IP)
		if !ok {
			continue
		}
		ip = ip.WithZone(ia.Zone)
		if ip.Is4In6() {
			ip = ip.Unmap()
		}
		if familyOK(network, ip) {
			out = append(out, netip.AddrPortFrom(ip, p))
		}
	}
	if len(out) == 0 {
		return nil, &net.AddrError{Err: "no suitable address found", Addr: host}
	}
	return out, nil
}

func tcpAddr(ap netip.AddrPort) *net.TCPAddr {
	return net.TCPAddrFromAddrPort(ap)
}

// newSocket makes a non-blocking, close-on-exec stream socket.
func newSocket(family int) (int, error) {
	s, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	return s, nil
}

func bind(s int, sa *sockaddr) error {
	_, _, errno := unix.Syscall(unix.SYS_BIND, uintptr(s), uintptr(unsafe.Pointer(&sa.raw)), uintptr(sa.len))
	if errno != 0 {
		return os.NewSyscallError("bind", errno)
	}
	return nil
}

func setsockoptInt(s, level, name, v int) error {
	if err := unix.SetsockoptInt(s, level, name, v); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	return nil
}

// errnoErr is the standard wrapping of a negative CQE result.
func errnoErr(syscallName string, res int32) error {
	return os.NewSyscallError(syscallName, syscall.Errno(-res))
}
