package net

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/sysinfo"
	"github.com/ringo-io/ringo/proactor"
	"github.com/ringo-io/ringo/ring"
)

// onLoop runs f on each loop of s that has a listener (or on every loop
// with all set) and waits for it.
func onLoops(t *testing.T, s *Server, all bool, f func(el *evLoop)) {
	t.Helper()
	for _, el := range s.loops {
		el := el
		done := make(chan struct{})
		if err := el.l.Post(func() {
			defer close(done)
			if all || el.lfd >= 0 {
				f(el)
			}
		}); err != nil {
			t.Fatal(err)
		}
		<-done
	}
}

func getsockopt(t *testing.T, fd, level, name int) int {
	t.Helper()
	v, err := unix.GetsockoptInt(fd, level, name)
	if err != nil {
		t.Errorf("getsockopt(%d, %d, %d): %v", fd, level, name, err)
	}
	return v
}

// TestServeSocketOptions reads FastOpen, TCP_NODELAY and the keep-alive
// settings back from the listeners and from accepted connections.
func TestServeSocketOptions(t *testing.T) {
	type connOpts struct{ nodelay, keepalive, idle, intvl, cnt, lowat int }
	sysCnt := func(t *testing.T) int { // the system's probe count
		b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_keepalive_probes")
		if err != nil {
			t.Skipf("no tcp_keepalive_probes: %v", err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		cases := []struct {
			name     string
			opts     ServeOptions
			fastOpen bool
			want     func(t *testing.T) connOpts // keep-alive fields checked only if keepalive == 1
		}{
			{"default", ServeOptions{}, false, func(*testing.T) connOpts { return connOpts{nodelay: 1} }},
			{"fastopen+keepalive", ServeOptions{FastOpen: true, KeepAlive: 41500 * time.Millisecond}, true,
				func(t *testing.T) connOpts { return connOpts{1, 1, 42, 42, sysCnt(t), 0} }},
			{"notsentlowat", ServeOptions{NotSentLowat: 32 << 10}, false,
				func(*testing.T) connOpts { return connOpts{nodelay: 1, lowat: 32 << 10} }},
			{"keepaliveconfig+nagle", ServeOptions{Nagle: true, KeepAlive: time.Hour,
				KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 61 * time.Second, Interval: 7 * time.Second, Count: 4}}, false,
				func(*testing.T) connOpts { return connOpts{0, 1, 61, 7, 4, 0} }},
			{"keepaliveconfig defaults", ServeOptions{ReadBufferLimit: 1, Balance: RoundRobin,
				KeepAliveConfig: net.KeepAliveConfig{Enable: true}}, false,
				func(*testing.T) connOpts { return connOpts{1, 1, 15, 15, 9, 0} }},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				want := tc.want(t)
				got := make(chan connOpts, 4)
				h := newEchoHandler()
				h.onData = func(c *EventConn, data []byte) {
					c.Write(data)
					if c.Context() != nil {
						return // once per connection
					}
					c.SetContext(true)
					fd := c.Fd()
					o := connOpts{
						nodelay:   getsockopt(t, fd, unix.IPPROTO_TCP, unix.TCP_NODELAY),
						keepalive: getsockopt(t, fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE),
						lowat:     getsockopt(t, fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT),
					}
					if o.keepalive != 0 {
						o.idle = getsockopt(t, fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
						o.intvl = getsockopt(t, fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL)
						o.cnt = getsockopt(t, fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
					}
					got <- o
				}
				s := serve(t, p, "tcp", h, tc.opts)
				listeners := 0
				onLoops(t, s, false, func(el *evLoop) {
					listeners++
					q := getsockopt(t, el.lfd, unix.IPPROTO_TCP, unix.TCP_FASTOPEN)
					if tc.fastOpen && q <= 0 || !tc.fastOpen && q != 0 {
						t.Errorf("listener on loop %d: TCP_FASTOPEN queue %d, FastOpen %v", el.l.ID(), q, tc.fastOpen)
					}
				})
				if want := map[bool]int{true: len(s.loops), false: 1}[tc.opts.Balance == ReusePort]; listeners != want {
					t.Errorf("%d listeners, want %d", listeners, want)
				}
				// Two connections: with ReusePort they may land on
				// different listeners, each set up on its own.
				for i := 0; i < 2; i++ {
					echoCheck(t, dialStd(t, s), 5)
					if o := <-got; o != want {
						t.Errorf("accepted connection: %+v, want %+v", o, want)
					}
				}
			})
		}
		t.Run("refused", func(t *testing.T) {
			before := countFds()
			for _, ka := range []net.KeepAliveConfig{
				{Enable: true, Count: 1000},
				{Enable: true, Idle: 100000 * time.Second},
			} {
				s, err := Serve("tcp", "127.0.0.1:0", newEchoHandler(), ServeOptions{Proactor: p, KeepAliveConfig: ka})
				if err == nil {
					s.Close()
					t.Fatalf("Serve with %+v succeeded", ka)
				}
				if !errors.Is(err, unix.EINVAL) {
					t.Errorf("Serve with %+v: %v, want EINVAL", ka, err)
				}
			}
			if n := countFds(); n != before {
				t.Fatalf("%d descriptors open after failed Serves, %d before", n, before)
			}
		})
	})
}

