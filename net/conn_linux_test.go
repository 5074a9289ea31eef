package net

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/nettest"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// TestNettestConn runs the published net.Conn conformance suite with a
// ringo Conn at both ends.
func TestNettestConn(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, network := range []string{"tcp", "unix"} {
			t.Run(network, func(t *testing.T) {
				nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
					ln := testListen(t, p, network)
					defer ln.Close()
					a, b, err := pairOn(ln, p)
					if err != nil {
						return nil, nil, nil, err
					}
					return a, b, func() { a.Close(); b.Close() }, nil
				})
			})
		}
	})
}

func echo(t testing.TB, c net.Conn) {
	go func() {
		defer c.Close()
		io.Copy(c, c)
	}()
}

func testEcho(t *testing.T, p *proactor.Proactor, network string) {
	c, s := pair(t, p, network)
	echo(t, s)
	defer c.Close()
	buf := make([]byte, 64<<10)
	rand.Read(buf)
	got := make([]byte, len(buf))
	for i := 0; i < 10; i++ {
		if _, err := c.Write(buf); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, buf) {
			t.Fatal("echo differs")
		}
	}
}

func TestEcho(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, network := range []string{"tcp", "unix"} {
			t.Run(network, func(t *testing.T) { testEcho(t, p, network) })
		}
	})
}

// TestEchoKernels runs the echo test on simulated older kernels: 5.10 has
// io_uring without IORING_ASYNC_CANCEL_FD or SHUTDOWN (ops fall back per
// op), and on 5.4 Auto chooses epoll.
func TestEchoKernels(t *testing.T) {
	for _, k := range []struct {
		kernel string
		want   proactor.Backend
	}{{"5.10", proactor.Uring}, {"5.4", proactor.Epoll}} {
		t.Run(k.kernel, func(t *testing.T) {
			p, err := proactor.New(proactor.Options{Kernel: k.kernel, Loops: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.Backend() != k.want {
				if k.want == proactor.Uring {
					t.Skipf("io_uring unavailable here: %s", p.Reason())
				}
				t.Fatalf("backend %v, want %v (%s)", p.Backend(), k.want, p.Reason())
			}
			testEcho(t, p, "tcp")
			testEcho(t, p, "unix")
		})
	}
}

func TestHalfClose(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, network := range []string{"tcp", "unix"} {
			t.Run(network, func(t *testing.T) {
				c, s := pair(t, p, network)
				defer c.Close()
				defer s.Close()
				if _, err := c.Write([]byte("hello")); err != nil {
					t.Fatal(err)
				}
				if err := c.CloseWrite(); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(s)
				if err != nil || string(got) != "hello" {
					t.Fatalf("peer read %q, %v; want hello, nil (EOF)", got, err)
				}
				// The read side still works after CloseWrite.
				if _, err := s.Write([]byte("back")); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 4)
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "back" {
					t.Fatalf("read %q, %v", buf, err)
				}
				// A write after CloseWrite fails with EPIPE, no signal.
				if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
					t.Fatalf("write after CloseWrite: %v, want EPIPE", err)
				}
				s.Close()
				if n, err := c.Read(buf); n != 0 || err != io.EOF {
					t.Fatalf("read at FIN: %d, %v; want 0, io.EOF (unwrapped)", n, err)
				}
			})
		}
	})
}

// TestPeerReset: the peer closes with SO_LINGER 0 (an RST) while we write.
// The writer gets ECONNRESET or EPIPE in a *net.OpError, and no SIGPIPE
// reaches the process.
func TestPeerReset(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		c, s := pair(t, p, "tcp")
		defer c.Close()
		if err := s.SetLinger(0); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		errc := make(chan error, 1)
		go func() {
			for {
				if _, err := c.Write(buf); err != nil {
					errc <- err
					return
				}
			}
		}()
		time.Sleep(20 * time.Millisecond) // let the writer fill the buffers
		s.Close()
		err := <-errc
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "write" {
			t.Fatalf("error %v (%T), want *net.OpError write", err, err)
		}
		var se *os.SyscallError
		if !errors.As(err, &se) {
			t.Fatalf("error %v does not wrap *os.SyscallError", err)
		}
		if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) {
			t.Fatalf("error %v, want ECONNRESET or EPIPE", err)
		}
		// Reads on a reset connection report the reset too (or EOF if
		// the kernel already discarded it), never hang.
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(buf); err == nil {
			t.Fatal("read after reset succeeded")
		} else if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read after reset hung: %v", err)
		}
	})
	select {
	case <-sigs:
		t.Fatal("SIGPIPE delivered")
	default:
	}
}

