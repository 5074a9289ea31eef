package seccomptest

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mode is how the filter denies io_uring.
type Mode int

const (
	// ENOSYS makes the io_uring syscalls fail with ENOSYS, as on a kernel
	// without io_uring and under Podman's and CRI-O's default profiles.
	ENOSYS Mode = iota + 1
	// EPERM makes them fail with EPERM, as under Docker's default profile.
	EPERM
	// Kill kills the whole process with SIGSYS (SECCOMP_RET_KILL_PROCESS),
	// as Android's app sandbox does.
	Kill
	// Interrupt leaves io_uring alone and makes file reads, writes and
	// syncs fail with EINTR every other time (see Interrupted), as NFS
	// mounted with intr or a FUSE file system may when a signal comes:
	// for tests of code that must retry them.
	Interrupt
)

// String returns the RINGO_SECCOMP spelling: "enosys", "eperm" or "kill".
func (m Mode) String() string {
	switch m {
	case ENOSYS:
		return "enosys"
	case EPERM:
		return "eperm"
	case Kill:
		return "kill"
	case Interrupt:
		return "eintr"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads the RINGO_SECCOMP spelling of a Mode.
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{ENOSYS, EPERM, Kill, Interrupt} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("seccomptest: unknown mode %q (want enosys, eperm, kill or eintr)", s)
}

// Offsets in struct seccomp_data (uapi/linux/seccomp.h): int nr; __u32 arch.
const (
	offNr   = 0
	offArch = 4
)

// program returns the classic BPF filter for mode:
//
//	0: A = seccomp_data.arch
//	1: if A != auditArch goto 6 (allow: not a syscall number we know)
//	2: A = seccomp_data.nr
//	3: if A == io_uring_setup    goto 7
//	4: if A == io_uring_enter    goto 7
//	5: if A == io_uring_register goto 7
//	6: return ALLOW
//	7: return deny
//
// Checking arch first matters because syscall numbers differ between ABIs:
// without it a filter written for one could match an unrelated syscall of
// another.
func program(mode Mode) ([]unix.SockFilter, error) {
	if auditArch == 0 {
		return nil, fmt.Errorf("seccomptest: unsupported architecture %s", runtime.GOARCH)
	}
	var deny uint32
	switch mode {
	case ENOSYS:
		deny = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	case EPERM:
		deny = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	case Kill:
		deny = unix.SECCOMP_RET_KILL_PROCESS
	default:
		return nil, fmt.Errorf("seccomptest: invalid mode %d", int(mode))
	}
	ld := func(off uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: off}
	}
	jeq := func(k uint32, jt, jf uint8) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: jt, Jf: jf}
	}
	ret := func(k uint32) unix.SockFilter {
		return unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: k}
	}
	// Jump offsets count instructions after the jump itself.
	return []unix.SockFilter{
		ld(offArch),
		jeq(auditArch, 0, 4),
		ld(offNr),
		jeq(unix.SYS_IO_URING_SETUP, 3, 0),
		jeq(unix.SYS_IO_URING_ENTER, 2, 0),
		jeq(unix.SYS_IO_URING_REGISTER, 1, 0),
		ret(unix.SECCOMP_RET_ALLOW),
		ret(deny),
	}, nil
}

// Deny installs a filter on every thread of this process that denies the
// three io_uring syscalls as mode says. It cannot be undone: call it only in
// a process made for the purpose (see ReexecUnder).
//
// Two details make it work in Go. A Go program runs on many OS threads and
// moves goroutines between them; prctl(PR_SET_SECCOMP) filters only the
// calling thread, so a later io_uring_setup on another thread would slip
// through. seccomp(2) with SECCOMP_FILTER_FLAG_TSYNC (3.17+) attaches the
// filter to every thread at once, and threads created later inherit it.
// And PR_SET_NO_NEW_PRIVS, which installing a filter requires without
// CAP_SYS_ADMIN, is per thread too: the goroutine is locked to its thread
// so that the prctl and the seccomp call happen on the same one (TSYNC then
// copies no_new_privs to the other threads).
func Deny(mode Mode) error {
	filter, err := program(mode)
	if err != nil {
		return err
	}
	r, err := install(filter, 0)
	if err == nil && r != 0 {
		// With TSYNC, a positive return is the id of a thread that could
		// not be synchronized (it has a diverging filter), and nothing was
		// installed.
		return fmt.Errorf("seccomptest: seccomp TSYNC failed on thread %d", r)
	}
	return err
}

// install puts filter on every thread of this process, as Deny explains,
// with flags besides TSYNC, and returns what seccomp(2) returned.
func install(filter []unix.SockFilter, flags uintptr) (uintptr, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return 0, os.NewSyscallError("prctl PR_SET_NO_NEW_PRIVS", err)
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC|flags, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return 0, os.NewSyscallError("seccomp SECCOMP_SET_MODE_FILTER", errno)
	}
	return r, nil
}
