package fs

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ringo-io/ringo/proactor"
)

func TestBatch(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		data := randBytes(rand.New(rand.NewPCG(3, 3)), 1<<16)
		path := tempFile(t, "", data)
		f, err := OpenFileOptions(path, os.O_RDWR, 0, opts(p))
		require.NoError(t, err)
		defer f.Close()

		b := f.Batch()
		bufs := make([][]byte, 16)
		for i := range bufs {
			bufs[i] = make([]byte, 4096)
			require.Equal(t, i, b.ReadAt(bufs[i], int64(i)*4096))
		}
		eof := make([]byte, 100)
		ie := b.ReadAt(eof, 1<<16-10)
		past := b.ReadAt(make([]byte, 10), 1<<17)
		require.NoError(t, b.Submit())
		seen := map[int]bool{}
		for {
			r, ok := b.Next()
			if !ok {
				break
			}
			seen[r.Index] = true
		}
		require.Len(t, seen, 18)
		res, err := b.Wait()
		assert.Equal(t, io.EOF, err)
		for i := range bufs {
			require.NoError(t, res[i].Err)
			require.True(t, bytes.Equal(data[i*4096:(i+1)*4096], bufs[i]))
		}
		assert.Equal(t, 10, res[ie].N)
		assert.Equal(t, io.EOF, res[ie].Err)
		assert.Equal(t, 0, res[past].N)
		assert.Equal(t, io.EOF, res[past].Err, "a read past the end is io.EOF with 0 bytes")

		// Reuse, and ordering: each read waits for the write of the same
		// range, so it must see the new bytes; the fsync waits for all
		// writes.
		for round := range 20 {
			b.Reset()
			var writes []int
			want := make([][]byte, 8)
			got := make([][]byte, 8)
			for i := range 8 {
				want[i] = bytes.Repeat([]byte{byte(round*8 + i + 1)}, 512)
				got[i] = make([]byte, 512)
				w := b.WriteAt(want[i], int64(i)*512)
				r := b.ReadAt(got[i], int64(i)*512)
				require.NoError(t, b.After(r, w))
				writes = append(writes, w)
			}
			s := b.Sync()
			require.NoError(t, b.After(s, writes...))
			require.NoError(t, b.Submit())
			var order []int
			for {
				r, ok := b.Next()
				if !ok {
					break
				}
				require.NoError(t, r.Err)
				order = append(order, r.Index)
			}
			pos := map[int]int{}
			for i, idx := range order {
				pos[idx] = i
			}
			for _, w := range writes {
				require.Less(t, pos[w], pos[s], "the fsync completes after every write it waits for")
			}
			for i := range 8 {
				require.Equal(t, want[i], got[i], "round %d: read %d ran after its write", round, i)
			}
		}

		// A failed write keeps the fsync that depends on it from running.
		ro, err := OpenWith(path, opts(p))
		require.NoError(t, err)
		defer ro.Close()
		b2 := ro.Batch()
		w := b2.WriteAt([]byte("x"), 0)
		s := b2.Sync()
		require.NoError(t, b2.After(s, w))
		require.NoError(t, b2.Submit())
		res, err = b2.Wait()
		require.Error(t, err)
		assert.Error(t, res[w].Err)
		assert.ErrorIs(t, res[s].Err, ErrDependency)
		assert.Error(t, b2.After(s, w), "After is refused once submitted")
		assert.Equal(t, -1, b2.ReadAt(make([]byte, 1), 0), "adding is refused once submitted")

		// A batch not tied to a file, and errors found before the start.
		nb, err := NewBatch(p)
		require.NoError(t, err)
		out := make([]byte, 5)
		nb.ReadAtOn(f, out, 0)
		nb.ReadAtOn(nil, out, 0)
		nb.WriteAtOn(f, out, -1)
		require.Error(t, nb.After(0, 1))
		require.NoError(t, nb.Submit())
		res, _ = nb.Wait()
		assert.NoError(t, res[0].Err)
		assert.Error(t, res[1].Err)
		assert.Error(t, res[2].Err)

		// Closed file.
		c, err := OpenWith(path, opts(p))
		require.NoError(t, err)
		cb := c.Batch()
		cb.ReadAt(make([]byte, 4), 0)
		require.NoError(t, c.Close())
		require.NoError(t, cb.Submit())
		res, _ = cb.Wait()
		assert.True(t, errors.Is(res[0].Err, ErrClosed))
	})
}

func TestBatchCancel(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		fifo := filepath.Join(t.TempDir(), "fifo")
		require.NoError(t, mkfifo(fifo))
		f, err := OpenFileOptions(fifo, os.O_RDWR, 0, opts(p))
		require.NoError(t, err)
		defer f.Close()
		// Batch reads go through positional ops, which a FIFO refuses at
		// once; what matters is that Cancel and Wait terminate.
		b := f.Batch()
		b.ReadAt(make([]byte, 4), 0)
		require.NoError(t, b.Submit())
		b.Cancel()
		_, _ = b.Wait()
		b.Reset()
	})
}