// TestDeadlinesUnderLoad: 100 connections with short read deadlines all
// time out, then work once the deadline is cleared.
func TestDeadlinesUnderLoad(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		const n = 100
		ln := testListen(t, p, "tcp")
		defer ln.Close()
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			c, s, err := pairOn(ln, p)
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				defer s.Close()
				errs <- deadlineRoundTrip(c, s)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
}

func deadlineRoundTrip(c, s *Conn) error {
	start := time.Now()
	c.SetReadDeadline(start.Add(50 * time.Millisecond))
	buf := make([]byte, 8)
	_, err := c.Read(buf)
	var ne net.Error
	if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
		return errors.New("read: " + errString(err) + ", want a timeout")
	}
	if d := time.Since(start); d < 45*time.Millisecond || d > 5*time.Second {
		return errors.New("timed out after " + d.String())
	}
	// Still timed out until the deadline changes.
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		return errors.New("second read: " + errString(err))
	}
	c.SetReadDeadline(time.Time{})
	if _, err := s.Write([]byte("ping")); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, buf[:4]); err != nil || string(buf[:4]) != "ping" {
		return errors.New("read after clearing: " + errString(err))
	}
	return nil
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestDeadlineChangeWhileBlocked: moving the deadline of a blocked Read
// takes effect at once, both ways.
func TestDeadlineChangeWhileBlocked(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		c, s := pair(t, p, "tcp")
		defer c.Close()
		defer s.Close()
		buf := make([]byte, 8)

		// A far deadline shortened into the past unblocks promptly.
		c.SetReadDeadline(time.Now().Add(time.Hour))
		go func() {
			time.Sleep(20 * time.Millisecond)
			c.SetReadDeadline(time.Now().Add(-time.Second))
		}()
		start := time.Now()
		if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read: %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("unblocked after %v", d)
		}

		// A near deadline extended keeps the Read waiting for data.
		c.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		go func() {
			time.Sleep(5 * time.Millisecond)
			c.SetReadDeadline(time.Now().Add(time.Hour))
			time.Sleep(100 * time.Millisecond)
			s.Write([]byte("late"))
		}()
		if n, err := c.Read(buf); err != nil || string(buf[:n]) != "late" {
			t.Fatalf("read %q, %v", buf[:n], err)
		}

		// Write deadlines: fill the socket, then time out.
		c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		big := make([]byte, 1<<20)
		var err error
		for err == nil {
			_, err = c.Write(big)
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write: %v", err)
		}
	})
}

// TestCloseOnLoop: Close from a handler, posted function or timer (on the
// loop goroutine) cannot wait for the loop. It returns at once, a Read
// parked meanwhile gets net.ErrClosed, and the socket is closed (the peer
// sees EOF) once that Read is out.
func TestCloseOnLoop(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, parked := range []bool{false, true} {
			c, s := pair(t, p, "tcp")
			readErr := make(chan error, 1)
			if parked {
				go func() {
					_, err := c.Read(make([]byte, 16))
					readErr <- err
				}()
				time.Sleep(20 * time.Millisecond) // let it park
			}
			closed := make(chan error, 1)
			require.NoError(t, c.Loop().Post(func() { closed <- c.Close() }))
			select {
			case err := <-closed:
				require.NoError(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("Close on the loop goroutine hangs")
			}
			if parked {
				select {
				case err := <-readErr:
					require.ErrorIs(t, err, net.ErrClosed)
				case <-time.After(5 * time.Second):
					t.Fatal("Read parked across a Close on the loop never returned")
				}
			}
			s.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := s.Read(make([]byte, 1))
			require.ErrorIs(t, err, io.EOF, "parked %v", parked)
			require.ErrorIs(t, c.Close(), net.ErrClosed)
			s.Close()
		}
		// Two loops each closing a connection of the other's at once:
		// neither may wait for the other.
		if len(p.Loops()) < 2 {
			return
		}
		ln := testListen(t, p, "tcp")
		defer ln.Close()
		var cs [2]*Conn
		var peers [2]net.Conn
		for i := range cs {
			// cs[i] lives on the other loop than the one closing it.
			for cs[i] == nil {
				c, s, err := pairOn(ln, p)
				require.NoError(t, err)
				switch p.Loops()[1-i] {
				case c.Loop():
					cs[i], peers[i] = c, s
				case s.Loop():
					cs[i], peers[i] = s, c
				default:
					c.Close()
					s.Close()
				}
			}
		}
		var start sync.WaitGroup
		start.Add(2)
		closed := make(chan error, 2)
		for i, l := range p.Loops()[:2] {
			require.NoError(t, l.Post(func() {
				start.Done()
				start.Wait() // both loops are in their function now
				closed <- cs[i].Close()
			}))
		}
		for range 2 {
			select {
			case err := <-closed:
				require.NoError(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("two loops closing each other's connections deadlocked")
			}
		}
		for _, s := range peers {
			s.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err := s.Read(make([]byte, 1))
			require.ErrorIs(t, err, io.EOF)
			s.Close()
		}
	})
}

