package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	stdnet "net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

func TestGetHead(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		ts := start(t, p, root, nil)
		c := client(t)
		for _, tc := range []struct{ path, file, ctype string }{
			{"/", "index.html", "text/html; charset=utf-8"},
			{"/index.html", "index.html", "text/html; charset=utf-8"},
			{"/style.css", "style.css", "text/css; charset=utf-8"},
			{"/img/ring.png", "img/ring.png", "image/png"},
			{"/img/ring.svg", "img/ring.svg", "image/svg+xml"},
			{"/docs/", "docs/index.html", "text/html; charset=utf-8"},
			{"/docs/guide.txt?x=1", "docs/guide.txt", "text/plain; charset=utf-8"},
			{"/big.bin", "big.bin", "application/octet-stream"},
		} {
			resp, body := do(t, c, "GET", ts.url+tc.path)
			wantStatus(t, resp, 200)
			want := fileOf(t, root, tc.file)
			if body != want {
				t.Fatalf("GET %s: body differs (%d bytes, want %d)", tc.path, len(body), len(want))
			}
			fi, _ := os.Stat(filepath.Join(root, tc.file))
			h := resp.Header
			if h.Get("Content-Type") != tc.ctype || h.Get("Content-Length") != strconv.Itoa(len(want)) ||
				h.Get("Server") != "ringo" || h.Get("ETag") == "" || h.Get("Accept-Ranges") != "bytes" ||
				h.Get("Last-Modified") != fi.ModTime().UTC().Format(http.TimeFormat) {
				t.Fatalf("GET %s: headers %v", tc.path, h)
			}
			if d, err := http.ParseTime(h.Get("Date")); err != nil || time.Since(d) > 5*time.Second {
				t.Fatalf("GET %s: Date %q", tc.path, h.Get("Date"))
			}
			resp, body = do(t, c, "HEAD", ts.url+tc.path)
			wantStatus(t, resp, 200)
			if body != "" || resp.ContentLength != int64(len(want)) {
				t.Fatalf("HEAD %s: body %q, length %d", tc.path, body, resp.ContentLength)
			}
		}
		if ts.requests.Load() != 16 {
			t.Fatalf("requests counter %d, want 16", ts.requests.Load())
		}
	})
}

func TestStatuses(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		ts := start(t, p, root, nil)
		c := client(t)
		resp, _ := do(t, c, "GET", ts.url+"/docs?a=b")
		wantStatus(t, resp, 301)
		if resp.Header.Get("Location") != "/docs/?a=b" {
			t.Fatalf("Location %q", resp.Header.Get("Location"))
		}
		resp, _ = do(t, c, "GET", ts.url+"/nope.html")
		wantStatus(t, resp, 404)
		resp, _ = do(t, c, "GET", ts.url+"/.hidden")
		wantStatus(t, resp, 404)
		resp, _ = do(t, c, "GET", ts.url+"/list/") // no index.html, listing off
		wantStatus(t, resp, 403)
		resp, _ = do(t, c, "GET", ts.url+"/index.html/")
		wantStatus(t, resp, 404)
		for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS", "PATCH"} {
			resp, _ = do(t, c, m, ts.url+"/")
			wantStatus(t, resp, 405)
			if resp.Header.Get("Allow") != "GET, HEAD" {
				t.Fatalf("%s: Allow %q", m, resp.Header.Get("Allow"))
			}
		}
		// The connection survives each of those: one connection served all.
		if n := ts.accepted.Load(); n != 1 {
			t.Fatalf("%d connections accepted, want 1 (keep-alive)", n)
		}
		// A target with more leading slashes still redirects to a path,
		// never to a protocol-relative URL (//docs/ is host docs).
		out := raw(t, ts.addr, "GET ///docs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
		if !strings.Contains(out, "\r\nLocation: /docs/\r\n") {
			t.Fatalf("GET ///docs:\n%.300s", out)
		}
	})
}

// TestListing: a directory without index.html is listed when -listing is
// on: names escaped and sorted, no dotfiles, a slash on directories only.
func TestListing(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		// A directory gets a slash; a symlink to one does not (it is
		// listed as what it is, not followed).
		if err := os.Mkdir(filepath.Join(root, "list", "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("sub", filepath.Join(root, "list", "link")); err != nil {
			t.Fatal(err)
		}
		ts := start(t, p, root, func(c *config) { c.listing = true })
		// Built off the loop: a lookup off the loop per listing, GET or
		// HEAD, however warm the directory.
		off := ts.offLoop.Load()
		resp, body := do(t, client(t), "GET", ts.url+"/list/")
		wantStatus(t, resp, 200)
		head, _ := do(t, client(t), "HEAD", ts.url+"/list/")
		wantStatus(t, head, 200)
		if head.ContentLength != int64(len(body)) {
			t.Errorf("HEAD says Content-Length %d, GET sent %d bytes", head.ContentLength, len(body))
		}
		if n := ts.offLoop.Load() - off; n != 2 {
			t.Errorf("%d lookups off the loop for two listings, want 2", n)
		}
		if !strings.Contains(body, "&lt;b&gt;&amp;x&#34;.txt") || strings.Contains(body, "<b>") || strings.Contains(body, ".secret") {
			t.Fatalf("listing not escaped or shows dotfiles:\n%s", body)
		}
		esc, link, sub := strings.Index(body, "&lt;b&gt;"), strings.Index(body, `<a href="./link">link</a>`), strings.Index(body, `<a href="./sub/">sub/</a>`)
		if esc < 0 || link < 0 || sub < 0 || !(esc < link && link < sub) {
			t.Fatalf("want the entries sorted by name, a slash on the directory only:\n%s", body)
		}
	})
}

