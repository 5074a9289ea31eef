package net

import (
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/pagecache"
	"github.com/ringo-io/ringo/proactor"
	"github.com/ringo-io/ringo/ring"
)

// EventConn is one connection of a Server. Its methods may be called only
// on its loop goroutine: inside Handler callbacks, in a Ticker, or in a
// function given to c.Loop().Post or c.Loop().AfterFunc. A Post from
// another goroutine may find the connection closed already: writes to a
// closed connection are dropped.
type EventConn struct {
	el  *evLoop
	fd  int
	idx int // position in el.conns, -1 once removed
	ctx any

	// state moves forward only: open, closing (flushing before close),
	// closed (descriptor's ops being cancelled), done (fd closed,
	// OnClose called).
	state  uint8
	reason error // OnClose's err
	shutWR bool  // CloseWrite asked: no more writes, shutdown when flushed
	wrDone bool  // shutdown(SHUT_WR) done
	eof    bool  // the peer's FIN arrived

	// Receiving: one (multishot) receive in flight while wanted.
	rb         proactor.RecvBuffers
	rp         proactor.Recv
	rbuf       []byte // the connection's read buffer without provided buffers
	held       []byte // received while paused, for OnData when resumed
	heldPeak   int    // the most held at once (tests)
	recvID     uint64
	recvArmed  bool // a receive op is in flight
	recvCancel bool // and a cancel for it was asked
	paused     bool // backpressure: the write queue is over the limit
	deferred   bool // fairness: greedy, skipped for a while
	hold       bool // the handler's Hold
	recvFn     func(int32, uint32)

	// Sending: the queue, in order, with at most one op in flight.
	q       []outItem
	pending int  // unsent bytes in q
	sending bool // a Send or Sendfile op for q[0] is in flight
	sop     proactor.Send
	sfop    proactor.Sendfile
	sendFn  func(int32, uint32)
	sfFn    func(int32, uint32)
	// A read of a range of q[0]'s file into the page cache (readAhead),
	// in flight while warming; waitWarm: flush waits for it. wopSeq is
	// popped when it began: the item it is for.
	wop      proactor.Read
	wopFn    func(int32, uint32)
	wopID    uint64
	wopSeq   uint64
	warming  bool
	waitWarm bool
	popped   uint64 // items taken off q, to tell items apart
	ops      int    // ops in flight on fd; the fd is closed only at 0
	// corked: bytes went out with MSG_MORE and no send since has pushed
	// them; when the queue empties they are pushed (TCP_CORK off).
	corked bool

	// Per loop turn.
	turnBytes  int       // received since turnStart
	turnStart  time.Time // first receive counted in turnBytes
	inCb       bool      // in OnOpen or OnData: flush when it returns
	greedy     int
	inActive   bool
	dirty      bool
	lastActive time.Time
	sentAt     time.Time // WriteTimeout, IdleTimeout: the queue's last progress, or when it filled
	// The kernel's send queue (SIOCOUTQ) as sweep last saw it during the
	// stall that began at outqMark; see peerTook.
	outqSeen int
	outqMark time.Time

	laddr, raddr net.Addr
}

// outItem is one queued write: bytes (file < 0) or a sendfile range.
type outItem struct {
	base []byte // the buffer, from the loop's pool
	buf  []byte // its unsent part
	file int
	off  int64
	n    int64 // bytes left to send, < 0: up to end of file
	sent int64
	// counted: what of the range is still in pending. A range to the
	// end of the file (or past 1<<40) counts at most 1<<40, so the bytes
	// it sends come off that, not off the writes queued behind it.
	counted int64
	// warm: how far the file is known to be in the page cache, so that
	// sendfile(2) will not wait on the disk (readAhead).
	warm pagecache.Warmth
	done func(sent int64, err error)
}

const (
	stateOpen uint8 = iota
	stateClosing
	stateClosed
	stateDone
)