// TestCloseRacesRead: Close while Read and Write are blocked or starting
// returns them with net.ErrClosed; run with -race.
func TestCloseRacesRead(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		ln := testListen(t, p, "tcp")
		defer ln.Close()
		for i := 0; i < 50; i++ {
			c, s, err := pairOn(ln, p)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				buf := make([]byte, 16)
				_, err := c.Read(buf)
				if err == nil || !errors.Is(err, net.ErrClosed) {
					t.Errorf("read: %v, want net.ErrClosed", err)
				}
				var oe *net.OpError
				if !errors.As(err, &oe) || oe.Op != "read" {
					t.Errorf("read error %#v, want *net.OpError read", err)
				}
			}()
			go func() {
				defer wg.Done()
				buf := make([]byte, 1<<20)
				for {
					if _, err := c.Write(buf); err != nil {
						if !errors.Is(err, net.ErrClosed) {
							t.Errorf("write: %v, want net.ErrClosed", err)
						}
						return
					}
				}
			}()
			if i%2 == 0 {
				time.Sleep(time.Millisecond)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			if err := c.Close(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("second Close: %v, want net.ErrClosed", err)
			}
			s.Close()
		}
	})
}

func TestListenerCloseUnblocksAccept(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, network := range []string{"tcp", "unix"} {
			t.Run(network, func(t *testing.T) {
				ln := testListen(t, p, network)
				errc := make(chan error, 1)
				go func() {
					_, err := ln.Accept()
					errc <- err
				}()
				time.Sleep(10 * time.Millisecond)
				if err := ln.Close(); err != nil {
					t.Fatal(err)
				}
				err := <-errc
				var oe *net.OpError
				if !errors.Is(err, net.ErrClosed) || !errors.As(err, &oe) || oe.Op != "accept" {
					t.Fatalf("accept: %v, want accept OpError with net.ErrClosed", err)
				}
				if err := ln.Close(); err == nil {
					t.Fatal("second Close succeeded")
				}
				if network == "unix" {
					if _, err := os.Stat(ln.Addr().String()); !os.IsNotExist(err) {
						t.Fatalf("socket path left behind: %v", err)
					}
				}
			})
		}
	})
}

func TestListenerDeadline(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		ln := testListen(t, p, "tcp")
		defer ln.Close()
		ln.SetDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := ln.Accept(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("accept: %v", err)
		}
	})
}

func TestDialRefused(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		ln := testListen(t, p, "tcp")
		addr := ln.Addr().String()
		ln.Close()
		d := Dialer{Proactor: p}
		_, err := d.DialContext(context.Background(), "tcp", addr)
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" || !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial: %v, want dial OpError with ECONNREFUSED", err)
		}
		var se *os.SyscallError
		if !errors.As(err, &se) || se.Syscall != "connect" {
			t.Fatalf("dial: %v does not wrap connect's *os.SyscallError", err)
		}
		// The unix flavour: no such socket.
		_, err = d.DialContext(context.Background(), "unix", filepath.Join(t.TempDir(), "none"))
		if !errors.Is(err, syscall.ENOENT) {
			t.Fatalf("dial unix: %v, want ENOENT", err)
		}
	})
}

