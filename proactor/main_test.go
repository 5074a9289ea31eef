package proactor

import (
	"testing"

	"github.com/ringo-io/ringo/internal/leakcheck"
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
	leakcheck.Main(m, nil, nil)
}