func TestConditional(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		ts := start(t, p, root, nil)
		c := client(t)
		resp, _ := do(t, c, "GET", ts.url+"/style.css")
		etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		resp, body := do(t, c, "GET", ts.url+"/style.css", "If-None-Match", etag)
		wantStatus(t, resp, 304)
		if body != "" || resp.Header.Get("ETag") != etag {
			t.Fatalf("304: body %q etag %q", body, resp.Header.Get("ETag"))
		}
		resp, _ = do(t, c, "GET", ts.url+"/style.css", "If-None-Match", `"x", W/`+etag)
		wantStatus(t, resp, 304)
		resp, _ = do(t, c, "GET", ts.url+"/style.css", "If-None-Match", `"other"`)
		wantStatus(t, resp, 200)
		resp, _ = do(t, c, "GET", ts.url+"/style.css", "If-Modified-Since", lm)
		wantStatus(t, resp, 304)
		resp, _ = do(t, c, "GET", ts.url+"/style.css", "If-Modified-Since", "Mon, 02 Jan 2006 15:04:05 GMT")
		wantStatus(t, resp, 200)
		// The two obsolete date formats (RFC 9110 §5.6.7) work too.
		mod, err := http.ParseTime(lm)
		if err != nil {
			t.Fatal(err)
		}
		for _, layout := range []string{time.RFC850, time.ANSIC} {
			resp, _ = do(t, c, "GET", ts.url+"/style.css", "If-Modified-Since", mod.Format(layout))
			wantStatus(t, resp, 304)
		}
		// If-None-Match wins over If-Modified-Since.
		resp, _ = do(t, c, "GET", ts.url+"/style.css", "If-None-Match", `"other"`, "If-Modified-Since", lm)
		wantStatus(t, resp, 200)
	})
}

func TestRanges(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		// An hour old, so that its Last-Modified is a strong validator.
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(filepath.Join(root, "1k.bin"), old, old); err != nil {
			t.Fatal(err)
		}
		ts := start(t, p, root, nil)
		c := client(t)
		small, big := fileOf(t, root, "1k.bin"), fileOf(t, root, "big.bin")
		for _, tc := range []struct {
			path, rng string
			code      int
			want      string
			cr        string
		}{
			{"/1k.bin", "bytes=0-9", 206, small[:10], "bytes 0-9/1024"},
			{"/1k.bin", "bytes=1000-", 206, small[1000:], "bytes 1000-1023/1024"},
			{"/1k.bin", "bytes=-24", 206, small[1000:], "bytes 1000-1023/1024"},
			{"/1k.bin", "bytes=1000-5000", 206, small[1000:], "bytes 1000-1023/1024"},
			{"/big.bin", "bytes=100000-299999", 206, big[100000:300000], "bytes 100000-299999/1048576"},
			{"/1k.bin", "bytes=0-1,5-6", 200, small, ""},
			{"/1k.bin", "chars=0-1", 200, small, ""},
			{"/1k.bin", "bytes=5-1", 200, small, ""},
			{"/1k.bin", "bytes=1024-", 416, "", "bytes */1024"},
			{"/1k.bin", "bytes=-0", 416, "", "bytes */1024"},
			{"/empty.txt", "bytes=-5", 416, "", "bytes */0"},
			{"/empty.txt", "bytes=0-", 416, "", "bytes */0"},
		} {
			resp, body := do(t, c, "GET", ts.url+tc.path, "Range", tc.rng)
			wantStatus(t, resp, tc.code)
			if body != tc.want || resp.Header.Get("Content-Range") != tc.cr {
				t.Fatalf("Range %s: %d bytes, Content-Range %q", tc.rng, len(body), resp.Header.Get("Content-Range"))
			}
		}
		// Range is for GET only (RFC 9110 §14.2): HEAD describes the whole file.
		resp, _ := do(t, c, "HEAD", ts.url+"/1k.bin", "Range", "bytes=0-9")
		wantStatus(t, resp, 200)
		if resp.ContentLength != 1024 || resp.Header.Get("Content-Range") != "" {
			t.Fatalf("HEAD with Range: length %d, Content-Range %q", resp.ContentLength, resp.Header.Get("Content-Range"))
		}
		resp, _ = do(t, c, "GET", ts.url+"/1k.bin")
		etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
		for _, tc := range []struct {
			ifRange string
			code    int
		}{{etag, 206}, {`"stale"`, 200}, {"W/" + etag, 200}, {lm, 206}, {"Mon, 02 Jan 2006 15:04:05 GMT", 200}} {
			resp, _ = do(t, c, "GET", ts.url+"/1k.bin", "Range", "bytes=0-9", "If-Range", tc.ifRange)
			wantStatus(t, resp, tc.code)
		}
		// A file changed within the last second: its date is a weak
		// validator, which If-Range must not match (the whole file).
		if err := os.WriteFile(filepath.Join(root, "fresh.txt"), []byte("0123456789"), 0o644); err != nil {
			t.Fatal(err)
		}
		resp, _ = do(t, c, "GET", ts.url+"/fresh.txt")
		resp, body := do(t, c, "GET", ts.url+"/fresh.txt", "Range", "bytes=0-1", "If-Range", resp.Header.Get("Last-Modified"))
		if resp.StatusCode != 200 || body != "0123456789" {
			t.Fatalf("If-Range with a fresh file's date: %d %q, want 200 and the whole file", resp.StatusCode, body)
		}
	})
}

