package seccomptest

import "golang.org/x/sys/unix"

// auditArch is the seccomp_data.arch value of native amd64 syscalls.
const auditArch = unix.AUDIT_ARCH_X86_64
