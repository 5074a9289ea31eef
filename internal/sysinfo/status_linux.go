package sysinfo

import "os"

// readSelfStatus reads /proc/self/status. It is a variable so that tests can
// make the probe believe a seccomp filter is (or is not) present.
var readSelfStatus = func() (ProcStatus, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return ProcStatus{Seccomp: SeccompInfo{Mode: SeccompUnknown, Filters: -1}}, err
	}
	defer f.Close()
	return ParseStatus(f)
}

// Seccomp returns this process's seccomp state from /proc/self/status.
func Seccomp() (SeccompInfo, error) {
	st, err := readSelfStatus()
	return st.Seccomp, err
}
