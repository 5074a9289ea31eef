package proactor

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// fixedFile creates an empty file for the fixed-buffer tests, in /dev/shm
// where there is one (tmpfs, as the benchmark wants) and the test's
// temporary directory otherwise.
func fixedFile(tb testing.TB) *os.File {
	tb.Helper()
	return fileIn(tb, "/dev/shm")
}

// fileIn creates an empty file in a new directory under dir ("" or a
// missing dir: the test's temporary directory).
func fileIn(tb testing.TB, dir string) *os.File {
	tb.Helper()
	where := tb.TempDir()
	if st, err := os.Stat(dir); dir != "" && err == nil && st.IsDir() {
		if d, err := os.MkdirTemp(dir, "ringo-fixed-"); err == nil {
			where = d
			tb.Cleanup(func() { os.RemoveAll(d) })
		}
	}
	f, err := os.Create(filepath.Join(where, "data"))
	require.NoError(tb, err)
	tb.Cleanup(func() { f.Close() })
	return f
}

// expectRegistered checks that registrations reach the kernel exactly on
// io_uring, so that the emulation cannot stand in for it unnoticed.
func expectRegistered(t *testing.T, p *Proactor, got bool) {
	t.Helper()
	require.Equal(t, p.Backend() == Uring, got, "backend %s", p.Backend())
}

func TestFixedRoundTrip(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		f := fixedFile(t)
		fd := int(f.Fd())
		bufs, err := l.RegisterBuffers(4096, 4)
		require.NoError(t, err)
		expectRegistered(t, p, bufs.Registered())
		require.Equal(t, 4096, bufs.Size())
		require.Equal(t, 4, bufs.Len())
		files, err := l.RegisterFiles([]int{-1, fd})
		require.NoError(t, err)
		expectRegistered(t, p, files.Registered())
		require.Equal(t, 2, files.Len())

		for i := range bufs.Buf(0) {
			bufs.Buf(0)[i] = byte(i * 7)
		}
		for i := range bufs.Buf(1) {
			bufs.Buf(1)[i] = byte(i*3 + 1)
		}
		// Buffer 0 by fd at 8192, buffer 1 by file index right after it.
		require.EqualValues(t, 4096, do(t, l, &WriteFixed{Fd: fd, Bufs: bufs, Buf: 0, Off: 8192}))
		require.EqualValues(t, 4096, do(t, l, &WriteFixed{Fd: 1, Files: files, Bufs: bufs, Buf: 1, Off: 12288}))
		st, err := f.Stat()
		require.NoError(t, err)
		require.EqualValues(t, 16384, st.Size())

		// Read them back crosswise, into buffers 2 and 3.
		require.EqualValues(t, 4096, do(t, l, &ReadFixed{Fd: 1, Files: files, Bufs: bufs, Buf: 2, Off: 8192}))
		require.Equal(t, bufs.Buf(0), bufs.Buf(2))
		require.EqualValues(t, 100, do(t, l, &ReadFixed{Fd: fd, Bufs: bufs, Buf: 3, Off: 12288, N: 100}))
		require.Equal(t, bufs.Buf(1)[:100], bufs.Buf(3)[:100])

		// What lies below 8192 is a hole: zeros.
		require.EqualValues(t, 4096, do(t, l, &ReadFixed{Fd: fd, Bufs: bufs, Buf: 3, Off: 0}))
		require.Equal(t, make([]byte, 4096), bufs.Buf(3))

		// Short read at end of file, then 0 past it.
		require.EqualValues(t, 96, do(t, l, &ReadFixed{Fd: 1, Files: files, Bufs: bufs, Buf: 3, Off: 16384 - 96}))
		require.Equal(t, bufs.Buf(1)[4096-96:], bufs.Buf(3)[:96])
		require.EqualValues(t, 0, do(t, l, &ReadFixed{Fd: fd, Bufs: bufs, Buf: 3, Off: 1 << 20}))

		// Plain memory through the file table.
		msg := []byte("indexed write")
		require.EqualValues(t, len(msg), do(t, l, &WriteIndexed{Files: files, Index: 1, Buf: msg, Off: 3}))
		got := make([]byte, 64)
		require.EqualValues(t, 64, do(t, l, &ReadIndexed{Files: files, Index: 1, Buf: got, Off: 0}))
		require.Equal(t, append(make([]byte, 3), msg...), got[:3+len(msg)])
		back := make([]byte, len(msg))
		_, err = f.ReadAt(back, 3)
		require.NoError(t, err)
		require.Equal(t, msg, back)

		// The same op value runs again (ops are reusable).
		op := &ReadFixed{Fd: 1, Files: files, Bufs: bufs, Buf: 2, Off: 3, N: len(msg)}
		for range 3 {
			require.EqualValues(t, len(msg), do(t, l, op))
			require.Equal(t, msg, bufs.Buf(2)[:len(msg)])
		}

		require.NoError(t, files.Unregister())
		require.NoError(t, bufs.Unregister())
	})
}

