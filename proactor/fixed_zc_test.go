package proactor

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

// TestReadFixedPipeDeadline: a Pollable ReadFixed of an empty pipe with a
// deadline ends with -ETIME on every driver, as a Read does. On epoll it
// used to hold a worker in read(2), past the deadline and Close.
func TestReadFixedPipeDeadline(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		var pfd [2]int
		require.NoError(t, unix.Pipe2(pfd[:], unix.O_CLOEXEC|unix.O_NONBLOCK))
		defer unix.Close(pfd[0])
		defer unix.Close(pfd[1])
		bufs, err := l.RegisterBuffers(64, 1)
		require.NoError(t, err)
		defer bufs.Unregister()
		type result struct {
			res int32
			err error
		}
		ch := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			res, _, err := l.Do(ctx, &ReadFixed{Fd: pfd[0], Bufs: bufs, Buf: 0, Off: -1, Pollable: true})
			ch <- result{res, err}
		}()
		select {
		case r := <-ch:
			require.ErrorIs(t, r.err, context.DeadlineExceeded)
			require.EqualValues(t, -int32(unix.ETIME), r.res)
		case <-time.After(3 * time.Second):
			closed := make(chan error, 1)
			go func() { closed <- p.Close() }()
			select {
			case <-closed:
				t.Errorf("ReadFixed with a 100ms deadline still blocked after 3s")
			case <-time.After(3 * time.Second):
				t.Errorf("ReadFixed with a 100ms deadline still blocked after 3s; Proactor.Close blocked > 3s too")
			}
			unix.Write(pfd[1], []byte("x")) // unblock the worker
			<-ch
		}
	})
}

// TestReadIndexedSocket: a Pollable ReadIndexed of a registered
// (non-blocking) socket with no data waits for data, as on io_uring; on
// epoll it used to fail with -EAGAIN.
func TestReadIndexedSocket(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		a, b := socketpair(t)
		files, err := l.RegisterFiles([]int{b})
		require.NoError(t, err)
		defer files.Unregister()
		done := make(chan int32, 1)
		buf := make([]byte, 8)
		require.NoError(t, l.Submit(&ReadIndexed{Files: files, Index: 0, Buf: buf, Off: -1, Pollable: true}, func(res int32, _ uint32) { done <- res }))
		time.Sleep(50 * time.Millisecond)
		_, err = unix.Write(a, []byte("hi"))
		require.NoError(t, err)
		select {
		case res := <-done:
			require.EqualValues(t, 2, res)
		case <-time.After(5 * time.Second):
			t.Fatal("no completion")
		}
	})
}

// fullTCP returns a connected TCP pair (sender fd, receiver fd) whose
// sender's send buffer is full: a send now waits.
func fullTCP(t *testing.T, p *Proactor) (int, int) {
	c, r := tcpToNonReader(t, p, 4096)
	junk := make([]byte, 1<<16)
	for {
		_, err := unix.Write(c, junk)
		if err == unix.EAGAIN {
			break
		}
		require.NoError(t, err)
	}
	return c, r
}

// stalledTCP returns a connected TCP pair (sender fd, receiver fd) whose
// receiver never reads and whose window is closed, while the sender's
// send buffer still has room: a send is accepted and queued.
func stalledTCP(t *testing.T, p *Proactor) (int, int) {
	c, r := tcpToNonReader(t, p, 4<<20)
	_, err := unix.Write(c, make([]byte, 256<<10)) // far more than the window
	require.NoError(t, err)
	return c, r
}

// tcpToNonReader connects a receiver with a 4 KiB buffer, which the test
// never reads, to a sender accepted through p with sndbuf bytes of send
// buffer; it returns both fds.
func tcpToNonReader(t *testing.T, p *Proactor, sndbuf int) (int, int) {
	lfd, port := listenTCP(t)
	cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(cfd) })
	require.NoError(t, unix.SetsockoptInt(cfd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096))
	require.NoError(t, unix.Connect(cfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}))
	c := do(t, p.Loop(0), &Accept{Fd: lfd})
	require.Greater(t, c, int32(0))
	t.Cleanup(func() { unix.Close(int(c)) })
	require.NoError(t, unix.SetsockoptInt(int(c), unix.SOL_SOCKET, unix.SO_SNDBUF, sndbuf))
	return int(c), cfd
}

