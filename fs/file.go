package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// O_DIRECT asks the kernel to move data between the device and the
// caller's buffer without the page cache. Buffers, offsets and lengths must
// then be aligned (see File.Alignment and AlignedBuffer).
const O_DIRECT = unix.O_DIRECT

// ErrClosed is returned for operations on a closed File; it is os.ErrClosed,
// so errors.Is(err, fs.ErrClosed) and errors.Is(err, os.ErrClosed) agree.
var ErrClosed = os.ErrClosed

// The io/fs sentinels, for errors.Is on the *PathError values fs returns.
var (
	ErrNotExist   = iofs.ErrNotExist
	ErrExist      = iofs.ErrExist
	ErrPermission = iofs.ErrPermission
)

// PathError is io/fs's: the operation, the file's name and the errno.
type PathError = iofs.PathError

// FileMode is io/fs's.
type FileMode = iofs.FileMode

var (
	errNegativeOffset = errors.New("negative offset")
	errAppendWriteAt  = errors.New("fs: WriteAt in O_APPEND mode")
	errOtherProactor  = errors.New("fs: file belongs to another proactor")
)

// OpenOptions says where a File's operations run.
type OpenOptions struct {
	// Proactor runs the file's operations; nil means proactor.Default().
	Proactor *proactor.Proactor
	// Loop, if set, is the loop (of Proactor) the file's operations use;
	// by default the Proactor's loops are taken in turn.
	Loop *proactor.Loop
	// NoInline turns off the inline attempts (preadv2 with RWF_NOWAIT
	// for reads, sendfile(2) for SendFile) so that every read and
	// transfer goes through the proactor: for measurement, or when the
	// calling goroutine must never do file I/O itself.
	NoInline bool
}

// File is an open file whose reads and writes run on a proactor. It is safe
// for concurrent use, as *os.File is: ReadAt and WriteAt calls run in
// parallel; Read, Write and Seek share the position and are serialized.
type File struct {
	// Immutable after open.
	fd     int
	name   string
	p      *proactor.Proactor
	loop   *proactor.Loop
	direct bool // O_DIRECT: alignment checked, no inline reads
	append bool // O_APPEND: writes go to the end, WriteAt is refused
	stream bool // a FIFO, socket or character device: non-blocking, polled
	align  Alignment

	// noInline is set once, at open or when preadv2(RWF_NOWAIT) answers
	// EOPNOTSUPP/ENOSYS/EINVAL for this file, and never cleared.
	noInline atomic.Bool
	// userNoInline is OpenOptions.NoInline: no file I/O on the calling
	// goroutine at all (reads, and SendFile's sendfile(2)). Immutable.
	userNoInline bool
	// memory: the file lives in RAM (tmpfs, ramfs), where a read never
	// waits for a device, so the inline attempt is a plain pread (tmpfs
	// answers RWF_NOWAIT with EOPNOTSUPP on 6.18). Immutable after open.
	memory bool

	// ref counts operations in flight in its low bits; refClosed is set
	// once by Close, after which no operation may start. drained is closed
	// by the release that leaves a closed file with none in flight.
	ref     atomic.Int64
	drained chan struct{}

	// nbDesc is set when Close must release O_NONBLOCK (see nonblocking).
	nbDesc *nbDesc

	// closed is a context that Close cancels: SendFile's ops run on the
	// socket, where Close's cancel by fd does not reach, so they take it
	// (or one derived from it) as their cancel.
	closed      context.Context
	cancelClose context.CancelFunc

	// posMu serializes Read, Write and Seek; pos is the file position
	// they use (the kernel's own offset is left alone, except in append
	// mode, where the kernel decides where each write lands).
	posMu sync.Mutex
	pos   int64
}

const refClosed = 1 << 62

// Open opens name for reading, as os.Open.
func Open(name string) (*File, error) {
	return OpenFileOptions(name, os.O_RDONLY, 0, OpenOptions{})
}

// Create creates or truncates name, as os.Create.
func Create(name string) (*File, error) {
	return OpenFileOptions(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666, OpenOptions{})
}

// OpenFile opens name with flag (os.O_* values, and O_DIRECT) and perm, as
// os.OpenFile.
func OpenFile(name string, flag int, perm FileMode) (*File, error) {
	return OpenFileOptions(name, flag, perm, OpenOptions{})
}

// OpenWith is Open with options.
func OpenWith(name string, opts OpenOptions) (*File, error) {
	return OpenFileOptions(name, os.O_RDONLY, 0, opts)
}