// TestServePinLoops checks each loop thread's affinity while pinned, and
// that Close gives it back.
func TestServePinLoops(t *testing.T) {
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	if all.Count() < 2 {
		t.Skipf("this process may use %d CPU: pinning cannot be told from not pinning", all.Count())
	}
	var cpus []int
	for c := 0; len(cpus) < all.Count(); c++ {
		if all.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	type thread struct {
		tid int
		set unix.CPUSet
	}
	threads := func(t *testing.T, s *Server) []thread {
		var ts []thread
		onLoops(t, s, true, func(el *evLoop) {
			th := thread{tid: unix.Gettid()}
			if err := unix.SchedGetaffinity(th.tid, &th.set); err != nil {
				t.Error(err)
			}
			ts = append(ts, th)
		})
		return ts
	}
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		h := newEchoHandler()
		s := serve(t, p, "tcp", h, ServeOptions{PinLoops: true})
		pinned := threads(t, s)
		for i, th := range pinned {
			var want unix.CPUSet
			want.Set(cpus[i%len(cpus)])
			if th.set != want {
				t.Errorf("loop %d (thread %d): affinity %d CPUs, want only CPU %d", i, th.tid, th.set.Count(), cpus[i%len(cpus)])
			}
		}
		// Serving (waits, wake-ups) does not move a loop off its thread.
		for i := 0; i < 4; i++ {
			echoCheck(t, dialStd(t, s), 100<<10)
			time.Sleep(5 * time.Millisecond)
		}
		for i, th := range threads(t, s) {
			if th != pinned[i] {
				t.Errorf("loop %d moved from thread %d to %d (affinity %d CPUs)", i, pinned[i].tid, th.tid, th.set.Count())
			}
		}
		s.Close()
		for i, th := range threadsAfter(t, s) {
			if th != all {
				t.Errorf("loop %d after Close: affinity %d CPUs, want the process's %d", i, th.Count(), all.Count())
			}
		}
	})
}

// threadsAfter reads the affinity of the threads the loops run on.
func threadsAfter(t *testing.T, s *Server) []unix.CPUSet {
	var sets []unix.CPUSet
	onLoops(t, s, true, func(el *evLoop) {
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			t.Error(err)
		}
		sets = append(sets, set)
	})
	return sets
}

// recvLimited reports whether p's buffered receives stop at their
// proactor.RecvBuffers.Limit: on epoll and on io_uring before 6.0 the loop
// re-arms each receive and stops it there, from 6.17 the kernel does; on
// 6.0 to 6.16 nothing does.
func recvLimited(t *testing.T, p *proactor.Proactor) bool {
	t.Helper()
	if p.Backend() != proactor.Uring {
		return true
	}
	var rel ring.Release
	if k := p.Kernel(); k == ring.Native.String() {
		r, err := sysinfo.KernelRelease()
		if err != nil {
			t.Fatal(err)
		}
		rel = ring.Release{Major: r.Major, Minor: r.Minor}
	} else {
		var err error
		if rel, err = ring.ParseRelease(k); err != nil {
			t.Fatal(err)
		}
	}
	return rel.Has(ring.Release{Major: 6, Minor: 17}) || !rel.Has(ring.Release{Major: 6, Minor: 0})
}