// TestDialContextCancel: a connect that hangs (the listener's accept queue
// is full, so its SYNs are dropped) ends when the context does.
func TestDialContextCancel(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		lc := ListenConfig{Proactor: p, Backlog: 1}
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		d := Dialer{Proactor: p, Timeout: 100 * time.Millisecond}
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		hung := false
		for i := 0; i < 16 && !hung; i++ {
			c, err := d.Dial("tcp", ln.Addr().String())
			if err == nil {
				held = append(held, c)
				continue
			}
			var ne net.Error
			if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("dial: %v, want a timeout", err)
			}
			hung = true
		}
		if !hung {
			t.Skip("the accept queue never filled; cannot make a connect hang")
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		start := time.Now()
		_, err = (&Dialer{Proactor: p}).DialContext(ctx, "tcp", ln.Addr().String())
		var oe *net.OpError
		if !errors.Is(err, context.Canceled) || !errors.As(err, &oe) || oe.Op != "dial" {
			t.Fatalf("dial: %v, want dial OpError with context.Canceled", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("cancel took %v", d)
		}
		// Already cancelled: fails at once.
		if _, err := (&Dialer{Proactor: p}).DialContext(ctx, "tcp", ln.Addr().String()); !errors.Is(err, context.Canceled) {
			t.Fatalf("dial with done ctx: %v", err)
		}
	})
}

// fileAndPeer makes a file of size random bytes, opens it, and dials a
// pair on network whose far end is read to EOF into got.
func fileAndPeer(t *testing.T, p *proactor.Proactor, network string, size int) (data []byte, f *os.File, c *Conn, got <-chan []byte) {
	t.Helper()
	data = make([]byte, size)
	rand.Read(data)
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	c, s := pair(t, p, network)
	t.Cleanup(func() { s.Close() })
	ch := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(s)
		ch <- b
	}()
	return data, f, c, ch
}

func TestReadFromFile(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, network := range []string{"tcp", "unix"} {
			t.Run(network, func(t *testing.T) {
				data, f, c, got := fileAndPeer(t, p, network, 1<<20)
				// Skip a prefix with Seek and stop early with a
				// LimitedReader, to check offsets both ways.
				if _, err := f.Seek(100, io.SeekStart); err != nil {
					t.Fatal(err)
				}
				n, err := c.ReadFrom(&io.LimitedReader{R: f, N: 1000})
				if err != nil || n != 1000 {
					t.Fatalf("ReadFrom limited: %d, %v", n, err)
				}
				n, err = c.ReadFrom(f)
				if err != nil || n != int64(len(data)-1100) {
					t.Fatalf("ReadFrom: %d, %v", n, err)
				}
				c.Close()
				if b := <-got; !bytes.Equal(b, data[100:]) {
					t.Fatalf("peer got %d bytes, not the file's", len(b))
				}
				if off, _ := f.Seek(0, io.SeekCurrent); off != int64(len(data)) {
					t.Fatalf("file offset %d after ReadFrom, want %d", off, len(data))
				}
			})
		}
	})
}

// TestIoCopyFileSendfile: io.Copy(conn, file), the usual idiom, reaches
// sendfile. Since Go 1.22 io.Copy first calls (*os.File).WriteTo, which
// hands ReadFrom the file wrapped (os.fileWithoutWriteTo), and ReadFrom
// only recognised a bare *os.File: 8 MiB went through a 32 KiB buffer.
func TestIoCopyFileSendfile(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		data, f, c, got := fileAndPeer(t, p, "tcp", 8<<20)
		const sendfileOp = 255 // proactor's pseudo-opcode for sendfile(2)
		sendfiles := func() (n uint64) {
			for _, m := range p.Metrics() {
				n += m.Submitted[sendfileOp]
			}
			return n
		}
		before := sendfiles()
		if n, err := io.Copy(c, f); err != nil || n != int64(len(data)) {
			t.Fatalf("io.Copy: %d, %v", n, err)
		}
		if sendfiles() == before {
			t.Fatal("io.Copy(conn, file) copied through a buffer, not sendfile")
		}
		c.Close()
		if b := <-got; !bytes.Equal(b, data) {
			t.Fatalf("peer got %d bytes, not the file's", len(b))
		}
	})
}

