package proactor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/leakcheck"
	"github.com/ringo-io/ringo/ring"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// drivers are the configurations every behavioural test runs on.
var drivers = []struct {
	name string
	opts Options
}{
	{"uring", Options{Backend: Uring, Wait: WaitEnter}},
	{"uring-netpoll", Options{Backend: Uring, Wait: WaitNetpoll}},
	{"epoll", Options{Backend: Epoll, Wait: WaitEnter}},
	{"epoll-netpoll", Options{Backend: Epoll, Wait: WaitNetpoll}},
	// The kernel matrix: Auto on each simulated release, so io_uring
	// where that release can serve (with per-op fallback for the opcodes
	// it lacks) and epoll before 5.5.
	{"k5.1", Options{Kernel: "5.1"}},
	{"k5.4", Options{Kernel: "5.4"}},
	{"k5.6", Options{Kernel: "5.6"}},
	{"k5.7", Options{Kernel: "5.7"}},
	{"k5.10", Options{Kernel: "5.10"}},
	{"k5.15", Options{Kernel: "5.15"}},
	{"k5.19", Options{Kernel: "5.19"}},
	{"k6.1", Options{Kernel: "6.1"}},
	{"native", Options{Kernel: "native"}},
}

// sandboxDrivers replace drivers in a child under a seccomp filter: there
// Auto must choose epoll, and the whole suite runs on it.
var sandboxDrivers = []struct {
	name string
	opts Options
}{
	{"auto", Options{}},
	{"auto-enter", Options{Wait: WaitEnter}},
}

// eachDriver runs f on a one-loop proactor of each driver (and, with
// kernels, of each simulated kernel).
func eachDriver(t *testing.T, f func(t *testing.T, p *Proactor)) {
	eachDriverOpts(t, Options{}, f)
}

// eachDriverOpts is eachDriver with extra options (buffers, kernel).
func eachDriverOpts(t *testing.T, extra Options, f func(t *testing.T, p *Proactor)) {
	for _, d := range drivers {
		if extra.Kernel != "" && d.opts.Kernel != "" {
			continue // the test walks kernels itself
		}
		t.Run(d.name, func(t *testing.T) {
			checkLeaks(t)
			opts := d.opts
			opts.Loops = 1
			opts.Logger = quiet
			if extra.Kernel != "" {
				opts.Kernel = extra.Kernel
			}
			opts.Buffers, opts.BufferSize = extra.Buffers, extra.BufferSize
			opts.Spin = extra.Spin
			p := newProactor(t, opts)
			f(t, p)
		})
	}
}

// checkLeaks fails t if, once its cleanups (the proactor's Close among
// them) have run, it left a goroutine or a file descriptor behind.
func checkLeaks(t *testing.T) {
	fds := leakcheck.CountFds()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		if t.Failed() {
			return
		}
		if err := goleak.Find(ignore); err != nil {
			t.Errorf("leaked goroutines: %v", err)
		}
		if n := leakcheck.CountFds(); n > fds {
			t.Errorf("leaked %d file descriptors", n-fds)
		}
	})
}

func newProactor(t *testing.T, opts Options) *Proactor {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	p, err := New(opts)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("io_uring unavailable: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, p.Close()) })
	return p
}

func do(t *testing.T, l *Loop, op Op) int32 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, _, err := l.Do(ctx, op)
	require.NoError(t, err)
	return res
}

func socketpair(t *testing.T) (int, int) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func errno(e unix.Errno) int32 { return -int32(e) }

func TestNop(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		require.EqualValues(t, 0, do(t, p.Loop(0), Nop{}))
	})
}

func TestRecvSend(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		a, b := socketpair(t)
		require.EqualValues(t, 5, do(t, l, &Send{Fd: a, Buf: []byte("hello")}))
		buf := make([]byte, 16)
		n := do(t, l, &Recv{Fd: b, Buf: buf})
		require.Equal(t, "hello", string(buf[:n]))

		// A recv that has to wait for data, completed by a later send.
		got := make(chan int32, 1)
		require.NoError(t, l.Submit(&Recv{Fd: b, Buf: buf}, func(res int32, _ uint32) { got <- res }))
		time.Sleep(10 * time.Millisecond)
		require.EqualValues(t, 3, do(t, l, &Send{Fd: a, Buf: []byte("abc")}))
		require.EqualValues(t, 3, <-got)

		// EOF is 0.
		require.NoError(t, unix.Shutdown(a, unix.SHUT_WR))
		require.EqualValues(t, 0, do(t, l, &Recv{Fd: b, Buf: buf}))
	})
}