func TestGzip(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		ts := start(t, p, root, nil)
		c := client(t)
		plain := fileOf(t, root, "style.css")
		resp, body := do(t, c, "GET", ts.url+"/style.css", "Accept-Encoding", "br, gzip;q=0.8")
		wantStatus(t, resp, 200)
		if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" ||
			resp.Header.Get("Content-Type") != "text/css; charset=utf-8" {
			t.Fatalf("gzip headers %v", resp.Header)
		}
		zr, err := gzip.NewReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		dec, err := io.ReadAll(zr)
		if err != nil || string(dec) != plain {
			t.Fatalf("gzip body does not decode to style.css: %v", err)
		}
		for _, ae := range []string{"", "identity", "gzip;q=0", "gzip;q=0, *", "*, gzip;q=0", "*;q=0"} {
			resp, body = do(t, c, "GET", ts.url+"/style.css", "Accept-Encoding", ae)
			if body != plain || resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Vary") != "Accept-Encoding" {
				t.Fatalf("Accept-Encoding %q: encoding %q", ae, resp.Header.Get("Content-Encoding"))
			}
		}
		// No sibling: no Vary.
		resp, _ = do(t, c, "GET", ts.url+"/index.html", "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Vary") != "" {
			t.Fatalf("index.html: %v", resp.Header)
		}
	})
}

