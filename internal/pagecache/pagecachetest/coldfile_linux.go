// Package pagecachetest makes files whose pages are not in the page cache,
// for the tests of the SendFile paths that read such files in first
// (internal/pagecache).
package pagecachetest

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// SlowDisk makes this process's reads of the disk under f take at most
// bps bytes a second until the test ends, with a blkio (cgroup v1) or io
// (cgroup v2) throttle on a cgroup the process moves into. It skips the
// test, with the reason, where it cannot (not root, no such controller,
// a file not on a whole disk it can find).
func SlowDisk(t testing.TB, f *os.File, bps int) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	if _, err := os.Stat("/sys/dev/block/" + dev + "/partition"); err == nil {
		// A partition: the throttle goes on its disk.
		b, err := os.ReadFile("/sys/dev/block/" + dev + "/../dev")
		if err != nil {
			t.Skipf("the disk of partition %s: %v", dev, err)
		}
		dev = strings.TrimSpace(string(b))
	}
	var dir, limit, file string
	var from string // the cgroup the process leaves, to go back to
	cg, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(string(cg), "\n") {
		parts := strings.SplitN(line, ":", 3)
		switch {
		case len(parts) == 3 && parts[1] == "blkio":
			from = "/sys/fs/cgroup/blkio" + parts[2]
			dir, file, limit = "/sys/fs/cgroup/blkio", "blkio.throttle.read_bps_device", fmt.Sprintf("%s %d", dev, bps)
		case len(parts) == 3 && parts[0] == "0" && parts[1] == "" && dir == "":
			if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && strings.Contains(string(b), "io") {
				from = "/sys/fs/cgroup" + parts[2]
				dir, file, limit = "/sys/fs/cgroup", "io.max", fmt.Sprintf("%s rbps=%d", dev, bps)
			}
		}
	}
	if dir == "" {
		t.Skip("no blkio or io cgroup controller to slow the disk with")
	}
	g := filepath.Join(dir, fmt.Sprintf("ringo-test-%d", os.Getpid()))
	if err := os.Mkdir(g, 0o755); err != nil {
		t.Skipf("cannot make a cgroup to slow the disk: %v", err)
	}
	if err := os.WriteFile(filepath.Join(g, file), []byte(limit), 0); err != nil {
		os.Remove(g)
		t.Skipf("cannot throttle %s: %v", dev, err)
	}
	pid := []byte(fmt.Sprint(os.Getpid()))
	if err := os.WriteFile(filepath.Join(g, "cgroup.procs"), pid, 0); err != nil {
		os.Remove(g)
		t.Skipf("cannot move into the throttled cgroup: %v", err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(from, "cgroup.procs"), pid, 0); err != nil {
			t.Errorf("leaving the throttled cgroup: %v", err)
		}
		if err := os.Remove(g); err != nil {
			t.Errorf("removing the throttled cgroup: %v", err)
		}
	})
}
