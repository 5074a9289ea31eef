package main

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRun runs the program as main does, on each backend: the start line
// names the URL, the backend and why; the metrics endpoint serves ringo's
// counters, the server's and the goroutine count; stop shuts it down.
func TestRun(t *testing.T) {
	for _, backend := range []string{"uring", "epoll"} {
		t.Run(backend, func(t *testing.T) {
			if backend == "uring" && uringP == nil {
				t.Skipf("io_uring unavailable: %v", uringErr)
			}
			var stdout, stderr syncBuffer
			stop := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- run([]string{"-root", "../../testdata/www", "-addr", "127.0.0.1:0", "-backend", backend,
					"-loops", "1", "-metrics", "127.0.0.1:0"}, &stdout, &stderr, stop)
			}()
			re := regexp.MustCompile(`at (http://127\.0\.0\.1:\d+/) on ` + backend + ` \((.+)\), 1 loops, callback API\n`)
			mre := regexp.MustCompile(`metrics at (http://\S+/debug/vars)`)
			deadline := time.Now().Add(5 * time.Second)
			for !mre.MatchString(stdout.String()) && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			m := re.FindStringSubmatch(stdout.String())
			mm := mre.FindStringSubmatch(stdout.String())
			if m == nil || mm == nil {
				close(stop)
				t.Fatalf("start lines: %q (stderr %q)", stdout.String(), stderr.String())
			}
			c := client(t)
			resp, body := do(t, c, "GET", m[1])
			wantStatus(t, resp, 200)
			if !strings.Contains(body, "<h1>ringo</h1>") {
				t.Fatal("index page")
			}
			resp, err := c.Get(mm[1])
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var vars struct {
				Goroutines int
				Ringo      struct {
					Backend string
					Loops   []map[string]any
				}
				Fileserver struct{ Requests int64 }
			}
			if err := json.Unmarshal(b, &vars); err != nil {
				t.Fatalf("/debug/vars: %v\n%s", err, b)
			}
			if vars.Goroutines <= 0 || vars.Ringo.Backend != backend || len(vars.Ringo.Loops) != 1 || vars.Fileserver.Requests < 1 {
				t.Fatalf("/debug/vars: %+v", vars)
			}
			close(stop)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			c.CloseIdleConnections()
		})
	}
}

func TestRunErrors(t *testing.T) {
	var out, errb syncBuffer
	for _, args := range [][]string{
		{"-root", "/nonexistent"},
		{"-backend", "kqueue"},
		{"-wait", "spin"},
		{"-spin", "-1us"},
		{"-notsent-lowat", "-1"},
		{"-loops", "-1"},
		{"-loops", "100000"}, // a thread each: past Go's 10,000-thread limit
		{"-bogus"},
		{"extra"},
	} {
		if err := run(args, &out, &errb, nil); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
	if err := run([]string{"-h"}, &out, &errb, nil); err != nil || !strings.Contains(errb.String(), "-root") || !strings.Contains(errb.String(), "-backend") {
		t.Errorf("-h: %v\n%s", err, errb.String())
	}
}
