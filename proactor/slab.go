package proactor

import (
	"time"

	"github.com/ringo-io/ringo/ring"
)

// User data layout. The kernel hands user_data back untouched, so it names
// the op without being a Go pointer (a pointer stored only in the kernel
// would be invisible to the garbage collector):
//
//	bit  63     internal: the driver's own SQEs (wake-ups, cancels, polls)
//	bit  62     the LINK_TIMEOUT companion of the op in bits 0-61
//	bits 61-32  generation of the slot (30 bits)
//	bits 31-0   slot index
//
// A CQE whose generation does not match its slot's is stale (the slot was
// freed and reused): it is counted and dropped, never delivered.
const (
	udInternal    = uint64(1) << 63
	udLinkTimeout = uint64(1) << 62
	genMask       = 1<<30 - 1
)

func makeUD(idx, gen uint32) uint64 { return uint64(gen)<<32 | uint64(idx) }

func splitUD(ud uint64) (idx, gen uint32) {
	return uint32(ud), uint32(ud>>32) & genMask
}

// slot holds an op from submission to its final completion: the op (and so
// every buffer the kernel may touch), its handler or waiter, and its
// timeout. Loop goroutine only.
type slot struct {
	gen  uint32
	busy bool

	op   Op
	code ring.Op // op.Opcode(), kept to spare an interface call per CQE
	h    Handler
	w    *waiter

	// Deadline handling: ts is the LINK_TIMEOUT's timespec (kept here,
	// in stable memory, until the companion CQE); timer is the heap timer
	// used where the driver cannot link a timeout (slotTimer), or that
	// serves a Timeout op.
	ts        ring.Timespec
	linked    bool  // a LINK_TIMEOUT companion CQE is still to come
	held      bool  // the op's CQE arrived and waits for the companion
	heldRes   int32 // the op's result while held
	heldFlags uint32
	timedOut  bool
	timer     *Timer
	deadline  time.Duration // on the loop clock; 0 for none. Survives a re-arm.
	// ownTimer is this slot's timer, made with its callback on first use
	// and kept across ops (release keeps it), so that an op served by a
	// loop timer allocates nothing; timerUD is the op it is armed for,
	// timerETime says it completes that op with -ETIME (a Timeout op)
	// rather than cancelling it (a deadline).
	ownTimer   *Timer
	timerUD    uint64
	timerETime bool

	// loopTimeout marks a Timeout op, served by the loop's timer heap.
	loopTimeout bool
	// cancelled: a cancel went to the driver. A buffered receive that
	// then ends on ENOBUFS is finished, not paused, or the cancel (which
	// found nothing left to cancel in the kernel) would be lost.
	cancelled bool
	// armSeq is Loop.fdCancelSeq when the op started (cancelledSlot).
	armSeq uint64
	// zcData: a zero-copy send's data CQE came; its notification is due.
	zcData bool
}

// slab stores slots in fixed chunks so that a slot never moves: a
// ring.Timespec inside it can be handed to the kernel.
type slab struct {
	chunks []*[slabChunk]slot
	free   []uint32
	inUse  int
}

const slabChunk = 256

// alloc is small enough to be inlined into start; grow is not.
func (s *slab) alloc() (uint32, *slot) {
	if len(s.free) == 0 {
		s.grow()
	}
	idx := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	sl := s.at(idx)
	sl.busy = true
	s.inUse++
	return idx, sl
}

func (s *slab) grow() {
	base := uint32(len(s.chunks) * slabChunk)
	chunk := new([slabChunk]slot)
	for i := slabChunk - 1; i >= 0; i-- {
		chunk[i].gen = 1 // user data 0 never names an op
		s.free = append(s.free, base+uint32(i))
	}
	s.chunks = append(s.chunks, chunk)
}

func (s *slab) at(idx uint32) *slot {
	return &s.chunks[idx/slabChunk][idx%slabChunk] // one bounds check
}

// lookup returns the busy slot that ud names, or nil if ud is stale.
func (s *slab) lookup(ud uint64) *slot {
	idx, gen := splitUD(ud)
	if int(idx/slabChunk) >= len(s.chunks) {
		return nil
	}
	sl := s.at(idx)
	if !sl.busy || sl.gen != gen {
		return nil
	}
	return sl
}

// release frees a slot and drops its references, so that buffers are
// collectable once the kernel is done with them.
func (s *slab) release(idx uint32, sl *slot) {
	gen := (sl.gen + 1) & genMask
	if gen == 0 {
		gen = 1
	}
	*sl = slot{gen: gen, ownTimer: sl.ownTimer}
	s.free = append(s.free, idx)
	s.inUse--
}

// each calls f for every busy slot.
func (s *slab) each(f func(ud uint64, sl *slot)) {
	for c, chunk := range s.chunks {
		for i := range chunk {
			if sl := &chunk[i]; sl.busy {
				f(makeUD(uint32(c*slabChunk+i), sl.gen), sl)
			}
		}
	}
}
