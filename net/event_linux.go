package net

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/ringo-io/ringo/proactor"
)

// The callback API: an event-driven server in the spirit of gnet, for
// programs that want the last microsecond per message. Connections live on
// the loop goroutines, with no goroutine per connection: the loop accepts
// (multishot accept), receives into its provided buffers (multishot recv)
// and hands the bytes to a Handler without copying them; writes are queued
// per connection and flushed once per loop turn, one Send per connection.
//
// The pieces: Serve and ServeOptions start a Server (server_linux.go:
// listeners, load balancing, limits, shutdown); EventConn is one
// connection and its write queue (eventconn_linux.go).

// Handler receives a connection's events on its loop goroutine, one event
// at a time per loop. A handler must never block: everything else on that
// loop waits while it runs. Work that blocks belongs on another goroutine,
// which hands results back with c.Loop().Post.
type Handler interface {
	// OnOpen is called once for each new connection, before any OnData.
	// Per-connection state goes in c.SetContext.
	OnOpen(c *EventConn)
	// OnData is called with bytes received on c. data aliases a receive
	// buffer of the loop (or of the connection where provided buffers are
	// unavailable) and is valid only until OnData returns: copy what must
	// outlive the call. c.Write copies, so echoing data is safe.
	OnData(c *EventConn, data []byte)
	// OnClose is called exactly once per connection, after its descriptor
	// is closed and every op on it has finished. err is nil after a Close
	// (or Abort) by the handler or the server, io.EOF when the peer shut
	// down its side (the queued writes were flushed first), ErrIdleTimeout
	// when IdleTimeout closed it, and otherwise the reason, a *net.OpError
	// (errors.Is(err, syscall.ECONNRESET) works).
	OnClose(c *EventConn, err error)
}

// Ticker is optionally implemented by a Handler: OnTick is called on every
// loop, TickInterval after Serve and then after the duration it returns
// (TickInterval again if that is <= 0). It runs on the loop goroutine of
// the loop it is called for; it is called once per loop, concurrently for
// different loops.
type Ticker interface {
	OnTick() time.Duration
}

// Balance is how a Server spreads connections over the Proactor's loops.
type Balance int

const (
	// ReusePort opens one SO_REUSEPORT listener per loop, each with its
	// own accept, and lets the kernel spread connections by hash. Unix
	// sockets cannot share an address: they fall back to RoundRobin.
	ReusePort Balance = iota
	// RoundRobin accepts on one listener (on loop 0) and hands each
	// connection to the next loop.
	RoundRobin
	// LeastConns accepts on one listener and hands each connection to
	// the loop with the fewest open connections.
	LeastConns
)

func (b Balance) String() string {
	switch b {
	case ReusePort:
		return "reuseport"
	case RoundRobin:
		return "roundrobin"
	case LeastConns:
		return "leastconns"
	}
	return fmt.Sprintf("Balance(%d)", int(b))
}

