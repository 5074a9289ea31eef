package fs

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// TestCloseDuringSendFile: Close does not wait behind a SendFile to a peer
// that stopped reading; the SendFile ends with ErrClosed. Its ops run on
// the socket, which Close's cancel by fd did not reach, so Close hung.
func TestCloseDuringSendFile(t *testing.T) {
	run(t, drivers, func(t *testing.T, p *proactor.Proactor) {
		// Without a context that can end, and with one (then the
		// send's context is derived from both).
		cancellable, cancel := context.WithCancel(context.Background())
		defer cancel()
		for _, ctx := range []context.Context{context.Background(), cancellable} {
			path := tempFile(t, "", make([]byte, 8<<20))
			f, err := OpenWith(path, opts(p))
			require.NoError(t, err)
			sock, c := tcpPair(t, 4096) // peer never reads
			type res struct {
				n   int64
				err error
			}
			sent := make(chan res, 1)
			go func() {
				n, err := SendFile(ctx, nil, sock, f, 0, 8<<20)
				sent <- res{n, err}
			}()
			time.Sleep(300 * time.Millisecond) // socket buffer full, op parked on EPOLLOUT
			closed := make(chan error, 1)
			go func() { closed <- f.Close() }()
			select {
			case err := <-closed:
				assert.NoError(t, err)
				r := <-sent
				assert.ErrorIs(t, r.err, ErrClosed)
			case <-time.After(3 * time.Second):
				c.Close() // unblock: peer goes away
				unix.Shutdown(sock, unix.SHUT_RDWR)
				<-closed
				r := <-sent
				t.Errorf("Close blocked >3s behind an in-flight SendFile (SendFile ended with n=%d err=%v)", r.n, r.err)
			}
		}
	})
}

// TestNewFilePosition: NewFile goes on from the descriptor's offset, as
// os.NewFile does; it used to start again at 0.
func TestNewFilePosition(t *testing.T) {
	run(t, drivers, func(t *testing.T, p *proactor.Proactor) {
		path := tempFile(t, "", []byte("0123456789"))
		fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
		require.NoError(t, err)
		_, err = unix.Seek(fd, 6, io.SeekStart)
		require.NoError(t, err)
		fd2, err := unix.Dup(fd)
		require.NoError(t, err)
		of := os.NewFile(uintptr(fd2), path)
		defer of.Close()
		ob := make([]byte, 2)
		_, err = of.Read(ob)
		require.NoError(t, err)
		_, err = unix.Seek(fd, 6, io.SeekStart)
		require.NoError(t, err)

		f, err := NewFile(fd, path, -1, opts(p))
		require.NoError(t, err)
		defer f.Close()
		b := make([]byte, 2)
		_, err = f.Read(b)
		require.NoError(t, err)
		assert.Equal(t, string(ob), string(b), "os.NewFile reads %q at the fd's offset, fs.NewFile reads %q", ob, b)
		pos, _ := f.Seek(0, io.SeekCurrent)
		assert.Equal(t, int64(8), pos)
	})
}

// TestSeekPipe: Seek on a pipe fails with ESPIPE, as os.File's does.
func TestSeekPipe(t *testing.T) {
	run(t, drivers, func(t *testing.T, p *proactor.Proactor) {
		var fds [2]int
		require.NoError(t, unix.Pipe2(fds[:], unix.O_CLOEXEC))
		or := os.NewFile(uintptr(fds[0]), "pipe-r")
		defer or.Close()
		_, oerr := or.Seek(10, io.SeekStart)
		require.ErrorIs(t, oerr, unix.ESPIPE)

		w, err := NewFile(fds[1], "pipe-w", -1, opts(p))
		require.NoError(t, err)
		defer w.Close()
		_, err = w.Seek(10, io.SeekStart)
		assert.ErrorIs(t, err, unix.ESPIPE, "os.File.Seek on a pipe gives %v", oerr)
	})
}

// TestAppendDirect: Write on an O_APPEND|O_DIRECT file works; the offset
// -1 that asks the kernel to append failed the alignment check.
func TestAppendDirect(t *testing.T) {
	dir := directDir(t)
	run(t, drivers, func(t *testing.T, p *proactor.Proactor) {
		path := filepath.Join(dir, "ad")
		require.NoError(t, os.WriteFile(path, nil, 0o644))
		buf, err := AlignedBuffer(4096)
		require.NoError(t, err)
		defer Free(buf)

		of, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|O_DIRECT, 0)
		require.NoError(t, err)
		_, oerr := of.Write(buf)
		require.NoError(t, oerr)
		of.Close()

		f, err := OpenFileOptions(path, os.O_WRONLY|os.O_APPEND|O_DIRECT, 0, opts(p))
		require.NoError(t, err)
		defer f.Close()
		n, err := f.Write(buf)
		assert.NoError(t, err)
		assert.Equal(t, 4096, n)
	})
}

