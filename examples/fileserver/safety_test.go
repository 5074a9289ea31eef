package main

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ringo-io/ringo/proactor"
)

// TestTraversalCorpus sends every target of testdata/fileserver/traversal.txt
// raw (net/http's client would clean them) and checks the status; nothing
// may ever answer with the secret outside the root. It runs with openat2
// and with the component walk used where openat2 is missing.
func TestTraversalCorpus(t *testing.T) {
	f, err := os.Open("../../testdata/fileserver/traversal.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type tc struct{ target, want string }
	var cases []tc
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		cases = append(cases, tc{line[:i], line[i+1:]})
	}
	if len(cases) < 20 {
		t.Fatalf("corpus has %d cases", len(cases))
	}
	for _, mode := range []string{"openat2", "walk"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "openat2" && !haveOpenat2() {
				t.Skip("openat2 unavailable here")
			}
			forceWalk = mode == "walk"
			defer func() { forceWalk = false }()
			drivers(t, func(t *testing.T, p *proactor.Proactor) {
				root := makeRoot(t)
				ts := start(t, p, root, nil)
				for _, c := range cases {
					out := raw(t, ts.addr, "GET "+c.target+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5*time.Second)
					if strings.Contains(out, "SECRET") || strings.Contains(out, "root:") {
						t.Fatalf("%s: served a file outside the root:\n%s", c.target, out)
					}
					got := ""
					if len(out) >= 12 {
						got = out[9:12]
					}
					ok := false
					for _, w := range strings.Split(c.want, "|") {
						ok = ok || got == w
					}
					if !ok {
						t.Errorf("%s: status %q, want %s", c.target, got, c.want)
					}
				}
			})
		})
	}
}
