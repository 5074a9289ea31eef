package proactor

import (
	"golang.org/x/sys/unix"
)

// epoll has no registration: the Loop emulates fixed buffers and files
// (fixed.go), with the same results.

func (d *epollDriver) registerBuffers([]unix.Iovec) error { return errNoRegister }

func (d *epollDriver) unregisterBuffers() error { return nil }

func (d *epollDriver) registerFiles([]int32) error { return errNoRegister }

func (d *epollDriver) unregisterFiles() error { return nil }
