package ring

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Every helper below is a few lines on prepRW, which fills the fields all
// opcodes share; each doc comment names the opcode and the release that
// added it. Helpers store addresses, not references: see the package doc.

func prepRW(sqe *SQE, op Op, fd int32, addr unsafe.Pointer, n uint32, off uint64) {
	sqe.Opcode = op
	sqe.Fd = fd
	sqe.Addr = uint64(uintptr(addr))
	sqe.Len = n
	sqe.Off = off
}

func bufAddr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

// PrepNop prepares IORING_OP_NOP (5.1).
func PrepNop(sqe *SQE) { prepRW(sqe, OpNop, -1, nil, 0, 0) }

// PrepReadv prepares IORING_OP_READV (5.1) into iovs at off (-1: the file position).
func PrepReadv(sqe *SQE, fd int32, iovs []unix.Iovec, off uint64) {
	prepRW(sqe, OpReadv, fd, unsafe.Pointer(unsafe.SliceData(iovs)), uint32(len(iovs)), off)
}

// PrepWritev prepares IORING_OP_WRITEV (5.1).
func PrepWritev(sqe *SQE, fd int32, iovs []unix.Iovec, off uint64) {
	prepRW(sqe, OpWritev, fd, unsafe.Pointer(unsafe.SliceData(iovs)), uint32(len(iovs)), off)
}

// PrepRead prepares IORING_OP_READ (5.6) into buf at off.
func PrepRead(sqe *SQE, fd int32, buf []byte, off uint64) {
	prepRW(sqe, OpRead, fd, bufAddr(buf), uint32(len(buf)), off)
}

// PrepWrite prepares IORING_OP_WRITE (5.6) from buf at off.
func PrepWrite(sqe *SQE, fd int32, buf []byte, off uint64) {
	prepRW(sqe, OpWrite, fd, bufAddr(buf), uint32(len(buf)), off)
}

// PrepReadFixed prepares IORING_OP_READ_FIXED (5.1) into registered buffer bufIndex.
func PrepReadFixed(sqe *SQE, fd int32, buf []byte, off uint64, bufIndex uint16) {
	prepRW(sqe, OpReadFixed, fd, bufAddr(buf), uint32(len(buf)), off)
	sqe.BufIndex = bufIndex
}

// PrepWriteFixed prepares IORING_OP_WRITE_FIXED (5.1) from registered buffer bufIndex.
func PrepWriteFixed(sqe *SQE, fd int32, buf []byte, off uint64, bufIndex uint16) {
	prepRW(sqe, OpWriteFixed, fd, bufAddr(buf), uint32(len(buf)), off)
	sqe.BufIndex = bufIndex
}

// PrepFsync prepares IORING_OP_FSYNC (5.1); flags FsyncDatasync for fdatasync.
func PrepFsync(sqe *SQE, fd int32, flags uint32) {
	prepRW(sqe, OpFsync, fd, nil, 0, 0)
	sqe.OpFlags = flags
}

// PrepPollAdd prepares a one-shot IORING_OP_POLL_ADD (5.1) for poll(2) events.
func PrepPollAdd(sqe *SQE, fd int32, events uint32) {
	prepRW(sqe, OpPollAdd, fd, nil, 0, 0)
	sqe.OpFlags = events // poll32_events; the kernel's little-endian layout
}

// PrepPollMultishot prepares a multishot IORING_OP_POLL_ADD (5.13).
func PrepPollMultishot(sqe *SQE, fd int32, events uint32) {
	PrepPollAdd(sqe, fd, events)
	sqe.Len = PollAddMulti
}

// PrepPollRemove prepares IORING_OP_POLL_REMOVE (5.1) of the poll with userData.
func PrepPollRemove(sqe *SQE, userData uint64) {
	prepRW(sqe, OpPollRemove, -1, nil, 0, 0)
	sqe.Addr = userData
}

// PrepTimeout prepares IORING_OP_TIMEOUT (5.4): it completes with -ETIME
// after ts, or with 0 once count other CQEs have posted (0: time only).
// ts must stay valid until the CQE.
func PrepTimeout(sqe *SQE, ts *Timespec, count uint64, flags uint32) {
	prepRW(sqe, OpTimeout, -1, unsafe.Pointer(ts), 1, count)
	sqe.OpFlags = flags
}

// PrepTimeoutRemove prepares IORING_OP_TIMEOUT_REMOVE (5.5).
func PrepTimeoutRemove(sqe *SQE, userData uint64, flags uint32) {
	prepRW(sqe, OpTimeoutRemove, -1, nil, 0, 0)
	sqe.Addr = userData
	sqe.OpFlags = flags
}

// PrepLinkTimeout prepares IORING_OP_LINK_TIMEOUT (5.5): linked after an SQE
// with SQEIOLink, it cancels that op if it has not completed after ts.
func PrepLinkTimeout(sqe *SQE, ts *Timespec, flags uint32) {
	prepRW(sqe, OpLinkTimeout, -1, unsafe.Pointer(ts), 1, 0)
	sqe.OpFlags = flags
}

