package net

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// echoHandler echoes everything and records how connections end.
type echoHandler struct {
	opened, closed atomic.Int64
	loops          sync.Map // loop IDs connections opened on
	maxPending     atomic.Int64
	errs           chan error // OnClose errors, when not full
	onData         func(c *EventConn, data []byte)
}

func newEchoHandler() *echoHandler { return &echoHandler{errs: make(chan error, 64)} }

func (h *echoHandler) OnOpen(c *EventConn) { h.opened.Add(1); h.loops.Store(c.Loop().ID(), true) }
func (h *echoHandler) OnData(c *EventConn, data []byte) {
	if h.onData != nil {
		h.onData(c, data)
		return
	}
	c.Write(data)
	if p := int64(c.Pending()); p > h.maxPending.Load() {
		h.maxPending.Store(p)
	}
}
func (h *echoHandler) OnClose(c *EventConn, err error) {
	h.closed.Add(1)
	select {
	case h.errs <- err:
	default:
	}
}

func serve(t testing.TB, p *proactor.Proactor, network string, h Handler, opts ServeOptions) *Server {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	opts.Proactor = p
	s, err := Serve(network, addr, h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dialStd(t testing.TB, s *Server) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(s.Addr().Network(), s.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoCheck sends n random bytes in pieces and reads them back.
func echoCheck(t testing.TB, c net.Conn, n int) {
	t.Helper()
	want := make([]byte, n)
	rand.Read(want)
	c.SetDeadline(time.Now().Add(20 * time.Second))
	errc := make(chan error, 1)
	go func() {
		var err error
		for off := 0; off < n && err == nil; off += 32 << 10 {
			_, err = c.Write(want[off:min(n, off+32<<10)])
		}
		errc <- err
	}()
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read back: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("echoed bytes differ")
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestServeEcho(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, tc := range []struct {
			network string
			balance Balance
			plain   bool
		}{
			{"tcp", ReusePort, false}, {"tcp", RoundRobin, false}, {"tcp", LeastConns, false},
			{"unix", ReusePort, false}, {"tcp", ReusePort, true},
		} {
			name := fmt.Sprintf("%s/%v", tc.network, tc.balance)
			if tc.plain {
				name += "/plainrecv"
			}
			t.Run(name, func(t *testing.T) {
				h := newEchoHandler()
				forcePlainRecv = tc.plain
				s := serve(t, p, tc.network, h, ServeOptions{Balance: tc.balance})
				forcePlainRecv = false
				var wg sync.WaitGroup
				conns := make([]net.Conn, 8)
				for i := range conns {
					conns[i] = dialStd(t, s)
				}
				for i, c := range conns {
					wg.Add(1)
					go func(c net.Conn, n int) {
						defer wg.Done()
						echoCheck(t, c, n)
					}(c, 1+i*300_000) // up to ~2 MB: large transfers, short writes
				}
				wg.Wait()
				for _, c := range conns {
					c.Close()
				}
				waitFor(t, "OnClose", func() bool { return h.closed.Load() == int64(len(conns)) })
				for range conns {
					if err := <-h.errs; err != io.EOF {
						t.Errorf("OnClose err %v, want io.EOF", err)
					}
				}
				m := s.Metrics()
				if m.Accepted != int64(len(conns)) || m.Open != 0 || m.Closed != int64(len(conns)) || m.BytesIn != m.BytesOut || m.BytesIn == 0 {
					t.Errorf("metrics %+v", m)
				}
				// Spread over the loops; a unix socket (one listener)
				// falls back from ReusePort to RoundRobin.
				if tc.balance != ReusePort || tc.network == "unix" {
					n := 0
					h.loops.Range(func(any, any) bool { n++; return true })
					if n != len(p.Loops()) {
						t.Errorf("connections opened on %d of %d loops", n, len(p.Loops()))
					}
				}
			})
		}
	})
}

// TestServeKernels runs the echo on simulated older kernels: 5.10 (no
// buffer ring: PROVIDE_BUFFERS, a receive re-armed per buffer) and 5.19
// (buffer ring, no multishot recv).
func TestServeKernels(t *testing.T) {
	for _, k := range []string{"5.10", "5.19"} {
		t.Run(k, func(t *testing.T) {
			p, err := proactor.New(proactor.Options{Kernel: k, Loops: 2, Backend: proactor.Uring})
			if err != nil {
				t.Skipf("io_uring unavailable: %v", err)
			}
			defer p.Close()
			h := newEchoHandler()
			s := serve(t, p, "tcp", h, ServeOptions{})
			echoCheck(t, dialStd(t, s), 1<<20)
			s.Close()
			if h.closed.Load() != 1 {
				t.Fatalf("closed %d, want 1", h.closed.Load())
			}
		})
	}
}

func TestServeHalfClose(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		h := newEchoHandler()
		s := serve(t, p, "tcp", h, ServeOptions{})
		c := dialStd(t, s)
		msg := bytes.Repeat([]byte("half-close "), 10000)
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c) // the whole echo, then EOF
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("read %d bytes, %v; want %d, nil", len(got), err, len(msg))
		}
		if err := <-h.errs; err != io.EOF {
			t.Fatalf("OnClose err %v, want io.EOF", err)
		}
	})
}