// TestSendFileFd: Conn.SendFile sends a range of a bare descriptor, stops
// at the end of the file, refuses bad arguments, and a Close or deadline
// ends one parked on a peer that does not read.
func TestSendFileFd(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		data := make([]byte, 64<<20)
		rand.Read(data[:1<<20])
		name := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(name, data, 0o600); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		c, s := pair(t, p, "tcp")
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(io.LimitReader(s, 1000))
			got <- b
		}()
		if n, err := c.SendFile(fd, 10, 1000); n != 1000 || err != nil {
			t.Fatalf("SendFile: %d, %v", n, err)
		}
		if b := <-got; !bytes.Equal(b, data[10:1010]) {
			t.Fatalf("peer got %d bytes, not the range", len(b))
		}
		if n, err := c.SendFile(fd, int64(len(data))-5, 100); n != 5 || err != nil {
			t.Fatalf("SendFile past the end: %d, %v (want 5, nil)", n, err)
		}
		if _, err := c.SendFile(-1, 0, 1); !errors.Is(err, os.ErrInvalid) {
			t.Fatalf("SendFile(-1): %v", err)
		}
		// The peer reads no more: the deadline, then Close, end a parked one.
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := c.SendFile(fd, 0, int64(len(data))); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("SendFile past the deadline: %v", err)
		}
		c.SetWriteDeadline(time.Time{})
		done := make(chan error, 1)
		go func() {
			_, err := c.SendFile(fd, 0, int64(len(data)))
			done <- err
		}()
		time.Sleep(50 * time.Millisecond)
		c.Close()
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("SendFile across Close: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("SendFile still parked 5 s after Close")
		}
		s.Close()
	})
}

// TestReadFromGeneric: a reader that is not a file goes through a buffer.
func TestReadFromGeneric(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		c, s := pair(t, p, "tcp")
		defer s.Close()
		data := bytes.Repeat([]byte("ringo"), 100000)
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(s)
			got <- b
		}()
		n, err := c.ReadFrom(bytes.NewReader(data))
		if err != nil || n != int64(len(data)) {
			t.Fatalf("ReadFrom: %d, %v", n, err)
		}
		c.Close()
		if !bytes.Equal(<-got, data) {
			t.Fatal("data differs")
		}
	})
}

// TestManyConns: 2,000 connections echoing at once.
func TestManyConns(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		const n = 2000
		ln := testListen(t, p, "tcp")
		defer ln.Close()
		var srv sync.WaitGroup
		srv.Add(1)
		go func() {
			defer srv.Done()
			for i := 0; i < n; i++ {
				c, err := ln.Accept()
				if err != nil {
					t.Error(err)
					return
				}
				srv.Add(1)
				go func() {
					defer srv.Done()
					defer c.Close()
					io.Copy(c, c)
				}()
			}
		}()
		d := Dialer{Proactor: p}
		conns := make([]net.Conn, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := d.Dial("tcp", ln.Addr().String())
				if err != nil {
					errs <- err
					return
				}
				conns[i] = c
				msg := []byte("hello from a connection")
				buf := make([]byte, len(msg))
				for j := 0; j < 3; j++ {
					if _, err := c.Write(msg); err != nil {
						errs <- err
						return
					}
					if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, msg) {
						errs <- errors.New("echo: " + errString(err))
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		srv.Wait()
	})
}

func TestSyscallConn(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		c, s := pair(t, p, "tcp")
		defer c.Close()
		defer s.Close()
		rc, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(10 * time.Millisecond)
			s.Write([]byte("raw"))
		}()
		buf := make([]byte, 8)
		var n int
		calls := 0
		err = rc.Read(func(fd uintptr) bool {
			calls++
			var rerr error
			n, rerr = syscall.Read(int(fd), buf)
			return rerr != syscall.EAGAIN
		})
		if err != nil || string(buf[:n]) != "raw" {
			t.Fatalf("raw read %q, %v", buf[:n], err)
		}
		if calls < 2 {
			t.Logf("data was there at the first call (%d calls)", calls)
		}
		var sndbuf int
		rc.Control(func(fd uintptr) {
			sndbuf, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
		})
		if sndbuf <= 0 {
			t.Fatal("Control: no SO_SNDBUF")
		}
		err = rc.Write(func(fd uintptr) bool {
			_, werr := syscall.Write(int(fd), []byte("back"))
			return werr != syscall.EAGAIN
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(s, buf[:4]); err != nil || string(buf[:4]) != "back" {
			t.Fatalf("peer read %q, %v", buf[:4], err)
		}
		// A raw read parked in PollAdd is released by a past deadline.
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		err = rc.Read(func(fd uintptr) bool {
			_, rerr := syscall.Read(int(fd), buf)
			return rerr != syscall.EAGAIN
		})
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("raw read with deadline: %v", err)
		}
	})
}

