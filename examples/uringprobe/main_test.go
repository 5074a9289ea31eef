package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ringo-io/ringo/internal/seccomptest"
	"github.com/ringo-io/ringo/proactor"
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

// TestBadEnvironment: a RINGO_KERNEL that does not parse is blamed on the
// variable, not on -kernel; a RINGO_BACKEND ringo refuses makes the report
// say why (reason "other" naming the variable), never "ok".
func TestBadEnvironment(t *testing.T) {
	t.Setenv(proactor.EnvKernel, "junk")
	var out, errb bytes.Buffer
	if code := run(nil, &out, &errb); code != exitProbeFailed || !strings.Contains(errb.String(), "RINGO_KERNEL") || strings.Contains(errb.String(), "-kernel") {
		t.Errorf("RINGO_KERNEL=junk: exit %d, stderr %q", code, errb.String())
	}
	t.Setenv(proactor.EnvKernel, "")
	t.Setenv(proactor.EnvBackend, "bogus")
	rep, _, code := runJSON(t)
	if code != exitUnavailable || rep.Verdict != verdictUnavailable || rep.Reason != "other" || !strings.Contains(rep.Why, "bogus") {
		t.Errorf("RINGO_BACKEND=bogus: exit %d, verdict %q, reason %q, why %q", code, rep.Verdict, rep.Reason, rep.Why)
	}
}

// TestSimulationSource: the table names where the simulated release came
// from.
func TestSimulationSource(t *testing.T) {
	t.Setenv(proactor.EnvKernel, "")
	var out, errb bytes.Buffer
	run([]string{"-kernel", "5.10"}, &out, &errb)
	if !strings.Contains(out.String(), "5.10 (from -kernel)") {
		t.Errorf("-kernel 5.10: %s", grepLine(out.String(), "simulating"))
	}
	t.Setenv(proactor.EnvKernel, "5.10")
	out.Reset()
	run(nil, &out, &errb)
	if !strings.Contains(out.String(), "5.10 (from RINGO_KERNEL)") {
		t.Errorf("RINGO_KERNEL=5.10: %s", grepLine(out.String(), "simulating"))
	}
}

func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return "no line with " + sub
}

// TestNoRingNoTrial: a kernel before io_uring has no ring to try setup
// flags on, and the report does not claim it tried.
func TestNoRingNoTrial(t *testing.T) {
	rep, _, _ := runJSON(t, "-kernel", "4.19")
	if rep.SetupFlags.Method != "none" || rep.SetupFlags.Raw != 0 {
		t.Errorf("-kernel 4.19: setup_flags method %q, raw %#x", rep.SetupFlags.Method, rep.SetupFlags.Raw)
	}
}
