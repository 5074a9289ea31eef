package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	stdnet "net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/pagecache/pagecachetest"
	"github.com/ringo-io/ringo/proactor"
)

// TestColdSmallFileOffLoop: a small file (its body kept in memory) not in
// the page cache is looked up and read off the callback transport's loop,
// so the loop's other connections are answered while that read waits for
// a slow disk; the cold response still arrives whole, in order before
// the one pipelined behind it. On the conn transport (a goroutine per
// connection, loops in WaitNetpoll mode) a blocking read on the
// connection's goroutine used to hold up every other connection of its
// loop for as long (see diskWait.loop).
func TestColdSmallFileOffLoop(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		f, want := pagecachetest.ColdFile(t, 48<<10) // under the cache's smallMax
		root := filepath.Dir(f.Name())
		if err := os.WriteFile(filepath.Join(root, "hot.txt"), []byte("hot\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// Shorter than the wait: the header timeout ends with the
		// request's head, not with its response.
		ts := start(t, p, root, func(c *config) { c.headerTimeout = 300 * time.Millisecond })
		get := func(c stdnet.Conn, path string) {
			if _, err := c.Write([]byte("GET /" + path + " HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
		}
		dial := func() stdnet.Conn { return dialCold(t, ts.addr) }
		// Connections to the loops that will answer while the cold read
		// waits: several, so that the cold one's loop has some.
		hot := make([]stdnet.Conn, 8)
		for i := range hot {
			hot[i] = dial()
			get(hot[i], "hot.txt") // warm: the file in the server's cache
			readResponses(t, bufio.NewReader(hot[i]), 1, "GET")
		}
		pagecachetest.SlowDisk(t, f, 64<<10) // 48 KiB: about 0.75 s

		cold := dial()
		get(cold, "cold")
		get(cold, "hot.txt")
		time.Sleep(100 * time.Millisecond) // the cold request is in
		for _, c := range hot {
			get(c, "hot.txt")
			resp := readResponses(t, bufio.NewReader(c), 1, "GET")[0]
			wantStatus(t, resp, 200)
		}
		// Every other connection was answered; the cold one is still
		// waiting for the disk.
		cold.SetReadDeadline(time.Now().Add(time.Millisecond))
		if n, _ := cold.Read(make([]byte, 1)); n > 0 {
			t.Fatal("the cold response came before the loop answered the others: it waited for the disk")
		}
		cold.SetReadDeadline(time.Now().Add(30 * time.Second))
		resps := readResponses(t, bufio.NewReader(cold), 2, "GET")
		wantStatus(t, resps[0], 200)
		body, _ := io.ReadAll(resps[0].Body)
		if !bytes.Equal(body, want) {
			t.Fatalf("cold body: %d bytes, differs from the file's %d", len(body), len(want))
		}
		wantStatus(t, resps[1], 200)
		if b, _ := io.ReadAll(resps[1].Body); string(b) != "hot\n" {
			t.Fatalf("pipelined response: %q", b)
		}
		if ts.offLoop.Load() == 0 {
			t.Fatal("no lookup waited for the disk off the loops")
		}

		// A client that leaves while its lookup waits: the answer that
		// comes later is dropped (the leak check counts its descriptor),
		// and the others go on being served.
		other := filepath.Join(root, "cold2")
		if err := os.WriteFile(other, want, 0o644); err != nil {
			t.Fatal(err)
		}
		g, err := os.Open(other)
		if err != nil {
			t.Fatal(err)
		}
		unix.Fadvise(int(g.Fd()), 0, 0, unix.FADV_DONTNEED)
		g.Close()
		n := ts.offLoop.Load()
		gone := dial()
		get(gone, "cold2")
		for ts.offLoop.Load() == n {
			time.Sleep(time.Millisecond)
		}
		gone.Close()
		time.Sleep(time.Second) // the read ends
		ts.cache.mu.Lock()
		e := ts.cache.m["cold2"]
		ts.cache.mu.Unlock()
		if e == nil || e.f.refs.Load() != 1 {
			t.Fatalf("after the client left, the cold file is held beyond the cache: %v", e)
		}
		get(hot[0], "hot.txt")
		wantStatus(t, readResponses(t, bufio.NewReader(hot[0]), 1, "GET")[0], 200)
	})
}

// dialCold connects to addr, with a deadline, closed when t ends.
func dialCold(t *testing.T, addr string) stdnet.Conn {
	c, err := stdnet.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return c
}

// serveForTest starts a server for root on the transport under test,
// without start's cleanup: the test shuts it down itself. done is the end
// of serving.
func serveForTest(t *testing.T, p *proactor.Proactor, root string) (s *server, addr string, done chan error) {
	cfg := defaultConfig()
	cfg.root, cfg.addr, cfg.api = root, "127.0.0.1:0", testAPI
	s, err := newServer(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	if cfg.api == "callback" {
		evs, err := s.serveEvents()
		if err != nil {
			t.Fatal(err)
		}
		done <- nil
		return s, evs.Addr().String(), done
	}
	ln, err := s.listen()
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- s.serve(ln) }()
	return s, ln.Addr().String(), done
}

// coldRoot is a root holding a cold file "cold" of n bytes (its content
// returned) and a hot "hot.txt".
func coldRoot(t *testing.T, n int) (root string, f *os.File, want []byte) {
	f, want = pagecachetest.ColdFile(t, n)
	root = filepath.Dir(f.Name())
	if err := os.WriteFile(filepath.Join(root, "hot.txt"), []byte("hot\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, f, want
}

// TestColdWaitKeepsConnection: while a request waits for its lookup, its
// connection is neither closed by the idle timeout, nor cut off when the
// client pipelines more than the server buffers (it gets flow control),
// nor closed before the answer by the client's FIN.
func TestColdWaitKeepsConnection(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root, f, want := coldRoot(t, 48<<10)
		ts := start(t, p, root, func(c *config) { c.idleTimeout = 300 * time.Millisecond })
		pagecachetest.SlowDisk(t, f, 64<<10) // about 0.75 s a lookup
		dial := func() stdnet.Conn { return dialCold(t, ts.addr) }
		evict := func() {
			ts.cache.drop("cold")
			unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
		}
		checkCold := func(r *bufio.Reader) {
			t.Helper()
			resp := readResponses(t, r, 1, "GET")[0]
			wantStatus(t, resp, 200)
			if b, _ := io.ReadAll(resp.Body); !bytes.Equal(b, want) {
				t.Fatalf("cold body: %d bytes, want %d", len(b), len(want))
			}
		}

		// Longer than the idle timeout, and a FIN right after the
		// request (a client such as printf ... | nc).
		c := dial()
		c.Write([]byte("GET /cold HTTP/1.1\r\nHost: x\r\n\r\n"))
		c.(*stdnet.TCPConn).CloseWrite()
		checkCold(bufio.NewReader(c))

		// Another request after the answer: the wait, longer than the
		// idle timeout, did not use up the connection's next read.
		evict()
		c = dial()
		r := bufio.NewReader(c)
		c.Write([]byte("GET /cold HTTP/1.1\r\nHost: x\r\n\r\n"))
		checkCold(r)
		c.Write([]byte("GET /hot.txt HTTP/1.1\r\nHost: x\r\n\r\n"))
		wantStatus(t, readResponses(t, r, 1, "GET")[0], 200)

		// 400 KB of requests pipelined behind the one that waits.
		evict()
		c = dial()
		const n = 400
		pad := strings.Repeat("a", 1000)
		go func() {
			c.Write([]byte("GET /cold HTTP/1.1\r\nHost: x\r\n\r\n"))
			for range n {
				c.Write([]byte("GET /hot.txt HTTP/1.1\r\nHost: x\r\nX-Pad: " + pad + "\r\n\r\n"))
			}
		}()
		r = bufio.NewReader(c)
		checkCold(r)
		for _, resp := range readResponses(t, r, n, "GET") {
			wantStatus(t, resp, 200)
		}
	})
}

// TestColdShutdownDuringLookup: a shutdown whose deadline passes while a
// lookup waits for the disk cancels it and waits for it before it closes
// the root and the cache: nothing is looked up beneath a closed (perhaps
// reused) descriptor, or left open in the closed cache.
func TestColdShutdownDuringLookup(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root, f, _ := coldRoot(t, 48<<10)
		s, addr, done := serveForTest(t, p, root)
		pagecachetest.SlowDisk(t, f, 32<<10) // about 1.5 s
		c, err := stdnet.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET /cold HTTP/1.1\r\nHost: x\r\n\r\n"))
		for s.offLoop.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		s.shutdown(ctx)
		cancel()
		<-done
		// A lookup that outlived the shutdown would have put its file in
		// the closed cache by now.
		time.Sleep(2 * time.Second)
		s.cache.mu.Lock()
		n := len(s.cache.m)
		s.cache.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d cache entries (open files) after shutdown closed the cache", n)
		}
	})
}

