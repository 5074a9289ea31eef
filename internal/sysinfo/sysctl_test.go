package sysinfo

import (
	"testing"
)

func TestSysctlAllows(t *testing.T) {
	root := Creds{CapSysAdmin: true, InitUserNS: true, Egid: 0}
	nsRoot := Creds{CapSysAdmin: true, InitUserNS: false, Egid: 0}
	user := Creds{Egid: 1000, Groups: []int{1000, 27}}
	for _, tc := range []struct {
		name string
		s    Sysctl
		c    Creds
		want bool
	}{
		{"absent", Sysctl{Group: -1}, user, true},
		{"0", Sysctl{Present: true, Group: -1}, user, true},
		{"1 root", Sysctl{Present: true, Disabled: 1, Group: -1}, root, true},
		{"1 root in userns", Sysctl{Present: true, Disabled: 1, Group: -1}, nsRoot, false},
		{"1 no group", Sysctl{Present: true, Disabled: 1, Group: -1}, user, false},
		{"1 supplementary group", Sysctl{Present: true, Disabled: 1, Group: 27}, user, true},
		{"1 egid", Sysctl{Present: true, Disabled: 1, Group: 1000}, user, true},
		{"1 other group", Sysctl{Present: true, Disabled: 1, Group: 5}, user, false},
		{"2 root", Sysctl{Present: true, Disabled: 2, Group: 0}, root, false},
		{"2 user", Sysctl{Present: true, Disabled: 2, Group: 27}, user, false},
		{"future value", Sysctl{Present: true, Disabled: 3, Group: -1}, root, false},
	} {
		got, why := tc.s.Allows(tc.c)
		if got != tc.want || why == "" {
			t.Errorf("%s: Allows = %v (%q), want %v", tc.name, got, why, tc.want)
		}
	}
}

func TestParseSysctlInt(t *testing.T) {
	if n, err := parseSysctlInt("x", "-1\n"); err != nil || n != -1 {
		t.Errorf("-1: %d, %v", n, err)
	}
	for _, in := range []string{"", "one", "1 2", "0x1"} {
		if _, err := parseSysctlInt("x", in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestIdentityIDMap(t *testing.T) {
	if !isIdentityIDMap("         0          0 4294967295\n") {
		t.Error("init namespace map not recognised")
	}
	if isIdentityIDMap("         0     100000      65536\n") {
		t.Error("rootless map taken for the init namespace")
	}
}

func TestHostFacts(t *testing.T) {
	// These read the real host; they must work, whatever the answers are.
	s, err := IOUringSysctl()
	if err != nil {
		t.Fatal(err)
	}
	ok, why := MayCreateRings()
	l, err := Limits()
	if err != nil {
		t.Fatal(err)
	}
	if l.Nofile.Soft == 0 {
		t.Error("RLIMIT_NOFILE soft limit 0")
	}
	t.Logf("sysctl %+v; may create rings: %v (%s); memlock %v; nofile %v; containers %q; LSMs %+v",
		s, ok, why, l.Memlock, l.Nofile, Container(), LSMs())
}
