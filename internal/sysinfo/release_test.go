package sysinfo

import "testing"

func TestParseRelease(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Release
	}{
		{"6.18.44-fc-v769", Release{6, 18, 44}},
		{"5.15.0-79-generic", Release{5, 15, 0}},
		{"4.18.0-553.el8_10.x86_64", Release{4, 18, 0}},
		{"5.4", Release{5, 4, 0}},
		{"6.8-rc1", Release{6, 8, 0}},
		{"6.1.0-18-amd64", Release{6, 1, 0}},
		{"5.15.153.1-microsoft-standard-WSL2", Release{5, 15, 153}},
		{"4.4.0-19041-Microsoft", Release{4, 4, 0}},
		{"2.6.32", Release{2, 6, 32}},
		{" 6.6.7\n", Release{6, 6, 7}},
		{"5.10.", Release{5, 10, 0}},
	} {
		got, err := ParseRelease(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRelease(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "5", "5.", ".5.4", "v5.4", "abc", "-1.2", "5.x", "99999999999999999999.1"} {
		if r, err := ParseRelease(in); err == nil {
			t.Errorf("ParseRelease(%q) = %v, want an error", in, r)
		}
	}
}

func TestReleaseCompare(t *testing.T) {
	r := Release{5, 15, 90}
	for _, tc := range []struct {
		major, minor int
		want         bool
	}{
		{5, 1, true}, {5, 15, true}, {5, 16, false}, {6, 0, false}, {4, 20, true},
	} {
		if got := r.AtLeast(tc.major, tc.minor); got != tc.want {
			t.Errorf("%v.AtLeast(%d, %d) = %v", r, tc.major, tc.minor, got)
		}
	}
	if !(Release{5, 15, 89}).Less(r) || r.Less(r) || (Release{6, 0, 0}).Less(r) {
		t.Error("Less is not a strict order on major, minor, patch")
	}
	if s := r.String(); s != "5.15.90" {
		t.Errorf("String() = %q", s)
	}
}

func TestUpstreamRelease(t *testing.T) {
	for _, tc := range []struct {
		name, sig, version, release string
		want                        Release
		source                      string
	}{
		{"ubuntu", "Ubuntu 5.15.0-79.86-generic 5.15.111\n", "#86-Ubuntu SMP Mon Jul 10 16:07:21 UTC 2023", "5.15.0-79-generic", Release{5, 15, 111}, "/proc/version_signature"},
		{"debian", "", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)", "6.1.0-18-amd64", Release{6, 1, 76}, "uname -v (Debian)"},
		{"plain", "", "#1 SMP PREEMPT_DYNAMIC @0", "6.18.44-fc-v769", Release{6, 18, 44}, "uname -r"},
		{"bad signature", "garbage", "", "5.4.0", Release{5, 4, 0}, "uname -r"},
	} {
		got, src, err := upstreamRelease(tc.sig, tc.version, tc.release)
		if err != nil || got != tc.want || src != tc.source {
			t.Errorf("%s: got %v from %q (%v); want %v from %q", tc.name, got, src, err, tc.want, tc.source)
		}
	}
	if _, _, err := upstreamRelease("", "", "not-a-kernel"); err == nil {
		t.Error("unparsable uname -r accepted")
	}
}

func TestKernelInfo(t *testing.T) {
	k, err := KernelInfo()
	if err != nil {
		t.Fatal(err)
	}
	if k.Release.IsZero() || k.Uname == "" || k.Machine == "" {
		t.Fatalf("incomplete: %+v", k)
	}
	t.Logf("kernel %s (from %s), uname -r %q", k.Release, k.Source, k.Uname)
}

func FuzzParseRelease(f *testing.F) {
	for _, s := range []string{"6.18.44-fc-v769", "5.4", "", "1.2.3.4", "9999999999999999999.0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRelease(s)
		if err == nil && (r.Major < 0 || r.Minor < 0 || r.Patch < 0) {
			t.Fatalf("negative field in %v", r)
		}
	})
}