func TestErrors(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		require.Equal(t, errno(unix.EBADF), do(t, l, &Recv{Fd: 1 << 20, Buf: make([]byte, 4)}))
		require.Equal(t, errno(unix.ENOTSOCK), do(t, l, &Send{Fd: int(os.Stdin.Fd()), Buf: []byte("x")}))
		require.Equal(t, errno(unix.ENOENT), do(t, l, &Openat{Dir: unix.AT_FDCWD, Path: CString("/no/such/file"), Flags: unix.O_RDONLY}))

		// Connecting to a closed port is refused.
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		require.NoError(t, err)
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(fd)
		c := &Connect{Fd: fd}
		setInet4(c, port)
		require.Equal(t, errno(unix.ECONNREFUSED), do(t, l, c))

		// A peer that has gone gives EPIPE, never SIGPIPE.
		a, b := socketpair(t)
		unix.Close(b)
		require.Equal(t, errno(unix.EPIPE), do(t, l, &Send{Fd: a, Buf: []byte("x")}))
	})
}

func setInet4(c *Connect, port int) {
	sa := (*unix.RawSockaddrInet4)(unsafePointer(&c.Addr))
	sa.Family = unix.AF_INET
	sa.Port = uint16(port>>8) | uint16(port&0xff)<<8
	sa.Addr = [4]byte{127, 0, 0, 1}
	c.AddrLen = unix.SizeofSockaddrInet4
}

func TestAcceptConnect(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		lfd, port := listenTCP(t)
		cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(cfd)

		accepted := make(chan int32, 4)
		require.NoError(t, l.Submit(&Accept{Fd: lfd, Multishot: true}, func(res int32, flags uint32) {
			accepted <- res
		}))
		c := &Connect{Fd: cfd}
		setInet4(c, port)
		require.EqualValues(t, 0, do(t, l, c))
		var fds []int
		for i := 0; i < 3; i++ {
			if i > 0 {
				s, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", itoa(port)))
				require.NoError(t, err)
				defer s.Close()
			}
			select {
			case fd := <-accepted:
				require.Greater(t, fd, int32(0))
				fds = append(fds, int(fd))
			case <-time.After(5 * time.Second):
				t.Fatal("multishot accept delivered nothing")
			}
		}
		for _, fd := range fds {
			unix.Close(fd)
		}
		if p.Backend() == Uring {
			// Before 5.19 the kernel has ACCEPT but not its multishot
			// flag: the op must have run on the epoll path.
			rel, _ := ring.ParseRelease(p.opts.Kernel) // "": Native
			old := !rel.Has(ring.Release{Major: 5, Minor: 19})
			require.Equal(t, old, p.Metrics()[0].Fallbacks > 0, "multishot accept on the epoll path, kernel %q", p.opts.Kernel)
		}
		p.Loop(0).Post(func() { p.Loop(0).CancelFdInLoop(lfd) })
		select {
		case res := <-accepted:
			require.Equal(t, errno(unix.ECANCELED), res)
		case <-time.After(5 * time.Second):
			t.Fatal("cancelling the multishot accept did not end it")
		}
	})
}

func listenTCP(t *testing.T) (int, int) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(fd, 128))
	sa, err := unix.Getsockname(fd)
	require.NoError(t, err)
	return fd, sa.(*unix.SockaddrInet4).Port
}