// TestColdShutdownCancelsQueuedLookups: at a shutdown's deadline the
// lookups waiting for a slot (more than maxLookups wait for the disk) end
// without starting, on both transports: the conn transport's shutdown
// waits for its goroutines, which used to wait for every lookup in turn.
func TestColdShutdownCancelsQueuedLookups(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root, f, _ := coldRoot(t, 8<<10)
		const n = maxLookups + 8
		for i := range n {
			name := filepath.Join(root, fmt.Sprintf("c%d", i))
			if err := os.WriteFile(name, make([]byte, 8<<10), 0o644); err != nil {
				t.Fatal(err)
			}
			g, err := os.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			g.Sync()
			unix.Fadvise(int(g.Fd()), 0, 0, unix.FADV_DONTNEED)
			g.Close()
		}
		s, addr, done := serveForTest(t, p, root)
		pagecachetest.SlowDisk(t, f, 64<<10) // 8 KiB: 1/8 s each, one at a time
		for i := range n {
			c := dialCold(t, addr)
			c.Write([]byte(fmt.Sprintf("GET /c%d HTTP/1.1\r\nHost: x\r\n\r\n", i)))
		}
		for s.offLoop.Load() < maxLookups {
			time.Sleep(time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		go func() { <-ctx.Done(); s.offLoop.Add(1000) }() // marks the deadline
		s.shutdown(ctx)
		<-done
		if started := s.offLoop.Load() - 1000; started > maxLookups+1 {
			t.Fatalf("%d lookups started, %d of them after the shutdown's deadline", started, started-maxLookups)
		}
	})
}
