// Package pagecache keeps sendfile(2) off the disk where it would block
// the wrong goroutine. sendfile(2) has no io_uring opcode: net's EventConn
// runs it on the loop, and net.Conn's and fs's SendFile wait on an op the
// loop performs the same way, so a range not in the page cache would be
// read from the disk on the loop while every other connection of the loop
// waits. Before sendfile(2) they look the range up with cachestat(2)
// (Linux 6.5) and have what is missing read in by Read ops (io_uring, or
// an epoll reactor's worker) into a scratch buffer nothing reads;
// sendfile(2) then goes no further than the pages known to be there.
//
// The package owns that bookkeeping (Warmth), the scratch buffer and the
// process-wide note that cachestat is unavailable; the callers own the
// reads.
package pagecache

import (
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// MaxRead is the most one read into the page cache brings in ahead of
// sendfile(2), and the size of Scratch.
const MaxRead = 256 << 10

var pageSize = int64(os.Getpagesize())

// NoCachestat is set once cachestat(2) failed with ENOSYS (before 6.5) or
// EPERM (a seccomp filter): sendfile(2) then goes unchecked, as before.
// Tests set it to see that way.
var NoCachestat atomic.Bool

// Scratch returns the buffer the reads into the page cache fill. All of
// them share it, at once: their bytes are never read, so it does not
// matter which lands last.
var Scratch = sync.OnceValue(func() []byte { return make([]byte, MaxRead) })

// Warmth follows one sendfile range through the page cache. The zero
// value knows nothing yet.
type Warmth struct {
	UpTo    int64 // the file is known to be in the page cache up to here
	size    int64 // the file's size when Resident first looked
	statted bool  // Resident has looked at the file's type and size
	// Cold: a part was not in the page cache, so every further part is
	// read in before it is sent. cachestat is not asked again: it counts
	// pages the kernel's readahead is still reading as present.
	Cold bool
}

// Resident says whether n bytes of the file fd at off can go out by
// sendfile(2) without a read first, and if so moves UpTo past them: they
// are in the page cache, or it cannot tell (no cachestat, or not a file
// with a page cache). When it says false, the caller reads them in and
// reports the read to Warmed.
func (w *Warmth) Resident(fd int, off, n int64) bool {
	if !w.statted {
		// Only a file's own pages can be read in ahead: a read op on a
		// pipe, say, would wait for data that may never come.
		w.statted = true
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG && st.Mode&unix.S_IFMT != unix.S_IFBLK {
			w.UpTo = math.MaxInt64 // sendfile(2) alone, which reports its errors
			return true
		}
		w.size = st.Size
	}
	if w.Cold {
		return false
	}
	// Pages past the end of the file are never in the cache: count only
	// up to the size fstat gave (a part the file has grown by since goes
	// unchecked).
	if m := min(n, w.size-off); m > 0 && !NoCachestat.Load() {
		r := unix.CachestatRange{Off: uint64(off), Len: uint64(m)}
		var cs unix.Cachestat_t
		switch err := unix.Cachestat(uint(fd), &r, &cs, 0); {
		case err == nil:
			first, end := off/pageSize, (off+m+pageSize-1)/pageSize
			if int64(cs.Cache) < end-first {
				w.Cold = true
				return false
			}
		case err == unix.ENOSYS || err == unix.EPERM:
			NoCachestat.Store(true)
		}
		// Other errors leave it to sendfile(2), which reports its own.
	}
	w.UpTo = off + n
	return true
}

// Reads counts the reads into the page cache reported to Warmed, by
// every caller (tests look at it).
var Reads atomic.Int64

// Warmed records a read into the page cache of want bytes at off that
// returned res: what it read is there now. A read that found the end of
// the file or failed counts as all of want, so that sendfile(2), which
// comes next, reports that itself.
func (w *Warmth) Warmed(off, want int64, res int32) {
	Reads.Add(1)
	end := off + want
	if res > 0 {
		end = off + int64(res)
	}
	if res >= 0 && int64(res) < want {
		w.size = min(w.size, off+int64(res)) // the file ends there now
	}
	w.UpTo = max(w.UpTo, end)
}

// Next says how much of a cold range to read in at UpTo while sendfile(2)
// sends from off, so that the read is one ahead: up to MaxRead, none while
// more than MaxRead is read in ahead of off, and none at or past end (the
// range's) or the file's size.
func (w *Warmth) Next(off, end int64) int64 {
	if !w.Cold || w.UpTo-off > MaxRead {
		return 0
	}
	return max(0, min(MaxRead, end-w.UpTo, w.size-w.UpTo))
}

// Read reads n bytes of fd at off into the page cache by a Read op on
// loop, for a caller that waits (a goroutine, not the loop), and returns
// its result. It stops waiting when deadline passes (zero: never) or stop
// is closed, and reports cut then: a read of cold pages does not stop when
// asked to. The op reads through a duplicate of fd that its handler
// closes, so the caller may close fd at once, even while a read it
// stopped waiting for still runs; Scratch takes its bytes. A read that
// cannot start gives its errno, as a negative res.
func Read(loop *proactor.Loop, fd int, off, n int64, deadline time.Time, stop <-chan struct{}) (res int32, cut bool) {
	dfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return errnoRes(err), false
	}
	done := make(chan int32, 1) // the handler never waits for the caller
	op := &proactor.Read{Fd: dfd, Buf: Scratch()[:n], Off: off}
	if err := loop.Submit(op, func(res int32, _ uint32) {
		unix.Close(dfd)
		done <- res
	}); err != nil {
		unix.Close(dfd)
		return -int32(unix.ECANCELED), false
	}
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case res := <-done:
		return res, false
	case <-stop:
	case <-timeout:
	}
	return 0, true
}

func errnoRes(err error) int32 {
	if e, ok := err.(unix.Errno); ok {
		return -int32(e)
	}
	return -int32(unix.EIO)
}
