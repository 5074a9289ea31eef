package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/sysinfo"
	"github.com/ringo-io/ringo/proactor"
	"github.com/ringo-io/ringo/ring"
)

// ringChildEnv marks a re-executed copy of this program as the ring child:
// its init gathers RingFacts for the release in the variable, prints them
// as JSON and exits before main (or TestMain) runs.
//
// Why a child: sysinfo.SetupErrno only proves that a plain io_uring_setup
// is allowed. A seccomp filter may still kill the process for
// io_uring_register or for a setup with flags (a filter can inspect
// arguments), and the probe must report that rather than die of it. So
// whenever a filter is attached, everything that touches a ring runs in a
// child, which inherits the filter across fork and execve.
const ringChildEnv = "URINGPROBE_RING_CHILD"

// ringChildTimeout bounds the child: a few dozen setups, a Proactor and
// perhaps sysinfo's own probe child, all milliseconds on a sane host.
var ringChildTimeout = 20 * time.Second

func init() {
	if k, ok := os.LookupEnv(ringChildEnv); ok {
		runRingChild(k)
	}
}

func runRingChild(kernel string) {
	// A SIGSYS death must not leave a core file behind (the flag does not
	// survive execve, so the child sets it itself).
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	rel, err := parseKernel(kernel)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(exitProbeFailed)
	}
	if err := json.NewEncoder(os.Stdout).Encode(probeRing(rel, kernel)); err != nil {
		os.Exit(exitProbeFailed)
	}
	os.Exit(0)
}

// errKilled is returned when the ring child died of SIGSYS.
var errKilled = errors.New("ring probe child killed by SIGSYS")

// probeRingInChild runs probeRing in a child process.
func probeRingInChild(kernel string) (RingFacts, error) {
	var f RingFacts
	out, killed, err := sysinfo.RunSelf(ringChildEnv, kernel, ringChildTimeout, "ring probe child")
	if killed {
		return f, errKilled
	}
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(out, &f); err != nil {
		return f, fmt.Errorf("ring probe child: %w", err)
	}
	return f, nil
}

// parseKernel reads the -kernel value: "native" or a release.
func parseKernel(s string) (ring.Release, error) {
	if s == "" || s == "native" {
		return ring.Native, nil
	}
	return ring.ParseRelease(s)
}

// probe gathers the live report for -kernel kernel ("native" or a
// release). A non-nil error means the probe itself could not finish; the
// report then holds what it did find.
func probe(kernel string) (Report, error) {
	rel, err := parseKernel(kernel)
	if err != nil {
		return Report{}, err
	}
	facts := sysinfo.Gather()
	rep := factsReport(facts, rel)

	res, setupErr := sysinfo.SetupErrno()
	// InChild says where the call ran; the result is the outcome alone.
	rep.Setup = SetupProbe{Result: strings.TrimSuffix(res.String(), " (in child)"), InChild: res.InChild}
	var rf RingFacts
	var probeErr error
	switch {
	case setupErr != nil:
		probeErr = setupErr
		rep.Setup.Result = "probe failed"
		rf = noRing()
	case res.Killed || res.Errno != 0:
		// The plain setup already failed: no ring anywhere, least of
		// all in this process. proactor.New asks SetupErrno too (the
		// answer is cached) and so creates none either.
		facts.Setup = &res
		rf = noRing()
		rf.choose(kernel)
	case facts.Status.Seccomp.Mode != sysinfo.SeccompDisabled:
		// A filter (or a status we could not read) may still kill a
		// later call; see ringChildEnv.
		rep.Setup.RingInChild = true
		rf, err = probeRingInChild(kernel)
		if errors.Is(err, errKilled) {
			rf = noRing()
			rf.Backend, rf.BackendCode = "epoll", string(sysinfo.ReasonSIGSYS)
			rf.BackendWhy = string(sysinfo.ReasonSIGSYS) + ": a seccomp filter lets io_uring_setup through but kills the process on a later io_uring call; ringo would die on it, allow io_uring_enter and io_uring_register or force RINGO_BACKEND=epoll."
			rf.BackendErr = ""
		} else if err != nil {
			probeErr = err
			rf = noRing()
		}
	default:
		rf = probeRing(rel, kernel)
	}
	for _, e := range facts.Errs {
		rep.Warnings = append(rep.Warnings, e.Error())
	}
	if probeErr != nil {
		rep.Warnings = append(rep.Warnings, probeErr.Error())
	}
	rep.fromRing(rf, rel, effectiveRelease(rel, facts.Kernel.Release))
	rep.conclude(rf, res, facts, probeErr)
	return rep, probeErr
}

// noRing is RingFacts for a host where no ring could be created.
func noRing() RingFacts {
	return RingFacts{LastOp: -1, OpsSource: "none", Supported: make([]bool, ring.OpLast),
		SetupFlags: newFlagSet(ring.SetupFlags, 0, "none", nil)}
}

