package net

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
	"github.com/ringo-io/ringo/ring"
)

// Server is a running callback-API server: its listeners, and the
// connections they accepted on the loops of its Proactor.
type Server struct {
	p       *proactor.Proactor
	h       Handler
	ticker  Ticker
	opts    ServeOptions
	network string
	addr    net.Addr
	path    string // Unix socket path to unlink at the end, or ""
	loops   []*evLoop
	rr      atomic.Uint32 // RoundRobin's next loop

	open      atomic.Int64 // connections open, for MaxConns and Shutdown
	listeners atomic.Int64 // listening sockets not yet closed
	stopping  atomic.Bool  // no more accepts; Shutdown has begun
	// changed is closed, and replaced, when a connection or listener goes
	// away after Shutdown began: a broadcast, as every concurrent
	// Shutdown waits on it.
	changedMu sync.Mutex
	changed   chan struct{}
	shutOnce  sync.Once
	unpinOnce sync.Once
	cpus      []int // PinLoops: the CPUs loops are pinned to, in order
}

// Serve listens on network ("tcp", "tcp4", "tcp6" or "unix") and address
// and serves every connection with h on the loops of opts.Proactor. It
// returns as soon as the listeners are up; the Server runs until Close or
// Shutdown.
func Serve(network, address string, h Handler, opts ServeOptions) (*Server, error) {
	if h == nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: errors.New("nil Handler")}
	}
	p, err := pick(opts.Proactor)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: network, Err: err}
	}
	if opts.ReadBufferLimit <= 0 {
		opts.ReadBufferLimit = 16 << 10
	}
	if opts.WriteQueueLimit == 0 {
		opts.WriteQueueLimit = 1 << 20
	}
	if opts.TickInterval <= 0 {
		opts.TickInterval = time.Second
	}
	if opts.TurnBytes == 0 {
		opts.TurnBytes = 256 << 10
	}
	if opts.GreedyTurns <= 0 {
		opts.GreedyTurns = 4
	}
	if opts.DeferFor <= 0 {
		opts.DeferFor = 2 * time.Millisecond
	}
	switch opts.Balance {
	case ReusePort, RoundRobin, LeastConns:
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: errors.New("unknown Balance " + opts.Balance.String())}
	}
	if network == "unix" && opts.Balance == ReusePort {
		opts.Balance = RoundRobin // one listener: it hands connections out
	}
	s := &Server{p: p, h: h, opts: opts, network: network,
		changed: make(chan struct{})}
	s.ticker, _ = h.(Ticker)
	if opts.PinLoops {
		// The CPUs of the calling thread, not of a loop thread: a loop
		// may be pinned already, by another Server.
		var set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &set); err != nil {
			return nil, &net.OpError{Op: "listen", Net: network, Err: os.NewSyscallError("sched_getaffinity", err)}
		}
		for c := 0; len(s.cpus) < set.Count() && c < len(set)*64; c++ {
			if set.IsSet(c) {
				s.cpus = append(s.cpus, c)
			}
		}
	}
	loops := p.Loops()
	s.loops = make([]*evLoop, len(loops))
	for i, l := range loops {
		s.loops[i] = newEvLoop(s, l)
	}

	fds, err := s.listen(network, address, len(loops))
	if err != nil {
		return nil, err
	}
	s.listeners.Store(int64(len(fds)))
	// Set each loop up on its own goroutine: provided buffers are per loop
	// and loop-only, and so is the accept op.
	errs := make(chan error, len(loops))
	for i, el := range s.loops {
		lfd := -1
		if i < len(fds) {
			lfd = fds[i]
		}
		el := el
		if err := el.l.Post(func() { errs <- el.start(lfd) }); err != nil {
			errs <- err
			if lfd >= 0 {
				unix.Close(lfd)
				s.listeners.Add(-1)
			}
		}
	}
	var first error
	for range loops {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		s.Close()
		return nil, &net.OpError{Op: "listen", Net: network, Addr: s.addr, Err: first}
	}
	return s, nil
}