func staleCQEs(p *Proactor) uint64 { return p.Metrics()[0].Stale }

// closeWithin closes p and fails the test if that takes longer than d.
func closeWithin(t *testing.T, p *Proactor, d time.Duration) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(d):
		t.Fatalf("Proactor.Close blocked > %v", d)
	}
}

// TestSendZCDeadline: a zero-copy send that cannot proceed ends with
// -ETIME at its deadline; exactly one final completion, no stale CQE.
func TestSendZCDeadline(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		s, _ := fullTCP(t, p)
		before := staleCQEs(p)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		res, _, err := p.Loop(0).Do(ctx, &SendZC{Fd: s, Buf: make([]byte, 1000)})
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.EqualValues(t, -int32(unix.ETIME), res)
		time.Sleep(100 * time.Millisecond)
		require.NoError(t, p.Loop(0).inLoop(func() error { return nil }))
		require.Equal(t, before, staleCQEs(p), "stale CQEs")
	})
}

// TestSendZCCancelHandler: after CancelInLoop of a blocked zero-copy send
// a handler sees its completions as io_uring posts them: the result with
// CQEFMore, then one final notification. The epoll emulation used to post
// a single -ECANCELED, so a handler that frees at the notification never
// freed.
func TestSendZCCancelHandler(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		s, _ := fullTCP(t, p)
		l := p.Loop(0)
		type cqe struct {
			res   int32
			flags uint32
		}
		got := make(chan cqe, 8)
		var id uint64
		require.NoError(t, l.inLoop(func() error {
			var err error
			id, err = l.SubmitInLoop(&SendZC{Fd: s, Buf: make([]byte, 1000)}, func(res int32, flags uint32) { got <- cqe{res, flags} })
			return err
		}))
		time.Sleep(50 * time.Millisecond)
		before := staleCQEs(p)
		require.NoError(t, l.inLoop(func() error { l.CancelInLoop(id); return nil }))
		// Until the final completion, and a little longer for any extra.
		var all []cqe
		timeout := time.After(5 * time.Second)
	loop:
		for {
			select {
			case c := <-got:
				all = append(all, c)
				if c.flags&ring.CQEFMore == 0 {
					timeout = time.After(100 * time.Millisecond)
				}
			case <-timeout:
				break loop
			}
		}
		t.Logf("completions: %+v", all)
		require.NotEmpty(t, all)
		require.Zero(t, all[len(all)-1].flags&ring.CQEFMore, "last has no MORE")
		require.NotZero(t, all[len(all)-1].flags&ring.CQEFNotif, "the last is the notification (as on io_uring)")
		nfinal := 0
		for _, c := range all {
			if c.flags&ring.CQEFMore == 0 {
				nfinal++
			}
		}
		require.Equal(t, 1, nfinal)
		require.Equal(t, before, staleCQEs(p), "stale CQEs")
	})
}

// TestSendZCClose: Close with a blocked zero-copy send in flight
// returns, and the handler gets its final completion.
func TestSendZCClose(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		s, _ := fullTCP(t, p)
		l := p.Loop(0)
		final := make(chan int32, 4)
		require.NoError(t, l.Submit(&SendZC{Fd: s, Buf: make([]byte, 1000)}, func(res int32, flags uint32) {
			if flags&ring.CQEFMore == 0 {
				final <- res
			}
		}))
		require.NoError(t, l.inLoop(func() error { return nil }))
		closeWithin(t, p, 5*time.Second)
		require.Len(t, final, 1)
	})
}

