package seccomptest

import (
	"runtime"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Interrupted is the syscalls an Interrupt filter cuts short: the file
// reads, writes and syncs that package fs makes inline (preadv2) and that
// the epoll driver's workers make for it.
var Interrupted = [...]uintptr{unix.SYS_PREAD64, unix.SYS_PREADV2, unix.SYS_PWRITE64, unix.SYS_PWRITEV2, unix.SYS_FSYNC, unix.SYS_FDATASYNC}

// interruptions counts the EINTRs the supervisor answered, per entry of
// Interrupted.
var interruptions [len(Interrupted)]atomic.Uint64

// Interruptions reports how many calls of syscall nr (one of Interrupted)
// the filter failed with EINTR so far.
func Interruptions(nr uintptr) uint64 {
	for i, n := range Interrupted {
		if n == nr {
			return interruptions[i].Load()
		}
	}
	return 0
}

// seccompNotif and seccompNotifResp are struct seccomp_notif and struct
// seccomp_notif_resp (uapi/linux/seccomp.h), which x/sys/unix lacks.
type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

type seccompNotifResp struct {
	id    uint64
	val   int64
	error int32
	flags uint32
}

// interruptProgram sends the Interrupted syscalls to the listener
// (SECCOMP_RET_USER_NOTIF) and allows the rest:
//
//	0: A = arch; if A != auditArch goto allow
//	2: A = nr; if A == Interrupted[i] goto notify (for each i)
//	   allow: return ALLOW
//	   notify: return USER_NOTIF
func interruptProgram() []unix.SockFilter {
	n := len(Interrupted)
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offArch},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: auditArch, Jt: 0, Jf: uint8(n + 1)},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offNr},
	}
	for i, nr := range Interrupted {
		// Jump offsets count the instructions after the jump: the rest of
		// the comparisons, then allow, to reach notify.
		prog = append(prog, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: uint32(nr), Jt: uint8(n - i)})
	}
	return append(prog,
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
		unix.SockFilter{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_USER_NOTIF})
}

// interrupt installs the Interrupt filter on every thread and starts its
// supervisor: each of the Interrupted syscalls fails with EINTR on every
// other call (counted per syscall), and runs as usual otherwise, so code
// that retries goes on and code that does not sees the error. That needs
// a listener (5.0) that a whole thread group shares (TSYNC_ESRCH, 5.7).
//
// The supervisor is a goroutine on a thread of its own, itself under the
// filter; it makes no syscall but the two ioctls, which are not filtered.
// It never stops: call this only in a process made for the purpose.
func interrupt() error {
	if auditArch == 0 {
		return unix.ENOTSUP
	}
	fd, err := install(interruptProgram(), unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH|unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	if err != nil {
		return err
	}
	go supervise(int(fd))
	return nil
}

func supervise(fd int) {
	runtime.LockOSThread()
	var calls [len(Interrupted)]uint64
	for {
		var req seccompNotif
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&req)))
		if e == unix.EINTR || e == unix.ENOENT {
			continue // a signal here, or the caller's (it restarts)
		}
		if e != 0 {
			panic("seccomptest: SECCOMP_IOCTL_NOTIF_RECV: " + e.Error())
		}
		resp := seccompNotifResp{id: req.id, flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
		// Only this process's calls: a child inherits the filter (the
		// proactor probes io_uring_setup in one), and its dynamic
		// loader does not retry a pread64 of libc.
		for i, nr := range Interrupted {
			if uintptr(req.nr) != nr || !ours(req.pid) {
				continue
			}
			if calls[i]++; calls[i]%2 == 1 {
				resp.error, resp.flags = -int32(unix.EINTR), 0
				interruptions[i].Add(1)
			}
		}
		// ENOENT: the caller went away (a signal); it asks again.
		unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp)))
	}
}

// ours reports whether tid is a thread of this process.
func ours(tid uint32) bool {
	var st unix.Stat_t
	return unix.Stat("/proc/self/task/"+strconv.FormatUint(uint64(tid), 10), &st) == nil
}