// listen opens the listening sockets: one per loop for ReusePort on TCP,
// else one.
func (s *Server) listen(network, address string, n int) ([]int, error) {
	lc := ListenConfig{Backlog: s.opts.Backlog, FastOpen: s.opts.FastOpen, NotSentLowat: s.opts.NotSentLowat}
	switch network {
	case "tcp", "tcp4", "tcp6":
	case "unix":
		fd, path, err := lc.socketUnix(address)
		if err != nil {
			return nil, err
		}
		s.path = path
		s.addr = sockname(fd, network, false)
		return []int{fd}, nil
	default:
		return nil, &net.OpError{Op: "listen", Net: network, Err: net.UnknownNetworkError(network)}
	}
	if s.opts.Balance != ReusePort {
		n = 1
	}
	lc.ReusePort = s.opts.Balance == ReusePort
	fds := make([]int, 0, n)
	fail := func(err error) ([]int, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, err
	}
	for i := 0; i < n; i++ {
		fd, err := lc.socketTCP(context.Background(), network, address)
		if err != nil {
			return fail(err)
		}
		fds = append(fds, fd)
		if err := s.tcpListenerOpts(fd); err != nil {
			return fail(err)
		}
		if i == 0 {
			s.addr = sockname(fd, network, false)
			// The other listeners bind the port the first one got, so
			// that ":0" works.
			if ta, ok := s.addr.(*net.TCPAddr); ok {
				host, _, err := net.SplitHostPort(address)
				if err != nil {
					return fail(err)
				}
				address = net.JoinHostPort(host, itoa(ta.Port))
			}
		}
	}
	return fds, nil
}

// tcpListenerOpts sets the options of accepted connections on a listening
// socket: Linux copies a listener's socket options (TCP_NODELAY,
// SO_KEEPALIVE and the keep-alive periods) into every connection it
// accepts, so setting them once here saves system calls per connection.
func (s *Server) tcpListenerOpts(fd int) error {
	if !s.opts.Nagle {
		if err := setsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return err
		}
	}
	ka := s.opts.KeepAliveConfig
	if !ka.Enable {
		if s.opts.KeepAlive <= 0 {
			return nil
		}
		ka = net.KeepAliveConfig{Enable: true, Idle: s.opts.KeepAlive, Interval: s.opts.KeepAlive, Count: -1}
	}
	return setKeepAliveConfig(fd, ka)
}

// keepAliveSecs rounds a keep-alive period up to whole seconds, the
// kernel's unit; negative stays negative (leave as is), 0 stays 0.
func keepAliveSecs(d time.Duration) int {
	if d <= 0 {
		return int(max(d, -1))
	}
	return int((d + time.Second - 1) / time.Second)
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.addr }

// Metrics returns the server's counters, summed over its loops.
func (s *Server) Metrics() ServerMetrics {
	m := ServerMetrics{Open: s.open.Load()}
	for _, el := range s.loops {
		m.Accepted += el.m.accepted.Load()
		m.Rejected += el.m.rejected.Load()
		m.Closed += el.m.closed.Load()
		m.IdleClosed += el.m.idleClosed.Load()
		m.WriteTimeouts += el.m.writeTimeouts.Load()
		m.BytesIn += el.m.bytesIn.Load()
		m.BytesOut += el.m.bytesOut.Load()
		m.Paused += el.m.paused.Load()
		m.Deferred += el.m.deferred.Load()
		m.AcceptBackoff += el.m.backoff.Load()
		m.ColdReads += el.m.coldReads.Load()
	}
	return m
}

// Close stops accepting and closes every connection at once (their OnClose
// errors are nil), and returns when all are closed.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.Shutdown(ctx)
	return nil
}