// TestServeCloseWrite: the server half-closes and keeps reading.
func TestServeCloseWrite(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		h := newEchoHandler()
		got := make(chan string, 1)
		h.onData = func(c *EventConn, data []byte) {
			if string(data) == "bye" {
				c.Write([]byte("ok"))
				c.CloseWrite()
				return
			}
			got <- string(data)
		}
		s := serve(t, p, "tcp", h, ServeOptions{})
		c := dialStd(t, s)
		c.Write([]byte("bye"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "ok" {
			t.Fatalf("read %q, %v; want ok then EOF", b, err)
		}
		c.Write([]byte("after"))
		if g := <-got; g != "after" {
			t.Fatalf("server got %q after CloseWrite", g)
		}
	})
}

func TestServePeerReset(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		h := newEchoHandler()
		block := make([]byte, 64<<10)
		h.onData = func(c *EventConn, data []byte) {
			// Keep the queue full: more than the socket buffers hold.
			for c.Pending() < 4<<20 {
				c.Write(block)
			}
		}
		s := serve(t, p, "tcp", h, ServeOptions{WriteQueueLimit: -1})
		c := dialStd(t, s)
		c.Write([]byte("go"))
		buf := make([]byte, 1000)
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close() // RST while the server is mid-write
		select {
		case err := <-h.errs:
			if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
				t.Fatalf("OnClose err %v, want ECONNRESET or EPIPE", err)
			}
			var oe *net.OpError
			if !errors.As(err, &oe) {
				t.Fatalf("OnClose err %T, want *net.OpError", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no OnClose after reset")
		}
	})
}

// TestServeBackpressure: a peer that writes without reading fills the
// write queue; the server stops reading instead of queueing without bound.
func TestServeBackpressure(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		const limit = 64 << 10
		h := newEchoHandler()
		var heldPeak atomic.Int64
		h.onData = func(c *EventConn, data []byte) {
			c.Write(data)
			if p := int64(c.Pending()); p > h.maxPending.Load() {
				h.maxPending.Store(p)
			}
			heldPeak.Store(max(heldPeak.Load(), int64(c.heldPeak)))
		}
		s := serve(t, p, "tcp", h, ServeOptions{WriteQueueLimit: limit})
		c := dialStd(t, s)
		const total = 8 << 20
		want := make([]byte, total)
		rand.Read(want)
		var written atomic.Int64
		errc := make(chan error, 1)
		go func() {
			c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			for off := 0; off < total; off += 64 << 10 {
				n, err := c.Write(want[off : off+64<<10])
				written.Add(int64(n))
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		// The server pauses long before the peer has sent everything.
		waitFor(t, "backpressure", func() bool { return s.Metrics().Paused > 0 })
		time.Sleep(50 * time.Millisecond)
		got := make([]byte, total)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if n, err := io.ReadFull(c, got); err != nil {
			for _, el := range s.loops {
				ch := make(chan string, 1)
				el.l.Post(func() {
					str := ""
					for _, c := range el.conns {
						str += fmt.Sprintf("state %d armed %v cancel %v paused %v deferred %v eof %v q %d pending %d sending %v ops %d; ", c.state, c.recvArmed, c.recvCancel, c.paused, c.deferred, c.eof, len(c.q), c.pending, c.sending, c.ops)
					}
					ch <- str
				})
				t.Log(<-ch)
			}
			for _, m := range p.Metrics() {
				t.Logf("loop %d: rearms %d stalls %d inflight %d stale %d overflows %d send sub %d done %d", m.Loop, m.Rearms, m.BufferStalls, m.Inflight, m.Stale, m.CQOverflows, m.Submitted[26], m.Completed[26])
			}
			t.Fatalf("read %d of %d (%d written): %v; metrics %+v", n, total, written.Load(), err, s.Metrics())
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("echoed bytes differ")
		}
		// The queue may overshoot by one OnData's worth.
		if mp := h.maxPending.Load(); mp > limit+64<<10 {
			t.Fatalf("write queue reached %d bytes with a limit of %d", mp, limit)
		}
		// What arrived between pausing and the receive stopping is held.
		// On io_uring that is bounded by the loop's buffer pool, which
		// here (8 MiB by default) is as large as the whole transfer:
		// TestServeBackpressureBound checks that bound with a small pool
		// on both drivers. On epoll it is far less than the pool.
		if peak := heldPeak.Load(); p.Backend() == proactor.Epoll && peak > total/4 {
			t.Fatalf("held %d bytes received while paused", peak)
		}
		t.Logf("held at most %d bytes while paused", heldPeak.Load())
	})
}

