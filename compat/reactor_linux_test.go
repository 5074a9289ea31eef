package compat

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

var (
	eagain    = -int32(unix.EAGAIN)
	ecanceled = -int32(unix.ECANCELED)
	enoent    = -int32(unix.ENOENT)
	ealready  = -int32(unix.EALREADY)
)

func newReactor(t testing.TB, cfg Config) *Reactor {
	t.Helper()
	r, err := NewReactor(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, r.Close()) })
	return r
}

// socketpair returns a connected non-blocking pair, closed at cleanup.
func socketpair(t testing.TB) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() {
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	return fds[0], fds[1]
}

func write(t testing.TB, fd int, s string) {
	t.Helper()
	n, err := unix.Write(fd, []byte(s))
	require.NoError(t, err)
	require.Equal(t, len(s), n)
}

// poll gathers completions until want of them arrived, failing after 5s.
func poll(t testing.TB, r *Reactor, want int) []Completion {
	t.Helper()
	var got []Completion
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < want {
		left := time.Until(deadline)
		require.Greater(t, left, time.Duration(0), "timed out with %d of %d completions: %v", len(got), want, got)
		require.NoError(t, r.Poll(left, func(c Completion) { got = append(got, c) }))
	}
	return got
}

// pollNone checks that a non-blocking Poll delivers nothing.
func pollNone(t testing.TB, r *Reactor) {
	t.Helper()
	require.NoError(t, r.Poll(0, func(c Completion) { t.Fatalf("unexpected completion %+v", c) }))
}

// epollMask reads the kernel's view of fd's registration in r's epoll set
// from /proc/self/fdinfo, so tests check what epoll really watches rather
// than what the reactor believes.
func epollMask(t testing.TB, r *Reactor, fd int) (events uint32, registered bool) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", r.Fd()))
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "tfd:" || f[1] != strconv.Itoa(fd) {
			continue
		}
		ev, err := strconv.ParseUint(f[3], 16, 32)
		require.NoError(t, err)
		// The kernel always watches EPOLLERR|EPOLLHUP; leave them out so
		// tests compare what the reactor asked for.
		return uint32(ev) &^ (unix.EPOLLERR | unix.EPOLLHUP), true
	}
	return 0, false
}

func TestImmediateSuccess(t *testing.T) {
	r := newReactor(t, Config{})
	a, b := socketpair(t)
	write(t, b, "hello")

	op := &recvOp{fd: a, buf: make([]byte, 16)}
	r.Submit(1, op)
	// The data was there, so the first attempt completed it, but the
	// result waits for Poll: a completion is never delivered from Submit.
	assert.True(t, r.Pending())
	assert.Equal(t, enoent, r.Cancel(1), "a completed op cannot be cancelled")
	assert.Empty(t, r.fds, "an op that never waited registers nothing")
	_, registered := epollMask(t, r, a)
	assert.False(t, registered)

	got := poll(t, r, 1)
	assert.Equal(t, []Completion{{UserData: 1, Res: 5}}, got)
	assert.Equal(t, "hello", string(op.buf[:op.n]))
	assert.False(t, r.Pending())
}

func TestWaitThenReady(t *testing.T) {
	r := newReactor(t, Config{})
	a, b := socketpair(t)

	op := &recvOp{fd: a, buf: make([]byte, 16)}
	r.Submit(7, op)
	assert.False(t, r.Pending())
	pollNone(t, r)
	mask, registered := epollMask(t, r, a)
	require.True(t, registered)
	assert.Equal(t, uint32(baseEvents), mask, "registered EPOLLIN|EPOLLRDHUP|EPOLLET, no EPOLLOUT")

	go func() {
		time.Sleep(20 * time.Millisecond)
		unix.Write(b, []byte("late"))
	}()
	got := poll(t, r, 1)
	assert.Equal(t, []Completion{{UserData: 7, Res: 4}}, got)
	assert.Equal(t, "late", string(op.buf[:op.n]))

	// The fd stays registered for the next op: one EPOLL_CTL_ADD per fd.
	_, registered = epollMask(t, r, a)
	assert.True(t, registered)
}

