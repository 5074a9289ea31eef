package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	stdnet "net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringo-io/ringo/proactor"
)

// The two proactors every behavioural test runs on; uringP is nil where
// io_uring cannot serve (those subtests skip with the reason).
// The proactors the tests serve on, per backend and wait mode: as in the
// program (-wait auto), the callback API runs on WaitEnter loops and the
// conn API on WaitNetpoll loops.
var (
	uringP, epollP           *proactor.Proactor // WaitNetpoll
	uringEnterP, epollEnterP *proactor.Proactor // WaitEnter
	uringErr                 error
)

func TestMain(m *testing.M) {
	uringP, uringErr = proactor.New(proactor.Options{Backend: proactor.Uring, Loops: 2, Logger: quietLogger()})
	if uringErr == nil {
		uringEnterP, uringErr = proactor.New(proactor.Options{Backend: proactor.Uring, Loops: 2, Wait: proactor.WaitEnter, Logger: quietLogger()})
	}
	var err error
	epollP, err = proactor.New(proactor.Options{Backend: proactor.Epoll, Loops: 2, Logger: quietLogger()})
	if err == nil {
		epollEnterP, err = proactor.New(proactor.Options{Backend: proactor.Epoll, Loops: 2, Wait: proactor.WaitEnter, Logger: quietLogger()})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "epoll proactor:", err)
		os.Exit(1)
	}
	code := m.Run()
	for _, p := range []*proactor.Proactor{uringP, uringEnterP, epollP, epollEnterP} {
		if p != nil {
			p.Close()
		}
	}
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("internal/poll.runtime_pollWait")); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// testAPI is the transport start uses; drivers sets it per subtest (the
// tests do not run in parallel).
var testAPI = "callback"

// drivers runs f once per driver and transport.
func drivers(t *testing.T, f func(t *testing.T, p *proactor.Proactor)) {
	for _, api := range []string{"callback", "conn"} {
		up, ep := uringP, epollP
		if api == "callback" {
			up, ep = uringEnterP, epollEnterP
		}
		t.Run(api+"/uring", func(t *testing.T) {
			if up == nil {
				t.Skipf("io_uring unavailable: %v", uringErr)
			}
			testAPI = api
			f(t, up)
		})
		t.Run(api+"/epoll", func(t *testing.T) {
			testAPI = api
			f(t, ep)
		})
	}
}

// makeRoot copies testdata/www into a temporary directory and adds what
// the tests need: a large file, names that need escaping, dotfiles, and
// symlinks in and out of the root (secret.txt lies outside).
func makeRoot(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "www")
	if err := os.CopyFS(root, os.DirFS("../../testdata/www")); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(base, "secret.txt"), []byte("SECRET"), 0o644))
	must(os.Symlink(base, filepath.Join(root, "out")))
	must(os.Symlink(filepath.Join(base, "secret.txt"), filepath.Join(root, "outfile")))
	must(os.Symlink("/etc/passwd", filepath.Join(root, "abs")))
	must(os.Symlink("index.html", filepath.Join(root, "in")))
	must(os.Symlink("../index.html", filepath.Join(root, "docs", "up")))
	must(os.Symlink("../../secret.txt", filepath.Join(root, "docs", "esc")))
	must(os.Symlink("loop", filepath.Join(root, "docs", "loop")))
	must(os.WriteFile(filepath.Join(root, "docs", ".hidden"), []byte("hidden"), 0o644))
	must(os.MkdirAll(filepath.Join(root, "list"), 0o755))
	must(os.WriteFile(filepath.Join(root, "list", "<b>&x\".txt"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(root, "list", ".secret"), []byte("x"), 0o644))
	must(os.WriteFile(filepath.Join(root, "big.bin"), bigContent(1<<20), 0o644))
	must(os.WriteFile(filepath.Join(root, "empty.txt"), nil, 0o644))
	// Directories whose index.html is a symlink, in and out of the root.
	must(os.MkdirAll(filepath.Join(root, "slidx"), 0o755))
	must(os.Symlink("../index.html", filepath.Join(root, "slidx", "index.html")))
	must(os.MkdirAll(filepath.Join(root, "escidx"), 0o755))
	must(os.Symlink("../../secret.txt", filepath.Join(root, "escidx", "index.html")))
	return root
}

func bigContent(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>10)
	}
	return b
}

type testServer struct {
	*server
	url  string
	addr string
	done chan error
}

func start(t *testing.T, p *proactor.Proactor, root string, mod func(*config)) *testServer {
	t.Helper()
	cfg := defaultConfig()
	cfg.root, cfg.addr, cfg.api = root, "127.0.0.1:0", testAPI
	if mod != nil {
		mod(&cfg)
	}
	s, err := newServer(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{server: s, done: make(chan error, 1)}
	if cfg.api == "callback" {
		evs, err := s.serveEvents()
		if err != nil {
			t.Fatal(err)
		}
		ts.addr = evs.Addr().String()
		ts.done <- nil
	} else {
		ln, err := s.listen()
		if err != nil {
			t.Fatal(err)
		}
		ts.addr = ln.Addr().String()
		go func() { ts.done <- s.serve(ln) }()
	}
	ts.url = "http://" + ts.addr
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		// Bounded, so that a server that does not stop fails this test
		// by name instead of hanging the package until go test's timeout.
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve still running 30s after shutdown")
		}
	})
	return ts
}

func client(t *testing.T) *http.Client {
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	// A bounded wait: a lost response fails the test in seconds.
	return &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func do(t *testing.T, c *http.Client, method, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp, string(body)
}

// raw sends req on a fresh connection and returns everything the server
// sent until it closed or went quiet for wait.
func raw(t *testing.T, addr, req string, wait time.Duration) string {
	t.Helper()
	c, err := stdnet.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	b, _ := io.ReadAll(c)
	return string(b)
}

// readResponses parses n responses from r.
func readResponses(t *testing.T, r *bufio.Reader, n int, method string) []*http.Response {
	t.Helper()
	var out []*http.Response
	for i := 0; i < n; i++ {
		resp, err := http.ReadResponse(r, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("response %d: %v", i, err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", i, err)
		}
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		out = append(out, resp)
	}
	return out
}

func wantStatus(t *testing.T, resp *http.Response, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("%s %s: status %d, want %d", resp.Request.Method, resp.Request.URL, resp.StatusCode, code)
	}
}

func fileOf(t *testing.T, root, name string) string {
	b, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
