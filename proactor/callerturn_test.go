package proactor

import (
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

// TestCallerTurn: Do against a loop parked in the netpoller runs the op on
// the calling goroutine (no wake-up of the loop, none back); a loop
// blocked in a syscall (WaitEnter) is never entered by a caller.
func TestCallerTurn(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		time.Sleep(10 * time.Millisecond) // let the loop park
		m0 := p.Metrics()[0]
		time.Sleep(10 * time.Millisecond)
		for range 100 {
			require.EqualValues(t, 0, do(t, l, Nop{}))
		}
		m := p.Metrics()[0]
		turns, wakes := m.CallerTurns-m0.CallerTurns, m.Wakeups-m0.Wakeups
		if p.opts.Wait == WaitEnter {
			require.Zero(t, turns, "a caller ran a turn of a loop blocked in a syscall")
			return
		}
		// Before 5.8 the ring's eventfd cannot be muted, so each CQE also
		// wakes the loop goroutine, and a Do that comes while it is
		// awake queues its op (and may wake it once): how many do
		// depends on scheduling (88 of 100 once under -race on a busy
		// machine), so the bound there is looser.
		least := uint64(90)
		if d, ok := l.drv.(*uringDriver); ok && !d.muted {
			least = 50
		}
		require.GreaterOrEqual(t, turns, least, "Do on an idle loop queued its op")
		require.LessOrEqual(t, wakes, 1+100-turns, "caller turns woke the loop (1 is the Metrics call)")
	})
}

// TestCallerTurnKeepsHandlersOnLoop: while goroutines run their own turns
// with Do, completions of handler ops still reach their handlers on the
// loop goroutine, and promptly: a completion a caller reaped (or that came
// in while the ring's eventfd was muted for it) must wake the loop.
func TestCallerTurnKeepsHandlersOnLoop(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		loopID := make(chan uint64, 1)
		require.NoError(t, l.Post(func() { loopID <- goid() }))
		want := <-loopID
		a, b := socketpair(t)

		stop := make(chan struct{})
		var wg sync.WaitGroup
		var dos atomic.Int64
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					require.EqualValues(t, 0, do(t, l, Nop{}))
					dos.Add(1)
				}
			}()
		}
		defer func() { close(stop); wg.Wait() }()

		buf := make([]byte, 8)
		for i := range 200 {
			got := make(chan uint64, 1)
			require.NoError(t, l.Submit(&Recv{Fd: b, Buf: buf}, func(res int32, _ uint32) {
				if res != 1 {
					t.Errorf("recv: %d", res)
				}
				got <- goid()
			}))
			if i%2 == 0 {
				time.Sleep(time.Duration(i%7) * 50 * time.Microsecond)
			}
			_, err := unix.Write(a, []byte{byte(i)})
			require.NoError(t, err)
			select {
			case id := <-got:
				require.Equal(t, want, id, "a handler ran off the loop goroutine")
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: the recv's completion was never delivered", i)
			}
		}
		require.Positive(t, dos.Load())
	})
}

// TestCallerTurnLeavesNoSQEBehind: the kernel stops a batch at an SQE that
// fails before it is issued (here an open of an empty path), leaving the
// SQEs behind it in the SQ. A caller's turn must hand those to the loop
// goroutine, which is parked and would otherwise never submit them.
func TestCallerTurnLeavesNoSQEBehind(t *testing.T) {
	checkLeaks(t)
	p := newProactor(t, Options{Backend: Uring, Wait: WaitNetpoll, Loops: 1})
	l := p.Loop(0)
	time.Sleep(10 * time.Millisecond) // let the loop park
	require.True(t, l.turn.TryLock(), "the loop is not parked")
	bad, good := &waiter{done: make(chan struct{}, 2)}, &waiter{done: make(chan struct{}, 2)}
	l.inCaller = true
	l.start(task{op: &Openat{Dir: unix.AT_FDCWD, Path: []byte("")}, w: bad})
	l.start(task{op: Nop{}, w: good})
	l.inCaller = false
	l.callerRun(task{}, true)
	l.turn.Unlock()
	for _, w := range []*waiter{bad, good} {
		select {
		case <-w.done:
		case <-time.After(5 * time.Second):
			t.Fatal("an op left in the SQ by a caller's turn never completed")
		}
	}
	require.Equal(t, errno(unix.ENOENT), bad.res)
	require.EqualValues(t, 0, good.res)
}

