package net

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FuzzSockaddr: any address that encodes decodes back to itself, and any
// bytes and length the kernel could hand back decode without a panic.
func FuzzSockaddr(f *testing.F) {
	f.Add("127.0.0.1", uint16(80), []byte{2, 0, 0, 80, 127, 0, 0, 1}, uint32(16))
	f.Add("::1", uint16(65535), []byte{10, 0}, uint32(28))
	f.Add("::ffff:10.0.0.1", uint16(0), []byte{1, 0, '@', 'x'}, uint32(4))
	f.Add("/tmp/s", uint16(0), []byte{1, 0, 0, 'a', 'b'}, uint32(5))
	f.Add("@abstract", uint16(0), []byte{}, uint32(200))
	f.Fuzz(func(t *testing.T, addr string, port uint16, raw []byte, n uint32) {
		// Decoding: the raw bytes as returned by getsockname/accept,
		// with any claimed length.
		var any unix.RawSockaddrAny
		copy((*[unix.SizeofSockaddrAny]byte)(unsafe.Pointer(&any))[:], raw)
		_ = rawToAddr(&any, n, "unix")
		_ = rawToAddr(&any, n, "tcp")

		// Round trips.
		if ip, err := netip.ParseAddr(addr); err == nil && ip.Zone() == "" {
			ap := netip.AddrPortFrom(ip, port)
			for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
				sa, err := inetSockaddr(fam, ap)
				if err != nil {
					if fam == unix.AF_INET6 || ip.Unmap().Is4() {
						t.Fatalf("%v on family %d: %v", ap, fam, err)
					}
					continue
				}
				got, ok := rawToAddr(&sa.raw, sa.len, "tcp").(*net.TCPAddr)
				if !ok || got.Port != int(port) || !got.IP.Equal(net.IP(ip.AsSlice())) {
					t.Fatalf("%v on family %d came back as %v", ap, fam, got)
				}
			}
		}
		sa, err := unixSockaddr(addr)
		if err != nil {
			if addr != "" && len(addr) < 108 && strings.IndexByte(addr, 0) < 0 {
				t.Fatalf("unix %q refused: %v", addr, err)
			}
			return
		}
		got, ok := rawToAddr(&sa.raw, sa.len, "unix").(*net.UnixAddr)
		if !ok || got.Name != addr {
			t.Fatalf("unix %q came back as %v", addr, got)
		}
	})
}
