package proactor

import (
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

// Buffers is a loop's pool of receive buffers, in one anonymous mapping
// outside the Go heap: the kernel may write into a buffer at any time
// while it is provided, so the collector must never move or free it, and
// idle connections hold none of them. Loop goroutine only.
//
// On io_uring 5.19+ the pool is a provided buffer ring (PBUF_RING): the
// kernel picks a buffer when data arrives. Elsewhere (the epoll driver, and
// older rings, whose buffered receives run through the epoll path) the
// loop picks one itself, at the moment data is there to read. Either way a
// completion carries ring.CQEFBuffer and the buffer id, Buffer returns the
// bytes, and Release hands the buffer back.
type Buffers struct {
	size  int
	count int
	mem   []byte
	br    *ring.BufRing // nil: the loop selects buffers itself
	free  []uint16      // loop-selected mode: the ids not in use

	// multishot reports whether the ring can keep one recv armed for
	// many receives (6.0); otherwise the loop re-arms after each.
	multishot bool
	// starved are the buffered receives that stopped on ENOBUFS: they
	// are started again as soon as a buffer comes back.
	starved []starvedRecv
	// taken counts the buffers handed to handlers and not yet released.
	// A receive can meet ENOBUFS although buffers came back meanwhile
	// (released by handlers of the same batch of completions, before the
	// ENOBUFS was read); then no later Release would restart it, so
	// starve retries it on a timer instead.
	taken int
	retry *Timer // pending retry of a starved receive, if any
	l     *Loop
}

type starvedRecv struct {
	ud uint64
	op Op
}

// bufferGroup is the buffer group id each loop's ring uses.
const bufferGroup = 1

// Buffers returns the loop's receive buffer pool, setting it up on first
// use. Loop goroutine only.
func (l *Loop) Buffers() (*Buffers, error) {
	if l.bufs != nil {
		return l.bufs, nil
	}
	count, size := l.p.opts.Buffers, l.p.opts.BufferSize
	if count <= 0 {
		count = 2048
	}
	if size <= 0 {
		size = 4096
	}
	count = 1 << bitsFor(count) // ring sizes are powers of two
	mem, err := unix.Mmap(-1, 0, count*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANONYMOUS|unix.MAP_PRIVATE)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	b := &Buffers{size: size, count: count, mem: mem, l: l}
	if d, ok := l.drv.(*uringDriver); ok {
		b.br, b.multishot = d.bufRing(uint32(count))
	}
	if b.br != nil {
		for i := 0; i < count; i++ {
			b.br.Add(unsafe.Pointer(&mem[i*size]), uint32(size), uint16(i), i)
		}
		b.br.Advance(count)
	} else {
		b.free = make([]uint16, count)
		for i := range b.free {
			b.free[i] = uint16(count - 1 - i)
		}
	}
	l.bufs = b
	return b, nil
}

func bitsFor(n int) uint {
	b := uint(0)
	for 1<<b < n && b < 15 {
		b++
	}
	return b
}

// Size is the size of each buffer.
func (b *Buffers) Size() int { return b.size }

// Buffer returns the first n bytes of buffer id, as named by a completion's
// flags (ring.CQE.BufferID). The slice aliases the pool: it is valid until
// Release(id).
func (b *Buffers) Buffer(id uint16, n int) []byte {
	off := int(id) * b.size
	return b.mem[off : off+min(n, b.size) : off+b.size]
}

// Release gives buffer id back to the pool (to the kernel on a buffer
// ring), and restarts a receive that was waiting for one.
func (b *Buffers) Release(id uint16) {
	if b.br != nil {
		b.br.Add(unsafe.Pointer(&b.mem[int(id)*b.size]), uint32(b.size), id, 0)
		b.br.Advance(1)
	} else {
		b.free = append(b.free, id)
	}
	b.taken--
	b.restart()
}

// restart starts the first paused receive again.
func (b *Buffers) restart() {
	if len(b.starved) > 0 {
		s := b.starved[0]
		b.starved = b.starved[1:]
		if b.l.slab.lookup(s.ud) != nil {
			if err := b.l.drv.submit(s.ud, s.op, nil); err != nil {
				b.l.complete(s.ud, errnoRes(err), 0)
			}
		}
	}
}

// starve pauses the receive ud until a buffer comes back. If buffers are
// back already (fewer taken than the pool holds), no Release will come to
// restart it: a short timer does, without spinning on a kernel that keeps
// saying ENOBUFS.
func (b *Buffers) starve(ud uint64, op Op) {
	b.starved = append(b.starved, starvedRecv{ud, op})
	if b.taken < b.count && b.retry == nil {
		b.retry = b.l.newTimer(time.Millisecond, func() {
			b.retry = nil
			if b.mem != nil {
				b.restart()
			}
		})
	}
}

// unstarve removes ud from the paused receives, reporting whether it was
// there.
func (b *Buffers) unstarve(ud uint64) bool {
	for i, s := range b.starved {
		if s.ud == ud {
			b.starved = append(b.starved[:i], b.starved[i+1:]...)
			return true
		}
	}
	return false
}

func (b *Buffers) take() (uint16, bool) {
	if len(b.free) == 0 {
		return 0, false
	}
	id := b.free[len(b.free)-1]
	b.free = b.free[:len(b.free)-1]
	return id, true
}

func (b *Buffers) close() {
	if b.br != nil {
		b.br.Unregister()
	}
	unix.Munmap(b.mem)
	b.mem = nil
}

// RecvBuffers receives into the loop's provided buffers (IORING_OP_RECV
// with buffer select, 5.19 with a buffer ring; multishot 6.0). Each
// completion with res > 0 carries ring.CQEFBuffer and a buffer id for
// Buffers.Buffer; the handler must Release it. With Multishot it stays
// armed (ring.CQEFMore) until EOF (res 0), an error, or a cancel; on kernels
// without multishot recv the loop re-arms it after each receive, so the
// handler sees the same thing. Running out of buffers pauses it until one
// is released: ENOBUFS never reaches the handler.
type RecvBuffers struct {
	Fd        int
	Multishot bool
	Bufs      *Buffers
}

func (o *RecvBuffers) Opcode() ring.Op {
	if o.Bufs.br == nil {
		// No buffer ring on this loop: the loop selects buffers, on the
		// epoll path.
		return opSelectRecv
	}
	return ring.OpRecv
}
func (o *RecvBuffers) PollFd() int       { return o.Fd }
func (o *RecvBuffers) Readiness() uint32 { return unix.EPOLLIN }
func (o *RecvBuffers) Prep(sqe *ring.SQE) {
	if o.Multishot && o.Bufs.multishot {
		ring.PrepRecvMultishot(sqe, int32(o.Fd), bufferGroup, 0)
	} else {
		ring.PrepRecvSelect(sqe, int32(o.Fd), bufferGroup, 0)
	}
}
func (o *RecvBuffers) Perform() (int32, uint32) {
	id, ok := o.Bufs.take()
	if !ok {
		return -int32(unix.ENOBUFS), 0
	}
	n := recv(o.Fd, o.Bufs.Buffer(id, o.Bufs.size), 0)
	if n <= 0 {
		o.Bufs.free = append(o.Bufs.free, id)
		return n, 0
	}
	flags := ring.CQEFBuffer | uint32(id)<<ring.CQEBufferShift
	if o.Multishot {
		flags |= ring.CQEFMore
	}
	return n, flags
}

// again reports whether the loop must re-arm the op itself after this
// completion: a multishot request on a ring that cannot keep it armed.
func (o *RecvBuffers) again(res int32, flags uint32) bool {
	return o.Multishot && res > 0 && flags&ring.CQEFMore == 0
}

// opSelectRecv is a pseudo-opcode for a buffered receive whose buffer the
// loop selects: no ring runs it, so it takes the epoll path.
const opSelectRecv ring.Op = 254