func TestOptionsAndAddrs(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		c, s := pair(t, p, "tcp")
		defer s.Close()
		if c.RemoteAddr().String() != s.LocalAddr().String() || c.LocalAddr().String() != s.RemoteAddr().String() {
			t.Fatalf("addresses: %v-%v vs %v-%v", c.LocalAddr(), c.RemoteAddr(), s.LocalAddr(), s.RemoteAddr())
		}
		if _, ok := c.RemoteAddr().(*net.TCPAddr); !ok {
			t.Fatalf("RemoteAddr is %T", c.RemoteAddr())
		}
		for _, err := range []error{
			c.SetNoDelay(false), c.SetNoDelay(true), c.SetKeepAlive(true),
			c.SetKeepAlivePeriod(30 * time.Second), c.SetLinger(5), c.SetLinger(-1),
			c.SetReadBuffer(1 << 16), c.SetWriteBuffer(1 << 16),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
		// Keep-alive timing as package net sets it: 0 is its 15 s default,
		// negative leaves the value alone.
		idle := func() int { return getsockopt(t, c.fd.sysfd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE) }
		for _, tc := range []struct {
			d    time.Duration
			want int
		}{{30 * time.Second, 30}, {1500 * time.Millisecond, 2}, {-1, 2}, {0, 15}, {-5 * time.Second, 15}} {
			if err := c.SetKeepAlivePeriod(tc.d); err != nil || idle() != tc.want {
				t.Fatalf("SetKeepAlivePeriod(%v): %v, TCP_KEEPIDLE %d, want %d", tc.d, err, idle(), tc.want)
			}
		}
		if err := c.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 7 * time.Second, Interval: 3 * time.Second, Count: 4}); err != nil {
			t.Fatal(err)
		}
		if i, v, n := idle(), getsockopt(t, c.fd.sysfd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL), getsockopt(t, c.fd.sysfd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT); i != 7 || v != 3 || n != 4 {
			t.Fatalf("SetKeepAliveConfig: idle %d interval %d count %d", i, v, n)
		}
		if err := c.SetKeepAliveConfig(net.KeepAliveConfig{}); err != nil || getsockopt(t, c.fd.sysfd, unix.SOL_SOCKET, unix.SO_KEEPALIVE) != 0 {
			t.Fatalf("SetKeepAliveConfig off: %v", err)
		}
		// As package net: the period does not turn probes on, and a
		// config that turns them off still sets the timing.
		if err := c.SetKeepAlivePeriod(30 * time.Second); err != nil || getsockopt(t, c.fd.sysfd, unix.SOL_SOCKET, unix.SO_KEEPALIVE) != 0 {
			t.Fatalf("SetKeepAlivePeriod turned keep-alive on (%v)", err)
		}
		if err := c.SetKeepAliveConfig(net.KeepAliveConfig{Idle: 40 * time.Second}); err != nil || idle() != 40 {
			t.Fatalf("SetKeepAliveConfig{Enable: false, Idle: 40s}: %v, TCP_KEEPIDLE %d", err, idle())
		}
		// Zero-length reads and writes are no-ops, until Close.
		if n, err := c.Read(nil); n != 0 || err != nil {
			t.Fatalf("Read(nil): %d, %v", n, err)
		}
		if n, err := c.Write(nil); n != 0 || err != nil {
			t.Fatalf("Write(nil): %d, %v", n, err)
		}
		c.SetWriteDeadline(time.Now().Add(-time.Second))
		if _, err := c.Write(nil); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write(nil) past the deadline: %v", err)
		}
		c.SetWriteDeadline(time.Time{})
		c.Close()
		if _, err := c.Read(nil); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read(nil) after Close: %v", err)
		}
		if err := c.SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("SetDeadline after Close: %v", err)
		}
		if err := c.SetNoDelay(true); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("SetNoDelay after Close: %v", err)
		}
		var nilConn *Conn
		if _, err := nilConn.Read(make([]byte, 1)); err != syscall.EINVAL {
			t.Fatalf("nil Conn Read: %v", err)
		}
	})
}