func TestFileOps(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		path := filepath.Join(t.TempDir(), "f")
		fd := do(t, l, &Openat{Dir: unix.AT_FDCWD, Path: CString(path), Flags: unix.O_RDWR | unix.O_CREAT, Mode: 0o600})
		require.Greater(t, fd, int32(0))
		f := int(fd)
		require.EqualValues(t, 5, do(t, l, &Write{Fd: f, Buf: []byte("hello"), Off: 0}))
		require.EqualValues(t, 6, do(t, l, &Write{Fd: f, Buf: []byte(" world"), Off: 5}))
		buf := make([]byte, 32)
		n := do(t, l, &Read{Fd: f, Buf: buf, Off: 0})
		require.Equal(t, "hello world", string(buf[:n]))
		require.EqualValues(t, 0, do(t, l, &Read{Fd: f, Buf: buf, Off: 100}), "read past EOF")

		a, b := []byte("ab"), []byte("cd")
		require.EqualValues(t, 4, do(t, l, &Writev{Fd: f, Iovs: iovecs(a, b), Off: 20}))
		x, y := make([]byte, 1), make([]byte, 3)
		require.EqualValues(t, 4, do(t, l, &Readv{Fd: f, Iovs: iovecs(x, y), Off: 20}))
		require.Equal(t, "abcd", string(x)+string(y))

		require.EqualValues(t, 0, do(t, l, &Fsync{Fd: f}))
		require.EqualValues(t, 0, do(t, l, &Fsync{Fd: f, Datasync: true}))
		require.EqualValues(t, 0, do(t, l, &Fallocate{Fd: f, Off: 0, Len: 1 << 16}))
		st := &Statx{Dir: f, Flags: unix.AT_EMPTY_PATH, Mask: unix.STATX_SIZE}
		require.EqualValues(t, 0, do(t, l, st))
		require.EqualValues(t, 1<<16, st.Stat.Size)

		o2 := &Openat2{Dir: unix.AT_FDCWD, Path: CString(path), How: unix.OpenHow{Flags: unix.O_RDONLY}}
		fd2 := do(t, l, o2)
		require.Greater(t, fd2, int32(0))
		require.EqualValues(t, 0, do(t, l, &Close{Fd: int(fd2)}))
		require.EqualValues(t, 0, do(t, l, &Close{Fd: f}))
		require.Equal(t, errno(unix.EBADF), do(t, l, &Read{Fd: f, Buf: buf}))
	})
}

func iovecs(bufs ...[]byte) []unix.Iovec {
	iovs := make([]unix.Iovec, len(bufs))
	for i, b := range bufs {
		iovs[i].Base = &b[0]
		iovs[i].SetLen(len(b))
	}
	return iovs
}

func TestSendfileAndSplice(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		path := filepath.Join(t.TempDir(), "f")
		data := make([]byte, 100_000)
		for i := range data {
			data[i] = byte(i)
		}
		require.NoError(t, os.WriteFile(path, data, 0o600))
		file, err := os.Open(path)
		require.NoError(t, err)
		defer file.Close()
		a, b := socketpair(t)
		got := make(chan []byte)
		go func() {
			var all []byte
			buf := make([]byte, 65536)
			for len(all) < 50_000 {
				n, err := unix.Read(b, buf)
				if err == unix.EAGAIN {
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil || n == 0 {
					break
				}
				all = append(all, buf[:n]...)
			}
			got <- all
		}()
		sent := 0
		for sent < 50_000 {
			n := do(t, l, &Sendfile{Sock: a, File: int(file.Fd()), Off: int64(1000 + sent), N: 50_000 - sent})
			require.Greater(t, n, int32(0))
			sent += int(n)
		}
		require.Equal(t, data[1000:51_000], <-got)

		// SPLICE file -> pipe.
		var pfd [2]int
		require.NoError(t, unix.Pipe2(pfd[:], unix.O_CLOEXEC|unix.O_NONBLOCK))
		defer unix.Close(pfd[0])
		defer unix.Close(pfd[1])
		n := do(t, l, &Splice{In: int(file.Fd()), OffIn: 10, Out: pfd[1], OffOut: -1, N: 100})
		require.EqualValues(t, 100, n)
		buf := make([]byte, 100)
		_, err = unix.Read(pfd[0], buf)
		require.NoError(t, err)
		require.Equal(t, data[10:110], buf)
	})
}

func TestSendZC(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		lfd, port := listenTCP(t)
		s, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", itoa(port)))
		require.NoError(t, err)
		defer s.Close()
		c := do(t, p.Loop(0), &Accept{Fd: lfd})
		require.Greater(t, c, int32(0))
		defer unix.Close(int(c))
		var calls []uint32
		done := make(chan struct{})
		require.NoError(t, p.Loop(0).Submit(&SendZC{Fd: int(c), Buf: []byte("zero-copy")}, func(res int32, flags uint32) {
			calls = append(calls, flags)
			if flags&ring.CQEFMore == 0 {
				close(done)
			} else {
				require.EqualValues(t, 9, res)
			}
		}))
		<-done
		require.Len(t, calls, 2)
		require.NotZero(t, calls[1]&ring.CQEFNotif)
		// Do waits for the notification but reports the data result,
		// with the data completion's flags less CQEFMore (the op has
		// ended). The same op sent again sends again, as any op may
		// be: the epoll emulation used to skip the second send and
		// report a stale result, and Do used to report CQEFMore.
		op := &SendZC{Fd: int(c), Buf: []byte("more")}
		for i := range 2 {
			res, flags, err := p.Loop(0).Do(context.Background(), op)
			require.NoError(t, err)
			require.EqualValues(t, 4, res, "send %d of the same op", i)
			require.Zero(t, flags&ring.CQEFMore, "flags %#x", flags)
		}
		s.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 32)
		n, _ := io.ReadAtLeast(s, buf, 17)
		require.Equal(t, "zero-copymoremore", string(buf[:n]))
	})
}

