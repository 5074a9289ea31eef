package proactor

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

// TestWaitEnterTaskrun: a WaitEnter ring takes DEFER_TASKRUN where the
// kernel has it (6.1) and COOP_TASKRUN before, and with DEFER_TASKRUN a
// completion that arrives while the loop's thread is inside a system call
// of its own does not cut that call short. With COOP_TASKRUN alone (the
// simulated 6.0, the control) the kernel flags the thread
// (TIF_NOTIFY_SIGNAL) and each completion ends the thread's epoll_pwait
// with EINTR; the file server's sendfile(2) calls were restarted that way.
// The epoll driver, which has no task work, must not cut them short either.
func TestWaitEnterTaskrun(t *testing.T) {
	t.Run("epoll", func(t *testing.T) {
		checkLeaks(t)
		p := newProactor(t, Options{Backend: Epoll, Wait: WaitEnter, Loops: 1})
		if early, _ := earlyEnds(t, p.Loop(0)); early >= earlyPairs/2 {
			t.Fatalf("%d of the epoll loop thread's epoll_pwait calls ended early with EINTR while %d receives completed", early, earlyPairs)
		}
	})
	for _, tc := range []struct {
		kernel      string
		want, not   uint32
		interrupted bool // whether completions cut the thread's calls short
	}{
		{"", ring.SetupDeferTaskrun | ring.SetupSingleIssuer | ring.SetupTaskrunFlag, 0, false},
		{"6.0", ring.SetupCoopTaskrun | ring.SetupSingleIssuer | ring.SetupTaskrunFlag, ring.SetupDeferTaskrun, true},
		{"5.19", ring.SetupCoopTaskrun | ring.SetupTaskrunFlag, ring.SetupDeferTaskrun | ring.SetupSingleIssuer, true},
		{"5.18", 0, ring.SetupDeferTaskrun | ring.SetupCoopTaskrun | ring.SetupTaskrunFlag | ring.SetupSingleIssuer, true},
	} {
		name := tc.kernel
		if name == "" {
			name = "this-kernel"
		}
		t.Run(name, func(t *testing.T) {
			checkLeaks(t)
			p := newProactor(t, Options{Backend: Uring, Wait: WaitEnter, Loops: 1, Kernel: tc.kernel})
			l := p.Loop(0)
			flags := make(chan uint32, 1)
			require.NoError(t, l.Post(func() { flags <- l.drv.(*uringDriver).r.Flags() }))
			got := <-flags
			if tc.kernel == "" && !p.sel.release.Has(ring.Release{Major: 6, Minor: 1}) {
				t.Skipf("kernel %v: DEFER_TASKRUN needs 6.1", p.sel.release)
			}
			require.Equal(t, tc.want, got&(tc.want|tc.not), "setup flags %#x", got)
			if tc.kernel == "" || tc.kernel == "6.0" {
				early, posted := earlyEnds(t, l)
				// posted is the deterministic half: task work that ran
				// during the wait posted its CQE then.
				if tc.interrupted && (posted == 0 || early < earlyPairs/2) {
					t.Fatalf("%d CQEs posted and %d epoll_pwait calls ended early while %d receives completed: the test misses interruptions", posted, early, earlyPairs)
				}
				if !tc.interrupted && (posted != 0 || early >= earlyPairs/2) {
					t.Fatalf("%d CQEs posted and %d epoll_pwait calls ended early with EINTR while %d receives completed on the loop's thread: completion work interrupted it", posted, early, earlyPairs)
				}
			}
		})
	}
}

const earlyPairs = 40

// earlyEnds parks a receive on each of earlyPairs socket pairs in l,
// then keeps l's thread in epoll_pwait on an empty epoll fd for 300 ms
// while a peer writes to one pair every 2 ms. It returns how many of the
// waits ended early with EINTR, and how many CQEs an io_uring loop's ring
// held at the end of the window, before the loop entered it again: task
// work that interrupts the thread posts its CQE then, deferred work does
// not. One or
// two waits also end early, 7-26 ms in, on any of these rings and with no
// receive in flight (no signal or io_uring event shows for it in a trace),
// but none when the window starts 300 ms after the proactor did: something
// of a loop's start-up, not found. Hence the callers' bound of half the
// receives on the first.
func earlyEnds(t *testing.T, l *Loop) (early int, posted uint32) {
	received := make(chan int32, earlyPairs)
	var peers []int
	for range earlyPairs {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
		require.NoError(t, l.Submit(&Recv{Fd: fds[0], Buf: make([]byte, 16)}, func(res int32, _ uint32) { received <- res }))
		peers = append(peers, fds[1])
	}
	// A Do behind them: once it completes the receives are in the kernel,
	// not in the SQ waiting for the end of the turn the wait below takes.
	_, _, err := l.Do(context.Background(), Nop{})
	require.NoError(t, err)
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	require.NoError(t, err)
	defer unix.Close(epfd)

	type result struct {
		early  int
		posted uint32
		writes int32
	}
	var writes atomic.Int32
	done := make(chan result, 1)
	require.NoError(t, l.Post(func() {
		go func() {
			for _, fd := range peers {
				time.Sleep(2 * time.Millisecond)
				if _, err := unix.Write(fd, []byte("x")); err == nil {
					writes.Add(1)
				}
			}
		}()
		// Every signal is blocked for the wait (epoll_pwait's mask): Go
		// preempts with SIGURG, which would end it with EINTR too.
		var all unix.Sigset_t
		for i := range all.Val {
			all.Val[i] = ^uint64(0)
		}
		var events [1]unix.EpollEvent
		n := 0
		for end := time.Now().Add(300 * time.Millisecond); ; {
			left := time.Until(end)
			if left <= 0 {
				break
			}
			ms := max(left.Milliseconds(), 1)
			_, _, errno := unix.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
				1, uintptr(ms), uintptr(unsafe.Pointer(&all)), 8)
			if errno == unix.EINTR {
				n++
			}
		}
		var posted uint32
		if d, ok := l.drv.(*uringDriver); ok {
			posted = d.r.CQReady()
		}
		done <- result{n, posted, writes.Load()}
	}))
	r := <-done
	if r.writes != earlyPairs {
		t.Fatalf("only %d of the %d writes landed within the wait", r.writes, earlyPairs)
	}
	for range earlyPairs {
		select {
		case res := <-received:
			require.Equal(t, int32(1), res)
		case <-time.After(5 * time.Second):
			t.Fatal("a receive never completed")
		}
	}
	t.Logf("%d of %d waits ended early; %d CQEs posted during them", r.early, earlyPairs, r.posted)
	return r.early, r.posted
}
