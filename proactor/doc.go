// Package proactor is ringo's engine: it submits operations to the kernel
// and runs each completion's handler, on io_uring or, where io_uring is
// missing or forbidden, on the epoll reactor of package compat, with the
// same results either way.
//
// proactor owns:
//
//   - Ops (ops_net.go, ops_file.go): values that can run on either driver.
//     Each prepares its SQE for io_uring and, for the epoll driver, names
//     the readiness it needs and performs its non-blocking syscall. A
//     Handler gets (res, flags) with io_uring's meaning: res >= 0 is the
//     result, res < 0 is -errno.
//   - Loops: one per shard (Options.Loops, default one per usable CPU).
//     A loop owns its ring, its op slab, its timers and its receive
//     buffers, and one goroutine at a time holds its turn. Any goroutine
//     submits through a multi-producer queue (Submit, Do, Post); the loop
//     drains the queue, so under load many SQEs go to the kernel in one
//     io_uring_enter. Handlers, Post functions and timers run on the loop
//     goroutine.
//   - Caller turns (Loop.callerTurn): a Do that finds the loop parked in
//     the netpoller takes its turn and enters the ring itself, so an op
//     that completes at once costs one io_uring_enter and no goroutine
//     wake-up either way (NopBlocking: 7 µs to about 1 µs). Callers that
//     come together still share one enter: the first yields before it
//     enters and the others add their SQEs to its batch. Completions for
//     handlers are left to the loop goroutine.
//   - user_data: a slab index and a 30-bit generation (slab.go). A CQE
//     whose generation does not match its slot is counted (Metrics.Stale)
//     and dropped, never delivered to the op that reuses the slot.
//   - The driver contract (driver.go) and both drivers.
//   - Backend choice (backend.go): Auto takes io_uring when a ring can be
//     set up and has what the runtime needs (ASYNC_CANCEL and
//     FEAT_NODROP, 5.5), otherwise epoll, and says why (Reason,
//     ReasonCode). On a ring that lacks an op (5.1 to 5.18, or a release
//     simulated with RINGO_KERNEL / Options.Kernel), that op runs through
//     the epoll path inside the io_uring driver, transparently.
//
// # Waiting
//
// How an idle loop waits is Options.Wait (see WaitMode for the numbers):
// by default the loop goroutine parks in Go's netpoller (on an eventfd that
// the ring signals for CQEs while the loop is parked, or on the reactor's
// epoll fd), so no OS thread
// is held, a wake-up costs a goroutine wake-up, and a Do caller can run a
// turn meanwhile. WaitEnter instead blocks a locked thread in
// io_uring_enter (epoll: the loop goroutine in epoll_wait), which keeps
// its P: a goroutine the loop wakes would wait for sysmon to retake it, so
// a WaitEnter loop that woke one (Do's waiters, or a handler's Loop.Woke)
// yields before it blocks. That still costs the locked thread two thread
// switches (NopBlocking: about 25 µs against 1 µs with WaitNetpoll), so
// WaitEnter suits servers whose work all runs on the loops.
// In either mode a loop can first poll for completions and tasks for a
// while (Options.Spin), which saves the sleep and the wake-up of work that
// comes soon, at the price of CPU.
//
// # Setup flags
//
// Chosen by measurement on the target machine, not by reputation:
// DEFER_TASKRUN, COOP_TASKRUN and TASKRUN_FLAG with SINGLE_ISSUER in
// WaitEnter mode (one thread submits and reaps); none of them in
// WaitNetpoll mode, where the loop goroutine may run on any thread, so task
// work must be allowed to interrupt the thread that submitted.
// DEFER_TASKRUN (6.1) runs completion work only when the loop enters to
// reap. With COOP_TASKRUN alone the kernel flags the loop's thread instead,
// and the flag cuts short whatever system call the thread is in: 16% of the
// file server's sendfile(2) calls returned ERESTARTSYS and ran again, and
// the server served 16 KiB files 4% slower (docs/BENCHMARKS.md). Kernels
// from 5.19 to 6.0 lose DEFER_TASKRUN in the setup ladder and keep
// COOP_TASKRUN.
//
// The price of WaitNetpoll: io_uring posts the completion of an op that
// waited (a receive, an accept, a read of the disk) through task work on
// the thread that submitted it, and a thread blocked in the kernel
// (uninterruptibly: a read(2) or open(2) that waits for the disk) runs
// none until it returns. A WaitNetpoll loop submits from whichever of Go's
// threads it runs on, and that thread goes on to run other goroutines. So
// any goroutine that blocks a thread on the disk can hold up completions
// of the ops a loop submitted from that thread, for the disk's time: the
// file server's conn transport did, with a blocking pread of a cold file,
// until its lookups went through ops (examples/fileserver, diskWait).
// Read and open files through ops (package fs, or Loop.DoUntil with Read,
// Openat2) in a program that uses WaitNetpoll loops, or use WaitEnter,
// whose locked thread submits alone. Locking a WaitNetpoll loop to its
// thread was measured: 2.5-3x the time per net.Conn echo round trip
// (BenchmarkEcho/uring, 44 against 108-146 µs), for the hand-over of
// each wake-up to the locked thread.
//
// # Buffers and cancellation
//
// An op's buffers belong to the kernel from submission until the op's
// final completion (for multishot ops, the CQE without CQEFMore; for a
// zero-copy send, its notification). Cancelling (CancelInLoop, a Do
// context, a deadline) only asks: the op still completes, with -ECANCELED
// or with its real result if it won the race. Close(2) does not cancel
// io_uring requests, so close a descriptor only after CancelFdInLoop and
// the final completions (package net does this).
//
// # Registered buffers and files
//
// Loop.RegisterBuffers maps buffers outside the Go heap and registers them
// with the loop's ring (REGISTER_BUFFERS), for ReadFixed and WriteFixed
// (READ_FIXED, WRITE_FIXED); Loop.RegisterFiles registers a file table, so
// that ReadFixed, WriteFixed, ReadIndexed and WriteIndexed can name a file
// by index (IOSQE_FIXED_FILE). Registration runs on the loop goroutine
// (holding the loop's turn, so no caller submits meanwhile), called from any
// goroutine but another loop's (EDEADLK there). Unregister, which asks
// every loop, is not for loop goroutines at all (EDEADLK); it
// refuses with EBUSY while an op that uses the registration is in flight;
// Close releases everything, unmapping the buffers after the ring is gone.
// On epoll the loop emulates both with pread and pwrite on the same memory
// and the fds behind the indexes: same results, and the same errnos for a
// bad buffer (-EINVAL) or file index (-EBADF) (fixed.go).
//
// # Not covered
//
// SQPOLL is available in package ring but not used by loops. Provided
// buffers on real 5.7-5.18 kernels (PROVIDE_BUFFERS) are exercised here only
// through the kernel simulation on a 6.18 kernel.
package proactor
