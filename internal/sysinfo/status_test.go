package sysinfo

import (
	"strings"
	"testing"

	"github.com/ringo-io/ringo/internal/seccomptest"
	"golang.org/x/sys/unix"
)

// statusDocker is /proc/self/status (abridged) inside a Docker container
// with the default profile.
const statusDocker = `Name:	cat
Umask:	0022
State:	R (running)
Uid:	0	0	0	0
Groups:	0 1 2 3 4 6 10 11 20 26 27
CapInh:	0000000000000000
CapPrm:	00000000a80425fb
CapEff:	00000000a80425fb
CapBnd:	00000000a80425fb
CapAmb:	0000000000000000
NoNewPrivs:	0
Seccomp:	2
Seccomp_filters:	1
Speculation_Store_Bypass:	thread force mitigated
`

// statusOld is a 4.18 (RHEL 8) kernel: no Seccomp_filters line.
const statusOld = `Name:	cat
CapEff:	0000003fffffffff
NoNewPrivs:	1
Seccomp:	2
`

func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
		want SeccompInfo
		sys  bool // CAP_SYS_ADMIN
	}{
		{"docker", statusDocker, SeccompInfo{Mode: SeccompFilter, Filters: 1}, false},
		{"old kernel", statusOld, SeccompInfo{Mode: SeccompFilter, Filters: -1, NoNewPrivs: true}, true},
		{"host", "Seccomp:\t0\nSeccomp_filters:\t0\nCapEff:\t000001ffffffffff\n", SeccompInfo{Mode: SeccompDisabled}, true},
		{"no seccomp", "Name:\tx\n", SeccompInfo{Mode: SeccompUnknown, Filters: -1}, false},
		{"empty", "", SeccompInfo{Mode: SeccompUnknown, Filters: -1}, false},
	} {
		st, err := ParseStatus(strings.NewReader(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if st.Seccomp != tc.want {
			t.Errorf("%s: seccomp %+v, want %+v", tc.name, st.Seccomp, tc.want)
		}
		if got := st.HasCap(unix.CAP_SYS_ADMIN); got != tc.sys {
			t.Errorf("%s: CAP_SYS_ADMIN = %v, want %v", tc.name, got, tc.sys)
		}
	}
	for _, in := range []string{
		"Seccomp:\t3\n", "Seccomp:\tfilter\n", "Seccomp:\n",
		"Seccomp_filters:\t-1\n", "NoNewPrivs:\tyes\n", "CapEff:\tzz\n",
		"Groups:\t" + strings.Repeat("1 ", maxStatusLine) + "\n",
	} {
		if _, err := ParseSeccomp(strings.NewReader(in)); err == nil {
			t.Errorf("ParseSeccomp(%.30q) succeeded", in)
		}
	}
}

func TestSeccompSelf(t *testing.T) {
	s, err := Seccomp()
	if err != nil {
		t.Fatal(err)
	}
	// Unfiltered hosts and filtered containers are both fine; a child that
	// seccomptest filtered must see its own filter.
	if _, ok := seccomptest.Installed(); ok && s.Mode != SeccompFilter {
		t.Fatalf("mode %v under a seccomptest filter", s.Mode)
	}
	t.Logf("seccomp %+v", s)
}

func FuzzParseStatus(f *testing.F) {
	f.Add(statusDocker)
	f.Add(statusOld)
	f.Add("Seccomp:\t\x00\n:::\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStatus(strings.NewReader(s))
		if err == nil && (st.Seccomp.Mode < SeccompUnknown || st.Seccomp.Mode > SeccompFilter) {
			t.Fatalf("mode %d out of range", st.Seccomp.Mode)
		}
	})
}
