package ring

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// register is io_uring_register(2). EINTR is retried; on a simulated
// release, opcodes that release lacked fail with EINVAL as they would have.
func (r *Ring) register(op uint32, arg unsafe.Pointer, nr uint32) (int, error) {
	if since, ok := registerSince[op]; ok && !r.release.Has(since) {
		return 0, os.NewSyscallError("io_uring_register", unix.EINVAL)
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.fd), uintptr(op), uintptr(arg), uintptr(nr), 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, os.NewSyscallError("io_uring_register", errno)
		}
		return int(n), nil
	}
}

// RegisterFiles registers fds as the fixed-file table (5.1).
func (r *Ring) RegisterFiles(fds []int32) error {
	_, err := r.register(RegisterFiles, unsafe.Pointer(unsafe.SliceData(fds)), uint32(len(fds)))
	return err
}

// RegisterFilesSparse registers an empty fixed-file table of n slots
// (REGISTER_FILES2 with RSRC_REGISTER_SPARSE, 5.19).
func (r *Ring) RegisterFilesSparse(n uint32) error {
	if !r.release.Has(Release{5, 19}) {
		return os.NewSyscallError("io_uring_register", unix.EINVAL)
	}
	reg := RsrcRegister{Nr: n, Flags: RsrcRegisterSparse}
	_, err := r.register(RegisterFiles2, unsafe.Pointer(&reg), uint32(unsafe.Sizeof(reg)))
	return err
}

// UpdateFiles replaces fixed-file slots from off on with fds (5.5); -1
// clears a slot and RegisterFilesSkip leaves it. It returns how many slots
// were updated.
func (r *Ring) UpdateFiles(off uint32, fds []int32) (int, error) {
	up := RsrcUpdate{Offset: off, Data: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(fds))))}
	return r.register(RegisterFilesUpdate, unsafe.Pointer(&up), uint32(len(fds)))
}

// UnregisterFiles drops the fixed-file table.
func (r *Ring) UnregisterFiles() error {
	_, err := r.register(UnregisterFiles, nil, 0)
	return err
}

// RegisterBuffers registers fixed buffers for READ_FIXED/WRITE_FIXED (5.1).
// The kernel pins their pages; the memory must stay allocated until
// UnregisterBuffers. Counted against RLIMIT_MEMLOCK (ENOMEM past it).
func (r *Ring) RegisterBuffers(iovs []unix.Iovec) error {
	_, err := r.register(RegisterBuffers, unsafe.Pointer(unsafe.SliceData(iovs)), uint32(len(iovs)))
	return err
}

// UnregisterBuffers drops the fixed buffers.
func (r *Ring) UnregisterBuffers() error {
	_, err := r.register(UnregisterBuffers, nil, 0)
	return err
}

// RegisterEventfd makes the kernel signal fd for every CQE (5.2).
func (r *Ring) RegisterEventfd(fd int) error {
	v := int32(fd)
	_, err := r.register(RegisterEventfd, unsafe.Pointer(&v), 1)
	return err
}

// UnregisterEventfd stops signalling the eventfd.
func (r *Ring) UnregisterEventfd() error {
	_, err := r.register(UnregisterEventfd, nil, 0)
	return err
}

// MuteEventfd sets (or with false clears) IORING_CQ_EVENTFD_DISABLED (5.8):
// while it is set, new CQEs do not signal the registered eventfd. It is a
// store to the shared CQ ring, no syscall. It reports false, and changes
// nothing, where the ring (or the simulated kernel) lacks the flag. Only
// from the goroutine that submits.
func (r *Ring) MuteEventfd(mute bool) bool {
	if r.cq.kflags == nil || !r.release.Has(Release{5, 8}) {
		return false
	}
	f := atomic.LoadUint32(r.cq.kflags)
	if mute {
		f |= CQEventfdDisabled
	} else {
		f &^= CQEventfdDisabled
	}
	atomic.StoreUint32(r.cq.kflags, f)
	return true
}

// SetIOWQMaxWorkers limits the io-wq worker threads, bounded and unbounded
// (5.15); 0 leaves a limit unchanged. It returns the previous limits.
func (r *Ring) SetIOWQMaxWorkers(bounded, unbounded uint32) ([2]uint32, error) {
	v := [2]uint32{bounded, unbounded}
	_, err := r.register(RegisterIOWQMaxWorkers, unsafe.Pointer(&v), 2)
	return v, err
}

// RegisterRingFd registers the ring's own fd (5.18), so each
// io_uring_enter skips the fd table lookup. Later enters use the index.
//
// The registration lives in the calling thread's table, and it holds the
// ring alive: the caller must keep its goroutine locked to the thread
// (runtime.LockOSThread) from here until Close, enter the ring only from
// it, and Close there too, which unregisters it. An enter from another
// thread fails (EINVAL or EBADF) or, worse, names another ring
// registered there.
func (r *Ring) RegisterRingFd() error {
	if r.enterFlags&EnterRegisteredRing != 0 {
		return nil
	}
	up := RsrcUpdate{Offset: FileIndexAlloc, Data: uint64(r.fd)}
	if _, err := r.register(RegisterRingFds, unsafe.Pointer(&up), 1); err != nil {
		return err
	}
	r.enterFd = int(up.Offset)
	r.enterFlags |= EnterRegisteredRing
	r.regTid = unix.Gettid()
	return nil
}

