package sysinfo

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Sysctl is the io_uring policy the administrator set with sysctl.
//
// Both knobs arrived in Linux 6.6 (commit 76d3ccecfa18). Before that, or when
// /proc/sys is not mounted, Present is false and io_uring is governed only by
// seccomp and LSMs.
type Sysctl struct {
	Present bool
	// Disabled is kernel.io_uring_disabled: 0 everyone may create rings;
	// 1 only CAP_SYS_ADMIN or members of kernel.io_uring_group; 2 nobody,
	// root included. Existing rings keep working when it changes.
	Disabled int
	// Group is kernel.io_uring_group, a gid in the initial user namespace;
	// -1 (the default) means no group.
	Group int
}

const (
	sysctlDisabledPath = "/proc/sys/kernel/io_uring_disabled"
	sysctlGroupPath    = "/proc/sys/kernel/io_uring_group"
)

// IOUringSysctl reads kernel.io_uring_disabled and kernel.io_uring_group.
func IOUringSysctl() (Sysctl, error) {
	s := Sysctl{Group: -1}
	d, err := readSysctlInt(sysctlDisabledPath)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	s.Present, s.Disabled = true, d
	g, err := readSysctlInt(sysctlGroupPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if err == nil {
		s.Group = g
	}
	return s, nil
}

func readSysctlInt(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return parseSysctlInt(path, string(b))
}

func parseSysctlInt(name, s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%s: bad value %q", name, s)
	}
	return n, nil
}

// Creds are the parts of this process's identity that kernel.io_uring_disabled=1
// looks at.
type Creds struct {
	// CapSysAdmin is CAP_SYS_ADMIN in CapEff.
	CapSysAdmin bool
	// InitUserNS is false inside a user namespace (rootless containers). The
	// kernel checks capable(CAP_SYS_ADMIN), which asks about the initial user
	// namespace, so "root" inside a user namespace does not count.
	InitUserNS bool
	// Egid stands in for the fsgid that in_group_p compares, which follows
	// the egid unless a program calls setfsgid.
	Egid   int
	Groups []int
}

// CurrentCreds reads the credentials of this process.
func CurrentCreds() (Creds, error) {
	st, err := readSelfStatus()
	c, gerr := credsFrom(st)
	return c, errors.Join(err, gerr)
}

// credsFrom completes the capability bits of st with the ids the kernel
// reports by syscall.
func credsFrom(st ProcStatus) (Creds, error) {
	c := Creds{
		CapSysAdmin: st.HasCap(unix.CAP_SYS_ADMIN),
		InitUserNS:  inInitUserNS(),
		Egid:        unix.Getegid(),
	}
	groups, err := unix.Getgroups()
	if err != nil {
		return c, os.NewSyscallError("getgroups", err)
	}
	c.Groups = groups
	return c, nil
}

// inInitUserNS reports whether /proc/self/uid_map is the identity map of all
// 2^32-1 ids, which only the initial user namespace has. When the file cannot
// be read it answers true, the common case.
func inInitUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return true
	}
	return isIdentityIDMap(string(b))
}

func isIdentityIDMap(s string) bool {
	return slices.Equal(strings.Fields(s), []string{"0", "0", "4294967295"})
}

// Allows mirrors the kernel's io_uring_allowed() (io_uring/io_uring.c, 6.6+):
// it predicts whether io_uring_setup would pass the sysctl check for c, and
// says why in a short phrase.
func (s Sysctl) Allows(c Creds) (bool, string) {
	if !s.Present {
		return true, "kernel.io_uring_disabled is absent (kernel before 6.6)"
	}
	switch s.Disabled {
	case 0:
		return true, "kernel.io_uring_disabled=0"
	case 1:
		if c.CapSysAdmin && c.InitUserNS {
			return true, "kernel.io_uring_disabled=1 and the process has CAP_SYS_ADMIN"
		}
		// A negative or unmapped group is never valid: the kernel then
		// denies everyone without CAP_SYS_ADMIN.
		if s.Group >= 0 && (c.Egid == s.Group || slices.Contains(c.Groups, s.Group)) {
			return true, fmt.Sprintf("kernel.io_uring_disabled=1 and the process is in kernel.io_uring_group %d", s.Group)
		}
		if s.Group < 0 {
			return false, "kernel.io_uring_disabled=1, no kernel.io_uring_group set, and no CAP_SYS_ADMIN"
		}
		return false, fmt.Sprintf("kernel.io_uring_disabled=1 and the process has neither CAP_SYS_ADMIN nor group %d", s.Group)
	}
	// 2, and any value a future kernel adds, forbids new rings.
	return false, fmt.Sprintf("kernel.io_uring_disabled=%d forbids new rings for every process", s.Disabled)
}

// MayCreateRings predicts from the sysctls and this process's credentials
// whether io_uring_setup would pass the kernel's sysctl check. It does not
// see seccomp or LSM policy; only calling io_uring_setup (SetupErrno) does.
// When a fact cannot be read it errs towards true, because the setup call
// will give the definitive answer anyway.
func MayCreateRings() (bool, string) {
	s, err := IOUringSysctl()
	if err != nil {
		return true, "cannot read kernel.io_uring_disabled: " + err.Error()
	}
	c, _ := CurrentCreds()
	return s.Allows(c)
}