func TestProtocol(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		ts := start(t, p, root, nil)
		idx := fileOf(t, root, "index.html")

		// HTTP/1.0: closes unless asked to keep alive.
		out := raw(t, ts.addr, "GET /index.html HTTP/1.0\r\n\r\n", 5*time.Second)
		if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") || !strings.Contains(out, "Connection: close\r\n") || !strings.HasSuffix(out, idx) {
			t.Fatalf("HTTP/1.0:\n%s", out)
		}
		out = raw(t, ts.addr, "GET /index.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /1k.bin HTTP/1.0\r\n\r\n", 5*time.Second)
		if strings.Count(out, "HTTP/1.1 200 OK") != 2 || !strings.Contains(out, "Connection: keep-alive\r\n") {
			t.Fatalf("HTTP/1.0 keep-alive:\n%s", out)
		}
		// close wins over keep-alive in the same header.
		for _, proto := range []string{"1.0", "1.1"} {
			out = raw(t, ts.addr, "GET /index.html HTTP/"+proto+"\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\nGET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n", 5*time.Second)
			if strings.Count(out, "HTTP/1.1 200 OK") != 1 || !strings.Contains(out, "Connection: close\r\n") {
				t.Fatalf("HTTP/%s with Connection: keep-alive, close:\n%s", proto, out)
			}
		}

		// Pipelining: ten requests in one write, answered in order; the
		// last asks to close.
		c, err := stdnet.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var req bytes.Buffer
		paths := []string{"/", "/style.css", "/big.bin", "/1k.bin", "/nope", "/img/ring.png", "/big.bin", "/docs/", "/", "/1k.bin"}
		for i, p := range paths {
			conn := ""
			if i == len(paths)-1 {
				conn = "Connection: close\r\n"
			}
			req.WriteString("GET " + p + " HTTP/1.1\r\nHost: x\r\n" + conn + "\r\n")
		}
		if _, err := c.Write(req.Bytes()); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		resps := readResponses(t, br, len(paths), "GET")
		for i, resp := range resps {
			b, _ := io.ReadAll(resp.Body)
			want := 200
			if paths[i] == "/nope" {
				want = 404
			}
			if resp.StatusCode != want {
				t.Fatalf("pipelined %s: %d", paths[i], resp.StatusCode)
			}
			if paths[i] == "/big.bin" && len(b) != 1<<20 {
				t.Fatalf("pipelined big.bin: %d bytes", len(b))
			}
		}
		if !resps[len(resps)-1].Close {
			t.Fatal("last response does not say Connection: close")
		}
		if n, err := br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("after Connection: close: %d, %v (want EOF)", n, err)
		}

		// Errors: each gets its status and a close; others keep being served.
		keep, err := stdnet.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer keep.Close()
		kr := bufio.NewReader(keep)
		for _, tc := range []struct {
			req  string
			code string
		}{
			{"GARBAGE\r\n\r\n", "400"},
			{"GET / HTTP/1.1\r\n\r\n", "400"}, // no Host
			{"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "400"},
			{"GET / HTTP/1.1\r\nHost: a\r\nbad header\r\n\r\n", "400"},
			{"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", "400"},
			{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", "400"},
			{"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
			{"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "505"},
			{"GET /" + strings.Repeat("a", 9000) + " HTTP/1.1\r\nHost: a\r\n\r\n", "414"},
			{"GET / HTTP/1.1\r\nHost: a\r\nX: " + strings.Repeat("b", 17000) + "\r\n\r\n", "431"},
			{"GET /../x HTTP/1.1\r\nHost: a\r\n\r\n", "400"},
			// RFC 9112 §3.2: a Host that is not uri-host [":" port].
			{"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n", "400"},
			{"GET / HTTP/1.1\r\nHost: /etc\r\n\r\n", "400"},
			{"GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", "400"},
			{"GET / HTTP/1.1\r\nHost: h:8x\r\n\r\n", "400"},
			{"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", "400"},
			// RFC 9110 §8.6: Content-Length values that disagree.
			{"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 37\r\n\r\n", "400"},
			// RFC 9112 §6.3: chunked not the final transfer coding.
			{"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", "400"},
			{"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "400"},
		} {
			out := raw(t, ts.addr, tc.req, 5*time.Second)
			if !strings.HasPrefix(out, "HTTP/1.1 "+tc.code+" ") || !strings.Contains(out, "Connection: close\r\n") {
				t.Fatalf("%.40q: got\n%.300s", tc.req, out)
			}
			// The other connection is still served.
			if _, err := keep.Write([]byte("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			if r := readResponses(t, kr, 1, "GET")[0]; r.StatusCode != 200 {
				t.Fatalf("keep-alive neighbour got %d", r.StatusCode)
			}
		}
		// Valid Host forms, and agreeing Content-Lengths, are served.
		for _, host := range []string{"", "example.com", "example.com:8080", "h:", "[::1]:80", "127.0.0.1", "a-b.c_d~%41!$&'()*+,;="} {
			out := raw(t, ts.addr, "GET /1k.bin HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n", 5*time.Second)
			if !strings.HasPrefix(out, "HTTP/1.1 200 ") {
				t.Fatalf("Host %q: got\n%.300s", host, out)
			}
		}
		out = raw(t, ts.addr, "GET /1k.bin HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 00\r\n\r\nGET /1k.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 5*time.Second)
		if strings.Count(out, "HTTP/1.1 200 ") != 2 {
			t.Fatalf("Content-Length 0 twice:\n%.300s", out)
		}
		// A request with a body is answered, then the connection closes.
		out = raw(t, ts.addr, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\nHost: a\r\n\r\n", 5*time.Second)
		if !strings.HasPrefix(out, "HTTP/1.1 405") || strings.Count(out, "HTTP/1.1") != 1 {
			t.Fatalf("request with body:\n%s", out)
		}

	})
}

func TestMaxConns(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		ts := start(t, p, root, func(c *config) { c.maxConns = 2 })
		var held []stdnet.Conn
		for i := 0; i < 2; i++ {
			h, err := stdnet.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			held = append(held, h)
			h.Write([]byte("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n"))
			readResponses(t, bufio.NewReader(h), 1, "GET")
		}
		out := raw(t, ts.addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 5*time.Second)
		if !strings.HasPrefix(out, "HTTP/1.1 503 ") {
			t.Fatalf("over max-conns:\n%s", out)
		}
		held[0].Close()
		// Room again once a connection is gone.
		deadline := time.Now().Add(5 * time.Second)
		for ts.open.Load() > 1 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		out = raw(t, ts.addr, "GET /1k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
		if !strings.HasPrefix(out, "HTTP/1.1 200 ") {
			t.Fatalf("after a slot freed:\n%.200s", out)
		}
	})
}

func TestTimeouts(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		ts := start(t, p, root, func(c *config) {
			c.headerTimeout = 300 * time.Millisecond
			c.idleTimeout = 500 * time.Millisecond
		})
		// A slow client that never finishes its head is cut off.
		c, err := stdnet.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET / HTTP/1.1\r\nHo"))
		t0 := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("slow head: read %d, %v (want EOF)", n, err)
		}
		if d := time.Since(t0); d > 3*time.Second {
			t.Fatalf("header timeout took %v", d)
		}
		// An idle keep-alive connection is closed.
		c2, err := stdnet.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		c2.Write([]byte("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n"))
		br := bufio.NewReader(c2)
		readResponses(t, br, 1, "GET")
		c2.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := br.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("idle: read %d, %v (want EOF)", n, err)
		}

		// A pipelining client always has the next request partly sent, and
		// each request completes well within the header timeout: the
		// timeout is per request, so it is served throughout.
		c3, err := stdnet.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c3.Close()
		got := make(chan int, 1)
		go func() {
			resps := 0
			br := bufio.NewReader(c3)
			for {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					got <- resps
					return
				}
				io.Copy(io.Discard, resp.Body)
				resps++
			}
		}()
		req := "GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n"
		half := len(req) / 2
		c3.Write([]byte(req[:half]))
		const n = 12 // 12 x 50 ms: twice the header timeout
		for i := 0; i < n; i++ {
			time.Sleep(50 * time.Millisecond)
			last := req[:half]
			if i == n-1 {
				last = "GET /1k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
			}
			if _, err := c3.Write([]byte(req[half:] + last)); err != nil {
				t.Fatalf("pipelined write %d: %v", i, err)
			}
		}
		select {
		case resps := <-got:
			if resps != n+1 {
				t.Fatalf("pipelined halves: %d responses, want %d", resps, n+1)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("pipelined halves: no end of responses")
		}
	})
}