func TestServeMaxConns(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		h := newEchoHandler()
		s := serve(t, p, "tcp", h, ServeOptions{MaxConns: 2})
		c1, c2 := dialStd(t, s), dialStd(t, s)
		echoCheck(t, c1, 10)
		echoCheck(t, c2, 10)
		c3 := dialStd(t, s)
		c3.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := c3.Read(make([]byte, 1)); err == nil {
			t.Fatalf("third connection read %d bytes, want EOF or reset", n)
		}
		if m := s.Metrics(); m.Rejected != 1 || m.Open != 2 {
			t.Fatalf("metrics %+v, want 1 rejected, 2 open", m)
		}
		c1.Close()
		waitFor(t, "close", func() bool { return s.Metrics().Open == 1 })
		echoCheck(t, dialStd(t, s), 10) // room again
	})
}

func TestServeIdleTimeout(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		h := newEchoHandler()
		s := serve(t, p, "tcp", h, ServeOptions{IdleTimeout: 300 * time.Millisecond})
		busy, idle := dialStd(t, s), dialStd(t, s)
		echoCheck(t, idle, 1)
		start := time.Now()
		idle.SetReadDeadline(time.Now().Add(10 * time.Second))
		for time.Since(start) < 700*time.Millisecond {
			echoCheck(t, busy, 10) // activity keeps it open
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("idle conn read err %v, want EOF", err)
		}
		if err := <-h.errs; !errors.Is(err, ErrIdleTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("OnClose err %v, want ErrIdleTimeout", err)
		}
		if m := s.Metrics(); m.IdleClosed != 1 || m.Open != 1 {
			t.Fatalf("metrics %+v, want 1 idle-closed, 1 open", m)
		}
	})
}

// stuffer queues more than a socket holds as soon as a connection opens,
// then (close) closes it gracefully; it reports each OnClose error.
type stuffer struct {
	close bool
	size  int           // 0: 32 MiB
	busy  time.Duration // how long OnOpen holds the loop after the Write
	errs  chan error
}

func (h *stuffer) OnOpen(c *EventConn) {
	c.Write(make([]byte, cmp.Or(h.size, 32<<20)))
	time.Sleep(h.busy)
	if h.close {
		c.Close()
	}
}
func (h *stuffer) OnData(c *EventConn, data []byte) {}
func (h *stuffer) OnClose(c *EventConn, err error)  { h.errs <- err }

// TestServeSlowReader: a peer that reads slowly but steadily is not cut
// off by WriteTimeout or IdleTimeout, though the server's socket buffer
// (megabytes on loopback) keeps the socket unwritable for longer than the
// timeout while it drains: that progress shows only in the kernel's send
// queue. Both timeouts used to abort it within one timeout.
func TestServeSlowReader(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, tc := range []struct {
			name string
			opts ServeOptions
		}{
			{"write timeout", ServeOptions{WriteTimeout: 100 * time.Millisecond}},
			{"idle timeout on close", ServeOptions{IdleTimeout: 100 * time.Millisecond}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.opts.WriteQueueLimit = -1
				// About 8 MB/s, in steps far shorter than the timeout.
				pacedRead(t, p, tc.opts, 6<<20, 128<<10, 15*time.Millisecond)
			})
		}
	})
}

// TestServeBurstyReader: a peer that reads in bursts (512 KiB every 70 ms
// under a 100 ms WriteTimeout) is progress too; the sweep used to look at
// the kernel's queue only late in a stall, and missed the bursts.
func TestServeBurstyReader(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		pacedRead(t, p, ServeOptions{WriteTimeout: 100 * time.Millisecond, WriteQueueLimit: -1}, 8<<20, 512<<10, 70*time.Millisecond)
	})
}