func TestFIFOOrderOnOneFd(t *testing.T) {
	r := newReactor(t, Config{})
	a, b := socketpair(t)

	first := &recvOp{fd: a, buf: make([]byte, 3)}
	second := &recvOp{fd: a, buf: make([]byte, 3)}
	r.Submit(1, first)
	r.Submit(2, second)
	pollNone(t, r)

	// One edge for six bytes: edge-triggered means both ops run on it.
	write(t, b, "abcdef")
	got := poll(t, r, 2)
	assert.Equal(t, []Completion{{UserData: 1, Res: 3}, {UserData: 2, Res: 3}}, got)
	assert.Equal(t, "abc", string(first.buf))
	assert.Equal(t, "def", string(second.buf))
}

func TestFIFONoOvertaking(t *testing.T) {
	// A recv submitted while another waits must queue behind it even if
	// data arrived in between; attempting at once would let it overtake.
	r := newReactor(t, Config{})
	a, b := socketpair(t)
	first := &recvOp{fd: a, buf: make([]byte, 2)}
	second := &recvOp{fd: a, buf: make([]byte, 2)}
	r.Submit(1, first)
	write(t, b, "xy")
	r.Submit(2, second)
	got := poll(t, r, 1)
	assert.Equal(t, []Completion{{UserData: 1, Res: 2}}, got)
	assert.Equal(t, "xy", string(first.buf))
	write(t, b, "zw")
	got = poll(t, r, 1)
	assert.Equal(t, []Completion{{UserData: 2, Res: 2}}, got)
}

func TestEOF(t *testing.T) {
	r := newReactor(t, Config{})
	a, b := socketpair(t)
	r.Submit(1, &recvOp{fd: a, buf: make([]byte, 8)})
	pollNone(t, r)
	require.NoError(t, unix.Shutdown(b, unix.SHUT_WR))
	assert.Equal(t, []Completion{{UserData: 1, Res: 0}}, poll(t, r, 1))

	// And at once, for a recv submitted after the peer is gone.
	r.Submit(2, &recvOp{fd: a, buf: make([]byte, 8)})
	assert.Equal(t, []Completion{{UserData: 2, Res: 0}}, poll(t, r, 1))
}

// fill writes to fd until its socket buffer is full.
func fill(t testing.TB, fd int) int {
	t.Helper()
	chunk := make([]byte, 64<<10)
	total := 0
	for {
		n, err := unix.Write(fd, chunk)
		if err == unix.EAGAIN {
			return total
		}
		require.NoError(t, err)
		total += n
	}
}

func TestEpollOutOnlyWhileWriteWaits(t *testing.T) {
	r := newReactor(t, Config{})
	a, b := socketpair(t)

	// A pending read registers the fd without EPOLLOUT.
	r.Submit(1, &recvOp{fd: a, buf: make([]byte, 8)})
	mask, _ := epollMask(t, r, a)
	assert.Zero(t, mask&unix.EPOLLOUT)

	filled := fill(t, a)
	send := &sendOp{fd: a, buf: []byte("after the flood")}
	r.Submit(2, send)
	pollNone(t, r)
	mask, _ = epollMask(t, r, a)
	assert.NotZero(t, mask&unix.EPOLLOUT, "a waiting write arms EPOLLOUT")

	// Drain the peer: the send completes and EPOLLOUT is dropped again.
	buf := make([]byte, 64<<10)
	drained := 0
	var got []Completion
	deadline := time.Now().Add(5 * time.Second)
	for len(got) == 0 && time.Now().Before(deadline) {
		n, err := unix.Read(b, buf)
		if err == nil {
			drained += n
		}
		require.NoError(t, r.Poll(10*time.Millisecond, func(c Completion) { got = append(got, c) }))
	}
	require.Equal(t, []Completion{{UserData: 2, Res: int32(len(send.buf))}}, got)
	assert.Greater(t, drained, 0)
	t.Logf("socket buffer held %d bytes", filled)
	mask, registered := epollMask(t, r, a)
	require.True(t, registered)
	assert.Zero(t, mask&unix.EPOLLOUT, "EPOLLOUT dropped once no write waits")
	assert.Equal(t, uint32(baseEvents), r.fds[a].mask)

	// Cancelling the last waiting write drops EPOLLOUT too.
	for {
		if _, err := unix.Read(b, buf); err != nil {
			break
		}
	}
	fill(t, a)
	r.Submit(3, send)
	mask, _ = epollMask(t, r, a)
	require.NotZero(t, mask&unix.EPOLLOUT)
	assert.Equal(t, int32(0), r.Cancel(3))
	mask, _ = epollMask(t, r, a)
	assert.Zero(t, mask&unix.EPOLLOUT)
	assert.Equal(t, []Completion{{UserData: 3, Res: ecanceled}}, poll(t, r, 1))
}