// TestLingeringClose: a request with a body, which the server answers
// without reading and then closes after, with the body arriving while the
// large response is still on its way: the response arrives whole (closing
// with the body unread would reset the connection and destroy it).
func TestLingeringClose(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		ts := start(t, p, makeRoot(t), nil)
		c, err := stdnet.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*stdnet.TCPConn).SetReadBuffer(16 << 10)
		c.Write([]byte("GET /big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"))
		time.Sleep(100 * time.Millisecond)
		c.Write(bytes.Repeat([]byte("b"), 1000))
		time.Sleep(100 * time.Millisecond)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, resp, 200)
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || n != 1<<20 || !resp.Close {
			t.Fatalf("read %d of %d bytes: %v (Connection: close %v)", n, resp.ContentLength, err, resp.Close)
		}
	})
}

// TestLingeringCloseUnderInput: a client that goes on sending while it
// reads a response the server will close after (a body the server never
// reads, or requests pipelined behind Connection: close) still gets the
// whole response. The server used to stop dropping its input after 64 KiB
// and close with input unread, and the kernel's reset destroyed what of
// the response was not yet delivered: 100-450 KB of 1 MiB arrived.
func TestLingeringCloseUnderInput(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		ts := start(t, p, makeRoot(t), nil)
		for _, tc := range []struct {
			name, head string
			more       []byte
		}{
			{"body", "GET /big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n", bytes.Repeat([]byte("A"), 900000)},
			{"pipelined", "GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
				bytes.Repeat([]byte("GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n"), 8000)},
		} {
			for round := 0; round < 3; round++ {
				c, err := stdnet.Dial("tcp", ts.addr)
				if err != nil {
					t.Fatal(err)
				}
				c.(*stdnet.TCPConn).SetReadBuffer(32 << 10) // a slow reader: the response stays queued
				go func() {
					c.Write([]byte(tc.head))
					c.Write(tc.more) // fails once the server closes: fine
				}()
				c.SetReadDeadline(time.Now().Add(20 * time.Second))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					c.Close()
					t.Fatalf("%s: %v", tc.name, err)
				}
				n, err := io.Copy(io.Discard, resp.Body)
				c.Close()
				if err != nil || n != 1<<20 {
					t.Fatalf("%s, round %d: %d of %d bytes: %v", tc.name, round, n, 1<<20, err)
				}
			}
		}
	})
}

// TestBlankLines: empty lines before a request are skipped, but a client
// that sends nothing else gets 400 once they exceed a request line's
// worth, and they are not kept in memory meanwhile.
func TestBlankLines(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		ts := start(t, p, makeRoot(t), nil)
		out := raw(t, ts.addr, "\r\n\n\r\nGET /1k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
		if !strings.HasPrefix(out, "HTTP/1.1 200 OK\r\n") {
			t.Fatalf("request after blank lines:\n%.200s", out)
		}
		out = raw(t, ts.addr, strings.Repeat("\r\n", maxRequestLine), 5*time.Second)
		if !strings.HasPrefix(out, "HTTP/1.1 400 ") {
			t.Fatalf("a flood of blank lines:\n%.200s", out)
		}
	})
	s := newSession(&server{cfg: defaultConfig()}, "")
	for range 100 {
		s.feed([]byte("\r\n\r\n"))
	}
	if len(s.in) != 0 || s.closing {
		t.Fatalf("after 400 bytes of blank lines: %d kept, closing %v", len(s.in), s.closing)
	}
}