// TestNilOp: a nil Op is refused, not run on the loop.
func TestNilOp(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		require.ErrorIs(t, l.Submit(nil, func(int32, uint32) {}), ErrNilOp)
		require.ErrorIs(t, l.SubmitTimeout(nil, time.Second, func(int32, uint32) {}), ErrNilOp)
		_, _, err := l.DoUntil(nil, time.Time{}, nil)
		require.ErrorIs(t, err, ErrNilOp)
		errs := make(chan error, 1)
		require.NoError(t, l.Post(func() { _, err := l.SubmitInLoop(nil, nil); errs <- err }))
		require.ErrorIs(t, <-errs, ErrNilOp)
		require.EqualValues(t, 0, do(t, l, Nop{}))
	})
}

// TestCallerTurnSeesLastBatch: what the loop goroutine delivered before it
// parked is what tells a caller to wait for company, on every driver (on
// epoll each spurious netpoll wake-up used to reset it to zero).
func TestCallerTurnSeesLastBatch(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		if p.opts.Wait == WaitEnter {
			t.Skip("WaitEnter: the loop never parks in the netpoller, so there are no caller turns (TestCallerTurn checks that)")
		}
		l := p.Loop(0)
		got := make(chan struct{}, 8)
		require.NoError(t, l.Post(func() {
			for range 8 {
				_, err := l.SubmitInLoop(Nop{}, func(int32, uint32) { got <- struct{}{} })
				require.NoError(t, err)
			}
		}))
		for range 8 {
			<-got
		}
		time.Sleep(20 * time.Millisecond) // let the loop park
		l.turn.Lock()
		batch := l.lastBatch
		l.turn.Unlock()
		require.GreaterOrEqual(t, batch, 8)
	})
}

// TestCallerTurnFileBatch: callers that add file ops to a gathered enter
// (one a caller owns, that yielded for company) do not all wait for it.
// On io_uring the one that brings the file ops to fileBatch enters for
// everything in the ring at once, so that the device gets them while the
// other woken goroutines still run; ops of other kinds (a NOP here) keep
// waiting for the owner. On epoll, file ops go to the workers as they
// come, and the gathered path must still complete each op.
func TestCallerTurnFileBatch(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		if p.opts.Wait == WaitEnter {
			t.Skip("WaitEnter: the loop never parks in the netpoller, so there are no caller turns (TestCallerTurn checks that)")
		}
		data := make([]byte, 4096*fileBatch)
		for i := range data {
			data[i] = byte(i / 4096 * 7)
		}
		path := t.TempDir() + "/f"
		require.NoError(t, os.WriteFile(path, data, 0o644))
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		require.NoError(t, err)
		t.Cleanup(func() { unix.Close(fd) })

		l := p.Loop(0)
		// strict: the reads go in the SQ (the ring has READ) and nothing
		// wakes the loop goroutine meanwhile (its eventfd is muted for
		// callers' enters, 5.8). Elsewhere, a caller may find the loop
		// awake and queue its op: only the results are checked.
		ud, _ := l.drv.(*uringDriver)
		strict := ud != nil && ud.supported[ring.OpRead] && ud.muted
		sqPending := func() int { return int(ud.r.SQPending()) }
		join := func(tk task) {
			if !l.callerTurn(tk) {
				require.False(t, strict, "a caller found the loop goroutine awake")
				require.NoError(t, l.enqueue(tk))
			}
		}
		type call struct {
			w   *waiter
			buf []byte
			off int64
		}
		newRead := func(i int) (call, task) {
			c := call{w: &waiter{done: make(chan struct{}, 2)}, buf: make([]byte, 4096), off: int64(i) * 4096}
			return c, task{op: &Read{Fd: fd, Buf: c.buf, Off: c.off}, w: c.w}
		}
		time.Sleep(10 * time.Millisecond) // let the loop park
		// The owner: its file op is in the ring, and it yielded.
		require.True(t, l.turn.TryLock(), "the loop is not parked")
		owner, ot := newRead(0)
		l.inCaller = true
		l.start(ot)
		l.inCaller = false
		l.flushOwned.Store(true)
		l.gatheredFile = 1
		l.turn.Unlock()

		nop := &waiter{done: make(chan struct{}, 2)}
		join(task{op: Nop{}, w: nop})
		calls := []call{owner}
		for i := 1; i < fileBatch; i++ {
			if strict {
				// Nothing is submitted yet, so nothing can complete
				// and wake the loop goroutine: it still owes the turn.
				require.True(t, l.flushOwned.Load(), "the loop goroutine took the turn over")
				require.Equal(t, i+1, sqPending(), "a gathered SQE was submitted before fileBatch file ops")
			}
			c, ct := newRead(i)
			join(ct)
			calls = append(calls, c)
		}
		if strict {
			require.Zero(t, sqPending(), "fileBatch file ops were gathered and none entered for them")
		}
		// The owner comes back and enters for whatever is left.
		l.turn.Lock()
		l.flushOwned.Store(false)
		l.callerRun(task{}, true)
		l.turn.Unlock()

		wait := func(w *waiter) int32 {
			if !w.direct {
				select {
				case <-w.done:
				case <-time.After(5 * time.Second):
					t.Fatal("a gathered op never completed")
				}
			}
			return w.res
		}
		require.Zero(t, wait(nop))
		for _, c := range calls {
			require.EqualValues(t, 4096, wait(c.w))
			require.Equal(t, data[c.off:c.off+4096], c.buf)
		}
	})
}