func TestFixedBadInput(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		f := fixedFile(t)
		fd := int(f.Fd())
		_, err := f.Write(bytes.Repeat([]byte("x"), 100))
		require.NoError(t, err)

		// Registration errors.
		for _, c := range [][2]int{{0, 1}, {1, 0}, {-1, 4}, {4096, maxFixedBuffers + 1}, {maxFixedBufSize + 1, 1}} {
			_, err := l.RegisterBuffers(c[0], c[1])
			require.ErrorIs(t, err, unix.EINVAL, "RegisterBuffers(%d, %d)", c[0], c[1])
		}
		_, err = l.RegisterFiles(nil)
		require.ErrorIs(t, err, unix.EINVAL)
		_, err = l.RegisterFiles([]int{fd, -2})
		require.ErrorIs(t, err, unix.EBADF)
		closed, err := os.Open(os.DevNull)
		require.NoError(t, err)
		cfd := int(closed.Fd())
		require.NoError(t, closed.Close())
		_, err = l.RegisterFiles([]int{fd, cfd})
		require.ErrorIs(t, err, unix.EBADF)

		// Ops before any registration.
		require.EqualValues(t, -int32(unix.EINVAL), do(t, l, &ReadFixed{Fd: fd, Buf: 0}))
		require.EqualValues(t, -int32(unix.EBADF), do(t, l, &ReadIndexed{Index: 0, Buf: make([]byte, 8)}))

		bufs, err := l.RegisterBuffers(64, 2)
		require.NoError(t, err)
		files, err := l.RegisterFiles([]int{fd, -1})
		require.NoError(t, err)

		// Register twice: EBUSY, and the first registration still works.
		_, err = l.RegisterBuffers(64, 2)
		require.ErrorIs(t, err, unix.EBUSY)
		_, err = l.RegisterFiles([]int{fd})
		require.ErrorIs(t, err, unix.EBUSY)
		require.EqualValues(t, 64, do(t, l, &ReadFixed{Fd: 0, Files: files, Bufs: bufs, Buf: 1}))

		// Bad buffers: -EINVAL; bad files: -EBADF.
		for _, op := range []Op{
			&ReadFixed{Fd: fd, Bufs: bufs, Buf: -1},
			&ReadFixed{Fd: fd, Bufs: bufs, Buf: 2},
			&ReadFixed{Fd: fd, Bufs: bufs, Buf: 0, N: 65},
			&ReadFixed{Fd: fd, Bufs: bufs, Buf: 0, N: -1},
			&WriteFixed{Fd: fd, Bufs: bufs, Buf: 7},
			&WriteFixed{Fd: fd, Buf: 0},
		} {
			require.EqualValues(t, -int32(unix.EINVAL), do(t, l, op), "%#v", op)
		}
		for _, op := range []Op{
			&ReadFixed{Fd: 1, Files: files, Bufs: bufs, Buf: 0}, // empty slot
			&ReadFixed{Fd: 2, Files: files, Bufs: bufs, Buf: 0},
			&WriteFixed{Fd: -1, Files: files, Bufs: bufs, Buf: 0},
			&ReadIndexed{Files: files, Index: 5, Buf: make([]byte, 8)},
			&WriteIndexed{Files: files, Index: 1, Buf: make([]byte, 8)},
		} {
			require.EqualValues(t, -int32(unix.EBADF), do(t, l, op), "%#v", op)
		}

		// After Unregister: the ops fail the same way, Unregister again is
		// a no-op, and registering again works.
		require.NoError(t, files.Unregister())
		require.NoError(t, files.Unregister())
		require.EqualValues(t, -int32(unix.EBADF), do(t, l, &ReadFixed{Fd: 0, Files: files, Bufs: bufs, Buf: 0}))
		require.NoError(t, bufs.Unregister())
		require.NoError(t, bufs.Unregister())
		require.EqualValues(t, -int32(unix.EINVAL), do(t, l, &ReadFixed{Fd: fd, Bufs: bufs, Buf: 0}))
		require.Nil(t, bufs.Buf(2))

		bufs2, err := l.RegisterBuffers(32, 1)
		require.NoError(t, err)
		require.EqualValues(t, -int32(unix.EINVAL), do(t, l, &ReadFixed{Fd: fd, Bufs: bufs, Buf: 0}), "stale FixedBuffers")
		require.EqualValues(t, 32, do(t, l, &ReadFixed{Fd: fd, Bufs: bufs2, Buf: 0}))
		require.Equal(t, bytes.Repeat([]byte("x"), 32), bufs2.Buf(0))
		require.NoError(t, bufs2.Unregister())
	})
}

