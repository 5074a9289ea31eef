package proactor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

type recvEvent struct {
	data  string
	res   int32
	flags uint32
}

// startRecvBuffers arms a multishot buffered receive on fd and forwards
// each completion, releasing the buffer only if release is true.
func startRecvBuffers(t *testing.T, l *Loop, fd int, release bool) (<-chan recvEvent, func() []uint16) {
	events := make(chan recvEvent, 64)
	var held []uint16
	ready := make(chan struct{})
	l.Post(func() {
		bufs, err := l.Buffers()
		require.NoError(t, err)
		_, err = l.SubmitInLoop(&RecvBuffers{Fd: fd, Multishot: true, Bufs: bufs}, func(res int32, flags uint32) {
			ev := recvEvent{res: res, flags: flags}
			if res > 0 {
				require.NotZero(t, flags&ring.CQEFBuffer)
				id := uint16(flags >> ring.CQEBufferShift)
				ev.data = string(bufs.Buffer(id, int(res)))
				if release {
					bufs.Release(id)
				} else {
					held = append(held, id)
				}
			}
			events <- ev
		})
		require.NoError(t, err)
		close(ready)
	})
	<-ready
	return events, func() []uint16 {
		ch := make(chan []uint16, 1)
		l.Post(func() { ch <- held; held = nil })
		return <-ch
	}
}

func next(t *testing.T, ch <-chan recvEvent) recvEvent {
	t.Helper()
	select {
	case ev := <-ch:
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no completion")
	}
	return recvEvent{}
}

func TestRecvBuffers(t *testing.T) {
	for _, k := range []string{"native", "5.19", "5.10"} {
		t.Run(k, func(t *testing.T) {
			eachDriverOpts(t, Options{Kernel: k}, func(t *testing.T, p *Proactor) {
				l := p.Loop(0)
				a, b := socketpair(t)
				events, _ := startRecvBuffers(t, l, b, true)
				for _, msg := range []string{"one", "two", "three"} {
					_, err := unix.Write(a, []byte(msg))
					require.NoError(t, err)
					ev := next(t, events)
					require.Equal(t, msg, ev.data)
					require.NotZero(t, ev.flags&ring.CQEFMore, "the receive must stay armed")
				}
				unix.Close(a)
				ev := next(t, events)
				require.EqualValues(t, 0, ev.res, "EOF ends it")
				require.Zero(t, ev.flags&ring.CQEFMore)
			})
		})
	}
}

// TestRecvBuffersStarve: with two buffers held by the handler, the receive
// pauses instead of failing, and resumes when they come back.
func TestRecvBuffersStarve(t *testing.T) {
	eachDriverOpts(t, Options{Buffers: 2, BufferSize: 64}, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		a, b := socketpair(t)
		events, held := startRecvBuffers(t, l, b, false)
		for _, msg := range []string{"a", "b"} {
			_, err := unix.Write(a, []byte(msg))
			require.NoError(t, err)
			require.Equal(t, msg, next(t, events).data)
		}
		_, err := unix.Write(a, []byte("c"))
		require.NoError(t, err)
		select {
		case ev := <-events:
			t.Fatalf("a completion without a free buffer: %+v", ev)
		case <-time.After(50 * time.Millisecond):
		}
		ids := held()
		require.Len(t, ids, 2)
		l.Post(func() {
			for _, id := range ids {
				l.bufs.Release(id)
			}
		})
		ev := next(t, events)
		require.Equal(t, "c", ev.data)
		require.NotZero(t, ev.flags&ring.CQEFMore)
		require.NotZero(t, p.Metrics()[0].BufferStalls)
	})
}

// TestRecvBuffersCloseWhileStarved: a paused receive is cancelled by Close.
func TestRecvBuffersCloseWhileStarved(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			opts := d.opts
			opts.Loops, opts.Buffers, opts.BufferSize, opts.Logger = 1, 1, 64, quiet
			p, err := New(opts)
			require.NoError(t, err)
			a, b := socketpair(t)
			events, _ := startRecvBuffers(t, p.Loop(0), b, false)
			unix.Write(a, []byte("x"))
			require.Equal(t, "x", next(t, events).data)
			unix.Write(a, []byte("y"))
			time.Sleep(20 * time.Millisecond)
			require.NoError(t, p.Close())
			require.Equal(t, errno(unix.ECANCELED), next(t, events).res)
		})
	}
}

// TestRecvBuffersReleaseBeforeStall: buffers released after the kernel ran
// out of them but before the loop saw the ENOBUFS completion must still
// restart the receive (it once waited forever for a Release that had
// already happened: the TestRecvBuffersStarve flake).
func TestRecvBuffersReleaseBeforeStall(t *testing.T) {
	eachDriverOpts(t, Options{Buffers: 2, BufferSize: 64}, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		a, b := socketpair(t)
		events, held := startRecvBuffers(t, l, b, false)
		for _, msg := range []string{"a", "b"} {
			_, err := unix.Write(a, []byte(msg))
			require.NoError(t, err)
			require.Equal(t, msg, next(t, events).data)
		}
		ids := held()
		require.Len(t, ids, 2)
		// On the loop goroutine, so that no reap comes between: the
		// write makes the kernel post ENOBUFS, the release comes before
		// the loop reads that CQE.
		require.NoError(t, l.Post(func() {
			unix.Write(a, []byte("c"))
			for _, id := range ids {
				l.bufs.Release(id)
			}
		}))
		ev := next(t, events)
		require.Equal(t, "c", ev.data)
	})
}