// TestServeBackpressureBound: what a paused (or deferred) connection
// holds, received after the receive was told to stop, is bounded by the
// receive's limit, the write queue's headroom: about WriteQueueLimit plus
// a buffer. Where the limit is not enforced (io_uring 6.0 to 6.16) it is
// bounded by the loop's receive buffer pool. Either bound is far smaller
// than the transfer, so that a connection that kept receiving while
// paused fails the test; the pool is 4 times the queue limit, so that a
// receive that took a pool's worth fails it where the limit holds.
func TestServeBackpressureBound(t *testing.T) {
	evDrivers(t, func(t *testing.T, shared *proactor.Proactor) {
		const nbufs, size = 64, 4096
		wait := proactor.WaitNetpoll
		if strings.HasSuffix(t.Name(), "-enter") {
			wait = proactor.WaitEnter
		}
		p, err := proactor.New(proactor.Options{Backend: shared.Backend(), Loops: 1, Wait: wait, Buffers: nbufs, BufferSize: size})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		const limit = 64 << 10
		var heldPeak atomic.Int64
		h := newEchoHandler()
		h.onData = func(c *EventConn, data []byte) {
			c.Write(data)
			heldPeak.Store(max(heldPeak.Load(), int64(c.heldPeak)))
		}
		s := serve(t, p, "tcp", h, ServeOptions{WriteQueueLimit: limit})
		defer s.Close()
		c := dialStd(t, s)
		const total = 8 << 20
		want := make([]byte, total)
		rand.Read(want)
		errc := make(chan error, 1)
		go func() {
			c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			_, err := c.Write(want)
			errc <- err
		}()
		// A reader that starts late: the sender fills everything first.
		waitFor(t, "backpressure", func() bool { return s.Metrics().Paused > 0 })
		time.Sleep(50 * time.Millisecond)
		got := make([]byte, total)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("echoed bytes differ")
		}
		pool := int64(nbufs * size)
		if recvLimited(t, p) {
			// A receive is armed only with nothing held, and takes at
			// most its limit (at most WriteQueueLimit) and one buffer
			// more; a second buffer leaves room for the rounding.
			if peak := heldPeak.Load(); peak > limit+2*size {
				t.Fatalf("held %d bytes while paused; the bound is the %d-byte write queue limit and 2 buffers of %d", peak, limit, size)
			}
		} else {
			// About one pool's worth. More can come when the kernel
			// refills buffers released while the loop still reaps the
			// first pool's completions, and when bytes held are handed
			// back and held again by a second pause before the
			// cancelled receive ended: measured up to 1.5 pools; 3
			// leaves room for a loaded machine. Without the bound the
			// whole transfer (32 pools) would be held.
			if peak := heldPeak.Load(); peak > 3*pool {
				t.Fatalf("held %d bytes while paused; the bound is 3 x the %d-byte buffer pool", peak, pool)
			}
		}
		t.Logf("held at most %d bytes while paused (limit %d, pool %d, %d pauses)", heldPeak.Load(), limit, pool, s.Metrics().Paused)
	})
}

