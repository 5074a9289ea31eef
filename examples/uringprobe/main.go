// Command uringprobe answers "will io_uring work here, and if not, why?" in
// one command, using the detection code ringo itself runs, so that what it
// says is what ringo will do.
//
// It reports a verdict (usable, usable-with-gaps, unavailable) with a stable
// reason code and the errno behind it; the backend ringo's proactor picks and
// why; the kernel, the io_uring sysctls, seccomp, rlimits, container and LSM
// hints; and, from a real ring, the feature bits, the accepted setup flags,
// every opcode and the optional registrations. It ends with what ringo will
// do on this host: multishot accept and recv, which provided-buffer scheme,
// how deadlines and sendfile are done, and which ops go through the per-op
// epoll fallback.
//
// With -kernel it shows the same report as ringo would simulate that release
// (RINGO_KERNEL). With -json it prints the report in the versioned format
// described by schema.json, which -schema prints.
//
// Nothing that touches a ring runs in this process while a seccomp filter is
// attached: a filter that kills io_uring callers is reported, not fatal.
package main

import (
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

//go:embed schema.json
var schemaJSON []byte

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usageText = `usage: uringprobe [-json] [-kernel RELEASE] [-schema]

Reports whether ringo can use io_uring on this host, and if not, why, using
the same detection code the runtime runs at start.

Flags:
  -json            print the report as JSON (schema_version 1; see -schema)
                   instead of the table
  -kernel RELEASE  report as ringo would behave on kernel RELEASE ("5.10",
                   "6.1.0-18-amd64", or "native" for the running kernel):
                   opcodes, features and setup flags newer than RELEASE are
                   unsupported. Default: $RINGO_KERNEL, else native
  -schema          print the JSON Schema (draft 2020-12) of the -json output
                   and exit
  -h               print this help

The table is coloured only when stdout is a terminal and NO_COLOR is unset.
RINGO_BACKEND=epoll|uring|auto is honoured, as ringo honours it.

Exit status:
  0  usable: ringo will use io_uring for every op it needs
  1  usable with gaps: io_uring works, but some ops ringo uses run through
     the per-op epoll fallback or setup flags it asks for are missing
  2  unavailable: ringo will use the epoll backend (or refuse to start)
  3  the probe itself failed (bad flags, a probe child that did not answer)
`

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("uringprobe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usageText) }
	asJSON := fs.Bool("json", false, "print the report as JSON")
	kernel := fs.String("kernel", "", "simulate kernel RELEASE")
	schema := fs.Bool("schema", false, "print the JSON Schema")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitUsable
		}
		return exitProbeFailed
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "uringprobe: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitProbeFailed
	}
	if *schema {
		stdout.Write(schemaJSON)
		return exitUsable
	}
	k, from := *kernel, "-kernel"
	if k == "" {
		k, from = os.Getenv(proactor.EnvKernel), proactor.EnvKernel
	}
	if k == "" {
		k = "native"
	}
	if _, err := parseKernel(k); err != nil {
		fmt.Fprintf(stderr, "uringprobe: %s: %v\n", from, err)
		return exitProbeFailed
	}

	rep, err := probe(k)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "uringprobe: %v\n", err)
			return exitProbeFailed
		}
	} else {
		render(stdout, rep, useColour(stdout))
	}
	if err != nil {
		fmt.Fprintf(stderr, "uringprobe: %v\n", err)
		return exitProbeFailed
	}
	return exitCode(rep.Verdict)
}

// useColour reports whether w is this process's stdout and a terminal, and
// NO_COLOR (https://no-color.org) is unset.
func useColour(w io.Writer) bool {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	if f, ok := w.(*os.File); !ok || f.Fd() != 1 {
		return false
	}
	_, err := unix.IoctlGetTermios(1, unix.TCGETS)
	return err == nil
}