// unregisterRingFd undoes RegisterRingFd; on any other thread than the
// one that registered it, it would unregister whatever that thread's slot
// holds, so it refuses.
func (r *Ring) unregisterRingFd() error {
	if r.enterFlags&EnterRegisteredRing == 0 {
		return nil
	}
	if tid := unix.Gettid(); tid != r.regTid {
		return fmt.Errorf("ring: Close on thread %d, but the ring fd was registered on thread %d, whose registration keeps the ring alive until that thread exits", tid, r.regTid)
	}
	up := RsrcUpdate{Offset: uint32(r.enterFd)}
	if _, err := r.register(UnregisterRingFds, unsafe.Pointer(&up), 1); err != nil {
		return err
	}
	r.enterFd, r.enterFlags = r.fd, r.enterFlags&^EnterRegisteredRing
	return nil
}

// EnableRings enables a ring created with WithRDisabled (5.10).
func (r *Ring) EnableRings() error {
	_, err := r.register(RegisterEnableRings, nil, 0)
	return err
}

// BufRing is a provided buffer ring (REGISTER_PBUF_RING, 5.19): a ring of
// buffer descriptors the kernel takes receive buffers from. Its memory is an
// anonymous mapping, outside the Go heap, so the collector never moves or
// frees what the kernel reads. Not safe for concurrent use.
type BufRing struct {
	ring    *Ring
	mem     []byte
	entries []BufRingEntry
	mask    uint16
	bgid    uint16
	tail    uint16 // local tail; published by Advance
	// tailWord is the 32-bit word holding slot 0's Bid and the shared tail.
	// Go has no 16-bit atomic store, so Advance stores Bid and tail
	// together (little-endian layout, as on amd64 and arm64).
	tailWord *uint32
}

// ErrBufRingSize is returned for a buffer ring size that is not a power of
// two between 1 and 32768.
var ErrBufRingSize = errors.New("ring: buffer ring entries must be a power of two <= 32768")

// RegisterBufRing registers a provided buffer ring of entries slots as group
// bgid. It starts empty: Add buffers, then Advance.
func (r *Ring) RegisterBufRing(entries uint32, bgid uint16) (*BufRing, error) {
	if entries == 0 || entries > 32768 || entries&(entries-1) != 0 {
		return nil, ErrBufRingSize
	}
	size := int(entries) * int(unsafe.Sizeof(BufRingEntry{}))
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANONYMOUS|unix.MAP_PRIVATE|unix.MAP_POPULATE)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	reg := BufReg{RingAddr: uint64(uintptr(unsafe.Pointer(&mem[0]))), RingEntries: entries, Bgid: bgid}
	if _, err := r.register(RegisterPbufRing, unsafe.Pointer(&reg), 1); err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	br := &BufRing{
		ring:    r,
		mem:     mem,
		entries: unsafe.Slice((*BufRingEntry)(unsafe.Pointer(&mem[0])), entries),
		mask:    uint16(entries - 1),
		bgid:    bgid,
	}
	br.tailWord = (*uint32)(unsafe.Pointer(&mem[12]))
	return br, nil
}

// Add writes a buffer descriptor at position offset past the local tail,
// as liburing's io_uring_buf_ring_add. addr must stay valid while the kernel
// may use it (the mapping or memory the caller keeps alive).
func (br *BufRing) Add(addr unsafe.Pointer, length uint32, bid uint16, offset int) {
	e := &br.entries[(br.tail+uint16(offset))&br.mask]
	e.Addr = uint64(uintptr(addr))
	e.Len = length
	e.Bid = bid
}

// Advance publishes count buffers added since the last Advance.
func (br *BufRing) Advance(count int) {
	br.tail += uint16(count)
	// Release: the descriptors written by Add must be visible before the
	// kernel sees the new tail. Slot 0's Bid shares the word; we are its
	// only writer, so storing its current value back is harmless.
	bid0 := uint32(br.entries[0].Bid)
	atomic.StoreUint32(br.tailWord, bid0|uint32(br.tail)<<16)
}

// Group returns the buffer group id.
func (br *BufRing) Group() uint16 { return br.bgid }

// Entries returns the number of slots.
func (br *BufRing) Entries() int { return len(br.entries) }

// Unregister removes the buffer ring from the kernel and unmaps it. The
// caller must be sure no op may still select from it.
func (br *BufRing) Unregister() error {
	if br.mem == nil {
		return nil
	}
	reg := BufReg{Bgid: br.bgid}
	_, err := br.ring.register(UnregisterPbufRing, unsafe.Pointer(&reg), 1)
	unix.Munmap(br.mem)
	br.mem, br.entries = nil, nil
	return err
}