// TestFileOpInRing: only file ops the ring runs count toward fileBatch.
// Where the ring lacks the opcode (READ is 5.6) the op runs on the epoll
// driver's workers, and an enter for it would only push out the SQEs the
// owner gathers; sockets' and the loop's own ops never count.
func TestFileOpInRing(t *testing.T) {
	for _, tc := range []struct {
		kernel     string
		read, sync bool
	}{{"", true, true}, {"5.5", false, true}} {
		p := newProactor(t, Options{Backend: Uring, Wait: WaitNetpoll, Loops: 1, Kernel: tc.kernel, Logger: quiet})
		l := p.Loop(0)
		require.Equal(t, tc.read, l.fileOpInRing(&Read{Fd: 0}), "kernel %q: READ", tc.kernel)
		require.Equal(t, tc.sync, l.fileOpInRing(&Fsync{Fd: 0}), "kernel %q: FSYNC", tc.kernel)
		for _, op := range []Op{Nop{}, &Read{Fd: 0, Pollable: true}, &Shutdown{Fd: 0}, &Timeout{D: time.Second}, &Recv{Fd: 0}} {
			require.False(t, l.fileOpInRing(op), "kernel %q: %T", tc.kernel, op)
		}
	}
	p := newProactor(t, Options{Backend: Epoll, Loops: 1, Logger: quiet})
	require.False(t, p.Loop(0).fileOpInRing(&Read{Fd: 0}), "epoll")

	// A fixed op reused on a pipe, whose last submission failed to
	// resolve (a bad buffer): asked before it starts, it answers for
	// this submission, not the last.
	p = newProactor(t, Options{Backend: Uring, Wait: WaitNetpoll, Loops: 1, Logger: quiet})
	l := p.Loop(0)
	b, err := l.RegisterBuffers(4096, 2)
	require.NoError(t, err)
	var fds [2]int
	require.NoError(t, unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC))
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	op := &ReadFixed{Fd: fds[0], Bufs: b, Buf: 99, Pollable: true}
	op.Opcode() // its last submission: no buffer 99
	op.Buf = 0
	require.False(t, l.fileOpInRing(op), "a pollable ReadFixed counted as a file op")
}
