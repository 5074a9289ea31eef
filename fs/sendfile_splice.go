package fs

import (
	"context"
	"runtime"
	"sync"
	"weak"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// sendSplice moves the bytes file→pipe→socket with two SPLICE ops per
// chunk, sequenced by this goroutine (not linked: a link would not let us
// see a short first half, and a full socket answers a linked splice with
// -EAGAIN anyway). handled is false, with nothing sent, when no pipe could
// be had; the caller then uses sendfile(2).
func sendSplice(ctx context.Context, loop *proactor.Loop, sock, fd int, name string, off, n int64) (sent int64, err error, handled bool) {
	pool := pipesFor(loop)
	pp, ok := pool.get()
	if !ok {
		return 0, nil, false
	}
	clean := true
	defer func() { pool.put(pp, clean) }()
	in := &proactor.Splice{In: fd, Out: pp.w, OffOut: -1, Flags: unix.SPLICE_F_MOVE}
	out := &spliceOutOp{r: pp.r, sock: sock}
	for sent < n {
		in.OffIn = off + sent
		in.N = uint32(min(n-sent, int64(pp.size)))
		res, err := doOn(ctx, loop, in)
		if err != nil {
			clean = false // a cancelled splice may have half-filled it
			return sent, sendErr("splice", name, err), true
		}
		if res == 0 {
			return sent, shrunk(name, sent, n), true
		}
		// Drain the pipe into the socket; until it is empty the pipe
		// holds bytes that are not ours to hand to the next user.
		left := res
		for left > 0 {
			out.n = uint32(left)
			r2, err := doOn(ctx, loop, out)
			if err == nil && r2 == 0 {
				err = unix.EPIPE // the socket took nothing and said no error
			}
			if err != nil {
				clean = false
				return sent, sendErr("splice", name, err), true
			}
			left -= r2
			sent += int64(r2)
		}
	}
	return sent, nil, true
}

// A pipe pool per loop keeps the number of pipes bounded by concurrent
// transfers, not connections: one 64 KiB pipe per connection hits
// pipe-user-pages-soft (16,384 pages per user) near 1,000 connections,
// after which the kernel clamps new pipes to one page (performance.md §3.2,
// enghitalo/vanilla #77).
const (
	maxPipesPerLoop = 32 // 32 pipes x 16 pages: 3% of the soft limit
	maxIdlePipes    = 8
)

type pipe struct {
	r, w int
	size int
}

type pipePool struct {
	mu   sync.Mutex
	idle []pipe
	live int // pipes handed out or idle
}

// pools maps a loop to its pipe pool without keeping the loop alive: a
// cleanup closes the pipes when the loop is collected. ReleasePipes frees
// them sooner.
var pools sync.Map // weak.Pointer[proactor.Loop] -> *pipePool

func pipesFor(l *proactor.Loop) *pipePool {
	key := weak.Make(l)
	if v, ok := pools.Load(key); ok {
		return v.(*pipePool)
	}
	pp := &pipePool{}
	v, loaded := pools.LoadOrStore(key, pp)
	if !loaded {
		runtime.AddCleanup(l, func(k weak.Pointer[proactor.Loop]) {
			if v, ok := pools.LoadAndDelete(k); ok {
				v.(*pipePool).closeIdle()
			}
		}, key)
	}
	return v.(*pipePool)
}

// ReleasePipes closes the idle pipes SendFile keeps for loop; pipes in use
// are closed when their transfer ends. Call it after closing a Proactor
// to get the descriptors back before the loop is garbage collected.
func ReleasePipes(loop *proactor.Loop) {
	if v, ok := pools.Load(weak.Make(loop)); ok {
		v.(*pipePool).closeIdle()
	}
}

func (p *pipePool) get() (pipe, bool) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		pp := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return pp, true
	}
	if p.live >= maxPipesPerLoop {
		p.mu.Unlock()
		return pipe{}, false
	}
	p.live++
	p.mu.Unlock()
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		p.mu.Lock()
		p.live--
		p.mu.Unlock()
		return pipe{}, false
	}
	size, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETPIPE_SZ, 0)
	if err != nil || size <= 0 {
		size = 1 << 16 // the default since 2.6.11
	}
	return pipe{r: fds[0], w: fds[1], size: size}, true
}

// put returns a pipe; one that may still hold bytes (clean false) is
// closed instead of reused.
func (p *pipePool) put(pp pipe, clean bool) {
	p.mu.Lock()
	if clean && len(p.idle) < maxIdlePipes {
		p.idle = append(p.idle, pp)
		p.mu.Unlock()
		return
	}
	p.live--
	p.mu.Unlock()
	unix.Close(pp.r)
	unix.Close(pp.w)
}

func (p *pipePool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.live -= len(idle)
	p.mu.Unlock()
	for _, pp := range idle {
		unix.Close(pp.r)
		unix.Close(pp.w)
	}
}
