// Package net is the standard Go network API on ringo's proactor: TCP and
// Unix stream sockets whose accepts, connects, receives and sends are
// proactor ops, behind the interfaces Go programs already use (net.Listener,
// net.Conn, io.ReaderFrom, syscall.Conn).
//
// net owns:
//
//   - Listen, ListenConfig and Listener: non-blocking, close-on-exec
//     listening sockets and an Accept that takes a queued connection with
//     accept4(2) and parks on an Accept op only when none is queued.
//   - Dial, DialContext and Dialer: name resolution through the standard
//     library's resolver, then an asynchronous Connect op per address.
//   - Conn: Read and Write as one Recv or Send op in flight per direction
//     (a Read first tries read(2) from its goroutine, for data already
//     queued, and backs off from the try after misses),
//     deadlines, half-close, socket options, ReadFrom through sendfile(2)
//     and a syscall.RawConn that waits for readiness with PollAdd.
//   - The fd lifecycle: Close cancels the ops in flight, waits for their
//     final completions and only then closes the descriptor, because
//     close(2) does not cancel io_uring requests.
//
// net also owns the callback API, the fast path (event_linux.go,
// server_linux.go, eventconn_linux.go): Serve starts a Server whose
// connections live on the loop goroutines with no goroutine per connection,
// receive through multishot receives into the loops' provided buffers, and
// reach a Handler's OnOpen, OnData and OnClose; EventConn.Write queues
// bytes that are flushed with one send per connection, SendFile queues a
// sendfile(2) range in order with them. The Server spreads connections
// (SO_REUSEPORT listeners, round robin, least connections), caps them
// (MaxConns), closes idle ones, pauses reading from a connection whose
// write queue is over its limit, defers connections that take more than
// their share of a loop turn, and backs off accepting on EMFILE.
//
// net does not own the loops, the ops or the backend: those are proactor's.
// Everything here runs unchanged on both drivers, io_uring and the epoll
// reactor; which one serves is chosen by the Proactor in use (Options.Backend,
// or the RINGO_BACKEND environment variable, uring|epoll, for
// proactor.Default, which is used when no Proactor is given).
//
// Errors are the standard library's: *net.OpError wrapping
// *os.SyscallError, io.EOF at end of stream, net.ErrClosed after Close and
// os.ErrDeadlineExceeded when a deadline passes, so errors.Is and
// net.Error.Timeout work as with package net. Sends pass MSG_NOSIGNAL: a
// send to a reset connection is EPIPE, never a SIGPIPE. sendfile(2)
// (ReadFrom, SendFile) has no such flag and, as in package net, raises
// one; the Go runtime ignores it for sockets (the call returns EPIPE)
// unless the program asked for SIGPIPE with os/signal.Notify.
package net
