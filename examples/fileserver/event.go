package main

import (
	"context"
	stdnet "net"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	rnet "github.com/ringo-io/ringo/net"
	"github.com/ringo-io/ringo/proactor"
)

// The "callback" transport: ringo's event-handler API (net.Serve). Each
// connection lives on a loop goroutine, no goroutine of its own: received
// bytes are fed to the session in OnData, its output is queued with Write
// and SendFile, and the loop flushes every connection's queue once per
// turn. Nothing here blocks.

// evConn is a connection's state on its loop.
type evConn struct {
	c       *rnet.EventConn
	sess    *session
	hdrTmr  *proactor.Timer // header read timeout, armed while a request is partial
	hdrGen  uint64
	pending int // SendFiles in flight
	spare   []*sendDone
	// loading: lookUp runs the lookup the session waits for; closed:
	// OnClose came, and an answer that comes later is dropped.
	loading, closed bool
	// Lingering close (lingerClose): started, when, and input dropped
	// since.
	lingering bool
	lingerAt  time.Time
	dropped   int
}

// Lingering close (nginx's lingering_close, RFC 9112 §9.6): after the last
// response the server shuts its sending side, then reads and drops the
// client's input until the client closes. Closing with input unread makes
// the kernel reset the connection, and a reset destroys whatever of the
// responses the client has not yet acknowledged. So the server closes
// first only once the client has acknowledged every byte (delivered), and
// then after lingerBytes more of input or lingerTime without its FIN; a
// client that neither reads nor closes is cut off after lingerMax.
const (
	lingerBytes = 64 << 10
	lingerTime  = time.Second
	lingerMax   = 30 * time.Second
)

// delivered reports whether the peer has acknowledged every byte sent on
// socket fd, the FIN included (SIOCOUTQ: sent but unacknowledged, plus not
// yet sent). An error counts as delivered: the socket is beyond saving.
func delivered(fd int) bool { return sendQueue(fd) <= 0 }

// sendQueue is the bytes in socket fd's kernel send queue (sent but
// unacknowledged, plus not yet sent), or -1 when unknown.
func sendQueue(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
	if err != nil {
		return -1
	}
	return n
}

// outq is sendQueue for a net.Conn of the conn transport (the conn
// transport's delivered is outq <= 0).
func outq(c stdnet.Conn) int {
	n := -1
	if rc, ok := c.(*rnet.Conn); ok {
		if sc, err := rc.SyscallConn(); err == nil {
			_ = sc.Control(func(fd uintptr) { n = sendQueue(int(fd)) })
		}
	}
	return n
}

type evHandler struct {
	s *server

	mu    sync.Mutex
	conns map[*evConn]struct{}
}

