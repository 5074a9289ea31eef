package proactor

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

// Registered (fixed) buffers and files.
//
// io_uring lets a ring pin a set of buffers once (REGISTER_BUFFERS, 5.1)
// so that READ_FIXED and WRITE_FIXED skip pinning pages per op, and keep a
// table of files (REGISTER_FILES, 5.1) so that an SQE with IOSQE_FIXED_FILE
// skips the fd table lookup and its reference counting. Both are per ring,
// so here per Loop. Where there is no registration (the epoll driver) the
// Loop emulates both: the same memory read and written with pread and
// pwrite, indexes mapped back to the fds, the same results and errnos.
//
// Which errnos: an op naming a buffer that does not exist (nil or
// unregistered FixedBuffers, index out of range, N beyond the buffer)
// completes with -EINVAL; one naming a file index that does not exist
// (unregistered table, index out of range, empty slot) completes with
// -EBADF. The op checks before the kernel sees it, so both drivers answer
// the same way.

// errNoRegister is a driver's "I keep no kernel registration": the Loop
// emulates it.
var errNoRegister = errors.New("proactor: driver has no registration")

// Limits: IORING_MAX_REG_BUFFERS (1<<14) buffers of at most 1 GiB each (the
// kernel's cap per registered buffer); the fixed-file table is capped at
// 1<<15 slots, what kernels since 5.4 accept (IORING_MAX_FIXED_FILES; 5.1
// to 5.3 took 1024, and RLIMIT_NOFILE caps it too).
const (
	maxFixedBuffers   = 1 << 14
	maxFixedBufSize   = 1 << 30
	maxFixedFileSlots = 1 << 15
)

// fixedState is a Loop's registrations. Loop goroutine only, except that
// the reaper started by the first registration reads it after the loop has
// exited (after l.done is closed).
type fixedState struct {
	bufs   *FixedBuffers
	files  *FixedFiles
	reaper bool
}

// FixedBuffers are a loop's registered buffers: count buffers of size
// bytes in one anonymous mapping outside the Go heap, since the kernel
// keeps their addresses (the collector must never move or free them).
// Ops that use them: ReadFixed, WriteFixed, submitted to the same loop.
type FixedBuffers struct {
	l     *Loop
	size  int
	count int
	mem   []byte // immutable; unmapped by release

	// sqeLo and sqeHi bound the ring's SQEs when kernel is set: an SQE
	// outside belongs to another loop's ring (see fixedIO.prep).
	// Immutable after registration.
	sqeLo, sqeHi uintptr

	kernel bool // registered with the ring; false: emulated. Immutable.
	// active: usable by ops, registered and not being unregistered. Ops
	// read it on whatever loop they are submitted to.
	active atomic.Bool
	unreg  sync.Mutex  // one Unregister at a time
	freed  atomic.Bool // mem unmapped (Buf answers nil): set once, by release
}

