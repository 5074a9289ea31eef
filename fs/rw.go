package fs

import (
	"context"
	"io"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// Op structs are reused across calls so the steady-state ReadAt and WriteAt
// allocate nothing; one goes back to its pool only after the op's final
// completion, when the kernel no longer holds the buffer it names.
var (
	readPool   = sync.Pool{New: func() any { return new(proactor.Read) }}
	writePool  = sync.Pool{New: func() any { return new(proactor.Write) }}
	readvPool  = sync.Pool{New: func() any { return new(proactor.Readv) }}
	writevPool = sync.Pool{New: func() any { return new(proactor.Writev) }}
)

// ReadAt reads len(p) bytes at off, as io.ReaderAt: it loops over short
// reads and returns io.EOF when the file ends first. A read the page cache
// can serve at once is done inline (preadv2 with RWF_NOWAIT), without a
// trip through the ring; the rest goes through the proactor.
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	return f.readAt(noCtx, p, off)
}

// ReadAtContext is ReadAt that gives up when ctx ends, cancelling the
// read in flight; it returns what was read before and ctx's error.
func (f *File) ReadAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	return f.readAt(ctx, p, off)
}

func (f *File) readAt(ctx context.Context, p []byte, off int64) (n int, err error) {
	if f == nil {
		return 0, errNilFile
	}
	if off < 0 {
		return 0, f.pathErr("readat", errNegativeOffset)
	}
	if !f.acquire() {
		return 0, f.pathErr("read", ErrClosed)
	}
	defer f.release()
	if f.stream {
		return 0, f.pathErr("read", unix.ESPIPE) // as pread(2) on a pipe
	}
	if f.direct {
		if err := f.checkAlign(p, off); err != nil {
			return 0, f.pathErr("read", err)
		}
	}
	inline := true
	for len(p) > 0 {
		m, err := f.pread(ctx, p, off, inline)
		if err != nil {
			return n, f.pathErr("read", err)
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
		p = p[m:]
		off += int64(m)
		// A short inline read means the next page is not cached: go
		// straight to the ring for the rest.
		inline = false
		if f.direct && len(p) > 0 && f.checkAlign(p, off) != nil {
			// O_DIRECT reads end short only at the end of file, and
			// the rest could not be asked for anyway.
			return n, io.EOF
		}
	}
	return n, nil
}

// pread makes one read attempt: inline first if allowed, else (or on
// EAGAIN) through the proactor. It returns 0 at end of file.
func (f *File) pread(ctx context.Context, p []byte, off int64, inline bool) (int, error) {
	if inline && !f.noInline.Load() {
		if ctx != nil && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		var flags uintptr = unix.RWF_NOWAIT
		if f.memory {
			flags = 0
		}
		m, e := preadv2Nowait(f.fd, p, off, flags)
		switch e {
		case 0:
			return m, nil
		case unix.EAGAIN, unix.EINTR: // the op tries again (see interrupted)
		case unix.EOPNOTSUPP, unix.ENOSYS, unix.EINVAL:
			// No RWF_NOWAIT for this file (some filesystems, kernels
			// before 4.14) or no preadv2 at all (before 4.6): stop
			// trying, for this file only. EINVAL could also be the
			// read's own, which the ring path reports again.
			f.noInline.Store(true)
		default:
			return 0, e
		}
	}
	op := readPool.Get().(*proactor.Read)
	op.Fd, op.Buf, op.Off, op.Pollable = f.fd, p, off, f.stream
	if f.stream {
		op.Off = -1 // no offsets on a stream
	}
	res, err := f.do(ctx, op)
	op.Buf = nil
	readPool.Put(op)
	if err != nil {
		return 0, err
	}
	return int(res), nil
}

// WriteAt writes len(p) bytes at off, as io.WriterAt: it loops over short
// writes. It is refused on a file opened with O_APPEND, where the kernel
// would ignore off.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	return f.writeAt(noCtx, p, off)
}

// WriteAtContext is WriteAt that gives up when ctx ends.
func (f *File) WriteAtContext(ctx context.Context, p []byte, off int64) (int, error) {
	return f.writeAt(ctx, p, off)
}

func (f *File) writeAt(ctx context.Context, p []byte, off int64) (int, error) {
	if f == nil {
		return 0, errNilFile
	}
	if f.append {
		return 0, f.pathErr("writeat", errAppendWriteAt)
	}
	if off < 0 {
		return 0, f.pathErr("writeat", errNegativeOffset)
	}
	if !f.acquire() {
		return 0, f.pathErr("write", ErrClosed)
	}
	defer f.release()
	if f.stream {
		return 0, f.pathErr("write", unix.ESPIPE)
	}
	return f.pwriteAll(ctx, p, off)
}