func TestHangupWakesBothDirections(t *testing.T) {
	r := newReactor(t, Config{})
	a, b := socketpair(t)
	fill(t, a)
	r.Submit(1, &recvOp{fd: a, buf: make([]byte, 8)})
	r.Submit(2, &sendOp{fd: a, buf: []byte("x")})
	pollNone(t, r)
	require.NoError(t, unix.Close(b))
	got := poll(t, r, 2)
	byUD := map[uint64]int32{}
	for _, c := range got {
		byUD[c.UserData] = c.Res
	}
	// b died with a's data unread, so the kernel resets the connection.
	assert.Equal(t, -int32(unix.ECONNRESET), byUD[1], "recv sees the reset")
	assert.Equal(t, -int32(unix.EPIPE), byUD[2], "send sees EPIPE, without SIGPIPE")
}

func TestCancelWaiting(t *testing.T) {
	r := newReactor(t, Config{})
	a, b := socketpair(t)
	r.Submit(1, &recvOp{fd: a, buf: make([]byte, 8)})
	assert.Equal(t, int32(0), r.Cancel(1))
	assert.Equal(t, enoent, r.Cancel(1), "cancelled once; the -ECANCELED is queued")
	assert.True(t, r.Pending())
	assert.Equal(t, []Completion{{UserData: 1, Res: ecanceled}}, poll(t, r, 1))

	// The cancelled recv consumed nothing.
	write(t, b, "kept")
	op := &recvOp{fd: a, buf: make([]byte, 8)}
	r.Submit(2, op)
	assert.Equal(t, []Completion{{UserData: 2, Res: 4}}, poll(t, r, 1))
	assert.Equal(t, "kept", string(op.buf[:op.n]))
}

func TestCancelUnknown(t *testing.T) {
	r := newReactor(t, Config{})
	assert.Equal(t, enoent, r.Cancel(12345))
	assert.Equal(t, 0, r.CancelFd(999))
}

func TestCancelWorkerOps(t *testing.T) {
	r := newReactor(t, Config{Workers: 1})
	started := make(chan struct{})
	release := make(chan struct{})
	running := &funcOp{fd: -1, fn: func() (int32, uint32) {
		close(started)
		<-release
		return 42, 0
	}}
	queued := &funcOp{fd: -1, fn: func() (int32, uint32) {
		t.Error("a cancelled job ran")
		return 0, 0
	}}
	r.Submit(1, running)
	<-started
	r.Submit(2, queued) // the only worker is busy: this one waits in the queue

	assert.Equal(t, ealready, r.Cancel(1), "running on a worker")
	assert.Equal(t, int32(0), r.Cancel(2), "queued, not started")
	assert.Equal(t, []Completion{{UserData: 2, Res: ecanceled}}, poll(t, r, 1))

	close(release)
	assert.Equal(t, []Completion{{UserData: 1, Res: 42}}, poll(t, r, 1), "the real result")
	assert.Equal(t, enoent, r.Cancel(1))
}

