package net

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/ringo-io/ringo/proactor"
)

// TestHTTP: net/http's server on a ringo Listener and its client dialing
// with a ringo Dialer: keep-alive, a few hundred requests, 1 MiB bodies
// both ways.
func TestHTTP(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
		mux := http.NewServeMux()
		mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "hello "+r.URL.Query().Get("i"))
		})
		mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
		mux.HandleFunc("/sum", func(w http.ResponseWriter, r *http.Request) {
			h := sha256.New()
			io.Copy(h, r.Body)
			w.Write(h.Sum(nil))
		})
		ln := testListen(t, p, "tcp")
		var accepted atomic.Int32
		srv := &http.Server{Handler: mux, ConnState: func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				accepted.Add(1)
			}
		}}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()

		d := &Dialer{Proactor: p}
		tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}
		client := &http.Client{Transport: tr}
		base := "http://" + ln.Addr().String()
		get := func(path string) []byte {
			resp, err := client.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET %s: %d, %v", path, resp.StatusCode, err)
			}
			return b
		}
		for i := 0; i < 300; i++ {
			if got, want := string(get("/hello?i="+strconv.Itoa(i))), "hello "+strconv.Itoa(i); got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		if n := accepted.Load(); n != 1 {
			t.Errorf("%d connections for 300 sequential requests, want 1 (keep-alive)", n)
		}
		if b := get("/big"); !bytes.Equal(b, big) {
			t.Fatalf("1 MiB body: got %d bytes, not the same", len(b))
		}
		resp, err := client.Post(base+"/sum", "application/octet-stream", bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		sum, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := sha256.Sum256(big); !bytes.Equal(sum, want[:]) {
			t.Fatal("uploaded 1 MiB body arrived changed")
		}
		tr.CloseIdleConnections()
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != http.ErrServerClosed {
			t.Fatalf("Serve: %v", err)
		}
	})
}
