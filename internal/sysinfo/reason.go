package sysinfo

// Reason is a stable, machine-readable code for why io_uring is or is not
// usable. The strings are part of ringo's interface (logs, the probe's JSON):
// add codes, never rename them.
type Reason string

const (
	// ReasonOK: io_uring_setup succeeded.
	ReasonOK Reason = "ok"
	// ReasonENOSYS: the kernel has no io_uring: older than 5.1, or built
	// without CONFIG_IO_URING.
	ReasonENOSYS Reason = "enosys"
	// ReasonENOSYSSeccomp: the kernel is new enough but io_uring_setup gives
	// ENOSYS while a seccomp filter or a sandbox is present (Podman and CRI-O
	// profiles answer ENOSYS; gVisor does not implement io_uring).
	ReasonENOSYSSeccomp Reason = "enosys-seccomp"
	// ReasonEPERMSeccomp: EPERM from a seccomp filter (Docker 25+, containerd
	// 2.0 default profiles).
	ReasonEPERMSeccomp Reason = "eperm-seccomp"
	// ReasonEPERMSysctl: EPERM because kernel.io_uring_disabled forbids this
	// process (Linux 6.6+).
	ReasonEPERMSysctl Reason = "eperm-sysctl"
	// ReasonEACCESLSM: EACCES from a Linux security module such as SELinux.
	ReasonEACCESLSM Reason = "eacces-lsm"
	// ReasonENOMEMMemlock: ENOMEM while RLIMIT_MEMLOCK is finite; kernels up
	// to 5.11 charge ring memory to it.
	ReasonENOMEMMemlock Reason = "enomem-memlock"
	// ReasonSIGSYS: the probe child was killed by SIGSYS, so a seccomp filter
	// with a KILL action guards io_uring and calling it in-process would kill
	// the program.
	ReasonSIGSYS Reason = "sigsys"
	// ReasonDisabledByEnv: the user asked for the epoll backend
	// (RINGO_BACKEND=epoll).
	ReasonDisabledByEnv Reason = "disabled-by-env"
	// ReasonEINVAL: the kernel rejected the setup parameters; retry with
	// fewer flags rather than giving up on io_uring.
	ReasonEINVAL Reason = "einval"
	// ReasonOther: anything else, including resource exhaustion, which is an
	// error to report rather than a reason to fall back.
	ReasonOther Reason = "other"
)

// Reasons lists every code, in the order a reader meets them in the docs.
var Reasons = []Reason{
	ReasonOK, ReasonENOSYS, ReasonENOSYSSeccomp, ReasonEPERMSeccomp,
	ReasonEPERMSysctl, ReasonEACCESLSM, ReasonENOMEMMemlock, ReasonSIGSYS,
	ReasonDisabledByEnv, ReasonEINVAL, ReasonOther,
}

// Fallback reports whether r means "io_uring is unavailable here, use epoll"
// under the Auto backend: missing (ENOSYS), forbidden (EPERM, EACCES, SIGSYS),
// a memlock ENOMEM, or the user's choice. EINVAL means "ask for less", and
// "other" failures are errors that a silent fallback would hide (the rule
// lalinsky/zio adopted and DESIGN.md follows).
func (r Reason) Fallback() bool {
	switch r {
	case ReasonENOSYS, ReasonENOSYSSeccomp, ReasonEPERMSeccomp, ReasonEPERMSysctl,
		ReasonEACCESLSM, ReasonENOMEMMemlock, ReasonSIGSYS, ReasonDisabledByEnv:
		return true
	}
	return false
}