func TestCancel(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		_, b := socketpair(t)
		// In flight: a recv with no data, cancelled through its context.
		ctx, cancel := context.WithCancel(context.Background())
		go func() { time.Sleep(20 * time.Millisecond); cancel() }()
		res, _, err := l.Do(ctx, &Recv{Fd: b, Buf: make([]byte, 8)})
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, errno(unix.ECANCELED), res)

		// Before submission: an already-cancelled context.
		res, _, err = l.Do(ctx, &Recv{Fd: b, Buf: make([]byte, 8)})
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, errno(unix.ECANCELED), res)

		// After completion: cancelling is a no-op.
		var id uint64
		done := make(chan int32, 1)
		l.Post(func() {
			id, _ = l.SubmitInLoop(Nop{}, func(res int32, _ uint32) { done <- res })
		})
		require.EqualValues(t, 0, <-done)
		l.Post(func() { l.CancelInLoop(id) })
		require.EqualValues(t, 0, do(t, l, Nop{}))
	})
}

func TestDeadlines(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		a, b := socketpair(t)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		start := time.Now()
		res, _, err := l.Do(ctx, &Recv{Fd: b, Buf: make([]byte, 8)})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, errno(unix.ETIME), res)
		require.GreaterOrEqual(t, time.Since(start), 25*time.Millisecond)

		// An op that completes in time keeps its result.
		_, err = unix.Write(a, []byte("x"))
		require.NoError(t, err)
		ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel2()
		res, _, err = l.Do(ctx2, &Recv{Fd: b, Buf: make([]byte, 8)})
		require.NoError(t, err)
		require.EqualValues(t, 1, res)

		got := make(chan int32, 1)
		require.NoError(t, l.SubmitTimeout(&Recv{Fd: b, Buf: make([]byte, 8)}, 20*time.Millisecond, func(res int32, _ uint32) { got <- res }))
		require.Equal(t, errno(unix.ETIME), <-got)
	})
}

func TestTimers(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		var mu sync.Mutex
		var order []int
		var wg sync.WaitGroup
		// All deadlines from one instant of the loop clock: set one by
		// one from another goroutine, a preemption between two calls (the
		// race detector, a loaded machine) can legitimately reorder them.
		wg.Add(6)
		require.NoError(t, l.Post(func() {
			base := l.now()
			for _, i := range []int{5, 1, 4, 2, 3, 3} {
				l.timerSeq++
				l.timers.push(&Timer{l: l, when: base + time.Duration(i)*5*time.Millisecond, seq: l.timerSeq, f: func() {
					mu.Lock()
					order = append(order, i)
					mu.Unlock()
					wg.Done()
				}})
			}
		}))
		// AfterFunc from any goroutine fires too.
		wg.Add(1)
		l.AfterFunc(time.Millisecond, wg.Done)
		stopped := l.AfterFunc(10*time.Millisecond, func() { t.Error("stopped timer fired") })
		stopped.Stop()
		wg.Wait()
		require.Equal(t, []int{1, 2, 3, 3, 4, 5}, order)

		// The Timeout op: -ETIME when it fires, -ECANCELED when cancelled.
		start := time.Now()
		require.Equal(t, errno(unix.ETIME), do(t, l, &Timeout{D: 20 * time.Millisecond}))
		require.GreaterOrEqual(t, time.Since(start), 15*time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(10*time.Millisecond, cancel)
		res, _, err := l.Do(ctx, &Timeout{D: time.Hour})
		require.ErrorIs(t, err, context.Canceled)
		require.Equal(t, errno(unix.ECANCELED), res)
		// A deadline on ctx is reported as one, on every op.
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		res, _, err = l.Do(ctx, &Timeout{D: time.Hour})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, errno(unix.ETIME), res)
	})
}

func TestManyTimers(t *testing.T) {
	p := newProactor(t, Options{Backend: Epoll, Loops: 1})
	l := p.Loop(0)
	const n = 100_000
	var fired atomic.Int64
	done := make(chan struct{})
	l.Post(func() {
		for i := 0; i < n; i++ {
			l.newTimer(time.Duration(i%100)*time.Millisecond, func() {
				if fired.Add(1) == n {
					close(done)
				}
			})
		}
	})
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%d of %d timers fired", fired.Load(), n)
	}
}

