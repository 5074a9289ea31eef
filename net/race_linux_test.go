//go:build race

package net

// raceEnabled: the race detector adds allocations of its own (the io_uring
// driver's wake buffer escapes), so allocation counts are not checked.
const raceEnabled = true
