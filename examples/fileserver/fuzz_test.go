package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// FuzzParseRequest feeds arbitrary bytes to the request parser and the
// path cleaner: they must not panic, must stay within their input, and a
// path they accept must never climb out of the root or carry a byte the
// file system could misread.
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("GET /a/b?c HTTP/1.0\nConnection: keep-alive\nRange: bytes=1-2\n\n"))
	f.Add([]byte("HEAD http://x/%2e%2e/ HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip;q=0\r\n\r\n"))
	if b, err := os.ReadFile("../../testdata/fileserver/traversal.txt"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if line != "" && line[0] != '#' {
				target := line[:max(strings.LastIndexByte(line, ' '), 0)]
				f.Add([]byte("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"))
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r request
		n, st := parseRequest(b, &r)
		if st != parseOK {
			return
		}
		if n <= 0 || n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		if r.minor >= 1 && !r.host {
			t.Fatal("HTTP/1.1 request without Host accepted")
		}
		off, cnt, rs := parseRange(r.rangeHdr, 1000)
		if rs == rangeOK && (off < 0 || cnt <= 0 || off+cnt > 1000) {
			t.Fatalf("range %q -> %d+%d", r.rangeHdr, off, cnt)
		}
		rel, _, hidden, ok := cleanPath(nil, r.target)
		if !ok {
			return
		}
		if bytes.HasPrefix(rel, []byte("/")) || bytes.ContainsAny(rel, "\x00\\") {
			t.Fatalf("cleanPath(%q) = %q", r.target, rel)
		}
		for _, seg := range bytes.Split(rel, []byte("/")) {
			if len(seg) == 0 && len(rel) > 0 {
				t.Fatalf("cleanPath(%q) = %q: empty segment", r.target, rel)
			}
			if string(seg) == ".." || string(seg) == "." {
				t.Fatalf("cleanPath(%q) = %q: dot segment", r.target, rel)
			}
			if len(seg) > 0 && seg[0] == '.' && !hidden {
				t.Fatalf("cleanPath(%q) = %q: dotfile not flagged", r.target, rel)
			}
		}
	})
}
