package main

import "testing"

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
