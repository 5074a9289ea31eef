package net

import (
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/pagecache"
)

// maxSendfile caps one sendfile(2): small enough that a deadline or Close
// is seen between chunks, large enough to be few ops (package net uses the
// same 4 MiB).
const maxSendfile = 4 << 20

// ReadFrom copies from r until EOF. When r is an *os.File on a regular file
// (or an *io.LimitedReader of one) the kernel copies it with sendfile(2)
// and no byte passes through user space; otherwise it copies through a
// buffer, as io.Copy does.
func (c *Conn) ReadFrom(r io.Reader) (int64, error) {
	if !c.ok() {
		return 0, unix.EINVAL
	}
	if n, err, handled := c.sendFile(r); handled {
		return n, c.opErr("readfrom", err)
	}
	n, err := genericReadFrom(c, r)
	return n, c.opErr("readfrom", err)
}

// SendFile sends n bytes of the regular file fd from offset off with
// sendfile(2), as ReadFrom does for an *os.File, under the write deadline
// and Close like a Write; it returns how much was sent, less than n with a
// nil error if the file ended first. The caller keeps fd open meanwhile.
// For files held as bare descriptors (a server's cache of open files),
// where an *os.File would own the descriptor.
func (c *Conn) SendFile(fd int, off, n int64) (int64, error) {
	if !c.ok() {
		return 0, unix.EINVAL
	}
	if fd < 0 || off < 0 || n < 0 {
		return 0, c.opErr("sendfile", os.ErrInvalid)
	}
	written, err := c.sendfileLoop(fd, off, n)
	return written, c.opErr("sendfile", wrapSendfile(err))
}

// sendfileSource is what sendFile needs of a file. Not *os.File itself:
// io.Copy(conn, f) calls f.WriteTo first, which hands ReadFrom f wrapped
// (os.fileWithoutWriteTo, embedding *os.File), and that is the common way
// here. Package net matches on syscall.Conn for the same reason.
type sendfileSource interface {
	syscall.Conn
	io.Seeker
	Stat() (os.FileInfo, error)
}

// sendFile is ReadFrom's zero-copy way. handled is false when it did
// nothing and the caller should copy another way: r is not a regular file,
// or the kernel refuses sendfile for it before any byte was sent.
func (c *Conn) sendFile(r io.Reader) (written int64, err error, handled bool) {
	remain := int64(1<<63 - 1)
	lr, ok := r.(*io.LimitedReader)
	if ok {
		remain, r = lr.N, lr.R
		if remain <= 0 {
			return 0, nil, true
		}
	}
	f, ok := r.(sendfileSource)
	if !ok {
		return 0, nil, false
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return 0, nil, false
	}
	// sendfile(2) with an explicit offset does not move the file's; move
	// it afterwards so f reads on where the copy stopped, like a Read.
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return 0, nil, false
	}
	sc, err := f.SyscallConn()
	if err != nil {
		return 0, nil, false
	}
	// Control holds f's descriptor open for the whole copy.
	cerr := sc.Control(func(ffd uintptr) {
		written, err = c.sendfileLoop(int(ffd), off, remain)
	})
	if cerr != nil {
		return 0, nil, false
	}
	if written == 0 && (err == unix.EINVAL || err == unix.ENOSYS) {
		return 0, nil, false // this file cannot be sent: copy instead
	}
	if lr != nil {
		lr.N -= written
	}
	if written > 0 {
		if _, serr := f.Seek(off+written, io.SeekStart); serr != nil && err == nil {
			err = serr
		}
	}
	return written, wrapSendfile(err), true
}

func wrapSendfile(err error) error {
	if e, ok := err.(unix.Errno); ok {
		return os.NewSyscallError("sendfile", e)
	}
	return err
}

// sendfileLoop sends up to remain bytes of ffd from off, looping over the
// short transfers a non-blocking socket gives, until EOF of the file. Its
// errors are bare errnos, so that sendFile can tell EINVAL apart.
//
// A part not in the page cache is read in first by an op this goroutine
// waits on, so that sendfile(2), which the loop performs, does not read
// the disk there (internal/pagecache).
func (c *Conn) sendfileLoop(ffd int, off, remain int64) (int64, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var written int64
	var warm pagecache.Warmth
	for remain > 0 {
		n := min(remain, maxSendfile)
		if off >= warm.UpTo && !warm.Resident(ffd, off, n) {
			if err := c.readIn(ffd, off, min(n, pagecache.MaxRead), &warm); err != nil {
				return written, err
			}
			continue
		}
		dl, cancel, err := c.fd.begin(&c.fd.wd)
		if err != nil {
			return written, err
		}
		// No further than the pages known to be there.
		c.sf.Sock, c.sf.File, c.sf.Off, c.sf.N = c.fd.sysfd, ffd, off, int(min(n, warm.UpTo-off))
		res, perr := c.fd.do(&c.ww, &c.sf, dl, cancel)
		why := c.fd.end(&c.fd.wd, interrupted(res))
		switch {
		case perr != nil:
			return written, perr
		case res > 0:
			written += int64(res)
			off += int64(res)
			remain -= int64(res)
		case res == 0:
			return written, nil // end of file
		case interrupted(res):
			if why != nil {
				return written, why
			}
		case res == -int32(unix.EINTR) || res == -int32(unix.EAGAIN):
		default:
			return written, unix.Errno(-res)
		}
	}
	return written, nil
}

// readIn reads n bytes of ffd at off into the page cache for
// sendfileLoop. Close and the write deadline stop the wait, not the read
// (pagecache.Read); a wait cut short by a deadline change leaves warm as
// it was, and sendfileLoop asks again.
func (c *Conn) readIn(ffd int, off, n int64, warm *pagecache.Warmth) error {
	dl, cancel, err := c.fd.begin(&c.fd.wd)
	if err != nil {
		return err
	}
	res, cut := pagecache.Read(c.fd.loop, ffd, off, n, dl, cancel)
	why := c.fd.end(&c.fd.wd, cut)
	if cut {
		return why
	}
	warm.Warmed(off, n, res)
	return nil
}

// genericReadFrom is io.Copy into c with c's own ReadFrom hidden, so that
// io.Copy does not call back into ReadFrom (package net's pattern).
func genericReadFrom(c *Conn, r io.Reader) (int64, error) {
	return io.Copy(connWithoutReadFrom{Conn: c}, r)
}

// noReadFrom is "unused" only to the linter: embedding it is what hides
// Conn's ReadFrom.
//
//lint:ignore U1000 used for its method's ambiguity, see connWithoutReadFrom
type noReadFrom struct{}

// ReadFrom is never called: it makes the embedded Conn's ReadFrom
// ambiguous, which removes it from connWithoutReadFrom's method set.
//
//lint:ignore U1000 see noReadFrom
func (noReadFrom) ReadFrom(io.Reader) (int64, error) { panic("can't happen") }

type connWithoutReadFrom struct {
	noReadFrom //lint:ignore U1000 see noReadFrom
	*Conn
}