// TestServeConnBadInput: misuse of an EventConn is a no-op or an error,
// never a panic, a hang or a broken stream.
func TestServeConnBadInput(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe() // sendfile(2) cannot read a pipe
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		type result struct {
			what string
			sent int64
			err  error
		}
		res := make(chan result, 32)
		done := func(what string) func(int64, error) {
			return func(n int64, err error) { res <- result{what, n, err} }
		}
		closed := make(chan []string, 1)
		h := &funcHandler{
			onData: func(c *EventConn, data []byte) {
				c.Write(nil)
				c.SendFile(-1, 0, 5, done("fd -1"))
				c.SendFile(int(f.Fd()), -3, 5, done("off -3"))
				c.SendFile(int(r.Fd()), 0, 5, done("pipe"))
				c.SendFile(1<<30, 0, 5, done("not open"))
				c.SendFile(int(f.Fd()), 0, 0, done("n 0"))
				c.SendFile(int(f.Fd()), 2, 3, done("ok"))
				c.Write([]byte("<"))
				c.Close()
				c.Close()
				c.CloseWrite()
				c.Write([]byte("dropped"))
				c.SendFile(int(f.Fd()), 0, 5, done("after close"))
			},
			onClose: func(c *EventConn, err error) {
				var bad []string
				if c.Fd() != -1 {
					bad = append(bad, "Fd() is not -1 in OnClose")
				}
				c.Write([]byte("x"))
				c.CloseWrite()
				c.Close()
				c.Abort()
				c.SendFile(int(f.Fd()), 0, 1, done("in OnClose"))
				_, _ = c.LocalAddr(), c.RemoteAddr()
				if c.Pending() != 0 {
					bad = append(bad, "pending bytes in OnClose")
				}
				if err != nil {
					bad = append(bad, "OnClose err "+err.Error())
				}
				closed <- bad
			},
		}
		s := serve(t, p, "tcp", h, ServeOptions{})
		c := dialStd(t, s)
		c.Write([]byte("go"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil || string(b) != "234<" {
			t.Fatalf("read %q, %v; want the good range, the write after it, then EOF", b, err)
		}
		select {
		case bad := <-closed:
			for _, s := range bad {
				t.Error(s)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no OnClose")
		}
		want := map[string]func(result) bool{
			"fd -1":       func(r result) bool { return r.sent == 0 && errors.Is(r.err, os.ErrInvalid) },
			"off -3":      func(r result) bool { return r.sent == 0 && errors.Is(r.err, os.ErrInvalid) },
			"pipe":        func(r result) bool { return r.sent == 0 && r.err != nil },
			"not open":    func(r result) bool { return r.sent == 0 && errors.Is(r.err, unix.EBADF) },
			"n 0":         func(r result) bool { return r.sent == 0 && r.err == nil },
			"ok":          func(r result) bool { return r.sent == 3 && r.err == nil },
			"after close": func(r result) bool { return r.sent == 0 && errors.Is(r.err, ErrConnClosed) },
			"in OnClose":  func(r result) bool { return r.sent == 0 && errors.Is(r.err, ErrConnClosed) },
		}
		for range want {
			select {
			case r := <-res:
				if ok, known := want[r.what]; !known || !ok(r) {
					t.Errorf("SendFile %s: done(%d, %v)", r.what, r.sent, r.err)
				}
				delete(want, r.what)
			case <-time.After(10 * time.Second):
				t.Fatalf("done never called for %v", want)
			}
		}
	})
}

// funcHandler is a Handler made of functions.
type funcHandler struct {
	onData  func(c *EventConn, data []byte)
	onClose func(c *EventConn, err error)
}

func (h *funcHandler) OnOpen(c *EventConn)              {}
func (h *funcHandler) OnData(c *EventConn, data []byte) { h.onData(c, data) }
func (h *funcHandler) OnClose(c *EventConn, err error)  { h.onClose(c, err) }

// TestNotSentLowat: ListenConfig.NotSentLowat reaches accepted
// connections, and there bounds the bytes the kernel holds unsent: a
// peer that does not read gets the window it advertised plus about the
// low-water mark, not a socket buffer of megabytes.
func TestNotSentLowat(t *testing.T) {
	const lowat = 20000
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		lc := ListenConfig{Proactor: p, NotSentLowat: lowat}
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		peer, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		c := sc.(*Conn)
		if got := getsockopt(t, c.fd.sysfd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT); got != lowat {
			t.Fatalf("accepted connection: TCP_NOTSENT_LOWAT %d, want %d", got, lowat)
		}
		c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := c.Write(make([]byte, 16<<20))
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write to a peer that does not read: %d, %v", n, err)
		}
		unsent, err := unix.IoctlGetInt(c.fd.sysfd, unix.SIOCOUTQNSD)
		if err != nil {
			t.Fatal(err)
		}
		// The kernel checks the mark before each new packet of up to 64 KiB.
		if unsent > lowat+64<<10 {
			t.Errorf("%d bytes unsent after a write of %d, want at most %d", unsent, n, lowat+64<<10)
		}
		t.Logf("wrote %d bytes, %d unsent", n, unsent)

		lc.NotSentLowat = -1
		if ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0"); !errors.Is(err, unix.EINVAL) {
			if err == nil {
				ln.Close()
			}
			t.Fatalf("Listen with NotSentLowat -1: %v, want EINVAL", err)
		}
	})
}