func TestListenErrors(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		lc := ListenConfig{Proactor: p}
		ctx := context.Background()
		for _, c := range []struct{ network, addr string }{
			{"tcp", "bad::addr"}, {"tcp", "127.0.0.1"}, {"tcp", "127.0.0.1:99999"},
			{"tcp4", "[::1]:0"}, {"tcp6", "127.0.0.1:0"}, {"udp", ":0"}, {"unix", ""},
			{"tcp", "no-such-host.invalid:80"},
		} {
			if ln, err := lc.Listen(ctx, c.network, c.addr); err == nil {
				ln.Close()
				t.Errorf("Listen(%q, %q) succeeded", c.network, c.addr)
			} else if _, ok := err.(*net.OpError); !ok {
				t.Errorf("Listen(%q, %q): %T %v, want *net.OpError", c.network, c.addr, err, err)
			}
		}
		// A Unix path that exists is an error, not replaced.
		ln := testListen(t, p, "unix")
		defer ln.Close()
		if _, err := lc.Listen(ctx, "unix", ln.Addr().String()); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("second unix listen: %v, want EADDRINUSE", err)
		}
		d := Dialer{Proactor: p}
		for _, c := range []struct{ network, addr string }{
			{"tcp", "bad::addr"}, {"tcp", "127.0.0.1:x"}, {"udp", "127.0.0.1:1"}, {"unix", ""},
		} {
			if _, err := d.Dial(c.network, c.addr); err == nil {
				t.Errorf("Dial(%q, %q) succeeded", c.network, c.addr)
			}
		}
		// A wildcard "tcp" listener is dual-stack where IPv6 works.
		ln6, err := lc.Listen(ctx, "tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln6.Close()
		port := ln6.Addr().(*net.TCPAddr).Port
		c, err := d.Dial("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}

// TestAllocs: a steady-state Write and Read allocate nothing, with and
// without a deadline set, whether the Read finds its bytes there or
// parks until they come (an op in the driver: with a deadline, where the
// driver cannot link a timeout (epoll), proactor arms the op's slot's own
// loop timer, made once per slot).
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, withDeadline := range []bool{false, true} {
			c, s := pair(t, p, "tcp")
			msg := make([]byte, 64)
			buf := make([]byte, 64)
			if withDeadline {
				s.SetReadDeadline(time.Now().Add(time.Hour))
			}
			// check warms round up, then counts its allocations.
			check := func(how string, round func()) {
				for i := 0; i < 100; i++ {
					round()
				}
				if a := testing.AllocsPerRun(1000, round); a > 0 {
					t.Errorf("deadline %v, %s: %.2f allocations per Write+Read, want 0", withDeadline, how, a)
				}
			}
			check("data there", func() {
				c.Write(msg)
				io.ReadFull(s, buf)
			})
			// Parked: s asks first, and a goroutine echoes on c, so
			// s's Read most often waits in the driver.
			echoed := make(chan struct{})
			go func() {
				defer close(echoed)
				eb := make([]byte, 64)
				for {
					if _, err := io.ReadFull(c, eb); err != nil {
						return
					}
					if _, err := c.Write(eb); err != nil {
						return
					}
				}
			}()
			check("parked", func() {
				s.Write(msg)
				io.ReadFull(s, buf)
			})
			c.Close()
			s.Close()
			<-echoed
		}
	})
}

// TestNilConnAndListener: methods of a nil *Conn or *Listener answer
// EINVAL (nil for addresses), as package net's do, and never panic.
func TestNilConnAndListener(t *testing.T) {
	var c *Conn
	var l *Listener
	for name, err := range map[string]error{
		"Conn.Read":            func() error { _, err := c.Read(nil); return err }(),
		"Conn.Write":           func() error { _, err := c.Write(nil); return err }(),
		"Conn.Close":           c.Close(),
		"Conn.SetDeadline":     c.SetDeadline(time.Time{}),
		"Conn.SetKeepAlive":    c.SetKeepAlive(true),
		"Listener.Accept":      func() error { _, err := l.Accept(); return err }(),
		"Listener.Close":       l.Close(),
		"Listener.SetDeadline": l.SetDeadline(time.Time{}),
		"Conn.SetKeepAliveCfg": c.SetKeepAliveConfig(net.KeepAliveConfig{}),
		"Conn.SetKeepAlivePrd": c.SetKeepAlivePeriod(time.Second),
	} {
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%s on nil: %v, want EINVAL", name, err)
		}
	}
	if c.LocalAddr() != nil || c.RemoteAddr() != nil || l.Addr() != nil {
		t.Error("addresses of nil")
	}
}