// TestFixedUnregisterInFlight: Unregister refuses (EBUSY) while an op that
// uses the registration is in flight, and succeeds after its completion.
// The op is a read of an empty pipe, which completes when data arrives.
func TestFixedUnregisterInFlight(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		var pfd [2]int
		require.NoError(t, unix.Pipe2(pfd[:], unix.O_CLOEXEC))
		defer unix.Close(pfd[0])
		defer unix.Close(pfd[1])
		bufs, err := l.RegisterBuffers(64, 1)
		require.NoError(t, err)
		files, err := l.RegisterFiles([]int{pfd[0]})
		require.NoError(t, err)

		done := make(chan int32, 1)
		require.NoError(t, l.Submit(&ReadFixed{Fd: 0, Files: files, Bufs: bufs, Buf: 0, Off: -1}, func(res int32, _ uint32) { done <- res }))
		// The op is in flight once a Post queued after it has run.
		require.NoError(t, l.inLoop(func() error { return nil }))
		require.ErrorIs(t, bufs.Unregister(), unix.EBUSY)
		require.ErrorIs(t, files.Unregister(), unix.EBUSY)
		select {
		case res := <-done:
			t.Fatalf("read of an empty pipe completed: %d", res)
		default:
		}

		_, err = unix.Write(pfd[1], []byte("wake"))
		require.NoError(t, err)
		select {
		case res := <-done:
			require.EqualValues(t, 4, res)
		case <-time.After(10 * time.Second):
			t.Fatal("read did not complete")
		}
		require.Equal(t, "wake", string(bufs.Buf(0)[:4]))
		require.NoError(t, files.Unregister())
		require.NoError(t, bufs.Unregister())
	})
}

// TestFixedClose: Close with registrations (and ops that used them)
// releases them; Unregister afterwards is a no-op, and a later
// registration fails with ErrClosed. eachDriver checks for leaks.
func TestFixedClose(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *Proactor) {
		l := p.Loop(0)
		f := fixedFile(t)
		bufs, err := l.RegisterBuffers(4096, 8)
		require.NoError(t, err)
		files, err := l.RegisterFiles([]int{int(f.Fd())})
		require.NoError(t, err)
		copy(bufs.Buf(5), "closing")
		require.EqualValues(t, 4096, do(t, l, &WriteFixed{Fd: 0, Files: files, Bufs: bufs, Buf: 5}))
		// Ops queued right before Close: each completes, with its result
		// or -ECANCELED.
		results := make(chan int32, 8)
		for i := range 8 {
			require.NoError(t, l.Submit(&ReadFixed{Fd: 0, Files: files, Bufs: bufs, Buf: i}, func(res int32, _ uint32) { results <- res }))
		}
		require.NoError(t, p.Close())
		for range 8 {
			res := <-results
			require.True(t, res == 4096 || res == -int32(unix.ECANCELED), "res %d", res)
		}
		require.NoError(t, bufs.Unregister())
		require.NoError(t, files.Unregister())
		_, err = l.RegisterBuffers(64, 1)
		require.ErrorIs(t, err, ErrClosed)
		_, err = l.RegisterFiles([]int{int(f.Fd())})
		require.ErrorIs(t, err, ErrClosed)
	})
}

