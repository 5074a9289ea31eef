package main

import (
	"io"
	"log/slog"
)

// quietLogger drops the proactor's own start-up line: run prints one line
// with the same facts.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