// CreateWith is Create with options.
func CreateWith(name string, opts OpenOptions) (*File, error) {
	return OpenFileOptions(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666, opts)
}

// OpenFileOptions is OpenFile with options. The open itself runs on the
// proactor (IORING_OP_OPENAT on io_uring, a worker on epoll).
func OpenFileOptions(name string, flag int, perm FileMode, opts OpenOptions) (*File, error) {
	if strings.IndexByte(name, 0) >= 0 {
		// The kernel would stop at the NUL and open another file.
		return nil, &PathError{Op: "open", Path: name, Err: unix.EINVAL}
	}
	p, loop, err := resolve(opts)
	if err != nil {
		return nil, &PathError{Op: "open", Path: name, Err: err}
	}
	op := &proactor.Openat{Dir: unix.AT_FDCWD, Path: proactor.CString(name), Flags: flag, Mode: sysMode(perm)}
	res, _, err := loop.DoUntil(op, time.Time{}, nil)
	for err == nil && interrupted(res) {
		res, _, err = loop.DoUntil(op, time.Time{}, nil)
	}
	if err != nil {
		return nil, &PathError{Op: "open", Path: name, Err: err}
	}
	if res < 0 {
		return nil, &PathError{Op: "open", Path: name, Err: unix.Errno(-res)}
	}
	return newFile(int(res), name, flag, p, loop, opts.NoInline), nil
}

// NewFile wraps an open descriptor, which the File then owns and closes.
// flag says how fd was opened (for O_DIRECT and O_APPEND); fs reads it
// from the descriptor when flag is -1.
func NewFile(fd int, name string, flag int, opts OpenOptions) (*File, error) {
	if fd < 0 {
		return nil, &PathError{Op: "newfile", Path: name, Err: unix.EBADF}
	}
	if flag == -1 {
		fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		if err != nil {
			return nil, &PathError{Op: "newfile", Path: name, Err: err}
		}
		flag = fl
	}
	p, loop, err := resolve(opts)
	if err != nil {
		return nil, &PathError{Op: "newfile", Path: name, Err: err}
	}
	f := newFile(fd, name, flag, p, loop, opts.NoInline)
	if !f.stream {
		// As os.NewFile: reading and writing go on from the
		// descriptor's offset.
		if pos, err := unix.Seek(fd, 0, io.SeekCurrent); err == nil {
			f.pos = pos
		}
	}
	return f, nil
}

// errForeignLoop is OpenOptions with a Loop of another Proactor.
var errForeignLoop = errors.New("fs: OpenOptions.Loop is not a loop of OpenOptions.Proactor")

func resolve(opts OpenOptions) (*proactor.Proactor, *proactor.Loop, error) {
	p, loop := opts.Proactor, opts.Loop
	switch {
	case loop != nil && p == nil:
		p = loop.Proactor()
	case loop != nil && loop.Proactor() != p:
		return nil, nil, errForeignLoop
	case p == nil:
		var err error
		if p, err = proactor.Default(); err != nil {
			return nil, nil, err
		}
	}
	if loop == nil {
		loop = p.Next()
	}
	return p, loop, nil
}

func newFile(fd int, name string, flag int, p *proactor.Proactor, loop *proactor.Loop, noInline bool) *File {
	f := &File{fd: fd, name: name, p: p, loop: loop, drained: make(chan struct{}), userNoInline: noInline}
	f.closed, f.cancelClose = context.WithCancel(context.Background())
	f.direct = flag&unix.O_DIRECT != 0
	f.append = flag&unix.O_APPEND != 0
	var st unix.Stat_t
	if unix.Fstat(fd, &st) == nil {
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFIFO, unix.S_IFSOCK, unix.S_IFCHR:
			// A read of an empty FIFO would hold an epoll worker (or an
			// io-wq thread) until data came, beyond the reach of cancel:
			// make it non-blocking and wait for readiness instead.
			if d, ok := makeNonblocking(fd, &st); ok {
				f.nbDesc = d
				f.stream = true
				noInline = true
			}
		}
	}
	if f.direct {
		f.align = dioAlignment(fd)
	}
	var sfs unix.Statfs_t
	if !f.direct && unix.Fstatfs(fd, &sfs) == nil {
		switch uint32(sfs.Type) {
		case unix.TMPFS_MAGIC, unix.RAMFS_MAGIC:
			f.memory = true
		}
	}
	// O_DIRECT reads bypass the page cache, so a NOWAIT attempt would
	// only ever add a failed syscall.
	f.noInline.Store(noInline || f.direct)
	return f
}

