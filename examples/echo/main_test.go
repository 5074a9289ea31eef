package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	stdnet "net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func freePort(t *testing.T) string {
	ln, err := stdnet.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestEcho runs the server with each API on each backend, echoes through
// it, and reads its metrics.
func TestEcho(t *testing.T) {
	// -wait auto is enter for callback and netpoll for conn; the other
	// two pairings run too.
	for _, aw := range []struct{ api, wait string }{{"callback", "auto"}, {"callback", "netpoll"}, {"conn", "auto"}, {"conn", "enter"}} {
		api := aw.api
		for _, backend := range []string{"uring", "epoll"} {
			t.Run(api+"-"+aw.wait+"/"+backend, func(t *testing.T) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				metrics := freePort(t)
				var out, errb bytes.Buffer
				ready := make(chan string, 1)
				done := make(chan int, 1)
				go func() {
					done <- run(ctx, []string{"-api", api, "-wait", aw.wait, "-backend", backend, "-loops", "2", "-addr", "127.0.0.1:0", "-metrics", metrics}, &out, &errb, ready)
				}()
				var addr string
				select {
				case addr = <-ready:
				case code := <-done:
					if backend == "uring" && strings.Contains(errb.String(), "unavailable") {
						t.Skipf("io_uring unavailable: %s", errb.String())
					}
					t.Fatalf("exit %d: %s", code, errb.String())
				}
				c, err := stdnet.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				msg := bytes.Repeat([]byte("ringo "), 20000)
				go c.Write(msg)
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("echo: %v", err)
				}
				resp, err := http.Get("http://" + metrics + "/debug/vars")
				if err != nil {
					t.Fatal(err)
				}
				var vars map[string]json.RawMessage
				err = json.NewDecoder(resp.Body).Decode(&vars)
				resp.Body.Close()
				if err != nil || vars["goroutines"] == nil {
					t.Fatalf("/debug/vars: %v, goroutines %s", err, vars["goroutines"])
				}
				if api == "callback" && !strings.Contains(string(vars["echo"]), `"BytesIn":120000`) {
					t.Fatalf("echo metrics %s", vars["echo"])
				}
				c.Close()
				cancel()
				if code := <-done; code != 0 {
					t.Fatalf("exit %d: %s", code, errb.String())
				}
				if line := out.String(); !strings.Contains(line, "backend="+backend) || !strings.Contains(line, "reason=") || !strings.Contains(line, addr) {
					t.Fatalf("start line %q", line)
				}
			})
		}
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-api", "x"}, {"-backend", "x"}, {"-wait", "x"}, {"-loops", "-1"}, {"-loops", "100000"}, {"-spin", "-1us"}, {"extra"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb, nil); code != 2 || errb.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, &out, &errb, nil); code != 0 || !strings.Contains(errb.String(), "-metrics") {
		t.Errorf("-h: exit %d, %q", code, errb.String())
	}
}