func TestHandlerPanic(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		panics := make(chan any, 1)
		p.opts.OnPanic = func(_ int, v any) { panics <- v }
		l := p.Loop(0)
		require.NoError(t, l.Submit(Nop{}, func(int32, uint32) { panic("boom") }))
		require.Equal(t, "boom", <-panics)
		// The loop goes on.
		require.EqualValues(t, 0, do(t, l, Nop{}))
	})
}

// TestHandlerPanicMidBatch: on io_uring the handlers of one reaped batch
// share one recover (uringDriver.dispatch); a panic in one of them must
// not cost the others their completions.
func TestHandlerPanicMidBatch(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		panics := make(chan any, 8)
		p.opts.OnPanic = func(_ int, v any) { panics <- v }
		l := p.Loop(0)
		const n = 8
		var ran atomic.Int32
		all := make(chan struct{})
		require.NoError(t, l.Post(func() {
			for i := range n {
				_, err := l.SubmitInLoop(Nop{}, func(int32, uint32) {
					if ran.Add(1) == n {
						close(all)
					}
					if i == 3 {
						panic("boom")
					}
				})
				require.NoError(t, err)
			}
		}))
		select {
		case <-all:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d handlers ran", ran.Load(), n)
		}
		require.Equal(t, "boom", <-panics)
		// The loop goes on, and only the one panic was reported.
		require.EqualValues(t, 0, do(t, l, Nop{}))
		require.Empty(t, panics)
		require.EqualValues(t, 1, p.Metrics()[0].Panics)
	})
}

func TestConcurrentSubmitters(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := 0; i < 1000; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for j := 0; j < 10; j++ {
					res, _, err := l.Do(context.Background(), Nop{})
					if err != nil || res != 0 {
						t.Errorf("res %d err %v", res, err)
						return
					}
				}
			}()
		}
		close(start)
		wg.Wait()
		m := p.Metrics()[0]
		require.EqualValues(t, 10_000, m.Completed[ring.OpNop])
		if p.Backend() == Uring {
			t.Logf("SQEs per enter with 1000 submitters: %.1f", m.SQEsPerEnter())
		}
	})
}

// TestCloseWithOpsInFlight closes a proactor with thousands of recvs
// waiting: each completes with -ECANCELED, Close returns only after all
// did, and nothing leaks (TestMain checks fds and goroutines).
func TestCloseWithOpsInFlight(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			opts := d.opts
			opts.Loops = 2
			opts.Logger = quiet
			p, err := New(opts)
			if errors.Is(err, ErrUnavailable) {
				t.Skip(err)
			}
			require.NoError(t, err)
			const n = 2000
			var got atomic.Int64
			var cancelled atomic.Int64
			for i := 0; i < n/2; i++ {
				a, b := socketpair(t)
				for _, fd := range []int{a, b} {
					require.NoError(t, p.Next().Submit(&Recv{Fd: fd, Buf: make([]byte, 16)}, func(res int32, _ uint32) {
						got.Add(1)
						if res == errno(unix.ECANCELED) {
							cancelled.Add(1)
						}
					}))
				}
			}
			time.Sleep(50 * time.Millisecond)
			require.NoError(t, p.Close())
			require.EqualValues(t, n, got.Load())
			require.EqualValues(t, n, cancelled.Load())
			require.NoError(t, p.Close(), "closing twice")
			require.ErrorIs(t, p.Loop(0).Submit(Nop{}, nil), ErrClosed)
		})
	}
}

func TestBackendSelection(t *testing.T) {
	if _, ok := sandboxed(); ok {
		t.Skip("checks detection on an unfiltered host; TestSandbox checks it under filters")
	}
	p := newProactor(t, Options{Loops: 1})
	require.Equal(t, Uring, p.Backend())
	require.Equal(t, "ok", p.ReasonCode())

	t.Setenv(EnvBackend, "epoll")
	p = newProactor(t, Options{Loops: 1})
	require.Equal(t, Epoll, p.Backend())
	require.Equal(t, "disabled-by-env", p.ReasonCode())

	t.Setenv(EnvBackend, "bogus")
	_, err := New(Options{Loops: 1, Logger: quiet})
	require.Error(t, err)
	t.Setenv(EnvBackend, "")

	t.Setenv(EnvKernel, "4.18")
	p = newProactor(t, Options{Loops: 1})
	require.Equal(t, Epoll, p.Backend())
	require.Equal(t, "enosys", p.ReasonCode())
	_, err = New(Options{Loops: 1, Backend: Uring, Logger: quiet})
	require.ErrorIs(t, err, ErrUnavailable)

	t.Setenv(EnvKernel, "5.4")
	p = newProactor(t, Options{Loops: 1})
	require.Equal(t, Epoll, p.Backend(), "5.4 has no ASYNC_CANCEL")
	require.Contains(t, p.Reason(), "ASYNC_CANCEL")

	t.Setenv(EnvKernel, "nonsense")
	_, err = New(Options{Loops: 1, Logger: quiet})
	require.Error(t, err)
}

