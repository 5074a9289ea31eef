package sysinfo

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Kernel describes the running kernel as uname and the distribution report it.
type Kernel struct {
	// Release is the upstream version, the best guess from Source.
	Release Release
	// Uname is utsname.release (uname -r), Version utsname.version (uname -v)
	// and Machine utsname.machine (uname -m), verbatim.
	Uname, Version, Machine string
	// Source names where Release was read: "/proc/version_signature",
	// "uname -v (Debian)" or "uname -r".
	Source string
}

// KernelInfo reads uname and, where present, Ubuntu's /proc/version_signature.
func KernelInfo() (Kernel, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return Kernel{}, os.NewSyscallError("uname", err)
	}
	k := Kernel{
		Uname:   unix.ByteSliceToString(u.Release[:]),
		Version: unix.ByteSliceToString(u.Version[:]),
		Machine: unix.ByteSliceToString(u.Machine[:]),
	}
	// Absent everywhere but Ubuntu; an unreadable file just means "not Ubuntu".
	sig, _ := os.ReadFile("/proc/version_signature")
	rel, src, err := upstreamRelease(string(sig), k.Version, k.Uname)
	k.Release, k.Source = rel, src
	return k, err
}

// KernelRelease returns the upstream release of the running kernel.
func KernelRelease() (Release, error) {
	k, err := KernelInfo()
	return k.Release, err
}

// upstreamRelease picks the most truthful version among what the system
// reports, the way libuv's uv__kernel_version does:
//
//   - Ubuntu's uname -r ("5.15.0-79-generic") keeps the x.y.0 of the base it
//     forked from; /proc/version_signature ("Ubuntu 5.15.0-79.86-generic
//     5.15.111") ends with the upstream stable release it tracks.
//   - Debian's uname -r ("6.1.0-18-amd64") carries an ABI number where the
//     patch level should be; uname -v ("#1 SMP PREEMPT_DYNAMIC Debian
//     6.1.76-1 (2024-02-01)") has the real one after "Debian ".
//   - Everyone else: uname -r.
func upstreamRelease(signature, version, release string) (Release, string, error) {
	if f := strings.Fields(signature); len(f) > 0 {
		if r, err := ParseRelease(f[len(f)-1]); err == nil {
			return r, "/proc/version_signature", nil
		}
	}
	if _, after, ok := strings.Cut(version, "Debian "); ok {
		if r, err := ParseRelease(after); err == nil {
			return r, "uname -v (Debian)", nil
		}
	}
	r, err := ParseRelease(release)
	if err != nil {
		return Release{}, "", fmt.Errorf("uname -r: %w", err)
	}
	return r, "uname -r", nil
}
