package main

import (
	"errors"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/seccomptest"
	"github.com/ringo-io/ringo/ring"
)

// skipWithoutURing skips where this process cannot create a ring at all:
// the live-host tests have nothing to compare against there.
func skipWithoutURing(t *testing.T) {
	t.Helper()
	r, err := ring.New(8)
	if err != nil {
		t.Skipf("io_uring unavailable here: %v", err)
	}
	r.Close()
}

func TestJSONMatchesRingProbe(t *testing.T) {
	if _, ok := seccomptest.Installed(); ok {
		t.Skip("filtered child")
	}
	skipWithoutURing(t)
	rep, _, code := runJSON(t, "-kernel", "native")
	if code == exitProbeFailed {
		t.Fatalf("probe failed: %v", rep.Warnings)
	}

	r, err := ring.New(8)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if rep.Features.Raw != r.Features() {
		t.Errorf("features %#x, ring says %#x", rep.Features.Raw, r.Features())
	}
	if !slices.Equal(rep.Features.Names, ring.Names(ring.Features, r.Features())) {
		t.Errorf("feature names %v, ring says %v", rep.Features.Names, ring.Names(ring.Features, r.Features()))
	}
	p, err := r.Probe()
	if errors.Is(err, ring.ErrNoProbe) {
		t.Skip("kernel has no IORING_REGISTER_PROBE")
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.LastOp == nil || *rep.LastOp != int(p.LastOp()) {
		t.Errorf("last_op %v, probe says %d", rep.LastOp, p.LastOp())
	}
	if len(rep.Ops) != int(ring.OpLast) {
		t.Fatalf("%d ops, want %d (0..OpLast-1)", len(rep.Ops), ring.OpLast)
	}
	for _, o := range rep.Ops {
		op := ring.Op(o.Op)
		if o.Supported != p.Supports(op) || o.Name != op.String() || o.Since != op.Since().String() {
			t.Errorf("op %d: report %+v, probe supported=%v name=%s since=%s", o.Op, o, p.Supports(op), op, op.Since())
		}
	}
	if rep.Backend != "uring" || !rep.Available || rep.Reason != "ok" {
		t.Errorf("backend %q available %v reason %q on a host with io_uring", rep.Backend, rep.Available, rep.Reason)
	}
}

// TestSetupFlagTrialsMatchQuery checks the two ways of finding the
// accepted setup flags against each other where the kernel has both.
func TestSetupFlagTrialsMatchQuery(t *testing.T) {
	if _, ok := seccomptest.Installed(); ok {
		t.Skip("filtered child")
	}
	skipWithoutURing(t)
	q, err := querySetupFlags()
	if err != nil {
		t.Skipf("no IORING_REGISTER_QUERY (6.18+): %v", err)
	}
	known := uint32(0)
	for _, f := range ring.SetupFlags {
		known |= f.Bit
	}
	got, notes := trySetupFlags(0)
	if want := uint32(q) & known; got != want {
		t.Errorf("trials accept %#x (%v), query says %#x; notes %v", got, ring.Names(ring.SetupFlags, got^want), want, notes)
	}
}

func TestKernel54IsTooOld(t *testing.T) {
	if _, ok := seccomptest.Installed(); ok {
		t.Skip("filtered child")
	}
	skipWithoutURing(t)
	rep, _, code := runJSON(t, "-kernel", "5.4")
	if code != exitUnavailable || rep.Verdict != verdictUnavailable || rep.Available {
		t.Errorf("exit %d verdict %q available %v, want %d unavailable", code, rep.Verdict, rep.Available, exitUnavailable)
	}
	if rep.Backend != "epoll" || rep.Reason != "too-old" {
		t.Errorf("backend %q reason %q, want epoll too-old", rep.Backend, rep.Reason)
	}
	if rep.Kernel.Simulated == nil || *rep.Kernel.Simulated != "5.4" {
		t.Errorf("kernel.simulated %v, want 5.4", rep.Kernel.Simulated)
	}
	rel := ring.Release{Major: 5, Minor: 4}
	for _, o := range rep.Ops {
		if want := rel.Has(ring.Op(o.Op).Since()); o.Supported != want {
			t.Errorf("op %s (since %s): supported %v under 5.4", o.Name, o.Since, o.Supported)
		}
	}
	if rep.LastOp == nil || *rep.LastOp != int(ring.OpTimeout) {
		t.Errorf("last_op %v, want TIMEOUT (%d), the last op of 5.4", rep.LastOp, ring.OpTimeout)
	}
	if rep.Features.Raw&^ring.FeatSingleMmap != 0 {
		t.Errorf("features %v under 5.4, which had only SINGLE_MMAP", rep.Features.Names)
	}
}

func TestKernel510HasGaps(t *testing.T) {
	if _, ok := seccomptest.Installed(); ok {
		t.Skip("filtered child")
	}
	skipWithoutURing(t)
	rep, _, code := runJSON(t, "-kernel", "5.10")
	if code != exitGaps || rep.Verdict != verdictGaps || rep.Backend != "uring" || !rep.Available {
		t.Fatalf("exit %d verdict %q backend %q, want %d usable-with-gaps uring", code, rep.Verdict, rep.Backend, exitGaps)
	}
	for _, op := range []string{"SHUTDOWN", "SEND_ZC", "FTRUNCATE"} {
		if !slices.Contains(rep.Ringo.FallbackOps, op) {
			t.Errorf("%s not in fallback_ops %v under 5.10", op, rep.Ringo.FallbackOps)
		}
	}
	for _, op := range rep.Ringo.Ops {
		if want := slices.Contains(rep.Ringo.FallbackOps, op.Name); (op.Path == "fallback") != want {
			t.Errorf("ringo op %s path %q disagrees with fallback_ops", op.Name, op.Path)
		}
	}
	if rep.Ringo.MultishotAccept || rep.Ringo.MultishotRecv || rep.Ringo.Buffers != "provide-buffers" {
		t.Errorf("5.10: multishot accept %v recv %v buffers %q; want off, off, provide-buffers",
			rep.Ringo.MultishotAccept, rep.Ringo.MultishotRecv, rep.Ringo.Buffers)
	}
	if rep.SetupFlags.Method != "trial" {
		t.Errorf("setup flags by %q under 5.10, which had no IORING_REGISTER_QUERY", rep.SetupFlags.Method)
	}
	for _, f := range rep.SetupFlags.List {
		if f.Supported && !(ring.Release{Major: 5, Minor: 10}).Has(mustRelease(t, f.Since)) {
			t.Errorf("setup flag %s (since %s) supported under 5.10", f.Name, f.Since)
		}
	}
}

func TestKernel50HasNoIOURing(t *testing.T) {
	if _, ok := seccomptest.Installed(); ok {
		t.Skip("filtered child")
	}
	rep, _, code := runJSON(t, "-kernel", "5.0")
	if code != exitUnavailable || rep.Reason != "enosys" || rep.Errno == nil || rep.Errno.Number != int(unix.ENOSYS) {
		t.Errorf("exit %d reason %q errno %+v, want 2 enosys ENOSYS", code, rep.Reason, rep.Errno)
	}
}

func mustRelease(t *testing.T, s string) ring.Release {
	t.Helper()
	r, err := ring.ParseRelease(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestUnderSeccomp runs the probe in a child under each kind of seccomp
// filter the real world uses against io_uring.
func TestUnderSeccomp(t *testing.T) {
	if mode, ok := seccomptest.Installed(); ok {
		checkUnderSeccomp(t, mode)
		return
	}
	for _, mode := range []seccomptest.Mode{seccomptest.ENOSYS, seccomptest.EPERM, seccomptest.Kill} {
		t.Run(mode.String(), func(t *testing.T) {
			out, err := seccomptest.ReexecUnder(t, mode, "^TestUnderSeccomp$")
			if err != nil {
				t.Fatalf("child under %s: %v\n%s", mode, err, out)
			}
		})
	}
}

func checkUnderSeccomp(t *testing.T, mode seccomptest.Mode) {
	want := map[seccomptest.Mode]struct {
		reason string
		errno  unix.Errno
	}{
		seccomptest.ENOSYS: {"enosys-seccomp", unix.ENOSYS},
		seccomptest.EPERM:  {"eperm-seccomp", unix.EPERM},
		seccomptest.Kill:   {"sigsys", 0},
	}[mode]
	rep, raw, code := runJSON(t)
	if code != exitUnavailable || rep.Verdict != verdictUnavailable || rep.Available {
		t.Errorf("exit %d verdict %q, want %d unavailable", code, rep.Verdict, exitUnavailable)
	}
	if rep.Reason != want.reason || rep.Backend != "epoll" {
		t.Errorf("reason %q backend %q, want %q epoll (why: %s)", rep.Reason, rep.Backend, want.reason, rep.Why)
	}
	switch {
	case want.errno == 0 && rep.Errno != nil:
		t.Errorf("errno %+v after SIGSYS, want null", rep.Errno)
	case want.errno != 0 && (rep.Errno == nil || rep.Errno.Number != int(want.errno) || rep.Errno.Name != unix.ErrnoName(want.errno)):
		t.Errorf("errno %+v, want %s", rep.Errno, unix.ErrnoName(want.errno))
	}
	if rep.Seccomp.Mode != "filter" || !rep.Setup.InChild {
		t.Errorf("seccomp %+v setup %+v: want a filter seen and the setup probed in a child", rep.Seccomp, rep.Setup)
	}
	if rep.OpsSource != "none" || rep.LastOp != nil || len(rep.Registrations) != 0 {
		t.Errorf("ring facts reported without a ring: ops %s last_op %v regs %v", rep.OpsSource, rep.LastOp, rep.Registrations)
	}
	if err := validate(t, raw); err != nil {
		t.Error(err)
	}
}

// TestRingChildMatchesInProcess runs the ring probe through the child
// process the program uses under a seccomp filter, here without one, and
// checks that the answer crosses the pipe intact.
func TestRingChildMatchesInProcess(t *testing.T) {
	if _, ok := seccomptest.Installed(); ok {
		t.Skip("filtered child")
	}
	skipWithoutURing(t)
	for _, k := range []string{"native", "5.10"} {
		rel, _ := parseKernel(k)
		child, err := probeRingInChild(k)
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		local := probeRing(rel, k)
		if child.Features != local.Features || child.LastOp != local.LastOp ||
			!slices.Equal(child.Supported, local.Supported) || child.SetupFlags.Raw != local.SetupFlags.Raw ||
			child.Backend != local.Backend || child.BackendCode != local.BackendCode || len(child.Regs) != len(local.Regs) {
			t.Errorf("%s: child %+v\nlocal %+v", k, child, local)
		}
	}
}

// TestBackendEnvEpoll: RINGO_BACKEND=epoll is honoured as ringo honours it,
// with its own reason code, and the verdict follows the backend.
func TestBackendEnvEpoll(t *testing.T) {
	if _, ok := seccomptest.Installed(); ok {
		t.Skip("filtered child")
	}
	t.Setenv("RINGO_BACKEND", "epoll")
	rep, raw, code := runJSON(t)
	if code != exitUnavailable || rep.Backend != "epoll" || rep.Reason != "disabled-by-env" || rep.Available {
		t.Errorf("exit %d backend %q reason %q available %v, want 2 epoll disabled-by-env false", code, rep.Backend, rep.Reason, rep.Available)
	}
	if rep.Knobs.Backend != "epoll" {
		t.Errorf("knobs.RINGO_BACKEND %q", rep.Knobs.Backend)
	}
	for _, op := range rep.Ringo.Ops {
		if op.Path != "epoll" {
			t.Errorf("op %s path %q with the epoll backend", op.Name, op.Path)
		}
	}
	if err := validate(t, raw); err != nil {
		t.Error(err)
	}
}

// TestNativeRingoDecisions checks "what ringo will do" on this host against
// the ring itself: a buffer ring is reported exactly when the kernel
// registers one (and only proactor's loop is asked), multishot recv rides
// on it from 6.0, and no flag proactor asks for is reported missing when
// the kernel accepts it.
func TestNativeRingoDecisions(t *testing.T) {
	if _, ok := seccomptest.Installed(); ok {
		t.Skip("filtered child")
	}
	skipWithoutURing(t)
	rep, _, _ := runJSON(t, "-kernel", "native")
	r, err := ring.New(8)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	br, err := r.RegisterBufRing(8, 7)
	canBufRing := err == nil
	if canBufRing {
		br.Unregister()
	}
	// Without a buffer ring a native kernel of 5.7+ gets PROVIDE_BUFFERS.
	if want := map[bool]string{true: "buf-ring", false: "provide-buffers"}[canBufRing]; rep.Ringo.Buffers != want {
		t.Errorf("buffers %q, ring can register a buffer ring: %v", rep.Ringo.Buffers, canBufRing)
	}
	k := rep.Kernel
	if want := canBufRing && (ring.Release{Major: k.Major, Minor: k.Minor}).Has(ring.Release{Major: 6}); rep.Ringo.MultishotRecv != want {
		t.Errorf("multishot recv %v, want %v", rep.Ringo.MultishotRecv, want)
	}
	for _, f := range rep.Ringo.MissingFlags {
		for _, e := range rep.SetupFlags.List {
			if e.Name == f && e.Supported {
				t.Errorf("setup flag %s reported missing but accepted", f)
			}
		}
	}
	if rep.Ringo.Sendfile != sendfileMethod() {
		t.Errorf("sendfile %q, fs uses %q", rep.Ringo.Sendfile, sendfileMethod())
	}
}