// RegisterBuffers maps count buffers of size bytes and registers them with
// the loop's ring (emulated on epoll). A loop has one set at a time: a
// second RegisterBuffers before Unregister fails with EBUSY. The memory is
// counted against RLIMIT_MEMLOCK on io_uring (ENOMEM past it).
//
// Call it from any goroutine but another loop's (EDEADLK there: that loop
// might be waiting for this one): it runs the registration on the loop
// goroutine, which is the ring's only submitter, at once when called
// there (from a handler) and otherwise waiting for the loop.
func (l *Loop) RegisterBuffers(size, count int) (*FixedBuffers, error) {
	if size <= 0 || size > maxFixedBufSize || count <= 0 || count > maxFixedBuffers {
		return nil, fmt.Errorf("proactor: RegisterBuffers(%d, %d): want 1..%d buffers of 1..%d bytes: %w",
			size, count, maxFixedBuffers, maxFixedBufSize, unix.EINVAL)
	}
	mem, err := unix.Mmap(-1, 0, size*count, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANONYMOUS|unix.MAP_PRIVATE)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	b := &FixedBuffers{l: l, size: size, count: count, mem: mem}
	err = l.inLoop(func() error {
		if l.fixed.bufs != nil {
			return fmt.Errorf("proactor: RegisterBuffers: loop %d already has fixed buffers: %w", l.id, unix.EBUSY)
		}
		iovs := make([]unix.Iovec, count)
		for i := range iovs {
			iovs[i].Base = &mem[i*size]
			iovs[i].SetLen(size)
		}
		switch err := l.drv.registerBuffers(iovs); {
		case err == nil:
			b.kernel = true
			b.sqeLo, b.sqeHi = l.sqeRange()
		case !errors.Is(err, errNoRegister):
			return fmt.Errorf("proactor: RegisterBuffers: %w", err)
		}
		b.active.Store(true)
		l.fixed.bufs = b
		l.startReaper()
		return nil
	})
	if err != nil {
		unix.Munmap(mem)
		return nil, err
	}
	return b, nil
}

// Buf returns buffer i, or nil if there is no buffer i, or no buffers any
// more (after Unregister or the loop's Close). The slice aliases the
// mapping: it must not be used after Unregister or the loop's Close,
// which unmap it (touching it then is a fault no recover can catch).
func (b *FixedBuffers) Buf(i int) []byte {
	if b == nil || i < 0 || i >= b.count || b.freed.Load() {
		return nil
	}
	return b.mem[i*b.size : (i+1)*b.size : (i+1)*b.size]
}

// Size returns the size of each buffer.
func (b *FixedBuffers) Size() int { return b.size }

// Len returns the number of buffers.
func (b *FixedBuffers) Len() int { return b.count }

// Registered reports whether the kernel holds the buffers (io_uring)
// rather than the loop emulating them (epoll). Immutable after
// RegisterBuffers.
func (b *FixedBuffers) Registered() bool { return b.kernel }

// Unregister drops the buffers from the ring and unmaps them. It fails
// with EBUSY while an op that uses them is in flight, on any loop of the
// proactor, and leaves them registered: wait for those completions and
// call it again. Ops that start after it (or while it checks the other
// loops) complete with -EINVAL. After the loop's Close, which releases the
// buffers itself, it returns nil. Not from a loop goroutine (of any
// Proactor): it waits for every loop, and there fails with EDEADLK.
func (b *FixedBuffers) Unregister() error {
	if CurrentLoop() != nil {
		return errFromLoop
	}
	b.unreg.Lock()
	defer b.unreg.Unlock()
	l := b.l
	if ok, err := l.quiesceFixed(b, nil, &b.active); !ok {
		return err
	}
	err := l.inLoop(func() error {
		l.fixed.bufs = nil
		var err error
		if b.kernel {
			err = l.drv.unregisterBuffers()
		}
		b.release()
		return err
	})
	if errors.Is(err, ErrClosed) {
		return nil // Close released them
	}
	return err
}

// release unmaps the memory, once, when no op can use it any more: on the
// loop goroutine after unregistering, or by the reaper after the ring is
// gone.
func (b *FixedBuffers) release() {
	if !b.freed.Swap(true) {
		unix.Munmap(b.mem)
	}
}

// FixedFiles is a loop's registered file table: ops name a file by its
// index in the table (IOSQE_FIXED_FILE) instead of by fd. The fds stay the
// caller's: keep them open until Unregister (the epoll emulation uses
// them, and io_uring keeps its own reference only while registered).
type FixedFiles struct {
	l            *Loop
	n            int     // immutable
	sqeLo, sqeHi uintptr // as in FixedBuffers

	fds    []int32     // immutable: a new table is a new registration
	kernel bool        // immutable
	active atomic.Bool // as in FixedBuffers
	unreg  sync.Mutex
}

