package sysinfo

import (
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// inject replaces the raw syscall and the status reader for one test.
func inject(t *testing.T, mode SeccompMode, setup func(uint32, *[setupParamsSize]byte) (int, unix.Errno)) {
	t.Helper()
	oldSetup, oldStatus := ioUringSetup, readSelfStatus
	t.Cleanup(func() { ioUringSetup, readSelfStatus = oldSetup, oldStatus })
	if setup != nil {
		ioUringSetup = setup
	}
	readSelfStatus = func() (ProcStatus, error) {
		return ProcStatus{Seccomp: SeccompInfo{Mode: mode, Filters: -1}}, nil
	}
}

func TestProbeInProcessErrnos(t *testing.T) {
	for _, e := range []unix.Errno{unix.ENOSYS, unix.EPERM, unix.EACCES, unix.ENOMEM, unix.EINVAL} {
		inject(t, SeccompDisabled, func(entries uint32, p *[setupParamsSize]byte) (int, unix.Errno) {
			if entries != 2 || *p != [setupParamsSize]byte{} {
				t.Errorf("setup(%d, non-zero params)", entries)
			}
			return -1, e
		})
		res, err := probeSetup()
		if err != nil || res != (SetupResult{Errno: e}) {
			t.Errorf("injected %v: got %+v, %v", e, res, err)
		}
	}
}

func TestProbeClosesRing(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	// Hand the probe a pipe end as if it were the ring; it must close it.
	inject(t, SeccompDisabled, func(uint32, *[setupParamsSize]byte) (int, unix.Errno) { return p[1], 0 })
	res, err := probeSetup()
	if err != nil || res.Errno != 0 || res.Killed || res.InChild {
		t.Fatalf("got %+v, %v", res, err)
	}
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("ring fd still open after the probe (fcntl: %v)", err)
	}
}

// TestProbeChildProtocol forces the child path on an unfiltered host: the
// re-executed test binary must answer through this package's init, before
// any test runs, with the same errno the parent would get in-process.
func TestProbeChildProtocol(t *testing.T) {
	if _, err := os.Stat("/proc/self/exe"); err != nil {
		t.Skip("no /proc/self/exe:", err)
	}
	direct := setupOnce()
	inject(t, SeccompFilter, nil)
	res, err := probeSetup()
	if err != nil {
		t.Fatal(err)
	}
	if !res.InChild || res.Killed || res.Errno != direct {
		t.Fatalf("child reported %+v, in-process errno %v", res, direct)
	}
	t.Logf("io_uring_setup here: %v", res)
}

func TestProbeChildEnvIsReplaced(t *testing.T) {
	env := withoutEnv([]string{"A=1", probeChildEnv + "=0", "B=2", probeChildEnv + "=1"}, probeChildEnv)
	if len(env) != 2 || env[0] != "A=1" || env[1] != "B=2" {
		t.Fatalf("got %q", env)
	}
}

func TestSetupResultString(t *testing.T) {
	for r, want := range map[SetupResult]string{
		{}:                            "ok",
		{Errno: unix.EPERM}:           "EPERM",
		{Killed: true, InChild: true}: "killed by SIGSYS (in child)",
		{Errno: 4000}:                 "errno " + strconv.Itoa(4000),
	} {
		if got := r.String(); got != want {
			t.Errorf("%+v: %q, want %q", r, got, want)
		}
	}
}

// TestSetupErrnoCached checks that the exported entry point asks once.
func TestSetupErrnoCached(t *testing.T) {
	a, errA := SetupErrno()
	b, errB := SetupErrno()
	if a != b || errA != errB {
		t.Fatalf("two answers: %+v/%v and %+v/%v", a, errA, b, errB)
	}
}

func TestDiagnoseHost(t *testing.T) {
	r, why, f := Diagnose()
	if r == "" || why == "" {
		t.Fatalf("empty verdict: %q %q", r, why)
	}
	for _, e := range f.Errs {
		t.Logf("unreadable fact: %v", e)
	}
	t.Logf("%s: %s (setup %v, kernel %s)", r, why, f.Setup, f.Kernel.Release)
}
