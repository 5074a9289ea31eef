package fs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// differential: what fs writes os reads back byte for byte, and the reverse.
func differential(t *testing.T, p *proactor.Proactor) {
	r := rand.New(rand.NewPCG(1, 2))
	data := randBytes(r, 1<<20+123)

	// fs writes, os reads.
	path := filepath.Join(t.TempDir(), "a")
	f, err := OpenFileOptions(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644, opts(p))
	require.NoError(t, err)
	for off := 0; off < len(data); {
		n := min(len(data)-off, 1+r.IntN(100_000))
		m, err := f.WriteAt(data[off:off+n], int64(off))
		require.NoError(t, err)
		require.Equal(t, n, m)
		off += n
	}
	require.NoError(t, f.Sync())
	require.NoError(t, f.Close())
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	require.True(t, bytes.Equal(data, got), "os read back what fs wrote")

	// os writes, fs reads (ReadAt, Read, ReadV).
	rev := randBytes(r, 3<<19+7)
	require.NoError(t, os.WriteFile(path, rev, 0o644))
	f, err = OpenWith(path, opts(p))
	require.NoError(t, err)
	defer f.Close()
	buf := make([]byte, len(rev))
	n, err := f.ReadAt(buf, 0)
	require.NoError(t, err)
	require.Equal(t, len(rev), n)
	require.True(t, bytes.Equal(rev, buf))
	all, err := io.ReadAll(f)
	require.NoError(t, err)
	require.True(t, bytes.Equal(rev, all))
	a, b := make([]byte, 1000), make([]byte, 5000)
	n, err = f.ReadV([][]byte{a, nil, b}, 77)
	require.NoError(t, err)
	require.Equal(t, 6000, n)
	require.Equal(t, rev[77:1077], a)
	require.Equal(t, rev[1077:6077], b)
	st, err := f.Stat()
	require.NoError(t, err)
	require.Equal(t, int64(len(rev)), st.Size())
	require.Equal(t, filepath.Base(path), st.Name())
	require.False(t, st.IsDir())
	ost, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, ost.Mode(), st.Mode())
	require.True(t, ost.ModTime().Equal(st.ModTime()))
}

func TestDifferential(t *testing.T) { eachDriver(t, differential) }

// TestModel runs interleaved WriteAt/WriteV, ReadAt/ReadV, Truncate, Sync
// and Datasync against an in-memory model, with fixed seeds.
func TestModel(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		seeds := []uint64{1, 2}
		if simulated(p) {
			seeds = seeds[:1] // the same ops: one seed is enough to show the fallbacks agree
		}
		for _, seed := range seeds {
			r := rand.New(rand.NewPCG(seed, 99))
			path := filepath.Join(t.TempDir(), "m")
			f, err := OpenFileOptions(path, os.O_RDWR|os.O_CREATE, 0o600, opts(p))
			require.NoError(t, err)
			var model []byte
			const maxSize = 256 << 10
			for step := 0; step < 2000; step++ {
				switch k := r.IntN(10); {
				case k < 4:
					off, n := r.IntN(maxSize), 1+r.IntN(9000)
					data := randBytes(r, n)
					var m int
					if r.IntN(4) == 0 {
						cut := r.IntN(n + 1)
						m, err = f.WriteV([][]byte{data[:cut], data[cut:]}, int64(off))
					} else {
						m, err = f.WriteAt(data, int64(off))
					}
					require.NoError(t, err)
					require.Equal(t, n, m)
					if off+n > len(model) {
						model = append(model, make([]byte, off+n-len(model))...)
					}
					copy(model[off:], data)
				case k < 8:
					off, n := r.IntN(maxSize+1000), r.IntN(9000)
					buf := make([]byte, n)
					var m int
					if r.IntN(4) == 0 {
						cut := r.IntN(n + 1)
						m, err = f.ReadV([][]byte{buf[:cut], buf[cut:]}, int64(off))
					} else {
						m, err = f.ReadAt(buf, int64(off))
					}
					want := 0
					if off < len(model) {
						want = min(n, len(model)-off)
					}
					require.Equal(t, want, m, "step %d read %d at %d", step, n, off)
					if want < n {
						require.ErrorIs(t, err, io.EOF)
					} else {
						require.NoError(t, err)
					}
					if want > 0 {
						require.True(t, bytes.Equal(model[off:off+want], buf[:m]), "step %d", step)
					}
				case k == 8:
					size := r.IntN(maxSize)
					require.NoError(t, f.Truncate(int64(size)))
					if size < len(model) {
						model = model[:size]
					} else {
						model = append(model, make([]byte, size-len(model))...)
					}
				default:
					if r.IntN(2) == 0 {
						require.NoError(t, f.Sync())
					} else {
						require.NoError(t, f.Datasync())
					}
				}
			}
			st, err := f.Stat()
			require.NoError(t, err)
			require.Equal(t, int64(len(model)), st.Size())
			require.NoError(t, f.Close())
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.True(t, bytes.Equal(model, got), "seed %d: file differs from the model", seed)
		}
	})
}

