package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringo-io/ringo/proactor"
)

// prebuiltFds counts this process's open prebuilt responses (memfds).
func prebuiltFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "/memfd:ringo-response") {
			n++
		}
	}
	return n
}

// TestPrebuilt: on the callback transport a hot file of preMin or more
// goes out as one prebuilt response (the conn transport copies), byte for
// byte what the copy would have been: the body, the headers, a Date that
// follows the clock across seconds (four clients at once, on both loops),
// Vary next to a gzip sibling and the sibling itself.
// Every other shape of response to the same file (HEAD, a range, 304,
// HTTP/1.0, Connection: close) is built as before; an edit on disk shows
// at once; and once the server is gone no memfd is left open.
func TestPrebuilt(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		if n := prebuiltFds(t); n != 0 {
			t.Fatalf("%d prebuilt responses open before the server", n)
		}
		t.Cleanup(func() {
			// Runs after start's cleanup has shut the server down.
			if n := prebuiltFds(t); n != 0 {
				t.Errorf("%d prebuilt responses open after shutdown", n)
			}
		})
		root := makeRoot(t)
		mid := bigContent(preMin + 3000)
		must := func(t *testing.T, err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(t, os.WriteFile(filepath.Join(root, "mid.bin"), mid, 0o644))
		zipped := bigContent(preMin + 10)[3:] // any bytes do: served as they are
		must(t, os.WriteFile(filepath.Join(root, "z.txt"), mid[5:], 0o644))
		must(t, os.WriteFile(filepath.Join(root, "z.txt.gz"), zipped, 0o644))
		ts := start(t, p, root, func(c *config) { c.revalidate = 20 * time.Millisecond })
		// Only the callback transport sends prebuilt responses (see
		// session.prebuilt); the conn transport must answer the same.
		on := testAPI == "callback"

		// check checks one response to a plain GET of path against want.
		check := func(c *http.Client, path string, want []byte, hdr ...string) (*http.Response, error) {
			before := time.Now().Truncate(time.Second)
			req, _ := http.NewRequest("GET", ts.url+path, nil)
			for i := 0; i+1 < len(hdr); i += 2 {
				req.Header.Set(hdr[i], hdr[i+1])
			}
			resp, err := c.Do(req)
			if err != nil {
				return nil, err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || string(body) != string(want) || resp.ContentLength != int64(len(want)) {
				return nil, fmt.Errorf("GET %s: %d, %d bytes (Content-Length %d, %v), want 200, %d", path, resp.StatusCode, len(body), resp.ContentLength, err, len(want))
			}
			d, err := http.ParseTime(resp.Header.Get("Date"))
			if err != nil || d.Before(before) || d.After(time.Now()) {
				return nil, fmt.Errorf("GET %s: Date %q, asked at %v", path, resp.Header.Get("Date"), before)
			}
			if resp.Header.Get("ETag") == "" || resp.Header.Get("Server") != "ringo" || resp.Close {
				return nil, fmt.Errorf("GET %s: headers %v (close %v)", path, resp.Header, resp.Close)
			}
			return resp, nil
		}
		get := func(t *testing.T, c *http.Client, path string, want []byte, hdr ...string) *http.Response {
			t.Helper()
			resp, err := check(c, path, want, hdr...)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}

		// heat makes path hot: its prebuilt response is built.
		heat := func(t *testing.T, c *http.Client, path string, want []byte) {
			t.Helper()
			for range 2 * preAfter {
				get(t, c, path, want)
			}
		}

		t.Run("lukewarm", func(t *testing.T) {
			// preAfter-1 responses in each of two seconds: never hot.
			must(t, os.WriteFile(filepath.Join(root, "luke.bin"), mid, 0o644))
			c := client(t)
			for range 2 {
				time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 20*time.Millisecond)))
				for range preAfter - 1 {
					get(t, c, "/luke.bin", mid)
				}
			}
			if n := prebuiltFds(t); n != 0 || ts.prebuilt.Load() != 0 {
				t.Fatalf("%d prebuilt responses built, %d sent, for a file never asked for %d times in a second", n, ts.prebuilt.Load(), preAfter)
			}
		})

		t.Run("hot across seconds", func(t *testing.T) {
			var wg sync.WaitGroup
			stop := time.Now().Add(1500 * time.Millisecond)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := client(t)
					for time.Now().Before(stop) {
						if _, err := check(c, "/mid.bin", mid); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			if !on {
				if n := ts.prebuilt.Load(); n != 0 || prebuiltFds(t) != 0 {
					t.Fatalf("the conn transport sent %d prebuilt responses", n)
				}
				return
			}
			if n := ts.prebuilt.Load(); n < ts.requests.Load()/2 {
				t.Fatalf("%d of %d responses prebuilt", n, ts.requests.Load())
			}
			if n := prebuiltFds(t); n != 1 {
				t.Fatalf("%d prebuilt responses open for one hot file, want 1", n)
			}
		})

		t.Run("other responses", func(t *testing.T) {
			c := client(t)
			heat(t, c, "/mid.bin", mid)
			pre := ts.prebuilt.Load()
			resp, body := do(t, c, "HEAD", ts.url+"/mid.bin")
			if resp.StatusCode != 200 || body != "" || resp.ContentLength != int64(len(mid)) {
				t.Fatalf("HEAD: %d, %d bytes, Content-Length %d", resp.StatusCode, len(body), resp.ContentLength)
			}
			resp, body = do(t, c, "GET", ts.url+"/mid.bin", "Range", "bytes=10-19")
			if resp.StatusCode != 206 || body != string(mid[10:20]) {
				t.Fatalf("range: %d, %q", resp.StatusCode, body)
			}
			resp, _ = do(t, c, "GET", ts.url+"/mid.bin", "If-None-Match", resp.Header.Get("ETag"))
			wantStatus(t, resp, 304)
			for _, req := range []string{
				"GET /mid.bin HTTP/1.0\r\n\r\n",
				"GET /mid.bin HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
				"GET /mid.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			} {
				r := bufio.NewReader(strings.NewReader(raw(t, ts.addr, req, 2*time.Second)))
				resp := readResponses(t, r, 1, "GET")[0]
				b := make([]byte, len(mid)+1)
				n, _ := resp.Body.Read(b)
				keep := strings.Contains(req, "keep-alive")
				if resp.StatusCode != 200 || string(b[:n]) != string(mid) || resp.Close == keep ||
					(resp.Header.Get("Connection") == "keep-alive") != keep {
					t.Fatalf("%q: %d, %d bytes, Connection %q", req, resp.StatusCode, n, resp.Header.Get("Connection"))
				}
			}
			if got := ts.prebuilt.Load(); got != pre {
				t.Fatalf("%d responses other than a plain GET went prebuilt", got-pre)
			}
		})

		t.Run("vary", func(t *testing.T) {
			c := client(t)
			for range 2 * preAfter {
				if resp := get(t, c, "/z.txt", mid[5:]); resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("Content-Encoding") != "" {
					t.Fatalf("plain variant: %v", resp.Header)
				}
				if resp := get(t, c, "/z.txt", zipped, "Accept-Encoding", "gzip"); resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("Content-Encoding") != "gzip" {
					t.Fatalf("gzip variant: %v", resp.Header)
				}
			}
			want := 0
			if on {
				want = 3 // mid.bin, z.txt and z.txt.gz
			}
			if n := prebuiltFds(t); n != want {
				t.Fatalf("%d prebuilt responses open, want %d", n, want)
			}
		})

		t.Run("edited", func(t *testing.T) {
			c := client(t)
			heat(t, c, "/mid.bin", mid)
			edited := append([]byte(nil), mid...)
			copy(edited[100:], "edited")
			must(t, os.WriteFile(filepath.Join(root, "mid.bin"), edited, 0o644))
			mtime := time.Now().Add(time.Hour)
			must(t, os.Chtimes(filepath.Join(root, "mid.bin"), mtime, mtime))
			time.Sleep(50 * time.Millisecond) // past revalidate
			for range 2 * preAfter {
				resp := get(t, c, "/mid.bin", edited)
				if lm := resp.Header.Get("Last-Modified"); lm != mtime.UTC().Format(http.TimeFormat) {
					t.Fatalf("Last-Modified %q after the edit", lm)
				}
			}
		})

		t.Run("bounded", func(t *testing.T) {
			// At maxPrebuilt, a newly hot file copies.
			defer maxPrebuilt.Store(maxPrebuilt.Load())
			maxPrebuilt.Store(prebuiltOpen.Load())
			must(t, os.WriteFile(filepath.Join(root, "mid3.bin"), mid, 0o644))
			pre := ts.prebuilt.Load()
			heat(t, client(t), "/mid3.bin", mid)
			if got := ts.prebuilt.Load(); got != pre {
				t.Fatalf("%d responses prebuilt over maxPrebuilt", got-pre)
			}
			if n := int64(prebuiltFds(t)); n != maxPrebuilt.Load() {
				t.Fatalf("%d prebuilt responses open, maxPrebuilt %d", n, maxPrebuilt.Load())
			}
		})

		t.Run("no memfd", func(t *testing.T) {
			noMemfd.Store(true)
			defer noMemfd.Store(false)
			must(t, os.WriteFile(filepath.Join(root, "mid2.bin"), mid, 0o644))
			pre := ts.prebuilt.Load()
			c := client(t)
			heat(t, c, "/mid2.bin", mid)
			if got := ts.prebuilt.Load(); got != pre {
				t.Fatalf("%d responses prebuilt without memfd_create", got-pre)
			}
		})
	})
}