// pacedRead serves size bytes to a peer that reads chunk bytes after each
// pause, and fails unless all of them arrive and the connection closes
// cleanly. The server may rightly cut off a reader that was itself away
// for nearly the timeout (a loaded machine can stall the test's goroutine
// that long), so such a run is tried again, up to three times.
func pacedRead(t *testing.T, p *proactor.Proactor, opts ServeOptions, size, chunk int, pause time.Duration) {
	t.Helper()
	timeout := max(opts.WriteTimeout, opts.IdleTimeout)
	for attempt := 1; ; attempt++ {
		h := &stuffer{close: true, size: size, errs: make(chan error, 1)}
		s := serve(t, p, "tcp", h, opts)
		c := dialStd(t, s)
		c.(*net.TCPConn).SetReadBuffer(64 << 10)
		buf := make([]byte, chunk)
		var n int
		var err error
		var gap time.Duration // longest time the reader was away
		last := time.Now()
		for err == nil {
			time.Sleep(pause)
			gap = max(gap, time.Since(last))
			var m int
			m, err = io.ReadFull(c, buf)
			last = time.Now()
			n += m
		}
		c.Close()
		closeErr := <-h.errs
		if n == size && closeErr == nil {
			return
		}
		if gap >= timeout*9/10 && attempt < 3 {
			t.Logf("attempt %d: the reader was away %v, near the %v timeout: the cut was right; again", attempt, gap, timeout)
			continue
		}
		t.Fatalf("reader got %d of %d bytes (away at most %v): %v; OnClose: %v", n, size, gap, err, closeErr)
	}
}

// TestServeIdleBusyHandler: a handler that holds its loop past
// IdleTimeout between queueing a response and returning does not get the
// connection cut off: its queue never had a chance to move. sweep used to
// take a stall clock that was never started (no WriteTimeout) for a look
// at the kernel's queue, and closed it at its first sweep.
func TestServeIdleBusyHandler(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		const size = 1 << 20
		h := &stuffer{close: true, size: size, busy: 150 * time.Millisecond, errs: make(chan error, 1)}
		s := serve(t, p, "tcp", h, ServeOptions{IdleTimeout: 100 * time.Millisecond, WriteQueueLimit: -1})
		c := dialStd(t, s)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, c)
		if n != size || err != nil {
			t.Fatalf("read %d of %d bytes: %v", n, size, err)
		}
		if err := <-h.errs; err != nil {
			t.Fatalf("OnClose: %v", err)
		}
	})
}

// TestServeNonReader: a peer that never reads cannot keep a connection
// open. WriteTimeout aborts an open one whose queue stalls, and
// IdleTimeout aborts a graceful close that cannot finish flushing. Both
// close within a few sweeps of the timeout.
func TestServeNonReader(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, tc := range []struct {
			name string
			h    *stuffer
			opts ServeOptions
			want error
		}{
			{"write timeout", &stuffer{}, ServeOptions{WriteTimeout: 200 * time.Millisecond}, ErrWriteTimeout},
			{"idle timeout on close", &stuffer{close: true}, ServeOptions{IdleTimeout: 200 * time.Millisecond}, ErrIdleTimeout},
			{"idle timeout while open", &stuffer{}, ServeOptions{IdleTimeout: 200 * time.Millisecond}, ErrIdleTimeout},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.h.errs = make(chan error, 1)
				tc.opts.WriteQueueLimit = -1
				s := serve(t, p, "tcp", tc.h, tc.opts)
				// Before the dial: the timeouts count from the accept,
				// and a loaded machine can stall this goroutine past
				// them between the dial and the next line.
				start := time.Now()
				c := dialStd(t, s)
				c.(*net.TCPConn).SetReadBuffer(4096)
				select {
				case err := <-tc.h.errs:
					if !errors.Is(err, tc.want) || !errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("OnClose err %v, want %v", err, tc.want)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("still open 5 s after the peer stopped reading: %+v", s.Metrics())
				}
				if el := time.Since(start); el < 150*time.Millisecond {
					t.Fatalf("closed after %v, before the timeout", el)
				}
				// OnClose runs just before the connection is counted closed.
				m := s.Metrics()
				for i := 0; m.Open != 0 && i < 100; i++ {
					time.Sleep(10 * time.Millisecond)
					m = s.Metrics()
				}
				if m.Open != 0 || (tc.want == ErrWriteTimeout) != (m.WriteTimeouts == 1) {
					t.Fatalf("metrics %+v", m)
				}
			})
		}
	})
}

