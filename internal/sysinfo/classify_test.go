package sysinfo

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestClassify(t *testing.T) {
	k := func(major, minor int) Kernel { return Kernel{Release: Release{major, minor, 0}} }
	host := Facts{
		Kernel: k(6, 18),
		Status: ProcStatus{Seccomp: SeccompInfo{Mode: SeccompDisabled}},
		Sysctl: Sysctl{Present: true, Group: -1},
		Creds:  Creds{Egid: 1000, InitUserNS: true},
		Limits: RLimits{Memlock: Rlimit{Soft: 8 << 20, Hard: 8 << 20}, Nofile: Rlimit{Soft: 1024, Hard: 4096}},
	}
	with := func(edit func(*Facts)) Facts {
		f := host
		edit(&f)
		return f
	}
	filtered := func(f *Facts) { f.Status.Seccomp = SeccompInfo{Mode: SeccompFilter, Filters: 1} }

	for _, tc := range []struct {
		name  string
		errno unix.Errno
		facts Facts
		want  Reason
		says  string // a phrase the explanation must contain
	}{
		{"ok", 0, host, ReasonOK, "succeeded"},
		{"ok with zero facts", 0, Facts{}, ReasonOK, "succeeded"},
		{"old kernel", unix.ENOSYS, with(func(f *Facts) { f.Kernel = k(4, 19) }), ReasonENOSYS, "predates io_uring"},
		{"old kernel under a filter", unix.ENOSYS, with(func(f *Facts) { f.Kernel = k(5, 0); filtered(f) }), ReasonENOSYS, "upgrade"},
		{"compiled out", unix.ENOSYS, host, ReasonENOSYS, "CONFIG_IO_URING"},
		{"unknown kernel", unix.ENOSYS, Facts{}, ReasonENOSYS, "CONFIG_IO_URING"},
		{"podman", unix.ENOSYS, with(filtered), ReasonENOSYSSeccomp, "--security-opt seccomp="},
		{"gvisor", unix.ENOSYS, with(func(f *Facts) {
			f.Container = []string{"gvisor: /proc/version carries the sentry's fixed build stamp"}
		}), ReasonENOSYSSeccomp, "gVisor"},
		{"docker", unix.EPERM, with(filtered), ReasonEPERMSeccomp, "docker run --security-opt seccomp="},
		{"sysctl 2", unix.EPERM, with(func(f *Facts) { f.Sysctl.Disabled = 2 }), ReasonEPERMSysctl, "sysctl kernel.io_uring_disabled=0"},
		{"sysctl 2 beats seccomp", unix.EPERM, with(func(f *Facts) { f.Sysctl.Disabled = 2; filtered(f) }), ReasonEPERMSysctl, "io_uring_disabled=2"},
		{"sysctl 1 no group", unix.EPERM, with(func(f *Facts) { f.Sysctl.Disabled = 1 }), ReasonEPERMSysctl, "kernel.io_uring_group"},
		{"sysctl 1 in group, seccomp", unix.EPERM, with(func(f *Facts) {
			f.Sysctl.Disabled, f.Sysctl.Group = 1, 1000
			filtered(f)
		}), ReasonEPERMSeccomp, "seccomp"},
		{"unexplained eperm", unix.EPERM, host, ReasonOther, "audit log"},
		{"selinux", unix.EACCES, with(func(f *Facts) { f.LSM = LSMInfo{List: []string{"selinux"}, SELinux: "enforcing"} }), ReasonEACCESLSM, "SELinux enforcing"},
		{"eacces no lsm info", unix.EACCES, host, ReasonEACCESLSM, "ausearch"},
		{"memlock", unix.ENOMEM, with(func(f *Facts) { f.Kernel = k(5, 10); f.Limits.Memlock = Rlimit{Soft: 64 << 10, Hard: 64 << 10} }), ReasonENOMEMMemlock, "ulimit -l"},
		{"memlock systemd hint", unix.ENOMEM, host, ReasonENOMEMMemlock, "LimitMEMLOCK"},
		{"enomem unlimited memlock", unix.ENOMEM, with(func(f *Facts) { f.Limits.Memlock = Rlimit{Soft: unix.RLIM_INFINITY, Hard: unix.RLIM_INFINITY} }), ReasonOther, "out of memory"},
		{"enomem with CAP_IPC_LOCK", unix.ENOMEM, with(func(f *Facts) { f.Status.CapEff, f.Status.HasCapEff = 1<<unix.CAP_IPC_LOCK, true }), ReasonOther, "out of memory"},
		{"sigsys", 0, with(func(f *Facts) { f.Setup = &SetupResult{Killed: true, InChild: true} }), ReasonSIGSYS, "SIGSYS"},
		{"env", 0, with(func(f *Facts) { f.Backend = "epoll" }), ReasonDisabledByEnv, "RINGO_BACKEND"},
		{"env beats sigsys", 0, with(func(f *Facts) { f.Backend = "epoll"; f.Setup = &SetupResult{Killed: true} }), ReasonDisabledByEnv, "RINGO_BACKEND"},
		{"env auto is not a reason", 0, with(func(f *Facts) { f.Backend = "auto" }), ReasonOK, "succeeded"},
		{"einval", unix.EINVAL, host, ReasonEINVAL, "fewer IORING_SETUP_* flags"},
		{"emfile", unix.EMFILE, host, ReasonOther, "ulimit -n"},
		{"enfile", unix.ENFILE, host, ReasonOther, "ENFILE"},
		{"efault", unix.EFAULT, host, ReasonOther, "EFAULT"},
		{"unnamed errno", unix.Errno(4000), host, ReasonOther, "errno 4000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Classify(tc.errno, tc.facts)
			if got != tc.want {
				t.Errorf("Classify(%v) = %q (%s), want %q", tc.errno, got, why, tc.want)
			}
			if !strings.Contains(why, tc.says) {
				t.Errorf("explanation %q lacks %q", why, tc.says)
			}
			if !strings.HasSuffix(why, ".") || strings.Contains(why, "\n") {
				t.Errorf("explanation %q is not one sentence", why)
			}
		})
	}
}

// TestReasonsCovered keeps Reasons, Fallback and the Classify table honest.
func TestReasonsCovered(t *testing.T) {
	seen := map[Reason]bool{}
	for _, r := range Reasons {
		if seen[r] {
			t.Errorf("duplicate %q", r)
		}
		seen[r] = true
	}
	if len(seen) != 11 {
		t.Errorf("%d reasons, want 11", len(seen))
	}
	for r, want := range map[Reason]bool{
		ReasonOK: false, ReasonEINVAL: false, ReasonOther: false,
		ReasonENOSYS: true, ReasonENOSYSSeccomp: true, ReasonEPERMSeccomp: true, ReasonEPERMSysctl: true,
		ReasonEACCESLSM: true, ReasonENOMEMMemlock: true, ReasonSIGSYS: true, ReasonDisabledByEnv: true,
	} {
		if r.Fallback() != want {
			t.Errorf("%q.Fallback() = %v", r, !want)
		}
	}
}
