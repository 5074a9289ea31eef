package sysinfo

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// Classify explains an io_uring_setup errno (0 for success) with the facts:
// a stable code, and one sentence that says what happened and what to do.
//
// The errno alone is ambiguous: ENOSYS is both "kernel 4.19" and "Podman's
// seccomp profile"; EPERM is both the sysctl and Docker's profile. The facts
// break the tie. Precedence: the user's RINGO_BACKEND=epoll wins over any
// errno (nothing was wrong with io_uring), then a SIGSYS death of the probe
// child (the errno is meaningless then), then the errno.
func Classify(errno unix.Errno, f Facts) (Reason, string) {
	if f.Backend == "epoll" {
		return ReasonDisabledByEnv, BackendEnv + "=epoll selects the epoll backend; unset it or set " + BackendEnv + "=auto to use io_uring."
	}
	if f.Setup != nil && f.Setup.Killed {
		return ReasonSIGSYS, "A seccomp filter kills any process that calls io_uring_setup (SIGSYS), so ringo must not try it; allow io_uring_setup, io_uring_enter and io_uring_register in the sandbox's seccomp profile to use io_uring."
	}
	kernel := "the kernel"
	if !f.Kernel.Release.IsZero() {
		kernel = "kernel " + f.Kernel.Release.String()
	}
	filtered := f.Status.Seccomp.Mode == SeccompFilter

	switch errno {
	case 0:
		return ReasonOK, "io_uring_setup succeeded on " + kernel + "."

	case unix.ENOSYS:
		rel := f.Kernel.Release
		if !rel.IsZero() && !rel.AtLeast(5, 1) {
			return ReasonENOSYS, fmt.Sprintf("Kernel %s predates io_uring (added in 5.1); upgrade the kernel to use io_uring.", rel)
		}
		if hasHint(f.Container, "gvisor") {
			return ReasonENOSYSSeccomp, "gVisor does not implement io_uring (runsc's --iouring flag is test-only); run this workload under runc to use io_uring."
		}
		if filtered {
			return ReasonENOSYSSeccomp, fmt.Sprintf("%s has io_uring, but a seccomp filter answers ENOSYS as Podman and CRI-O profiles do; run with a profile that allows io_uring_setup, io_uring_enter and io_uring_register (podman run --security-opt seccomp=<profile.json>).", capitalize(kernel))
		}
		return ReasonENOSYS, fmt.Sprintf("%s was built without io_uring (CONFIG_IO_URING is not set, or io_uring is compiled out); use a kernel with CONFIG_IO_URING=y.", capitalize(kernel))

	case unix.EPERM:
		if ok, why := f.Sysctl.Allows(f.Creds); !ok {
			msg := "io_uring is disabled by sysctl (" + why + "); run `sysctl kernel.io_uring_disabled=0`"
			if f.Sysctl.Disabled == 1 {
				msg += " or add this process's user to kernel.io_uring_group"
			}
			return ReasonEPERMSysctl, msg + "."
		}
		if filtered {
			return ReasonEPERMSeccomp, "A seccomp filter denies io_uring with EPERM, as Docker 25+ and containerd 2.0 default profiles do; run the container with a profile that allows io_uring_setup, io_uring_enter and io_uring_register (docker run --security-opt seccomp=<profile.json>)."
		}
		return ReasonOther, "io_uring_setup failed with EPERM, but neither kernel.io_uring_disabled nor a seccomp filter explains it; check the security policy (" + lsmSummary(f.LSM) + ") and the audit log."

	case unix.EACCES:
		return ReasonEACCESLSM, "A Linux security module (" + lsmSummary(f.LSM) + ") denied io_uring_setup; look for the denial with `ausearch -m avc -ts recent` and allow the io_uring permissions in the policy."

	case unix.ENOMEM:
		ml := f.Limits.Memlock
		// Memlock cannot be the cause when it is unlimited, or when the
		// process has CAP_IPC_LOCK, which exempts ring memory from it.
		if ml.Unlimited() || f.Status.HasCap(unix.CAP_IPC_LOCK) {
			return ReasonOther, "io_uring_setup failed with ENOMEM although RLIMIT_MEMLOCK does not apply; the system or the cgroup is out of memory."
		}
		limit := "RLIMIT_MEMLOCK"
		if ml != (Rlimit{}) {
			limit = fmt.Sprintf("RLIMIT_MEMLOCK (soft limit %d KiB)", ml.Soft/1024)
		}
		fix := "raise it with `ulimit -l`, LimitMEMLOCK= in the systemd unit, or docker run --ulimit memlock=-1"
		if rel := f.Kernel.Release; !rel.IsZero() && rel.AtLeast(5, 12) {
			// 5.12 moved ring memory to memcg accounting; the rlimit still
			// bounds registered buffers, so it stays the first suspect.
			return ReasonENOMEMMemlock, fmt.Sprintf("io_uring_setup failed with ENOMEM on %s, which charges rings to the memory cgroup but registered buffers to %s; %s, and check the cgroup's memory limit.", kernel, limit, fix)
		}
		return ReasonENOMEMMemlock, fmt.Sprintf("%s charges ring memory to %s, which is too small; %s.", capitalize(kernel), limit, fix)

	case unix.EINVAL:
		return ReasonEINVAL, fmt.Sprintf("%s rejected the io_uring_setup parameters (EINVAL); retry with fewer IORING_SETUP_* flags or entries before giving up on io_uring.", capitalize(kernel))

	case unix.EMFILE, unix.ENFILE:
		return ReasonOther, fmt.Sprintf("io_uring_setup failed with %s: no file descriptor left for the ring (RLIMIT_NOFILE %s); raise `ulimit -n` or close descriptors.", unix.ErrnoName(errno), f.Limits.Nofile)
	}
	name := unix.ErrnoName(errno)
	if name == "" {
		name = fmt.Sprintf("errno %d", int(errno))
	}
	return ReasonOther, fmt.Sprintf("io_uring_setup failed with %s (%v), which is not a known way io_uring is switched off; report it as an error.", name, errno)
}

func lsmSummary(l LSMInfo) string {
	var parts []string
	if l.SELinux != "" {
		parts = append(parts, "SELinux "+l.SELinux)
	}
	if len(l.List) > 0 {
		parts = append(parts, "LSMs: "+strings.Join(l.List, ","))
	}
	if len(parts) == 0 {
		return "SELinux, AppArmor or another LSM"
	}
	return strings.Join(parts, "; ")
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