// TestSendZCStalledPeer: a zero-copy send that the kernel accepted but
// whose peer never reads waits for its notification, which does not come;
// Proactor.Close does not wait for it (it used to block for good), and the
// waiting Do returns the data completion's result.
func TestSendZCStalledPeer(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		s, r := stalledTCP(t, p)
		defer func() {
			// Reset the connection: the kernel drops the queued data
			// (and the orphaned send's notification comes, unseen).
			unix.SetsockoptLinger(r, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
			unix.Close(r)
		}()
		type result struct {
			res   int32
			flags uint32
		}
		ch := make(chan result, 1)
		go func() {
			res, flags, _ := p.Loop(0).DoUntil(&SendZC{Fd: s, Buf: make([]byte, 1000)}, time.Time{}, nil)
			ch <- result{res, flags}
		}()
		// One with a handler too: it still ends once.
		var got []result
		final := make(chan struct{})
		require.NoError(t, p.Loop(0).Submit(&SendZC{Fd: s, Buf: make([]byte, 1000)}, func(res int32, flags uint32) {
			got = append(got, result{res, flags})
			if flags&ring.CQEFMore == 0 {
				close(final)
			}
		}))
		time.Sleep(200 * time.Millisecond)
		closeWithin(t, p, 5*time.Second) // it used to wait for the notification
		select {
		case r := <-ch:
			require.EqualValues(t, 1000, r.res)
			require.Zero(t, r.flags&ring.CQEFMore)
		case <-time.After(5 * time.Second):
			t.Fatal("Do of the zero-copy send still waiting after Close")
		}
		select {
		case <-final: // before Close returned
		case <-time.After(time.Second):
			t.Fatalf("the handler saw no final completion by Close: %+v", got)
		}
		require.Len(t, got, 2, "completions %+v", got)
		require.EqualValues(t, 1000, got[0].res)
		require.NotZero(t, got[1].flags&ring.CQEFNotif, "completions %+v", got)
	})
}

// TestFixedStress: goroutines read through loop 0's buffers on both
// loops while another unregisters and registers again; nothing crashes,
// every op ends with its data or -EINVAL, Unregister only says EBUSY.
func TestFixedStress(t *testing.T) {
	for _, d := range drivers[:min(4, len(drivers))] {
		t.Run(d.name, func(t *testing.T) {
			opts := d.opts
			opts.Loops = 2
			p := newProactor(t, opts)
			f := fixedFile(t)
			data := make([]byte, 4096)
			for i := range data {
				data[i] = byte(i)
			}
			_, err := f.Write(data)
			require.NoError(t, err)
			fd := int(f.Fd())
			var cur atomic.Pointer[FixedBuffers]
			b, err := p.Loop(0).RegisterBuffers(4096, 8)
			require.NoError(t, err)
			cur.Store(b)
			stop := make(chan struct{})
			errs := make(chan error, 16)
			var wg sync.WaitGroup
			for g := range 6 {
				wg.Go(func() {
					l := p.Loop(g % 2)
					for {
						select {
						case <-stop:
							return
						default:
						}
						bb := cur.Load()
						res, _, err := l.DoUntil(&ReadFixed{Fd: fd, Bufs: bb, Buf: g, Off: 0}, time.Time{}, nil)
						if err != nil {
							errs <- err
							return
						}
						if res != 4096 && res != -int32(unix.EINVAL) {
							errs <- unix.Errno(-res)
							return
						}
					}
				})
			}
			deadline := time.Now().Add(500 * time.Millisecond)
			n, busy := 0, 0
			for time.Now().Before(deadline) {
				err := cur.Load().Unregister()
				if err != nil {
					require.ErrorIs(t, err, unix.EBUSY)
					busy++
					continue
				}
				n++
				b, err := p.Loop(0).RegisterBuffers(4096, 8)
				require.NoError(t, err)
				cur.Store(b)
			}
			close(stop)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			t.Logf("%d unregisters, %d EBUSY", n, busy)
		})
	}
}