// TestListenV4Mapped: a v4-mapped address listens as package net's does,
// on an AF_INET socket ("tcp", "tcp4"), and "tcp6" refuses it.
func TestListenV4Mapped(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		lc := ListenConfig{Proactor: p}
		for _, c := range []struct{ network, addr string }{
			{"tcp", "[::ffff:127.0.0.1]:0"}, {"tcp4", "[::ffff:127.0.0.1]:0"},
			{"tcp6", "[::ffff:127.0.0.1]:0"}, {"tcp", "[::ffff:0.0.0.0]:0"},
		} {
			want, werr := net.Listen(c.network, c.addr)
			got, gerr := lc.Listen(context.Background(), c.network, c.addr)
			if (werr == nil) != (gerr == nil) {
				t.Errorf("Listen(%q, %q): %v, package net: %v", c.network, c.addr, gerr, werr)
			}
			if werr == nil && gerr == nil {
				w, g := want.Addr().(*net.TCPAddr), got.Addr().(*net.TCPAddr)
				var wsa unix.Sockaddr
				rc, _ := want.(*net.TCPListener).SyscallConn()
				rc.Control(func(fd uintptr) { wsa, _ = unix.Getsockname(int(fd)) })
				gsa, _ := unix.Getsockname(got.(*Listener).fd.sysfd)
				if w.IP.String() != g.IP.String() || fmt.Sprintf("%T", wsa) != fmt.Sprintf("%T", gsa) {
					t.Errorf("Listen(%q, %q) on %v (%T), package net on %v (%T)", c.network, c.addr, g, gsa, w, wsa)
				}
			}
			for _, ln := range []net.Listener{want, got} {
				if ln != nil {
					ln.Close()
				}
			}
		}
	})
}

// TestFile: Conn.File and Listener.File give independent copies of the
// socket, as package net's do: each works alone, closing the copy leaves
// the original serving, and a closed original refuses with net.ErrClosed.
func TestFile(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, network := range []string{"tcp", "unix"} {
			c, s := pair(t, p, network)
			f, err := c.File()
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(f.Name(), network+":"), f.Name())
			_, err = f.Write([]byte("via copy"))
			require.NoError(t, err)
			require.NoError(t, f.Close())
			_, err = c.Write([]byte(" and original"))
			require.NoError(t, err)
			buf := make([]byte, 64)
			var got []byte
			for len(got) < len("via copy and original") {
				n, err := s.Read(buf)
				require.NoError(t, err)
				got = append(got, buf[:n]...)
			}
			require.Equal(t, "via copy and original", string(got))
			require.NoError(t, c.Close())
			_, err = c.File()
			require.ErrorIs(t, err, net.ErrClosed)
			s.Close()
		}

		ln := testListen(t, p, "tcp")
		f, err := ln.File()
		require.NoError(t, err)
		require.NoError(t, ln.Close())
		// The copy still listens on the address.
		fl, err := net.FileListener(f)
		require.NoError(t, err)
		f.Close()
		defer fl.Close()
		d, err := net.Dial("tcp", fl.Addr().String())
		require.NoError(t, err)
		d.Close()
		a, err := fl.Accept()
		require.NoError(t, err)
		a.Close()
		_, err = ln.File()
		require.ErrorIs(t, err, net.ErrClosed)

		ln2 := testListen(t, p, "tcp")
		defer ln2.Close()
		rc, err := ln2.SyscallConn()
		require.NoError(t, err)
		var typ int
		require.NoError(t, rc.Control(func(fd uintptr) {
			typ, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
		}))
		require.Equal(t, unix.SOCK_STREAM, typ)
		require.ErrorIs(t, rc.Read(func(uintptr) bool { return true }), syscall.EINVAL)
	})
}