// Write queues a copy of b. The queue is flushed after the current loop
// turn, with one send per connection per turn however many Writes there
// were. Writes after Close, CloseWrite or Abort are dropped.
func (c *EventConn) Write(b []byte) {
	if c.state != stateOpen || c.shutWR || len(b) == 0 {
		return
	}
	if k := len(c.q); k > 0 && c.q[k-1].file < 0 && !(k == 1 && c.sending) {
		it := &c.q[k-1]
		// Appending may move the buffer: fine, as nothing in flight uses
		// the last item (the one in flight, q[0], is excluded above).
		off := len(it.base) - len(it.buf)
		it.base = append(it.base, b...)
		it.buf = it.base[off:]
	} else {
		base := append(c.el.getBuf(len(b)), b...)
		c.q = append(c.q, outItem{base: base, buf: base, file: -1})
	}
	c.pending += len(b)
	c.queued()
}

// SendFile queues n bytes of the file fd from offset off (n < 0: up to the
// end of the file), in order after the writes before it, sent with
// sendfile(2) from the page cache without copying through user space. done
// runs on the loop when the range is sent or failed (ErrConnClosed if the
// connection closed first); sent < n with a nil error means the file
// ended. The caller keeps fd open until done. A negative fd or off fails
// at once with os.ErrInvalid; an fd sendfile(2) cannot read from fails in
// done with the system call's error, and the connection goes on.
//
// sendfile(2) runs on the loop goroutine (io_uring has no opcode for it).
// So that a range not in the page cache is not read from the disk there,
// with the loop's other connections waiting, the range is first looked up
// with cachestat(2); if it is not all there, it is read in by ops
// (io_uring, or an epoll worker), 256 KiB at a time and one read ahead of
// sendfile(2), before it is sent (ServerMetrics.ColdReads counts those
// reads). That needs Linux 6.5; before it, or where a seccomp filter
// refuses cachestat, the loop waits for the disk as nginx's sendfile does
// without aio threads.
func (c *EventConn) SendFile(fd int, off, n int64, done func(sent int64, err error)) {
	c.sendFile(fd, off, n, false, done)
}

// SendFileResident is SendFile for a range the caller knows is in memory:
// a memfd or tmpfs file it wrote itself, whose pages stay resident while
// it is open. sendfile(2) runs at once, without the fstat(2) and
// cachestat(2) SendFile asks first: two system calls fewer per range,
// which is most of what a response of a few pages costs the loop. A range
// that is not in memory after all (a page of it swapped out, say) is read
// by sendfile(2) on the loop, which waits for the disk meanwhile.
func (c *EventConn) SendFileResident(fd int, off, n int64, done func(sent int64, err error)) {
	c.sendFile(fd, off, n, true, done)
}

func (c *EventConn) sendFile(fd int, off, n int64, resident bool, done func(sent int64, err error)) {
	if c.state != stateOpen || c.shutWR {
		if done != nil {
			done(0, ErrConnClosed)
		}
		return
	}
	if n == 0 || fd < 0 || off < 0 {
		if done != nil {
			var err error
			if fd < 0 || off < 0 {
				err = os.ErrInvalid
			}
			done(0, err)
		}
		return
	}
	it := outItem{file: fd, off: off, n: n, done: done}
	if resident {
		it.warm.UpTo = math.MaxInt64 // readAhead has nothing to look up
	}
	if n > 0 {
		it.counted = min(n, 1<<40)
		c.pending += int(it.counted)
	}
	c.q = append(c.q, it)
	c.queued()
}

func (c *EventConn) queued() {
	el := c.el
	if (el.writeTO || el.idle) && len(c.q) == 1 && !c.sending {
		// The queue was empty: the stall clock starts. IdleTimeout needs
		// it as well: sweep cuts a stalled queue off only after a look at
		// the kernel's queue during this stall (outqMark == sentAt), and
		// a clock never started would pass for one.
		c.sentAt = time.Now()
	}
	if lim := el.s.opts.WriteQueueLimit; lim > 0 && c.pending > lim && !c.paused {
		c.paused = true
		el.m.paused.Add(1)
		c.updateRecv()
	}
	c.wantFlush()
}