// TestServeEMFILE runs out of descriptors while connections wait: accept
// backs off (a few tries, not a spin) and serves them once fds are back.
func TestServeEMFILE(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		// Client sockets first: they need descriptors too.
		var clients []int
		for i := 0; i < 3; i++ {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			clients = append(clients, fd)
		}
		defer func() {
			for _, fd := range clients {
				unix.Close(fd)
			}
		}()
		var old unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &old); err != nil {
			t.Fatal(err)
		}
		lim := old
		lim.Cur = uint64(countFds() + 64)
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			t.Fatal(err)
		}
		// Serve after lowering the limit: io_uring's accept reads
		// RLIMIT_NOFILE when the SQE is prepared, not when it accepts.
		h := newEchoHandler()
		s := serve(t, p, "tcp", h, ServeOptions{})
		sa := &unix.SockaddrInet4{Port: s.Addr().(*net.TCPAddr).Port, Addr: [4]byte{127, 0, 0, 1}}
		var fill []int
		release := func() {
			for _, fd := range fill {
				unix.Close(fd)
			}
			fill = nil
			unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
		}
		defer release()
		for range 3 { // again after a pause: closes elsewhere free some
			for {
				fd, err := unix.Dup(0)
				if err != nil {
					break
				}
				fill = append(fill, fd)
			}
			time.Sleep(5 * time.Millisecond)
		}
		before := s.Metrics().AcceptBackoff
		for _, fd := range clients {
			// Blocking connect: the handshake completes in the backlog.
			if err := connectRetry(fd, sa); err != nil {
				release()
				t.Fatal(err)
			}
		}
		time.Sleep(200 * time.Millisecond)
		m := s.Metrics()
		release()
		if m.Accepted != 0 || m.AcceptBackoff <= before {
			t.Fatalf("with no fds: metrics %+v, want backoffs and nothing accepted", m)
		}
		// 5ms doubling: about 6 tries in 200ms per listener, not thousands.
		if n := m.AcceptBackoff - before; n > 40 {
			t.Fatalf("%d accept retries in 200ms: spinning", n)
		}
		for _, fd := range clients {
			tv := unix.Timeval{Sec: 10}
			unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
			if _, err := eintr(func() (int, error) { return unix.Write(fd, []byte("x")) }); err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 1)
			if n, err := eintr(func() (int, error) { return unix.Read(fd, b) }); n != 1 || err != nil {
				t.Fatalf("echo after backoff: %d, %v", n, err)
			}
		}
	})
}

// TestServeFairness floods one connection and times round trips on
// another on the same loop: the flood must not starve it.
func TestServeFairness(t *testing.T) {
	for _, b := range []proactor.Backend{proactor.Uring, proactor.Epoll} {
		t.Run(b.String(), func(t *testing.T) {
			p, err := proactor.New(proactor.Options{Backend: b, Loops: 1})
			if err != nil {
				t.Skipf("%v unavailable: %v", b, err)
			}
			defer p.Close()
			h := newEchoHandler()
			h.onData = func(c *EventConn, data []byte) {
				if c.Context() == nil { // the flooder sends 'F'
					c.SetContext(data[0] == 'F')
				}
				if !c.Context().(bool) {
					c.Write(data)
				}
			}
			s := serve(t, p, "tcp", h, ServeOptions{TurnBytes: 16 << 10, GreedyTurns: 2})
			flood := dialStd(t, s)
			stop := make(chan struct{})
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := bytes.Repeat([]byte("F"), 256<<10)
				for {
					select {
					case <-stop:
						return
					default:
					}
					flood.SetWriteDeadline(time.Now().Add(time.Second))
					flood.Write(buf)
				}
			}()
			waitFor(t, "flood", func() bool { return s.Metrics().BytesIn > 4<<20 })
			c := dialStd(t, s)
			var rtts []time.Duration
			msg := make([]byte, 64)
			for i := 0; i < 200; i++ {
				start := time.Now()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(msg); err != nil {
					t.Fatal(err)
				}
				if _, err := io.ReadFull(c, msg); err != nil {
					t.Fatal(err)
				}
				rtts = append(rtts, time.Since(start))
			}
			close(stop)
			<-done
			sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
			p50, p99 := rtts[len(rtts)/2], rtts[len(rtts)*99/100]
			t.Logf("round trip under flood: p50 %v p99 %v, deferred %d", p50, p99, s.Metrics().Deferred)
			// Generous (race detector, shared CPUs), but a starved
			// connection waits for seconds.
			if p50 > 50*time.Millisecond || p99 > 500*time.Millisecond {
				t.Fatalf("round trip under flood: p50 %v p99 %v", p50, p99)
			}
			if s.Metrics().Deferred == 0 {
				t.Fatal("the flooding connection was never deferred")
			}
		})
	}
}

