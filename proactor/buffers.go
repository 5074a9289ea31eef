package proactor

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
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
// How buffers reach a receive depends on the ring (Mode says which):
//
//   - BufferRing, io_uring 5.19+: the pool is a provided buffer ring
//     (PBUF_RING). The kernel picks a buffer when data arrives; Release
//     writes the id back into the ring, no syscall and no SQE.
//   - BufferProvide, io_uring 5.7 to 5.18 (or a newer ring that refused
//     the buffer ring): the pool is handed to the kernel with
//     IORING_OP_PROVIDE_BUFFERS, and receives are IORING_OP_RECV with
//     IOSQE_BUFFER_SELECT, re-armed per receive before 6.0. Releases are
//     gathered for the turn and given back at its end (AtTurnEnd), sorted,
//     one PROVIDE_BUFFERS SQE per run of consecutive ids: the kernel hands
//     buffers out in the order they were provided, so what one turn
//     releases is mostly one run, and a burst of N releases costs a few
//     SQEs in the enter that starts the next wait instead of N.
//   - BufferSelect, the epoll driver and rings without PROVIDE_BUFFERS or
//     RECV: buffered receives run through the epoll path, and the loop
//     picks a buffer itself at the moment data is there to read.
//
// Whichever way, a completion carries ring.CQEFBuffer and the buffer id,
// Buffer returns the bytes, and Release hands the buffer back.
type Buffers struct {
	size  int
	count int
	mem   []byte
	mode  BufferMode
	br    *ring.BufRing // BufferRing
	free  []uint16      // BufferSelect: the ids not in use

	// BufferProvide: released ids wait in pending for the turn's flush;
	// provide ops (and their handlers) are reused from spare.
	pending     []uint16
	flushQueued bool
	flushFn     func()
	spare       []*provideOp
	reprovide   *Timer // retry of a provide the kernel refused
	provideErr  bool   // a refused provide was logged already

	// multishot reports whether the ring can keep one recv armed for
	// many receives (6.0); otherwise the loop re-arms after each.
	multishot bool
	// mshotLimit reports whether the kernel ends a multishot recv at a
	// byte limit (6.17, RecvBuffers.Limit). Older kernels fail the SQE
	// with -EINVAL, so it is gated by release like multishot.
	mshotLimit bool
	// starved are the buffered receives that stopped on ENOBUFS: they
	// are started again as soon as a buffer comes back (in BufferProvide
	// mode, once the kernel has it again: when its PROVIDE_BUFFERS
	// completes).
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

// BufferMode is how a loop's Buffers reach the kernel; see Buffers.
type BufferMode int

const (
	// BufferSelect: the loop selects buffers, on the epoll path.
	BufferSelect BufferMode = iota
	// BufferProvide: IORING_OP_PROVIDE_BUFFERS (5.7).
	BufferProvide
	// BufferRing: a registered provided buffer ring (5.19).
	BufferRing
)

func (m BufferMode) String() string {
	switch m {
	case BufferSelect:
		return "select"
	case BufferProvide:
		return "provide"
	case BufferRing:
		return "ring"
	}
	return "BufferMode(" + strconv.Itoa(int(m)) + ")"
}

type starvedRecv struct {
	ud uint64
	op Op
}

// bufferGroup is the buffer group id each loop's ring uses.
const bufferGroup = 1

// provideRetry is how long a PROVIDE_BUFFERS the kernel refused (ENOMEM)
// waits before it is tried again, so that a failing kernel is not spun on.
const provideRetry = 10 * time.Millisecond

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
		var provide bool
		b.br, provide, b.multishot = d.bufRing(uint32(count))
		b.mshotLimit = b.multishot && d.features.Has(ring.Release{Major: 6, Minor: 17})
		switch {
		case b.br != nil:
			b.mode = BufferRing
		case provide:
			b.mode = BufferProvide
		}
	}
	switch b.mode {
	case BufferRing:
		for i := 0; i < count; i++ {
			b.br.Add(b.addr(uint16(i)), uint32(size), uint16(i), i)
		}
		b.br.Advance(count)
	case BufferProvide:
		b.flushFn = b.flush
		// One SQE for the whole pool, ahead of any receive in the SQ.
		b.provide(0, count)
	default:
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

// Mode says how this pool's buffers reach the kernel.
func (b *Buffers) Mode() BufferMode { return b.mode }

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
// ring; on PROVIDE_BUFFERS at the end of the turn), and restarts a
// receive that was waiting for one. An id the pool does not have is
// ignored: handing it to the kernel would let it write outside the pool.
func (b *Buffers) Release(id uint16) {
	if int(id) >= b.count || b.mem == nil {
		return
	}
	b.taken--
	switch b.mode {
	case BufferRing:
		b.br.Add(b.addr(id), uint32(b.size), id, 0)
		b.br.Advance(1)
	case BufferProvide:
		b.pending = append(b.pending, id)
		if !b.flushQueued {
			b.flushQueued = true
			b.l.AtTurnEnd(b.flushFn)
		}
		// The kernel has it only once the provide has run: provided
		// restarts the paused receives then, so that none of them can
		// reach the ring ahead of its buffer.
		return
	default:
		b.free = append(b.free, id)
	}
	b.restart()
}

// flush gives the kernel the buffers released this turn: sorted, one
// PROVIDE_BUFFERS per run of consecutive ids. A duplicate (an id released
// twice) is dropped here rather than provided twice, which would let two
// receives write into the same memory.
func (b *Buffers) flush() {
	b.flushQueued = false
	if len(b.pending) == 0 || b.mem == nil {
		return
	}
	if b.l.closing {
		b.pending = b.pending[:0]
		return
	}
	ids := b.pending
	slices.Sort(ids)
	for i := 0; i < len(ids); {
		j := i + 1
		for j < len(ids) && ids[j] == ids[j-1]+1 {
			j++
		}
		b.provide(ids[i], j-i)
		for j < len(ids) && ids[j] == ids[j-1] {
			j++
		}
		i = j
	}
	b.pending = b.pending[:0]
}

// provide submits one PROVIDE_BUFFERS for ids bid..bid+n-1.
func (b *Buffers) provide(bid uint16, n int) {
	var o *provideOp
	if k := len(b.spare); k > 0 {
		o, b.spare = b.spare[k-1], b.spare[:k-1]
	} else {
		o = &provideOp{b: b}
		o.h = func(res int32, _ uint32) { b.provided(o, res) }
	}
	o.bid, o.n = bid, uint16(n)
	// A full SQ puts it on the loop's backlog, submitted next turn.
	b.l.start(task{op: o, h: o.h})
}

// provided handles a PROVIDE_BUFFERS completion: the kernel has the
// buffers now, so as many paused receives as it got buffers can start
// again. Kernels 5.7-5.18 report how many buffers they added (fewer than
// asked when they ran out of memory), later ones 0; what was not added is
// tried again after provideRetry.
func (b *Buffers) provided(o *provideOp, res int32) {
	bid, n := o.bid, int(o.n)
	b.spare = append(b.spare, o)
	if b.mem == nil || b.l.closing {
		return
	}
	added := n
	switch {
	case res < 0:
		added = 0
		if !b.provideErr {
			b.provideErr = true
			b.l.p.logError(b.l, fmt.Errorf("proactor: providing %d receive buffers: %w", n, unix.Errno(-res)))
		}
	case res > 0 && int(res) < n:
		added = int(res)
	}
	if added < n {
		for i := added; i < n; i++ {
			b.pending = append(b.pending, bid+uint16(i))
		}
		if b.reprovide == nil {
			b.reprovide = b.l.newTimer(provideRetry, func() {
				b.reprovide = nil
				if b.mem != nil && !b.flushQueued {
					b.flush()
				}
			})
		}
	}
	for i := 0; i < added && b.restart(); i++ {
	}
}

// restart starts the first paused receive again, reporting whether there
// was one.
func (b *Buffers) restart() bool {
	if len(b.starved) == 0 {
		return false
	}
	s := b.starved[0]
	b.starved = b.starved[1:]
	switch sl := b.l.slab.lookup(s.ud); {
	case sl == nil:
	case b.l.cancelledSlot(sl):
		// Its fd was cancelled while it waited: it must not start again.
		b.l.completeSlot(s.ud, sl, -int32(unix.ECANCELED), 0)
	default:
		if err := b.l.drv.submit(s.ud, s.op, s.op.Opcode(), nil); err != nil {
			b.l.complete(s.ud, errnoRes(err), 0)
		}
	}
	return true
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

// addr is the address of buffer id in the pool.
func (b *Buffers) addr(id uint16) unsafe.Pointer {
	return unsafe.Pointer(&b.mem[int(id)*b.size])
}

func (b *Buffers) close() {
	if b.br != nil {
		b.br.Unregister()
	}
	unix.Munmap(b.mem)
	b.mem = nil
}

// RecvBuffers receives into the loop's provided buffers (IORING_OP_RECV
// with buffer select: from a buffer ring on 5.19, from PROVIDE_BUFFERS on
// 5.7; multishot 6.0). Each
// completion with res > 0 carries ring.CQEFBuffer and a buffer id for
// Buffers.Buffer; the handler must Release it. With Multishot it stays
// armed (ring.CQEFMore) until EOF (res 0), an error, a cancel, or Limit;
// on kernels without multishot recv the loop re-arms it after each
// receive, so the handler sees the same thing. Running out of buffers
// pauses it until one is released: ENOBUFS never reaches the handler.
type RecvBuffers struct {
	Fd        int
	Multishot bool
	// Limit bounds the bytes a multishot receive takes: once it has
	// delivered Limit or more (at most one buffer more), its completion
	// comes without ring.CQEFMore although res > 0, and the handler
	// submits it again to go on. 0 means no limit. A receive that has
	// stopped cannot fill more of the pool than that, which is what
	// bounds the bytes a connection takes after it wants no more. The
	// kernel enforces it from 6.17 (the limit in the SQE's optlen); the
	// loop does where it re-arms each receive itself (kernels before 6.0,
	// the epoll path). On 6.0 to 6.16 it is not enforced: the multishot
	// receive stays armed (re-arming per receive would cost an SQE each),
	// and only a cancel stops it.
	Limit int
	Bufs  *Buffers

	// got counts the bytes delivered since the op was submitted, read
	// the bytes Perform received since then (it runs ahead of the
	// deliveries, several receives per readiness event). The final
	// completion resets both, so that the op can be submitted again,
	// except when a cancel ends it while it is starved or meets ENOBUFS,
	// which the loop completes without again: submit a new RecvBuffers
	// after a cancel.
	got, read int
}

func (o *RecvBuffers) Opcode() ring.Op {
	if o.Bufs.mode == BufferSelect {
		// The kernel has no buffers of this loop: the loop selects them,
		// on the epoll path.
		return opSelectRecv
	}
	return ring.OpRecv
}
func (o *RecvBuffers) PollFd() int       { return o.Fd }
func (o *RecvBuffers) Readiness() uint32 { return unix.EPOLLIN }
func (o *RecvBuffers) Prep(sqe *ring.SQE) {
	switch {
	case !o.Multishot || !o.Bufs.multishot:
		ring.PrepRecvSelect(sqe, int32(o.Fd), bufferGroup, 0)
	case o.Limit > 0 && o.Bufs.mshotLimit:
		// Prepared again when the loop restarts a starved receive: the
		// kernel's count starts over, so it gets what is left. The
		// kernel subtracts in int, so the limit must fit one.
		left := min(max(o.Limit-o.got, 1), math.MaxInt32)
		ring.PrepRecvMultishotLimit(sqe, int32(o.Fd), bufferGroup, 0, uint32(left))
	default:
		ring.PrepRecvMultishot(sqe, int32(o.Fd), bufferGroup, 0)
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
		o.read += int(n)
		if o.Limit <= 0 || o.read < o.Limit {
			flags |= ring.CQEFMore
		} else {
			o.read = 0 // off the reactor with this one
		}
	}
	return n, flags
}

// again reports whether the loop must re-arm the op itself after this
// completion: a multishot request that ended with data (on a ring that
// cannot keep it armed, or for a reason of the kernel's own) before its
// Limit. It sees every completion of the op, so it also keeps the count
// for Limit.
func (o *RecvBuffers) again(res int32, flags uint32) bool {
	if res > 0 {
		o.got += int(res)
	}
	if flags&ring.CQEFMore != 0 {
		return false
	}
	if o.Multishot && res > 0 && (o.Limit <= 0 || o.got < o.Limit) {
		return true
	}
	o.got, o.read = 0, 0
	return false
}

// opSelectRecv is a pseudo-opcode for a buffered receive whose buffer the
// loop selects: no ring runs it, so it takes the epoll path.
const opSelectRecv ring.Op = 254
