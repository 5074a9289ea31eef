package sysinfo

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// SeccompMode is the "Seccomp:" field of /proc/<pid>/status.
type SeccompMode int

const (
	// SeccompUnknown: the field is absent (kernel built without
	// CONFIG_SECCOMP) or the file could not be read.
	SeccompUnknown SeccompMode = -1
	// SeccompDisabled: no seccomp; every syscall reaches the kernel.
	SeccompDisabled SeccompMode = 0
	// SeccompStrict: only read, write, _exit and sigreturn are allowed.
	SeccompStrict SeccompMode = 1
	// SeccompFilter: one or more BPF filters decide per syscall. This is the
	// mode of every container runtime's default profile, and the one in which
	// io_uring_setup may return ENOSYS or EPERM, or kill the caller.
	SeccompFilter SeccompMode = 2
)

// String returns "disabled", "strict", "filter" or "unknown".
func (m SeccompMode) String() string {
	switch m {
	case SeccompDisabled:
		return "disabled"
	case SeccompStrict:
		return "strict"
	case SeccompFilter:
		return "filter"
	}
	return "unknown"
}

// SeccompInfo is the seccomp state of a process.
type SeccompInfo struct {
	Mode SeccompMode
	// Filters is the number of attached filters ("Seccomp_filters:"), or -1
	// when the kernel predates that field.
	Filters int
	// NoNewPrivs is "NoNewPrivs: 1": set by every unprivileged process that
	// installs a filter, so it often travels with SeccompFilter.
	NoNewPrivs bool
}

// ProcStatus holds the fields of /proc/<pid>/status that sysinfo needs.
type ProcStatus struct {
	Seccomp SeccompInfo
	// CapEff is the effective capability set; valid when HasCapEff.
	CapEff    uint64
	HasCapEff bool
}

// HasCap reports whether capability number c (unix.CAP_SYS_ADMIN, ...) is in
// the effective set. It is false when CapEff was not read.
func (p ProcStatus) HasCap(c int) bool {
	return p.HasCapEff && c >= 0 && c < 64 && p.CapEff&(1<<uint(c)) != 0
}

// maxStatusLine bounds one line: "Groups:" with the kernel's 65536
// supplementary groups is the longest field (about 720 KB).
const maxStatusLine = 1 << 20

// ParseStatus reads the /proc/<pid>/status format ("Key:\tvalue" lines).
// Fields sysinfo does not use are skipped; a field it uses with a value it
// cannot parse is an error. Missing fields keep their "unknown" values.
func ParseStatus(r io.Reader) (ProcStatus, error) {
	st := ProcStatus{Seccomp: SeccompInfo{Mode: SeccompUnknown, Filters: -1}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxStatusLine)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "Seccomp":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 || n > 2 {
				return st, fmt.Errorf("status: Seccomp: bad value %q", val)
			}
			st.Seccomp.Mode = SeccompMode(n)
		case "Seccomp_filters":
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				return st, fmt.Errorf("status: Seccomp_filters: bad value %q", val)
			}
			st.Seccomp.Filters = n
		case "NoNewPrivs":
			switch val {
			case "0", "1":
				st.Seccomp.NoNewPrivs = val == "1"
			default:
				return st, fmt.Errorf("status: NoNewPrivs: bad value %q", val)
			}
		case "CapEff":
			n, err := strconv.ParseUint(val, 16, 64)
			if err != nil {
				return st, fmt.Errorf("status: CapEff: bad value %q", val)
			}
			st.CapEff, st.HasCapEff = n, true
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	return st, nil
}

// ParseSeccomp is ParseStatus restricted to the seccomp fields.
func ParseSeccomp(r io.Reader) (SeccompInfo, error) {
	st, err := ParseStatus(r)
	return st.Seccomp, err
}