func TestServeShutdown(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		t.Run("force", func(t *testing.T) {
			h := newEchoHandler()
			s := serve(t, p, "tcp", h, ServeOptions{})
			var cs []net.Conn
			for i := 0; i < 3; i++ {
				c := dialStd(t, s)
				echoCheck(t, c, 100)
				cs = append(cs, c)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			if err := s.Shutdown(ctx); err != context.DeadlineExceeded {
				t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
			}
			if h.closed.Load() != 3 || s.Metrics().Open != 0 {
				t.Fatalf("after Shutdown: %d closed, metrics %+v", h.closed.Load(), s.Metrics())
			}
			for _, c := range cs {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err == nil {
					t.Fatal("read after Shutdown succeeded")
				}
			}
			if _, err := net.DialTimeout("tcp", s.Addr().String(), time.Second); err == nil {
				t.Fatal("dial after Shutdown succeeded")
			}
		})
		t.Run("graceful", func(t *testing.T) {
			h := newEchoHandler()
			h.onData = func(c *EventConn, data []byte) {
				c.Write(data)
				if bytes.HasSuffix(data, []byte("bye")) {
					c.Close()
				}
			}
			s := serve(t, p, "tcp", h, ServeOptions{})
			c := dialStd(t, s)
			echoCheck(t, c, 10)
			errc := make(chan error, 1)
			go func() { errc <- s.Shutdown(context.Background()) }()
			select {
			case err := <-errc:
				t.Fatalf("Shutdown returned %v with a connection open", err)
			case <-time.After(50 * time.Millisecond):
			}
			c.Write([]byte("bye"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if b, err := io.ReadAll(c); string(b) != "bye" || err != nil {
				t.Fatalf("read %q, %v; want bye then EOF (flushed before close)", b, err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if err := <-h.errs; err != nil {
				t.Fatalf("OnClose err %v, want nil after Close", err)
			}
		})
	})
}

func TestServeSendFile(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		content := make([]byte, 3<<20+123)
		rand.Read(content)
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		h := newEchoHandler()
		type res struct {
			sent int64
			err  error
		}
		dones := make(chan res, 4)
		h.onData = func(c *EventConn, data []byte) {
			c.Write([]byte("head"))
			c.SendFile(int(f.Fd()), 0, -1, func(n int64, err error) { dones <- res{n, err} })
			c.SendFile(int(f.Fd()), 10, 5, func(n int64, err error) { dones <- res{n, err} })
			c.Write([]byte("tail"))
			c.Close()
		}
		s := serve(t, p, "tcp", h, ServeOptions{})
		c := dialStd(t, s)
		c.Write([]byte("get"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		want := append(append(append([]byte("head"), content...), content[10:15]...), "tail"...)
		if !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want %d (head, file, range, tail)", len(got), len(want))
		}
		if r := <-dones; r.sent != int64(len(content)) || r.err != nil {
			t.Fatalf("done(%d, %v), want %d, nil", r.sent, r.err, len(content))
		}
		if r := <-dones; r.sent != 5 || r.err != nil {
			t.Fatalf("done(%d, %v), want 5, nil", r.sent, r.err)
		}
	})
}

func TestServeBadInput(t *testing.T) {
	if _, err := Serve("udp", "127.0.0.1:0", newEchoHandler(), ServeOptions{Proactor: epollP}); err == nil {
		t.Fatal("Serve udp succeeded")
	}
	if _, err := Serve("tcp", "127.0.0.1:0", nil, ServeOptions{Proactor: epollP}); err == nil {
		t.Fatal("Serve with a nil Handler succeeded")
	}
	if _, err := Serve("tcp", "127.0.0.1:0", newEchoHandler(), ServeOptions{Proactor: epollP, Balance: 7}); err == nil {
		t.Fatal("Serve with an unknown Balance succeeded")
	}
	if _, err := Serve("tcp", "no-such-host.invalid:x", newEchoHandler(), ServeOptions{Proactor: epollP}); err == nil {
		t.Fatal("Serve on a bad address succeeded")
	}
	s, err := Serve("tcp", "127.0.0.1:0", newEchoHandler(), ServeOptions{Proactor: epollP})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Serve("tcp", s.Addr().String(), newEchoHandler(), ServeOptions{Proactor: epollP, Balance: RoundRobin}); err == nil {
		t.Fatal("second Serve on a used address succeeded")
	}
	s.Close()
	s.Close() // twice is fine
}

const clientEnv = "RINGO_NET_TEST_CLIENT"

// runClient is the child of TestServe10k: it opens N connections to the
// address in clientEnv ("host:port/N"), echoes one byte on each, says
// "ready" and holds them until its stdin closes.
func runClient(arg string) int {
	var port, n int
	if _, err := fmt.Sscanf(arg, "%d/%d", &port, &n); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var rl unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	rl.Cur = rl.Max
	unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	sa := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	fds := make([]int, 0, n)
	for i := 0; i < n; i++ {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			err = connectRetry(fd, sa)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "conn %d: %v\n", i, err)
			return 1
		}
		tv := unix.Timeval{Sec: 20}
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		fds = append(fds, fd)
	}
	b := []byte{'x'}
	for _, fd := range fds {
		if _, err := eintr(func() (int, error) { return unix.Write(fd, b) }); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	for i, fd := range fds {
		if n, err := eintr(func() (int, error) { return unix.Read(fd, b) }); n != 1 || err != nil {
			fmt.Fprintf(os.Stderr, "echo on conn %d: %d, %v\n", i, n, err)
			return 1
		}
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// TestServe10k holds 10,000 connections open at once, the clients in a
// child process (each side needs its own 10,000 descriptors).
func TestServe10k(t *testing.T) {
	const n = 10000
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur < n+500 {
		t.Skipf("RLIMIT_NOFILE %d: 10,000 connections need more", rl.Cur)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		h := newEchoHandler()
		s := serve(t, p, "tcp", h, ServeOptions{})
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d/%d", clientEnv, s.Addr().(*net.TCPAddr).Port, n))
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 6)
		_, rerr := io.ReadFull(stdout, line)
		open := s.Metrics().Open
		stdin.Close()
		werr := cmd.Wait()
		if rerr != nil || string(line) != "ready\n" || werr != nil {
			t.Fatalf("client: %q, %v, %v", line, rerr, werr)
		}
		if open != n {
			t.Fatalf("%d connections open, want %d", open, n)
		}
		// OnClose comes before the loop drops the connection from Open.
		waitFor(t, "all closed", func() bool { return h.closed.Load() == n && s.Metrics().Open == 0 })
		if m := s.Metrics(); m.Open != 0 || m.Accepted != n || m.BytesOut != n {
			t.Fatalf("metrics %+v", m)
		}
	})
}

// eintr retries f while the runtime's signals interrupt it.
func eintr(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if err != unix.EINTR {
			return n, err
		}
	}
}

