package proactor

import (
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
		// sleeps, so the process uses far less CPU than the wall time.
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