// TestCancelMultishotJobAsItReturns: a multishot job cancelled just as
// its worker returns a FlagMore result. That result must come before the
// final -ECANCELED, never after it; it used to be collected after,
// because Cancel took the results and the job's state under two holds of
// the lock and the worker posted in between.
func TestCancelMultishotJobAsItReturns(t *testing.T) {
	for iter := 0; iter < 300; iter++ {
		r := newReactor(t, Config{Workers: 1})
		release, unblockB := make(chan struct{}), make(chan struct{})
		var returning atomic.Bool
		calls := 0
		a := &funcOp{fd: -1, fn: func() (int32, uint32) {
			if calls++; calls == 1 {
				<-release
				returning.Store(true)
				return 1, FlagMore
			}
			return 2, 0
		}}
		b := &funcOp{fd: -1, fn: func() (int32, uint32) { <-unblockB; return 3, 0 }}
		r.Submit(1, a)
		time.Sleep(time.Microsecond)
		r.Submit(2, b) // behind a: when a re-queues, the worker takes b
		close(release)
		for !returning.Load() {
		}
		res := r.Cancel(1)
		close(unblockB)
		var got []Completion
		final := false
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
			r.Poll(5*time.Millisecond, func(c Completion) {
				if c.UserData == 1 {
					got = append(got, c)
				}
			})
			if final {
				break // one more Poll after the final one: nothing may follow
			}
			final = len(got) > 0 && got[len(got)-1].Flags&FlagMore == 0
		}
		for i, c := range got {
			if c.Flags&FlagMore == 0 && i != len(got)-1 {
				t.Fatalf("iteration %d: Cancel %d, completions of ud 1 after its final one: %+v", iter, res, got)
			}
		}
		require.True(t, final, "iteration %d: no final completion: %+v", iter, got)
	}
}

func TestCancelFd(t *testing.T) {
	r := newReactor(t, Config{})
	a, _ := socketpair(t)
	fill(t, a)
	r.Submit(1, &recvOp{fd: a, buf: make([]byte, 8)})
	r.Submit(2, &recvOp{fd: a, buf: make([]byte, 8)})
	r.Submit(3, &sendOp{fd: a, buf: []byte("x")})
	_, registered := epollMask(t, r, a)
	require.True(t, registered)

	assert.Equal(t, 3, r.CancelFd(a))
	_, registered = epollMask(t, r, a)
	assert.False(t, registered, "EPOLL_CTL_DEL")
	assert.NotContains(t, r.fds, a)
	got := poll(t, r, 3)
	assert.Equal(t, []Completion{{1, ecanceled, 0}, {2, ecanceled, 0}, {3, ecanceled, 0}}, got)
	assert.Equal(t, 0, r.CancelFd(a))
}

func TestCancelFdThenReuse(t *testing.T) {
	// The proactor's close sequence: CancelFd, close, and the number comes
	// back for a new socket, which must work from a clean slate.
	r := newReactor(t, Config{})
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	r.Submit(1, &recvOp{fd: fds[0], buf: make([]byte, 8)})
	assert.Equal(t, 1, r.CancelFd(fds[0]))
	unix.Close(fds[0])
	unix.Close(fds[1])
	poll(t, r, 1)

	a, b := socketpair(t)
	require.Equal(t, fds[0], a, "the kernel reuses the lowest free number")
	op := &recvOp{fd: a, buf: make([]byte, 8)}
	r.Submit(2, op)
	write(t, b, "new")
	assert.Equal(t, []Completion{{UserData: 2, Res: 3}}, poll(t, r, 1))
}

func TestCancelFdCancelsQueuedJobs(t *testing.T) {
	r := newReactor(t, Config{Workers: 1})
	started := make(chan struct{})
	release := make(chan struct{})
	r.Submit(1, &funcOp{fd: 100, fn: func() (int32, uint32) {
		close(started)
		<-release
		return 1, 0
	}})
	<-started
	r.Submit(2, &funcOp{fd: 100, fn: func() (int32, uint32) { return 2, 0 }})
	r.Submit(3, &funcOp{fd: 101, fn: func() (int32, uint32) { return 3, 0 }})
	assert.Equal(t, 1, r.CancelFd(100), "only the queued job on fd 100; the running one finishes")
	close(release)
	got := poll(t, r, 3)
	assert.Contains(t, got, Completion{UserData: 2, Res: ecanceled})
	assert.Contains(t, got, Completion{UserData: 1, Res: 1})
	assert.Contains(t, got, Completion{UserData: 3, Res: 3})
}

func listenTCP(t testing.TB) (fd int, addr string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	require.NoError(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(fd, 16))
	sa, err := unix.Getsockname(fd)
	require.NoError(t, err)
	return fd, fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
}