func TestShortReadsAndEOF(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		path := tempFile(t, "", []byte("0123456789"))
		f, err := OpenWith(path, opts(p))
		require.NoError(t, err)
		defer f.Close()
		buf := make([]byte, 20)
		n, err := f.ReadAt(buf, 0)
		assert.Equal(t, 10, n)
		assert.Equal(t, io.EOF, err, "io.ReaderAt: a short read at the end is io.EOF, unwrapped")
		n, err = f.ReadAt(buf, 4)
		assert.Equal(t, 6, n)
		assert.Equal(t, io.EOF, err)
		n, err = f.ReadAt(buf, 10)
		assert.Equal(t, 0, n)
		assert.Equal(t, io.EOF, err)
		n, err = f.ReadAt(buf, 1000)
		assert.Equal(t, 0, n)
		assert.Equal(t, io.EOF, err)
		n, err = f.ReadAt(buf[:10], 0)
		assert.Equal(t, 10, n)
		assert.NoError(t, err, "exactly to the end is not EOF")
		n, err = f.ReadAt(nil, 5)
		assert.Equal(t, 0, n)
		assert.NoError(t, err)
		_, err = f.ReadAt(buf, -1)
		assert.Error(t, err)

		// Read and Seek.
		n, err = f.Read(buf[:4])
		require.NoError(t, err)
		assert.Equal(t, "0123", string(buf[:n]))
		pos, err := f.Seek(-2, io.SeekEnd)
		require.NoError(t, err)
		assert.Equal(t, int64(8), pos)
		n, err = f.Read(buf)
		require.NoError(t, err)
		assert.Equal(t, "89", string(buf[:n]))
		n, err = f.Read(buf)
		assert.Equal(t, 0, n)
		assert.Equal(t, io.EOF, err)
		_, err = f.Seek(-100, io.SeekCurrent)
		assert.ErrorIs(t, err, unix.EINVAL)
		_, err = f.Seek(0, 7)
		assert.Error(t, err)
	})
}

func TestWritePositionAndAppend(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		path := filepath.Join(t.TempDir(), "w")
		f, err := CreateWith(path, opts(p))
		require.NoError(t, err)
		_, err = f.Write([]byte("hello "))
		require.NoError(t, err)
		_, err = f.Write([]byte("world"))
		require.NoError(t, err)
		n, err := f.WriteV([][]byte{[]byte("AB"), []byte("CD")}, 2)
		require.NoError(t, err)
		require.Equal(t, 4, n)
		require.NoError(t, f.Allocate(0, 1<<16))
		require.NoError(t, f.Advise(0, 0, unix.FADV_SEQUENTIAL))
		require.NoError(t, f.Advise(0, 1<<33, unix.FADV_NORMAL))
		require.NoError(t, f.Truncate(11))
		require.NoError(t, f.Close())
		got, _ := os.ReadFile(path)
		require.Equal(t, "heABCDworld", string(got))

		a, err := OpenFileOptions(path, os.O_WRONLY|os.O_APPEND, 0, opts(p))
		require.NoError(t, err)
		_, err = a.Write([]byte("!"))
		require.NoError(t, err)
		_, err = a.WriteAt([]byte("x"), 0)
		require.Error(t, err, "WriteAt in append mode is refused, as os does")
		pos, err := a.Seek(0, io.SeekCurrent)
		require.NoError(t, err)
		require.Equal(t, int64(12), pos)
		require.NoError(t, a.Close())
		got, _ = os.ReadFile(path)
		require.Equal(t, "heABCDworld!", string(got))
	})
}

