package proactor

import (
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ringo-io/ringo/internal/seccomptest"
	"github.com/ringo-io/ringo/internal/sysinfo"
)

// sandboxed reports whether this process is a TestSandbox child, and under
// which filter.
func sandboxed() (seccomptest.Mode, bool) { return seccomptest.Installed() }

// TestSandbox re-executes this test binary under a seccomp filter that
// denies io_uring_setup, io_uring_enter and io_uring_register: with ENOSYS
// (Podman, gVisor), with EPERM (Docker 25+, containerd 2) and by killing
// the process with SIGSYS (Android). In each child the whole suite runs on
// what Auto chose (TestMain swaps the driver list), and this test checks
// the choice and its reason.
func TestSandbox(t *testing.T) {
	if mode, ok := sandboxed(); ok {
		p := newProactor(t, Options{Loops: 1})
		require.Equal(t, Epoll, p.Backend(), p.Reason())
		want := map[seccomptest.Mode]sysinfo.Reason{
			seccomptest.ENOSYS: sysinfo.ReasonENOSYSSeccomp,
			seccomptest.EPERM:  sysinfo.ReasonEPERMSeccomp,
			seccomptest.Kill:   sysinfo.ReasonSIGSYS,
		}[mode]
		require.Equal(t, string(want), p.ReasonCode(), p.Reason())
		t.Logf("under %s: %s", mode, p.Reason())
		// Uring refuses clearly instead of failing later (or dying).
		_, err := New(Options{Loops: 1, Backend: Uring, Logger: quiet})
		require.ErrorIs(t, err, ErrUnavailable)
		require.EqualValues(t, 0, do(t, p.Loop(0), Nop{}))
		return
	}
	if errno := sysinfo.Gather().Setup; errno != nil && errno.Errno != 0 {
		t.Skipf("io_uring is unavailable here already (%v): a filter's answer could not be told apart", errno)
	}
	for _, mode := range []seccomptest.Mode{seccomptest.ENOSYS, seccomptest.EPERM, seccomptest.Kill} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			// The whole suite, not just TestSandbox: conformance on the
			// driver Auto picked inside the sandbox.
			out, err := seccomptest.ReexecUnder(t, mode, ".")
			if seccomptest.KilledBy(err, syscall.SIGSYS) {
				t.Fatalf("the child was killed by SIGSYS: Auto must probe in a child process\n%s", out)
			}
			require.NoError(t, err, "child failed:\n%s", out)
			require.Contains(t, out, "--- PASS: TestSandbox ")
			require.NotContains(t, out, "--- FAIL")
			for _, name := range []string{"TestRecvSend", "TestFileOps", "TestDeadlines", "TestConnectBacklogFull", "TestCloseWithOpsInFlight"} {
				require.Contains(t, out, "--- PASS: "+name+" ", "the conformance suite must have run in the sandbox")
			}
			if testing.Verbose() {
				for _, line := range strings.Split(out, "\n") {
					if strings.Contains(line, "under "+mode.String()) {
						t.Log(strings.TrimSpace(line))
					}
				}
			}
		})
	}
}