// TestKernelMatrix runs the core ops on each simulated kernel with Auto:
// io_uring where it can serve, per-op fallback for what the ring lacks.
func TestKernelMatrix(t *testing.T) {
	for _, k := range []string{"5.1", "5.4", "5.6", "5.7", "5.10", "5.15", "5.19", "6.1", "native"} {
		t.Run(k, func(t *testing.T) {
			p := newProactor(t, Options{Loops: 1, Kernel: k})
			l := p.Loop(0)
			a, b := socketpair(t)
			require.EqualValues(t, 2, do(t, l, &Send{Fd: a, Buf: []byte("hi")}))
			buf := make([]byte, 8)
			require.EqualValues(t, 2, do(t, l, &Recv{Fd: b, Buf: buf}))
			lfd, port := listenTCP(t)
			s, err := net.Dial("tcp4", net.JoinHostPort("127.0.0.1", itoa(port)))
			require.NoError(t, err)
			defer s.Close()
			c := do(t, l, &Accept{Fd: lfd})
			require.Greater(t, c, int32(0))
			unix.Close(int(c))
			path := filepath.Join(t.TempDir(), "f")
			fd := do(t, l, &Openat{Dir: unix.AT_FDCWD, Path: CString(path), Flags: unix.O_RDWR | unix.O_CREAT, Mode: 0o600})
			require.Greater(t, fd, int32(0))
			require.EqualValues(t, 3, do(t, l, &Write{Fd: int(fd), Buf: []byte("abc"), Off: 0}))
			require.EqualValues(t, 0, do(t, l, &Fsync{Fd: int(fd)}))
			require.EqualValues(t, 0, do(t, l, &Close{Fd: int(fd)}))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			res, _, _ := l.Do(ctx, &Recv{Fd: b, Buf: buf})
			require.Equal(t, errno(unix.ETIME), res)
			m := p.Metrics()[0]
			t.Logf("kernel %s: backend %s (%s), fallbacks %d", k, p.Backend(), p.ReasonCode(), m.Fallbacks)
			if p.Backend() == Uring && k != "native" {
				rel, _ := ring.ParseRelease(k)
				if !rel.Has(ring.OpAccept.Since()) || !rel.Has(ring.OpSend.Since()) {
					require.NotZero(t, m.Fallbacks, "ops the ring lacks must go through the epoll path")
				}
			}
		})
	}
}

func TestSlabStale(t *testing.T) {
	var s slab
	idx, sl := s.alloc()
	ud := makeUD(idx, sl.gen)
	require.Same(t, sl, s.lookup(ud))
	s.release(idx, sl)
	require.Nil(t, s.lookup(ud), "a freed slot's old user data must be stale")
	idx2, sl2 := s.alloc()
	require.Equal(t, idx, idx2)
	require.Nil(t, s.lookup(ud), "a reused slot must not answer to the old generation")
	require.Same(t, sl2, s.lookup(makeUD(idx2, sl2.gen)))
	require.Nil(t, s.lookup(makeUD(1<<20, 1)))
}

func TestAtTurnEnd(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		panics := make(chan any, 1)
		p.opts.OnPanic = func(_ int, v any) { panics <- v }
		l := p.Loop(0)
		var log []string // loop goroutine only
		done := make(chan []string, 1)
		require.NoError(t, l.Submit(Nop{}, func(int32, uint32) {
			log = append(log, "op")
			l.AtTurnEnd(func() { panic("boom") })
			l.AtTurnEnd(func() {
				log = append(log, "end")
				l.AtTurnEnd(func() {
					log = append(log, "nested")
					done <- log
				})
			})
		}))
		// Nothing else happens on the loop: the functions must run before
		// it waits again, or this waits forever.
		select {
		case got := <-done:
			require.Equal(t, []string{"op", "end", "nested"}, got)
		case <-time.After(10 * time.Second):
			t.Fatal("AtTurnEnd functions did not run before the loop waited")
		}
		require.Equal(t, "boom", <-panics)
		require.EqualValues(t, 0, do(t, l, Nop{}))
	})
}

