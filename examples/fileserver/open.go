package main

import (
	"errors"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
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

// haveResolveCached is whether openat2 takes RESOLVE_CACHED (Linux 5.12):
// a lookup that fails with EAGAIN instead of reading a directory or an
// inode from the disk.
var haveResolveCached = sync.OnceValue(func() bool {
	if !haveOpenat2() {
		return false
	}
	fd, err := unix.Openat2(unix.AT_FDCWD, ".", &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_DIRECTORY, Resolve: unix.RESOLVE_BENEATH | resolveCached})
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

// resolveCached is RESOLVE_CACHED (linux/openat2.h), which x/sys/unix
// lacks.
const resolveCached = 0x20

// forceWalk makes openBeneath use the component walk (tests cover both).
var forceWalk bool

// errWouldBlock is what the lookups that may not wait (diskWait.never)
// answer when the answer is not in memory and needs the disk.
var errWouldBlock = errors.New("the lookup needs the disk")

// diskWait is how a lookup may wait for the disk. The zero value blocks
// the calling thread in system calls.
type diskWait struct {
	// never: answer errWouldBlock instead (on a loop goroutine).
	never bool
	// loop, when set, waits instead: the opens and reads go through its
	// ops (io_uring's workers, or the epoll driver's), and the calling
	// goroutine parks without blocking a thread. That matters beyond the
	// thread: io_uring posts an op's completion through task work on the
	// thread that submitted the op, which runs none while it is blocked
	// in a disk read, and a loop in WaitNetpoll mode submits from
	// whichever of Go's threads it runs on. A blocking read on a plain
	// goroutine can so hold up a whole loop's completions
	// (TestColdSmallFileOffLoop, conn/uring, caught it).
	loop *proactor.Loop
	// stop, closed, cancels loop's ops: the server is shutting down.
	stop <-chan struct{}
}

// openBeneath opens rel ("" for the root itself, no leading slash) under
// the directory root without ever leaving it. With openat2 the kernel
// enforces it: RESOLVE_BENEATH refuses ".." above the root, absolute
// symlinks and symlinks that lead out, RESOLVE_NO_MAGICLINKS refuses
// /proc-style links. Without openat2 (before 5.6, or a seccomp profile
// that predates it) walkBeneath does the same resolution in user space.
//
// dw says how it may wait for the disk. With dw.never where RESOLVE_CACHED
// works, a lookup that would read the disk fails with errWouldBlock; the
// walk (no openat2) always makes blocking system calls.
func openBeneath(root int, rel string, dw diskWait) (int, error) {
	if rel == "" {
		rel = "."
	}
	if !forceWalk && haveOpenat2() {
		how := unix.OpenHow{Flags: openFlags, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
		if dw.never && haveResolveCached() {
			how.Resolve |= resolveCached
		}
		for {
			fd, err := openat2(dw, root, rel, &how)
			switch {
			case err == unix.EAGAIN && how.Resolve&resolveCached != 0:
				// Not all in the dentry cache (or a rename raced
				// the lookup: the blocking lookup sorts that out).
				return -1, errWouldBlock
			case err == unix.EINTR || err == unix.EAGAIN:
				continue // EAGAIN: a concurrent rename raced the lookup
			}
			return fd, err
		}
	}
	return walkBeneath(root, rel)
}

// maxSymlinks is the kernel's limit on symlinks in one lookup (ELOOP).
const maxSymlinks = 40

// walkBeneath is RESOLVE_BENEATH in user space: one component at a time,
// each opened with O_NOFOLLOW relative to the directory before it, keeping
// the open directories from the root down so that ".." pops one instead
// of asking the kernel (which could climb above the root). A symlink is
// read and its target's components take its place: an absolute target, or
// a ".." above the root, is refused (errOutside), as openat2 would. The
// result is the same file openat2 opens, or the same refusal, at the cost
// of a syscall or two per component.
func walkBeneath(root int, rel string) (int, error) {
	top, err := unix.Openat(root, ".", openFlags|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, err
	}
	dirs := []int{top} // dirs[0] is the root
	defer func() {
		for _, d := range dirs {
			unix.Close(d)
		}
	}()
	todo := strings.Split(rel, "/")
	links := 0
	for len(todo) > 0 {
		p := todo[0]
		todo = todo[1:]
		switch p {
		case "", ".":
			continue
		case "..":
			if len(dirs) == 1 {
				return -1, errOutside
			}
			unix.Close(dirs[len(dirs)-1])
			dirs = dirs[:len(dirs)-1]
			continue
		}
		last := len(todo) == 0
		flags := openFlags | unix.O_NOFOLLOW
		if !last {
			flags |= unix.O_DIRECTORY
		}
		fd, err := openat(dirs[len(dirs)-1], p, flags)
		if err == unix.ELOOP || err == unix.ENOTDIR {
			// O_NOFOLLOW met a symlink (ELOOP, or ENOTDIR with
			// O_DIRECTORY): follow it by hand. Anything else that says
			// so is not a symlink, and its error stands.
			target, lerr := readlinkat(dirs[len(dirs)-1], p)
			if lerr != nil {
				return -1, err
			}
			if links++; links > maxSymlinks {
				return -1, unix.ELOOP
			}
			if strings.HasPrefix(target, "/") {
				return -1, errOutside
			}
			todo = append(strings.Split(target, "/"), todo...)
			continue
		}
		if err != nil {
			return -1, err
		}
		dirs = append(dirs, fd)
	}
	// The last one opened is the answer (the root's own when rel led
	// back to it); the deferred close skips it.
	fd := dirs[len(dirs)-1]
	dirs = dirs[:len(dirs)-1]
	return fd, nil
}

// openat2 is openat2(2), through dw.loop's ops when that is set.
func openat2(dw diskWait, dir int, name string, how *unix.OpenHow) (int, error) {
	if dw.loop == nil {
		return unix.Openat2(dir, name, how)
	}
	res, _, err := dw.loop.DoUntil(&proactor.Openat2{Dir: dir, Path: proactor.CString(name), How: *how}, time.Time{}, dw.stop)
	if err != nil {
		return -1, err
	}
	if res < 0 {
		return -1, unix.Errno(-res)
	}
	return int(res), nil
}

func openat(dir int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dir, name, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func readlinkat(dir int, name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) >= unix.PathMax {
			return "", unix.ENAMETOOLONG
		}
		buf = make([]byte, 2*len(buf))
	}
}

var errOutside = errors.New("path leaves the root")
