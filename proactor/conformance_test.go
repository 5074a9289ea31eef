package proactor

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

// unixListener listens on a unix socket with the smallest backlog and
// fills that backlog, so that the next non-blocking connect says EAGAIN.
func unixListener(t *testing.T) (path string) {
	path = filepath.Join(t.TempDir(), "s")
	lfd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(lfd) })
	require.NoError(t, unix.Bind(lfd, &unix.SockaddrUnix{Name: path}))
	require.NoError(t, unix.Listen(lfd, 0))
	for i := 0; i < 64; i++ {
		fd := unixSocket(t)
		if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
			require.ErrorIs(t, err, unix.EAGAIN)
			return path
		}
	}
	t.Fatal("the listener's backlog never filled")
	return ""
}

func unixSocket(t *testing.T) int {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func connectUnix(fd int, path string) *Connect {
	c := &Connect{Fd: fd}
	sa := (*unix.RawSockaddrUnix)(unsafePointer(&c.Addr))
	sa.Family = unix.AF_UNIX
	for i := range path {
		sa.Path[i] = int8(path[i])
	}
	c.AddrLen = uint32(2 + len(path) + 1)
	return c
}

// TestConnectBacklogFull: a connect to a unix listener whose backlog is
// full completes with -EAGAIN on every driver, as io_uring completes it,
// instead of spinning (io_uring re-arm) or reporting success (epoll, where
// an unconnected unix socket polls writable and SO_ERROR is 0).
func TestConnectBacklogFull(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		path := unixListener(t)
		l := p.Loop(0)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		res, _, err := l.Do(ctx, connectUnix(unixSocket(t), path))
		require.NoError(t, err)
		require.Equal(t, errno(unix.EAGAIN), res)
		require.Zero(t, p.Metrics()[0].Rearms, "a connect's EAGAIN is its result, not a reason to retry")
	})
}

// TestRearmedOpKeepsDeadlineAndCancel: a recv with MSG_DONTWAIT completes
// with -EAGAIN on io_uring, which the loop re-arms behind a POLL_ADD. The
// re-armed op must still end at its deadline (-ETIME) and when cancelled
// (-ECANCELED), as on epoll, where it simply waits for readiness.
func TestRearmedOpKeepsDeadlineAndCancel(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		a, b := socketpair(t)
		buf := make([]byte, 8)

		got := make(chan int32, 1)
		require.NoError(t, l.SubmitTimeout(&Recv{Fd: b, Buf: buf, Flags: unix.MSG_DONTWAIT}, 30*time.Millisecond, func(res int32, _ uint32) { got <- res }))
		select {
		case res := <-got:
			require.Equal(t, errno(unix.ETIME), res)
		case <-time.After(5 * time.Second):
			t.Fatal("a re-armed op lost its deadline")
		}

		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		done := make(chan int32, 1)
		go func() {
			res, _, _ := l.Do(ctx, &Recv{Fd: b, Buf: buf, Flags: unix.MSG_DONTWAIT})
			done <- res
		}()
		select {
		case res := <-done:
			require.Equal(t, errno(unix.ECANCELED), res)
		case <-time.After(5 * time.Second):
			t.Fatal("a re-armed op could not be cancelled")
		}

		// And a re-armed op that gets its data completes with it.
		go func() { time.Sleep(20 * time.Millisecond); unix.Write(a, []byte("late")) }()
		require.EqualValues(t, 4, do(t, l, &Recv{Fd: b, Buf: buf, Flags: unix.MSG_DONTWAIT}))
		if p.Backend() == Uring {
			require.NotZero(t, p.Metrics()[0].Rearms, "the io_uring path must have re-armed")
		}
	})
}

// TestCancelFdRearmed: cancelling by fd reaches an op waiting behind its
// re-arm poll too, so the fd can be closed.
func TestCancelFdRearmed(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		_, b := socketpair(t)
		got := make(chan int32, 1)
		require.NoError(t, l.Submit(&Recv{Fd: b, Buf: make([]byte, 8), Flags: unix.MSG_DONTWAIT}, func(res int32, _ uint32) { got <- res }))
		time.Sleep(20 * time.Millisecond)
		require.NoError(t, l.Post(func() { l.CancelFdInLoop(b) }))
		select {
		case res := <-got:
			require.Equal(t, errno(unix.ECANCELED), res)
		case <-time.After(5 * time.Second):
			t.Fatal("cancel by fd missed a re-armed op")
		}
	})
}

// step is one line of a differential run: what was done and what came back.
type step struct {
	what  string
	res   int32
	flags uint32
}