// TestNewFileRestoresBlocking: a blocking descriptor that NewFile made
// non-blocking (to poll it) is blocking again after Close, for the other
// holders of its open file description.
func TestNewFileRestoresBlocking(t *testing.T) {
	run(t, drivers, func(t *testing.T, p *proactor.Proactor) {
		var fds [2]int
		require.NoError(t, unix.Pipe2(fds[:], unix.O_CLOEXEC))
		defer unix.Close(fds[0])
		defer unix.Close(fds[1])
		dup, err := unix.Dup(fds[1]) // as a child's inherited stdout shares the parent's
		require.NoError(t, err)
		f, err := NewFile(dup, "stdout", -1, opts(p))
		require.NoError(t, err)
		_, err = f.Write([]byte("x"))
		require.NoError(t, err)
		require.NoError(t, f.Close())
		fl, err := unix.FcntlInt(uintptr(fds[1]), unix.F_GETFL, 0)
		require.NoError(t, err)
		assert.Zero(t, fl&unix.O_NONBLOCK, "the other holder of the description now sees O_NONBLOCK (EAGAIN on a full pipe)")

		// Two Files on one description (stdout and stderr after 2>&1):
		// the first Close leaves the flag to the other, which would
		// otherwise block in write(2), past its deadline, on epoll.
		d1, err := unix.Dup(fds[1])
		require.NoError(t, err)
		d2, err := unix.Dup(fds[1])
		require.NoError(t, err)
		a, err := NewFile(d1, "stdout", -1, opts(p))
		require.NoError(t, err)
		b, err := NewFile(d2, "stderr", -1, opts(p))
		require.NoError(t, err)
		require.NoError(t, a.Close())
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := b.WriteContext(ctx, make([]byte, 1<<20)) // more than the pipe holds
			done <- err
		}()
		select {
		case err := <-done:
			require.ErrorIs(t, err, context.DeadlineExceeded)
		case <-time.After(3 * time.Second):
			go io.Copy(io.Discard, os.NewFile(uintptr(fds[0]), "r"))
			<-done
			t.Fatal("the other File's write blocked past its deadline: its description lost O_NONBLOCK")
		}
		require.NoError(t, b.Close())
		fl, err = unix.FcntlInt(uintptr(fds[1]), unix.F_GETFL, 0)
		require.NoError(t, err)
		assert.Zero(t, fl&unix.O_NONBLOCK, "after the last Close")
	})
}

// TestNonblockPerDescription: fs restores only what it changed, per open
// file description: a descriptor the caller made non-blocking keeps the
// flag, and one fs made non-blocking is blocking again after its last
// File, even with other Files on other descriptions of the same FIFO.
// fs used to count per inode and got both wrong.
func TestNonblockPerDescription(t *testing.T) {
	run(t, drivers, func(t *testing.T, p *proactor.Proactor) {
		path := filepath.Join(t.TempDir(), "fifo")
		require.NoError(t, unix.Mkfifo(path, 0o600))
		open := func(nonblock bool) int {
			fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
			require.NoError(t, err)
			if !nonblock {
				require.NoError(t, unix.SetNonblock(fd, false))
			}
			return fd
		}
		nonblocking := func(fd int) bool {
			fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
			require.NoError(t, err)
			return fl&unix.O_NONBLOCK != 0
		}
		dup := func(fd int) int {
			d, err := unix.Dup(fd)
			require.NoError(t, err)
			return d
		}

		// The caller's own non-blocking description, beside one fs set.
		a, err := NewFile(open(false), "a", -1, opts(p))
		require.NoError(t, err)
		u := open(true)
		defer unix.Close(u)
		b, err := NewFile(dup(u), "b", -1, opts(p))
		require.NoError(t, err)
		require.NoError(t, a.Close())
		require.NoError(t, b.Close())
		assert.True(t, nonblocking(u), "the caller's own O_NONBLOCK was cleared")

		// A blocking description fs set, beside another File of the
		// same FIFO on a description of its own.
		v := open(false)
		defer unix.Close(v)
		c, err := NewFile(dup(v), "c", -1, opts(p))
		require.NoError(t, err)
		d, err := NewFile(open(false), "d", -1, opts(p))
		require.NoError(t, err)
		require.NoError(t, c.Close())
		require.NoError(t, d.Close())
		assert.False(t, nonblocking(v), "O_NONBLOCK that fs set stayed after every File closed")
	})
}

// TestFdAfterClose: Fd after Close is ^uintptr(0), as os.File's, not a
// number the next open reuses.
func TestFdAfterClose(t *testing.T) {
	run(t, drivers, func(t *testing.T, p *proactor.Proactor) {
		f, err := OpenWith(tempFile(t, "", []byte("x")), opts(p))
		require.NoError(t, err)
		old := f.Fd()
		require.NoError(t, f.Close())
		g, err := os.Open(os.DevNull)
		require.NoError(t, err)
		defer g.Close()
		assert.Equal(t, ^uintptr(0), f.Fd(), "closed File's Fd %d is now %s's", old, g.Name())
	})
}

