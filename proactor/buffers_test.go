package proactor

import (
	"slices"
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
	for _, k := range []string{"native", "5.19", "5.15", "5.10"} {
		t.Run(k, func(t *testing.T) {
			eachDriverOpts(t, Options{Kernel: k}, func(t *testing.T, p *Proactor) {
				l := p.Loop(0)
				a, b := socketpair(t)
				events, _ := startRecvBuffers(t, l, b, true)
				requireMode(t, p)
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
				requireOnRing(t, p)
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
		requireMode(t, p)
		requireOnRing(t, p)
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
		requireMode(t, p)
		requireOnRing(t, p)
	})
}

// wantMode is the buffer mode a loop of p must use: the kernel's provided
// buffer ring from 5.19, PROVIDE_BUFFERS from 5.7, the loop's own choice
// on epoll and before 5.7.
func wantMode(p *Proactor) BufferMode {
	f := p.sel.features
	switch {
	case p.Backend() != Uring:
		return BufferSelect
	case f.Has(ring.Release{Major: 5, Minor: 19}):
		return BufferRing
	case f.Has(ring.Release{Major: 5, Minor: 7}):
		return BufferProvide
	}
	return BufferSelect
}

// loopBuffers returns loop 0's pool, from the loop goroutine.
func loopBuffers(t *testing.T, p *Proactor) *Buffers {
	t.Helper()
	ch := make(chan *Buffers, 1)
	require.NoError(t, p.Loop(0).Post(func() {
		b, err := p.Loop(0).Buffers()
		require.NoError(t, err)
		ch <- b
	}))
	return <-ch
}

func requireMode(t *testing.T, p *Proactor) {
	t.Helper()
	require.Equal(t, wantMode(p), loopBuffers(t, p).Mode(), "kernel %s on %s", p.sel.features, p.Backend())
}

// requireOnRing checks that buffered receives ran where the mode says:
// with kernel-provided buffers as IORING_OP_RECV on the ring, never on
// the fallback reactor, and with PROVIDE_BUFFERS SQEs for the pool.
func requireOnRing(t *testing.T, p *Proactor) {
	t.Helper()
	m := p.Metrics()[0]
	switch wantMode(p) {
	case BufferProvide:
		require.NotZero(t, m.Submitted[ring.OpProvideBuffers])
		require.Equal(t, m.Submitted[ring.OpProvideBuffers], m.Completed[ring.OpProvideBuffers])
		fallthrough
	case BufferRing:
		require.NotZero(t, m.Submitted[ring.OpRecv])
		require.Zero(t, m.Submitted[opSelectRecv])
		require.Zero(t, m.Fallbacks, "a buffered receive went to the epoll path")
	case BufferSelect:
		require.NotZero(t, m.Submitted[opSelectRecv])
		require.Zero(t, m.Submitted[ring.OpProvideBuffers])
	}
}

// eachProvideKernel runs f on the simulated releases that have
// PROVIDE_BUFFERS but no buffer ring, on io_uring in both wait modes, and
// checks that the buffered receives ran on the ring.
func eachProvideKernel(t *testing.T, extra Options, f func(t *testing.T, p *Proactor)) {
	for _, k := range []string{"5.10", "5.15"} {
		for _, w := range []WaitMode{WaitNetpoll, WaitEnter} {
			t.Run(k+"-"+w.String(), func(t *testing.T) {
				checkLeaks(t)
				opts := extra
				opts.Backend, opts.Wait, opts.Kernel, opts.Loops, opts.Logger = Uring, w, k, 1, quiet
				p := newProactor(t, opts)
				require.Equal(t, BufferProvide, loopBuffers(t, p).Mode())
				f(t, p)
				requireOnRing(t, p)
			})
		}
	}
}

// TestRecvBuffersProvideStarve: on PROVIDE_BUFFERS, a receive that meets
// ENOBUFS pauses (the handler never sees ENOBUFS), and the buffers given
// back in one turn restart it with one PROVIDE_BUFFERS per run of ids.
func TestRecvBuffersProvideStarve(t *testing.T) {
	eachProvideKernel(t, Options{Buffers: 4, BufferSize: 64}, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		a, b := socketpair(t)
		events, held := startRecvBuffers(t, l, b, false)
		for _, msg := range []string{"a", "b", "c", "d"} {
			_, err := unix.Write(a, []byte(msg))
			require.NoError(t, err)
			ev := next(t, events)
			require.Equal(t, msg, ev.data)
			require.NotZero(t, ev.flags&ring.CQEFMore)
		}
		_, err := unix.Write(a, []byte("e"))
		require.NoError(t, err)
		select {
		case ev := <-events:
			t.Fatalf("a completion without a free buffer: %+v", ev)
		case <-time.After(50 * time.Millisecond):
		}
		m := p.Metrics()[0]
		require.NotZero(t, m.BufferStalls, "the kernel must have said ENOBUFS")
		ids := held()
		require.Len(t, ids, 4)
		require.ElementsMatch(t, []uint16{0, 1, 2, 3}, ids, "each buffer of the pool once")
		before := m.Submitted[ring.OpProvideBuffers]
		require.NoError(t, l.Post(func() {
			for _, id := range ids {
				l.bufs.Release(id)
			}
		}))
		ev := next(t, events)
		require.Equal(t, "e", ev.data)
		require.NotZero(t, ev.flags&ring.CQEFMore)
		after := p.Metrics()[0].Submitted[ring.OpProvideBuffers]
		require.Equal(t, uint64(runs(ids)), after-before, "one SQE per run of consecutive ids")
	})
}

// runs counts the runs of consecutive values in ids.
func runs(ids []uint16) int {
	s := slices.Clone(ids)
	slices.Sort(s)
	n := 0
	for i := range s {
		if i == 0 || s[i] != s[i-1]+1 {
			n++
		}
	}
	return n
}

// TestRecvBuffersChurn: a stream through a one-buffer pool, released by
// the handler as it goes, so that nearly every receive meets ENOBUFS and
// is restarted: every byte arrives in order, the one id is reused
// throughout, and afterwards the whole pool is there again, each buffer
// once (nothing leaked, nothing provided twice).
func TestRecvBuffersChurn(t *testing.T) {
	churn := func(t *testing.T, p *Proactor) {
		const total = 16 << 10
		l := p.Loop(0)
		a, b := socketpair(t)
		want := make([]byte, total)
		for i := range want {
			want[i] = byte(i*7 + i>>8)
		}
		got := make(chan []byte, 1)
		ids := map[uint16]int{}
		var data []byte
		require.NoError(t, l.Post(func() {
			bufs, err := l.Buffers()
			require.NoError(t, err)
			_, err = l.SubmitInLoop(&RecvBuffers{Fd: b, Multishot: true, Bufs: bufs}, func(res int32, flags uint32) {
				if res <= 0 {
					got <- data
					return
				}
				id := uint16(flags >> ring.CQEBufferShift)
				ids[id]++
				data = append(data, bufs.Buffer(id, int(res))...)
				bufs.Release(id)
				if len(data) == total {
					got <- data
				}
			})
			require.NoError(t, err)
		}))
		go func() {
			for off := 0; off < total; off += 1000 {
				for {
					_, err := unix.Write(a, want[off:min(off+1000, total)])
					if err != unix.EAGAIN {
						break
					}
					time.Sleep(time.Millisecond)
				}
			}
		}()
		select {
		case d := <-got:
			require.Equal(t, want, d)
		case <-time.After(20 * time.Second):
			t.Fatal("stream stalled")
		}
		st := make(chan [2]int, 1)
		// At the end of the turn, after the flush of the last Release.
		require.NoError(t, l.Post(func() {
			l.AtTurnEnd(func() { st <- [2]int{l.bufs.taken, len(l.bufs.pending)} })
		}))
		require.Equal(t, [2]int{0, 0}, <-st, "taken, pending")
		for id := range ids {
			require.Less(t, int(id), l.bufs.count, "ids %v", ids)
		}
		if l.bufs.count == 1 {
			require.Equal(t, map[uint16]int{0: ids[0]}, ids, "the one buffer, reused")
			require.Greater(t, ids[0], 100)
			if wantMode(p) == BufferProvide {
				// The re-armed receive reaches the ring ahead of the
				// provide of the turn's release.
				require.NotZero(t, p.Metrics()[0].BufferStalls)
			}
		}
		requireMode(t, p)
		requireOnRing(t, p)
	}
	t.Run("one-buffer", func(t *testing.T) {
		eachDriverOpts(t, Options{Buffers: 1, BufferSize: 64}, churn)
	})
	// Then the whole pool, held at once: every id exactly once.
	t.Run("whole-pool", func(t *testing.T) {
		eachDriverOpts(t, Options{Buffers: 8, BufferSize: 64}, func(t *testing.T, p *Proactor) {
			churn(t, p)
			l := p.Loop(0)
			a, b := socketpair(t)
			events, held := startRecvBuffers(t, l, b, false)
			for i := 0; i < 8; i++ {
				_, err := unix.Write(a, []byte{'0' + byte(i)})
				require.NoError(t, err)
				require.Equal(t, string(rune('0'+i)), next(t, events).data)
			}
			ids := held()
			require.ElementsMatch(t, []uint16{0, 1, 2, 3, 4, 5, 6, 7}, ids)
			require.NoError(t, l.Post(func() {
				for _, id := range ids {
					l.bufs.Release(id)
				}
			}))
			_, err := unix.Write(a, []byte("z"))
			require.NoError(t, err)
			require.Equal(t, "z", next(t, events).data)
		})
	})
}

// TestRecvBuffersLimit: a multishot receive with a Limit ends with a
// completion without CQEFMore once it has taken Limit bytes, at most one
// buffer more, although the socket has more; submitted again (the same
// op) it goes on where it stopped, and after the last limit it stays
// armed until EOF. The data is there before the receive is armed, so that
// a receive that ignored the limit would take all of it at once.
func TestRecvBuffersLimit(t *testing.T) {
	const size, limit, total = 64, 200, 1000
	eachDriverOpts(t, Options{Buffers: 32, BufferSize: size}, func(t *testing.T, p *Proactor) {
		bufs := loopBuffers(t, p)
		if bufs.multishot && !bufs.mshotLimit {
			t.Skipf("kernel %s: multishot receive without a byte limit (6.17), Limit is not enforced", p.sel.features)
		}
		l := p.Loop(0)
		a, b := socketpair(t)
		want := make([]byte, total)
		for i := range want {
			want[i] = byte(i)
		}
		_, err := unix.Write(a, want)
		require.NoError(t, err)

		events := make(chan recvEvent, 64)
		op := &RecvBuffers{Fd: b, Multishot: true, Limit: limit, Bufs: bufs}
		arm := func() {
			require.NoError(t, l.Post(func() {
				_, err := l.SubmitInLoop(op, func(res int32, flags uint32) {
					ev := recvEvent{res: res, flags: flags}
					if res > 0 {
						id := uint16(flags >> ring.CQEBufferShift)
						ev.data = string(bufs.Buffer(id, int(res)))
						bufs.Release(id)
					}
					events <- ev
				})
				require.NoError(t, err)
			}))
		}
		var got []byte
		for arms := 1; len(got) < total-limit; arms++ {
			arm()
			n := 0
			for {
				ev := next(t, events)
				require.Positive(t, ev.res, "arm %d after %d bytes", arms, n)
				got = append(got, ev.data...)
				n += int(ev.res)
				if ev.flags&ring.CQEFMore == 0 {
					break
				}
			}
			require.GreaterOrEqual(t, n, limit, "arm %d ended before its limit", arms)
			require.Less(t, n, limit+size, "arm %d took more than its limit and one buffer", arms)
			select {
			case ev := <-events:
				t.Fatalf("a completion after the final one: %+v", ev)
			case <-time.After(20 * time.Millisecond):
			}
		}
		// The rest is under the limit: the last arm stays armed.
		arm()
		for len(got) < total {
			ev := next(t, events)
			require.Positive(t, ev.res)
			require.NotZero(t, ev.flags&ring.CQEFMore, "ended before its limit")
			got = append(got, ev.data...)
		}
		require.Equal(t, want, got)
		unix.Close(a)
		ev := next(t, events)
		require.EqualValues(t, 0, ev.res, "EOF ends it")
		require.Zero(t, ev.flags&ring.CQEFMore)
		requireOnRing(t, p)
	})
}

// TestReleaseBadID: an id the pool does not have is ignored, not given to
// the kernel (which would write outside the pool) and not a panic.
func TestReleaseBadID(t *testing.T) {
	eachDriverOpts(t, Options{Buffers: 2, BufferSize: 64}, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		bufs := loopBuffers(t, p)
		done := make(chan int, 1)
		require.NoError(t, l.Post(func() {
			bufs.Release(2)
			bufs.Release(65535)
			done <- bufs.taken + len(bufs.pending) + len(bufs.free)
		}))
		want := 0
		if bufs.Mode() == BufferSelect {
			want = 2
		}
		require.Equal(t, want, <-done)
		require.Zero(t, p.Metrics()[0].Panics)
		a, b := socketpair(t)
		events, _ := startRecvBuffers(t, l, b, true)
		_, err := unix.Write(a, []byte("ok"))
		require.NoError(t, err)
		require.Equal(t, "ok", next(t, events).data)
	})
}

// forceSelectBuffers gives l a pool in BufferSelect mode whatever its
// ring has: the way kernels 5.7-5.18 ran buffered receives before
// PROVIDE_BUFFERS, for comparison. On the loop, before Buffers.
func forceSelectBuffers(l *Loop, count, size int) error {
	mem, err := unix.Mmap(-1, 0, count*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANONYMOUS|unix.MAP_PRIVATE)
	if err != nil {
		return err
	}
	b := &Buffers{size: size, count: count, mem: mem, l: l, mode: BufferSelect}
	for i := count - 1; i >= 0; i-- {
		b.free = append(b.free, uint16(i))
	}
	l.bufs = b
	return nil
}

// BenchmarkRecvBuffers: conns socketpairs, each with a multishot buffered
// receive armed; per round the loop writes one byte to every client end
// and waits for every receive, whose handler releases its buffer. ns/op
// is per receive (b.N receives, in rounds of conns), the writes included;
// provides/round is how many PROVIDE_BUFFERS SQEs the 32 releases of a
// round became. select-5.15 is how 5.7-5.18 ran before PROVIDE_BUFFERS
// (the loop selecting buffers on the epoll path). Run pinned:
// taskset -c 1 go test -run XXX -bench RecvBuffers -benchtime 100000x.
func BenchmarkRecvBuffers(b *testing.B) {
	const conns = 32
	for _, c := range []struct {
		name string
		opts Options
		sel  bool
	}{
		{"ring-native", Options{Backend: Uring, Wait: WaitEnter}, false},
		{"provide-5.15", Options{Backend: Uring, Wait: WaitEnter, Kernel: "5.15"}, false},
		{"select-5.15", Options{Backend: Uring, Wait: WaitEnter, Kernel: "5.15"}, true},
		{"epoll", Options{Backend: Epoll, Wait: WaitEnter}, false},
	} {
		b.Run(c.name, func(b *testing.B) {
			p := benchProactor(b, c.opts)
			l := p.Loop(0)
			var clients [conns]int
			ready := make(chan error, 1)
			done := make(chan error, 1)
			finish := func(err error) {
				select {
				case done <- err:
				default: // the EOFs when the socketpairs close
				}
			}
			rounds := max(b.N/conns, 1)
			left, got := rounds, 0
			one := []byte{'x'}
			round := func() {
				for _, fd := range clients {
					if _, err := unix.Write(fd, one); err != nil {
						finish(err)
						return
					}
				}
			}
			var bufs *Buffers
			h := func(res int32, flags uint32) {
				if res <= 0 {
					finish(errnoErr(res))
					return
				}
				bufs.Release(uint16(flags >> ring.CQEBufferShift))
				if got++; got == conns {
					got = 0
					if left--; left == 0 {
						finish(nil)
						return
					}
					round()
				}
			}
			for i := range clients {
				a, s := benchSocketpair(b)
				clients[i] = a
				require.NoError(b, l.Post(func() {
					if bufs == nil {
						if c.sel {
							if err := forceSelectBuffers(l, 256, 4096); err != nil {
								ready <- err
								return
							}
						}
						var err error
						if bufs, err = l.Buffers(); err != nil {
							ready <- err
							return
						}
					}
					_, err := l.SubmitInLoop(&RecvBuffers{Fd: s, Multishot: true, Bufs: bufs}, h)
					ready <- err
				}))
				require.NoError(b, <-ready)
			}
			before := p.Metrics()[0]
			b.ReportAllocs()
			b.ResetTimer()
			require.NoError(b, l.Post(round))
			require.NoError(b, <-done)
			b.StopTimer()
			m := p.Metrics()[0]
			b.ReportMetric(float64(m.Submitted[ring.OpProvideBuffers]-before.Submitted[ring.OpProvideBuffers])/float64(rounds), "provides/round")
			b.ReportMetric(float64(m.Enters-before.Enters)/float64(rounds), "enters/round")
		})
	}
}
