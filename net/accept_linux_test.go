package net

import (
	"context"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
	"github.com/ringo-io/ringo/ring"
)

// acceptOps is how many ACCEPT ops p's loops have been given.
func acceptOps(p *proactor.Proactor) uint64 {
	var n uint64
	for _, m := range p.Metrics() {
		n += m.Submitted[ring.OpAccept]
	}
	return n
}

// TestAcceptTakesQueuedConnections: connections already in the kernel's
// accept queue are taken by Accept directly, with no op (and so no round
// trip through a loop) each; only an Accept that finds the queue empty
// parks an op. A burst of connections used to wait for one loop round trip
// per connection, 2 s for the last of 1,000 behind a busy loop.
func TestAcceptTakesQueuedConnections(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		lc := ListenConfig{Proactor: p}
		ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		const n = 20
		var clients []net.Conn
		defer func() {
			for _, c := range clients {
				c.Close()
			}
		}()
		for range n {
			// The handshake completes in the kernel: the connection
			// waits in the accept queue.
			c, err := net.Dial("tcp4", ln.Addr().String())
			require.NoError(t, err)
			clients = append(clients, c)
		}
		before := acceptOps(p)
		for range n {
			c, err := ln.Accept()
			require.NoError(t, err)
			c.Close()
		}
		require.Equal(t, before, acceptOps(p), "queued connections were accepted through ops")

		// An empty queue: Accept parks an op, and the next connection
		// completes it.
		got := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Close()
			}
			got <- err
		}()
		require.Eventually(t, func() bool { return acceptOps(p) > before }, 10*time.Second, time.Millisecond,
			"an Accept on an empty queue parked no op")
		c, err := net.Dial("tcp4", ln.Addr().String())
		require.NoError(t, err)
		clients = append(clients, c)
		select {
		case err := <-got:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("the parked Accept did not return")
		}
	})
}

// recvOps is how many RECV ops p's loops have been given.
func recvOps(p *proactor.Proactor) uint64 {
	var n uint64
	for _, m := range p.Metrics() {
		n += m.Submitted[ring.OpRecv]
	}
	return n
}

// waitReadable blocks until the socket has something to read (or a FIN).
func waitReadable(t *testing.T, c *Conn) {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(c.fd.sysfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 5000)
	require.NoError(t, err)
	require.Equal(t, 1, n, "nothing arrived in 5 s")
}

// TestReadTakesQueuedData: a Read whose bytes (or FIN) already wait in the
// socket takes them with a read(2) from its goroutine, with no RECV op;
// one that finds nothing parks an op and still gets the data when it
// comes, and the tries after such a miss go straight to the op for a while.
func TestReadTakesQueuedData(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		c, s := pair(t, p, "tcp")
		defer c.Close()
		defer s.Close()
		buf := make([]byte, 16)

		_, err := c.Write([]byte("ping"))
		require.NoError(t, err)
		waitReadable(t, s)
		before := recvOps(p)
		n, err := s.Read(buf)
		require.NoError(t, err)
		require.Equal(t, "ping", string(buf[:n]))
		require.Equal(t, before, recvOps(p), "queued bytes went through a RECV op")

		// Nothing queued: the read parks an op, and later ones skip the try.
		go func() {
			time.Sleep(20 * time.Millisecond)
			c.Write([]byte("pong"))
		}()
		n, err = s.Read(buf)
		require.NoError(t, err)
		require.Equal(t, "pong", string(buf[:n]))
		require.Greater(t, recvOps(p), before, "a read with nothing queued took no op")
		require.Positive(t, s.rskip)

		// A FIN already queued ends a fresh connection's Read the same way.
		c2, s2 := pair(t, p, "tcp")
		defer s2.Close()
		require.NoError(t, c2.Close())
		waitReadable(t, s2)
		before = recvOps(p)
		n, err = s2.Read(buf)
		require.Equal(t, 0, n)
		require.Equal(t, io.EOF, err)
		require.Equal(t, before, recvOps(p))
	})
}

// TestAcceptDeadlineOutOfFds: while accept4 fails with EMFILE, Accept
// backs off, but its deadline still ends it on time and a SetDeadline
// during a back-off takes effect at once. The back-off used to sleep its
// full step (up to 1s) past the deadline and ignore a new one.
func TestAcceptDeadlineOutOfFds(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		lc := ListenConfig{Proactor: p}
		l, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		require.NoError(t, err)
		ln := l.(*Listener)
		defer ln.Close()
		// A connection waits in the accept queue, so accept4 would
		// succeed but for the descriptor limit.
		c, err := net.Dial("tcp4", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()

		var old unix.Rlimit
		require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &old))
		lim := old
		lim.Cur = uint64(countFds() + 16)
		require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &lim))
		var fill []int
		defer func() {
			for _, fd := range fill {
				unix.Close(fd)
			}
			unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
		}()
		for {
			fd, err := unix.Dup(0)
			if err != nil {
				break
			}
			fill = append(fill, fd)
		}

		// Back-off steps 5, 10, 20 ... 640ms end 1.275s in: a 1.3s
		// deadline falls early in the 1s step that follows.
		const dl = 1300 * time.Millisecond
		start := time.Now()
		require.NoError(t, ln.SetDeadline(start.Add(dl)))
		_, err = ln.Accept()
		took := time.Since(start)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.Less(t, took, dl+600*time.Millisecond, "Accept overslept its deadline")

		// No deadline, then one set from another goroutine mid-back-off.
		require.NoError(t, ln.SetDeadline(time.Time{}))
		go func() {
			time.Sleep(1300 * time.Millisecond)
			ln.SetDeadline(time.Now())
		}()
		start = time.Now()
		_, err = ln.Accept()
		took = time.Since(start)
		require.ErrorIs(t, err, os.ErrDeadlineExceeded)
		require.Less(t, took, dl+600*time.Millisecond, "SetDeadline did not cut the back-off short")
	})
}
