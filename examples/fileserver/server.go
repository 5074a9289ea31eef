package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	stdnet "net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/fs"
	rnet "github.com/ringo-io/ringo/net"
	"github.com/ringo-io/ringo/proactor"
)

// config is what the flags set.
type config struct {
	root          string
	addr          string
	listing       bool
	dotfiles      bool
	maxConns      int
	headerTimeout time.Duration // from a request's first byte to its blank line
	idleTimeout   time.Duration // between requests on a keep-alive connection
	writeTimeout  time.Duration // a stalled response: see the -write-timeout flag
	logPath       string        // access log: a file, "-" for stdout, "" off
	api           string        // transport: "callback" (net.Serve) or "conn" (net.Listener)
	revalidate    time.Duration // how stale a cached file may be before a look at the disk; 0: the cache's default
	notSentLowat  int           // TCP_NOTSENT_LOWAT of the listener and so of every connection; 0: the system's
}

// defaultNotSentLowat caps the bytes a connection's send queue holds
// that the kernel has not sent yet. A large body then goes out from the
// server's own sendfile calls rather than from the client's ACKs, whose
// processing does the transmitting when the queue is full: on loopback
// that is the load generator's CPU (net.ListenConfig.NotSentLowat;
// docs/BENCHMARKS.md measures it).
const defaultNotSentLowat = 16 << 10

func defaultConfig() config {
	return config{
		addr: "127.0.0.1:8080", maxConns: 10000, api: "callback",
		headerTimeout: 10 * time.Second, idleTimeout: 60 * time.Second, writeTimeout: 60 * time.Second,
		notSentLowat: defaultNotSentLowat,
	}
}

// server is the transport-independent part shared by every connection:
// the root, the cache, the counters, the access log.
type server struct {
	cfg   config
	p     *proactor.Proactor
	root  int // O_DIRECTORY descriptor every open is relative to
	cache *cache
	alog  *accessLog

	draining atomic.Bool
	requests atomic.Int64
	accepted atomic.Int64
	rejected atomic.Int64 // over maxConns
	open     atomic.Int64
	// Lookups that wait for the disk off the loops (lookUpOff): how many
	// ran, a bound on how many run at once, and their end at shutdown.
	offLoop  atomic.Int64
	prebuilt atomic.Int64 // responses sent whole from a prebuilt memfd
	lookups  chan struct{}
	lkMu     sync.Mutex
	lkWG     sync.WaitGroup
	lkStop   chan struct{}
	lkClosed bool
	statuses [6]atomic.Int64 // by class: 1xx..5xx, [0] unused

	mu    sync.Mutex
	evs   *rnet.Server // callback transport
	evh   *evHandler
	ln    stdnet.Listener // conn transport
	conns map[stdnet.Conn]struct{}
	wg    sync.WaitGroup
}

// maxLookups is how many lookups run off the loops at once (lookUpOff):
// each can be a worker thread of io_uring's (or of the epoll driver's)
// waiting for the disk.
const maxLookups = 16

func newServer(cfg config, p *proactor.Proactor) (*server, error) {
	root, err := unix.Open(cfg.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", cfg.root, err)
	}
	s := &server{cfg: cfg, p: p, root: root, cache: newCache(root), conns: make(map[stdnet.Conn]struct{}),
		lookups: make(chan struct{}, maxLookups), lkStop: make(chan struct{})}
	if cfg.revalidate > 0 {
		s.cache.revalidate = cfg.revalidate
	}
	if cfg.logPath != "" {
		if s.alog, err = openAccessLog(cfg.logPath); err != nil {
			unix.Close(root)
			return nil, err
		}
	}
	return s, nil
}

func (s *server) status(code int) {
	if c := code / 100; c > 0 && c < len(s.statuses) {
		s.statuses[c].Add(1)
	}
}

// listen opens the server's TCP listener on its proactor.
func (s *server) listen() (stdnet.Listener, error) {
	lc := rnet.ListenConfig{Proactor: s.p, NotSentLowat: s.cfg.notSentLowat}
	return lc.Listen(context.Background(), "tcp", s.cfg.addr)
}

