package net

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/ringo-io/ringo/internal/pagecache"
	"github.com/ringo-io/ringo/internal/pagecache/pagecachetest"
	"github.com/ringo-io/ringo/proactor"
)

// sendFileHandler sends n bytes of fd from off on each connection's first
// bytes and closes; done's results go to res.
type sendFileHandler struct {
	fd     int
	off, n int64
	res    chan sendResult
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
	c.SendFile(h.fd, h.off, h.n, func(sent int64, err error) {
		h.res <- sendResult{sent, err}
		c.Close()
	})
}
func (h *sendFileHandler) OnClose(*EventConn, error) {}

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
		get := func(s *Server, h *sendFileHandler, want []byte) {
			t.Helper()
			c := dialStd(t, s)
			c.SetDeadline(time.Now().Add(10 * time.Second))
			c.Write([]byte("go"))
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("read %d bytes (%v), want %d bytes of the file from %d", len(got), err, len(want), h.off)
			}
			if r := <-h.res; r.err != nil || r.sent != int64(len(want)) {
				t.Fatalf("SendFile done: %d bytes sent, %v; want %d, nil", r.sent, r.err, len(want))
			}
		}
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
				get(s, h, want) // now in the page cache
				if again := s.Metrics().ColdReads; again != cold {
					t.Fatalf("a cached file: cold reads went from %d to %d", cold, again)
				}
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
				send(content) // now in the page cache
				if again := pagecache.Reads.Load(); again != cold {
					t.Fatalf("a cached file: cold reads went from %d to %d", cold, again)
				}
			})
		}
	})
}