func (s *server) serveEvents() (*rnet.Server, error) {
	h := &evHandler{s: s, conns: make(map[*evConn]struct{})}
	srv, err := rnet.Serve("tcp", s.cfg.addr, h, rnet.ServeOptions{
		Proactor:    s.p,
		IdleTimeout: s.cfg.idleTimeout,
		// A client that stops reading is dropped once its responses
		// have not moved for this long (nginx's send_timeout).
		WriteTimeout: s.cfg.writeTimeout,
		// A client that does not read gets no more than this queued:
		// reading pauses, so pipelined requests stop being answered.
		WriteQueueLimit: outLimit,
		NotSentLowat:    s.cfg.notSentLowat,
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.evs, s.evh = srv, h
	s.mu.Unlock()
	return srv, nil
}

func (h *evHandler) OnOpen(c *rnet.EventConn) {
	s := h.s
	s.accepted.Add(1)
	if s.open.Load() >= int64(s.cfg.maxConns) || s.draining.Load() {
		s.rejected.Add(1)
		c.Write(busyResponse)
		c.Close()
		return
	}
	s.open.Add(1)
	remote := ""
	if s.alog != nil {
		remote = hostOnly(c.RemoteAddr())
	}
	ec := &evConn{c: c, sess: newSession(s, remote)}
	ec.sess.nowait = true
	ec.sess.prebuilt = true
	c.SetContext(ec)
	h.mu.Lock()
	h.conns[ec] = struct{}{}
	h.mu.Unlock()
}

func (h *evHandler) OnData(c *rnet.EventConn, data []byte) {
	ec, _ := c.Context().(*evConn)
	if ec == nil {
		return // rejected in OnOpen
	}
	sess := ec.sess
	if sess.closing {
		ec.dropped += len(data)
		if ec.dropped > lingerBytes && c.Pending() == 0 && delivered(c.Fd()) {
			c.Close()
		}
		return
	}
	served := sess.served
	for again := sess.feed(data); ; again = sess.feed(nil) {
		ec.emit()
		if !again {
			break
		}
	}
	switch {
	case sess.waiting():
		// The request is in: what is left is ours to do, and its header
		// timeout no longer applies.
		ec.stopHeaderTimer()
		if !ec.loading {
			ec.lookUp(h)
		}
	case sess.closing:
		ec.stopHeaderTimer()
		ec.lingerClose()
	case sess.partial() && (ec.hdrTmr == nil || sess.served != served):
		// A new request began (a pipelining client may always have the
		// next one partly sent): its own header timeout.
		ec.stopHeaderTimer()
		gen := ec.hdrGen
		ec.hdrTmr = c.Loop().AfterFunc(h.s.cfg.headerTimeout, func() {
			if ec.hdrGen == gen && ec.sess.partial() {
				ec.c.Close()
			}
		})
	case !sess.partial():
		ec.stopHeaderTimer()
	}
}

// lookUp runs the cache lookup the session waits for (a path not in the
// dentry cache, a small body not in the page cache) off the loop, so that
// the loop's other connections do not wait for the disk, then feeds the
// session again on the loop with the answer (server.lookUpOff, on a
// goroutine). Meanwhile the connection is held: no input (a client that
// pipelines gets flow control, not a growing buffer), no close at its FIN
// before the answer is queued, and no idle or write timeout.
func (ec *evConn) lookUp(h *evHandler) {
	s, c, key := h.s, ec.c, ec.sess.wait
	ec.loading = true
	c.Hold()
	go func() {
		l := s.lookUpOff(c.Loop(), key)
		err := c.Loop().Post(func() {
			ec.loading = false
			if ec.closed {
				l.release()
				return
			}
			ec.sess.wait, ec.sess.ready = "", l
			h.OnData(c, nil)
			if !ec.sess.waiting() {
				// After OnData, so that the answers are queued before
				// the input that waited, or the close at a FIN.
				c.Resume()
			}
		})
		if err != nil {
			l.release() // the loop has closed
		}
	}()
}

// lingerClose ends a connection whose session is closing, with a
// lingering close (see lingerBytes): a FIN after the last response
// (CloseWrite), then input is dropped (OnData) until the client's FIN
// closes the connection in net, or, once every byte is delivered,
// lingerBytes of input or lingerTime more.
func (ec *evConn) lingerClose() {
	if ec.lingering {
		return
	}
	ec.lingering, ec.lingerAt = true, time.Now()
	c := ec.c
	c.CloseWrite()
	var check func()
	check = func() {
		if c.Fd() < 0 {
			return // closed already (the client's FIN)
		}
		if (c.Pending() > 0 || !delivered(c.Fd())) && time.Since(ec.lingerAt) < lingerMax {
			c.Loop().AfterFunc(lingerTime, check)
			return
		}
		c.Close()
	}
	c.Loop().AfterFunc(lingerTime, check)
}

func (ec *evConn) stopHeaderTimer() {
	if ec.hdrTmr != nil {
		ec.hdrTmr.Stop()
		ec.hdrTmr = nil
		ec.hdrGen++
	}
}

// emit queues the session's output on the connection, in order.
func (ec *evConn) emit() {
	c := ec.c
	ec.sess.flushSegments(func(seg segment, b []byte) {
		if seg.f == nil {
			c.Write(b)
			return
		}
		ec.pending++
		var d *sendDone
		if n := len(ec.spare); n > 0 {
			d, ec.spare = ec.spare[n-1], ec.spare[:n-1]
		} else {
			d = &sendDone{ec: ec}
			d.fn = d.done
		}
		d.seg = seg
		if seg.f.resident {
			c.SendFileResident(seg.f.fd, seg.off, seg.n, d.fn)
		} else {
			c.SendFile(seg.f.fd, seg.off, seg.n, d.fn)
		}
	})
	ec.sess.reset()
}

// sendDone is one SendFile in flight on a connection: the segment it
// sends, and its completion callback, bound once. They are kept for reuse
// (evConn.spare) because a closure per SendFile was the only allocation a
// hot file's response made: at 50k responses a second, a GC cycle every
// half second, and a heap grown page by page in a server's first second.
type sendDone struct {
	ec  *evConn
	seg segment
	fn  func(sent int64, err error) // d.done
}

func (d *sendDone) done(sent int64, err error) {
	ec, seg := d.ec, d.seg
	d.seg = segment{} // holds no file or log line while spare
	ec.spare = append(ec.spare, d)
	ec.pending--
	ec.sess.segDone(seg, sent)
	if err != nil || sent != seg.n {
		// The file shrank or the peer left: the response cannot be
		// completed, so the connection ends here, with a FIN right after
		// the short body (the client sees it cut short, not reset).
		// shutdown(2) first, so that responses queued behind this one
		// fail instead of being sent where the client expects the rest
		// of this body.
		unix.Shutdown(ec.c.Fd(), unix.SHUT_WR)
		ec.c.Close()
	}
}

func (h *evHandler) OnClose(c *rnet.EventConn, err error) {
	ec, _ := c.Context().(*evConn)
	if ec == nil {
		return
	}
	ec.closed = true
	ec.stopHeaderTimer()
	ec.sess.release()
	h.mu.Lock()
	delete(h.conns, ec)
	h.mu.Unlock()
	h.s.open.Add(-1)
}

// drain closes, on their loops, the connections that are between
// requests; the others close after their current response (draining makes
// it say Connection: close).
func (h *evHandler) drain() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ec := range h.conns {
		ec.c.Loop().Post(func() {
			if !ec.sess.partial() {
				ec.c.Close() // flushes what is queued first
			}
		})
	}
}

func (s *server) shutdownEvents(ctx context.Context) error {
	s.draining.Store(true)
	s.evh.drain()
	err := s.evs.Shutdown(ctx)
	return err
}
