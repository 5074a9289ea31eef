//go:build linux && !amd64 && !arm64

package seccomptest

// auditArch 0 makes Deny refuse: the io_uring syscall numbers have been
// checked only on amd64 and arm64.
const auditArch = 0