func (c *EventConn) wantFlush() {
	if c.inCb || c.dirty || c.sending || len(c.q) == 0 {
		// In a callback the flush follows its return: one send for
		// all of its writes, without the end-of-turn task.
		return
	}
	c.dirty = true
	c.el.dirty = append(c.el.dirty, c)
	c.el.touch()
}

// Close flushes the queued writes and sendfiles, then closes the
// connection; OnClose follows with a nil error. Receiving stops at once.
func (c *EventConn) Close() { c.closeWith(nil) }

// CloseWrite flushes the queue and then shuts down the sending side
// (a FIN to the peer); the connection keeps receiving. Later writes are
// dropped.
func (c *EventConn) CloseWrite() {
	if c.state != stateOpen || c.shutWR {
		return
	}
	c.shutWR = true
	if !c.sending && len(c.q) == 0 {
		c.flush()
	}
}

// Abort closes the connection at once, dropping the queue, with a reset
// (SO_LINGER 0) rather than an orderly FIN; OnClose follows with a nil
// error.
func (c *EventConn) Abort() {
	if c.state >= stateClosed {
		return
	}
	_ = unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	c.abort(nil)
}

// Hold stops receiving, and the IdleTimeout and WriteTimeout of the
// connection, until Resume: for a handler that finishes a request off the
// loop (a lookup that waits for the disk, say) and should get no more
// input meanwhile, nor lose the connection to a timeout it does not
// cause. Input and the peer's FIN wait in the kernel (what a receive had
// taken already waits in the connection), and OnData and the close at a
// FIN come after Resume. A reset from the peer is seen after Resume as
// well. Writes and Close work as usual.
func (c *EventConn) Hold() {
	if c.state != stateOpen || c.hold {
		return
	}
	c.hold = true
	c.updateRecv()
}

// Resume undoes Hold: the timeouts count from now, and what input waited
// is delivered (OnData runs within Resume when some was kept), or the
// close at the peer's FIN happens. Called within OnData, it leaves that to
// when OnData returns.
func (c *EventConn) Resume() {
	if !c.hold {
		return
	}
	c.hold = false
	if c.state != stateOpen {
		return // closing: its timeouts run on, nothing more is received
	}
	c.progressed()
	if !c.inCb {
		// Within OnData, the receive that delivers it goes on after it
		// returns, and updateRecv follows (onRecv, updateRecv).
		c.updateRecv()
	}
}

// SetContext stores v with the connection, for the handler's own state.
func (c *EventConn) SetContext(v any) { c.ctx = v }

// Context returns what SetContext stored.
func (c *EventConn) Context() any { return c.ctx }

// LocalAddr returns the local address (nil once the connection is closed,
// if it was never asked for before).
func (c *EventConn) LocalAddr() net.Addr {
	if c.laddr == nil && c.state < stateDone {
		c.laddr = sockname(c.fd, c.el.s.network, false)
	}
	return c.laddr
}

// RemoteAddr returns the peer's address. It is looked up on first use, so
// that connections that never ask do not pay a getpeername(2).
func (c *EventConn) RemoteAddr() net.Addr {
	if c.raddr == nil && c.state < stateDone {
		c.raddr = sockname(c.fd, c.el.s.network, true)
	}
	return c.raddr
}

// Loop returns the loop the connection lives on.
func (c *EventConn) Loop() *proactor.Loop { return c.el.l }

// Fd returns the socket descriptor, for socket options. Do not close it,
// read it or write it: the connection owns it. It is -1 once the
// descriptor is closed (in OnClose and after), whose number may belong to
// another file by then.
func (c *EventConn) Fd() int {
	if c.state == stateDone {
		return -1
	}
	return c.fd
}

