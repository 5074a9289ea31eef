package sysinfo

import (
	"fmt"
	"os"
	"testing"

	"github.com/ringo-io/ringo/internal/seccomptest"
)

// TestMain installs the seccomp filter when this binary was re-executed by
// seccomptest.ReexecUnder, and fails the run if the tests leak descriptors
// (the probe opens a ring fd and pipes to its child).
func TestMain(m *testing.M) {
	seccomptest.MaybeInstallFromEnv()
	before := openFDs()
	code := m.Run()
	for fd, target := range openFDs() {
		if _, ok := before[fd]; !ok && code == 0 {
			fmt.Fprintf(os.Stderr, "sysinfo tests leaked fd %s -> %s\n", fd, target)
			code = 1
		}
	}
	os.Exit(code)
}

// openFDs maps this process's open descriptors to what they point at. The
// Go runtime's own netpoller (an epoll fd and an eventfd, created lazily the
// first time os/exec uses a pipe) lives for the whole process and is not a
// leak, so it is left out.
func openFDs() map[string]string {
	fds := map[string]string{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fds
	}
	for _, e := range ents {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue // the ReadDir descriptor itself, closed by now
		}
		if target == "anon_inode:[eventpoll]" || target == "anon_inode:[eventfd]" {
			continue
		}
		fds[e.Name()] = target
	}
	return fds
}