// PrepAccept prepares IORING_OP_ACCEPT (5.5) with accept4(2) flags. addr and
// addrLen may be nil.
func PrepAccept(sqe *SQE, fd int32, addr *unix.RawSockaddrAny, addrLen *uint32, flags uint32) {
	prepRW(sqe, OpAccept, fd, unsafe.Pointer(addr), 0, uint64(uintptr(unsafe.Pointer(addrLen))))
	sqe.OpFlags = flags
}

// PrepAcceptMultishot prepares a multishot IORING_OP_ACCEPT (5.19): one CQE
// per connection while CQEFMore is set. A shared addr would be overwritten
// by each connection, so it takes none.
func PrepAcceptMultishot(sqe *SQE, fd int32, flags uint32) {
	PrepAccept(sqe, fd, nil, nil, flags)
	sqe.IoPrio |= AcceptMultishot
}

// PrepConnect prepares IORING_OP_CONNECT (5.5).
func PrepConnect(sqe *SQE, fd int32, addr unsafe.Pointer, addrLen uint32) {
	prepRW(sqe, OpConnect, fd, addr, 0, uint64(addrLen))
}

// PrepRecv prepares IORING_OP_RECV (5.6) into buf with recv(2) flags.
func PrepRecv(sqe *SQE, fd int32, buf []byte, flags uint32) {
	prepRW(sqe, OpRecv, fd, bufAddr(buf), uint32(len(buf)), 0)
	sqe.OpFlags = flags
}

// PrepRecvSelect prepares IORING_OP_RECV (5.7 with provided buffers) that
// takes its buffer from group bgid; CQE.BufferID says which.
func PrepRecvSelect(sqe *SQE, fd int32, bgid uint16, flags uint32) {
	prepRW(sqe, OpRecv, fd, nil, 0, 0)
	sqe.OpFlags = flags
	sqe.Flags |= SQEBufferSelect
	sqe.BufIndex = bgid
}

// PrepRecvMultishot prepares a multishot IORING_OP_RECV from group bgid
// (6.0): one CQE per receive while CQEFMore is set.
func PrepRecvMultishot(sqe *SQE, fd int32, bgid uint16, flags uint32) {
	PrepRecvSelect(sqe, fd, bgid, flags)
	sqe.IoPrio |= RecvMultishot
}

// PrepRecvMultishotLimit is PrepRecvMultishot for a receive that ends, with
// a CQE without CQEFMore, once it has received limit bytes in all (6.17;
// limit 0 means none). The last receive may overshoot by up to one buffer.
// The limit goes in optlen, not in a flag: IORING_RECV_MSHOT_LIM is the
// kernel's own mark for it, and in IoPrio it fails with -EINVAL. Kernels
// before 6.17 also fail a nonzero limit with -EINVAL.
func PrepRecvMultishotLimit(sqe *SQE, fd int32, bgid uint16, flags, limit uint32) {
	PrepRecvMultishot(sqe, fd, bgid, flags)
	sqe.SpliceFdIn = int32(limit)
}

// PrepSend prepares IORING_OP_SEND (5.6) with send(2) flags; pass
// MSG_NOSIGNAL so a closed peer gives -EPIPE, not SIGPIPE.
func PrepSend(sqe *SQE, fd int32, buf []byte, flags uint32) {
	prepRW(sqe, OpSend, fd, bufAddr(buf), uint32(len(buf)), 0)
	sqe.OpFlags = flags
}

// PrepSendZC prepares IORING_OP_SEND_ZC (6.0). It posts two CQEs: the
// result (with CQEFMore) and, once the kernel no longer needs buf, a
// notification with CQEFNotif.
func PrepSendZC(sqe *SQE, fd int32, buf []byte, flags uint32, zcFlags uint16) {
	prepRW(sqe, OpSendZC, fd, bufAddr(buf), uint32(len(buf)), 0)
	sqe.OpFlags = flags
	sqe.IoPrio = zcFlags
}

// PrepSendmsg prepares IORING_OP_SENDMSG (5.3).
func PrepSendmsg(sqe *SQE, fd int32, msg *unix.Msghdr, flags uint32) {
	prepRW(sqe, OpSendmsg, fd, unsafe.Pointer(msg), 1, 0)
	sqe.OpFlags = flags
}

// PrepRecvmsg prepares IORING_OP_RECVMSG (5.3).
func PrepRecvmsg(sqe *SQE, fd int32, msg *unix.Msghdr, flags uint32) {
	prepRW(sqe, OpRecvmsg, fd, unsafe.Pointer(msg), 1, 0)
	sqe.OpFlags = flags
}

// PrepCancel prepares IORING_OP_ASYNC_CANCEL (5.5) of the op with userData;
// flags may add AsyncCancelAll (5.19) to cancel every match. The cancel's
// own CQE is 0, -ENOENT or -EALREADY; the target still posts its CQE.
func PrepCancel(sqe *SQE, userData uint64, flags uint32) {
	prepRW(sqe, OpAsyncCancel, -1, nil, 0, 0)
	sqe.Addr = userData
	sqe.OpFlags = flags
}

