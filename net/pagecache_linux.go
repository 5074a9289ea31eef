package net

import (
	"math"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// sendfile(2) has no io_uring opcode. EventConn runs it on the loop, and
// Conn's SendFile waits on an op the loop performs the same way, so a
// range not in the page cache would be read from the disk on the loop
// while every other connection of the loop waits. Before sendfile(2),
// both look the range up with cachestat(2) (Linux 6.5) and have what is
// missing read in by Read ops (io_uring, or an epoll reactor's worker)
// into a scratch buffer nothing reads; sendfile(2) then goes no further
// than the pages known to be there.

// warmMax is the most one read into the page cache brings in ahead of
// sendfile(2), and the size of the scratch buffer.
const warmMax = 256 << 10

var pageSize = int64(os.Getpagesize())

// noCachestat is set once cachestat(2) failed with ENOSYS (before 6.5) or
// EPERM (a seccomp filter): sendfile(2) then goes unchecked, as before.
var noCachestat atomic.Bool

// warmScratch is the buffer the reads into the page cache fill. All of
// them share it, at once: their bytes are never read, so it does not
// matter which lands last.
var warmScratch = sync.OnceValue(func() []byte { return make([]byte, warmMax) })

// warmth follows one sendfile range through the page cache.
type warmth struct {
	upTo    int64 // the file is known to be in the page cache up to here
	size    int64 // the file's size when resident first looked
	statted bool  // resident has looked at the file's type and size
	// cold: a part was not in the page cache, so every further part is
	// read in before it is sent. cachestat is not asked again: it counts
	// pages the kernel's readahead is still reading as present.
	cold bool
}

// resident says whether n bytes of the file fd at off can go out by
// sendfile(2) without a read first, and if so moves upTo past them: they
// are in the page cache, or it cannot tell (no cachestat, or not a file
// with a page cache).
func (w *warmth) resident(fd int, off, n int64) bool {
	if !w.statted {
		// Only a file's own pages can be read in ahead: a read op on a
		// pipe, say, would wait for data that may never come.
		w.statted = true
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG && st.Mode&unix.S_IFMT != unix.S_IFBLK {
			w.upTo = math.MaxInt64 // sendfile(2) alone, which reports its errors
			return true
		}
		w.size = st.Size
	}
	if w.cold {
		return false
	}
	// Pages past the end of the file are never in the cache: count only
	// up to the size fstat gave (a part the file has grown by since goes
	// unchecked).
	if m := min(n, w.size-off); m > 0 && !noCachestat.Load() {
		r := unix.CachestatRange{Off: uint64(off), Len: uint64(m)}
		var cs unix.Cachestat_t
		switch err := unix.Cachestat(uint(fd), &r, &cs, 0); {
		case err == nil:
			first, end := off/pageSize, (off+m+pageSize-1)/pageSize
			if int64(cs.Cache) < end-first {
				w.cold = true
				return false
			}
		case err == unix.ENOSYS || err == unix.EPERM:
			noCachestat.Store(true)
		}
		// Other errors leave it to sendfile(2), which reports its own.
	}
	w.upTo = off + n
	return true
}

// warmed records a read into the page cache of want bytes at off that
// returned res: what it read is there now. A read that found the end of
// the file or failed counts as all of want, so that sendfile(2), which
// comes next, reports that itself.
func (w *warmth) warmed(off, want int64, res int32) {
	end := off + want
	if res > 0 {
		end = off + int64(res)
	}
	w.upTo = max(w.upTo, end)
}
