package proactor

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestSpin: with Options.Spin a loop takes a completion that arrives while
// it polls without sleeping (SpinHits), and a loop with nothing to do
// still goes to sleep once Spin has passed: it must not burn a CPU while
// idle.
func TestSpin(t *testing.T) {
	testSpin(t, Options{})
}

// TestSpinFallback is TestSpin where io_uring has no RECV (5.5): the
// receive runs on the io_uring loop's fallback reactor, whose readiness
// must end a poll as well.
func TestSpinFallback(t *testing.T) {
	testSpin(t, Options{Kernel: "5.5"})
}

func testSpin(t *testing.T, extra Options) {
	const spin = 100 * time.Millisecond
	extra.Spin = spin
	eachDriverOpts(t, extra, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		a, b := socketpair(t)
		go func() {
			// Late enough that the loop has started the receive and is
			// polling, well within Spin.
			time.Sleep(10 * time.Millisecond)
			_, _ = unix.Write(b, []byte("x"))
		}()
		buf := make([]byte, 8)
		require.EqualValues(t, 1, do(t, l, &Recv{Fd: a, Buf: buf}))
		require.Equal(t, byte('x'), buf[0])
		m := p.Metrics()[0]
		if extra.Kernel == "5.5" && p.Backend() == Uring {
			require.NotZero(t, m.Fallbacks, "the receive did not run on the fallback reactor")
		}
		require.NotZero(t, m.SpinHits, "the receive's completion did not end a poll")

		// Idle: after one Spin (the Metrics call above woke the loop) it
		// sleeps, so the process uses far less CPU than the wall time. A
		// loop that kept polling would use all of it (the epoll driver did,
		// now and then, when it took a signal's EINTR for an event).
		time.Sleep(2 * spin)
		cpu0 := cpuTime(t)
		time.Sleep(3 * spin)
		used := cpuTime(t) - cpu0
		require.Less(t, used, spin, "an idle loop kept polling: %v of CPU in %v", used, 3*spin)
		require.NotZero(t, p.Metrics()[0].SpinMisses, "the loop never gave up polling")
	})
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(t *testing.T) time.Duration {
	var ru unix.Rusage
	require.NoError(t, unix.Getrusage(unix.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestSpinKeepsTimers: the time a loop spends polling counts against its
// next timer, which must not fire a whole Spin late.
func TestSpinKeepsTimers(t *testing.T) {
	eachDriverOpts(t, Options{Spin: 100 * time.Millisecond}, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		const d = 50 * time.Millisecond
		fired := make(chan time.Duration, 1)
		l.AfterFunc(time.Millisecond, func() {
			start := time.Now() // on the loop: the next wait starts with a spin
			l.AfterFunc(d, func() { fired <- time.Since(start) })
		})
		select {
		case got := <-fired:
			// Late by the spin would be 2*d or more.
			require.Less(t, got, d+30*time.Millisecond, "AfterFunc(%v) fired after %v", d, got)
		case <-time.After(10 * time.Second):
			t.Fatal("the timer never fired")
		}
	})
}

// TestSpinDoesNotStrandCallers: a Do caller that yielded in its turn
// (to gather others' SQEs) while the loop goroutine took the turn over
// must not wait for the turn back: with Spin the loop keeps it for as
// long as work comes less than Spin apart. Found by review; before the
// fix a Do took the whole 200 ms burst.
func TestSpinDoesNotStrandCallers(t *testing.T) {
	const spin = 20 * time.Millisecond
	eachDriverOpts(t, Options{Spin: spin}, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		a, b := socketpair(t)
		buf := make([]byte, 64)
		var h Handler
		h = func(res int32, flags uint32) {
			if res > 0 {
				_, _ = l.SubmitInLoop(&Recv{Fd: a, Buf: buf}, h)
			}
		}
		require.NoError(t, l.Submit(&Recv{Fd: a, Buf: buf}, h))
		var worst atomic.Int64
		for range 6 {
			time.Sleep(3 * spin) // the loop parks
			var wg sync.WaitGroup
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 200 {
						s := time.Now()
						if _, _, err := l.DoUntil(Nop{}, time.Time{}, nil); err != nil {
							t.Error(err)
							return
						}
						if d := int64(time.Since(s)); d > worst.Load() {
							worst.Store(d)
						}
					}
				}()
			}
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			// Traffic less than Spin apart keeps the loop from parking.
			end := time.Now().Add(200 * time.Millisecond)
		traffic:
			for time.Now().Before(end) {
				_, _ = unix.Write(b, []byte("x"))
				select {
				case <-done:
					break traffic
				case <-time.After(time.Millisecond):
				}
			}
			<-done
		}
		require.Less(t, time.Duration(worst.Load()), 100*time.Millisecond, "a Do waited for the loop to stop polling")
	})
}
