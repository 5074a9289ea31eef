package net

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

const fastOpenEnv = "RINGO_TEST_FASTOPEN_NETNS"

// TestFastOpenEndToEnd: a listener with FastOpen takes data that came in
// the SYN. The server side of TCP Fast Open is off unless the
// net.ipv4.tcp_fastopen sysctl says so, and that is not this test's to
// change for the machine: it runs its body in a child in a network
// namespace of its own, where it sets the sysctl and brings up lo.
func TestFastOpenEndToEnd(t *testing.T) {
	if os.Getenv(fastOpenEnv) != "" {
		fastOpenChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestFastOpenEndToEnd$", "-test.v", "-test.count", "1")
	cmd.Env = append(os.Environ(), fastOpenEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	out, err := cmd.CombinedOutput()
	if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) {
		t.Skipf("cannot make a network namespace here (needs root, or CAP_SYS_ADMIN): %v", err)
	}
	require.NoError(t, err, "child:\n%s", out)
	// The child must have run its subtests, not skipped them.
	for _, sub := range []string{"uring", "epoll", "callback/uring", "callback/epoll", "callback/uring-enter", "callback/epoll-enter"} {
		require.Contains(t, string(out), "--- PASS: TestFastOpenEndToEnd/"+sub+" ", "child:\n%s", out)
	}
}

func fastOpenChild(t *testing.T) {
	loUp(t)
	require.NoError(t, os.WriteFile("/proc/sys/net/ipv4/tcp_fastopen", []byte("3"), 0))
	t.Run("callback", func(t *testing.T) {
		evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
			s := serve(t, p, "tcp4", newEchoHandler(), ServeOptions{FastOpen: true})
			addr := s.Addr().(*net.TCPAddr)
			before := fastOpenPassive(t)
			for i := range 2 {
				msg := []byte("fast open " + strconv.Itoa(i))
				fd := fastOpenSend(t, addr, msg)
				tv := unix.NsecToTimeval(int64(10 * time.Second))
				require.NoError(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))
				b := make([]byte, len(msg))
				n, err := unix.Read(fd, b)
				unix.Close(fd)
				require.NoError(t, err)
				require.Equal(t, msg, b[:n], "echo")
			}
			require.Greater(t, fastOpenPassive(t), before, "no connection was accepted with data in its SYN")
		})
	})
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		lc := ListenConfig{Proactor: p, FastOpen: true}
		ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		addr := ln.Addr().(*net.TCPAddr)
		before := fastOpenPassive(t)
		// The first connection may only fetch a cookie; the second then
		// carries its data in the SYN.
		for i := range 2 {
			msg := []byte("fast open " + strconv.Itoa(i))
			got := make(chan []byte, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					got <- nil
					return
				}
				defer c.Close()
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				b := make([]byte, len(msg))
				if _, err := io.ReadFull(c, b); err != nil {
					got <- nil
					return
				}
				got <- b
			}()
			fd := fastOpenSend(t, addr, msg)
			require.Equal(t, msg, <-got)
			unix.Close(fd)
		}
		require.Greater(t, fastOpenPassive(t), before, "no connection was accepted with data in its SYN")
	})
}

// fastOpenSend connects to addr with msg as TCP Fast Open data: in the
// SYN once the kernel holds a cookie for addr, after the handshake before.
func fastOpenSend(t *testing.T, addr *net.TCPAddr, msg []byte) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	sa := &unix.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	if err := unix.Sendto(fd, msg, unix.MSG_FASTOPEN, sa); err != nil {
		unix.Close(fd)
		t.Fatalf("sendto MSG_FASTOPEN: %v", err)
	}
	return fd
}

// loUp brings up the loopback interface of a new network namespace.
func loUp(t *testing.T) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(s)
	ifr, err := unix.NewIfreq("lo")
	require.NoError(t, err)
	require.NoError(t, unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr))
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	require.NoError(t, unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr))
}

// fastOpenPassive reads TcpExt TCPFastOpenPassive, the count of
// connections accepted with data in the SYN, from /proc/net/netstat.
func fastOpenPassive(t *testing.T) int64 {
	f, err := os.Open("/proc/net/netstat")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	var names []string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || fields[0] != "TcpExt:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, n := range names {
			if n == "TCPFastOpenPassive" && i < len(fields) {
				v, err := strconv.ParseInt(fields[i], 10, 64)
				require.NoError(t, err)
				return v
			}
		}
	}
	t.Fatal("no TcpExt TCPFastOpenPassive in /proc/net/netstat")
	return 0
}