// Pending returns the bytes queued and not yet sent (a SendFile to the end
// of its file counts as 0 until it is done).
func (c *EventConn) Pending() int { return c.pending }

// Server returns the server that accepted the connection.
func (c *EventConn) Server() *Server { return c.el.s }

func (c *EventConn) opErr(op, call string, res int32) error {
	return &net.OpError{Op: op, Net: c.el.s.network, Source: c.laddr, Addr: c.RemoteAddr(),
		Err: os.NewSyscallError(call, unix.Errno(-res))}
}

// updateRecv arms or cancels the receive to match what the connection
// wants now.
func (c *EventConn) updateRecv() {
	resume := c.state == stateOpen && !c.paused && !c.deferred && !c.hold
	if resume && len(c.held) > 0 {
		held := c.held
		c.held = nil
		c.deliver(held)
		c.updateRecv()
		return
	}
	if resume && c.eof {
		// The peer's FIN came while bytes were held, which OnData has
		// now had: close as onRecv does at a FIN.
		c.closeWith(io.EOF)
		return
	}
	want := resume // and no FIN: that returned above
	switch {
	case want && !c.recvArmed:
		el := c.el
		var op proactor.Op
		if el.bufs != nil {
			c.rb = proactor.RecvBuffers{Fd: c.fd, Multishot: true, Bufs: el.bufs, Limit: c.recvLimit()}
			op = &c.rb
		} else {
			if c.rbuf == nil {
				c.rbuf = make([]byte, el.s.opts.ReadBufferLimit)
			}
			c.rp = proactor.Recv{Fd: c.fd, Buf: c.rbuf}
			op = &c.rp
		}
		id, err := el.l.SubmitInLoop(op, c.recvFn)
		if err != nil {
			c.abort(err)
			return
		}
		c.recvID, c.recvArmed, c.recvCancel = id, true, false
		c.ops++
	case !want && c.recvArmed && !c.recvCancel:
		c.recvCancel = true
		c.el.l.CancelInLoop(c.recvID)
	case want && c.recvArmed && c.recvCancel:
		// The cancel may have been lost: a multishot receive that ran
		// out of buffers just before it sits parked in the proactor,
		// where the kernel's cancel cannot find it. Asking again reaches
		// it there; the final completion then re-arms.
		c.el.l.CancelInLoop(c.recvID)
	}
}

// recvLimit is how many bytes the next multishot receive may take: the
// write queue's headroom, at least one buffer so that it makes progress.
// A receive is armed only when nothing is held, so what a pause (or a
// fairness deferral) leaves held is at most that plus one buffer, where
// the limit is enforced; without one a multishot receive can fill the
// whole buffer pool before its cancel reaches the kernel. An echo-like
// handler fills the queue about as fast as the receive uses up its
// headroom, so the pause tends to meet a receive that has ended already.
// When a receive stops at its limit, onRecv arms the next one.
func (c *EventConn) recvLimit() int {
	lim := c.el.s.opts.WriteQueueLimit
	if lim < 0 {
		return 0
	}
	return max(lim-c.pending, c.el.bufs.Size())
}

