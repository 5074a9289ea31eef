// Package leakcheck is the TestMain every ringo package shares: it fails a
// test binary whose tests leave a goroutine or a file descriptor behind,
// so that "Close releases everything" is checked on every driver by every
// package's whole suite, not by hand in a few tests.
package leakcheck

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Main runs m and exits: with m's code, or 1 if the tests passed but left
// goroutines or descriptors behind. setup, if not nil, runs after the
// descriptors are first counted, and teardown after m.Run, before they are
// counted again: for objects a package's tests share, such as one proactor
// per driver, which teardown must release.
func Main(m *testing.M, setup func() error, teardown func()) {
	// Start Go's netpoller first: its epoll fd and eventfd live for the
	// whole process and are not the tests'.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before := CountFds()
	if setup != nil {
		if err := setup(); err != nil {
			fmt.Fprintln(os.Stderr, "test setup:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if teardown != nil {
		teardown()
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "leaked goroutines:", err)
			code = 1
		}
		// Closing is synchronous, but give stragglers (a resolver's
		// socket, say) a moment before calling it a leak.
		after := CountFds()
		for i := 0; i < 50 && after > before; i++ {
			time.Sleep(10 * time.Millisecond)
			after = CountFds()
		}
		if after > before && !profiling() {
			fmt.Fprintf(os.Stderr, "leaked %d file descriptors; open now:\n", after-before)
			listFds()
			code = 1
		}
	}
	os.Exit(code)
}

// CountFds returns how many descriptors the process has open.
func CountFds() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

// profiling reports whether the test binary writes a CPU profile or trace:
// testing keeps those files open past m.Run, so they are not leaks.
func profiling() bool {
	for _, name := range []string{"test.cpuprofile", "test.trace"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return true
		}
	}
	return false
}

func listFds() {
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		fmt.Fprintln(os.Stderr, " ", e.Name(), target)
	}
}
