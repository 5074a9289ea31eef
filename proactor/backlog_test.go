package proactor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

// busyDriver is a real driver that refuses submissions (errBusy, a full
// SQ) while busy is set. The kernel cannot be made to refuse on demand,
// so this injects the refusal in front of it; everything else reaches
// the real ring or reactor. Only the loop goroutine touches busy.
type busyDriver struct {
	driver
	busy bool
}

func (d *busyDriver) submit(ud uint64, op Op, code ring.Op, ts *ring.Timespec) error {
	if d.busy {
		return errBusy
	}
	return d.driver.submit(ud, op, code, ts)
}

// onLoop runs f on the loop goroutine and waits for it.
func onLoop(t *testing.T, l *Loop, f func()) {
	t.Helper()
	done := make(chan struct{})
	require.NoError(t, l.Post(func() { f(); close(done) }))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the loop did not run a posted function")
	}
}

// TestCancelFdCancelsBacklog: ops the driver refused (SQ full) wait in the
// loop's backlog; CancelFdInLoop must complete those on its fd with
// -ECANCELED without ever starting them, and leave the others to start
// once the driver takes submissions again.
func TestCancelFdCancelsBacklog(t *testing.T) {
	// Set while no loop runs; each loop's run makes its driver before New
	// returns, so the loop goroutine's write of bd is seen here.
	var bd *busyDriver
	testHookDriver = func(d driver) driver { bd = &busyDriver{driver: d}; return bd }
	t.Cleanup(func() { testHookDriver = nil })
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		a, _ := socketpair(t)
		c, d := socketpair(t)
		onLoop(t, l, func() { bd.busy = true })

		type result struct{ fd, res int32 }
		got := make(chan result, 8)
		bufs := make([][]byte, 4)
		for i, fd := range []int{a, a, a, c} {
			bufs[i] = make([]byte, 8)
			require.NoError(t, l.Submit(&Recv{Fd: fd, Buf: bufs[i]}, func(res int32, flags uint32) {
				got <- result{int32(fd), res}
			}))
		}
		require.Eventually(t, func() bool {
			n := 0
			onLoop(t, l, func() { n = len(l.backlog) })
			return n == 4
		}, 10*time.Second, time.Millisecond, "the refused ops are not in the backlog")

		onLoop(t, l, func() { l.CancelFdInLoop(a) })
		for range 3 {
			select {
			case r := <-got:
				require.Equal(t, result{int32(a), errno(unix.ECANCELED)}, r)
			case <-time.After(10 * time.Second):
				t.Fatal("a backlogged op on the cancelled fd did not complete")
			}
		}
		n := 0
		onLoop(t, l, func() { n = len(l.backlog) })
		require.Equal(t, 1, n, "the op on the other fd left the backlog")

		onLoop(t, l, func() { bd.busy = false })
		_, err := unix.Write(d, []byte("x"))
		require.NoError(t, err)
		select {
		case r := <-got:
			require.Equal(t, result{int32(c), 1}, r)
		case <-time.After(10 * time.Second):
			t.Fatal("the backlogged op did not start once the driver took it")
		}
		require.NotZero(t, p.Metrics()[0].SQFull)
	})
}