// TestPostFromHandlerNoWake: a loop delivering completions is awake, so a
// Post from a handler must not cost an eventfd write.
func TestPostFromHandlerNoWake(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		ran := make(chan struct{})
		w0 := p.Metrics()[0].Wakeups
		require.NoError(t, l.Submit(Nop{}, func(int32, uint32) {
			for range 3 {
				require.NoError(t, l.Post(func() {}))
			}
			require.NoError(t, l.Post(func() { close(ran) }))
		}))
		<-ran
		// At most one wake for the Submit and one for the Metrics call;
		// the four Posts from the handler add none.
		require.LessOrEqual(t, p.Metrics()[0].Wakeups-w0, uint64(2))
	})
}

// TestPseudoOpcodes: the opcodes that route ops through the epoll path are
// distinct (each has its own metrics counter) and beyond every real one.
func TestPseudoOpcodes(t *testing.T) {
	pseudo := []ring.Op{opSendfile, opSelectRecv, OpSyscall}
	seen := map[ring.Op]bool{}
	for _, op := range pseudo {
		require.False(t, seen[op], "pseudo-opcode %d used twice", op)
		seen[op] = true
		require.Greater(t, op, ring.OpLast, "pseudo-opcode %d is a real opcode", op)
	}
	m := Metrics{}
	m.Submitted[opSelectRecv], m.Submitted[OpSyscall], m.Submitted[opSendfile] = 1, 2, 3
	require.Equal(t, map[string]uint64{"RECV_SELECT": 1, "SYSCALL": 2, "SENDFILE": 3}, m.Map()["submitted"])
}

// TestOnLoop: true in handlers, posted functions and timers, on the loop
// they belong to only; false on other goroutines.
func TestOnLoop(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		require.False(t, l.OnLoop())
		got := make(chan bool, 3)
		require.NoError(t, l.Post(func() { got <- l.OnLoop() }))
		require.NoError(t, l.Submit(Nop{}, func(int32, uint32) { got <- l.OnLoop() }))
		l.AfterFunc(time.Millisecond, func() { got <- l.OnLoop() })
		for range 3 {
			require.True(t, <-got)
		}
		if len(p.Loops()) > 1 {
			other := p.Loop(1)
			require.NoError(t, other.Post(func() { got <- l.OnLoop() }))
			require.False(t, <-got)
		}
	})
}

// TestCurrentLoop: each loop's goroutine finds its own Loop; others nil.
func TestCurrentLoop(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		require.Nil(t, CurrentLoop())
		for _, l := range p.Loops() {
			got := make(chan *Loop, 1)
			require.NoError(t, l.Post(func() { got <- CurrentLoop() }))
			require.Same(t, l, <-got)
		}
	})
}

// TestTimerStopOnLoop: a timer stopped by another timer's callback does not
// fire even when both are due in the same turn (the first one's callback
// outlasts the second's delay).
func TestTimerStopOnLoop(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		var fired atomic.Bool
		done := make(chan struct{})
		require.NoError(t, l.Post(func() {
			var t2 *Timer
			l.AfterFunc(5*time.Millisecond, func() { time.Sleep(30 * time.Millisecond) })
			l.AfterFunc(10*time.Millisecond, func() { t2.Stop() })
			t2 = l.AfterFunc(11*time.Millisecond, func() { fired.Store(true) })
			l.AfterFunc(60*time.Millisecond, func() { close(done) })
		}))
		<-done
		require.False(t, fired.Load(), "a timer stopped on the loop before it fired still fired")
	})
}

// TestTimerStopResult: Stop reports whether it kept f from running, as
// time.Timer's does: true while pending, false once fired or stopped, and
// false for a timer set on a closed loop, which never fires.
func TestTimerStopResult(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		fired := make(chan struct{})
		t1 := l.AfterFunc(time.Millisecond, func() { close(fired) })
		<-fired
		require.False(t, t1.Stop(), "Stop after the timer fired")

		var ran atomic.Bool
		t2 := l.AfterFunc(time.Hour, func() { ran.Store(true) })
		require.True(t, t2.Stop(), "Stop of a pending timer")
		require.False(t, t2.Stop(), "second Stop")

		// Stop from the timer's own callback: it has fired.
		got := make(chan bool)
		var t3 *Timer
		ready := make(chan struct{})
		t3 = l.AfterFunc(time.Millisecond, func() { <-ready; got <- t3.Stop() })
		close(ready)
		require.False(t, <-got, "Stop from the timer's own callback")
		require.False(t, ran.Load())

		require.NoError(t, p.Close())
		tm := l.AfterFunc(0, func() { t.Error("a timer on a closed loop fired") })
		require.False(t, tm.Stop(), "a timer on a closed loop was never pending")
	})
}

