package proactor

import (
	"golang.org/x/sys/unix"
)

// The io_uring driver registers fixed buffers and files with its ring. It
// is called on the loop goroutine, the ring's only submitter, so a
// registration never races an io_uring_enter of the same ring (with
// SINGLE_ISSUER the kernel would refuse one from another thread).

func (d *uringDriver) registerBuffers(iovs []unix.Iovec) error {
	return d.r.RegisterBuffers(iovs)
}

func (d *uringDriver) unregisterBuffers() error { return d.r.UnregisterBuffers() }

func (d *uringDriver) registerFiles(fds []int32) error { return d.r.RegisterFiles(fds) }

func (d *uringDriver) unregisterFiles() error { return d.r.UnregisterFiles() }

// sqeRange is the address range of the ring's SQEs, which ops check in
// Prep: a registered index must not reach another loop's ring.
func (d *uringDriver) sqeRange() (lo, hi uintptr) { return d.r.SQERange() }