// TestNonReader: a client that asks for a large file and reads nothing
// loses its connection after the write timeout, on both transports.
func TestNonReader(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		if err := os.WriteFile(filepath.Join(root, "huge.bin"), bigContent(16<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		ts := start(t, p, root, func(c *config) { c.writeTimeout = 300 * time.Millisecond })
		c, err := stdnet.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*stdnet.TCPConn).SetReadBuffer(4096)
		c.Write([]byte("GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n"))
		deadline := time.Now().Add(5 * time.Second)
		for ts.open.Load() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("connection still open 5 s after its client stopped reading")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}

// TestSlowReader: a client that reads slowly but steadily gets the whole
// response even though it takes many write timeouts, on both transports:
// -write-timeout bounds a stall, as nginx's send_timeout, not the response.
// The conn transport used to cut it after one timeout per SendFile.
func TestSlowReader(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		const size = 8 << 20
		if err := os.WriteFile(filepath.Join(root, "huge.bin"), bigContent(size), 0o644); err != nil {
			t.Fatal(err)
		}
		const timeout = 100 * time.Millisecond
		ts := start(t, p, root, func(c *config) { c.writeTimeout = timeout })
		// The server may rightly cut off a reader that was itself away
		// for nearly the timeout (a loaded machine can stall the test's
		// goroutine that long): such a run is tried again, three at most.
		for attempt := 1; ; attempt++ {
			c, err := stdnet.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			c.(*stdnet.TCPConn).SetReadBuffer(64 << 10)
			c.Write([]byte("GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n"))
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatal(err)
			}
			// About 8 MB/s: a second and more, ten timeouts at least,
			// with no gap near one timeout. The server's socket buffer
			// (up to 4 MiB) drains for longer than a timeout before it
			// can send again: progress it sees only in the kernel's
			// send queue.
			start := time.Now()
			buf := make([]byte, 128<<10)
			var n int64
			var rerr error
			var gap time.Duration // longest time the reader was away
			last := start
			for rerr == nil {
				time.Sleep(15 * time.Millisecond)
				gap = max(gap, time.Since(last))
				var m int
				m, rerr = io.ReadFull(resp.Body, buf)
				last = time.Now()
				n += int64(m)
			}
			c.Close()
			took := time.Since(start)
			switch {
			case n == size && took < time.Second:
				t.Fatalf("read in %v: not slow enough to test the timeout", took)
			case n == size:
				return
			case gap >= timeout*9/10 && attempt < 3:
				t.Logf("attempt %d: the reader was away %v, near the %v timeout: the cut was right; again", attempt, gap, timeout)
			default:
				t.Fatalf("slow reader got %d of %d bytes in %v (away at most %v): %v", n, size, took, gap, rerr)
			}
		}
	})
}

// TestWriteTimeoutKeepAlivePause: with a write timeout under a second, a
// keep-alive client that pauses longer than it between requests gets its
// next response; the conn transport's deadline, moved at most once a
// second, had passed already and the response failed at once.
func TestWriteTimeoutKeepAlivePause(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		const size = 100 << 10
		if err := os.WriteFile(filepath.Join(root, "mid.bin"), bigContent(size), 0o644); err != nil {
			t.Fatal(err)
		}
		ts := start(t, p, root, func(c *config) { c.writeTimeout = 100 * time.Millisecond })
		c, err := stdnet.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		for i := range 2 {
			if i > 0 {
				time.Sleep(300 * time.Millisecond)
			}
			c.Write([]byte("GET /mid.bin HTTP/1.1\r\nHost: x\r\n\r\n"))
			resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
			if err != nil {
				t.Fatalf("response %d: %v", i, err)
			}
			if n, err := io.Copy(io.Discard, resp.Body); n != size {
				t.Fatalf("response %d: %d of %d bytes: %v", i, n, size, err)
			}
		}
	})
}

// TestWriteTimeoutZero: -write-timeout 0 means no timeout on both
// transports; the conn transport set a deadline of now and failed every
// response.
func TestWriteTimeoutZero(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		ts := start(t, p, root, func(c *config) { c.writeTimeout = 0 })
		c, err := stdnet.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write([]byte("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"))
		resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: "GET"})
		if err != nil {
			t.Fatal(err)
		}
		want := len(fileOf(t, root, "big.bin"))
		if n, err := io.Copy(io.Discard, resp.Body); n != int64(want) {
			t.Fatalf("write-timeout 0: %d of %d bytes: %v", n, want, err)
		}
	})
}

