package main

import (
	"errors"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// openFlags: read-only, never the controlling tty, never a FIFO that would
// block the open (O_NONBLOCK; regular files ignore it), close-on-exec.
const openFlags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK

// haveOpenat2 is whether openat2(2) (Linux 5.6) works here. A seccomp
// filter that predates it answers ENOSYS (or EPERM in some sandboxes), so
// it is probed once instead of trusting the kernel version.
var haveOpenat2 = sync.OnceValue(func() bool {
	fd, err := unix.Openat2(unix.AT_FDCWD, ".", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_DIRECTORY, Resolve: unix.RESOLVE_BENEATH})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

// forceWalk makes openBeneath use the component walk (tests cover both).
var forceWalk bool

// openBeneath opens rel ("" for the root itself, no leading slash) under
// the directory root without ever leaving it. With openat2 the kernel
// enforces it: RESOLVE_BENEATH refuses ".." above the root, absolute
// symlinks and symlinks that lead out, RESOLVE_NO_MAGICLINKS refuses
// /proc-style links. Without openat2 the walk opens one component at a time
// with O_NOFOLLOW, so no symlink is followed at all (stricter: a symlink
// that stays inside the root is refused too).
func openBeneath(root int, rel string) (int, error) {
	if rel == "" {
		rel = "."
	}
	if !forceWalk && haveOpenat2() {
		for {
			fd, err := unix.Openat2(root, rel, &unix.OpenHow{
				Flags:   openFlags,
				Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
			})
			if err == unix.EINTR || err == unix.EAGAIN {
				continue // EAGAIN: a concurrent rename raced the lookup
			}
			return fd, err
		}
	}
	return walkBeneath(root, rel)
}

func walkBeneath(root int, rel string) (int, error) {
	dir, err := unix.Openat(root, ".", openFlags|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, err
	}
	if rel == "." {
		return dir, nil
	}
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		if p == "" || p == "." || p == ".." {
			unix.Close(dir)
			return -1, unix.ENOENT
		}
		flags := openFlags | unix.O_NOFOLLOW
		if i < len(parts)-1 {
			flags |= unix.O_DIRECTORY
		}
		fd, err := unix.Openat(dir, p, flags, 0)
		unix.Close(dir)
		if err != nil {
			if err == unix.ELOOP || err == unix.ENOTDIR {
				return -1, errOutside
			}
			return -1, err
		}
		dir = fd
	}
	return dir, nil
}

var errOutside = errors.New("path leaves the root")