// O_NONBLOCK belongs to the open file description, which other Files (and
// other processes: a parent's stdin) may share. fs sets it on the stream
// descriptors it wraps, and clears it when the last File on that
// description closes, but only on a description it set it on: one that
// came non-blocking is left as it came. Descriptions are told apart with
// kcmp(KCMP_FILE); where kcmp is refused (some seccomp profiles), fs cannot
// tell whether another File shares a description, and leaves the flag set.
type nbDesc struct {
	dev, ino uint64 // narrows the kcmp candidates
	fds      []int  // the descriptors of the live Files on it
}

var nonblocking struct {
	sync.Mutex
	descs []*nbDesc
	kcmp  int // 0 unknown, 1 works, -1 refused
}

const kcmpFile = 0 // KCMP_FILE, <linux/kcmp.h>

// sameDescription reports whether fds a and b share an open file
// description.
func sameDescription(a, b int) (bool, error) {
	pid := uintptr(unix.Getpid())
	r, _, e := unix.Syscall6(unix.SYS_KCMP, pid, pid, kcmpFile, uintptr(a), uintptr(b), 0)
	if e != 0 {
		return false, e
	}
	return r == 0, nil
}

// makeNonblocking makes fd non-blocking. ok is false if it cannot; d is
// the description to release at Close, nil when fs will not clear it.
func makeNonblocking(fd int, st *unix.Stat_t) (d *nbDesc, ok bool) {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return nil, false
	}
	nonblocking.Lock()
	defer nonblocking.Unlock()
	if nonblocking.kcmp == 0 {
		nonblocking.kcmp = -1
		if same, err := sameDescription(fd, fd); err == nil && same {
			nonblocking.kcmp = 1
		}
	}
	if nonblocking.kcmp > 0 {
		for _, d := range nonblocking.descs {
			if d.dev != uint64(st.Dev) || d.ino != st.Ino {
				continue
			}
			if same, _ := sameDescription(fd, d.fds[0]); same {
				d.fds = append(d.fds, fd)
				return d, true
			}
		}
	}
	if fl&unix.O_NONBLOCK != 0 {
		return nil, true // non-blocking already, not by fs: left as it is
	}
	if unix.SetNonblock(fd, true) != nil {
		return nil, false
	}
	if nonblocking.kcmp < 0 {
		return nil, true
	}
	d = &nbDesc{dev: uint64(st.Dev), ino: st.Ino, fds: []int{fd}}
	nonblocking.descs = append(nonblocking.descs, d)
	return d, true
}

// releaseNonblocking drops a closing File's fd from d, and clears the flag
// if it was the last.
func releaseNonblocking(fd int, d *nbDesc) {
	nonblocking.Lock()
	defer nonblocking.Unlock()
	d.fds = slices.DeleteFunc(d.fds, func(x int) bool { return x == fd })
	if len(d.fds) > 0 {
		return
	}
	nonblocking.descs = slices.DeleteFunc(nonblocking.descs, func(x *nbDesc) bool { return x == d })
	_ = unix.SetNonblock(fd, false)
}

// sysMode converts a FileMode to open(2)'s mode bits, as package os does.
func sysMode(m FileMode) uint32 {
	o := uint32(m.Perm())
	if m&iofs.ModeSetuid != 0 {
		o |= unix.S_ISUID
	}
	if m&iofs.ModeSetgid != 0 {
		o |= unix.S_ISGID
	}
	if m&iofs.ModeSticky != 0 {
		o |= unix.S_ISVTX
	}
	return o
}

// Fd returns the descriptor. It stays valid until Close, after which Fd
// returns ^uintptr(0), as os.File's does (the number may be reused). fs
// keeps its own position for Read and Write, so the kernel's offset is
// not it.
func (f *File) Fd() uintptr {
	if f == nil || f.closing() {
		return ^uintptr(0)
	}
	return uintptr(f.fd)
}

// Name returns the name the file was opened with.
func (f *File) Name() string {
	if f == nil {
		return ""
	}
	return f.name
}

// Loop returns the loop the file's operations run on.
func (f *File) Loop() *proactor.Loop {
	if f == nil {
		return nil
	}
	return f.loop
}