func TestChangesOnDisk(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		ts := start(t, p, root, func(c *config) { c.revalidate = 20 * time.Millisecond })
		c := client(t)
		name := filepath.Join(root, "docs", "guide.txt")
		_, body := do(t, c, "GET", ts.url+"/docs/guide.txt")
		if body != fileOf(t, root, "docs/guide.txt") {
			t.Fatal("first body")
		}
		if err := os.WriteFile(name+".new", []byte("new content\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(name+".new", name); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if _, body = do(t, c, "GET", ts.url+"/docs/guide.txt"); body != "new content\n" {
			t.Fatalf("after replace: %q", body)
		}
		// In place (same inode): a size change is noticed too.
		if err := os.WriteFile(name, []byte("in place, longer content\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		if _, body = do(t, c, "GET", ts.url+"/docs/guide.txt"); body != "in place, longer content\n" {
			t.Fatalf("after rewrite: %q", body)
		}
		os.Remove(name)
		time.Sleep(50 * time.Millisecond)
		if resp, _ := do(t, c, "GET", ts.url+"/docs/guide.txt"); resp.StatusCode != 404 {
			t.Fatalf("after remove: %d", resp.StatusCode)
		}
	})
}

// TestShrinkDuringSend truncates a large file while its response is being
// sent: the response ends short and the connection closes; the server
// keeps serving.
func TestShrinkDuringSend(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		name := filepath.Join(root, "grow.bin")
		const size = 32 << 20
		if err := os.WriteFile(name, bigContent(size), 0o644); err != nil {
			t.Fatal(err)
		}
		ts := start(t, p, root, nil)
		d := stdnet.Dialer{Control: nil}
		c, err := d.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.(*stdnet.TCPConn).SetReadBuffer(64 << 10)
		c.Write([]byte("GET /grow.bin HTTP/1.1\r\nHost: x\r\n\r\n"))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil || resp.ContentLength != size {
			t.Fatalf("response: %v, length %d", err, resp.ContentLength)
		}
		time.Sleep(100 * time.Millisecond) // the send fills the socket and waits
		if err := os.Truncate(name, 1<<20); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := io.Copy(io.Discard, resp.Body)
		if err != io.ErrUnexpectedEOF || n >= size {
			t.Fatalf("shrunk file: read %d, %v (want a short body and ErrUnexpectedEOF)", n, err)
		}
		resp, _ = do(t, client(t), "GET", ts.url+"/1k.bin")
		wantStatus(t, resp, 200)
	})
}

func TestAccessLog(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		logf := filepath.Join(t.TempDir(), "access.log")
		const huge = 16 << 20
		if err := os.WriteFile(filepath.Join(root, "huge.bin"), bigContent(huge), 0o644); err != nil {
			t.Fatal(err)
		}
		ts := start(t, p, root, func(c *config) { c.logPath = logf })
		c := client(t)
		do(t, c, "GET", ts.url+"/1k.bin")
		do(t, c, "GET", ts.url+"/nope%22x")
		// The size field is body bytes sent: none for HEAD, all of a
		// file sent by SendFile, and what went out of one cut short.
		do(t, c, "HEAD", ts.url+"/1k.bin")
		do(t, c, "HEAD", ts.url+"/nope")
		do(t, c, "GET", ts.url+"/big.bin")
		cut, err := stdnet.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		cut.(*stdnet.TCPConn).SetReadBuffer(4096)
		cut.Write([]byte("GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n"))
		io.ReadFull(cut, make([]byte, 64<<10))
		cut.(*stdnet.TCPConn).SetLinger(0)
		cut.Close() // a reset: the server's send fails
		// The cut-off response is logged once its send has failed.
		var b []byte
		var lines []string
		for deadline := time.Now().Add(5 * time.Second); len(lines) < 6 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			ts.alog.flush()
			if b, err = os.ReadFile(logf); err != nil {
				t.Fatal(err)
			}
			lines = strings.Split(strings.TrimSpace(string(b)), "\n")
		}
		bigSize := len(fileOf(t, root, "big.bin"))
		want := []string{`"GET /1k.bin HTTP/1.1" 200 1024`, `"GET /nope%22x HTTP/1.1" 404 10`,
			`"HEAD /1k.bin HTTP/1.1" 200 0`, `"HEAD /nope HTTP/1.1" 404 0`,
			fmt.Sprintf(`"GET /big.bin HTTP/1.1" 200 %d`, bigSize)}
		if len(lines) != len(want)+1 || !strings.HasPrefix(lines[0], "127.0.0.1 - - [") {
			t.Fatalf("access log:\n%s", b)
		}
		for i, w := range want {
			if !strings.HasSuffix(lines[i], w) {
				t.Fatalf("access log line %d: %q, want it to end %q", i, lines[i], w)
			}
		}
		last := lines[len(want)]
		var sent int64
		if i := strings.LastIndexByte(last, ' '); i > 0 {
			sent, _ = strconv.ParseInt(last[i+1:], 10, 64)
		}
		if !strings.Contains(last, `"GET /huge.bin HTTP/1.1" 200 `) || sent < 64<<10 || sent >= huge {
			t.Fatalf("access log of a response cut short: %q, want 200 and between 64 KiB and %d bytes", last, huge)
		}
	})
}

