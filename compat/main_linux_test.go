package compat

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaks a goroutine (a worker Close did
// not stop) or a descriptor (an epoll fd, eventfd or test socket).
func TestMain(m *testing.M) {
	// Go's own netpoller opens its epoll fd and eventfd on first use, which
	// tests that use net or os.CreateTemp trigger; open them up front so
	// they are not counted as leaks.
	if r, w, err := os.Pipe(); err == nil {
		r.Close()
		w.Close()
	}
	before, err := countFds()
	if err != nil {
		fmt.Fprintln(os.Stderr, "counting fds:", err)
		os.Exit(2)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
		if after, err := countFds(); profiling() {
			// testing leaves -cpuprofile and -trace output files open.
		} else if err != nil || after != before {
			fmt.Fprintf(os.Stderr, "fd leak: %d open before the tests, %d after (%v)\n", before, after, err)
			code = 1
		}
	}
	os.Exit(code)
}

func countFds() (int, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, err
	}
	// ReadDir's own descriptor is listed while it reads; it is the same in
	// both counts, so it cancels out.
	return len(ents), nil
}

func profiling() bool {
	for _, name := range []string{"test.cpuprofile", "test.trace"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return true
		}
	}
	return false
}