// The read benchmarks: 4 KiB preads of a file, 32 in flight, each
// completion's handler submitting the next read from the loop goroutine.
// BenchmarkReadFixed reads into registered buffers (READ_FIXED, and with
// /files through a registered file too), BenchmarkRead into Go heap
// buffers (READ). shm is a tmpfs file in /dev/shm; tempdir is one in the
// test's temporary directory (the page cache of whatever file system that
// is: on this machine, ext4). The two differ on io_uring: 6.18 completes
// most tmpfs reads in io-wq, not inline. Run pinned:
//
//	taskset -c 1 go test -run '^$' -bench 'Read(Fixed)?$' ./proactor/
const (
	benchReadSize  = 4096
	benchReadQD    = 32
	benchReadBytes = 16 << 20
)

var benchReadFiles = []struct{ name, dir string }{{"shm", "/dev/shm"}, {"tempdir", ""}}

func BenchmarkRead(b *testing.B) {
	for _, d := range []string{"uring", "epoll"} {
		for _, f := range benchReadFiles {
			b.Run(d+"/"+f.name, func(b *testing.B) { benchRead(b, d, f.dir, false, false) })
		}
	}
}

func BenchmarkReadFixed(b *testing.B) {
	for _, d := range []string{"uring", "epoll"} {
		for _, f := range benchReadFiles {
			b.Run(d+"/"+f.name, func(b *testing.B) { benchRead(b, d, f.dir, true, false) })
			b.Run(d+"/"+f.name+"/files", func(b *testing.B) { benchRead(b, d, f.dir, true, true) })
		}
	}
}

func benchRead(b *testing.B, driver, dir string, fixed, indexed bool) {
	opts := Options{Backend: Uring}
	if driver == "epoll" {
		opts.Backend = Epoll
	}
	p := benchProactor(b, opts)
	l := p.Loop(0)
	f := fileIn(b, dir)
	_, err := f.Write(bytes.Repeat([]byte("0123456789abcdef"), benchReadBytes/16))
	require.NoError(b, err)
	fd := int(f.Fd())

	ops := make([]Op, benchReadQD)
	setOff := make([]func(off int64), benchReadQD)
	if fixed {
		bufs, err := l.RegisterBuffers(benchReadSize, benchReadQD)
		require.NoError(b, err)
		b.Cleanup(func() { bufs.Unregister() })
		var files *FixedFiles
		if indexed {
			files, err = l.RegisterFiles([]int{fd})
			require.NoError(b, err)
			b.Cleanup(func() { files.Unregister() })
			fd = 0
		}
		for i := range ops {
			op := &ReadFixed{Fd: fd, Files: files, Bufs: bufs, Buf: i}
			ops[i], setOff[i] = op, func(off int64) { op.Off = off }
		}
	} else {
		for i := range ops {
			op := &Read{Fd: fd, Buf: make([]byte, benchReadSize)}
			ops[i], setOff[i] = op, func(off int64) { op.Off = off }
		}
	}

	var issued, completed int
	done := make(chan error, 1)
	handlers := make([]Handler, benchReadQD)
	submit := func(i int) {
		setOff[i](int64(issued*benchReadSize) % benchReadBytes)
		issued++
		if _, err := l.SubmitInLoop(ops[i], handlers[i]); err != nil {
			done <- err
		}
	}
	for i := range handlers {
		handlers[i] = func(res int32, _ uint32) {
			if res != benchReadSize {
				done <- unix.Errno(-res)
				return
			}
			completed++
			if completed == b.N {
				done <- nil
				return
			}
			if issued < b.N {
				submit(i)
			}
		}
	}
	b.SetBytes(benchReadSize)
	b.ResetTimer()
	require.NoError(b, l.Post(func() {
		for i := range min(benchReadQD, b.N) {
			submit(i)
		}
	}))
	require.NoError(b, <-done)
	b.StopTimer()
}

