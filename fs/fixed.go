package fs

import (
	"context"
	"io"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// ReadAtFixed reads up to n bytes (n == 0: the whole buffer) at off into
// buffer i of bufs, registered with proactor.Loop.RegisterBuffers on
// f.Loop(): the kernel reuses its pinned mapping of the buffer instead of
// mapping the pages for every read (IORING_OP_READ_FIXED), which is what a
// storage engine's block cache wants. It makes one read and returns what
// it got, which may be short; 0 bytes at the end of the file is io.EOF.
// On the epoll driver, and for buffers registered on another loop, it is
// an ordinary pread into the same memory. On a file opened with
// O_DIRECT, the buffer slice, off and n must be aligned (Alignment).
// ctx may cancel the read or give it a deadline.
func (f *File) ReadAtFixed(ctx context.Context, bufs *proactor.FixedBuffers, i int, off int64, n int) (int, error) {
	if f == nil {
		return 0, errNilFile
	}
	return f.fixedIO(ctx, "read", bufs, i, off, n)
}

// WriteAtFixed writes n bytes (0: the whole buffer) of buffer i of bufs at
// off (IORING_OP_WRITE_FIXED), as ReadAtFixed reads; the count may be short.
func (f *File) WriteAtFixed(ctx context.Context, bufs *proactor.FixedBuffers, i int, off int64, n int) (int, error) {
	if f == nil {
		return 0, errNilFile
	}
	if f.append {
		return 0, f.pathErr("writeat", errAppendWriteAt)
	}
	return f.fixedIO(ctx, "write", bufs, i, off, n)
}

func (f *File) fixedIO(ctx context.Context, name string, bufs *proactor.FixedBuffers, i int, off int64, n int) (int, error) {
	if off < 0 {
		return 0, f.pathErr(name+"at", errNegativeOffset)
	}
	if bufs == nil || i < 0 || i >= bufs.Len() || n < 0 || n > bufs.Size() {
		return 0, f.pathErr(name, unix.EINVAL)
	}
	if !f.acquire() {
		return 0, f.pathErr(name, ErrClosed)
	}
	defer f.release()
	if f.stream {
		return 0, f.pathErr(name, unix.ESPIPE)
	}
	if n == 0 {
		n = bufs.Size()
	}
	if f.direct {
		b := bufs.Buf(i)
		if b == nil { // unregistered meanwhile
			return 0, f.pathErr(name, unix.EINVAL)
		}
		if err := f.checkAlign(b[:n], off); err != nil {
			return 0, f.pathErr(name, err)
		}
	}
	var op proactor.Op
	if name == "read" {
		op = &proactor.ReadFixed{Fd: f.fd, Bufs: bufs, Buf: i, Off: off, N: n}
	} else {
		op = &proactor.WriteFixed{Fd: f.fd, Bufs: bufs, Buf: i, Off: off, N: n}
	}
	res, err := f.do(ctx, op)
	if err != nil {
		return 0, f.pathErr(name, err)
	}
	if res == 0 && name == "read" {
		return 0, io.EOF
	}
	return int(res), nil
}
