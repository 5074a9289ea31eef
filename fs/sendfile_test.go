package fs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/pagecache"
	"github.com/ringo-io/ringo/internal/pagecache/pagecachetest"
	"github.com/ringo-io/ringo/proactor"
)

// tcpPair returns a non-blocking client socket fd connected to a server
// conn on loopback. Both are closed at cleanup.
func tcpPair(t testing.TB, sndbuf int) (int, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	if sndbuf > 0 {
		require.NoError(t, unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndbuf))
	}
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.SetNonblock(fd, true))
	c, err := ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd); c.Close() })
	return fd, c
}

var methods = []SendMethod{SendSyscall, SendSplice}

func TestSendFile(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		data := randBytes(rand.New(rand.NewPCG(7, 7)), 4<<20+1)
		path := tempFile(t, "", data)
		f, err := OpenWith(path, opts(p))
		require.NoError(t, err)
		defer f.Close()
		for _, m := range methods {
			t.Run(m.String(), func(t *testing.T) {
				for _, tc := range []struct{ off, n int64 }{{0, 0}, {0, 1}, {5, 1}, {3, 70000}, {0, int64(len(data))}} {
					sock, c := tcpPair(t, 0)
					got := make(chan []byte, 1)
					go func() {
						b, _ := io.ReadAll(c)
						got <- b
					}()
					n, err := SendFileMethod(context.Background(), m, f.Loop(), sock, int(f.Fd()), tc.off, tc.n)
					require.NoError(t, err)
					require.Equal(t, tc.n, n)
					unix.Shutdown(sock, unix.SHUT_WR)
					b := <-got
					require.True(t, bytes.Equal(data[tc.off:tc.off+tc.n], b), "off %d n %d", tc.off, tc.n)
				}

				// Past the end of the file: what there is, then ErrFileShrunk.
				sock, c := tcpPair(t, 0)
				go io.Copy(io.Discard, c)
				n, err := SendFileMethod(context.Background(), m, f.Loop(), sock, int(f.Fd()), int64(len(data))-10, 100)
				assert.Equal(t, int64(10), n)
				assert.ErrorIs(t, err, ErrFileShrunk)
				assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
			})
		}

		// Through a File opened with NoInline: every chunk goes through
		// the loop, never sendfile(2) on this goroutine.
		g, err := OpenFileOptions(path, os.O_RDONLY, 0, OpenOptions{Proactor: p, NoInline: true})
		require.NoError(t, err)
		defer g.Close()
		{
			sock, c := tcpPair(t, 0)
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(c)
				got <- b
			}()
			n, err := SendFile(context.Background(), nil, sock, g, 11, 300_000)
			require.NoError(t, err)
			require.Equal(t, int64(300_000), n)
			unix.Shutdown(sock, unix.SHUT_WR)
			require.True(t, bytes.Equal(data[11:300_011], <-got))
		}

		// Through the File, and bad input.
		sock, c := tcpPair(t, 0)
		go io.Copy(io.Discard, c)
		n, err := SendFile(context.Background(), nil, sock, f, 0, 1000)
		require.NoError(t, err)
		assert.Equal(t, int64(1000), n)
		_, err = SendFile(context.Background(), nil, sock, f, -1, 10)
		assert.ErrorIs(t, err, unix.EINVAL)
		blocking, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		require.NoError(t, err)
		defer unix.Close(blocking)
		_, err = SendFile(context.Background(), nil, blocking, f, 0, 10)
		assert.Error(t, err, "a blocking socket is refused")
	})
}

// TestSendFileTruncated truncates the file while the transfer waits for a
// full socket: SendFile returns what it sent and ErrFileShrunk, no hang.
func TestSendFileTruncated(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		for _, m := range methods {
			t.Run(m.String(), func(t *testing.T) {
				data := randBytes(rand.New(rand.NewPCG(8, 8)), 4<<20)
				path := tempFile(t, "", data)
				f, err := OpenWith(path, opts(p))
				require.NoError(t, err)
				defer f.Close()
				sock, c := tcpPair(t, 64<<10)
				type result struct {
					n   int64
					err error
				}
				done := make(chan result, 1)
				go func() {
					n, err := SendFileMethod(context.Background(), m, f.Loop(), sock, int(f.Fd()), 0, int64(len(data)))
					done <- result{n, err}
				}()
				time.Sleep(50 * time.Millisecond) // the socket fills; the transfer waits
				require.NoError(t, os.Truncate(path, 1<<20))
				var got int64
				var wg sync.WaitGroup
				wg.Go(func() { got, _ = io.Copy(io.Discard, c) })
				select {
				case r := <-done:
					assert.ErrorIs(t, r.err, ErrFileShrunk)
					assert.Less(t, r.n, int64(len(data)))
					unix.Shutdown(sock, unix.SHUT_WR)
					wg.Wait()
					assert.Equal(t, r.n, got)
				case <-time.After(20 * time.Second):
					t.Fatal("SendFile hung on a truncated file")
				}
			})
		}
	})
}

