package ring

import "unsafe"

// SQE is struct io_uring_sqe: one submission, 64 bytes. The unions of the C
// struct are flattened to their first member; the prep helpers document which
// meaning each field takes for their opcode.
type SQE struct {
	Opcode      Op
	Flags       uint8  // SQE* flags
	IoPrio      uint16 // also send/recv/accept flags
	Fd          int32
	Off         uint64 // also addr2
	Addr        uint64 // also splice_off_in
	Len         uint32
	OpFlags     uint32 // rw_flags, msg_flags, timeout_flags, accept_flags, cancel_flags, open_flags, ...
	UserData    uint64
	BufIndex    uint16 // also buf_group
	Personality uint16
	SpliceFdIn  int32 // also file_index, optlen, addr_len
	Addr3       uint64
	_           uint64
}

// CQE is struct io_uring_cqe: one completion, 16 bytes.
type CQE struct {
	UserData uint64
	Res      int32  // result, or -errno
	Flags    uint32 // CQEF* flags
}

// BufferID returns the provided buffer id of a CQE that has CQEFBuffer set.
func (c *CQE) BufferID() uint16 { return uint16(c.Flags >> CQEBufferShift) }

// CQE32 is the 32-byte CQE of rings set up with SetupCQE32.
type CQE32 struct {
	CQE
	BigCQE [2]uint64
}

// SQRingOffsets is struct io_sqring_offsets.
type SQRingOffsets struct {
	Head        uint32
	Tail        uint32
	RingMask    uint32
	RingEntries uint32
	Flags       uint32
	Dropped     uint32
	Array       uint32
	Resv1       uint32
	UserAddr    uint64
}

// CQRingOffsets is struct io_cqring_offsets.
type CQRingOffsets struct {
	Head        uint32
	Tail        uint32
	RingMask    uint32
	RingEntries uint32
	Overflow    uint32
	CQEs        uint32
	Flags       uint32
	Resv1       uint32
	UserAddr    uint64
}

// Params is struct io_uring_params, 120 bytes: filled in by the caller for
// io_uring_setup and completed by the kernel.
type Params struct {
	SQEntries    uint32
	CQEntries    uint32
	Flags        uint32
	SQThreadCPU  uint32
	SQThreadIdle uint32
	Features     uint32
	WQFd         uint32
	Resv         [3]uint32
	SQOff        SQRingOffsets
	CQOff        CQRingOffsets
}

// ProbeOp is struct io_uring_probe_op.
type ProbeOp struct {
	Op    Op
	Resv  uint8
	Flags uint16 // OpSupported
	Resv2 uint32
}

// probeOps is how many ProbeOp slots a probe asks for; the kernel clamps it
// to what it knows, as liburing's io_uring_get_probe_ring does.
const probeOps = 256

// ProbeHeader is the fixed head of struct io_uring_probe.
type ProbeHeader struct {
	LastOp Op // the highest opcode the kernel knows (not necessarily supports)
	OpsLen uint8
	Resv   uint16
	Resv2  [3]uint32
}

// rawProbe is struct io_uring_probe with room for every opcode.
type rawProbe struct {
	ProbeHeader
	Ops [probeOps]ProbeOp
}

// BufRingEntry is struct io_uring_buf, one slot of a provided buffer ring.
// The ring's tail (struct io_uring_buf_ring) overlays Resv of slot 0.
type BufRingEntry struct {
	Addr uint64
	Len  uint32
	Bid  uint16
	Resv uint16
}

// BufReg is struct io_uring_buf_reg, the argument of REGISTER_PBUF_RING.
type BufReg struct {
	RingAddr    uint64
	RingEntries uint32
	Bgid        uint16
	Flags       uint16
	Resv        [3]uint64
}

// Timespec is struct __kernel_timespec.
type Timespec struct {
	Sec  int64
	Nsec int64
}

// GetEventsArg is struct io_uring_getevents_arg, passed with EnterExtArg.
type GetEventsArg struct {
	Sigmask     uint64
	SigmaskSz   uint32
	MinWaitUsec uint32
	Ts          uint64
}

// RsrcRegister is struct io_uring_rsrc_register (REGISTER_FILES2/BUFFERS2).
type RsrcRegister struct {
	Nr    uint32
	Flags uint32
	Resv2 uint64
	Data  uint64
	Tags  uint64
}

// RsrcUpdate is struct io_uring_rsrc_update (files update, ring fds).
type RsrcUpdate struct {
	Offset uint32
	Resv   uint32
	Data   uint64
}

// Sizes the kernel ABI fixes; abi_test.go checks them, and every field
// offset, against <linux/io_uring.h>.
const (
	sizeofSQE    = unsafe.Sizeof(SQE{})
	sizeofCQE    = unsafe.Sizeof(CQE{})
	sizeofParams = unsafe.Sizeof(Params{})
)
