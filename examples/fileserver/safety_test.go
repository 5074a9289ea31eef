package main

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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

// TestWalkMatchesOpenat2: the user-space walk used without openat2 opens
// the same file as openat2 with RESOLVE_BENEATH, or refuses what it
// refuses, for every path here (symlinks in, out, absolute, looping,
// through directories, ".." inside and above the root).
func TestWalkMatchesOpenat2(t *testing.T) {
	if !haveOpenat2() {
		t.Skip("openat2 unavailable here: nothing to compare the walk with")
	}
	root := makeRoot(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink("../docs", root+"/img/docs"))
	must(os.Symlink("img/docs/up", root+"/chain"))
	must(os.Symlink("docs/", root+"/dirlink"))
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	must(err)
	defer unix.Close(rfd)
	id := func(fd int) [2]uint64 {
		var st unix.Stat_t
		must(unix.Fstat(fd, &st))
		return [2]uint64{st.Dev, st.Ino}
	}
	for _, rel := range []string{
		".", "index.html", "in", "docs", "docs/up", "docs/esc", "docs/loop",
		"out", "out/secret.txt", "outfile", "abs", "img/docs/up", "chain",
		"dirlink", "dirlink/up", "docs/../index.html", "docs/../../x",
		"index.html/x", "nope", "docs/nope", "img/../docs/./up",
	} {
		want, werr := unix.Openat2(rfd, rel, &unix.OpenHow{Flags: openFlags, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS})
		got, gerr := walkBeneath(rfd, rel)
		switch {
		case werr == nil && gerr == nil:
			if id(want) != id(got) {
				t.Errorf("%q: the walk opened another file than openat2", rel)
			}
		case werr != nil && gerr != nil:
			if errStatus(werr) != errStatus(gerr) {
				t.Errorf("%q: openat2 %v, walk %v: different statuses", rel, werr, gerr)
			}
		default:
			t.Errorf("%q: openat2 %v, walk %v", rel, werr, gerr)
		}
		for _, fd := range []int{want, got} {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}
}
