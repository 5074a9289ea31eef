package sysinfo

import "os"

// BackendEnv is the environment variable that selects ringo's backend
// ("auto", "uring", "epoll"); "epoll" disables io_uring (DESIGN.md).
const BackendEnv = "RINGO_BACKEND"

// Facts is everything sysinfo knows about the host. The zero value means
// "nothing known"; Classify then falls back to the errno alone.
type Facts struct {
	Kernel    Kernel
	Status    ProcStatus // seccomp state and capabilities of this process
	Sysctl    Sysctl
	Creds     Creds
	Limits    RLimits
	Container []string // see Container
	LSM       LSMInfo
	// Backend is the value of $RINGO_BACKEND.
	Backend string
	// Setup is the io_uring_setup probe result, nil until probed (Gather
	// does not probe; Diagnose does).
	Setup *SetupResult
	// Errs holds the facts that could not be read. They are reported, not
	// fatal: a partial picture still classifies most failures.
	Errs []error
}

// Gather reads every fact except the setup probe. It has no side effects and
// is cheap (a uname and a few small /proc and /sys files).
func Gather() Facts {
	var f Facts
	var err error
	note := func(e error) {
		if e != nil {
			f.Errs = append(f.Errs, e)
		}
	}
	f.Kernel, err = KernelInfo()
	note(err)
	f.Status, err = readSelfStatus()
	note(err)
	f.Sysctl, err = IOUringSysctl()
	note(err)
	f.Creds, err = credsFrom(f.Status)
	note(err)
	f.Limits, err = Limits()
	note(err)
	f.Container = Container()
	f.LSM = LSMs()
	f.Backend = os.Getenv(BackendEnv)
	return f
}

// Diagnose gathers the facts, probes io_uring_setup once (cached for the
// process) and classifies the outcome.
func Diagnose() (Reason, string, Facts) {
	f := Gather()
	res, err := SetupErrno()
	if err != nil {
		f.Errs = append(f.Errs, err)
		if f.Backend != "epoll" {
			return ReasonOther, "Could not probe io_uring_setup (" + err.Error() + "); run the program's probe command to see why.", f
		}
	} else {
		f.Setup = &res
	}
	r, why := Classify(res.Errno, f)
	return r, why, f
}
