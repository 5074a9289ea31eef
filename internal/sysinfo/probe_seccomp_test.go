package sysinfo

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/ringo-io/ringo/internal/seccomptest"
	"golang.org/x/sys/unix"
)

// TestProbeUnderSeccomp re-executes the test binary under each seccomptest
// filter; TestProbeFilteredChild checks from inside that the probe ran in a
// grandchild and reported what the filter does.
func TestProbeUnderSeccomp(t *testing.T) {
	if _, ok := seccomptest.Installed(); ok {
		t.Skip("parent-only test")
	}
	if e := setupOnce(); e != 0 {
		t.Skipf("io_uring_setup fails unfiltered (%v); the filter's answer would be indistinguishable", e)
	}
	for _, mode := range []seccomptest.Mode{seccomptest.ENOSYS, seccomptest.EPERM, seccomptest.Kill} {
		t.Run(mode.String(), func(t *testing.T) {
			out, err := seccomptest.ReexecUnder(t, mode, "^TestProbeFilteredChild$")
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !strings.Contains(out, "--- PASS: TestProbeFilteredChild") {
				t.Fatalf("child did not pass:\n%s", out)
			}
		})
	}
}

func TestProbeFilteredChild(t *testing.T) {
	mode, ok := seccomptest.Installed()
	if !ok {
		t.Skip("runs only in a child re-executed under a filter")
	}
	// Uncached: probeSetup reads /proc/self/status, sees Seccomp: 2 and must
	// not call io_uring_setup itself (under Kill this process would die).
	res, err := probeSetup()
	if err != nil {
		t.Fatal(err)
	}
	if !res.InChild {
		t.Fatalf("probe ran in-process under a seccomp filter: %+v", res)
	}
	f := Gather()
	f.Setup = &res
	f.Backend = ""
	reason, why := Classify(res.Errno, f)
	t.Logf("%v: %s", res, why)

	switch mode {
	case seccomptest.Kill:
		if !res.Killed || reason != ReasonSIGSYS {
			t.Fatalf("got %+v -> %s, want killed -> sigsys", res, reason)
		}
	case seccomptest.ENOSYS:
		if res.Killed || res.Errno != unix.ENOSYS || reason != ReasonENOSYSSeccomp {
			t.Fatalf("got %+v -> %s, want ENOSYS -> enosys-seccomp", res, reason)
		}
	case seccomptest.EPERM:
		want := ReasonEPERMSeccomp
		if ok, _ := f.Sysctl.Allows(f.Creds); !ok {
			want = ReasonEPERMSysctl
		}
		if res.Killed || res.Errno != unix.EPERM || reason != want {
			t.Fatalf("got %+v -> %s, want EPERM -> %s", res, reason, want)
		}
	}
	// This process survived, and can still do ordinary I/O.
	if _, err := os.Stdout.Write(nil); err != nil || syscall.Getpid() == 0 {
		t.Fatal("process state broken after the probe")
	}
}
