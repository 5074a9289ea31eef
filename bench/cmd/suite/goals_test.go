package main

import (
	"strings"
	"testing"
)

// TestPerRound: the per-round ratios pair the two programs' values round
// by round, and say "-" where they cannot.
func TestPerRound(t *testing.T) {
	s := &suite{points: map[string]*point{}}
	s.add("http", []sample{
		{key: "k", impl: "a", metrics: map[string]float64{"req/s": 110}},
		{key: "k", impl: "b", metrics: map[string]float64{"req/s": 100}},
	})
	s.add("http", []sample{
		{key: "k", impl: "a", metrics: map[string]float64{"req/s": 180}},
		{key: "k", impl: "b", metrics: map[string]float64{"req/s": 200}},
	})
	s.add("http", []sample{
		{key: "k", impl: "a", metrics: map[string]float64{"req/s": 120}},
		{key: "k", impl: "b", metrics: map[string]float64{"req/s": 100}},
		{key: "k", impl: "c", metrics: map[string]float64{"req/s": 100}},
	})
	for _, tc := range []struct{ a, b, want string }{
		{"a", "b", "1.10 [0.90-1.20]"},
		{"a", "c", "-"}, // c ran one round of three
		{"a", "none", "-"},
	} {
		if got := s.perRound("http", "k", tc.a, tc.b, "req/s"); got != tc.want {
			t.Errorf("perRound(%s, %s) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}

// TestParity: a missed "at or above" ratio is at parity only when wrk was
// the limit for both servers, the miss is within the noise, and ringo's
// server CPU per request is no more than the peer's; the table says so.
func TestParity(t *testing.T) {
	row := func(req, cpu, us float64) map[string]float64 {
		return map[string]float64{"req/s": req, "client CPU %": cpu, "server µs/req": us}
	}
	for _, tc := range []struct {
		name       string
		ringo, ngx map[string]float64
		want       string // the table's mark
	}{
		{"above", row(101, 99, 17), row(100, 99, 18), "| yes |"},
		{"at", row(98, 98, 17), row(100, 99, 18), "| at: wrk's CPU 98%/99% busy, 1.01x the CPU per request; server µs/req 0.94x |"},
		{"beyond the noise", row(96, 99, 17), row(100, 99, 18), "| no |"},
		{"server was the limit", row(98, 90, 17), row(100, 99, 18), "| no |"},
		{"ringo's responses cost wrk more", row(98, 100, 17), row(100, 97, 18), "| no |"},
		{"ringo costs more", row(98, 99, 19), row(100, 99, 18), "| no |"},
		{"not measured", map[string]float64{"req/s": 98}, map[string]float64{"req/s": 100}, "| no |"},
	} {
		s := &suite{points: map[string]*point{}, cfg: config{httpSizes: []string{"16k"}, httpConns: []int{64}}}
		s.add("http", []sample{
			{key: "16 KiB c=64", impl: "ringo-uring", metrics: tc.ringo},
			{key: "16 KiB c=64", impl: "nginx", metrics: tc.ngx},
		})
		var b strings.Builder
		s.goalTable(&b)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s: the table lacks %q:\n%s", tc.name, tc.want, b.String())
		}
	}
}

// TestParityPerRound: medians within the noise are not enough when the
// rounds, paired, say ringo was behind beyond it.
func TestParityPerRound(t *testing.T) {
	s := &suite{points: map[string]*point{}, cfg: config{httpSizes: []string{"16k"}, httpConns: []int{64}}}
	for _, r := range [][2]float64{{95, 100}, {99, 103}, {120, 101}} { // 0.95, 0.96, 1.19: median 0.96
		s.add("http", []sample{
			{key: "16 KiB c=64", impl: "ringo-uring", metrics: map[string]float64{"req/s": r[0], "client CPU %": 99, "server µs/req": 17}},
			{key: "16 KiB c=64", impl: "nginx", metrics: map[string]float64{"req/s": r[1], "client CPU %": 99, "server µs/req": 18}},
		})
	}
	var b strings.Builder
	s.goalTable(&b)
	if !strings.Contains(b.String(), "| 0.98 | 0.96 [0.95-1.19] | >= 1.00 | no |") {
		t.Errorf("want the row not at parity:\n%s", b.String())
	}
}
