package fs

import (
	"context"
	"math"
	"path/filepath"
	"time"

	iofs "io/fs"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// Sync flushes the file's data and metadata to storage (fsync).
func (f *File) Sync() error {
	if f == nil {
		return errNilFile
	}
	return f.simple(noCtx, "sync", &proactor.Fsync{Fd: f.fd})
}

// SyncContext is Sync that stops waiting when ctx ends (an fsync already
// running in the kernel still finishes there).
func (f *File) SyncContext(ctx context.Context) error {
	if f == nil {
		return errNilFile
	}
	return f.simple(ctx, "sync", &proactor.Fsync{Fd: f.fd})
}

// Datasync flushes the file's data, and only the metadata needed to read
// it back (fdatasync).
func (f *File) Datasync() error {
	if f == nil {
		return errNilFile
	}
	return f.simple(noCtx, "datasync", &proactor.Fsync{Fd: f.fd, Datasync: true})
}

// DatasyncContext is Datasync with a context.
func (f *File) DatasyncContext(ctx context.Context) error {
	if f == nil {
		return errNilFile
	}
	return f.simple(ctx, "datasync", &proactor.Fsync{Fd: f.fd, Datasync: true})
}

// Allocate reserves space for n bytes at off (fallocate mode 0): the file
// grows if off+n is past its end, and later writes there will not fail
// for lack of space.
func (f *File) Allocate(off, n int64) error {
	if f == nil {
		return errNilFile
	}
	if off < 0 || n <= 0 {
		return f.pathErr("allocate", unix.EINVAL)
	}
	return f.simple(noCtx, "allocate", &proactor.Fallocate{Fd: f.fd, Off: off, Len: n})
}

// Truncate changes the file's size (IORING_OP_FTRUNCATE on 6.9+,
// ftruncate(2) on a worker otherwise).
func (f *File) Truncate(size int64) error {
	if f == nil {
		return errNilFile
	}
	if size < 0 {
		return f.pathErr("truncate", unix.EINVAL)
	}
	return f.simple(noCtx, "truncate", &ftruncateOp{fd: f.fd, size: size})
}

// Advise declares how the range [off, off+n) will be accessed
// (posix_fadvise; n == 0 means to the end of the file), with the
// unix.FADV_* advice values.
func (f *File) Advise(off, n int64, advice int) error {
	if f == nil {
		return errNilFile
	}
	if off < 0 || n < 0 {
		return f.pathErr("fadvise", unix.EINVAL)
	}
	if n > math.MaxUint32 {
		// The SQE holds 32 bits of length: the syscall takes the rest.
		if !f.acquire() {
			return f.pathErr("fadvise", ErrClosed)
		}
		defer f.release()
		if err := unix.Fadvise(f.fd, off, n, advice); err != nil {
			return f.pathErr("fadvise", err)
		}
		return nil
	}
	return f.simple(noCtx, "fadvise", &fadviseOp{fd: f.fd, off: off, n: uint32(n), advice: advice})
}

func (f *File) simple(ctx context.Context, name string, op proactor.Op) error {
	if !f.acquire() {
		return f.pathErr(name, ErrClosed)
	}
	defer f.release()
	if _, err := f.do(ctx, op); err != nil {
		return f.pathErr(name, err)
	}
	return nil
}

// Stat returns the file's metadata, from statx through the proactor
// (IORING_OP_STATX, 5.6). Its Sys() is the *unix.Statx_t.
func (f *File) Stat() (iofs.FileInfo, error) {
	if f == nil {
		return nil, errNilFile
	}
	st, err := f.Statx(unix.STATX_BASIC_STATS | unix.STATX_BTIME)
	if err != nil {
		return nil, err
	}
	return &FileInfo{name: filepath.Base(f.name), st: *st}, nil
}

// Statx returns the raw statx result for mask (unix.STATX_* bits); the
// kernel may fill more or fewer fields than asked for (see Mask).
func (f *File) Statx(mask uint32) (*unix.Statx_t, error) {
	if f == nil {
		return nil, errNilFile
	}
	op := &proactor.Statx{Dir: f.fd, Flags: unix.AT_EMPTY_PATH, Mask: mask}
	if err := f.simple(noCtx, "stat", op); err != nil {
		return nil, err
	}
	return &op.Stat, nil
}

// FileInfo is the io/fs.FileInfo fs returns, built from statx.
type FileInfo struct {
	name string
	st   unix.Statx_t
}

func (fi *FileInfo) Name() string       { return fi.name }
func (fi *FileInfo) Size() int64        { return int64(fi.st.Size) }
func (fi *FileInfo) IsDir() bool        { return fi.Mode().IsDir() }
func (fi *FileInfo) Sys() any           { return &fi.st }
func (fi *FileInfo) ModTime() time.Time { return statxTime(fi.st.Mtime) }

// Mode converts the statx mode to a FileMode as package os does.
func (fi *FileInfo) Mode() FileMode {
	m := FileMode(fi.st.Mode & 0o777)
	switch fi.st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		m |= iofs.ModeDevice
	case unix.S_IFCHR:
		m |= iofs.ModeDevice | iofs.ModeCharDevice
	case unix.S_IFDIR:
		m |= iofs.ModeDir
	case unix.S_IFIFO:
		m |= iofs.ModeNamedPipe
	case unix.S_IFLNK:
		m |= iofs.ModeSymlink
	case unix.S_IFSOCK:
		m |= iofs.ModeSocket
	}
	if fi.st.Mode&unix.S_ISGID != 0 {
		m |= iofs.ModeSetgid
	}
	if fi.st.Mode&unix.S_ISUID != 0 {
		m |= iofs.ModeSetuid
	}
	if fi.st.Mode&unix.S_ISVTX != 0 {
		m |= iofs.ModeSticky
	}
	return m
}

func statxTime(t unix.StatxTimestamp) time.Time { return time.Unix(t.Sec, int64(t.Nsec)) }
