package sysinfo

import (
	"strings"
)

// LSMInfo lists the Linux security modules in force. LSMs can deny
// io_uring_setup (SELinux "io_uring { allowed }", ~6.15) and io_uring
// operations (override_creds, sqpoll: 5.16), typically with EACCES.
type LSMInfo struct {
	// List is /sys/kernel/security/lsm split at commas; nil when securityfs is
	// not mounted or not readable, as in most containers.
	List []string
	// SELinux is "enforcing", "permissive", or "" when selinuxfs is absent.
	SELinux string
}

// LSMs reads the active LSM list and the SELinux mode.
func LSMs() LSMInfo { return lsms(realHost) }

func lsms(h host) LSMInfo {
	var l LSMInfo
	if b, err := h.readFile("/sys/kernel/security/lsm"); err == nil {
		for _, m := range strings.Split(strings.TrimSpace(string(b)), ",") {
			if m != "" {
				l.List = append(l.List, m)
			}
		}
	}
	if b, err := h.readFile("/sys/fs/selinux/enforce"); err == nil {
		switch strings.TrimSpace(string(b)) {
		case "1":
			l.SELinux = "enforcing"
		case "0":
			l.SELinux = "permissive"
		}
	}
	return l
}