// TestFixedOtherLoop: an op naming loop 0's registrations, submitted to
// loop 1 (which has registrations of its own at the same indexes), still
// reads loop 0's file into loop 0's buffer, on every driver.
func TestFixedOtherLoop(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			checkLeaks(t)
			opts := d.opts
			opts.Loops = 2
			p := newProactor(t, opts)
			l0, l1 := p.Loop(0), p.Loop(1)
			f0, f1 := fixedFile(t), fixedFile(t)
			_, err := f0.WriteString("file zero")
			require.NoError(t, err)
			_, err = f1.WriteString("FILE ONE!")
			require.NoError(t, err)
			bufs0, err := l0.RegisterBuffers(16, 1)
			require.NoError(t, err)
			files0, err := l0.RegisterFiles([]int{int(f0.Fd())})
			require.NoError(t, err)
			bufs1, err := l1.RegisterBuffers(16, 1)
			require.NoError(t, err)
			files1, err := l1.RegisterFiles([]int{int(f1.Fd())})
			require.NoError(t, err)

			require.EqualValues(t, 9, do(t, l1, &ReadFixed{Fd: 0, Files: files0, Bufs: bufs0, Buf: 0}))
			require.Equal(t, "file zero", string(bufs0.Buf(0)[:9]))
			require.Equal(t, make([]byte, 16), bufs1.Buf(0), "loop 1's buffer was written")
			got := make([]byte, 16)
			require.EqualValues(t, 9, do(t, l1, &ReadIndexed{Files: files0, Index: 0, Buf: got}))
			require.Equal(t, "file zero", string(got[:9]))
			copy(bufs0.Buf(0), "written by one!!")
			require.EqualValues(t, 16, do(t, l1, &WriteFixed{Fd: 0, Files: files0, Bufs: bufs0, Buf: 0}))
			back := make([]byte, 16)
			_, err = f0.ReadAt(back, 0)
			require.NoError(t, err)
			require.Equal(t, "written by one!!", string(back))
			// Loop 1's own registrations are untouched and still work.
			require.EqualValues(t, 9, do(t, l1, &ReadFixed{Fd: 0, Files: files1, Bufs: bufs1, Buf: 0}))
			require.Equal(t, "FILE ONE!", string(bufs1.Buf(0)[:9]))

			// Unregister sees an op on loop 1 that uses loop 0's buffers.
			var pfd [2]int
			require.NoError(t, unix.Pipe2(pfd[:], unix.O_CLOEXEC))
			defer unix.Close(pfd[0])
			defer unix.Close(pfd[1])
			done := make(chan int32, 1)
			require.NoError(t, l1.Submit(&ReadFixed{Fd: pfd[0], Bufs: bufs0, Buf: 0, Off: -1}, func(res int32, _ uint32) { done <- res }))
			require.NoError(t, l1.inLoop(func() error { return nil }))
			require.ErrorIs(t, bufs0.Unregister(), unix.EBUSY)
			require.EqualValues(t, 9, do(t, l0, &ReadFixed{Fd: 0, Files: files0, Bufs: bufs0, Buf: 0, N: 9}), "still registered after EBUSY")
			_, err = unix.Write(pfd[1], []byte("pipe"))
			require.NoError(t, err)
			require.EqualValues(t, 4, <-done)
			require.Equal(t, "pipe", string(bufs0.Buf(0)[:4]))

			// Once loop 0 is gone, its registrations are refused elsewhere.
			l0.close()
			require.EqualValues(t, -int32(unix.EINVAL), do(t, l1, &ReadFixed{Fd: int(f1.Fd()), Bufs: bufs0, Buf: 0}))
			require.EqualValues(t, -int32(unix.EBADF), do(t, l1, &ReadIndexed{Files: files0, Index: 0, Buf: got}))
		})
	}
}