func (c *EventConn) onRecv(res int32, flags uint32) {
	el := c.el
	if res > 0 {
		if el.idle {
			c.lastActive = time.Now()
		}
		el.m.bytesIn.Add(int64(res))
		if el.s.opts.TurnBytes >= 0 {
			if c.turnBytes == 0 {
				c.turnStart = time.Now()
			}
			c.turnBytes += int(res)
			if c.turnBytes > el.s.opts.TurnBytes && !c.inActive {
				// Over its share: endTurn decides whether that was
				// greedy (within a turn or greedyWindow) or just a
				// steady stream adding up.
				c.inActive = true
				el.active = append(el.active, c)
				el.touch()
			}
		}
		if flags&ring.CQEFBuffer != 0 {
			id := uint16(flags >> ring.CQEBufferShift)
			if c.state == stateOpen {
				c.deliver(el.bufs.Buffer(id, int(res)))
			}
			el.bufs.Release(id)
		} else if c.state == stateOpen {
			c.deliver(c.rbuf[:res])
		}
	}
	if flags&ring.CQEFMore != 0 {
		if c.recvCancel {
			// Still receiving after a cancel: see updateRecv.
			el.l.CancelInLoop(c.recvID)
		}
		return
	}
	c.recvArmed, c.recvCancel = false, false
	c.ops--

	switch {
	case res == 0:
		c.eof = true
		if len(c.held) == 0 && !c.hold {
			c.closeWith(io.EOF)
		}
		// Else bytes received before the FIN wait for OnData (paused,
		// deferred or held), or the handler's Resume: updateRecv
		// closes once it has delivered them.
	case res < 0 && res != -int32(unix.ECANCELED):
		if c.state < stateClosed {
			c.abort(c.opErr("read", "recv", res))
		}
	}
	if c.state >= stateClosed {
		c.maybeRelease()
		return
	}
	c.updateRecv()
}

// deliver hands received bytes to OnData, in chunks of ReadBufferLimit.
func (c *EventConn) deliver(data []byte) {
	el := c.el
	lim := el.s.opts.ReadBufferLimit
	c.inCb = true
	defer c.recoverCallback()
	for len(data) > 0 && c.state == stateOpen {
		if c.paused || c.deferred || c.hold {
			// Received after the receive was told to stop (the kernel
			// had it already): keep it for when reading resumes, so
			// that the write queue stays within its limit. How much:
			// what the receive took before its cancel reached the
			// kernel, bounded by its Limit (recvLimit) where that is
			// enforced (io_uring from 6.17, epoll, io_uring before
			// 6.0); on io_uring 6.0 to 6.16 with a fast sender about
			// the whole pool (proactor.Options.Buffers x BufferSize).
			// TestServeBackpressureBound measures it.
			c.held = append(c.held, data...)
			c.heldPeak = max(c.heldPeak, len(c.held))
			break
		}
		k := min(len(data), lim)
		el.s.h.OnData(c, data[:k])
		data = data[k:]
	}
	c.inCb = false
	if el.uring {
		c.wantFlush()
	} else if !c.sending && len(c.q) > 0 {
		c.flush()
	}
}

// flush starts sending the head of the queue, unless an op is in flight.
// Each send is first tried inline with the op's own Perform (a
// non-blocking syscall on the loop thread); the op is submitted only to
// wait for room. Bytes are tried inline on the epoll driver, and on
// io_uring when one connection flushes alone (el.inline); files always,
// since sendfile(2) has no io_uring opcode and the op would make the same
// attempt through the reactor, a turn later.
func (c *EventConn) flush() {
	el := c.el
	for !c.sending && len(c.q) > 0 && c.state < stateClosed {
		it := &c.q[0]
		if it.file < 0 {
			// Bytes followed by a file (response headers, then the body):
			// MSG_MORE holds the headers back so they leave in the same
			// full-sized segments as the file's first bytes, as
			// TCP_CORK does for nginx's tcp_nopush.
			flags := 0
			if len(c.q) > 1 && c.q[1].file >= 0 {
				flags = unix.MSG_MORE
			}
			c.corked = flags != 0
			c.sop = proactor.Send{Fd: c.fd, Buf: it.buf, Flags: flags}
			if el.inline {
				n, _ := c.sop.Perform()
				if n > 0 {
					c.sent(int(n))
					continue
				}
				if n != -int32(unix.EAGAIN) {
					c.abort(c.opErr("write", "send", n))
					return
				}
			}
			if _, err := el.l.SubmitInLoop(&c.sop, c.sendFn); err != nil {
				c.abort(err)
				return
			}
		} else {
			n := it.n
			if n < 0 || n > maxSendfile {
				n = maxSendfile
			}
			if !c.readAhead(it, n) {
				return // waiting for the pages, or aborted
			}
			// No further than the pages known to be there.
			n = min(n, it.warm.UpTo-it.off)
			c.sfop = proactor.Sendfile{Sock: c.fd, File: it.file, Off: it.off, N: int(n)}
			if res, _ := c.sfop.Perform(); res != -int32(unix.EAGAIN) && res != -int32(unix.EINTR) {
				if !c.sendfileDone(res) {
					return
				}
				continue
			}
			if _, err := el.l.SubmitInLoop(&c.sfop, c.sfFn); err != nil {
				c.abort(err)
				return
			}
		}
		c.sending = true
		c.ops++
		return
	}
	if c.sending || len(c.q) > 0 {
		return
	}
	if c.corked && c.state == stateOpen {
		// The file after the held bytes sent nothing (it was empty or
		// ended early): push them now rather than after the kernel's
		// 200 ms cork timer. Clearing TCP_CORK pushes even when it was
		// never set, and leaves TCP_NODELAY as it was.
		c.corked = false
		_ = unix.SetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_CORK, 0)
	}
	if c.shutWR && !c.wrDone && c.state == stateOpen {
		c.wrDone = true
		if err := unix.Shutdown(c.fd, unix.SHUT_WR); err != nil {
			c.abort(&net.OpError{Op: "close", Net: el.s.network, Addr: c.RemoteAddr(), Err: os.NewSyscallError("shutdown", err)})
			return
		}
	}
	if c.state == stateClosing {
		c.finalize()
	}
}

