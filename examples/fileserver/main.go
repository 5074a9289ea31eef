// Fileserver serves a directory over HTTP/1.1 with ringo: connections and
// their bytes go through ringo's net/ on the proactor, small files leave in
// one send together with their headers from an in-memory cache (hot ones
// of 16-64 KiB, on the callback transport, as one sendfile(2) of the whole
// response, prebuilt in a memfd), large ones go from the page cache to the socket with
// fs.SendFile, never through user space.
//
// It is `make run`'s program:
//
//	fileserver -root testdata/www -addr 127.0.0.1:8080
//
// The HTTP core (parse.go, session.go, cache.go, open.go) is a
// per-connection state machine that does no I/O of its own besides opening
// files: it is fed received bytes and produces header and body bytes and
// "send n bytes of this file from off" commands. A thin transport runs it:
// event.go on ringo's callback API (net.Serve: handlers on the loop
// goroutines, writes and SendFiles queued and flushed once per loop turn;
// -api callback, the default: it measured faster, 1.3-1.5x on 1 KiB), or
// server.go's goroutine per net.Conn from ringo's net.Listener, with
// fs.SendFileFd for bodies (-api conn).
//
// What it guarantees: nothing outside -root is served (openat2 with
// RESOLVE_BENEATH, or where openat2 is missing the same resolution done
// one component at a time in user space); dotfiles are hidden; malformed requests get 400 and close only
// their own connection; request line and header size, header read time,
// idle time and connection count are bounded.
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
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringo-io/ringo/proactor"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "fileserver:", err)
		os.Exit(1)
	}
}

// run is main with its inputs and outputs explicit, for the tests: it
// serves until SIGINT/SIGTERM or until stop is closed.
func run(args []string, stdout, stderr io.Writer, stop <-chan struct{}) error {
	cfg := defaultConfig()
	fl := flag.NewFlagSet("fileserver", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintf(stderr, "usage: fileserver [flags]\n\nServes the files under -root over HTTP/1.1 (GET and HEAD) with ringo's\nio_uring runtime. Flags:\n\n")
		fl.PrintDefaults()
	}
	fl.StringVar(&cfg.root, "root", ".", "directory to serve; nothing outside it is ever served")
	fl.StringVar(&cfg.addr, "addr", cfg.addr, "`host:port` to listen on")
	backend := fl.String("backend", "auto", "`driver`: auto (io_uring where usable, else epoll), uring or epoll")
	loops := fl.Int("loops", 0, "proactor loops (shards); 0 means one per CPU (GOMAXPROCS)")
	wait := fl.String("wait", "auto", "how an idle loop waits: netpoll (parked in Go's netpoller), enter (its locked thread blocked in io_uring_enter or epoll_wait) or `auto`: enter for -api callback, whose work all runs on the loops, netpoll for -api conn, whose goroutines need the loops to wake them quickly")
	spin := fl.Duration("spin", 0, "how long a loop that ran out of work polls for completions and submissions before it sleeps: lower latency, paid in CPU (0: sleep at once)")
	fl.StringVar(&cfg.logPath, "log", "", "access log in common log format to this `file` (\"-\" for stdout); off when empty")
	metrics := fl.String("metrics", "", "serve expvar counters (ringo's proactor, the server's, goroutines) at http://`addr`/debug/vars; off when empty")
	fl.BoolVar(&cfg.listing, "listing", false, "list a directory that has no index.html (names escaped); otherwise 403")
	fl.BoolVar(&cfg.dotfiles, "dotfiles", false, "serve files and directories whose names start with a dot (hidden by default)")
	fl.IntVar(&cfg.maxConns, "max-conns", cfg.maxConns, "connections served at once; more get 503 and are closed")
	fl.DurationVar(&cfg.headerTimeout, "header-timeout", cfg.headerTimeout, "time a client has to send a whole request head once it started")
	fl.DurationVar(&cfg.idleTimeout, "idle-timeout", cfg.idleTimeout, "keep-alive connections idle this long are closed")
	fl.DurationVar(&cfg.writeTimeout, "write-timeout", cfg.writeTimeout, "how long a client that stops reading keeps its connection: time without any byte of the response sent, as nginx's send_timeout (with -api conn, one to two times this); 0 means never")
	fl.IntVar(&cfg.notSentLowat, "notsent-lowat", cfg.notSentLowat, "TCP_NOTSENT_LOWAT of every connection, in `bytes`: how much of a response the kernel holds queued and not yet sent; larger bodies are fed to it as it sends (0: the system's net.ipv4.tcp_notsent_lowat)")
	fl.StringVar(&cfg.api, "api", cfg.api, "ringo `transport`: callback (event handlers on the loops, no goroutine per connection) or conn (net.Listener, a goroutine per net.Conn)")
	cpuprofile := fl.String("cpuprofile", "", "write a CPU profile to this `file` until shutdown (for go tool pprof)")
	grace := fl.Duration("shutdown-timeout", 10*time.Second, "on SIGINT/SIGTERM, how long responses in flight get to finish")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fl.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (see -h)", fl.Args())
	}
	b, err := proactor.ParseBackend(*backend)
	if err != nil {
		return err
	}
	if cfg.api != "callback" && cfg.api != "conn" {
		return fmt.Errorf("-api %q: want callback or conn", cfg.api)
	}
	wm := proactor.WaitNetpoll
	if cfg.api == "callback" {
		wm = proactor.WaitEnter
	}
	if *wait != "auto" {
		if wm, err = proactor.ParseWaitMode(*wait); err != nil {
			return fmt.Errorf("-wait: %w", err)
		}
	}
	if cfg.notSentLowat < 0 {
		return fmt.Errorf("-notsent-lowat %d: want >= 0", cfg.notSentLowat)
	}
	if *spin < 0 {
		return fmt.Errorf("-spin %v: want >= 0", *spin)
	}
	if *loops < 0 || *loops > proactor.MaxLoops {
		return fmt.Errorf("-loops %d: want 0 to %d", *loops, proactor.MaxLoops)
	}
	if fi, err := os.Stat(cfg.root); err != nil || !fi.IsDir() {
		return fmt.Errorf("-root %q is not a directory", cfg.root)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer f.Close()
		defer pprof.StopCPUProfile()
	}
	// The backend choice is printed on the start line instead.
	p, err := proactor.New(proactor.Options{Backend: b, Loops: *loops, Wait: wm, Spin: *spin, Logger: quietLogger()})
	if err != nil {
		return err
	}
	defer p.Close()
	s, err := newServer(cfg, p)
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	var addr stdnet.Addr
	if cfg.api == "callback" {
		evs, err := s.serveEvents()
		if err != nil {
			s.shutdown(context.Background())
			return err
		}
		addr = evs.Addr()
	} else {
		ln, err := s.listen()
		if err != nil {
			s.shutdown(context.Background())
			return err
		}
		addr = ln.Addr()
		go func() { served <- s.serve(ln) }()
	}
	fmt.Fprintf(stdout, "fileserver: serving %s at http://%s/ on %s (%s), %d loops, %s API\n",
		cfg.root, addr, p.Backend(), p.Reason(), len(p.Loops()), cfg.api)

	var mln stdnet.Listener
	if *metrics != "" {
		if mln, err = serveMetrics(*metrics, s); err != nil {
			s.shutdown(context.Background())
			return err
		}
		defer mln.Close()
		fmt.Fprintf(stdout, "fileserver: metrics at http://%s/debug/vars\n", mln.Addr())
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	select {
	case err = <-served:
	case <-sig:
	case <-stop:
	}
	ctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	if serr := s.shutdown(ctx); serr != nil && err == nil {
		err = fmt.Errorf("shutdown: %w", serr)
	}
	return err
}

