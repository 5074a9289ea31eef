package pagecachetest

import "testing"

// NoColdReads runs send, which reads a file that is in the page cache and
// must make no cold reads, as counted by reads. A host's own reclaim can
// drop pages read a moment ago: on the machine where a cached pass once
// read its whole file again, DAMON pageout runs (up to 128 MiB a second of
// pages in physical regions it has not seen touched for a minute, which
// newly read pages can fall in; the likely cause, not a proven one). So
// one pass with cold reads proves nothing; it fails after three in a row.
func NoColdReads(t testing.TB, reads func() int64, send func()) {
	t.Helper()
	var before, after int64
	for range 3 {
		before = reads()
		send()
		if after = reads(); after == before {
			return
		}
	}
	t.Fatalf("a cached file: cold reads went from %d to %d, in each of three passes", before, after)
}
