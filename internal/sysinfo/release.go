package sysinfo

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Release is an upstream kernel version, major.minor.patch. Distribution
// suffixes ("-79-generic", "-553.el8_10.x86_64", "-fc-v769") are dropped:
// they name a build, not the feature level, and only the upstream numbers can
// be compared with the "added in 5.x" tables ringo carries.
type Release struct {
	Major, Minor, Patch int
}

// errNoRelease is wrapped by ParseRelease when s does not start with x.y.
var errNoRelease = errors.New("not a kernel release")

// ParseRelease reads the leading "major.minor[.patch]" of s and ignores the
// rest. It accepts "6.18.44-fc-v769", "5.15.0-79-generic",
// "4.18.0-553.el8_10.x86_64", "5.4" and "6.8-rc1"; it rejects strings that do
// not begin with two dot-separated numbers and numbers that overflow an int.
func ParseRelease(s string) (Release, error) {
	rest := strings.TrimSpace(s)
	var nums [3]int
	n := 0
	for n < len(nums) {
		end := 0
		for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
			end++
		}
		if end == 0 {
			break
		}
		v, err := strconv.Atoi(rest[:end])
		if err != nil {
			return Release{}, fmt.Errorf("kernel release %q: %w", s, err)
		}
		nums[n] = v
		n++
		rest = rest[end:]
		// Only a dot followed by a digit continues the version: "5.4.0-rc1"
		// stops at '-', and "4.18.0-553.el8" never reads 553 as a field.
		if len(rest) < 2 || rest[0] != '.' || rest[1] < '0' || rest[1] > '9' {
			break
		}
		rest = rest[1:]
	}
	if n < 2 {
		return Release{}, fmt.Errorf("kernel release %q: %w", s, errNoRelease)
	}
	return Release{Major: nums[0], Minor: nums[1], Patch: nums[2]}, nil
}

// Less reports whether r is an older release than o.
func (r Release) Less(o Release) bool {
	if r.Major != o.Major {
		return r.Major < o.Major
	}
	if r.Minor != o.Minor {
		return r.Minor < o.Minor
	}
	return r.Patch < o.Patch
}

// AtLeast reports whether r is major.minor or newer, whatever its patch
// level: feature tables name the release that added a feature as x.y.
func (r Release) AtLeast(major, minor int) bool {
	return !r.Less(Release{Major: major, Minor: minor})
}

// IsZero reports whether r is the zero Release, which stands for "unknown".
func (r Release) IsZero() bool { return r == Release{} }

// String returns r as "major.minor.patch".
func (r Release) String() string {
	return fmt.Sprintf("%d.%d.%d", r.Major, r.Minor, r.Patch)
}
