package compat

import (
	"testing"

	"github.com/ringo-io/ringo/internal/leakcheck"
)

// TestMain fails the run if any test leaks a goroutine (a worker Close did
// not stop) or a descriptor (an epoll fd, eventfd or test socket).
func TestMain(m *testing.M) { leakcheck.Main(m, nil, nil) }
