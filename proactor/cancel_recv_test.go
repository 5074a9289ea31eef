package proactor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

// recvCancelling arms a multishot buffered receive on fd whose handler
// gives each buffer back and calls cancel(id) on every completion that
// says more will come; the completions go to the channel.
func recvCancelling(t *testing.T, l *Loop, fd int, cancel func(id uint64)) <-chan recvEvent {
	events := make(chan recvEvent, 16)
	require.NoError(t, l.Post(func() {
		bufs, err := l.Buffers()
		require.NoError(t, err)
		var id uint64
		id, err = l.SubmitInLoop(&RecvBuffers{Fd: fd, Multishot: true, Bufs: bufs}, func(res int32, flags uint32) {
			if flags&ring.CQEFBuffer != 0 {
				bufs.Release(uint16(flags >> ring.CQEBufferShift))
			}
			if flags&ring.CQEFMore != 0 {
				cancel(id)
			}
			events <- recvEvent{res: res, flags: flags}
		})
		require.NoError(t, err)
	}))
	return events
}

// TestCancelEmulatedMultishot: a buffered receive cancelled from its own
// handler ends with a final completion on every kernel. Where the loop
// emulates multishot (before 6.0) it re-armed the receive after the
// handler regardless, and the cancel, which had found nothing in the
// kernel, was lost: a caller waiting for the final completion to close
// the fd waited for ever.
func TestCancelEmulatedMultishot(t *testing.T) {
	for _, k := range []string{"native", "5.19", "5.15"} {
		t.Run(k, func(t *testing.T) {
			eachDriverOpts(t, Options{Kernel: k}, func(t *testing.T, p *Proactor) {
				l := p.Loop(0)
				a, b := socketpair(t)
				events := recvCancelling(t, l, b, l.CancelInLoop)
				_, err := unix.Write(a, []byte("x"))
				require.NoError(t, err)
				require.EqualValues(t, 1, next(t, events).res)
				select {
				case ev := <-events:
					require.Zero(t, ev.flags&ring.CQEFMore, "the final completion")
				case <-time.After(2 * time.Second):
					t.Fatal("no final completion after CancelInLoop: the cancel was lost")
				}
			})
		})
	}
}

// TestCancelFdBeforeENOBUFS: CancelFdInLoop from the handler of a buffered
// receive whose ENOBUFS end is already queued. The ENOBUFS used to pause
// the receive (as if it were still wanted) and the next released buffer
// restarted it on the fd, which the caller may have closed and reused by
// then.
func TestCancelFdBeforeENOBUFS(t *testing.T) {
	eachDriverOpts(t, Options{Buffers: 1, BufferSize: 1}, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		a, b := socketpair(t)
		_, err := unix.Write(a, []byte("abc"))
		require.NoError(t, err)
		events := recvCancelling(t, l, b, func(uint64) { l.CancelFdInLoop(b) })
		var evs []recvEvent
		deadline := time.After(500 * time.Millisecond)
	collect:
		for {
			select {
			case ev := <-events:
				evs = append(evs, ev)
			case <-deadline:
				break collect
			}
		}
		require.NotEmpty(t, evs)
		require.Zero(t, evs[len(evs)-1].flags&ring.CQEFMore, "still armed after CancelFdInLoop: %+v", evs)
	})
}

// TestTimeoutOpDeadline: a deadline shorter than a Timeout op's own D
// ends it, as it ends any other op; it used to be ignored.
func TestTimeoutOpDeadline(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		start := time.Now()
		res, _, err := p.Loop(0).DoUntil(&Timeout{D: time.Second}, time.Now().Add(20*time.Millisecond), nil)
		require.NoError(t, err)
		require.EqualValues(t, -int32(unix.ETIME), res)
		require.Less(t, time.Since(start), 500*time.Millisecond, "the deadline was ignored")
	})
}