// connectRetry is a blocking connect that survives the runtime's
// preemption signals: an interrupted connect goes on by itself.
func connectRetry(fd int, sa unix.Sockaddr) error {
	err := unix.Connect(fd, sa)
	for err == unix.EINTR || err == unix.EALREADY {
		time.Sleep(time.Millisecond)
		err = unix.Connect(fd, sa)
		if err == unix.EISCONN {
			err = nil
		}
	}
	return err
}

// TestServeSendFileNoHeldTail: bytes queued before a SendFile go out with
// MSG_MORE so they share segments with the file, and sendfile(2) itself
// sets MSG_MORE on its last chunk when the range runs past the end of the
// file. Either way, once the queue is empty nothing may stay held back
// waiting for the next write or the kernel's 200 ms cork timer.
func TestServeSendFileNoHeldTail(t *testing.T) {
	dir := t.TempDir()
	open := func(t *testing.T, name string, b []byte) int {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() }) // after the server's cleanup
		return int(f.Fd())
	}
	cases := []struct {
		name string
		send func(t *testing.T) func(c *EventConn)
	}{
		{"bytes then empty file", func(t *testing.T) func(c *EventConn) {
			fd := open(t, "empty", nil)
			return func(c *EventConn) {
				c.Write([]byte("he"))
				c.Write([]byte("ad"))
				c.SendFile(fd, 0, -1, nil)
			}
		}},
		{"file to EOF", func(t *testing.T) func(c *EventConn) {
			fd := open(t, "head", []byte("head"))
			return func(c *EventConn) { c.SendFile(fd, 0, -1, nil) }
		}},
		{"bytes then range past EOF", func(t *testing.T) func(c *EventConn) {
			fd := open(t, "he", []byte("xxad"))
			return func(c *EventConn) {
				c.Write([]byte("he"))
				c.SendFile(fd, 2, 1000, nil)
			}
		}},
	}
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				send := tc.send(t)
				h := newEchoHandler()
				h.onData = func(c *EventConn, data []byte) { send(c) }
				s := serve(t, p, "tcp", h, ServeOptions{})
				c := dialStd(t, s)
				// A held segment waits for the 200 ms cork timer; the best
				// of three rounds far below that shows nothing was held.
				best := time.Hour
				for i := range 3 {
					start := time.Now()
					c.Write([]byte("get"))
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					got := make([]byte, 4)
					if _, err := io.ReadFull(c, got); err != nil || string(got) != "head" {
						t.Fatalf("round %d: read %q, %v", i, got, err)
					}
					best = min(best, time.Since(start))
				}
				if best > 100*time.Millisecond {
					t.Fatalf("the answer took %v to arrive: its tail was held back (MSG_MORE)", best)
				}
			})
		}
	})
}