// factsReport fills the host part of the report from sysinfo's facts.
func factsReport(f sysinfo.Facts, rel ring.Release) Report {
	rep := Report{SchemaVersion: schemaVersion}
	k := f.Kernel
	rep.Kernel = Kernel{Release: k.Uname, Major: k.Release.Major, Minor: k.Release.Minor,
		Patch: k.Release.Patch, Source: k.Source, Machine: k.Machine}
	if rel != ring.Native {
		s := rel.String()
		rep.Kernel.Simulated = &s
	}
	rep.Knobs = Knobs{Backend: os.Getenv(proactor.EnvBackend), Kernel: os.Getenv(proactor.EnvKernel)}

	ok, why := f.Sysctl.Allows(f.Creds)
	rep.Sysctl = Sysctl{Present: f.Sysctl.Present, MayCreateRings: ok, Why: why}
	if f.Sysctl.Present {
		d, g := f.Sysctl.Disabled, f.Sysctl.Group
		rep.Sysctl.Disabled, rep.Sysctl.Group = &d, &g
	}

	sc := f.Status.Seccomp
	rep.Seccomp = Seccomp{Mode: sc.Mode.String(), NoNewPrivs: sc.NoNewPrivs}
	if sc.Filters >= 0 {
		n := sc.Filters
		rep.Seccomp.Filters = &n
	}
	rep.Limits = Limits{Memlock: rlimit(f.Limits.Memlock), Nofile: rlimit(f.Limits.Nofile)}
	rep.Container = append([]string{}, f.Container...)
	rep.LSM = LSM{List: append([]string{}, f.LSM.List...), SELinux: f.LSM.SELinux}
	rep.Warnings = []string{}
	return rep
}

func rlimit(l sysinfo.Rlimit) Rlimit {
	v := func(n uint64) *uint64 {
		if n == unix.RLIM_INFINITY {
			return nil
		}
		return &n
	}
	return Rlimit{Soft: v(l.Soft), Hard: v(l.Hard)}
}

// fromRing copies what the ring said into the report.
func (rep *Report) fromRing(rf RingFacts, rel, eff ring.Release) {
	method := "ring"
	if rf.OpsSource == "none" {
		method = "none"
	}
	rep.Features = newFlagSet(ring.Features, rf.Features, method, nil)
	rep.SetupFlags = rf.SetupFlags
	rep.OpsSource = rf.OpsSource
	if rf.LastOp >= 0 {
		n := rf.LastOp
		rep.LastOp = &n
	}
	rep.Ops = make([]OpEntry, 0, ring.OpLast)
	for op := ring.Op(0); op < ring.OpLast; op++ {
		rep.Ops = append(rep.Ops, OpEntry{Op: int(op), Name: op.String(),
			Supported: int(op) < len(rf.Supported) && rf.Supported[op], Since: op.Since().String()})
	}
	rep.Registrations = append([]Registration{}, rf.Regs...)
	rep.Backend = rf.Backend
	rep.BackendReason = rf.BackendWhy
	if rf.BackendErr != "" {
		rep.Backend, rep.BackendReason = "none", rf.BackendErr
	}
	rep.Ringo = decide(rep.Backend, rf, eff)
}

// conclude draws the verdict, the reason code and the errno.
func (rep *Report) conclude(rf RingFacts, res sysinfo.SetupResult, f sysinfo.Facts, probeErr error) {
	var errno unix.Errno
	switch {
	case res.Errno != 0:
		errno = res.Errno
	case rf.SetupErrno != 0:
		errno = unix.Errno(rf.SetupErrno)
	}
	if errno != 0 {
		rep.Errno = &Errno{Name: errnoName(errno), Number: int(errno)}
	}
	switch {
	case probeErr != nil:
		rep.Reason, rep.Why = string(sysinfo.ReasonOther), "the probe could not finish: "+probeErr.Error()
	case rf.BackendErr == "":
		// proactor's own code and sentence: what the probe says is what
		// the runtime decided.
		rep.Reason = rf.BackendCode
		rep.Why = strings.TrimPrefix(rf.BackendWhy, rf.BackendCode+": ")
	default:
		code, why := sysinfo.Classify(errno, f)
		switch {
		case errno == 0 && rf.SetupErr != "":
			code, why = sysinfo.ReasonOther, rf.SetupErr
		case errno == 0:
			// The kernel would give a ring, but ringo refuses to start
			// (a RINGO_BACKEND it does not know).
			code, why = sysinfo.ReasonOther, "ringo will not start: "+rf.BackendErr
		}
		rep.Reason, rep.Why = string(code), why
	}
	rep.Available = rep.Backend == "uring"
	switch {
	case !rep.Available:
		rep.Verdict = verdictUnavailable
	case len(rep.Ringo.FallbackOps) > 0 || len(rep.Ringo.MissingFlags) > 0:
		rep.Verdict = verdictGaps
	default:
		rep.Verdict = verdictUsable
	}
}

// exitCode maps a verdict to the documented exit status.
func exitCode(verdict string) int {
	switch verdict {
	case verdictUsable:
		return exitUsable
	case verdictGaps:
		return exitGaps
	}
	return exitUnavailable
}
