package fs

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

func TestFixedBuffers(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		data := randBytes(newRand(5), 3*4096+100)
		path := tempFile(t, "", data)
		f, err := OpenFileOptions(path, os.O_RDWR, 0, opts(p))
		require.NoError(t, err)
		defer f.Close()
		bufs, err := f.Loop().RegisterBuffers(4096, 4)
		require.NoError(t, err)
		defer func() { require.NoError(t, bufs.Unregister()) }()
		ctx := context.Background()

		n, err := f.ReadAtFixed(ctx, bufs, 1, 4096, 0)
		require.NoError(t, err)
		require.Equal(t, 4096, n)
		require.True(t, bytes.Equal(data[4096:8192], bufs.Buf(1)))

		// Short at the end, then io.EOF.
		n, err = f.ReadAtFixed(context.Background(), bufs, 2, 3*4096, 0)
		require.NoError(t, err)
		require.Equal(t, 100, n)
		require.True(t, bytes.Equal(data[3*4096:], bufs.Buf(2)[:100]))
		n, err = f.ReadAtFixed(ctx, bufs, 2, int64(len(data)), 0)
		assert.Equal(t, 0, n)
		assert.Equal(t, io.EOF, err)

		// A write from one buffer, read back through another.
		copy(bufs.Buf(0), bytes.Repeat([]byte("ringo"), 1000))
		n, err = f.WriteAtFixed(ctx, bufs, 0, 8192, 500)
		require.NoError(t, err)
		require.Equal(t, 500, n)
		n, err = f.ReadAtFixed(ctx, bufs, 3, 8192, 500)
		require.NoError(t, err)
		require.Equal(t, 500, n)
		require.Equal(t, bufs.Buf(0)[:500], bufs.Buf(3)[:500])
		got := make([]byte, 500)
		_, err = f.ReadAt(got, 8192)
		require.NoError(t, err)
		require.Equal(t, bufs.Buf(0)[:500], got, "the write reached the file")

		// Bad input: a clear error, no op.
		for _, c := range []struct {
			bufs *proactor.FixedBuffers
			i, n int
			off  int64
		}{{nil, 0, 0, 0}, {bufs, -1, 0, 0}, {bufs, 4, 0, 0}, {bufs, 0, 4097, 0}, {bufs, 0, -1, 0}} {
			_, err := f.ReadAtFixed(ctx, c.bufs, c.i, c.off, c.n)
			assert.ErrorIs(t, err, unix.EINVAL, "%+v", c)
		}
		_, err = f.ReadAtFixed(ctx, bufs, 0, -1, 0)
		assert.ErrorIs(t, err, errNegativeOffset)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err = f.ReadAtFixed(cctx, bufs, 0, 0, 0)
		assert.ErrorIs(t, err, context.Canceled)

		require.NoError(t, f.Close())
		_, err = f.ReadAtFixed(ctx, bufs, 0, 0, 0)
		assert.ErrorIs(t, err, ErrClosed)
	})
}

func TestFixedBuffersDirect(t *testing.T) {
	dir := directDir(t)
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		data := randBytes(newRand(6), 64<<10)
		path := tempFile(t, dir, data)
		f, err := OpenFileOptions(path, os.O_RDWR|O_DIRECT, 0, opts(p))
		require.NoError(t, err)
		defer f.Close()
		bufs, err := f.Loop().RegisterBuffers(8192, 2)
		require.NoError(t, err)
		defer func() { require.NoError(t, bufs.Unregister()) }()
		n, err := f.ReadAtFixed(context.Background(), bufs, 1, 16384, 0)
		require.NoError(t, err)
		require.Equal(t, 8192, n)
		require.True(t, bytes.Equal(data[16384:16384+8192], bufs.Buf(1)))
		// Registered buffers are page aligned; offsets and sizes still
		// have to be.
		_, err = f.ReadAtFixed(context.Background(), bufs, 1, 100, 0)
		assert.ErrorIs(t, err, ErrMisaligned)
		_, err = f.ReadAtFixed(context.Background(), bufs, 1, 0, 100)
		assert.ErrorIs(t, err, ErrMisaligned)
	})
}