// acquire registers an operation in flight; false once the file is closed.
func (f *File) acquire() bool {
	for {
		v := f.ref.Load()
		if v&refClosed != 0 {
			return false
		}
		if f.ref.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

func (f *File) release() {
	if f.ref.Add(-1) == refClosed {
		close(f.drained)
	}
}

func (f *File) closing() bool { return f.ref.Load()&refClosed != 0 }

// Close cancels the file's operations in flight, waits for each to
// complete (their buffers are the kernel's until then), and closes the
// descriptor. Operations cut short return ErrClosed. A second Close returns
// an error wrapping ErrClosed.
func (f *File) Close() error {
	if f == nil {
		return errNilFile
	}
	old := f.ref.Or(refClosed)
	if old&refClosed != 0 {
		return &PathError{Op: "close", Path: f.name, Err: ErrClosed}
	}
	f.cancelClose()
	if old != 0 {
		f.cancelAndDrain()
	}
	if f.nbDesc != nil {
		releaseNonblocking(f.fd, f.nbDesc)
	}
	if err := unix.Close(f.fd); err != nil {
		return &PathError{Op: "close", Path: f.name, Err: err}
	}
	return nil
}

// cancelAndDrain cancels every op on the descriptor and waits until none
// is in flight. An operation that had passed acquire but not yet reached
// its loop when the cancel ran is not cancelled by it, so the cancel is
// repeated until the file drains: regular-file ops finish on their own
// anyway, but a FIFO or device read would not.
func (f *File) cancelAndDrain() {
	cancel := func() {
		for _, l := range f.p.Loops() {
			_ = l.Post(func() { l.CancelFdInLoop(f.fd) }) // a closed loop has no ops left
		}
	}
	cancel()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-f.drained:
			return
		case <-t.C:
			cancel()
		}
	}
}

// do runs op on the file's loop and waits for its final completion. ctx
// may be nil (no deadline, no cancel). res < 0 comes back as err, an errno,
// ErrClosed, or ctx's error.
func (f *File) do(ctx context.Context, op proactor.Op) (int32, error) {
	var deadline time.Time
	var cancel <-chan struct{}
	if ctx != nil {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		deadline, _ = ctx.Deadline()
		cancel = ctx.Done()
	}
	for {
		res, _, err := f.loop.DoUntil(op, deadline, cancel)
		if err != nil {
			return 0, engineErr(err)
		}
		if res >= 0 {
			return res, nil
		}
		if interrupted(res) && (ctx == nil || ctx.Err() == nil) && !f.closing() {
			continue
		}
		return res, f.resErr(ctx, res, !deadline.IsZero())
	}
}

// interrupted reports an EINTR result, which an op is run again for, as
// package os retries its system calls: a signal cut it short before it
// moved a byte (a transfer cut short after some returns the count). Local
// files never answer EINTR; NFS mounted with intr and FUSE file systems
// can, to a signal at the wrong time (an io_uring op, in the io-wq worker
// that runs it).
func interrupted(res int32) bool { return res == -int32(unix.EINTR) }

// errProactorClosed is what a File's operations return once its proactor
// has closed: the File can do nothing more but Close, so it answers as a
// closed *os.File would (os.ErrClosed), and the cause stays visible to
// errors.Is(err, proactor.ErrClosed).
var errProactorClosed = fmt.Errorf("%w (%w)", ErrClosed, proactor.ErrClosed)

// engineErr turns the proactor's ErrClosed into errProactorClosed.
func engineErr(err error) error {
	if errors.Is(err, proactor.ErrClosed) {
		return errProactorClosed
	}
	return err
}

// resErr explains a negative result: a cancel is ctx's doing, the
// deadline's, or Close's; anything else is the errno.
func (f *File) resErr(ctx context.Context, res int32, hadDeadline bool) error {
	if res == -int32(unix.ECANCELED) || res == -int32(unix.ETIME) {
		if ctx != nil {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if res == -int32(unix.ETIME) && hadDeadline {
			return context.DeadlineExceeded
		}
		if f.closing() {
			return ErrClosed
		}
		if res == -int32(unix.ECANCELED) && f.loop.Closed() {
			// In flight when the Proactor closed: answered as the
			// operations that start after it are.
			return errProactorClosed
		}
	}
	return unix.Errno(-res)
}

// errNilFile is what the methods of a nil *File return, as *os.File's
// do: os.ErrInvalid.
var errNilFile = os.ErrInvalid

func (f *File) pathErr(op string, err error) error {
	return &PathError{Op: op, Path: f.name, Err: err}
}

// noCtx is the nil context the methods without one pass down: no deadline
// and no cancel channel, so the hot path skips ctx's interface calls.
var noCtx context.Context
