package sysinfo

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Rlimit is one resource limit. unix.RLIM_INFINITY means unlimited.
type Rlimit struct {
	Soft, Hard uint64
}

// Unlimited reports whether the soft limit is RLIM_INFINITY.
func (l Rlimit) Unlimited() bool { return l.Soft == unix.RLIM_INFINITY }

// String returns "soft/hard" with "unlimited" for RLIM_INFINITY.
func (l Rlimit) String() string {
	f := func(v uint64) string {
		if v == unix.RLIM_INFINITY {
			return "unlimited"
		}
		return strconv.FormatUint(v, 10)
	}
	return f(l.Soft) + "/" + f(l.Hard)
}

// RLimits are the limits that can stop io_uring.
type RLimits struct {
	// Memlock (bytes) is charged for ring memory on 5.11 and earlier (setup
	// fails with ENOMEM when it is too small, unless CAP_IPC_LOCK) and for
	// registered buffers on every kernel.
	Memlock Rlimit
	// Nofile bounds the ring fd itself and registered file tables (EMFILE).
	Nofile Rlimit
}

// Limits returns RLIMIT_MEMLOCK and RLIMIT_NOFILE of this process.
func Limits() (RLimits, error) {
	var l RLimits
	var m, n unix.Rlimit
	errM := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &m)
	errN := unix.Getrlimit(unix.RLIMIT_NOFILE, &n)
	l.Memlock = Rlimit{Soft: m.Cur, Hard: m.Max}
	l.Nofile = Rlimit{Soft: n.Cur, Hard: n.Max}
	var err error
	if errM != nil {
		err = os.NewSyscallError("getrlimit RLIMIT_MEMLOCK", errM)
	}
	if errN != nil {
		err = errors.Join(err, os.NewSyscallError("getrlimit RLIMIT_NOFILE", errN))
	}
	return l, err
}
