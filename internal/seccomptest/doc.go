// Package seccomptest lets ringo's tests run as if io_uring were forbidden:
// it installs a seccomp filter that denies io_uring_setup, io_uring_enter and
// io_uring_register with ENOSYS (old kernels, Podman, gVisor), EPERM (Docker)
// or by killing the process with SIGSYS (Android, strict sandboxes). Its
// Interrupt mode instead makes file reads, writes and syncs fail with EINTR
// every other time, through a supervisor goroutine that answers the
// kernel's notifications (SECCOMP_RET_USER_NOTIF, 5.7 for a whole process),
// for tests of code that must retry them.
//
// A filter can never be removed, so it is installed in a child: the test
// re-executes its own binary with -test.run naming one test and
// RINGO_SECCOMP=enosys|eperm|kill in the environment, and the package's
// TestMain installs the filter before any test runs:
//
//	func TestMain(m *testing.M) {
//		seccomptest.MaybeInstallFromEnv()
//		os.Exit(m.Run())
//	}
//
//	func TestFallsBackUnderDocker(t *testing.T) {
//		if mode, ok := seccomptest.Installed(); ok {
//			// The child: io_uring is now denied as mode says.
//			...
//			return
//		}
//		out, err := seccomptest.ReexecUnder(t, seccomptest.EPERM, "^TestFallsBackUnderDocker$")
//		if err != nil {
//			t.Fatalf("child: %v\n%s", err, out)
//		}
//	}
//
// The package owns only the filter and that re-exec pattern. It is a test
// tool, not a sandbox: it filters the native syscall numbers of amd64 and
// arm64 and lets everything else (x32 numbers, other architectures) through.
package seccomptest
