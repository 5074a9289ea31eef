package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ringo-io/ringo/internal/seccomptest"
)

// TestMain installs the seccomp filter when seccomptest re-executed this
// binary, and fails the run if a test left an io_uring fd open: every trial
// ring, the probe ring and the Proactor must be closed.
func TestMain(m *testing.M) {
	seccomptest.MaybeInstallFromEnv()
	before := ringFDs()
	code := m.Run()
	if after := ringFDs(); after > before && code == 0 {
		fmt.Fprintf(os.Stderr, "uringprobe tests leaked %d io_uring fds\n", after-before)
		code = 1
	}
	os.Exit(code)
}

func ringFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		if t, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && t == "anon_inode:[io_uring]" {
			n++
		}
	}
	return n
}

// runJSON runs the program with -json and args and decodes the report.
func runJSON(t *testing.T, args ...string) (Report, []byte, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append([]string{"-json"}, args...), &out, &errb)
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("run %v: exit %d, bad JSON: %v\nstdout:\n%s\nstderr:\n%s", args, code, err, out.String(), errb.String())
	}
	return rep, out.Bytes(), code
}

func TestHelpExplainsEveryFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-h"}, &out, &errb); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	help := errb.String()
	for _, want := range []string{"-json", "-kernel", "-schema", "-h", "NO_COLOR", "0  usable", "1  usable with gaps", "2  unavailable", "3  the probe itself failed"} {
		if !strings.Contains(help, want) {
			t.Errorf("-h does not mention %q:\n%s", want, help)
		}
	}
}

func TestBadUsageExits3(t *testing.T) {
	for _, args := range [][]string{{"-kernel", "banana"}, {"-nosuchflag"}, {"extra"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitProbeFailed {
			t.Errorf("%v: exit %d, want %d", args, code, exitProbeFailed)
		}
	}
}

func TestSchemaFlagPrintsEmbeddedSchema(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"-schema"}, &out, &errb); code != 0 || !bytes.Equal(out.Bytes(), schemaJSON) {
		t.Fatalf("-schema: exit %d, output differs from schema.json", code)
	}
}

// TestColourOnlyOnTerminal: a buffer is never a terminal, and NO_COLOR
// turns colour off even for stdout.
func TestColourOnlyOnTerminal(t *testing.T) {
	if useColour(&bytes.Buffer{}) {
		t.Error("colour for a buffer")
	}
	t.Setenv("NO_COLOR", "1")
	if useColour(os.Stdout) {
		t.Error("colour with NO_COLOR set")
	}
	var out, errb bytes.Buffer
	run([]string{"-kernel", "5.10"}, &out, &errb)
	if bytes.Contains(out.Bytes(), []byte("\x1b[")) {
		t.Error("escape codes in the table written to a buffer")
	}
}