func (s step) String() string {
	return fmt.Sprintf("%-40s %4d %s flags %#x", s.what, s.res, errName(s.res), s.flags)
}

func errName(res int32) string {
	if res >= 0 {
		return ""
	}
	return unix.ErrnoName(unix.Errno(-res))
}

// scenario runs a fixed sequence of ops, covering success, every error
// path we can provoke on purpose, EOF, cancellation and deadlines, and
// records each result. Results that depend on timing (short transfers) are
// not in it.
func scenario(t *testing.T, p *Proactor) []step {
	l := p.Loop(0)
	var out []step
	rec := func(what string, op Op) int32 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, flags, err := l.Do(ctx, op)
		require.NoError(t, err, what)
		out = append(out, step{what, res, flags &^ ring.CQEFSockNonempty})
		return res
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "f")

	rec("nop", Nop{})

	// Sockets.
	a, b := socketpair(t)
	rec("send", &Send{Fd: a, Buf: []byte("hello")})
	buf := make([]byte, 16)
	rec("recv", &Recv{Fd: b, Buf: buf})
	rec("send again", &Send{Fd: a, Buf: []byte("xy")})
	rec("recv peek", &Recv{Fd: b, Buf: buf, Flags: unix.MSG_PEEK})
	rec("recv after peek", &Recv{Fd: b, Buf: buf})
	rec("shutdown wr", &Shutdown{Fd: a, How: unix.SHUT_WR})
	rec("recv at eof", &Recv{Fd: b, Buf: buf})
	rec("send after shutdown wr", &Send{Fd: a, Buf: []byte("x")})
	rec("send zc", &SendZC{Fd: b, Buf: []byte("zc")})
	res, _, _ := l.DoUntil(&Recv{Fd: a, Buf: buf}, time.Now().Add(50*time.Millisecond), nil)
	out = append(out, step{what: "recv zc data", res: res})
	c, d := socketpair(t)
	unix.Close(d)
	rec("send to closed peer", &Send{Fd: c, Buf: []byte("x")})
	rec("recv from closed peer", &Recv{Fd: c, Buf: buf})
	rec("recv bad fd", &Recv{Fd: 1 << 20, Buf: buf})
	rec("send bad fd", &Send{Fd: 1 << 20, Buf: buf})
	pr, pw := pipe(t)
	rec("send on a pipe", &Send{Fd: pw, Buf: []byte("x")})
	rec("write pipe pollable", &Write{Fd: pw, Buf: []byte("pipe"), Off: -1, Pollable: true})
	rec("read pipe pollable", &Read{Fd: pr, Buf: buf[:2], Off: -1, Pollable: true})
	rec("pollin", &PollAdd{Fd: pr, Events: unix.POLLIN})
	rec("read pipe after poll", &Read{Fd: pr, Buf: buf, Off: -1, Pollable: true})
	rec("shutdown not connected", &Shutdown{Fd: unixSocket(t), How: unix.SHUT_RDWR})
	rec("shutdown not a socket", &Shutdown{Fd: pr, How: unix.SHUT_RDWR})

	// TCP: accept, connect, refused, reset.
	lfd, port := listenTCP(t)
	cfd := tcpSocket(t)
	conn := &Connect{Fd: cfd}
	setInet4(conn, port)
	rec("connect", conn)
	sfd := rec("accept", &Accept{Fd: lfd})
	if sfd > 0 {
		t.Cleanup(func() { unix.Close(int(sfd)) })
		out[len(out)-1].res = 1 // the fd number itself may differ
	}
	conn2 := &Connect{Fd: cfd}
	setInet4(conn2, port)
	rec("connect connected", conn2)
	rec("accept not listening", &Accept{Fd: cfd})
	rec("accept bad fd", &Accept{Fd: 1 << 20})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	refused := &Connect{Fd: tcpSocket(t)}
	setInet4(refused, closedPort)
	rec("connect refused", refused)
	rec("connect backlog full", connectUnix(unixSocket(t), unixListener(t)))
	if sfd > 0 {
		// Unread data at close makes the kernel reset the connection.
		rec("send before reset", &Send{Fd: cfd, Buf: []byte("unread")})
		time.Sleep(10 * time.Millisecond)
		require.NoError(t, unix.SetsockoptLinger(int(sfd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}))
		unix.Close(int(sfd))
		sfd = 0
		rec("recv after reset", &Recv{Fd: cfd, Buf: buf})
	}

	// Files.
	fd := rec("openat create", &Openat{Dir: unix.AT_FDCWD, Path: CString(path), Flags: unix.O_RDWR | unix.O_CREAT | unix.O_EXCL, Mode: 0o600})
	out[len(out)-1].res = min(fd, 1)
	rec("openat exists", &Openat{Dir: unix.AT_FDCWD, Path: CString(path), Flags: unix.O_RDWR | unix.O_CREAT | unix.O_EXCL, Mode: 0o600})
	rec("openat enoent", &Openat{Dir: unix.AT_FDCWD, Path: CString(filepath.Join(dir, "none")), Flags: unix.O_RDONLY})
	rec("openat enotdir", &Openat{Dir: unix.AT_FDCWD, Path: CString(path + "/x"), Flags: unix.O_RDONLY})
	rec("openat bad dir", &Openat{Dir: 1 << 20, Path: CString("x"), Flags: unix.O_RDONLY})
	f := int(fd)
	rec("write", &Write{Fd: f, Buf: []byte("hello world"), Off: 0})
	rec("read", &Read{Fd: f, Buf: buf, Off: 0})
	rec("read past eof", &Read{Fd: f, Buf: buf, Off: 1000})
	rec("read at position", &Read{Fd: f, Buf: buf[:4], Off: -1})
	rec("write at position", &Write{Fd: f, Buf: []byte("W"), Off: -1})
	x, y := make([]byte, 3), make([]byte, 5)
	rec("writev", &Writev{Fd: f, Iovs: iovecs([]byte("ab"), []byte("cde")), Off: 20})
	rec("readv", &Readv{Fd: f, Iovs: iovecs(x, y), Off: 19})
	rec("fsync", &Fsync{Fd: f})
	rec("fdatasync", &Fsync{Fd: f, Datasync: true})
	rec("fallocate", &Fallocate{Fd: f, Off: 0, Len: 8192})
	rec("fallocate len 0", &Fallocate{Fd: f, Off: 0, Len: 0})
	st := &Statx{Dir: f, Flags: unix.AT_EMPTY_PATH, Mask: unix.STATX_SIZE}
	rec("statx fd", st)
	out = append(out, step{what: "statx size", res: int32(st.Stat.Size)})
	rec("statx enoent", &Statx{Dir: unix.AT_FDCWD, Path: CString(filepath.Join(dir, "none")), Mask: unix.STATX_SIZE})
	ro := rec("openat2 read-only", &Openat2{Dir: unix.AT_FDCWD, Path: CString(path), How: unix.OpenHow{Flags: unix.O_RDONLY}})
	out[len(out)-1].res = min(ro, 1)
	rec("write to read-only", &Write{Fd: int(ro), Buf: []byte("x"), Off: 0})
	dfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(dfd)
	rec("openat2 escapes beneath", &Openat2{Dir: dfd, Path: CString("../x"), How: unix.OpenHow{Flags: unix.O_RDONLY, Resolve: unix.RESOLVE_BENEATH}})
	rec("read a directory", &Read{Fd: dfd, Buf: buf, Off: 0})
	rec("splice file to pipe", &Splice{In: f, OffIn: 0, Out: pw, OffOut: -1, N: 5})
	rec("read spliced", &Read{Fd: pr, Buf: buf, Off: -1, Pollable: true})
	rec("splice no pipe", &Splice{In: f, OffIn: 0, Out: f, OffOut: 100, N: 5})
	rec("sendfile", &Sendfile{Sock: a, File: f, Off: 0, N: 5})
	rec("sendfile to shut socket", &Sendfile{Sock: a, File: f, Off: 0, N: 5})
	s1, _ := socketpair(t)
	rec("sendfile past eof", &Sendfile{Sock: s1, File: f, Off: 1 << 20, N: 5})
	rec("sendfile bad file", &Sendfile{Sock: s1, File: 1 << 20, Off: 0, N: 5})
	rec("close", &Close{Fd: int(ro)})
	rec("close", &Close{Fd: f})
	rec("close again", &Close{Fd: f})
	rec("read closed", &Read{Fd: f, Buf: buf, Off: 0})

	// Cancellation and deadlines.
	_, idle := socketpair(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	res, _, _ = l.Do(ctx, &Recv{Fd: idle, Buf: buf})
	out = append(out, step{what: "recv cancelled", res: res})
	res, _, _ = l.Do(ctx, &Recv{Fd: idle, Buf: buf})
	out = append(out, step{what: "recv cancelled before submit", res: res})
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer dcancel()
	res, _, _ = l.Do(dctx, &Recv{Fd: idle, Buf: buf})
	out = append(out, step{what: "recv deadline", res: res})
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	res, _, _ = l.Do(ctx2, &Accept{Fd: lfd})
	out = append(out, step{what: "accept deadline", res: res})
	rec("timeout", &Timeout{D: time.Millisecond})
	ctx3, cancel3 := context.WithCancel(context.Background())
	time.AfterFunc(5*time.Millisecond, cancel3)
	res, _, _ = l.Do(ctx3, &Timeout{D: time.Hour})
	out = append(out, step{what: "timeout cancelled", res: res})
	got := make(chan int32, 1)
	require.NoError(t, l.SubmitTimeout(&Recv{Fd: idle, Buf: buf, Flags: unix.MSG_DONTWAIT}, 10*time.Millisecond, func(res int32, _ uint32) { got <- res }))
	out = append(out, step{what: "recv dontwait deadline", res: <-got})
	return out
}

