// Command echo is an echo server on ringo, with either of package net's two
// APIs: -api conn is the standard net.Listener/net.Conn API with a goroutine
// per connection; -api callback is the event-handler API (net.Serve), where
// connections live on the proactor's loops and receive into provided
// buffers without a copy. It is the server side of the echo benchmark
// (bench/c/echo_client is the load generator).
//
// It prints one line at start: the address, the backend in use and why it
// was chosen. With -metrics it serves expvar's /debug/vars, which includes
// "goroutines" and, for -api callback, the server's counters ("echo").
package main

import (
	"context"
	"errors"
	"expvar"
	"flag"
	"fmt"
	"io"
	stdnet "net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/ringo-io/ringo/net"
	"github.com/ringo-io/ringo/proactor"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, nil))
}

// run is main without the process: it serves until ctx ends, and reports
// the address through ready, for tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, ready chan<- string) int {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", "callback", "which net API serves: `conn` (net.Listener and a goroutine per net.Conn) or callback (net.Serve event handlers on the loops)")
	backend := fs.String("backend", "auto", "proactor backend: `auto` (io_uring where usable, else epoll), uring or epoll")
	loops := fs.Int("loops", 0, "proactor loops; 0 means one per CPU (GOMAXPROCS)")
	wait := fs.String("wait", "auto", "how an idle loop waits: netpoll (parked in Go's netpoller), enter (a locked thread blocked in io_uring_enter or epoll_wait) or `auto`: enter for -api callback, where only loop goroutines use the loops, netpoll for -api conn, whose goroutines need them woken quickly")
	spin := fs.Duration("spin", 50*time.Microsecond, "how long a loop that ran out of work polls for completions and submissions before it sleeps: lower latency for few busy connections, paid in CPU (0: sleep at once)")
	addr := fs.String("addr", "127.0.0.1:7000", "TCP `host:port` to listen on")
	metrics := fs.String("metrics", "", "if set, serve expvar /debug/vars on this `host:port` (goroutines and server counters)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: echo [flags]\n\nAn echo server on ringo's net package; it echoes every byte it receives.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "echo: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *api != "conn" && *api != "callback" {
		fmt.Fprintf(stderr, "echo: -api %q: want conn or callback\n", *api)
		return 2
	}
	b, err := proactor.ParseBackend(*backend)
	if err != nil {
		fmt.Fprintf(stderr, "echo: -backend: %v\n", err)
		return 2
	}
	if *loops < 0 || *loops > proactor.MaxLoops {
		fmt.Fprintf(stderr, "echo: -loops %d: want 0 to %d\n", *loops, proactor.MaxLoops)
		return 2
	}
	if *spin < 0 {
		fmt.Fprintf(stderr, "echo: -spin %v: want >= 0\n", *spin)
		return 2
	}
	wm := waitFor(*api)
	if *wait != "auto" {
		if wm, err = proactor.ParseWaitMode(*wait); err != nil {
			fmt.Fprintf(stderr, "echo: -wait: %v\n", err)
			return 2
		}
	}
	p, err := proactor.New(proactor.Options{Backend: b, Loops: *loops, Wait: wm, Spin: *spin})
	if err != nil {
		fmt.Fprintf(stderr, "echo: %v\n", err)
		return 1
	}
	defer p.Close()

	var stopServer func()
	var listenAddr string
	switch *api {
	case "callback":
		s, err := net.Serve("tcp", *addr, echoHandler{}, net.ServeOptions{Proactor: p})
		if err != nil {
			fmt.Fprintf(stderr, "echo: %v\n", err)
			return 1
		}
		listenAddr = s.Addr().String()
		publish("echo", func() any { return s.Metrics() })
		stopServer = func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			s.Shutdown(ctx)
		}
	case "conn":
		lc := net.ListenConfig{Proactor: p}
		ln, err := lc.Listen(ctx, "tcp", *addr)
		if err != nil {
			fmt.Fprintf(stderr, "echo: %v\n", err)
			return 1
		}
		listenAddr = ln.Addr().String()
		done := make(chan struct{})
		go func() { defer close(done); serveConns(ln) }()
		stopServer = func() { ln.Close(); <-done }
	}
	publish("goroutines", func() any { return runtime.NumGoroutine() })
	var hs *http.Server
	if *metrics != "" {
		mln, err := stdnet.Listen("tcp", *metrics)
		if err != nil {
			stopServer()
			fmt.Fprintf(stderr, "echo: -metrics: %v\n", err)
			return 1
		}
		hs = &http.Server{Handler: http.DefaultServeMux}
		go hs.Serve(mln)
	}
	fmt.Fprintf(stdout, "echo: api=%s addr=%s backend=%v loops=%d reason=%q\n", *api, listenAddr, p.Backend(), len(p.Loops()), p.Reason())
	if ready != nil {
		ready <- listenAddr
	}
	<-ctx.Done()
	stopServer()
	if hs != nil {
		hs.Close()
	}
	return 0
}

// echoHandler is the callback API's echo: each received chunk is queued
// back, and the loop flushes once per turn.
type echoHandler struct{}

func (echoHandler) OnOpen(c *net.EventConn)              {}
func (echoHandler) OnData(c *net.EventConn, data []byte) { c.Write(data) }
func (echoHandler) OnClose(c *net.EventConn, err error)  {}

// serveConns is the standard API's echo: a goroutine per connection.
func serveConns(ln stdnet.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 4096)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
	}
}

// current holds what the published expvars read, so that run can be called
// more than once in a process (expvar.Publish panics on a second name).
var (
	mu      sync.Mutex
	current = map[string]func() any{}
)

func publish(name string, f func() any) {
	mu.Lock()
	defer mu.Unlock()
	if _, ok := current[name]; !ok {
		expvar.Publish(name, expvar.Func(func() any {
			mu.Lock()
			f := current[name]
			mu.Unlock()
			return f()
		}))
	}
	current[name] = f
}

// waitFor is -wait auto. A callback server's loops run everything on
// their own goroutines, so a loop thread blocked in io_uring_enter wakes
// straight from the kernel: 1-connection echo went from 21-23k to 29-30k
// msgs/s (p50 42 to 30 µs) with it. Goroutines doing blocking ops (the
// conn API) need WaitNetpoll: with WaitEnter each of their wake-ups waits
// for sysmon (3.9k msgs/s).
func waitFor(api string) proactor.WaitMode {
	if api == "callback" {
		return proactor.WaitEnter
	}
	return proactor.WaitNetpoll
}
