package proactor

import (
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

// provideOp gives buffers ids bid..bid+n-1 of a loop's pool to the kernel
// (IORING_OP_PROVIDE_BUFFERS, 5.7). It runs only on a ring that has the
// opcode (Buffers chose BufferProvide because of it), so it has no epoll
// form. The op and its handler are made once and reused from
// Buffers.spare: a flush allocates nothing.
type provideOp struct {
	b   *Buffers
	bid uint16
	n   uint16
	h   Handler
}

func (o *provideOp) Opcode() ring.Op   { return ring.OpProvideBuffers }
func (o *provideOp) PollFd() int       { return -1 }
func (o *provideOp) Readiness() uint32 { return 0 }
func (o *provideOp) Prep(sqe *ring.SQE) {
	b := o.b
	ring.PrepProvideBuffers(sqe, b.addr(o.bid), uint32(b.size), int32(o.n), bufferGroup, o.bid)
}
func (o *provideOp) Perform() (int32, uint32) {
	// Unreachable: provide mode exists only on rings that run the op.
	return -int32(unix.EOPNOTSUPP), 0
}