// TestSendFilePeerGone resets the connection mid-transfer: EPIPE or
// ECONNRESET, with what was sent.
func TestSendFilePeerGone(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		data := randBytes(rand.New(rand.NewPCG(9, 9)), 4<<20)
		f, err := OpenWith(tempFile(t, "", data), opts(p))
		require.NoError(t, err)
		defer f.Close()
		for _, m := range methods {
			t.Run(m.String(), func(t *testing.T) {
				sock, c := tcpPair(t, 64<<10)
				go func() {
					buf := make([]byte, 1000)
					_, _ = io.ReadFull(c, buf)
					c.(*net.TCPConn).SetLinger(0) // RST on close
					c.Close()
				}()
				n, err := SendFileMethod(context.Background(), m, f.Loop(), sock, int(f.Fd()), 0, int64(len(data)))
				require.Error(t, err)
				assert.True(t, errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET), "%v", err)
				assert.Less(t, n, int64(len(data)))
			})
		}
	})
}

func TestSendFileContext(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		data := randBytes(rand.New(rand.NewPCG(9, 9)), 4<<20)
		f, err := OpenWith(tempFile(t, "", data), opts(p))
		require.NoError(t, err)
		defer f.Close()
		for _, m := range methods {
			t.Run(m.String(), func(t *testing.T) {
				sock, _ := tcpPair(t, 64<<10) // nobody reads
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				n, err := SendFileMethod(ctx, m, f.Loop(), sock, int(f.Fd()), 0, int64(len(data)))
				assert.ErrorIs(t, err, context.DeadlineExceeded)
				assert.Less(t, n, int64(len(data)))
			})
		}
	})
}

// TestSendFileCold: the chunks SendFile hands to the loop are read into
// the page cache by an op first when they are not there, so that the
// loop's sendfile(2) does not read the disk; the peer gets the file byte
// for byte, and a cached file is not read again.
func TestSendFileCold(t *testing.T) {
	const size = 3<<20 + 1234
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		cold, data := pagecachetest.ColdFile(t, size)
		// NoInline: every chunk goes through the loop.
		f, err := OpenFileOptions(cold.Name(), os.O_RDONLY, 0, OpenOptions{Proactor: p, NoInline: true})
		require.NoError(t, err)
		defer f.Close()
		send := func() {
			t.Helper()
			sock, c := tcpPair(t, 0)
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(c)
				got <- b
			}()
			n, err := SendFile(context.Background(), nil, sock, f, 0, size)
			require.NoError(t, err)
			require.Equal(t, int64(size), n)
			unix.Shutdown(sock, unix.SHUT_WR)
			require.True(t, bytes.Equal(data, <-got), "the peer's bytes differ from the file's")
		}
		before := pagecache.Reads.Load()
		send()
		reads := pagecache.Reads.Load()
		require.Greater(t, reads, before, "no reads into the page cache for a cold file")
		pagecachetest.NoColdReads(t, pagecache.Reads.Load, send) // now cached
	})
}

// TestSendFileColdContext: ctx ends a SendFile that waits for a read from
// a slow disk at once, not when the read ends (a read of cold pages does
// not stop when cancelled).
func TestSendFileColdContext(t *testing.T) {
	const size = 4 << 20
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		cold, _ := pagecachetest.ColdFile(t, size)
		pagecachetest.SlowDisk(t, cold, 256<<10) // a read of 256 KiB: a second or more
		f, err := OpenFileOptions(cold.Name(), os.O_RDONLY, 0, OpenOptions{Proactor: p, NoInline: true})
		require.NoError(t, err)
		defer f.Close()
		sock, c := tcpPair(t, 0)
		go io.Copy(io.Discard, c)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		n, err := SendFile(ctx, nil, sock, f, 0, size)
		took := time.Since(start)
		require.ErrorIs(t, err, context.DeadlineExceeded, "sent %d", n)
		require.Less(t, took, 800*time.Millisecond, "SendFile returned %v after a context of 200ms", took)
	})
}
