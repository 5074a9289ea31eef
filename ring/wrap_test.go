package ring

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// fakeKernelRing builds a Ring over plain memory whose indices start just
// below 2^32, with the test playing the kernel. A real ring would need four
// billion operations to wrap its 32-bit indices; this checks that the
// queue code's arithmetic (free space, ready counts, slot masks) stays right
// across the wrap.
func fakeKernelRing(entries uint32, start uint32) (*Ring, *[4]uint32, []CQE, []SQE) {
	var idx [4]uint32 // sq head, sq tail, cq head, cq tail
	var sqflags, cqoverflow uint32
	for i := range idx {
		idx[i] = start
	}
	cqes := make([]CQE, entries*2)
	sqes := make([]SQE, entries)
	r := &Ring{fd: -1}
	r.sq = sqRing{khead: &idx[0], ktail: &idx[1], kflags: &sqflags, mask: entries - 1, entries: entries,
		sqes: unsafe.Pointer(&sqes[0]), sqeHead: start, sqeTail: start}
	r.cq = cqRing{khead: &idx[2], ktail: &idx[3], koverflow: &cqoverflow, mask: entries*2 - 1,
		entries: entries * 2, cqes: unsafe.Pointer(&cqes[0])}
	return r, &idx, cqes, sqes
}

func FuzzRingIndexWrap(f *testing.F) {
	f.Add(uint32(0xffff_fff0), uint64(1))
	f.Add(uint32(0xffff_ffff), uint64(2))
	f.Add(uint32(0), uint64(3))
	f.Fuzz(func(t *testing.T, start uint32, seed uint64) {
		const entries = 8
		r, idx, cqes, sqes := fakeKernelRing(entries, start)
		rng := rand.New(rand.NewPCG(seed, 0))
		var nextID, consumed, posted, reaped uint64
		for step := 0; step < 200; step++ {
			// Take a random number of SQEs; GetSQE must refuse exactly
			// when entries are outstanding.
			for k := rng.IntN(entries + 2); k > 0; k-- {
				outstanding := uint64(r.sq.sqeTail - atomic.LoadUint32(&idx[0]))
				sqe := r.GetSQE()
				if outstanding >= entries {
					require.Nil(t, sqe)
					break
				}
				require.NotNil(t, sqe)
				sqe.UserData = nextID
				nextID++
			}
			r.flush()
			require.Equal(t, r.sq.sqeTail, atomic.LoadUint32(&idx[1]))
			// The "kernel" consumes some SQEs and posts a CQE for each,
			// if the CQ has room.
			for atomic.LoadUint32(&idx[0]) != atomic.LoadUint32(&idx[1]) && rng.IntN(3) > 0 {
				if idx[3]-idx[2] == r.cq.entries {
					break
				}
				sqe := &sqes[idx[0]&r.sq.mask]
				require.Equal(t, consumed, sqe.UserData, "SQE slots out of order across the wrap")
				cqes[idx[3]&r.cq.mask] = CQE{UserData: sqe.UserData}
				idx[0]++
				idx[3]++
				consumed++
				posted++
			}
			require.Equal(t, uint32(posted-reaped), r.CQReady())
			buf := make([]CQE, rng.IntN(5)+1)
			n := r.Peek(buf)
			for _, c := range buf[:n] {
				require.Equal(t, reaped, c.UserData, "CQEs out of order across the wrap")
				reaped++
			}
			r.Advance(n)
		}
	})
}
