package fs

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// directDir returns a directory on a disk filesystem (O_DIRECT works on
// ext4 and xfs, not on every tmpfs), or skips.
func directDir(t testing.TB) string {
	for _, d := range []string{"/var/tmp", "/tmp"} {
		fd, err := unix.Open(d+"/.ringo-direct-probe", unix.O_RDWR|unix.O_CREAT|unix.O_DIRECT|unix.O_CLOEXEC, 0o600)
		if err == nil {
			unix.Close(fd)
			os.Remove(d + "/.ringo-direct-probe")
			dir, err := os.MkdirTemp(d, "ringo-fs-direct-*")
			require.NoError(t, err)
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	t.Skip("no directory here accepts O_DIRECT (EINVAL from the filesystem)")
	return ""
}

func TestDirect(t *testing.T) {
	dir := directDir(t)
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		data := randBytes(newRand(11), 64<<10+100)
		path := tempFile(t, dir, data)
		f, err := OpenFileOptions(path, os.O_RDWR|O_DIRECT, 0, opts(p))
		require.NoError(t, err)
		defer f.Close()
		a := f.Alignment()
		require.Greater(t, a.Offset, 0)
		t.Logf("alignment: %+v", a)

		buf, err := AlignedBuffer(8192)
		require.NoError(t, err)
		defer Free(buf)
		n, err := f.ReadAt(buf, 4096)
		require.NoError(t, err)
		require.Equal(t, 8192, n)
		require.True(t, bytes.Equal(data[4096:4096+8192], buf))

		// The end of the file: short, io.EOF.
		end := int64(len(data)) / int64(a.Offset) * int64(a.Offset)
		n, err = f.ReadAt(buf, end)
		assert.Equal(t, len(data)-int(end), n)
		assert.Equal(t, io.EOF, err)

		// Misalignment is named, not a bare EINVAL.
		check := func(err error, what string) {
			t.Helper()
			var ae *AlignmentError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, what, ae.What)
			assert.ErrorIs(t, err, ErrMisaligned)
			assert.ErrorIs(t, err, unix.EINVAL)
			assert.Contains(t, err.Error(), "aligned to")
		}
		if a.Mem > 1 {
			_, err = f.ReadAt(buf[1:4097], 0)
			check(err, "buffer address")
		}
		_, err = f.ReadAt(buf[:4096], 1)
		check(err, "offset")
		_, err = f.ReadAt(buf[:a.Offset+1], 0)
		check(err, "length")
		_, err = f.WriteAt(buf[:100], 0)
		check(err, "length")
		b := f.Batch()
		i := b.ReadAt(buf[:4096], 3)
		require.NoError(t, b.Submit())
		res, _ := b.Wait()
		check(res[i].Err, "offset")

		// Write, read back through os.
		copy(buf, bytes.Repeat([]byte("direct!!"), 1024))
		n, err = f.WriteAt(buf, 0)
		require.NoError(t, err)
		require.Equal(t, 8192, n)
		require.NoError(t, f.Datasync())
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		require.True(t, bytes.Equal(buf, got[:8192]))
	})
}

func TestAlignedBuffer(t *testing.T) {
	b, err := AlignedBuffer(5000)
	require.NoError(t, err)
	require.Len(t, b, 5000)
	b[4999] = 1
	require.Error(t, Free(b[1:]), "Free refuses what it did not hand out")
	require.NoError(t, Free(b))
	require.Error(t, Free(b), "twice")
	require.Error(t, Free(make([]byte, 10)))
	require.Error(t, Free(nil))
	_, err = AlignedBuffer(0)
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrMisaligned))
}