// TestProactorCloseInFlight: an op in flight when its Proactor closes
// fails with os.ErrClosed, as ops started after the Close do.
func TestProactorCloseInFlight(t *testing.T) {
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			o := d.opts
			o.Logger = quiet
			p, err := proactor.New(o)
			require.NoError(t, err)
			fifo := filepath.Join(t.TempDir(), "fifo")
			require.NoError(t, unix.Mkfifo(fifo, 0o600))
			f, err := OpenFileOptions(fifo, os.O_RDWR, 0, opts(p))
			require.NoError(t, err)
			errc := make(chan error, 1)
			go func() { _, err := f.Read(make([]byte, 8)); errc <- err }()
			time.Sleep(100 * time.Millisecond)
			require.NoError(t, p.Close())
			select {
			case err := <-errc:
				assert.ErrorIs(t, err, os.ErrClosed, "got %v", err)
			case <-time.After(5 * time.Second):
				t.Fatal("read hung after proactor Close")
			}
			require.NoError(t, f.Close())
		})
	}
}

// TestLoopWithoutProactor: OpenOptions with a Loop and no Proactor uses
// the loop's Proactor (Close used to cancel on the default one's loops and
// hang), and a Loop of another Proactor is refused.
func TestLoopWithoutProactor(t *testing.T) {
	run(t, drivers, func(t *testing.T, p *proactor.Proactor) {
		fifo := filepath.Join(t.TempDir(), "fifo")
		require.NoError(t, unix.Mkfifo(fifo, 0o600))
		f, err := OpenFileOptions(fifo, os.O_RDWR, 0, OpenOptions{Loop: p.Loops()[0]})
		require.NoError(t, err)
		errc := make(chan error, 1)
		go func() { _, err := f.Read(make([]byte, 8)); errc <- err }()
		time.Sleep(100 * time.Millisecond)
		closed := make(chan error, 1)
		go func() { closed <- f.Close() }()
		select {
		case err := <-closed:
			assert.NoError(t, err)
			assert.ErrorIs(t, <-errc, ErrClosed)
		case <-time.After(3 * time.Second):
			w, _ := os.OpenFile(fifo, os.O_WRONLY, 0)
			w.Write([]byte("unblock"))
			w.Close()
			<-closed
			<-errc
			t.Error("Close hung: it cancelled on the default proactor's loops, not on the File's loop")
		}

		other, err := proactor.New(proactor.Options{Loops: 1, Logger: quiet})
		require.NoError(t, err)
		defer other.Close()
		_, err = OpenFileOptions(fifo, os.O_RDWR, 0, OpenOptions{Proactor: p, Loop: other.Loops()[0]})
		assert.ErrorIs(t, err, errForeignLoop)
	})
}

// TestSeekWhence: an invalid whence is EINVAL, as in os, and SEEK_DATA and
// SEEK_HOLE reach the kernel.
func TestSeekWhence(t *testing.T) {
	run(t, drivers, func(t *testing.T, p *proactor.Proactor) {
		path := tempFile(t, "", []byte("abc"))
		of, err := os.Open(path)
		require.NoError(t, err)
		defer of.Close()
		_, oerr := of.Seek(0, 7)
		require.ErrorIs(t, oerr, unix.EINVAL)
		f, err := OpenWith(path, opts(p))
		require.NoError(t, err)
		defer f.Close()
		_, err = f.Seek(0, 7)
		assert.ErrorIs(t, err, unix.EINVAL, "os: %v; fs: %v", oerr, err)
		// A sparse file: data only at 1 MiB.
		sparse := filepath.Join(t.TempDir(), "sparse")
		require.NoError(t, os.WriteFile(sparse, nil, 0o644))
		sf, err := OpenFileOptions(sparse, os.O_RDWR, 0, opts(p))
		require.NoError(t, err)
		defer sf.Close()
		_, err = sf.WriteAt([]byte("data"), 1<<20)
		require.NoError(t, err)
		pos, err := sf.Seek(0, unix.SEEK_DATA)
		require.NoError(t, err)
		require.Equal(t, int64(1<<20), pos)
		b := make([]byte, 4)
		_, err = io.ReadFull(sf, b)
		require.NoError(t, err)
		require.Equal(t, "data", string(b))
		pos, err = sf.Seek(0, unix.SEEK_HOLE)
		require.NoError(t, err)
		require.Equal(t, int64(0), pos)

		d, err := OpenWith(t.TempDir(), opts(p))
		require.NoError(t, err)
		defer d.Close()
		_, err = d.Read(make([]byte, 4))
		assert.ErrorIs(t, err, unix.EISDIR)
	})
}