// PrepCancelFd prepares IORING_OP_ASYNC_CANCEL of every op on fd (5.19).
func PrepCancelFd(sqe *SQE, fd int32, flags uint32) {
	prepRW(sqe, OpAsyncCancel, fd, nil, 0, 0)
	sqe.OpFlags = flags | AsyncCancelFd | AsyncCancelAll
}

// PrepCancelAll prepares IORING_OP_ASYNC_CANCEL of every op in the ring (5.19).
func PrepCancelAll(sqe *SQE) {
	prepRW(sqe, OpAsyncCancel, -1, nil, 0, 0)
	sqe.OpFlags = AsyncCancelAny | AsyncCancelAll
}

// PrepOpenat prepares IORING_OP_OPENAT (5.6). path must be NUL-terminated.
func PrepOpenat(sqe *SQE, dirfd int32, path *byte, flags uint32, mode uint32) {
	prepRW(sqe, OpOpenat, dirfd, unsafe.Pointer(path), mode, 0)
	sqe.OpFlags = flags
}

// PrepOpenat2 prepares IORING_OP_OPENAT2 (5.6) with an open_how.
func PrepOpenat2(sqe *SQE, dirfd int32, path *byte, how *unix.OpenHow) {
	prepRW(sqe, OpOpenat2, dirfd, unsafe.Pointer(path), uint32(unsafe.Sizeof(*how)), uint64(uintptr(unsafe.Pointer(how))))
}

// PrepClose prepares IORING_OP_CLOSE (5.6).
func PrepClose(sqe *SQE, fd int32) { prepRW(sqe, OpClose, fd, nil, 0, 0) }

// PrepStatx prepares IORING_OP_STATX (5.6).
func PrepStatx(sqe *SQE, dirfd int32, path *byte, flags uint32, mask uint32, st *unix.Statx_t) {
	prepRW(sqe, OpStatx, dirfd, unsafe.Pointer(path), mask, uint64(uintptr(unsafe.Pointer(st))))
	sqe.OpFlags = flags
}

// PrepFallocate prepares IORING_OP_FALLOCATE (5.6).
func PrepFallocate(sqe *SQE, fd int32, mode uint32, off, length uint64) {
	prepRW(sqe, OpFallocate, fd, nil, mode, off)
	sqe.Addr = length
}

// PrepFadvise prepares IORING_OP_FADVISE (5.6).
func PrepFadvise(sqe *SQE, fd int32, off uint64, length uint32, advice uint32) {
	prepRW(sqe, OpFadvise, fd, nil, length, off)
	sqe.OpFlags = advice
}

// PrepSplice prepares IORING_OP_SPLICE (5.7): move n bytes from fdIn at
// offIn to fdOut at offOut; one side must be a pipe, whose offset is -1.
func PrepSplice(sqe *SQE, fdIn int32, offIn int64, fdOut int32, offOut int64, n uint32, flags uint32) {
	prepRW(sqe, OpSplice, fdOut, nil, n, uint64(offOut))
	sqe.Addr = uint64(offIn)
	sqe.SpliceFdIn = fdIn
	sqe.OpFlags = flags
}

// PrepProvideBuffers prepares IORING_OP_PROVIDE_BUFFERS (5.7): nbufs buffers
// of size bytes each, starting at addr, as ids bid.. in group bgid.
func PrepProvideBuffers(sqe *SQE, addr unsafe.Pointer, size uint32, nbufs int32, bgid, bid uint16) {
	prepRW(sqe, OpProvideBuffers, nbufs, addr, size, uint64(bid))
	sqe.BufIndex = bgid
}

// PrepRemoveBuffers prepares IORING_OP_REMOVE_BUFFERS (5.7).
func PrepRemoveBuffers(sqe *SQE, nbufs int32, bgid uint16) {
	prepRW(sqe, OpRemoveBuffers, nbufs, nil, 0, 0)
	sqe.BufIndex = bgid
}

// PrepShutdown prepares IORING_OP_SHUTDOWN (5.11).
func PrepShutdown(sqe *SQE, fd int32, how int) {
	prepRW(sqe, OpShutdown, fd, nil, uint32(how), 0)
}

// PrepSocket prepares IORING_OP_SOCKET (5.19).
func PrepSocket(sqe *SQE, domain, typ, proto int, flags uint32) {
	prepRW(sqe, OpSocket, int32(domain), nil, uint32(proto), uint64(typ))
	sqe.OpFlags = flags
}

// PrepMsgRing prepares IORING_OP_MSG_RING (5.18): post a CQE with res and
// userData on the ring whose fd is ringFd.
func PrepMsgRing(sqe *SQE, ringFd int32, res uint32, userData uint64, flags uint32) {
	prepRW(sqe, OpMsgRing, ringFd, nil, res, userData)
	sqe.OpFlags = flags
}

// PrepFtruncate prepares IORING_OP_FTRUNCATE (6.9).
func PrepFtruncate(sqe *SQE, fd int32, length int64) {
	prepRW(sqe, OpFtruncate, fd, nil, 0, uint64(length))
}