func TestConcurrentRead(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		data := randBytes(rand.New(rand.NewPCG(5, 5)), 1<<16)
		f, err := OpenWith(tempFile(t, "", data), opts(p))
		require.NoError(t, err)
		defer f.Close()
		var mu sync.Mutex
		var got []byte
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				buf := make([]byte, 1000)
				for {
					mu.Lock() // only to collect in order; Read itself is safe
					n, err := f.Read(buf)
					got = append(got, buf[:n]...)
					mu.Unlock()
					if err != nil {
						return
					}
				}
			})
		}
		wg.Wait()
		require.True(t, bytes.Equal(data, got))
	})
}

func TestErrors(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		_, err := OpenWith(filepath.Join(t.TempDir(), "missing"), opts(p))
		var pe *PathError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "open", pe.Op)
		assert.ErrorIs(t, err, ErrNotExist)
		assert.ErrorIs(t, err, os.ErrNotExist)
		assert.ErrorIs(t, err, unix.ENOENT)

		_, err = OpenWith("bad\x00name", opts(p))
		assert.ErrorIs(t, err, unix.EINVAL)

		path := tempFile(t, "", []byte("x"))
		_, err = OpenFileOptions(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600, opts(p))
		assert.ErrorIs(t, err, ErrExist)

		f, err := OpenWith(path, opts(p))
		require.NoError(t, err)
		_, err = f.WriteAt([]byte("y"), 0)
		assert.ErrorIs(t, err, unix.EBADF, "written through a read-only descriptor")
		require.NoError(t, f.Close())
		err = f.Close()
		assert.ErrorIs(t, err, ErrClosed)
		assert.ErrorIs(t, err, os.ErrClosed)
		_, err = f.ReadAt(make([]byte, 1), 0)
		assert.ErrorIs(t, err, ErrClosed)
		_, err = f.Read(make([]byte, 1))
		assert.ErrorIs(t, err, ErrClosed)
		assert.ErrorIs(t, f.Sync(), ErrClosed)
		_, err = f.Stat()
		assert.ErrorIs(t, err, ErrClosed)
	})
}

// TestProactorClosed: a File whose proactor has closed answers like a
// closed *os.File (os.ErrClosed), and the cause stays visible
// (proactor.ErrClosed), on both drivers.
func TestProactorClosed(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			o := d.opts
			o.Logger = quiet
			p, err := proactor.New(o)
			if errors.Is(err, proactor.ErrUnavailable) {
				t.Skipf("io_uring unavailable: %v", err)
			}
			require.NoError(t, err)
			f, err := OpenFileOptions(filepath.Join(t.TempDir(), "f"), os.O_RDWR|os.O_CREATE, 0o600, opts(p))
			require.NoError(t, err)
			require.NoError(t, p.Close())
			for name, err := range map[string]error{
				"Sync":     f.Sync(),
				"Truncate": f.Truncate(0),
			} {
				assert.ErrorIs(t, err, os.ErrClosed, name)
				assert.ErrorIs(t, err, proactor.ErrClosed, name)
			}
			assert.NoError(t, f.Close(), "the descriptor is still the File's to close")
		})
	}
}

// TestErrPermission: root bypasses permission bits, but not an immutable
// file (chattr +i), which refuses to be opened for writing with EPERM.
func TestErrPermission(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		path := tempFile(t, "", []byte("x"))
		if os.Geteuid() != 0 {
			require.NoError(t, os.Chmod(path, 0o400))
		} else {
			fd, err := unix.Open(path, unix.O_RDONLY, 0)
			require.NoError(t, err)
			defer unix.Close(fd)
			flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
			if err == nil {
				err = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|fsImmutableFl))
			}
			if err != nil {
				t.Skipf("running as root and cannot make %s immutable (%v), so nothing would deny permission", path, err)
			}
			defer unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags))
		}
		_, err := OpenFileOptions(path, os.O_WRONLY, 0, opts(p))
		assert.ErrorIs(t, err, ErrPermission)
		assert.ErrorIs(t, err, os.ErrPermission)
	})
}

