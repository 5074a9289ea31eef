package ring

import "unsafe"

// SQERange returns the address range [lo, hi) of the ring's SQE array, or
// zeros for a closed ring. An SQE whose address lies in it is one of this
// ring's. A caller that keeps per-ring state (registered buffers and
// files, whose indexes mean something only to the ring that registered
// them) captures the range once and checks it in Prep: an SQE of another
// ring must not carry those indexes.
func (r *Ring) SQERange() (lo, hi uintptr) {
	if len(r.sqeMem) == 0 {
		return 0, 0
	}
	lo = uintptr(unsafe.Pointer(&r.sqeMem[0]))
	return lo, lo + uintptr(len(r.sqeMem))
}

// InRange reports whether sqe lies in [lo, hi), a range from SQERange.
func (sqe *SQE) InRange(lo, hi uintptr) bool {
	p := uintptr(unsafe.Pointer(sqe))
	return p >= lo && p < hi
}