// serve accepts until the listener closes; each connection gets a
// goroutine that runs a session over net.Conn (the "conn" transport).
func (s *server) serve(ln stdnet.Listener) error {
	s.mu.Lock()
	if s.draining.Load() {
		// Shutdown ran before this goroutine did and found no listener
		// to close: without this check Accept would wait forever.
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.ln = ln
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.draining.Load() || errors.Is(err, stdnet.ErrClosed) {
				return nil
			}
			return err
		}
		s.accepted.Add(1)
		if s.open.Load() >= int64(s.cfg.maxConns) {
			s.rejected.Add(1)
			// The socket buffer is empty: this write does not block.
			c.SetWriteDeadline(time.Now().Add(time.Second))
			c.Write(busyResponse)
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.draining.Load() {
			// Accepted as shutdown began: its wait for the connections
			// may have started, so no wg.Add now.
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.open.Add(1)
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c)
	}
}

var busyResponse = []byte("HTTP/1.1 503 Service Unavailable\r\nServer: ringo\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

func (s *server) serveConn(c stdnet.Conn) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.open.Add(-1)
		s.wg.Done()
	}()
	sess := newSession(s, hostOnly(c.RemoteAddr()))
	sess.nowait = true
	defer sess.release()
	buf := make([]byte, 16<<10)
	var idleSet time.Time
	var wc writeClock
	inHeader := false
	hdrAt := 0 // sess.served when the header deadline was set
	for {
		now := time.Now()
		switch {
		case sess.partial() && (!inHeader || sess.served != hdrAt):
			// A new request began (a pipelining client may always have
			// the next one partly sent): its own header timeout.
			inHeader, hdrAt = true, sess.served
			c.SetReadDeadline(now.Add(s.cfg.headerTimeout))
			idleSet = time.Time{}
		case !sess.partial() && now.Sub(idleSet) > time.Second:
			// Refreshed at most once a second: a deadline is a timer op.
			inHeader = false
			idleSet = now
			c.SetReadDeadline(now.Add(s.cfg.idleTimeout))
		}
		if s.draining.Load() && !sess.partial() {
			return
		}
		n, err := c.Read(buf)
		if n > 0 {
			for again := sess.feed(buf[:n]); ; again = sess.feed(nil) {
				if ferr := s.flush(c, sess, &wc); ferr != nil {
					return
				}
				if sess.waiting() {
					// The responses before it are out; now its lookup.
					var loop *proactor.Loop
					if rc, ok := c.(*rnet.Conn); ok {
						loop = rc.Loop()
					}
					sess.ready, sess.wait = s.lookUpOff(loop, sess.wait), ""
					again = true
					// The time it took was ours, not the client's: the
					// next read gets a fresh deadline.
					inHeader, idleSet = false, time.Time{}
				}
				if !again {
					break
				}
			}
			if !sess.partial() {
				inHeader = false
			}
			if sess.closing {
				linger(c, buf)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// lookUpOff answers the lookup a session waits for (session.wait) with
// cache.get through loop's ops: a goroutine parks on them rather than
// blocking its thread in open(2) or read(2) (see diskWait.loop). Once
// shutdown has begun it answers lookError without looking; shutdown
// cancels the ops of those in flight and waits for them before it closes
// the root and the cache.
func (s *server) lookUpOff(loop *proactor.Loop, key string) *lookup {
	s.lkMu.Lock()
	if s.lkClosed {
		s.lkMu.Unlock()
		return &lookup{st: lookError}
	}
	s.lkWG.Add(1)
	s.lkMu.Unlock()
	defer s.lkWG.Done()
	select {
	case s.lookups <- struct{}{}:
	case <-s.lkStop:
		return &lookup{st: lookError}
	}
	defer func() { <-s.lookups }()
	s.offLoop.Add(1)
	f, gz, st := s.cache.get([]byte(key), time.Now().UnixNano(), diskWait{loop: loop, stop: s.lkStop})
	l := &lookup{f: f, gz: gz, st: st}
	if st == lookListing && s.cfg.listing {
		// getdents(2) has no op: this goroutine's thread blocks in it,
		// the loops do not.
		l.list = s.listDir(strings.TrimSuffix(key, "/"))
	}
	return l
}

// cancelLookups ends lookUpOff: the ops of the lookups in flight are
// cancelled, those waiting for a slot and later ones answer at once.
func (s *server) cancelLookups() {
	s.lkMu.Lock()
	if !s.lkClosed {
		s.lkClosed = true
		close(s.lkStop)
	}
	s.lkMu.Unlock()
}

// stopLookups is cancelLookups, then waits for the lookups in flight. A
// read the disk has begun is not cut short by its cancel (an io_uring or
// epoll worker thread waits for it), so this waits for one read of the
// disk at most.
func (s *server) stopLookups() {
	s.cancelLookups()
	s.lkWG.Wait()
}

// linger is the conn transport's lingering close (see lingerBytes): the
// responses are in the socket already (Write and SendFile return then), so
// shut the sending side and drop input until the client's FIN, or, once
// the client has acknowledged every byte, lingerBytes more or lingerTime
// without input; lingerMax at most.
func linger(c stdnet.Conn, buf []byte) {
	rc, ok := c.(*rnet.Conn)
	if !ok || rc.CloseWrite() != nil {
		return
	}
	start, dropped := time.Now(), 0
	for time.Since(start) < lingerMax {
		c.SetReadDeadline(time.Now().Add(lingerTime))
		n, err := c.Read(buf)
		dropped += n
		var ne stdnet.Error
		timedOut := errors.As(err, &ne) && ne.Timeout()
		if err != nil && !timedOut {
			return // the client's FIN, or the connection is gone
		}
		// Delivered: the send queue is empty (or unknown: the socket
		// is beyond saving), as delivered says for the callback transport.
		if (timedOut || dropped > lingerBytes) && outq(c) <= 0 {
			return
		}
	}
}

// flush sends the session's output in order: byte runs with Write, file
// runs with the Conn's SendFile (zero copy), both under the write
// deadline and Close. Any error ends the connection; a file that shrank
// mid-send is one (its response cannot be completed).
//
// -write-timeout is nginx's send_timeout: a client is cut off when it
// takes no byte for that long, not when the whole response takes longer
// (1 GiB at 10 MB/s needs 100 s). So a deadline that passes while the
// client still took bytes in its window (our sends progressed, or the
// kernel's send queue shrank: a large socket buffer can keep the socket
// unwritable for a whole window while a slow client drains it) is moved
// on and the send goes on. A stalled client goes within one to two
// timeouts of its last progress.
func (s *server) flush(c stdnet.Conn, sess *session, wc *writeClock) error {
	var err error
	// Like the read deadline, the write deadline moves at most once a
	// second (each move is a timer operation), and at least once half of
	// it has passed, so that a response starts with that much left.
	// 0 (or less) means no write timeout, as in the callback transport.
	if now := time.Now(); s.cfg.writeTimeout > 0 && now.Sub(wc.set) > min(time.Second, s.cfg.writeTimeout/2) {
		wc.restart(c, now, s.cfg.writeTimeout)
	}
	sess.flushSegments(func(seg segment, b []byte) {
		if seg.f == nil {
			for err == nil && len(b) > 0 {
				var n int
				n, err = c.Write(b)
				b = b[n:]
				if wc.progressed(c, int64(n), err, s.cfg.writeTimeout) {
					err = nil
				}
			}
			return
		}
		rc, ok := c.(*rnet.Conn)
		if !ok && err == nil {
			err = errors.New("file segment on a connection that is not ringo's")
		}
		off, left := seg.off, seg.n
		for err == nil && left > 0 {
			var n int64
			n, err = rc.SendFile(seg.f.fd, off, left)
			off, left = off+n, left-n
			switch {
			case wc.progressed(c, n, err, s.cfg.writeTimeout):
				err = nil
			case err == nil && left > 0:
				err = fs.ErrFileShrunk
			}
		}
		sess.segDone(seg, seg.n-left)
	})
	sess.reset()
	return err
}

// writeClock is a connection's write deadline: when it was last set, the
// kernel's send queue then, and what was sent since.
type writeClock struct {
	set   time.Time
	outq  int   // the kernel's send queue at set
	added int64 // bytes our sends queued since
}

func (wc *writeClock) restart(c stdnet.Conn, now time.Time, timeout time.Duration) {
	wc.set, wc.outq, wc.added = now, outq(c), 0
	c.SetWriteDeadline(now.Add(timeout))
}

// progressed reports whether a send on c that sent n bytes and failed with
// err should go on under a new deadline. Without bytes sent, the client
// took some if the kernel's queue is shorter than at the restart plus what
// our sends have added since. (A method, not a closure in flush: one
// allocation fewer per response.)
func (wc *writeClock) progressed(c stdnet.Conn, n int64, err error, timeout time.Duration) bool {
	wc.added += n
	if err == nil {
		return false // before errors.As, whose target escapes
	}
	var ne stdnet.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return false
	}
	if q := outq(c); n == 0 && (q < 0 || int64(q) >= int64(wc.outq)+wc.added) {
		return false
	}
	wc.restart(c, time.Now(), timeout)
	return true
}

// shutdown stops accepting, lets idle connections go and waits for the
// responses in flight until ctx ends; then it closes what is left.
func (s *server) shutdown(ctx context.Context) error {
	// At the deadline the lookups end too: the conn transport's
	// shutdown waits for its goroutines, and those may wait for lookups.
	ended := make(chan struct{})
	defer close(ended)
	go func() {
		select {
		case <-ctx.Done():
			s.cancelLookups()
		case <-ended:
		}
	}()
	var err error
	s.mu.Lock()
	evs := s.evs
	s.mu.Unlock()
	if evs != nil {
		err = s.shutdownEvents(ctx)
	} else {
		err = s.shutdownConns(ctx)
	}
	s.stopLookups()
	s.cache.close()
	if s.alog != nil {
		s.alog.close()
	}
	unix.Close(s.root)
	return err
}

func (s *server) shutdownConns(ctx context.Context) error {
	s.draining.Store(true)
	s.mu.Lock()
	if s.ln != nil {
		s.ln.Close()
	}
	for c := range s.conns {
		// Wakes readers parked on an idle connection; a connection in
		// the middle of a response finishes it and then sees draining.
		c.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-done
	}
	return err
}

func hostOnly(a stdnet.Addr) string {
	if a == nil {
		return "-"
	}
	h, _, err := stdnet.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// prefix is an entry up to its size field, for a response whose body is
// still to be sent (a file): finish completes it with the bytes that went
// out. It is a copy, as r's bytes belong to the connection's input.
func (l *accessLog) prefix(host string, r *request, code int) []byte {
	return appendLogPrefix(nil, host, r, code)
}

// finish writes an entry begun by prefix with n body bytes sent.
func (l *accessLog) finish(prefix []byte, n int64) {
	l.mu.Lock()
	l.end(append(l.line[:0], prefix...), n)
	l.mu.Unlock()
}

// end writes entry b, complete but for its size field, with n as that;
// l.mu held. b is l.line's memory, which it keeps for the next entry.
func (l *accessLog) end(b []byte, n int64) {
	b = strconv.AppendInt(b, n, 10)
	b = append(b, '\n')
	l.w.Write(b)
	l.line = b
}

func appendLogPrefix(b []byte, host string, r *request, code int) []byte {
	b = append(b, host...)
	b = append(b, " - - ["...)
	b = time.Now().AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	if r != nil {
		b = appendEscaped(b, r.method)
		b = append(b, ' ')
		b = appendEscaped(b, r.target)
		b = append(b, ' ')
		b = appendEscaped(b, r.proto)
	} else {
		b = append(b, '-')
	}
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, ' ')
}

// accessLog writes the common log format, buffered and flushed once a
// second and at close.
type accessLog struct {
	mu   sync.Mutex
	w    *bufio.Writer
	f    *os.File // nil for stdout
	stop chan struct{}
	done chan struct{}
	line []byte
}

func openAccessLog(p string) (*accessLog, error) {
	l := &accessLog{stop: make(chan struct{}), done: make(chan struct{})}
	if p == "-" {
		l.w = bufio.NewWriter(os.Stdout)
	} else {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		l.f, l.w = f, bufio.NewWriter(f)
	}
	go func() {
		defer close(l.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				l.flush()
			case <-l.stop:
				return
			}
		}
	}()
	return l, nil
}

func (l *accessLog) flush() {
	l.mu.Lock()
	l.w.Flush()
	l.mu.Unlock()
}

// entry: host - - [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.1" 200 2326
// where the last field is the body bytes sent.
func (l *accessLog) entry(host string, r *request, code int, n int64) {
	l.mu.Lock()
	l.end(appendLogPrefix(l.line[:0], host, r, code), n)
	l.mu.Unlock()
}

// appendEscaped writes v with quotes, backslashes and non-ASCII as \xNN,
// as nginx does, so a request cannot forge log lines or fields.
func appendEscaped(b, v []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range v {
		if c == '"' || c == '\\' || c < 0x20 || c >= 0x7f {
			b = append(b, '\\', 'x', hex[c>>4], hex[c&15])
			continue
		}
		b = append(b, c)
	}
	return b
}

func (l *accessLog) close() {
	close(l.stop)
	<-l.done
	l.flush()
	if l.f != nil {
		l.f.Close()
	}
}
