package proactor

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/ringo-io/ringo/internal/seccomptest"
)

// TestMain fails the run if any test leaves a goroutine or a file
// descriptor behind, on either driver.
func TestMain(m *testing.M) {
	// In a child that TestSandbox re-executed, io_uring is now denied;
	// every behavioural test then runs on what Auto chose.
	seccomptest.MaybeInstallFromEnv()
	if _, ok := seccomptest.Installed(); ok {
		drivers = sandboxDrivers
	}
	// Start Go's netpoller first: its epoll fd and eventfd live for the
	// whole process and are not ours.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before := countFds()
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			code = 1
		}
		if after := countFds(); after > before {
			fmt.Fprintf(os.Stderr, "leaked %d file descriptors\n", after-before)
			code = 1
		}
	}
	os.Exit(code)
}

func countFds() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}