// progressed notes that bytes went out, for the timeouts.
func (c *EventConn) progressed() {
	if c.el.idle || c.el.writeTO {
		now := time.Now()
		c.lastActive, c.sentAt = now, now
	}
}

// peerTook reports whether the peer took bytes from the socket's send
// queue since sweep last looked during this stall: progress our sends do
// not show while the kernel's buffer (megabytes on a fast path) holds
// enough to wait on, and the socket stays unwritable. The first look of
// a stall only records the queue, and says false.
func (c *EventConn) peerTook() bool {
	q, err := unix.IoctlGetInt(c.fd, unix.SIOCOUTQ)
	if err != nil {
		return false
	}
	took := c.outqMark.Equal(c.sentAt) && q < c.outqSeen
	c.outqSeen, c.outqMark = q, c.sentAt
	return took
}

// sent accounts n bytes of q[0] as sent.
func (c *EventConn) sent(n int) {
	el := c.el
	it := &c.q[0]
	it.buf = it.buf[n:]
	c.pending -= n
	el.m.bytesOut.Add(int64(n))
	c.progressed()
	if len(it.buf) == 0 {
		el.putBuf(it.base)
		c.pop()
	}
	c.unpause()
}

func (c *EventConn) pop() {
	c.popped++
	copy(c.q, c.q[1:])
	c.q[len(c.q)-1] = outItem{}
	c.q = c.q[:len(c.q)-1]
	if len(c.q) == 0 && cap(c.q) > 4 {
		c.q = nil // a burst of items is over: do not keep its array
	}
}

func (c *EventConn) unpause() {
	if c.paused && c.pending <= c.el.s.opts.WriteQueueLimit/2 {
		c.paused = false
		c.updateRecv()
	}
}

// opEnded accounts for the end of an op on the connection. It reports
// false when the connection has closed, and the op's result no longer
// matters.
func (c *EventConn) opEnded() bool {
	c.ops--
	if c.state >= stateClosed {
		c.maybeRelease()
		return false
	}
	return true
}

func (c *EventConn) onSend(res int32, _ uint32) {
	c.sending = false
	if !c.opEnded() {
		return
	}
	if res < 0 {
		c.abort(c.opErr("write", "send", res))
		return
	}
	c.sent(int(res))
	c.flush()
}

