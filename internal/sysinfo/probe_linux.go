package sysinfo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The setup probe asks the kernel the only question that settles
// availability: does io_uring_setup work for this process?
//
// The danger is the caller. Under a seccomp filter whose action for
// io_uring_setup is SECCOMP_RET_KILL_PROCESS (Android apps, custom sandbox
// profiles: go-microvm#76 lost a libuv program this way) the kernel kills the
// whole process with SIGSYS; there is no errno to catch. So when
// /proc/self/status says a filter is attached (Seccomp: 2), or cannot be read,
// the call runs in a child: /proc/self/exe re-executed with
// RINGO_SETUP_PROBE_CHILD=1. This package's init sees the variable before
// main (or TestMain) runs, makes the call, prints the errno and exits, so the
// child never executes the program itself. Seccomp filters are inherited
// across fork and execve, so the child meets exactly the parent's policy.
// Without a filter, nothing can kill us and the call runs in-process.

// probeChildEnv marks a process as the probe child.
const probeChildEnv = "RINGO_SETUP_PROBE_CHILD"

// probeTimeout bounds the child. A Go binary starts in milliseconds; five
// seconds only ever expires on a wedged or heavily throttled host.
var probeTimeout = 5 * time.Second

// setupParamsSize is sizeof(struct io_uring_params), unchanged since 5.1.
const setupParamsSize = 120

// ioUringSetup is the raw io_uring_setup(2) call. Tests replace it to inject
// errnos. The params are zero: the plainest ring every io_uring kernel
// accepts, so a failure is about availability, not about flags.
var ioUringSetup = func(entries uint32, params *[setupParamsSize]byte) (int, unix.Errno) {
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(params)), 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), 0
}

// SetupResult is what one io_uring_setup attempt taught us.
type SetupResult struct {
	// Errno is 0 when a two-entry ring was created (and closed again).
	Errno unix.Errno
	// Killed is true when the probe child died of SIGSYS; Errno is then 0
	// and meaningless.
	Killed bool
	// InChild is true when the call ran in a re-executed child because a
	// seccomp filter is attached to this process.
	InChild bool
}

// String returns "ok", "killed by SIGSYS" or the errno name, noting a child.
func (r SetupResult) String() string {
	s := "ok"
	switch {
	case r.Killed:
		s = "killed by SIGSYS"
	case r.Errno != 0:
		s = unix.ErrnoName(r.Errno)
		if s == "" {
			s = "errno " + strconv.Itoa(int(r.Errno))
		}
	}
	if r.InChild {
		s += " (in child)"
	}
	return s
}

var cachedSetup = sync.OnceValues(probeSetup)

// SetupErrno reports whether io_uring_setup works for this process, asking
// the kernel once per process; later calls return the cached answer. The
// error is non-nil only when the child probe itself failed (could not start,
// timed out, died of something other than SIGSYS, printed garbage).
func SetupErrno() (SetupResult, error) { return cachedSetup() }

func probeSetup() (SetupResult, error) {
	st, err := readSelfStatus()
	if err != nil || st.Seccomp.Mode == SeccompFilter {
		return probeInChild()
	}
	return SetupResult{Errno: setupOnce()}, nil
}

// setupOnce creates a two-entry ring and closes it at once.
func setupOnce() unix.Errno {
	var p [setupParamsSize]byte
	fd, errno := ioUringSetup(2, &p)
	if errno != 0 {
		return errno
	}
	unix.Close(fd)
	return 0
}

func init() {
	if os.Getenv(probeChildEnv) == "1" {
		runProbeChild()
	}
}

// runProbeChild is the whole life of the probe child.
func runProbeChild() {
	// A SIGSYS death would otherwise write a core file (or wake
	// systemd-coredump) on every start of the program; non-dumpable
	// processes produce none, even with a piped core_pattern.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	errno := setupOnce()
	os.Stdout.WriteString(strconv.Itoa(int(errno)) + "\n")
	os.Exit(0)
}

func probeInChild() (SetupResult, error) {
	res := SetupResult{InChild: true}
	out, killed, err := RunSelf(probeChildEnv, "1", probeTimeout, "io_uring_setup probe child")
	if killed {
		res.Killed = true
		return res, nil
	}
	if err != nil {
		return res, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n < 0 || n > 4095 {
		return res, fmt.Errorf("io_uring_setup probe child: unexpected output %q", out)
	}
	res.Errno = unix.Errno(n)
	return res, nil
}

// RunSelf re-executes this binary with env=val added (replacing any
// inherited value) and returns what it wrote to stdout. It is how anything
// that may be killed by a seccomp filter (SIGSYS) is tried in a child
// instead of in the caller's process: killed reports exactly that. what
// names the child in errors.
func RunSelf(env, val string, timeout time.Duration, what string) (stdout []byte, killed bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	if len(os.Args) > 0 {
		cmd.Args = []string{os.Args[0]} // a familiar name in ps and audit logs
	}
	cmd.Env = append(withoutEnv(os.Environ(), env), env+"="+val)
	// Pipes, not our own descriptors: the child must not write into the
	// parent's terminal or sockets, and stdout is the answer channel.
	var out, errOut bytes.Buffer
	cmd.Stdin = strings.NewReader("")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// If the child leaves a grandchild holding the pipes, give up on them
	// rather than hang past the timeout.
	cmd.WaitDelay = time.Second

	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, false, fmt.Errorf("%s: no answer within %v", what, timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGSYS {
			return nil, true, nil
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w%s", what, err, tail(errOut.String()))
	}
	return out.Bytes(), false, nil
}

// withoutEnv drops every "key=..." entry, so the child sees one value.
func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// tail formats the end of the child's stderr for an error message.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = "..." + s[len(s)-200:]
	}
	return ": " + s
}