// TestCloseWithReadsInFlight closes files while reads are in flight: on a
// FIFO (reads that would wait forever) and on a regular file (reads that
// race with Close). Each read ends with data, ErrClosed or a cancel error;
// none hangs.
func TestCloseWithReadsInFlight(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		fifo := filepath.Join(t.TempDir(), "fifo")
		require.NoError(t, unix.Mkfifo(fifo, 0o600))
		// O_RDWR so the open does not wait for a writer.
		f, err := OpenFileOptions(fifo, os.O_RDWR, 0, opts(p))
		require.NoError(t, err)
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				_, err := f.Read(make([]byte, 10))
				errs <- err
			}()
		}
		time.Sleep(50 * time.Millisecond) // let them park
		closed := make(chan error, 1)
		go func() { closed <- f.Close() }()
		select {
		case err := <-closed:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Close hung with FIFO reads in flight")
		}
		for range 4 {
			select {
			case err := <-errs:
				assert.ErrorIs(t, err, ErrClosed)
			case <-time.After(10 * time.Second):
				t.Fatal("a read hung after Close")
			}
		}

		data := randBytes(rand.New(rand.NewPCG(1, 1)), 1<<20)
		g, err := OpenFileOptions(tempFile(t, "", data), os.O_RDONLY, 0, OpenOptions{Proactor: p, NoInline: true})
		require.NoError(t, err)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				buf := make([]byte, 4096)
				for j := 0; ; j++ {
					off := int64((i*97 + j*4096) % (1<<20 - 4096))
					_, err := g.ReadAt(buf, off)
					if err != nil {
						if !errors.Is(err, ErrClosed) && !errors.Is(err, unix.ECANCELED) {
							t.Errorf("read: %v", err)
						}
						return
					}
				}
			})
		}
		time.Sleep(20 * time.Millisecond)
		require.NoError(t, g.Close())
		wg.Wait()
	})
}

func TestContextCancel(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		fifo := filepath.Join(t.TempDir(), "fifo")
		require.NoError(t, unix.Mkfifo(fifo, 0o600))
		f, err := OpenFileOptions(fifo, os.O_RDWR, 0, opts(p))
		require.NoError(t, err)
		defer f.Close()

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = f.ReadContext(ctx, make([]byte, 8))
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), 5*time.Second)

		ctx2, cancel2 := context.WithCancel(context.Background())
		go func() { time.Sleep(20 * time.Millisecond); cancel2() }()
		_, err = f.ReadContext(ctx2, make([]byte, 8))
		assert.ErrorIs(t, err, context.Canceled)

		// The FIFO still works afterwards.
		_, err = f.Write([]byte("ok"))
		require.NoError(t, err)
		buf := make([]byte, 8)
		n, err := f.Read(buf)
		require.NoError(t, err)
		assert.Equal(t, "ok", string(buf[:n]))

		// An already-cancelled context does nothing on a regular file.
		g, err := OpenWith(tempFile(t, "", []byte("abc")), opts(p))
		require.NoError(t, err)
		defer g.Close()
		done, cancel3 := context.WithCancel(context.Background())
		cancel3()
		_, err = g.ReadAtContext(done, make([]byte, 3), 0)
		assert.ErrorIs(t, err, context.Canceled)
		_, err = f.ReadAt(make([]byte, 1), 0)
		assert.ErrorIs(t, err, unix.ESPIPE)
	})
}

// fsImmutableFl is FS_IMMUTABLE_FL from linux/fs.h (x/sys/unix lacks it).
const fsImmutableFl = 0x10

func mkfifo(path string) error { return unix.Mkfifo(path, 0o600) }

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }
