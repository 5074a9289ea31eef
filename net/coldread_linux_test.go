package net

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/pagecache"
	"github.com/ringo-io/ringo/internal/pagecache/pagecachetest"
	"github.com/ringo-io/ringo/proactor"
)

// sendFileHandler sends n bytes of fd from off on each connection's first
// bytes and closes; done's results go to res.
type sendFileHandler struct {
	fd       int
	off, n   int64
	resident bool // SendFileResident
	res      chan sendResult
}

type sendResult struct {
	sent int64
	err  error
}

func (h *sendFileHandler) OnOpen(*EventConn) {}
func (h *sendFileHandler) OnData(c *EventConn, _ []byte) {
	if c.Context() != nil {
		return
	}
	c.SetContext(true)
	send := c.SendFile
	if h.resident {
		send = c.SendFileResident
	}
	send(h.fd, h.off, h.n, func(sent int64, err error) {
		h.res <- sendResult{sent, err}
		c.Close()
	})
}
func (h *sendFileHandler) OnClose(*EventConn, error) {}

// getSent has h send its range to a new client of s, and checks that the
// client gets want and done reports it sent.
func getSent(t *testing.T, s *Server, h *sendFileHandler, want []byte) {
	t.Helper()
	c := dialStd(t, s)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("go"))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes (%v), want %d bytes of the file from %d", len(got), err, len(want), h.off)
	}
	if r := <-h.res; r.err != nil || r.sent != int64(len(want)) {
		t.Fatalf("done: %d bytes sent, %v; want %d, nil", r.sent, r.err, len(want))
	}
}