// TestPrebuiltSmall: bodies under preMin are always copied (a sendfile(2)
// per response costs the loop more than it saves there).
func TestPrebuiltSmall(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		small := bigContent(preMin - 1)
		if err := os.WriteFile(filepath.Join(root, "small.bin"), small, 0o644); err != nil {
			t.Fatal(err)
		}
		ts := start(t, p, root, nil)
		c := client(t)
		for i := range 2 * preAfter {
			if _, body := do(t, c, "GET", ts.url+"/small.bin"); body != string(small) {
				t.Fatal("response " + strconv.Itoa(i) + ": body differs")
			}
		}
		if n := ts.prebuilt.Load(); n != 0 {
			t.Fatal(fmt.Sprint(n, " responses under preMin prebuilt"))
		}
	})
}

// TestAllocsPerResponse: in steady state a keep-alive GET allocates
// nothing, on either transport and driver, whichever way its body goes:
// copied (small), prebuilt (hot, preMin or more; the callback transport)
// or by SendFile (over smallMax). The process's mallocs are counted around
// many requests from a client that allocates nothing itself (a raw
// connection, a fixed buffer).
func TestAllocsPerResponse(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		files := map[string]int{"small.bin": 1 << 10, "mid.bin": preMin + 3000, "big.bin": 200 << 10}
		for name, n := range files {
			if err := os.WriteFile(filepath.Join(root, name), bigContent(n), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ts := start(t, p, root, nil)
		for name, size := range files {
			t.Run(name, func(t *testing.T) {
				c, err := net.Dial("tcp", ts.addr)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				req := []byte("GET /" + name + " HTTP/1.1\r\nHost: x\r\n\r\n")
				// The first response gives the length of every one: the
				// Date header has a fixed width.
				if _, err := c.Write(req); err != nil {
					t.Fatal(err)
				}
				br := bufio.NewReader(c)
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != 200 || resp.ContentLength != int64(size) {
					t.Fatalf("status %d, length %d", resp.StatusCode, resp.ContentLength)
				}
				io.Copy(io.Discard, resp.Body)
				hdr := 0
				for k, vs := range resp.Header {
					for _, v := range vs {
						hdr += len(k) + 2 + len(v) + 2
					}
				}
				total := len("HTTP/1.1 200 OK\r\n") + hdr + 2 + size
				buf := make([]byte, total)
				round := func() {
					if _, err := c.Write(req); err != nil {
						t.Fatal(err)
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						t.Fatal(err)
					}
				}
				for range 4 * preAfter {
					round() // builds the prebuilt response, grows the buffers
				}
				if !strings.HasPrefix(string(buf[:16]), "HTTP/1.1 200 OK\r") || !bytes.HasSuffix(buf, bigContent(size)) {
					t.Fatalf("a response is not the file: %q...", buf[:min(len(buf), 200)])
				}
				const n = 1000
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				for range n {
					round()
				}
				runtime.ReadMemStats(&after)
				// A few allocations a second are the server's own (a
				// prebuilt is rebuilt in each second it is asked for):
				// well under one per ten responses.
				if per := float64(after.Mallocs-before.Mallocs) / n; per > 0.1 {
					t.Errorf("%.2f allocations per response, want 0", per)
				}
			})
		}
	})
}