// RegisterFiles registers fds as the loop's file table; index i names
// fds[i], and -1 leaves slot i empty. A loop has one table at a time (a
// second fails with EBUSY). An fd that is not open fails with EBADF on
// every driver. From the same goroutines as RegisterBuffers.
func (l *Loop) RegisterFiles(fds []int) (*FixedFiles, error) {
	if len(fds) == 0 || len(fds) > maxFixedFileSlots {
		return nil, fmt.Errorf("proactor: RegisterFiles: want 1..%d fds, got %d: %w", maxFixedFileSlots, len(fds), unix.EINVAL)
	}
	tab := make([]int32, len(fds))
	for i, fd := range fds {
		if fd < -1 || fd > 1<<31-1 {
			return nil, fmt.Errorf("proactor: RegisterFiles: fds[%d] = %d: %w", i, fd, unix.EBADF)
		}
		if fd >= 0 {
			// The kernel checks this too, but the emulation would not:
			// check here so that both drivers refuse the same tables.
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
				return nil, fmt.Errorf("proactor: RegisterFiles: fds[%d] = %d: %w", i, fd, err)
			}
		}
		tab[i] = int32(fd)
	}
	f := &FixedFiles{l: l, n: len(fds), fds: tab}
	err := l.inLoop(func() error {
		if l.fixed.files != nil {
			return fmt.Errorf("proactor: RegisterFiles: loop %d already has a file table: %w", l.id, unix.EBUSY)
		}
		switch err := l.drv.registerFiles(tab); {
		case err == nil:
			f.kernel = true
			f.sqeLo, f.sqeHi = l.sqeRange()
		case !errors.Is(err, errNoRegister):
			return fmt.Errorf("proactor: RegisterFiles: %w", err)
		}
		f.active.Store(true)
		l.fixed.files = f
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Len returns the number of slots.
func (f *FixedFiles) Len() int { return f.n }

// Registered reports whether the kernel holds the table (io_uring) rather
// than the loop emulating it (epoll). Immutable after RegisterFiles.
func (f *FixedFiles) Registered() bool { return f.kernel }

// Unregister drops the table. It fails with EBUSY while an op that uses
// it is in flight, on any loop; ops that start after it complete with
// -EBADF. After the loop's Close it returns nil. Not from a loop
// goroutine (EDEADLK), as FixedBuffers.Unregister.
func (f *FixedFiles) Unregister() error {
	if CurrentLoop() != nil {
		return errFromLoop
	}
	f.unreg.Lock()
	defer f.unreg.Unlock()
	l := f.l
	if ok, err := l.quiesceFixed(nil, f, &f.active); !ok {
		return err
	}
	err := l.inLoop(func() error {
		l.fixed.files = nil
		if f.kernel {
			return l.drv.unregisterFiles()
		}
		return nil
	})
	if errors.Is(err, ErrClosed) {
		return nil
	}
	return err
}

// errInactive: the registration was unregistered already.
var errInactive = errors.New("proactor: not registered")

// quiesceFixed clears active, the flag ops check when they start, once no
// op in flight on any loop uses b or f; otherwise it leaves it set and
// fails with EBUSY. The owner's own ops are checked in the same task that
// clears the flag, so there the answer is exact. Other loops are asked
// afterwards, each on its goroutine: an op that started there before the
// flag was cleared is in that loop's slab when asked, one that starts
// after sees the flag. If one is found the flag is set again, so an op
// that started meanwhile failed although the registration stays: the
// price of not locking every op's submission. ok says the caller may now
// release the registration: false with a nil error if it is released
// already (an earlier Unregister, or the loop's Close).
func (l *Loop) quiesceFixed(b *FixedBuffers, f *FixedFiles, active *atomic.Bool) (ok bool, err error) {
	busy := func(n int) error {
		return fmt.Errorf("proactor: unregister: %d ops in flight use the registration: %w", n, unix.EBUSY)
	}
	err = l.inLoop(func() error {
		if !active.Load() {
			return errInactive
		}
		if n := l.fixedInFlight(b, f); n > 0 {
			return busy(n)
		}
		active.Store(false)
		return nil
	})
	switch {
	case errors.Is(err, errInactive), errors.Is(err, ErrClosed):
		return false, nil
	case err != nil:
		return false, err
	}
	if n := othersInFlight(l, b, f); n > 0 {
		active.Store(true)
		return false, busy(n)
	}
	return true, nil
}

// othersInFlight counts the ops in flight that use b or f on every running
// loop but l, of any Proactor: nothing stops an op on another Proactor's
// loop from naming them (it then runs the plain op on the same memory).
func othersInFlight(l *Loop, b *FixedBuffers, f *FixedFiles) int {
	var others []*Loop
	loopsByG.Range(func(_, v any) bool {
		if o := v.(*Loop); o != l {
			others = append(others, o)
		}
		return true
	})
	n := 0
	for _, o := range others {
		if o.inLoop(func() error { n += o.fixedInFlight(b, f); return nil }) != nil {
			// Closing: it refuses tasks but may still have ops in
			// flight until it exits, with none.
			<-o.done
		}
	}
	return n
}

// errFromLoop is an Unregister on a loop goroutine: it waits for every
// running loop, and one that waited back would never answer.
var errFromLoop = fmt.Errorf("proactor: Unregister from a loop goroutine: %w", unix.EDEADLK)

// errOtherLoop is a registration on l from another loop's goroutine,
// which would wait for l while l might be waiting for it.
var errOtherLoop = fmt.Errorf("proactor: registration from another loop's goroutine: %w", unix.EDEADLK)

// inLoop runs fn on the loop goroutine and returns its error, or
// ErrClosed if the loop closed before running it. Called on l's own
// goroutine (a registration from one of its handlers) it runs fn there
// and then, instead of waiting for itself; called on another loop's it
// refuses, since that loop may be waiting for this one in turn.
func (l *Loop) inLoop(fn func() error) error {
	switch cur := CurrentLoop(); {
	case cur == l:
		return fn()
	case cur != nil:
		return errOtherLoop
	}
	ch := make(chan error, 1)
	if err := l.Post(func() { ch <- fn() }); err != nil {
		return err
	}
	select {
	case err := <-ch:
		return err
	case <-l.done:
		// A Post queued as Close began does not run.
		select {
		case err := <-ch:
			return err
		default:
			return ErrClosed
		}
	}
}

// startReaper makes sure the loop's fixed buffers are unmapped once the
// loop has exited. That must wait until the driver has closed the ring:
// until then the kernel may still hold the buffers. It waits for the
// other loops too, which may run ops on the buffers (see fixedIO). Loop
// goroutine only.
func (l *Loop) startReaper() {
	if l.fixed.reaper {
		return
	}
	l.fixed.reaper = true
	go func() {
		// done is closed after the driver's close: the ring is gone.
		for _, o := range l.p.loops {
			<-o.done
		}
		b := l.fixed.bufs
		if b == nil {
			return
		}
		// No op can start on the buffers now (their loop has exited),
		// but one on another Proactor's loop may still be in flight.
		for othersInFlight(l, b, nil) > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		b.release()
	}()
}

// sqeRange is the loop's ring's SQE range (zeros on epoll).
func (l *Loop) sqeRange() (lo, hi uintptr) {
	if d, ok := l.drv.(*uringDriver); ok {
		return d.sqeRange()
	}
	return 0, 0
}

// exited reports whether l's goroutine has exited; then its buffers are
// unmapped and its ring is gone.
func (l *Loop) exited() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// fixedUser is an op that refers to registered buffers or files.
type fixedUser interface {
	usesFixed(b *FixedBuffers, f *FixedFiles) bool
}

// fixedInFlight counts the ops in flight that use b or f.
func (l *Loop) fixedInFlight(b *FixedBuffers, f *FixedFiles) int {
	n := 0
	l.slab.each(func(_ uint64, sl *slot) {
		if u, ok := sl.op.(fixedUser); ok && u.usesFixed(b, f) {
			n++
		}
	})
	return n
}

// fixedIO is what an op that uses registrations resolved at submission.
// Resolution happens in Opcode, which the Loop calls on the loop goroutine
// before it hands the op to the driver (and the driver again, on the same
// goroutine): the registrations are loop-goroutine state, and a worker
// running Perform on the epoll path must see the fd and memory as they
// were at submission, not as a later Unregister leaves them.
//
// Registrations belong to one loop, but nothing stops an op that names
// them from being submitted to another loop. On epoll that just works
// (the op carries the fd and the memory). On io_uring the other ring would
// read its own table at those indexes, so Prep checks that its SQE is the
// owning ring's and otherwise submits the plain op on the same fd and
// memory: same result, without the registration's gain. What an op reads
// of a registration is immutable or atomic, so any loop may resolve it,
// and Unregister looks for ops in flight on every loop (quiesceFixed).
type fixedIO struct {
	fd        int32  // the real fd: Perform's, and the SQE's without fixedFile
	fileIdx   int32  // the SQE's fd with fixedFile
	fixedFile bool   // the kernel holds the file table: IOSQE_FIXED_FILE
	buf       []byte // the memory to read into or write from
	bufIdx    uint16
	fixedBuf  bool       // the kernel holds the buffers: READ/WRITE_FIXED
	errno     unix.Errno // nonzero: the op fails with it, without a syscall

	fileLo, fileHi uintptr // the file table's ring's SQEs
	bufLo, bufHi   uintptr // the buffers' ring's SQEs
	vectored       bool    // Prep fell back to READV/WRITEV on iov
	iov            [1]unix.Iovec
}

func (x *fixedIO) resolveFile(files *FixedFiles, fd int) {
	if files == nil {
		x.fd = int32(fd)
		return
	}
	if files.l.exited() || !files.active.Load() || fd < 0 || fd >= len(files.fds) || files.fds[fd] < 0 {
		x.errno = unix.EBADF
		return
	}
	x.fd = files.fds[fd]
	if files.kernel {
		x.fileIdx, x.fixedFile = int32(fd), true
		x.fileLo, x.fileHi = files.sqeLo, files.sqeHi
	}
}

func (x *fixedIO) resolveBuf(b *FixedBuffers, i, n int) {
	if b == nil || b.l.exited() || !b.active.Load() || i < 0 || i >= b.count || n < 0 || n > b.size {
		x.errno = unix.EINVAL
		return
	}
	if n == 0 {
		n = b.size
	}
	x.buf = b.mem[i*b.size : i*b.size+n]
	x.bufIdx, x.fixedBuf = uint16(i), b.kernel
	x.bufLo, x.bufHi = b.sqeLo, b.sqeHi
}

// opcode picks how the op runs: fixed, plain, or (on error) as a syscall
// that only reports errno, through the epoll path on either driver.
func (x *fixedIO) opcode(fixed, plain ring.Op) ring.Op {
	switch {
	case x.errno != 0:
		x.fd = -1
		return OpSyscall
	case x.fixedBuf:
		return fixed
	}
	return plain
}

// readiness is the op's Readiness: ev for a pollable fd, none for a file
// (the worker pool runs it) or an op that fails without a syscall.
func (x *fixedIO) readiness(p bool, ev uint32) uint32 {
	return pollable(p && x.errno == 0, ev)
}

func (x *fixedIO) prep(sqe *ring.SQE, read bool, off int64) {
	if x.fixedFile && !sqe.InRange(x.fileLo, x.fileHi) {
		x.fixedFile = false // another loop's table: use the fd
	}
	if x.fixedBuf && !sqe.InRange(x.bufLo, x.bufHi) {
		// Another loop's buffers. READV and WRITEV are as old as the
		// fixed ops (5.1), so every ring that took this op has them.
		x.fixedBuf, x.vectored = false, true
		x.iov[0] = unix.Iovec{Base: unsafe.SliceData(x.buf)}
		x.iov[0].SetLen(len(x.buf))
	}
	fd := x.fd
	if x.fixedFile {
		fd = x.fileIdx
	}
	switch {
	case read && x.vectored:
		ring.PrepReadv(sqe, fd, x.iov[:], offset(off))
	case x.vectored:
		ring.PrepWritev(sqe, fd, x.iov[:], offset(off))
	case read && x.fixedBuf:
		ring.PrepReadFixed(sqe, fd, x.buf, offset(off), x.bufIdx)
	case read:
		ring.PrepRead(sqe, fd, x.buf, offset(off))
	case x.fixedBuf:
		ring.PrepWriteFixed(sqe, fd, x.buf, offset(off), x.bufIdx)
	default:
		ring.PrepWrite(sqe, fd, x.buf, offset(off))
	}
	if x.fixedFile {
		sqe.Flags |= ring.SQEFixedFile
	}
}

func (x *fixedIO) perform(read bool, off int64) int32 {
	if x.errno != 0 {
		return -int32(x.errno)
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(x.buf)))
	switch {
	case read && off < 0:
		return sysRes(unix.Syscall(unix.SYS_READ, uintptr(x.fd), p, uintptr(len(x.buf))))
	case read:
		return sysRes(unix.Syscall6(unix.SYS_PREAD64, uintptr(x.fd), p, uintptr(len(x.buf)), uintptr(off), 0, 0))
	case off < 0:
		return sysRes(unix.Syscall(unix.SYS_WRITE, uintptr(x.fd), p, uintptr(len(x.buf))))
	}
	return sysRes(unix.Syscall6(unix.SYS_PWRITE64, uintptr(x.fd), p, uintptr(len(x.buf)), uintptr(off), 0, 0))
}

// ReadFixed reads N bytes at Off into registered buffer Buf of Bufs
// (IORING_OP_READ_FIXED, 5.1); N == 0 reads a whole buffer, Off < 0 reads
// at the file position. Fd is an fd, or with Files an index into that
// loop's file table. Bufs and Files must be the submitting loop's own.
// res is the byte count, 0 at end of file; -EINVAL for a bad buffer,
// -EBADF for a bad file index. As with Read, on epoll the op runs on the
// worker pool unless Pollable is set: set it for a non-blocking pipe,
// socket or character device, so that it waits for readiness (a read
// there could hold a worker for good, beyond a deadline's or Close's
// reach). The fd must be non-blocking, as for Read: epoll tries the op on
// the loop goroutine first.
type ReadFixed struct {
	Fd       int
	Files    *FixedFiles
	Bufs     *FixedBuffers
	Buf      int
	Off      int64
	N        int
	Pollable bool
	x        fixedIO
}

func (o *ReadFixed) Opcode() ring.Op { return o.resolve(ring.OpReadFixed, ring.OpRead) }

// resolve looks up the file and the buffer, for ReadFixed and WriteFixed,
// and returns the opcode that serves them (fixed, or plain without a ring
// registration).
func (o *ReadFixed) resolve(fixed, plain ring.Op) ring.Op {
	o.x = fixedIO{}
	o.x.resolveFile(o.Files, o.Fd)
	o.x.resolveBuf(o.Bufs, o.Buf, o.N)
	return o.x.opcode(fixed, plain)
}
func (o *ReadFixed) PollFd() int              { return int(o.x.fd) }
func (o *ReadFixed) Readiness() uint32        { return o.x.readiness(o.Pollable, unix.EPOLLIN) }
func (o *ReadFixed) Prep(sqe *ring.SQE)       { o.x.prep(sqe, true, o.Off) }
func (o *ReadFixed) Perform() (int32, uint32) { return o.x.perform(true, o.Off), 0 }
func (o *ReadFixed) usesFixed(b *FixedBuffers, f *FixedFiles) bool {
	return (b != nil && o.Bufs == b) || (f != nil && o.Files == f)
}

// WriteFixed writes N bytes (0: the whole buffer) of registered buffer Buf
// of Bufs at Off (IORING_OP_WRITE_FIXED, 5.1); its fields and everything
// else are as ReadFixed's. res is the byte count, which may be short.
type WriteFixed ReadFixed

func (o *WriteFixed) Opcode() ring.Op {
	return (*ReadFixed)(o).resolve(ring.OpWriteFixed, ring.OpWrite)
}
func (o *WriteFixed) PollFd() int              { return int(o.x.fd) }
func (o *WriteFixed) Readiness() uint32        { return o.x.readiness(o.Pollable, unix.EPOLLOUT) }
func (o *WriteFixed) Prep(sqe *ring.SQE)       { o.x.prep(sqe, false, o.Off) }
func (o *WriteFixed) Perform() (int32, uint32) { return o.x.perform(false, o.Off), 0 }
func (o *WriteFixed) usesFixed(b *FixedBuffers, f *FixedFiles) bool {
	return (*ReadFixed)(o).usesFixed(b, f)
}

// ReadIndexed is Read on a registered file: Index names a slot of Files
// (IOSQE_FIXED_FILE on IORING_OP_READ, 5.6), Buf is ordinary memory. res as
// Read's; -EBADF for a bad index. Pollable as ReadFixed's.
type ReadIndexed struct {
	Files    *FixedFiles
	Index    int
	Buf      []byte
	Off      int64
	Pollable bool
	x        fixedIO
}

func (o *ReadIndexed) Opcode() ring.Op { return o.resolve(ring.OpRead) }

// resolve looks up the file, for ReadIndexed and WriteIndexed, and returns
// code, or the syscall that reports a bad index.
func (o *ReadIndexed) resolve(code ring.Op) ring.Op {
	o.x = fixedIO{buf: o.Buf}
	o.x.resolveFile(o.Files, o.Index)
	if o.Files == nil {
		o.x.errno = unix.EBADF
	}
	return o.x.opcode(code, code)
}
func (o *ReadIndexed) PollFd() int              { return int(o.x.fd) }
func (o *ReadIndexed) Readiness() uint32        { return o.x.readiness(o.Pollable, unix.EPOLLIN) }
func (o *ReadIndexed) Prep(sqe *ring.SQE)       { o.x.prep(sqe, true, o.Off) }
func (o *ReadIndexed) Perform() (int32, uint32) { return o.x.perform(true, o.Off), 0 }
func (o *ReadIndexed) usesFixed(_ *FixedBuffers, f *FixedFiles) bool {
	return f != nil && o.Files == f
}

// WriteIndexed is Write on a registered file (IOSQE_FIXED_FILE on
// IORING_OP_WRITE, 5.6); its fields and everything else are as
// ReadIndexed's.
type WriteIndexed ReadIndexed

func (o *WriteIndexed) Opcode() ring.Op          { return (*ReadIndexed)(o).resolve(ring.OpWrite) }
func (o *WriteIndexed) PollFd() int              { return int(o.x.fd) }
func (o *WriteIndexed) Readiness() uint32        { return o.x.readiness(o.Pollable, unix.EPOLLOUT) }
func (o *WriteIndexed) Prep(sqe *ring.SQE)       { o.x.prep(sqe, false, o.Off) }
func (o *WriteIndexed) Perform() (int32, uint32) { return o.x.perform(false, o.Off), 0 }
func (o *WriteIndexed) usesFixed(b *FixedBuffers, f *FixedFiles) bool {
	return (*ReadIndexed)(o).usesFixed(b, f)
}