// TestSendFileCold: a SendFile of a range not in the page cache reads it
// in by ops before sendfile(2), rather than on the loop; a cached range
// goes straight to sendfile(2); without cachestat(2) it does as before.
// Each way the client gets the range byte for byte, including a range
// from an unaligned offset to the end of the file, and one that asks
// for more than the file has. A client that leaves in the middle of a
// cold range ends its connection.
func TestSendFileCold(t *testing.T) {
	const size = 3<<20 + 1234 // several reads ahead, and a partial page
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		get := func(s *Server, h *sendFileHandler, want []byte) { t.Helper(); getSent(t, s, h, want) }
		for _, tc := range []struct {
			name        string
			off, n      int64
			noCachestat bool
		}{
			{"whole", 0, size, false},
			{"to end from 12345", 12345, -1, false},
			{"more than the file", 0, size + 1<<20, false},
			{"no cachestat", 0, size, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f, content := pagecachetest.ColdFile(t, size)
				h := &sendFileHandler{fd: int(f.Fd()), off: tc.off, n: tc.n, res: make(chan sendResult, 1)}
				s := serve(t, p, "tcp", h, ServeOptions{})
				if tc.noCachestat {
					pagecache.NoCachestat.Store(true)
					defer pagecache.NoCachestat.Store(false)
				}
				want := content[tc.off:]
				get(s, h, want)
				cold := s.Metrics().ColdReads
				switch {
				case tc.noCachestat && cold != 0:
					t.Fatalf("without cachestat: %d cold reads, want 0", cold)
				case !tc.noCachestat && cold == 0:
					// Not one per pagecache.MaxRead: the kernel's readahead
					// brings some parts in before they are looked up.
					t.Fatalf("no cold reads for a cold file of %d bytes", size)
				}
				// Now in the page cache.
				pagecachetest.NoColdReads(t, func() int64 { return int64(s.Metrics().ColdReads) }, func() { get(s, h, want) })
			})
		}
		t.Run("client leaves", func(t *testing.T) {
			f, _ := pagecachetest.ColdFile(t, size)
			h := &sendFileHandler{fd: int(f.Fd()), n: size, res: make(chan sendResult, 1)}
			// A short unsent queue: most of the file is still to send
			// when the client leaves.
			s := serve(t, p, "tcp", h, ServeOptions{NotSentLowat: 16 << 10})
			c := dialStd(t, s)
			c.(*net.TCPConn).SetReadBuffer(4096)
			c.Write([]byte("go"))
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, make([]byte, 100<<10)); err != nil {
				t.Fatal(err)
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close() // a reset, in the middle of the range
			select {
			case r := <-h.res:
				if r.err == nil || r.sent >= size {
					t.Fatalf("SendFile done after the client left: %d sent, %v", r.sent, r.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("SendFile's done did not run after the client left")
			}
			deadline := time.Now().Add(10 * time.Second)
			for s.Metrics().Open != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d connections open after the client left", s.Metrics().Open)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	})
}

// TestConnSendFileCold: Conn.SendFile and ReadFrom read a cold range in
// by ops before sendfile(2) too, and the client gets it byte for byte.
func TestConnSendFileCold(t *testing.T) {
	const size = 3<<20 + 1234
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		for _, how := range []string{"SendFile", "ReadFrom"} {
			t.Run(how, func(t *testing.T) {
				f, content := pagecachetest.ColdFile(t, size)
				send := func(want []byte) {
					t.Helper()
					dialed, accepted := pair(t, p, "tcp")
					defer dialed.Close()
					got := make(chan []byte, 1)
					go func() {
						b, _ := io.ReadAll(dialed)
						got <- b
					}()
					accepted.SetWriteDeadline(time.Now().Add(10 * time.Second))
					var n int64
					var err error
					if how == "SendFile" {
						n, err = accepted.SendFile(int(f.Fd()), 0, size)
					} else {
						f.Seek(0, io.SeekStart)
						n, err = accepted.ReadFrom(f)
					}
					accepted.Close()
					if err != nil || n != size {
						t.Fatalf("%s: %d, %v; want %d, nil", how, n, err, size)
					}
					if b := <-got; !bytes.Equal(b, want) {
						t.Fatalf("client read %d bytes, not the %d of the file", len(b), len(want))
					}
				}
				before := pagecache.Reads.Load()
				send(content)
				cold := pagecache.Reads.Load()
				if cold == before {
					t.Fatalf("no cold reads for a cold file of %d bytes", size)
				}
				// Now in the page cache.
				pagecachetest.NoColdReads(t, pagecache.Reads.Load, func() { send(content) })
			})
		}
	})
}

// TestSendFileColdPastEOF: a cold SendFile to the end of the file (n < 0,
// or more than the file has) reads ahead no further than the file, and
// its done runs only once no read of its file is in flight: done may
// close the file, and a read then would run on whatever takes the number
// (here a pipe, whose data it would swallow, and the next SendFile would
// wait for it for ever).
func TestSendFileColdPastEOF(t *testing.T) {
	const sizeA = 100 << 10
	for _, nA := range []int64{-1, sizeA + 1<<20} {
		evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
			fa, contentA := pagecachetest.ColdFile(t, sizeA)
			fb, contentB := pagecachetest.ColdFile(t, 64<<10)
			fdA, err := unix.Dup(int(fa.Fd()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(fdA) })
			var pp [2]int
			if err := unix.Pipe2(pp[:], unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			pr, pw := pp[0], pp[1]
			t.Cleanup(func() { unix.Close(pr); unix.Close(pw) })
			doneB := make(chan sendResult, 1)
			h := &funcHandler{
				onData: func(c *EventConn, _ []byte) {
					if c.Context() != nil {
						return
					}
					c.SetContext(true)
					c.SendFile(fdA, 0, nA, func(int64, error) {
						// Done with fdA: its number now names the pipe.
						if err := unix.Dup3(pr, fdA, unix.O_CLOEXEC); err != nil {
							t.Error(err)
						}
						c.SendFile(int(fb.Fd()), 0, -1, func(sent int64, err error) {
							doneB <- sendResult{sent, err}
							c.Close()
						})
					})
				},
				onClose: func(*EventConn, error) {},
			}
			s := serve(t, p, "tcp", h, ServeOptions{})
			c := dialStd(t, s)
			c.SetDeadline(time.Now().Add(5 * time.Second))
			c.Write([]byte("go"))
			got, err := io.ReadAll(c)
			want := append(append([]byte(nil), contentA...), contentB...)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("client read %d bytes (%v), want %d (file A then file B)", len(got), err, len(want))
			}
			if _, err := unix.Write(pw, []byte("pipe data")); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
			pfd := []unix.PollFd{{Fd: int32(pr), Events: unix.POLLIN}}
			if n, _ := unix.Poll(pfd, 100); n == 0 {
				t.Errorf("the pipe's data was taken by a read of SendFile's fd begun before its done")
			}
			select {
			case r := <-doneB:
				if r.err != nil {
					t.Errorf("second SendFile: %d, %v", r.sent, r.err)
				}
			case <-time.After(time.Second):
				t.Errorf("second SendFile's done never ran")
			}
		})
	}
}

// TestSendFileColdTimeouts: a client that reads everything is not cut off
// by WriteTimeout or IdleTimeout while its output waits for a read from
// the server's own slow disk.
func TestSendFileColdTimeouts(t *testing.T) {
	const size = 512 << 10
	for _, tc := range []struct {
		name string
		opts ServeOptions
	}{
		{"WriteTimeout", ServeOptions{WriteTimeout: 200 * time.Millisecond}},
		{"IdleTimeout", ServeOptions{IdleTimeout: 200 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drivers(t, func(t *testing.T, p *proactor.Proactor) {
				f, content := pagecachetest.ColdFile(t, size)
				// 1 MB/s: each read of 256 KiB (and the kernel's
				// readahead with it) outlasts the timeouts.
				pagecachetest.SlowDisk(t, f, 1<<20)
				closed := make(chan error, 1)
				h := &funcHandler{
					onData: func(c *EventConn, _ []byte) {
						if c.Context() != nil {
							return
						}
						c.SetContext(true)
						c.SendFile(int(f.Fd()), 0, size, func(int64, error) { c.Close() })
					},
					onClose: func(_ *EventConn, err error) { closed <- err },
				}
				s := serve(t, p, "tcp", h, tc.opts)
				c := dialStd(t, s)
				c.SetDeadline(time.Now().Add(30 * time.Second))
				c.Write([]byte("go"))
				got, err := io.ReadAll(c)
				if !bytes.Equal(got, content) {
					t.Errorf("client read %d of %d bytes (%v)", len(got), size, err)
				}
				if err := <-closed; err != nil {
					t.Errorf("OnClose: %v; %+v", err, s.Metrics())
				}
			})
		})
	}
}