// TestShutdown: a response in flight finishes, new connections are refused.
func TestShutdown(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		cfg := defaultConfig()
		cfg.root, cfg.addr = root, "127.0.0.1:0"
		s, err := newServer(cfg, p)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := s.listen()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.serve(ln) }()
		addr := ln.Addr().String()
		idle, err := stdnet.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer idle.Close()
		busy, err := stdnet.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		busy.(*stdnet.TCPConn).SetReadBuffer(32 << 10)
		if err := os.WriteFile(filepath.Join(root, "huge.bin"), bigContent(16<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		busy.Write([]byte("GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n"))
		br := bufio.NewReader(busy)
		resp, err := http.ReadResponse(br, &http.Request{Method: "GET"})
		if err != nil {
			t.Fatal(err)
		}
		shut := make(chan error, 1)
		go func() {
			ctx, cancel := contextWithTimeout(10 * time.Second)
			defer cancel()
			shut <- s.shutdown(ctx)
		}()
		time.Sleep(100 * time.Millisecond)
		if _, err := stdnet.DialTimeout("tcp", addr, time.Second); err == nil {
			t.Fatal("dial after shutdown began succeeded")
		}
		n, err := io.Copy(io.Discard, resp.Body)
		if err != nil || n != 16<<20 {
			t.Fatalf("in-flight response: %d bytes, %v", n, err)
		}
		if err := <-shut; err != nil {
			t.Fatalf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Fatalf("serve: %v", err)
		}
		idle.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := idle.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("idle connection after shutdown: %v", err)
		}
	})
}

// TestShutdownBeforeServe: a shutdown that comes right after startup (a
// signal at startup, or a quick test on a loaded machine) ends serving.
// On the conn transport it runs before the serving goroutine has started,
// which used to leave Accept parked forever on a listener nobody closed.
func TestShutdownBeforeServe(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		cfg := defaultConfig()
		cfg.root, cfg.addr, cfg.api = makeRoot(t), "127.0.0.1:0", testAPI
		s, err := newServer(cfg, p)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		var addr string
		if testAPI == "callback" {
			evs, err := s.serveEvents()
			if err != nil {
				t.Fatal(err)
			}
			addr = evs.Addr().String()
			done <- s.shutdown(context.Background())
		} else {
			ln, err := s.listen()
			if err != nil {
				t.Fatal(err)
			}
			addr = ln.Addr().String()
			defer ln.Close()
			if err := s.shutdown(context.Background()); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			go func() { done <- s.serve(ln) }()
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve or shutdown: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("still serving 10s after shutdown")
		}
		if _, err := stdnet.DialTimeout("tcp", addr, time.Second); err == nil {
			t.Fatal("listener still open after shutdown")
		}
	})
}

// TestNotSentLowat: every connection carries -notsent-lowat, so a large
// body is fed to the kernel as it sends instead of filling the socket
// buffer; 0 leaves the system's setting.
func TestNotSentLowat(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		for _, lowat := range []int{defaultNotSentLowat, 0} {
			ts := start(t, p, root, func(c *config) { c.notSentLowat = lowat })
			c, err := stdnet.Dial("tcp", ts.addr)
			if err != nil {
				t.Fatal(err)
			}
			c.(*stdnet.TCPConn).SetReadBuffer(4096)
			c.Write([]byte("GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"))
			fd := serverFd(t, c)
			got, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT)
			if err != nil || got != lowat {
				t.Fatalf("-notsent-lowat %d: the server's connection has %d (%v)", lowat, got, err)
			}
			if lowat > 0 {
				// The client reads nothing: once the response stops
				// moving, the kernel holds about the mark unsent
				// (checked before each packet of up to 64 KiB).
				time.Sleep(100 * time.Millisecond)
				unsent, err := unix.IoctlGetInt(fd, unix.SIOCOUTQNSD)
				if err != nil || unsent > lowat+64<<10 {
					t.Errorf("%d bytes unsent (%v), want at most %d", unsent, err, lowat+64<<10)
				}
			}
			c.Close()
		}
	})
}

// serverFd finds, among this process's descriptors, the server's end of
// the client connection c.
func serverFd(t *testing.T, c stdnet.Conn) int {
	t.Helper()
	local, peer := c.RemoteAddr().(*stdnet.TCPAddr), c.LocalAddr().(*stdnet.TCPAddr)
	port := func(sa unix.Sockaddr) int {
		if sa, ok := sa.(*unix.SockaddrInet4); ok {
			return sa.Port
		}
		return -1
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			fd, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			sa, err1 := unix.Getsockname(fd)
			pa, err2 := unix.Getpeername(fd)
			if err1 == nil && err2 == nil && port(sa) == local.Port && port(pa) == peer.Port {
				return fd
			}
		}
		time.Sleep(10 * time.Millisecond) // not accepted yet
	}
	t.Fatalf("no descriptor of this process is the server's end of %v", c.LocalAddr())
	return -1
}
