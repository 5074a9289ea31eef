package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteSection: the generated sections are replaced in place; the
// hand-written text (the WaitMode section) and the other generated section
// are kept.
func TestWriteSection(t *testing.T) {
	p := filepath.Join(t.TempDir(), "B.md")
	os.WriteFile(p, []byte("# Benchmarks\n\n## WaitMode\n\nlead text\n"), 0o644)
	if err := writeSection(p, beginMark+"\nA\n"+endMark+"\n"); err != nil {
		t.Fatal(err)
	}
	writeMarked(p, soakBegin, soakEnd, soakBegin+"\nS1\n"+soakEnd+"\n")
	writeSection(p, beginMark+"\nB\n"+endMark+"\n")
	writeMarked(p, soakBegin, soakEnd, soakBegin+"\nS2\n"+soakEnd+"\n")
	b, _ := os.ReadFile(p)
	s := string(b)
	if !strings.Contains(s, "lead text") || strings.Contains(s, "\nA\n") || !strings.Contains(s, "\nB\n") || strings.Contains(s, "S1") || !strings.Contains(s, "S2") {
		t.Fatal(s)
	}
	if !strings.Contains(s, endMark+"\n\n"+soakBegin) {
		t.Fatalf("sections not separated by a blank line:\n%s", s)
	}
}