// TestEntriesClamped: any Entries sets up a working loop, the same on both
// drivers. Above MaxEntries it is clamped; before, 1<<30 made the CQ size
// (4 times it) wrap to 0 and io_uring_setup failed with EINVAL.
func TestEntriesClamped(t *testing.T) {
	for _, b := range []Backend{Uring, Epoll} {
		for _, e := range []uint32{3, MaxEntries, 1 << 30, 1 << 31, ^uint32(0)} {
			p := newProactor(t, Options{Backend: b, Loops: 1, Entries: e})
			res, _, err := p.Loop(0).Do(context.Background(), &Nop{})
			require.NoError(t, err, "%v, Entries %d", b, e)
			require.Zero(t, res)
			require.NoError(t, p.Close())
		}
	}
}

// TestMaxLoops: a loop count past MaxLoops is an error, not thread
// exhaustion (with WaitEnter every loop locks an OS thread, and Go kills
// the process past 10,000).
func TestMaxLoops(t *testing.T) {
	p, err := New(Options{Backend: Epoll, Loops: 100000, Wait: WaitEnter, Logger: quiet})
	require.Error(t, err)
	require.Nil(t, p)
	require.Contains(t, err.Error(), "Loops 100000")
}

// panicPrep is an Op of another package whose own code is broken: Prep
// (io_uring) and Perform (epoll) panic where the op starts.
type panicPrep struct{ Nop }

func (panicPrep) Prep(*ring.SQE)           { panic("boom in Prep") }
func (panicPrep) Perform() (int32, uint32) { panic("boom in Perform") }

// panicLater panics in Perform only once its socket is readable, so in
// the reactor's poll (both drivers: OpSyscall takes the io_uring
// driver's epoll path too), not where the op started.
type panicLater struct{ fd int }

func (panicLater) Opcode() ring.Op   { return OpSyscall }
func (panicLater) Prep(*ring.SQE)    {}
func (o panicLater) PollFd() int     { return o.fd }
func (panicLater) Readiness() uint32 { return unix.EPOLLIN }
func (o panicLater) Perform() (int32, uint32) {
	pfd := []unix.PollFd{{Fd: int32(o.fd), Events: unix.POLLIN}}
	if n, _ := unix.Poll(pfd, 0); n == 0 {
		return -int32(unix.EAGAIN), 0
	}
	panic("boom in a later Perform")
}

// panicOnPool panics in Perform on the epoll path's worker pool
// (Readiness 0: no descriptor to poll).
type panicOnPool struct{}

func (panicOnPool) Opcode() ring.Op          { return OpSyscall }
func (panicOnPool) Prep(*ring.SQE)           {}
func (panicOnPool) PollFd() int              { return -1 }
func (panicOnPool) Readiness() uint32        { return 0 }
func (panicOnPool) Perform() (int32, uint32) { panic("boom on a worker") }

// TestOpPanics: an Op whose own code panics, where the loop goroutine
// starts it, in the reactor's poll once its fd is ready, or on a worker
// goroutine, fails with -EINVAL and a reported panic, and the loop goes
// on. Each used to kill the process.
func TestOpPanics(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		panics := make(chan any, 4)
		p.opts.OnPanic = func(_ int, v any) { panics <- v }
		l := p.Loop(0)
		a, b := socketpair(t)
		for _, tc := range []struct {
			name  string
			op    Op
			ready func() // makes the op's fd ready, if it waits for it
		}{
			{"start", panicPrep{}, nil},
			{"when ready", panicLater{fd: b}, func() {
				time.Sleep(20 * time.Millisecond) // parked first
				_, err := unix.Write(a, []byte("x"))
				require.NoError(t, err)
			}},
			{"on a worker", panicOnPool{}, nil},
		} {
			res := make(chan int32, 1)
			require.NoError(t, l.Submit(tc.op, func(r int32, _ uint32) { res <- r }), tc.name)
			if tc.ready != nil {
				tc.ready()
			}
			select {
			case r := <-res:
				require.Equal(t, errno(unix.EINVAL), r, tc.name)
			case <-time.After(5 * time.Second):
				t.Fatalf("%s: no completion for the op that panicked", tc.name)
			}
			require.Contains(t, fmt.Sprint(<-panics), "boom", tc.name)
			require.EqualValues(t, 0, do(t, l, Nop{}), "%s: the loop goes on", tc.name)
		}
	})
}
