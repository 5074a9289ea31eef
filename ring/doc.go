// Package ring is ringo's binding to the Linux io_uring ABI and nothing more.
//
// It owns the constants and struct layouts of <linux/io_uring.h>, ring setup
// (with a retry ladder for optional setup flags), the mmap'd submission and
// completion queues, io_uring_enter, io_uring_register, the opcode probe, and
// one prep helper per opcode on top of a single primitive (prepRW), in
// liburing's shape. It also knows which kernel release added each opcode,
// feature and setup flag, and can restrict a ring to what an older release had
// (WithRelease), so the rest of ringo can be exercised on any kernel
// generation from one modern machine.
//
// It owns no goroutines and no policy: which flags to ask for, what to do when
// io_uring is unavailable, and how completions are dispatched belong to
// proactor and compat. A Ring is not safe for concurrent use: one goroutine
// submits and reaps. Nothing on the submit/reap path allocates.
//
// Memory rule: every address stored in an SQE (buffers, iovecs, sockaddrs,
// timespecs, paths) must point to memory that is neither on a goroutine stack
// nor freed until the operation's final CQE has been reaped. The prep helpers
// take Go values for convenience but keep no reference to them; the caller
// must.
package ring