// Shutdown stops accepting, then waits for the open connections to close
// (through the handler, their peers or IdleTimeout) until ctx is done;
// then it closes the rest at once as Close does, and returns ctx.Err().
// It returns nil if every connection closed by itself. Shutdown returns
// only when every connection's OnClose has run.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutOnce.Do(func() {
		s.stopping.Store(true)
		for _, el := range s.loops {
			el := el
			if el.l.Post(el.stopAccepting) != nil {
				// The proactor is closed: its loops are gone and with
				// them every op; only descriptors are left to close.
				el.lost()
			}
		}
	})
	var err error
	forced := false
	for {
		// The channel before the counts: a change after the check
		// closes the channel this call then waits on.
		changed := s.changedChan()
		if s.open.Load() == 0 && s.listeners.Load() == 0 {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			if !forced {
				forced, err = true, ctx.Err()
				for _, el := range s.loops {
					el := el
					if el.l.Post(el.abortAll) != nil {
						el.lost()
					}
				}
			}
			// Keep waiting: the aborts are quick, but OnClose must
			// have run when Shutdown returns.
			select {
			case <-changed:
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	if s.path != "" {
		os.Remove(s.path)
		s.path = ""
	}
	s.unpinOnce.Do(s.unpin)
	return err
}

// unpin gives each pinned loop its former affinity back and unlocks its
// goroutine, once nothing of the Server runs on the loops any more.
func (s *Server) unpin() {
	if !s.opts.PinLoops {
		return
	}
	done := make(chan struct{}, len(s.loops))
	n := 0
	for _, el := range s.loops {
		el := el
		if el.l.Post(func() { el.unpin(); done <- struct{}{} }) == nil {
			n++
		}
	}
	for ; n > 0; n-- {
		<-done
	}
}

// notify tells the Shutdown calls waiting that a connection or listener
// went away. Before Shutdown nobody waits, and it costs one atomic load.
func (s *Server) notify() {
	if !s.stopping.Load() {
		return
	}
	s.changedMu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.changedMu.Unlock()
}

func (s *Server) changedChan() <-chan struct{} {
	s.changedMu.Lock()
	defer s.changedMu.Unlock()
	return s.changed
}

// evLoop is the server's state on one loop. Loop goroutine only, except
// the counters in m.
type evLoop struct {
	s    *Server
	l    *proactor.Loop
	bufs *proactor.Buffers // nil: each connection receives into its own buffer

	lfd       int // listening socket on this loop, or -1
	accept    proactor.Accept
	acceptID  uint64
	accepting bool          // the accept op is in flight
	backoff   time.Duration // current EMFILE back-off, 0 when accepting works
	acceptFn  func(int32, uint32)

	conns    []*EventConn // open connections; EventConn.idx is the position
	dirty    []*EventConn // connections with writes to flush this turn
	active   []*EventConn // connections that received this turn
	posted   bool         // endTurn is queued for this turn
	endFn    func()
	clock    time.Time // refreshed at the start of each turn with events
	inline   bool      // try send(2) inline before a Send op
	uring    bool      // the loop's driver is io_uring
	idle     bool      // IdleTimeout is on: connections note their last activity
	writeTO  bool      // WriteTimeout is on: connections note their last send progress
	wbufs    [][]byte  // spare write buffers
	stopped  bool
	lostOnce sync.Once
	pinned   bool        // PinLoops: this goroutine is locked and pinned
	oldCPUs  unix.CPUSet // the thread's affinity before pinning

	nconns atomic.Int64 // len(conns), for LeastConns from the acceptor's loop
	m      struct {
		accepted, rejected, closed, idleClosed, writeTimeouts, bytesIn, bytesOut,
		paused, deferred, backoff, coldReads atomic.Int64
		_ [64]byte // keep loops' counters on their own cache lines
	}
}

func newEvLoop(s *Server, l *proactor.Loop) *evLoop {
	el := &evLoop{s: s, l: l, lfd: -1}
	el.acceptFn = el.onAccept
	el.endFn = el.endTurn
	// On the epoll driver a Send op is a send(2) from the reactor anyway;
	// doing it inline saves the trip through the op queue. On io_uring
	// a Send is an SQE submitted with the next wait, no extra syscall.
	el.uring = s.p.Backend() == proactor.Uring
	el.idle = s.opts.IdleTimeout > 0
	el.writeTO = s.opts.WriteTimeout > 0
	el.inline = !el.uring
	return el
}

// start runs on the loop: buffers, the accept op, timers.
func (el *evLoop) start(lfd int) error {
	s := el.s
	if len(s.cpus) > 0 {
		if err := el.pin(s.cpus[el.l.ID()%len(s.cpus)]); err != nil {
			if lfd >= 0 {
				el.lfd = lfd
				el.closeListener()
			}
			return err
		}
	}
	if !forcePlainRecv {
		if b, err := el.l.Buffers(); err == nil {
			el.bufs = b
		}
	}
	el.clock = time.Now()
	el.lfd = lfd
	if lfd >= 0 {
		el.accept = proactor.Accept{Fd: lfd, Multishot: true}
		el.armAccept()
	}
	if el.idle || el.writeTO {
		el.l.AfterFunc(el.sweepEvery(), el.sweep)
	}
	if s.ticker != nil {
		el.l.AfterFunc(s.opts.TickInterval, el.tick)
	}
	return nil
}

// pin binds the loop's thread to cpu. The goroutine is locked to its thread
// first: otherwise it would leave the pinned thread at its next wait (on
// WaitNetpoll) and other goroutines would run there instead. A locked
// thread also has the runtime start new threads from its template thread,
// so they do not inherit the pin.
func (el *evLoop) pin(cpu int) error {
	runtime.LockOSThread()
	if err := unix.SchedGetaffinity(0, &el.oldCPUs); err != nil {
		runtime.UnlockOSThread()
		return os.NewSyscallError("sched_getaffinity", err)
	}
	var one unix.CPUSet
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("pin loop %d to CPU %d: %w", el.l.ID(), cpu, os.NewSyscallError("sched_setaffinity", err))
	}
	el.pinned = true
	return nil
}

func (el *evLoop) unpin() {
	if !el.pinned {
		return
	}
	el.pinned = false
	_ = unix.SchedSetaffinity(0, &el.oldCPUs)
	runtime.UnlockOSThread()
}

// forcePlainRecv makes loops skip provided buffers, so that tests cover the
// per-connection receive path.
var forcePlainRecv = false

func sweepPeriod(d time.Duration) time.Duration { return max(d/4, time.Millisecond) }

func (el *evLoop) armAccept() {
	if el.stopped || el.accepting || el.lfd < 0 {
		return
	}
	id, err := el.l.SubmitInLoop(&el.accept, el.acceptFn)
	if err != nil {
		el.closeListener()
		return
	}
	el.acceptID, el.accepting = id, true
}

func (el *evLoop) onAccept(res int32, flags uint32) {
	if res >= 0 {
		el.backoff = 0
		el.dispatch(int(res))
	}
	if flags&ring.CQEFMore != 0 {
		return
	}
	el.accepting = false
	if el.stopped {
		el.closeListener()
		return
	}
	switch -res {
	case int32(unix.EMFILE), int32(unix.ENFILE), int32(unix.ENOBUFS), int32(unix.ENOMEM):
		// Out of descriptors or memory: the queued connections stay in
		// the backlog. Retry after a pause, from 5ms doubling to 1s
		// (net/http's values), instead of spinning on the error; closes
		// meanwhile free what the next try needs.
		el.backoff = min(max(2*el.backoff, 5*time.Millisecond), time.Second)
		el.m.backoff.Add(1)
		el.l.AfterFunc(el.backoff, el.armAccept)
	default:
		// A connection (ECONNABORTED, EINTR), a one-shot accept, or a
		// multishot accept the kernel ended: arm again.
		el.armAccept()
	}
}

// admit counts a new connection in open, unless MaxConns are open
// already. A compare-and-swap, as with ReusePort every loop accepts: a
// check and an add apart let two loops both pass the check.
func (s *Server) admit() bool {
	max := int64(s.opts.MaxConns)
	for {
		n := s.open.Load()
		if max > 0 && n >= max {
			return false
		}
		if s.open.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// dispatch gives a newly accepted socket to a loop.
func (el *evLoop) dispatch(fd int) {
	s := el.s
	if !s.admit() {
		el.m.rejected.Add(1)
		unix.Close(fd)
		return
	}
	target := el
	switch s.opts.Balance {
	case RoundRobin:
		target = s.loops[int(s.rr.Add(1)-1)%len(s.loops)]
	case LeastConns:
		for _, o := range s.loops {
			if o.nconns.Load() < target.nconns.Load() {
				target = o
			}
		}
	}
	target.nconns.Add(1) // counted at once, so that LeastConns sees it
	if target == el {
		el.newConn(fd)
		return
	}
	if target.l.Post(func() { target.newConn(fd) }) != nil {
		target.nconns.Add(-1)
		unix.Close(fd)
		s.open.Add(-1)
		s.notify()
	}
}

func (el *evLoop) newConn(fd int) {
	s := el.s
	if el.stopped {
		// Shut down between accept and hand-over.
		unix.Close(fd)
		el.nconns.Add(-1)
		s.open.Add(-1)
		s.notify()
		return
	}
	// TCP_NODELAY and keep-alive came with the socket from its listener
	// (tcpListenerOpts).
	el.m.accepted.Add(1)
	c := &EventConn{el: el, fd: fd, idx: len(el.conns), lastActive: time.Now()}
	c.recvFn = c.onRecv
	c.sendFn = c.onSend
	c.sfFn = c.onSendfile
	c.wopFn = c.onWarm
	el.conns = append(el.conns, c)
	c.open()
	c.updateRecv()
	c.flush()
}

// open calls OnOpen; a panic aborts the connection, as in OnData.
func (c *EventConn) open() {
	c.inCb = true
	defer c.recoverCallback()
	c.el.s.h.OnOpen(c)
	c.inCb = false
}

// removeConn drops c from the loop's list once it is fully closed.
func (el *evLoop) removeConn(c *EventConn) {
	last := len(el.conns) - 1
	if c.idx >= 0 && c.idx <= last && el.conns[c.idx] == c {
		el.conns[c.idx] = el.conns[last]
		el.conns[c.idx].idx = c.idx
		el.conns[last] = nil
		el.conns = el.conns[:last]
	}
	c.idx = -1
	el.nconns.Add(-1)
	el.m.closed.Add(1)
	el.s.open.Add(-1)
	el.s.notify()
}

// greedyWindow is how quickly a connection must receive TurnBytes to
// count as greedy: a turn of the loop normally lasts far less, and a
// connection that took longer is a steady stream, not a flood.
const greedyWindow = time.Millisecond

// touch has endTurn run once after the turn's completions (Loop.AtTurnEnd,
// no wake-up) and refreshes the clock.
func (el *evLoop) touch() {
	if el.posted {
		return
	}
	el.posted = true
	el.clock = time.Now()
	el.l.AtTurnEnd(el.endFn)
}

// endTurn flushes the connections written to this turn, one send each,
// and applies the fairness throttle.
func (el *evLoop) endTurn() {
	el.posted = false
	s := el.s
	for i, c := range el.active {
		el.active[i] = nil
		c.inActive = false
		if s.opts.TurnBytes < 0 {
			c.turnBytes = 0
			continue
		}
		if c.turnBytes > s.opts.TurnBytes && el.clock.Sub(c.turnStart) <= greedyWindow {
			c.greedy++
			// Not again while deferred: the first undefer would end the
			// second deferral early.
			if c.greedy >= s.opts.GreedyTurns && c.state == stateOpen && !c.deferred {
				c.greedy = 0
				c.deferred = true
				el.m.deferred.Add(1)
				c.updateRecv()
				el.l.AfterFunc(s.opts.DeferFor, c.undefer)
			}
		} else {
			c.greedy = 0
		}
		c.turnBytes = 0
	}
	el.active = el.active[:0]
	// On io_uring a turn's sends reach the kernel in one enter. With one
	// connection to flush there is nothing to batch: send(2) inline
	// costs the same syscall and saves the CQE and the turn to reap it
	// (1-connection echo, docs/BENCHMARKS.md).
	el.inline = !el.uring || len(el.dirty) == 1
	defer func() { el.inline = !el.uring }()
	for i := 0; i < len(el.dirty); i++ { // flush may append closes
		c := el.dirty[i]
		el.dirty[i] = nil
		c.dirty = false
		c.flush()
	}
	el.dirty = el.dirty[:0]
}

func (el *evLoop) getBuf(n int) []byte {
	if k := len(el.wbufs); k > 0 {
		b := el.wbufs[k-1]
		el.wbufs = el.wbufs[:k-1]
		if cap(b) >= n {
			return b[:0]
		}
	}
	return make([]byte, 0, max(n, 512))
}

func (el *evLoop) putBuf(b []byte) {
	// Keep a few small buffers: a busy loop reuses them every turn, and
	// idle connections hold none.
	if cap(b) <= 64<<10 && len(el.wbufs) < 1024 {
		el.wbufs = append(el.wbufs, b[:0])
	}
}

// sweepEvery is the period of sweep: a quarter of the shorter timeout.
func (el *evLoop) sweepEvery() time.Duration {
	d := el.s.opts.IdleTimeout
	if w := el.s.opts.WriteTimeout; w > 0 && (d <= 0 || w < d) {
		d = w
	}
	return sweepPeriod(d)
}

// sweep applies IdleTimeout and WriteTimeout.
func (el *evLoop) sweep() {
	if el.stopped {
		return
	}
	idle, wto := el.s.opts.IdleTimeout, el.s.opts.WriteTimeout
	now := time.Now()
	el.clock = now
	for i := 0; i < len(el.conns); i++ {
		c := el.conns[i]
		if c.waitWarm || (c.hold && c.state == stateOpen) {
			// Its output waits for a read from our own disk, or for its
			// handler (Hold; once the handler closed it, its peer again),
			// not for its peer: not a stall, and not idle.
			c.progressed()
			continue
		}
		// A queue that has not moved for a sweep period is looked at
		// in the kernel at every sweep: a slow reader may be draining
		// a large socket buffer, which is progress. A stalled one is
		// cut off once the timeout passed and an earlier look of this
		// stall saw the kernel's queue no shorter (so up to a sweep
		// late).
		looked := c.outqMark.Equal(c.sentAt)
		if len(c.q) > 0 && c.state < stateClosed &&
			((el.writeTO && now.Sub(c.sentAt) >= wto/4) || (el.idle && now.Sub(c.lastActive) >= idle/4)) &&
			c.peerTook() {
			c.progressed()
			// The queue just seen is the next stall's baseline.
			c.outqMark = c.sentAt
			continue
		}
		switch {
		case el.writeTO && len(c.q) > 0 && c.state < stateClosed && now.Sub(c.sentAt) >= wto && looked:
			el.m.writeTimeouts.Add(1)
			c.abort(ErrWriteTimeout)
		case el.idle && c.state == stateOpen && now.Sub(c.lastActive) >= idle && (len(c.q) == 0 || looked):
			el.m.idleClosed.Add(1)
			c.closeWith(ErrIdleTimeout)
		case el.idle && c.state == stateClosing && now.Sub(c.lastActive) >= idle && (len(c.q) == 0 || looked):
			// Flushing before close, and nothing has moved for the
			// timeout: the peer stopped reading.
			c.abort(ErrIdleTimeout)
		}
		if i < len(el.conns) && el.conns[i] != c {
			i-- // c was removed and the last connection moved here
		}
	}
	el.l.AfterFunc(el.sweepEvery(), el.sweep)
}

func (el *evLoop) tick() {
	if el.stopped {
		return
	}
	d := el.s.opts.TickInterval
	// Deferred, so that a panicking OnTick (reported by the loop) does
	// not stop the ticks.
	defer func() { el.l.AfterFunc(d, el.tick) }()
	if t := el.s.ticker.OnTick(); t > 0 {
		d = t
	}
}

// stopAccepting runs on the loop at Shutdown.
func (el *evLoop) stopAccepting() {
	el.stopped = true
	if el.accepting {
		el.l.CancelInLoop(el.acceptID) // onAccept closes the listener
		return
	}
	el.closeListener()
}

func (el *evLoop) closeListener() {
	if el.lfd < 0 {
		return
	}
	if !el.uring {
		el.l.CancelFdInLoop(el.lfd) // forget it, as EventConn.maybeRelease
	}
	unix.Close(el.lfd)
	el.lfd = -1
	el.s.listeners.Add(-1)
	el.s.notify()
}

// abortAll runs on the loop when Shutdown's context ends.
func (el *evLoop) abortAll() {
	for _, c := range append([]*EventConn(nil), el.conns...) {
		c.abort(nil)
	}
}

// lost is called from Shutdown when the loop no longer runs (its Proactor
// was closed): nothing is in flight, so the descriptors can be closed here.
func (el *evLoop) lost() {
	// Concurrent Shutdowns that time out may each call it.
	el.lostOnce.Do(el.loseAll)
}

func (el *evLoop) loseAll() {
	s := el.s
	s.stopping.Store(true)
	// The loop goroutine has exited, so reading its state is safe: its
	// last writes happened before the loop's done channel closed.
	if el.lfd >= 0 {
		unix.Close(el.lfd)
		el.lfd = -1
		s.listeners.Add(-1)
	}
	for _, c := range el.conns {
		if c.state != stateClosed {
			unix.Close(c.fd)
			c.state = stateClosed
			s.open.Add(-1)
		}
	}
	el.conns = nil
	s.notify()
}