// TestRegisterOnLoop: RegisterBuffers works from a handler of the loop
// itself; from another loop's goroutine (of any Proactor) it fails with
// EDEADLK, since that loop may be waiting for this one (two handlers
// registering on each other's loops hung both, and Close); Unregister on
// any loop goroutine fails with EDEADLK, as it waits for every loop.
// Registration on a loop goroutine used to hang that loop.
func TestRegisterOnLoop(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		q := newProactor(t, Options{Loops: 1})
		type result struct {
			bufs *FixedBuffers
			err  error
		}
		got := make(chan result, 1)
		require.NoError(t, l.Post(func() {
			bufs, err := l.RegisterBuffers(64, 1)
			if err == nil {
				if uerr := bufs.Unregister(); !errors.Is(uerr, unix.EDEADLK) {
					err = fmt.Errorf("Unregister on a loop goroutine: %v", uerr)
				}
			}
			got <- result{bufs, err}
		}))
		select {
		case r := <-got:
			require.NoError(t, r.err)
			require.NoError(t, r.bufs.Unregister())
		case <-time.After(3 * time.Second):
			t.Fatal("registration from the loop's own goroutine hung")
		}
		require.NoError(t, q.Loop(0).Post(func() {
			bufs, err := l.RegisterBuffers(64, 1)
			got <- result{bufs, err}
		}))
		select {
		case r := <-got:
			require.ErrorIs(t, r.err, unix.EDEADLK)
		case <-time.After(3 * time.Second):
			t.Fatal("registration from another loop's goroutine hung")
		}
	})
}

// TestBufAfterUnregister: Buf says nil for "no buffer i"; after
// Unregister there is none (it used to return a slice of unmapped memory).
func TestBufAfterUnregister(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		bufs, err := p.Loop(0).RegisterBuffers(4096, 1)
		require.NoError(t, err)
		require.NoError(t, bufs.Unregister())
		b := bufs.Buf(0)
		require.Nil(t, b, "Buf(0) after Unregister")
		if b == nil {
			return
		}
		defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
		func() {
			defer func() {
				if v := recover(); v != nil {
					t.Errorf("Buf(0) after Unregister is a %d-byte slice of unmapped memory: %v", len(b), v)
				}
			}()
			b[0] = 1
		}()
	})
}

// TestUnregisterOtherProactor: an op on another Proactor's loop that uses
// the buffers is in flight; Unregister says EBUSY instead of unmapping them
// under it, as it did (the read then landed in the next registration).
func TestUnregisterOtherProactor(t *testing.T) {
	for _, d := range drivers[:min(4, len(drivers))] {
		t.Run(d.name, func(t *testing.T) {
			pa := newProactor(t, Options{Backend: d.opts.Backend, Wait: d.opts.Wait, Loops: 1})
			pb := newProactor(t, Options{Backend: d.opts.Backend, Wait: d.opts.Wait, Loops: 1})
			var pfd [2]int
			require.NoError(t, unix.Pipe2(pfd[:], unix.O_CLOEXEC))
			defer unix.Close(pfd[0])
			defer unix.Close(pfd[1])
			bufs, err := pa.Loop(0).RegisterBuffers(1<<20, 1)
			require.NoError(t, err)
			done := make(chan int32, 1)
			require.NoError(t, pb.Loop(0).Submit(&ReadFixed{Fd: pfd[0], Bufs: bufs, Buf: 0, Off: -1}, func(res int32, _ uint32) { done <- res }))
			require.NoError(t, pb.Loop(0).inLoop(func() error { return nil }))
			time.Sleep(20 * time.Millisecond)
			err = bufs.Unregister()
			if err == nil {
				// Unmapped under the read: map new buffers (the same
				// address, likely), then let the old read complete.
				bufs2, err := pa.Loop(0).RegisterBuffers(1<<20, 1)
				require.NoError(t, err)
				defer bufs2.Unregister()
				_, err = unix.Write(pfd[1], []byte("STALE READ"))
				require.NoError(t, err)
				res := <-done
				t.Errorf("Unregister returned nil with a read into the buffers in flight on another proactor; that read completed with %d; new buffer 0 starts %q", res, bufs2.Buf(0)[:10])
				return
			}
			require.ErrorIs(t, err, unix.EBUSY)
			unix.Write(pfd[1], []byte("x"))
			<-done
		})
	}
}