// current is the server the published expvar functions read (expvar names
// can be published once per process; tests run several servers).
var (
	current     atomic.Pointer[server]
	publishOnce sync.Once
)

func serveMetrics(addr string, s *server) (stdnet.Listener, error) {
	current.Store(s)
	publishOnce.Do(func() {
		expvar.Publish("goroutines", expvar.Func(func() any { return runtime.NumGoroutine() }))
		// proactor.Publish binds one proactor per name for the process;
		// this follows the current server's instead, in the same shape.
		expvar.Publish("ringo", expvar.Func(func() any {
			s := current.Load()
			if s == nil {
				return nil
			}
			loops := []map[string]any{}
			for _, m := range s.p.Metrics() {
				loops = append(loops, m.Map())
			}
			return map[string]any{"backend": s.p.Backend().String(), "reason": s.p.Reason(), "loops": loops}
		}))
		expvar.Publish("fileserver", expvar.Func(func() any {
			s := current.Load()
			if s == nil {
				return nil
			}
			st := map[string]int64{}
			for i := 1; i < len(s.statuses); i++ {
				st[fmt.Sprintf("%dxx", i)] = s.statuses[i].Load()
			}
			s.cache.mu.Lock()
			entries := len(s.cache.m)
			bytes := s.cache.bytes
			s.cache.mu.Unlock()
			return map[string]any{
				"requests": s.requests.Load(), "accepted": s.accepted.Load(), "open": s.open.Load(),
				"rejected": s.rejected.Load(), "lookups_off_loop": s.offLoop.Load(), "responses_prebuilt": s.prebuilt.Load(), "status": st, "cache_entries": entries, "cache_bytes": bytes,
			}
		}))
	})
	ln, err := stdnet.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/vars", expvar.Handler())
	go http.Serve(ln, mux)
	return ln, nil
}
