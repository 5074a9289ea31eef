package proactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/sysinfo"
	"github.com/ringo-io/ringo/ring"
)

// Backend names a driver.
type Backend int

const (
	// Auto uses io_uring where it can serve and epoll elsewhere.
	Auto Backend = iota
	// Uring requires io_uring; New fails where it cannot serve.
	Uring
	// Epoll uses the epoll reactor, which works everywhere.
	Epoll
)

func (b Backend) String() string {
	switch b {
	case Uring:
		return "uring"
	case Epoll:
		return "epoll"
	}
	return "auto"
}

// ParseBackend reads "auto", "uring" (or "io_uring") and "epoll".
func ParseBackend(s string) (Backend, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return Auto, nil
	case "uring", "io_uring", "iouring":
		return Uring, nil
	case "epoll":
		return Epoll, nil
	}
	return Auto, fmt.Errorf("proactor: unknown backend %q (want auto, uring or epoll)", s)
}

// WaitMode is how an idle loop waits for completions, on either driver.
// Both are implemented so that they can be measured against each other;
// the default (the zero value) is the faster one on this machine.
//
// Measured with taskset -c 1 (GOMAXPROCS=1), go test -bench
// 'NopBlocking|Submitters' ./proactor/ (docs/BENCHMARKS.md has the table):
// one goroutine doing Do(Nop) round trips against an idle loop took 5.9 µs
// with WaitNetpoll and 72 µs with WaitEnter on io_uring (5.6 vs 70 µs on
// epoll), because a goroutine blocked in a syscall keeps its P until
// sysmon retakes it, so every wake-up waits for sysmon; 1,000 submitting
// goroutines got 999 SQEs per io_uring_enter with WaitNetpoll and 158 with
// WaitEnter. With a busy loop (NopCallback, batches of 32) the two are
// within noise of each other.
//
// WaitEnter wins where no goroutine waits on the loop: a callback server
// (net.Serve) whose handlers run on the loops. 1-connection echo: 29-30k
// msgs/s, p50 30 µs, against 21-23k and 42 µs with WaitNetpoll, because
// the kernel wakes the blocked thread directly; the conn API on WaitEnter
// fell to 3.9k.
type WaitMode int

const (
	// WaitNetpoll parks the loop goroutine in Go's netpoller, on an
	// eventfd the ring signals for every CQE (io_uring) or on the epoll
	// fd itself (epoll): no thread is held while idle, and a wake-up is a
	// goroutine wake-up. The default.
	WaitNetpoll WaitMode = iota
	// WaitEnter blocks the loop's locked OS thread in io_uring_enter (or
	// epoll_wait); other goroutines wake it through an eventfd read kept
	// armed in the ring. The ring can then use SINGLE_ISSUER and
	// DEFER_TASKRUN (or COOP_TASKRUN before 6.1), which need one
	// submitting thread.
	WaitEnter
)

// String returns "netpoll" or "enter", the names ParseWaitMode takes.
func (w WaitMode) String() string {
	switch w {
	case WaitNetpoll:
		return "netpoll"
	case WaitEnter:
		return "enter"
	}
	return fmt.Sprintf("WaitMode(%d)", int(w))
}

// ParseWaitMode parses "netpoll" or "enter" (a flag's value).
func ParseWaitMode(s string) (WaitMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "netpoll":
		return WaitNetpoll, nil
	case "enter":
		return WaitEnter, nil
	}
	return WaitNetpoll, fmt.Errorf("proactor: unknown wait mode %q (want netpoll or enter)", s)
}

// EnvBackend and EnvKernel are the environment variables that choose the
// backend and the simulated kernel release.
const (
	EnvBackend = "RINGO_BACKEND"
	EnvKernel  = "RINGO_KERNEL"
)

// required are the opcodes without which io_uring cannot serve ringo's
// contract: cancellation (5.5) is how ops are stopped before their fds
// close, and without it a ring op could outlive its connection.
var required = []ring.Op{ring.OpNop, ring.OpAsyncCancel}

// selection is the outcome of choose: the backend, why, and what the ring
// offers.
type selection struct {
	backend Backend
	code    sysinfo.Reason
	why     string
	release ring.Release
	// features is the release that gates flags and modes an opcode probe
	// cannot see (multishot accept, cancel by fd): the simulated one, or
	// the running kernel's, or Native when uname cannot be read.
	features ring.Release
	probe    *ring.Probe // nil before 5.6
	forced   bool        // chosen by option or environment, not by detection
}

func (s selection) log(l *slog.Logger) {
	lvl := slog.LevelDebug
	if s.backend == Epoll && !s.forced {
		lvl = slog.LevelInfo // a fallback: the user should hear of it once
	}
	l.Log(context.Background(), lvl, "ringo: backend chosen", "backend", s.backend.String(), "reason", string(s.code), "why", s.why, "kernel", s.release.String())
}