func pipe(t *testing.T) (int, int) {
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK))
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0], p[1]
}

func tcpSocket(t *testing.T) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestDifferential runs the same scenario on the epoll driver and on
// io_uring (native and simulated kernels, where per-op fallback serves
// what the ring lacks) and requires identical results, line by line.
func TestDifferential(t *testing.T) {
	if _, ok := sandboxed(); ok {
		t.Skip("needs io_uring; the sandbox child runs the rest of the suite")
	}
	configs := []struct {
		name string
		opts Options
	}{
		{"epoll", Options{Backend: Epoll}},
		{"uring", Options{Backend: Uring}},
		{"uring-enter", Options{Backend: Uring, Wait: WaitEnter}},
		{"uring-5.10", Options{Backend: Uring, Kernel: "5.10"}},
		{"uring-5.6", Options{Backend: Uring, Kernel: "5.6"}},
	}
	var want []step
	for _, c := range configs {
		t.Run(c.name, func(t *testing.T) {
			checkLeaks(t)
			opts := c.opts
			opts.Loops = 1
			p := newProactor(t, opts)
			got := scenario(t, p)
			if want == nil {
				want = got
				for _, s := range got {
					t.Log(s)
				}
				return
			}
			require.Equal(t, len(want), len(got))
			for i := range want {
				if want[i] != got[i] {
					t.Errorf("differs from epoll:\n  epoll: %v\n  %s: %v", want[i], c.name, got[i])
				}
			}
		})
	}
}