func TestAccept(t *testing.T) {
	r := newReactor(t, Config{})
	lfd, addr := listenTCP(t)
	r.Submit(1, &acceptOp{fd: lfd})
	pollNone(t, r)
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	got := poll(t, r, 1)
	require.GreaterOrEqual(t, got[0].Res, int32(0))
	assert.Zero(t, got[0].Flags)
	unix.Close(int(got[0].Res))
}

func TestMultishotAccept(t *testing.T) {
	r := newReactor(t, Config{})
	lfd, addr := listenTCP(t)
	r.Submit(9, &acceptOp{fd: lfd, multishot: true})
	pollNone(t, r)

	for i := range 3 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err, "dial %d", i)
		defer c.Close()
	}
	got := poll(t, r, 3)
	require.Len(t, got, 3)
	for _, c := range got {
		assert.Equal(t, uint64(9), c.UserData)
		assert.GreaterOrEqual(t, c.Res, int32(0))
		assert.Equal(t, FlagMore, c.Flags, "still armed")
		unix.Close(int(c.Res))
	}
	// Ended by cancel: one final CQE without FlagMore.
	assert.Equal(t, int32(0), r.Cancel(9))
	assert.Equal(t, []Completion{{UserData: 9, Res: ecanceled}}, poll(t, r, 1))
}

func TestMultishotFairness(t *testing.T) {
	// A multishot op that never runs dry must not hold one Poll forever:
	// after drainBudget attempts the rest waits for the next Poll.
	r := newReactor(t, Config{})
	a, _ := socketpair(t)
	const total = 3*drainBudget + 5
	calls := 0
	r.Submit(1, &funcOp{fd: a, readiness: unix.EPOLLIN, fn: func() (int32, uint32) {
		calls++
		if calls == total {
			return int32(calls), 0
		}
		return int32(calls), FlagMore
	}})
	assert.Equal(t, drainBudget, calls, "Submit stops after the budget")
	assert.True(t, r.Pending())
	var got []Completion
	polls := 0
	for r.Pending() {
		polls++
		require.NoError(t, r.Poll(0, func(c Completion) { got = append(got, c) }))
	}
	require.Len(t, got, total)
	for i, c := range got {
		assert.Equal(t, int32(i+1), c.Res)
	}
	assert.Zero(t, got[total-1].Flags)
	assert.Equal(t, 3, polls, "drainBudget attempts per Poll")
	assert.Empty(t, r.byUD)
}

func TestWakeUnblocksPoll(t *testing.T) {
	r := newReactor(t, Config{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(30 * time.Millisecond)
		r.Wake()
	}()
	start := time.Now()
	require.NoError(t, r.Poll(-1, func(c Completion) { t.Fatalf("unexpected %+v", c) }))
	assert.Less(t, time.Since(start), 5*time.Second)
	<-done

	// A Wake with no Poll asleep only sets a flag, and the next Poll(-1)
	// returns at once.
	r.Wake()
	assert.False(t, r.wake.pending.Load(), "no eventfd write while nobody sleeps")
	assert.True(t, r.Pending())
	require.NoError(t, r.Poll(-1, func(Completion) {}))
	assert.False(t, r.Pending())
}

func TestPollTimeout(t *testing.T) {
	r := newReactor(t, Config{})
	start := time.Now()
	require.NoError(t, r.Poll(20*time.Millisecond, func(Completion) {}))
	assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond)
}

func TestSubmitFromDeliverWaitsForNextPoll(t *testing.T) {
	r := newReactor(t, Config{})
	a, b := socketpair(t)
	write(t, b, "12")
	op := &recvOp{fd: a, buf: make([]byte, 1)}
	r.Submit(1, op)
	var got []uint64
	require.NoError(t, r.Poll(0, func(c Completion) {
		got = append(got, c.UserData)
		r.Submit(c.UserData+1, op) // completes at once, delivered later
		assert.Equal(t, errReentrant, r.Poll(0, func(Completion) {}))
	}))
	assert.Equal(t, []uint64{1}, got)
	assert.True(t, r.Pending())
	require.NoError(t, r.Poll(0, func(c Completion) { got = append(got, c.UserData) }))
	assert.Equal(t, []uint64{1, 2}, got)
}