// TestServeHold: while a handler holds a connection (answering off the
// loop), it gets no OnData, no timeout closes it, and the peer's FIN
// waits; Resume delivers the input that came meanwhile, in order, and
// then the close at the FIN, after the answers.
func TestServeHold(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		const holdFor = 300 * time.Millisecond
		var got []string
		closed := make(chan error, 1)
		h := &funcHandler{onClose: func(c *EventConn, err error) { closed <- err }}
		h.onData = func(c *EventConn, data []byte) {
			got = append(got, string(data))
			if string(data) != "first" {
				c.Write(append([]byte("echo:"), data...))
				return
			}
			c.Hold()
			c.Loop().AfterFunc(holdFor, func() {
				c.Write([]byte("answer;"))
				c.Resume()
			})
		}
		s := serve(t, p, "tcp", h, ServeOptions{IdleTimeout: holdFor / 6, WriteTimeout: holdFor / 6})
		cl := dialStd(t, s)
		cl.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := cl.Write([]byte("first")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(holdFor / 3) // held by now
		if _, err := cl.Write([]byte("second")); err != nil {
			t.Fatal(err)
		}
		cl.(*net.TCPConn).CloseWrite()
		b, err := io.ReadAll(cl)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != "answer;echo:second" {
			t.Fatalf("peer read %q, want the answer, then the echo of what came while held", b)
		}
		if err := <-closed; !errors.Is(err, io.EOF) {
			t.Fatalf("OnClose err %v, want io.EOF (the peer's FIN, after Resume)", err)
		}
		if len(got) != 2 || got[0] != "first" || got[1] != "second" {
			t.Fatalf("OnData got %q", got)
		}
		if m := s.Metrics(); m.IdleClosed != 0 || m.WriteTimeouts != 0 {
			t.Fatalf("timeouts closed a held connection: %+v", m)
		}
	})
}

// TestServeHoldEdges: a held connection the handler closes with output a
// peer never reads is cut off by the timeouts again (the hold was for the
// handler's work, which is over), and a Resume within OnData leaves the
// delivery of what waited to when OnData returns, in order.
func TestServeHoldEdges(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		closed := make(chan error, 2)
		var got []string
		h := &funcHandler{onClose: func(c *EventConn, err error) { closed <- err }}
		h.onData = func(c *EventConn, data []byte) {
			switch string(data) {
			case "close":
				c.Hold()
				c.Write(make([]byte, 16<<20))
				c.Close() // and never Resume
			default:
				got = append(got, string(data))
				c.Hold()
				c.Resume()
				c.Write(data)
			}
		}
		s := serve(t, p, "tcp", h, ServeOptions{IdleTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, WriteQueueLimit: -1})

		cl := dialStd(t, s)
		cl.(*net.TCPConn).SetReadBuffer(4096)
		cl.Write([]byte("close"))
		select {
		case err := <-closed:
			if !errors.Is(err, ErrIdleTimeout) && !errors.Is(err, ErrWriteTimeout) {
				t.Fatalf("OnClose err %v, want a timeout", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("a closing connection whose peer stopped reading is still open: %+v", s.Metrics())
		}

		cl = dialStd(t, s)
		cl.SetDeadline(time.Now().Add(10 * time.Second))
		var want []byte
		for i := range 50 {
			m := fmt.Sprintf("m%03d;", i)
			want = append(want, m...)
			cl.Write([]byte(m))
		}
		cl.(*net.TCPConn).CloseWrite()
		b, err := io.ReadAll(cl)
		if err != nil || string(b) != string(want) {
			t.Fatalf("echo of a handler that holds and resumes within OnData: %q, %v", b, err)
		}
		if err := <-closed; !errors.Is(err, io.EOF) {
			t.Fatalf("OnClose err %v, want io.EOF", err)
		}
	})
}