// TestPostSubmitRacingClose: Post, Submit and Do from many goroutines while
// the proactor closes. Nothing hangs; every accepted Post runs, every
// accepted Submit completes exactly once, every refused one says ErrClosed.
func TestPostSubmitRacingClose(t *testing.T) {
	for _, d := range drivers {
		if d.opts.Kernel != "" {
			continue // the kernel matrix adds nothing to a race on the queue
		}
		t.Run(d.name, func(t *testing.T) {
			checkLeaks(t)
			for iter := 0; iter < 10; iter++ {
				opts := d.opts
				opts.Loops, opts.Logger = 2, quiet
				p, err := New(opts)
				require.NoError(t, err)
				var accepted, ran, submitted, completed, twice atomic.Int64
				var wg sync.WaitGroup
				start := make(chan struct{})
				for g := 0; g < 8; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						for i := 0; i < 200; i++ {
							l := p.Next()
							switch i % 3 {
							case 0:
								if err := l.Post(func() { ran.Add(1) }); err == nil {
									accepted.Add(1)
								} else if err != ErrClosed {
									t.Errorf("Post: %v", err)
								}
							case 1:
								var once atomic.Bool
								if err := l.Submit(Nop{}, func(int32, uint32) {
									if once.Swap(true) {
										twice.Add(1)
									}
									completed.Add(1)
								}); err == nil {
									submitted.Add(1)
								}
							case 2:
								_, _, err := l.Do(context.Background(), Nop{})
								if err != nil && err != ErrClosed {
									t.Errorf("Do: %v", err)
								}
							}
						}
					}()
				}
				close(start)
				time.Sleep(time.Duration(iter) * 100 * time.Microsecond)
				closed := make(chan struct{})
				go func() { p.Close(); close(closed) }()
				select {
				case <-closed:
				case <-time.After(10 * time.Second):
					t.Fatal("Close hung with submitters racing it")
				}
				wg.Wait()
				require.Equal(t, accepted.Load(), ran.Load(), "an accepted Post did not run")
				require.Equal(t, submitted.Load(), completed.Load(), "an accepted Submit did not complete")
				require.Zero(t, twice.Load())
			}
		})
	}
}