// ServeOptions configure Serve. The zero value serves on proactor.Default()
// with one SO_REUSEPORT listener per loop and no limits.
type ServeOptions struct {
	// Proactor runs the listeners and connections; nil means
	// proactor.Default(). A server that has its loops to itself is
	// fastest on a Proactor with Wait: proactor.WaitEnter: a loop
	// blocked in io_uring_enter wakes straight from the kernel, with no
	// netpoller hand-off (1-connection echo: 29-30k msgs/s, p50 30 µs,
	// against 21-23k and 42 µs on WaitNetpoll; docs/BENCHMARKS.md).
	// Goroutines doing blocking ops (net.Conn, fs) on the same loops want
	// WaitNetpoll, the default.
	Proactor *proactor.Proactor
	// Balance chooses how connections are spread over the loops.
	Balance Balance
	// MaxConns caps the open connections of the server; a connection
	// accepted above it is closed at once (counted in Metrics.Rejected).
	// 0 means no cap.
	MaxConns int
	// ReadBufferLimit caps the bytes of one OnData call. With provided
	// buffers a call never exceeds the loop's buffer size
	// (proactor.Options.BufferSize); without them it is the size of the
	// connection's own read buffer. 0 means 16 KiB.
	ReadBufferLimit int
	// WriteQueueLimit is the backpressure threshold: while more than this
	// many bytes are queued and unsent on a connection, the server stops
	// receiving from it (a slow reader cannot make the queue grow without
	// bound through an echo-like handler); receiving resumes when the
	// queue falls below half of it. 0 means 1 MiB; negative disables it.
	//
	// Bytes that arrive after the pause, before the receive has stopped,
	// are held by the connection (not handed to OnData) until it
	// resumes. Each receive may take only the queue's headroom (at least
	// one buffer of proactor.Options.BufferSize), so that is at most
	// this limit plus a buffer. On io_uring the kernel enforces that
	// from Linux 6.17; on 6.0 to 6.16 nothing does, and a fast sender
	// can fill about the whole buffer pool (proactor.Options.Buffers x
	// BufferSize, 8 MiB by default; measured up to 1.5 times it) before
	// the receive stops. A smaller pool is a smaller bound there.
	WriteQueueLimit int
	// IdleTimeout closes a connection that has neither received nor sent
	// anything for that long, with ErrIdleTimeout. 0 means never. A
	// connection closing gracefully (Close, or this timeout) whose flush
	// has made no progress for IdleTimeout, because its peer does not
	// read, is cut short the same way, its queue dropped.
	IdleTimeout time.Duration
	// WriteTimeout aborts a connection whose queued output has made no
	// progress for that long (its peer stopped reading), dropping the
	// queue, with ErrWriteTimeout. Progress is any byte sent, or taken
	// by the peer from the kernel's send queue (SIOCOUTQ, looked at each
	// sweep once a queue has not moved for one), so a slow reader of a
	// large response is not cut off while it drains a socket buffer of
	// megabytes. A stalled peer goes up to one sweep (a quarter of the
	// timeout) after it. 0 means never.
	WriteTimeout time.Duration
	// TickInterval is the first delay and the default period of
	// Ticker.OnTick; 0 means one second.
	TickInterval time.Duration

	// TurnBytes is each connection's fair share of a loop turn: the bytes
	// it may receive in one turn before it counts as greedy. 0 means
	// 256 KiB; negative disables the throttle.
	TurnBytes int
	// GreedyTurns is how many turns in a row a connection may exceed
	// TurnBytes before it is deferred; 0 means 4.
	GreedyTurns int
	// DeferFor is how long a deferred connection stops being read, so that
	// the others on its loop get the turns; 0 means 2ms.
	DeferFor time.Duration

	// Backlog is listen(2)'s queue length; 0 means net.core.somaxconn.
	Backlog int
	// FastOpen enables TCP Fast Open (TCP_FASTOPEN, queue of 256 capped
	// by net.core.somaxconn) on the listeners. The kernel serves it only
	// where the net.ipv4.tcp_fastopen sysctl has its server bit (2) set.
	FastOpen bool
	// NotSentLowat sets TCP_NOTSENT_LOWAT on the listeners, and so on
	// the connections they accept: see ListenConfig.NotSentLowat. 0 leaves
	// the system's value.
	NotSentLowat int
	// KeepAlive turns TCP keep-alive on for accepted connections, with
	// this period both as the idle time before the first probe and as
	// the time between probes (whole seconds, rounded up); the probe
	// count stays the system's.
	// 0 (the default) or negative leaves keep-alive off.
	//
	// This and KeepAliveConfig, TCP_NODELAY, FastOpen and NotSentLowat
	// are set on the listening sockets, not on each connection: Linux
	// copies a listener's options into the connections it accepts, so
	// they cost no system call per connection.
	KeepAlive time.Duration
	// KeepAliveConfig, when its Enable is set, replaces KeepAlive and sets
	// the periods one by one, as package net does: Idle before the first
	// probe, Interval between probes, Count unanswered probes before the
	// connection is dropped; 0 means net's default (15s, 15s, 9), and
	// negative leaves the system's value. Serve fails on values the kernel
	// refuses (over 32767 seconds, or 127 probes).
	KeepAliveConfig net.KeepAliveConfig
	// Nagle leaves Nagle's algorithm on; by default TCP_NODELAY is set on
	// accepted connections, as package net does.
	Nagle bool
	// PinLoops pins loop i's thread to the i-th CPU (modulo their count)
	// that the thread calling Serve may use, until Shutdown or Close,
	// which give the loop threads their former affinity back. Off by
	// default: the scheduler usually knows better, and pinning only pays
	// when each loop has a CPU to itself. Serve fails if a thread cannot
	// be pinned (sched_setaffinity).
	//
	// To keep the affinity with the loop, each loop goroutine is locked
	// to its thread (runtime.LockOSThread) while pinned. On a Proactor
	// with proactor.WaitEnter the loops run on locked threads anyway, so
	// pinning changes nothing else. With WaitNetpoll (the default) a loop
	// goroutine otherwise moves between threads; locked, every wake-up
	// of the loop is a hand-off to its one thread rather than to any idle
	// one, which costs latency: pin with WaitEnter. Only the loop threads
	// are pinned: the Go runtime's other threads (and any the runtime
	// starts later) keep the process's CPUs.
	PinLoops bool
}

// ServerMetrics are a Server's counters, summed over its loops. The fields
// are snapshots and may be a few events apart from each other.
type ServerMetrics struct {
	Open          int64 // connections open now
	Accepted      int64 // connections accepted since Serve
	Rejected      int64 // connections closed at once because of MaxConns
	Closed        int64 // connections closed (OnClose called)
	IdleClosed    int64 // of those, closed by IdleTimeout
	WriteTimeouts int64 // of those, aborted by WriteTimeout
	BytesIn       int64 // bytes handed to OnData
	BytesOut      int64 // bytes sent, sendfile included
	Paused        int64 // times receiving paused for backpressure
	Deferred      int64 // times a greedy connection was deferred
	AcceptBackoff int64 // times accept backed off on EMFILE/ENFILE/ENOMEM
	// ColdReads counts SendFile ranges that were not in the page cache
	// and were read in by an op before sendfile(2) sent them, so that the
	// loop did not wait on the disk (Linux 6.5+, where cachestat(2) tells).
	ColdReads int64
}

// ErrIdleTimeout is the OnClose error of a connection closed by
// ServeOptions.IdleTimeout. It wraps os.ErrDeadlineExceeded.
var ErrIdleTimeout = fmt.Errorf("ringo/net: idle timeout: %w", os.ErrDeadlineExceeded)

// ErrWriteTimeout is the OnClose error of a connection aborted by
// ServeOptions.WriteTimeout. It wraps os.ErrDeadlineExceeded.
var ErrWriteTimeout = fmt.Errorf("ringo/net: write timeout: %w", os.ErrDeadlineExceeded)

// ErrConnClosed is passed to a SendFile done callback whose transfer was
// dropped because the connection closed first.
var ErrConnClosed = errors.New("ringo/net: connection closed")
