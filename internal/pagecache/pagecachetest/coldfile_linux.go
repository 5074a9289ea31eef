// Package pagecachetest makes files whose pages are not in the page cache,
// for the tests of the SendFile paths that read such files in first
// (internal/pagecache).
package pagecachetest

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// ColdFile writes a file of n random bytes on a disk-backed file system,
// drops its pages from the page cache and returns it open for reading,
// with its content. It skips the test, with the reason, where it cannot:
// no disk-backed directory, no cachestat(2) (before Linux 6.5), or pages
// the kernel kept.
func ColdFile(t testing.TB, n int) (*os.File, []byte) {
	t.Helper()
	dir := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type == unix.TMPFS_MAGIC {
		// tmpfs keeps its pages; /var/tmp is on a disk on most systems.
		d, err := os.MkdirTemp("/var/tmp", "ringo-cold")
		if err != nil {
			t.Skipf("no disk-backed directory: %s is tmpfs and /var/tmp: %v", dir, err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	want := make([]byte, n)
	rand.Read(want)
	f, err := os.Create(filepath.Join(dir, "cold"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write(want); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Skipf("cannot drop the file's pages: %v", err)
	}
	var cs unix.Cachestat_t
	if err := unix.Cachestat(uint(f.Fd()), &unix.CachestatRange{Len: uint64(n)}, &cs, 0); err != nil {
		t.Skipf("cachestat(2): %v (Linux 6.5+)", err)
	}
	if pages := (n + os.Getpagesize() - 1) / os.Getpagesize(); cs.Cache >= uint64(pages)/2 {
		t.Skipf("%d of %d pages still cached after FADV_DONTNEED (%s)", cs.Cache, pages, dir)
	}
	return f, want
}
