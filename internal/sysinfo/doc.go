// Package sysinfo owns the facts about the running host that decide whether
// io_uring can work here, and the verdict drawn from them.
//
// It reads what the kernel already publishes (uname, /proc/self/status,
// /proc/sys/kernel/io_uring_*, rlimits, container and LSM markers), asks the
// kernel once by calling io_uring_setup (in a child process when a seccomp
// filter could kill the caller), and turns an errno plus those facts into a
// stable [Reason] code and one sentence that tells a person what to change.
//
// It does not own the io_uring ABI (that is ring/), nor the choice of backend
// (proactor/ decides, using [Reason.Fallback]); nothing here creates a ring
// that anyone keeps. The package is pure Go on golang.org/x/sys/unix so that
// it works even when the rest of ringo cannot.
//
// Every parser takes an io.Reader or a string and returns an error on input it
// does not understand; none of them panics.
package sysinfo
