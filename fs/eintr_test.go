package fs

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/seccomptest"
	"github.com/ringo-io/ringo/proactor"
)

// TestInterruptedRetried: reads, writes and syncs that a signal cut short
// (EINTR, which NFS mounted with intr and FUSE file systems can answer)
// are made again, as package os makes them, not returned: File's inline
// read, its ops (on the epoll driver's workers, syscalls too), and a
// Batch's. It runs in a child under seccomptest.Interrupt, which fails
// each of those syscalls with EINTR every other time.
func TestInterruptedRetried(t *testing.T) {
	if mode, ok := seccomptest.Installed(); !ok || mode != seccomptest.Interrupt {
		out, err := seccomptest.ReexecUnder(t, seccomptest.Interrupt, "^TestInterruptedRetried$")
		require.NoError(t, err, out)
		require.Contains(t, out, "--- PASS: TestInterruptedRetried")
		return
	}
	want := bytes.Repeat([]byte("interrupted "), 1000)
	const parts = 4
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		f, err := OpenFileOptions(filepath.Join(t.TempDir(), "f"), os.O_RDWR|os.O_CREATE, 0o600, OpenOptions{Proactor: p})
		require.NoError(t, err)
		defer f.Close()
		for i := range parts {
			off := int64(i * len(want))
			n, err := f.WriteAt(want, off)
			require.NoError(t, err)
			require.Equal(t, len(want), n)
			require.NoError(t, f.Sync())
			require.NoError(t, f.Datasync())
			got := make([]byte, len(want))
			n, err = f.ReadAt(got, off)
			require.NoError(t, err)
			require.Equal(t, len(want), n)
			require.Equal(t, want, got)
		}
		b := f.Batch()
		bufs := make([][]byte, parts)
		for i := range bufs {
			bufs[i] = make([]byte, len(want))
			b.ReadAt(bufs[i], int64(i*len(want)))
		}
		b.Sync()
		b.Datasync()
		require.NoError(t, b.Submit())
		res, err := b.Wait()
		require.NoError(t, err)
		for _, r := range res {
			require.NoError(t, r.Err, "batch op %d", r.Index)
		}
		for _, got := range bufs {
			require.Equal(t, want, got)
		}
	})
	// Each kind of call was cut short at least once: the test reached
	// every retry it means to check.
	for _, nr := range []uintptr{unix.SYS_PREADV2, unix.SYS_PREAD64, unix.SYS_PWRITE64, unix.SYS_FSYNC, unix.SYS_FDATASYNC} {
		require.NotZero(t, seccomptest.Interruptions(nr), "syscall %d was never interrupted", nr)
	}
}