// TestConnSendFileColdInterrupted: the write deadline and Close end a
// Conn.SendFile that waits for a read from a slow disk at once, not when
// the read ends (a read of cold pages does not stop when cancelled).
func TestConnSendFileColdInterrupted(t *testing.T) {
	const size = 4 << 20
	for _, how := range []string{"deadline", "Close"} {
		t.Run(how, func(t *testing.T) {
			drivers(t, func(t *testing.T, p *proactor.Proactor) {
				f, _ := pagecachetest.ColdFile(t, size)
				// 256 KB/s: one read of 256 KiB takes a second or more.
				pagecachetest.SlowDisk(t, f, 256<<10)
				dialed, accepted := pair(t, p, "tcp")
				defer dialed.Close()
				go io.Copy(io.Discard, dialed)
				if how == "deadline" {
					accepted.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
				} else {
					time.AfterFunc(200*time.Millisecond, func() { accepted.Close() })
				}
				start := time.Now()
				n, err := accepted.SendFile(int(f.Fd()), 0, size)
				took := time.Since(start)
				accepted.Close()
				want := os.ErrDeadlineExceeded
				if how == "Close" {
					want = net.ErrClosed
				}
				if !errors.Is(err, want) || took > 800*time.Millisecond {
					t.Errorf("SendFile: %d, %v after %v; want %v at about 200ms", n, err, took, want)
				}
			})
		})
	}
}

// TestSendFileColdAbort: a connection whose output waits for a read from
// a slow disk closes at once on Abort, not when the read ends, and its
// SendFile's done runs then.
func TestSendFileColdAbort(t *testing.T) {
	const size = 4 << 20
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		f, _ := pagecachetest.ColdFile(t, size)
		pagecachetest.SlowDisk(t, f, 256<<10) // a read of 256 KiB: a second or more
		aborted := make(chan time.Time, 1)
		closed := make(chan time.Time, 1)
		done := make(chan error, 1)
		h := &funcHandler{
			onData: func(c *EventConn, _ []byte) {
				if c.Context() != nil {
					return
				}
				c.SetContext(true)
				c.SendFile(int(f.Fd()), 0, size, func(_ int64, err error) { done <- err })
				c.el.l.AfterFunc(200*time.Millisecond, func() { // the read has begun
					aborted <- time.Now()
					c.Abort()
				})
			},
			onClose: func(*EventConn, error) { closed <- time.Now() },
		}
		s := serve(t, p, "tcp", h, ServeOptions{})
		c := dialStd(t, s)
		c.Write([]byte("go"))
		select {
		case at := <-closed:
			if d := at.Sub(<-aborted); d > 300*time.Millisecond {
				t.Errorf("OnClose %v after Abort", d)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no OnClose 10 s after the SendFile")
		}
		if err := <-done; err == nil {
			t.Error("SendFile's done: nil error for a range cut by Abort")
		}
	})
}

// TestSendFileResident: SendFileResident sends a memfd's range byte for
// byte, and asks the page cache nothing: a cold file given to it is read
// by sendfile(2) itself, with no cold read ahead (SendFile makes some for
// the same file, TestSendFileCold).
func TestSendFileResident(t *testing.T) {
	evDrivers(t, func(t *testing.T, p *proactor.Proactor) {
		get := func(s *Server, h *sendFileHandler, want []byte) { t.Helper(); getSent(t, s, h, want) }
		t.Run("memfd", func(t *testing.T) {
			fd, err := unix.MemfdCreate("resident", unix.MFD_CLOEXEC)
			if err != nil {
				t.Skipf("memfd_create: %v", err)
			}
			defer unix.Close(fd)
			content := bytes.Repeat([]byte("0123456789abcdef"), 2500)
			if _, err := unix.Pwrite(fd, content, 0); err != nil {
				t.Fatal(err)
			}
			h := &sendFileHandler{fd: fd, off: 100, n: 30000, resident: true, res: make(chan sendResult, 1)}
			get(serve(t, p, "tcp", h, ServeOptions{}), h, content[100:30100])
		})
		t.Run("cold file", func(t *testing.T) {
			const size = 1 << 20
			f, content := pagecachetest.ColdFile(t, size)
			h := &sendFileHandler{fd: int(f.Fd()), n: size, resident: true, res: make(chan sendResult, 1)}
			s := serve(t, p, "tcp", h, ServeOptions{})
			get(s, h, content)
			if cold := s.Metrics().ColdReads; cold != 0 {
				t.Fatalf("%d cold reads, want none", cold)
			}
		})
	})
}
