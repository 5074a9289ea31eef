package seccomptest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// EnvVar names the mode a re-executed test binary must install.
const EnvVar = "RINGO_SECCOMP"

// installed is the mode MaybeInstallFromEnv put in force; written once in
// TestMain before any test goroutine exists, read-only afterwards.
var installed Mode

// MaybeInstallFromEnv installs the filter named by $RINGO_SECCOMP, if set.
// Call it first thing in TestMain so no test runs unfiltered. If the
// variable is malformed or the filter cannot be installed it prints why and
// exits with status 2: a child that silently ran without its filter would
// make the parent's test pass for the wrong reason.
func MaybeInstallFromEnv() {
	v := os.Getenv(EnvVar)
	if v == "" {
		return
	}
	mode, err := ParseMode(v)
	if err == nil && mode == Kill {
		// The kill is the expected outcome; a core file per run is not.
		// A non-dumpable process writes none. (execve resets the flag, so
		// a child this process starts must clear it again itself.)
		err = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	}
	switch {
	case err == nil && mode == Interrupt:
		err = interrupt()
	case err == nil:
		err = Deny(mode)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "seccomptest: %s=%s: %v\n", EnvVar, v, err)
		os.Exit(2)
	}
	installed = mode
}

// Installed reports the mode MaybeInstallFromEnv installed in this process,
// so a test can tell whether it is the filtered child.
func Installed() (Mode, bool) { return installed, installed != 0 }

// reexecTimeout bounds one child when the test has no deadline of its own.
const reexecTimeout = 2 * time.Minute

// ReexecUnder runs this test binary again with -test.run=runRegexp, -test.v
// and RINGO_SECCOMP=mode, plus extraEnv ("KEY=value"), and returns the
// child's combined output and its exit error. Under Kill the error is
// expected: check it with KilledBy(err, syscall.SIGSYS).
//
// A child that matched no test is reported as an error, so that a typo in
// runRegexp cannot turn into a silent pass.
func ReexecUnder(t testing.TB, mode Mode, runRegexp string, extraEnv ...string) (string, error) {
	t.Helper()
	timeout := reexecTimeout
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			// Leave the parent a second to report, but never less than
			// a child needs to start.
			timeout = max(time.Until(dl)-time.Second, 5*time.Second)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run="+runRegexp, "-test.v", "-test.count=1")
	env := make([]string, 0, len(os.Environ())+1+len(extraEnv))
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvVar+"=") {
			env = append(env, kv)
		}
	}
	if mode == Interrupt {
		// The supervisor is a goroutine of the child: it needs a P of its
		// own while a caller waits for its answer in a raw system call
		// (fs's preadv2Nowait holds its P across the call).
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
		env = append(env, "GOMAXPROCS="+strconv.Itoa(max(2, runtime.GOMAXPROCS(0))))
	}
	cmd.Env = append(append(env, EnvVar+"="+mode.String()), extraEnv...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), fmt.Errorf("seccomptest: child timed out after %v: %w", timeout, err)
	}
	if err == nil && strings.Contains(string(out), "no tests to run") {
		return string(out), fmt.Errorf("seccomptest: -test.run=%s matched no test in the child", runRegexp)
	}
	return string(out), err
}

// KilledBy reports whether err says a child process died of signal sig.
func KilledBy(err error, sig syscall.Signal) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}
