// Package compat is ringo's epoll driver: the backend the engine runs on when
// io_uring is missing or forbidden, and the path the io_uring driver routes an
// op to when the running kernel lacks that op's opcode.
//
// compat owns:
//
//   - Reactor, an edge-triggered epoll reactor that emulates io_uring
//     completions. For each op it waits for the readiness the op names,
//     performs the op's non-blocking syscall, and reports the result with
//     io_uring's meaning: res >= 0 on success, -errno on failure, 0 for EOF
//     on a receive, -ECANCELED for a cancelled op, and FlagMore while a
//     multishot op stays armed.
//   - The bounded worker pool that runs ops whose descriptors epoll cannot
//     watch (regular files, fsync, openat, statx, ...), the way io_uring's
//     io-wq does.
//   - Later, backend detection (is io_uring usable here, and if not, why).
//
// compat does not own ops, buffers, user_data, timers, deadlines or the loop.
// Those belong to proactor, which hands ops in through the small Op interface
// declared here and gets Completions back. compat imports neither proactor nor
// ring, only golang.org/x/sys/unix and the standard library, so the epoll path
// builds and runs on machines where io_uring code is never exercised.
package compat