// pwriteAll writes all of p at off (off < 0: at the kernel's position, for
// append mode). The caller holds a reference.
func (f *File) pwriteAll(ctx context.Context, p []byte, off int64) (n int, err error) {
	if f.direct {
		if err := f.checkAlign(p, off); err != nil {
			return 0, f.pathErr("write", err)
		}
	}
	for len(p) > 0 {
		op := writePool.Get().(*proactor.Write)
		op.Fd, op.Buf, op.Off, op.Pollable = f.fd, p, off, f.stream
		if f.stream {
			op.Off = -1
		}
		res, err := f.do(ctx, op)
		op.Buf = nil
		writePool.Put(op)
		if err != nil {
			return n, f.pathErr("write", err)
		}
		if res == 0 {
			return n, f.pathErr("write", io.ErrShortWrite)
		}
		n += int(res)
		p = p[res:]
		if off >= 0 {
			off += int64(res)
		}
		if f.direct && len(p) > 0 && f.checkAlign(p, off) != nil {
			return n, f.pathErr("write", io.ErrShortWrite)
		}
	}
	return n, nil
}

// Read reads up to len(p) bytes at the file position and advances it, as
// io.Reader: one read, io.EOF only with 0 bytes at the end of file.
func (f *File) Read(p []byte) (int, error) {
	return f.read(noCtx, p)
}

// ReadContext is Read that gives up when ctx ends.
func (f *File) ReadContext(ctx context.Context, p []byte) (int, error) {
	return f.read(ctx, p)
}

func (f *File) read(ctx context.Context, p []byte) (int, error) {
	if f == nil {
		return 0, errNilFile
	}
	if !f.acquire() {
		return 0, f.pathErr("read", ErrClosed)
	}
	defer f.release()
	if len(p) == 0 {
		return 0, nil
	}
	f.posMu.Lock()
	defer f.posMu.Unlock()
	if f.direct {
		if err := f.checkAlign(p, f.pos); err != nil {
			return 0, f.pathErr("read", err)
		}
	}
	n, err := f.pread(ctx, p, f.pos, true)
	if err != nil {
		return 0, f.pathErr("read", err)
	}
	if n == 0 {
		return 0, io.EOF
	}
	f.pos += int64(n)
	return n, nil
}

// Write writes p at the file position (at the end in O_APPEND mode) and
// advances it; it loops over short writes, as io.Writer.
func (f *File) Write(p []byte) (int, error) {
	return f.write(noCtx, p)
}

// WriteContext is Write that gives up when ctx ends.
func (f *File) WriteContext(ctx context.Context, p []byte) (int, error) {
	return f.write(ctx, p)
}

func (f *File) write(ctx context.Context, p []byte) (int, error) {
	if f == nil {
		return 0, errNilFile
	}
	if !f.acquire() {
		return 0, f.pathErr("write", ErrClosed)
	}
	defer f.release()
	f.posMu.Lock()
	defer f.posMu.Unlock()
	if !f.append {
		n, err := f.pwriteAll(ctx, p, f.pos)
		f.pos += int64(n)
		return n, err
	}
	// The kernel appends whatever offset it is given; offset -1 asks it
	// to use (and advance) its own position, which then is ours.
	n, err := f.pwriteAll(ctx, p, -1)
	if pos, serr := unix.Seek(f.fd, 0, io.SeekCurrent); serr == nil {
		f.pos = pos
	}
	return n, err
}

// Seek sets the position for the next Read or Write, as io.Seeker.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	if f == nil {
		return 0, errNilFile
	}
	if !f.acquire() {
		return 0, f.pathErr("seek", ErrClosed)
	}
	defer f.release()
	f.posMu.Lock()
	defer f.posMu.Unlock()
	if f.stream {
		// As os.File on a pipe, socket or terminal.
		return 0, f.pathErr("seek", unix.ESPIPE)
	}
	var base int64
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		base = f.pos
	case io.SeekEnd:
		var st unix.Stat_t
		if err := unix.Fstat(f.fd, &st); err != nil {
			return 0, f.pathErr("seek", err)
		}
		base = st.Size
	case unix.SEEK_DATA, unix.SEEK_HOLE:
		// Sparse files: only the kernel knows where data and holes are.
		pos, err := unix.Seek(f.fd, offset, whence)
		if err != nil {
			return 0, f.pathErr("seek", err)
		}
		f.pos = pos
		return pos, nil
	default:
		return 0, f.pathErr("seek", unix.EINVAL)
	}
	pos := base + offset
	if pos < 0 || (offset > 0 && pos < base) {
		return 0, f.pathErr("seek", unix.EINVAL)
	}
	f.pos = pos
	if f.append {
		// Keep the kernel's position, which append-mode Write reads
		// back, in step.
		_, _ = unix.Seek(f.fd, pos, io.SeekStart)
	}
	return pos, nil
}

