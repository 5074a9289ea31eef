package proactor

import "sync"

var defaultP = sync.OnceValues(func() (*Proactor, error) { return New(Options{}) })

// Default returns the process-wide Proactor that net and fs use unless
// given one: created on first use with the default Options (so
// RINGO_BACKEND and RINGO_KERNEL apply) and never closed.
func Default() (*Proactor, error) { return defaultP() }