// readAhead keeps sendfile(2) from reading the disk on the loop (see
// internal/pagecache). When the next n bytes of q[0]'s file are not all
// in the page cache it reads them in by an op and reports false: flush
// goes on when the read ends. From then on the item is cold, and each
// part is read in one part ahead of sendfile(2), so that the disk and
// the socket work at once. It reports true when sendfile(2) may send up
// to it.warm.UpTo.
func (c *EventConn) readAhead(it *outItem, n int64) bool {
	w := &it.warm
	if it.off >= w.UpTo {
		if c.warming {
			// The read in flight began at UpTo, which is it.off, or it
			// is an earlier item's: wait for it either way (one read at
			// a time; onWarm applies it only to its own item).
			c.waitWarm, c.sending = true, true
			return false
		}
		if w.Resident(it.file, it.off, n) {
			return true
		}
		switch c.startWarm(it, it.off, min(n, pagecache.MaxRead)) {
		case warmStarted:
			c.waitWarm, c.sending = true, true
			return false
		case warmSkipped:
			return true
		}
		return false // aborted
	}
	end := int64(math.MaxInt64)
	if it.n > 0 {
		end = it.off + it.n
	}
	if size := w.Next(it.off, end); size > 0 && !c.warming {
		return c.startWarm(it, w.UpTo, size) != warmAborted
	}
	return true
}

// What startWarm did.
const (
	warmStarted = iota
	warmSkipped // no descriptor for the read: sendfile(2) goes unchecked
	warmAborted // the connection was aborted
)

// startWarm reads w bytes of it's file at off into the scratch buffer,
// which brings them into the page cache. The read has a duplicate of the
// file's descriptor, which onWarm closes: the item may end (done may close
// the file) and the connection close while it runs, without waiting for it
// and without the read finding another file under the number.
func (c *EventConn) startWarm(it *outItem, off, w int64) int {
	el := c.el
	dfd, err := unix.FcntlInt(uintptr(it.file), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		it.warm.UpTo = off + w
		return warmSkipped
	}
	c.wop = proactor.Read{Fd: dfd, Buf: pagecache.Scratch()[:w], Off: off}
	id, err := el.l.SubmitInLoop(&c.wop, c.wopFn)
	if err != nil {
		unix.Close(dfd)
		c.abort(err)
		return warmAborted
	}
	el.m.coldReads.Add(1)
	c.wopID, c.wopSeq, c.warming = id, c.popped, true
	return warmStarted
}

// onWarm follows a read startWarm began. Whatever it found, bytes, the
// end of the file or an error, sendfile(2) comes next and reports the
// outcome: the read only brought pages in.
func (c *EventConn) onWarm(res int32, _ uint32) {
	unix.Close(c.wop.Fd)
	c.warming = false
	if c.state < stateClosed && c.wopSeq == c.popped && len(c.q) > 0 {
		c.q[0].warm.Warmed(c.wop.Off, int64(len(c.wop.Buf)), res)
	}
	c.wop.Buf = nil
	if c.waitWarm && c.state < stateClosed {
		c.waitWarm, c.sending = false, false
		c.flush()
	}
}

func (c *EventConn) onSendfile(res int32, _ uint32) {
	c.sending = false
	if !c.opEnded() {
		return
	}
	if c.sendfileDone(res) {
		c.flush()
	}
}

// sendfileDone accounts one sendfile(2) result for q[0]. It reports false
// when the connection was aborted and nothing more may be sent.
func (c *EventConn) sendfileDone(res int32) bool {
	it := &c.q[0]
	switch {
	case res > 0:
		c.corked = false // file bytes went out after the held ones
		it.off += int64(res)
		it.sent += int64(res)
		c.el.m.bytesOut.Add(int64(res))
		c.progressed()
		if it.n > 0 {
			it.n -= int64(res)
		}
		d := min(int64(res), it.counted)
		it.counted -= d
		c.pending -= int(d)
		if it.n != 0 {
			return true // more of this range
		}
		c.finishFile(nil)
	case res == 0: // end of file
		c.finishFile(nil)
	default:
		err := c.opErr("write", "sendfile", res)
		sent := it.sent
		c.finishFile(err)
		if sent > 0 {
			// Part of the range is on the wire: the stream cannot go on.
			c.abort(err)
			return false
		}
	}
	c.unpause()
	return true
}