// choose decides the backend once, for every loop of a Proactor.
func choose(opts Options) (selection, error) {
	b := opts.Backend
	forced := b != Auto
	if b == Auto {
		var err error
		if b, err = ParseBackend(os.Getenv(EnvBackend)); err != nil {
			return selection{}, err
		}
		forced = b != Auto
	}
	kernel := opts.Kernel
	if kernel == "" {
		kernel = os.Getenv(EnvKernel)
	}
	var rel ring.Release
	if kernel != "" && kernel != "native" {
		var err error
		if rel, err = ring.ParseRelease(kernel); err != nil {
			return selection{}, fmt.Errorf("proactor: %s: %w", EnvKernel, err)
		}
	}
	sel := selection{backend: b, release: rel, features: rel, forced: forced}
	if rel == ring.Native {
		if kr, err := sysinfo.KernelRelease(); err == nil {
			sel.features = ring.Release{Major: kr.Major, Minor: kr.Minor}
		}
	}
	if b == Epoll {
		sel.code = sysinfo.ReasonDisabledByEnv
		sel.why = "the epoll backend was asked for"
		return sel, nil
	}
	code, why, probe := uringUsable(rel)
	if code == sysinfo.ReasonOK {
		sel.backend, sel.code, sel.why, sel.probe = Uring, code, why, probe
		return sel, nil
	}
	if b == Uring {
		return sel, fmt.Errorf("%w: %s: %s", ErrUnavailable, code, why)
	}
	if !code.Fallback() && code != reasonTooOld {
		// Resource failures are errors, not a reason to hide a
		// performance loss behind epoll.
		return sel, fmt.Errorf("%w: %s: %s", ErrUnavailable, code, why)
	}
	sel.backend, sel.code, sel.why = Epoll, code, why
	return sel, nil
}

// reasonTooOld: io_uring exists but lacks what the runtime requires.
const reasonTooOld sysinfo.Reason = "too-old"

// uringUsable sets up a small ring (in a child process first when a
// seccomp filter could kill us for trying) and checks its probe.
func uringUsable(rel ring.Release) (sysinfo.Reason, string, *ring.Probe) {
	if rel != ring.Native && !rel.Has(ring.Release{Major: 5, Minor: 1}) {
		return sysinfo.ReasonENOSYS, fmt.Sprintf("simulated kernel %s has no io_uring (5.1+)", rel), nil
	}
	if st, err := sysinfo.Seccomp(); err != nil || st.Mode == sysinfo.SeccompFilter {
		res, err := sysinfo.SetupErrno()
		if err != nil {
			return sysinfo.ReasonOther, "probing io_uring_setup in a child process failed: " + err.Error(), nil
		}
		if res.Killed || res.Errno != 0 {
			f := sysinfo.Gather()
			f.Setup = &res
			code, why := sysinfo.Classify(res.Errno, f)
			return code, why, nil
		}
	}
	r, err := ring.New(8, ring.WithRelease(rel))
	if err != nil {
		var errno unix.Errno
		if !errors.As(err, &errno) {
			return sysinfo.ReasonOther, err.Error(), nil
		}
		code, why := sysinfo.Classify(errno, sysinfo.Gather())
		return code, why, nil
	}
	defer r.Close()
	probe, err := r.Probe()
	if err != nil && !errors.Is(err, ring.ErrNoProbe) {
		return sysinfo.ReasonOther, err.Error(), nil
	}
	var missing []string
	for _, op := range required {
		if !supports(probe, rel, op) {
			missing = append(missing, fmt.Sprintf("%s (%s)", op, op.Since()))
		}
	}
	if r.Features()&ring.FeatNoDrop == 0 {
		missing = append(missing, "FEAT_NODROP (5.5)")
	}
	if len(missing) > 0 {
		return reasonTooOld, "io_uring here lacks " + strings.Join(missing, ", "), nil
	}
	return sysinfo.ReasonOK, fmt.Sprintf("io_uring works (features %#x)", r.Features()), probe
}

// supports reports whether op runs on the ring: from the probe where the
// kernel has one, from the release table before 5.6.
func supports(p *ring.Probe, rel ring.Release, op ring.Op) bool {
	if p != nil {
		return p.Supports(op)
	}
	if op >= ring.OpLast {
		return false
	}
	if rel == ring.Native {
		// A real kernel without REGISTER_PROBE is 5.1-5.5: assume only
		// what 5.5 is certain to have, whatever else it may.
		rel = ring.Release{Major: 5, Minor: 5}
	}
	return rel.Has(op.Since())
}