func TestPipeRead(t *testing.T) {
	r := newReactor(t, Config{})
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	buf := make([]byte, 8)
	r.Submit(1, &funcOp{fd: p[0], readiness: unix.EPOLLIN, fn: func() (int32, uint32) {
		n, err := unix.Read(p[0], buf)
		if err != nil {
			return errRes(err), 0
		}
		return int32(n), 0
	}})
	pollNone(t, r)
	write(t, p[1], "pipe")
	assert.Equal(t, []Completion{{UserData: 1, Res: 4}}, poll(t, r, 1))
	assert.Equal(t, "pipe", string(buf[:4]))
}

func tempFile(t testing.TB, content string) int {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "compat")
	require.NoError(t, err)
	_, err = f.WriteString(content)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	fd, err := unix.Open(f.Name(), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func TestPreadOnPool(t *testing.T) {
	r := newReactor(t, Config{})
	fd := tempFile(t, "0123456789")
	op := &preadOp{fd: fd, buf: make([]byte, 4), off: 3}
	r.Submit(1, op)
	assert.Empty(t, r.fds, "pool ops never touch epoll")
	// The worker's result wakes a Poll that would otherwise sleep forever.
	assert.Equal(t, []Completion{{UserData: 1, Res: 4}}, poll(t, r, 1))
	assert.Equal(t, "3456", string(op.buf))
	assert.Empty(t, r.byUD)
}

func TestRegularFileAsPollable(t *testing.T) {
	r := newReactor(t, Config{})
	fd := tempFile(t, "0123456789")

	// A regular file is always "ready": the first attempt just works.
	op := &preadOp{fd: fd, buf: make([]byte, 3), readiness: unix.EPOLLIN}
	r.Submit(1, op)
	assert.Equal(t, []Completion{{UserData: 1, Res: 3}}, poll(t, r, 1))

	// If the attempt says EAGAIN (RWF_NOWAIT on a cold page cache), epoll
	// refuses the file with EPERM; the op must finish on the pool, not hang.
	op = &preadOp{fd: fd, buf: make([]byte, 3), off: 7, readiness: unix.EPOLLIN, nowaitOnce: true}
	r.Submit(2, op)
	assert.Equal(t, []Completion{{UserData: 2, Res: 3}}, poll(t, r, 1))
	assert.Equal(t, "789", string(op.buf))
	require.Contains(t, r.fds, fd)
	assert.True(t, r.fds[fd].unpollable)

	// Later ops on the fd go straight to the pool until CancelFd.
	op = &preadOp{fd: fd, buf: make([]byte, 2), readiness: unix.EPOLLIN, nowaitOnce: true}
	r.Submit(3, op)
	assert.Equal(t, []Completion{{UserData: 3, Res: eagain}}, poll(t, r, 1),
		"a worker makes one attempt and reports what it got, as io_uring would")
	assert.Equal(t, 0, r.CancelFd(fd))
	assert.Empty(t, r.fds)
}

func TestBadFd(t *testing.T) {
	// An fd that is not open: the attempt fails with EBADF at once.
	r := newReactor(t, Config{})
	r.Submit(1, &recvOp{fd: 1 << 20, buf: make([]byte, 1)})
	assert.Equal(t, []Completion{{UserData: 1, Res: -int32(unix.EBADF)}}, poll(t, r, 1))

	// An op that claims EAGAIN on a closed fd: EPOLL_CTL_ADD says EBADF,
	// which becomes its result.
	r.Submit(2, &funcOp{fd: 1 << 20, readiness: unix.EPOLLIN, fn: func() (int32, uint32) { return eagain, 0 }})
	assert.Equal(t, []Completion{{UserData: 2, Res: -int32(unix.EBADF)}}, poll(t, r, 1))
	assert.Empty(t, r.fds)
	assert.Empty(t, r.byUD)
}

func TestClose(t *testing.T) {
	r, err := NewReactor(Config{Workers: 1})
	require.NoError(t, err)
	a, _ := socketpair(t)
	r.Submit(1, &recvOp{fd: a, buf: make([]byte, 8)}) // waiting on epoll

	started := make(chan struct{})
	var finished atomic.Bool
	r.Submit(2, &funcOp{fd: -1, fn: func() (int32, uint32) { // running on the worker
		close(started)
		time.Sleep(50 * time.Millisecond)
		finished.Store(true)
		return 0, 0
	}})
	r.Submit(3, &funcOp{fd: -1, fn: func() (int32, uint32) { // queued behind it
		t.Error("a queued job ran after Close")
		return 0, 0
	}})
	<-started

	require.NoError(t, r.Close())
	assert.True(t, finished.Load(), "Close waits for running worker ops")
	require.NoError(t, r.Close(), "Close twice")
	assert.ErrorIs(t, r.Poll(0, func(c Completion) { t.Errorf("delivered after Close: %+v", c) }), ErrClosed)
	r.Submit(4, &recvOp{fd: a, buf: make([]byte, 8)}) // ignored
	r.Wake()                                          // harmless
	assert.Equal(t, enoent, r.Cancel(1))
}

func TestCloseFromDeliver(t *testing.T) {
	r, err := NewReactor(Config{})
	require.NoError(t, err)
	a, b := socketpair(t)
	write(t, b, "ab")
	op := &recvOp{fd: a, buf: make([]byte, 1)}
	r.Submit(1, op)
	r.Submit(2, op)
	var got []uint64
	require.NoError(t, r.Poll(0, func(c Completion) {
		got = append(got, c.UserData)
		require.NoError(t, r.Close())
	}))
	assert.Equal(t, []uint64{1}, got, "nothing delivered after Close")
}

func TestManyOps(t *testing.T) {
	r := newReactor(t, Config{})
	const pairs, perPair = 100, 10
	type pair struct {
		a, b int
		ops  [perPair]*recvOp
	}
	ps := make([]pair, pairs)
	for i := range ps {
		ps[i].a, ps[i].b = socketpair(t)
		for j := range perPair {
			op := &recvOp{fd: ps[i].a, buf: make([]byte, 1)}
			ps[i].ops[j] = op
			r.Submit(uint64(i*perPair+j), op)
		}
	}
	pollNone(t, r)
	// Writers on another goroutine, a byte at a time, so readiness arrives
	// while the loop is polling.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for j := range perPair {
			for i := range ps {
				unix.Write(ps[i].b, []byte{byte(j)})
			}
		}
	}()
	got := poll(t, r, pairs*perPair)
	<-done
	seen := map[uint64]bool{}
	for _, c := range got {
		require.Equal(t, int32(1), c.Res, "%+v", c)
		require.False(t, seen[c.UserData], "duplicate %d", c.UserData)
		seen[c.UserData] = true
	}
	for i := range ps {
		for j, op := range ps[i].ops {
			assert.Equal(t, byte(j), op.buf[0], "pair %d op %d: FIFO order", i, j)
		}
	}
	assert.Empty(t, r.byUD)
}

// TestAgainIsResult: an op may report -EAGAIN as its result (connect(2) to
// a unix listener whose backlog is full) instead of waiting; the flag that
// says so never reaches the completion. Both at the first attempt and after
// a wait for readiness.
func TestAgainIsResult(t *testing.T) {
	r := newReactor(t, Config{})
	a, b := socketpair(t)
	final := &funcOp{fd: a, readiness: unix.EPOLLOUT, fn: func() (int32, uint32) { return eagain, FlagAgainIsResult }}
	r.Submit(1, final)
	require.Equal(t, []Completion{{UserData: 1, Res: eagain}}, poll(t, r, 1))

	// Behind a waiting read: the attempt happens on readiness.
	attempts := 0
	later := &funcOp{fd: b, readiness: unix.EPOLLIN, fn: func() (int32, uint32) {
		attempts++
		if attempts == 1 {
			return eagain, 0
		}
		return eagain, FlagAgainIsResult
	}}
	r.Submit(2, later)
	write(t, a, "x")
	require.Equal(t, []Completion{{UserData: 2, Res: eagain}}, poll(t, r, 1))
	require.Equal(t, 2, attempts)
}