// ReadV reads into bufs in order at off (preadv): like ReadAt, it fills
// every buffer or returns io.EOF, and returns the total read.
func (f *File) ReadV(bufs [][]byte, off int64) (int, error) {
	return f.vec(noCtx, bufs, off, false)
}

// ReadVContext is ReadV that gives up when ctx ends.
func (f *File) ReadVContext(ctx context.Context, bufs [][]byte, off int64) (int, error) {
	return f.vec(ctx, bufs, off, false)
}

// WriteV writes bufs in order at off (pwritev), looping over short
// writes, and returns the total written.
func (f *File) WriteV(bufs [][]byte, off int64) (int, error) {
	return f.vec(noCtx, bufs, off, true)
}

// WriteVContext is WriteV that gives up when ctx ends.
func (f *File) WriteVContext(ctx context.Context, bufs [][]byte, off int64) (int, error) {
	return f.vec(ctx, bufs, off, true)
}

func (f *File) vec(ctx context.Context, bufs [][]byte, off int64, write bool) (n int, err error) {
	if f == nil {
		return 0, errNilFile
	}
	name := "readv"
	if write {
		name = "writev"
		if f.append {
			return 0, f.pathErr(name, errAppendWriteAt)
		}
	}
	if off < 0 {
		return 0, f.pathErr(name, errNegativeOffset)
	}
	if !f.acquire() {
		return 0, f.pathErr(name, ErrClosed)
	}
	defer f.release()
	iovs := make([]unix.Iovec, 0, len(bufs))
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if f.direct {
			if err := f.checkAlign(b, off); err != nil {
				return 0, f.pathErr(name, err)
			}
		}
		iovs = append(iovs, unix.Iovec{Base: unsafe.SliceData(b), Len: uint64(len(b))})
	}
	for len(iovs) > 0 {
		// At most IOV_MAX iovecs per call, or the kernel says EINVAL; the
		// loop takes the rest as it would a short transfer.
		chunk := iovs[:min(len(iovs), iovMax)]
		var res int32
		if write {
			op := writevPool.Get().(*proactor.Writev)
			op.Fd, op.Iovs, op.Off = f.fd, chunk, off
			res, err = f.do(ctx, op)
			op.Iovs = nil
			writevPool.Put(op)
		} else {
			op := readvPool.Get().(*proactor.Readv)
			op.Fd, op.Iovs, op.Off = f.fd, chunk, off
			res, err = f.do(ctx, op)
			op.Iovs = nil
			readvPool.Put(op)
		}
		// The iovecs point into bufs, which the caller keeps alive for
		// the call; this says so to the compiler as well.
		runtime.KeepAlive(bufs)
		if err != nil {
			return n, f.pathErr(name, err)
		}
		if res == 0 {
			if write {
				return n, f.pathErr(name, io.ErrShortWrite)
			}
			return n, io.EOF
		}
		n += int(res)
		off += int64(res)
		iovs = advance(iovs, int(res))
		if f.direct && len(iovs) > 0 && (off%int64(f.align.Offset) != 0 || iovs[0].Len%uint64(f.align.Offset) != 0) {
			if write {
				return n, f.pathErr(name, io.ErrShortWrite)
			}
			return n, io.EOF
		}
	}
	return n, nil
}

// iovMax is the kernel's IOV_MAX (UIO_MAXIOV).
const iovMax = 1024

// advance drops the first n bytes from iovs.
func advance(iovs []unix.Iovec, n int) []unix.Iovec {
	for len(iovs) > 0 && n > 0 {
		l := int(iovs[0].Len)
		if n < l {
			iovs[0].Base = (*byte)(unsafe.Add(unsafe.Pointer(iovs[0].Base), n))
			iovs[0].Len -= uint64(n)
			return iovs
		}
		n -= l
		iovs = iovs[1:]
	}
	return iovs
}