func (c *EventConn) finishFile(err error) {
	it := c.q[0]
	c.pending -= int(it.counted)
	c.pop()
	c.callDone(it.done, it.sent, err)
}

// callDone runs a SendFile's done callback. A panic there is the
// handler's, as in OnData: the connection is aborted and the panic
// reported, and net's state stays right.
func (c *EventConn) callDone(done func(int64, error), sent int64, err error) {
	if done == nil {
		return
	}
	defer c.recoverCallback()
	done(sent, err)
}

// recoverCallback, deferred around a call into the handler (OnOpen,
// OnData, OnClose, a SendFile's done), recovers its panic: the connection is
// aborted (its handler state cannot be trusted), the panic is reported as
// the loop reports its own handlers' (Options.OnPanic), and net goes on
// with what it was doing, so that no buffer, receive or count is lost and
// the other connections keep being served.
func (c *EventConn) recoverCallback() {
	if v := recover(); v != nil {
		c.inCb = false
		c.el.l.ReportPanic(v)
		c.abort(&HandlerPanicError{Value: v})
	}
}

// HandlerPanicError is OnClose's error for a connection aborted because
// its handler panicked (in OnOpen, OnData or a SendFile's done).
type HandlerPanicError struct {
	Value any // what the handler panicked with
}

func (e *HandlerPanicError) Error() string {
	return fmt.Sprintf("ringo/net: handler panicked: %v", e.Value)
}

// closeWith closes gracefully: stop receiving, flush, then finalize.
func (c *EventConn) closeWith(reason error) {
	if c.state != stateOpen {
		return
	}
	c.state = stateClosing
	c.reason = reason
	c.updateRecv()
	c.flush()
}

// abort closes at once with reason, dropping the queue.
func (c *EventConn) abort(reason error) {
	if c.state >= stateClosed {
		return
	}
	c.reason = reason
	c.finalize()
}

// finalize drops what is queued and cancels the ops on the descriptor;
// the descriptor is closed when the last of them has completed, because
// close(2) does not cancel io_uring requests.
func (c *EventConn) finalize() {
	if c.state >= stateClosed {
		return
	}
	c.state = stateClosed
	q := c.q
	c.q, c.pending = nil, 0
	for i := range q {
		it := &q[i]
		if it.file < 0 {
			if i > 0 || !c.sending {
				c.el.putBuf(it.base) // not in flight: reusable
			}
		} else {
			c.callDone(it.done, it.sent, ErrConnClosed)
		}
	}
	if c.ops > 0 {
		c.el.l.CancelFdInLoop(c.fd)
	}
	if c.warming {
		// On the file, not c.fd, and not waited for: stop it if the
		// kernel can (a read of cold pages goes on anyway).
		c.el.l.CancelInLoop(c.wopID)
	}
	c.maybeRelease()
}

func (c *EventConn) maybeRelease() {
	if c.state != stateClosed || c.ops > 0 {
		return
	}
	c.state = stateDone
	if !c.el.uring {
		// The epoll reactor keeps state for every fd it ever polled,
		// which would otherwise apply to the next socket with this
		// number; CancelFd is how it forgets.
		c.el.l.CancelFdInLoop(c.fd)
	}
	unix.Close(c.fd)
	c.rbuf, c.held = nil, nil
	// OnClose first: Shutdown returns once every connection is removed,
	// and promises that OnClose has run by then. A panicking OnClose is
	// reported, and the connection is still removed: else Shutdown would
	// wait for it for ever.
	defer c.el.removeConn(c)
	defer c.recoverCallback() // only reports: the connection is closed already
	c.el.s.h.OnClose(c, c.reason)
}

// undefer ends a fairness deferral.
func (c *EventConn) undefer() {
	c.deferred = false
	c.updateRecv()
}
