package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/ringo-io/ringo/internal/sysinfo"
	"github.com/ringo-io/ringo/ring"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current rendering")

// fixedReport is a report for an imaginary Ubuntu host on 5.15 inside
// Docker: io_uring works with gaps. It is built through the same fromRing
// and decide code as a live report, from fixed ring answers, so the golden
// files pin the layout and not this machine.
func fixedReport() Report {
	rel := ring.Release{Major: 5, Minor: 15}
	// On 5.15 proactor provides receive buffers with PROVIDE_BUFFERS.
	rf := RingFacts{OpsSource: "probe", Supported: make([]bool, ring.OpLast), BufferMode: "provide"}
	for op := ring.Op(0); op < ring.OpLast; op++ {
		if rel.Has(op.Since()) {
			rf.Supported[op] = true
			rf.LastOp = int(op)
		}
	}
	for _, f := range ring.Features {
		if rel.Has(f.Since) {
			rf.Features |= f.Bit
		}
	}
	var accepted uint32
	notes := map[uint32]string{}
	for _, f := range ring.SetupFlags {
		if rel.Has(f.Since) {
			accepted |= f.Bit
		} else {
			notes[f.Bit] = "EINVAL"
		}
	}
	notes[ring.SetupSQAff] = "tried with SQPOLL"
	rf.SetupFlags = newFlagSet(ring.SetupFlags, accepted, "trial", notes)
	rf.Regs = []Registration{
		{Name: "PBUF_RING", Opcode: ring.RegisterPbufRing, Since: "5.19", Detail: "EINVAL (io_uring_register: invalid argument)"},
		{Name: "FILES2 (sparse)", Opcode: ring.RegisterFiles2, Since: "5.19", Detail: "EINVAL (io_uring_register: invalid argument)"},
		{Name: "IOWQ_MAX_WORKERS", Opcode: ring.RegisterIOWQMaxWorkers, Since: "5.15", Supported: true, Detail: "io-wq limits: 4 bounded, 7823 unbounded"},
	}
	rf.Backend, rf.BackendCode, rf.BackendWhy = "uring", "ok", "ok: io_uring works (features 0x7ff)"

	filters := 1
	memlock, nofile, nofileHard := uint64(8<<20), uint64(1024), uint64(1048576)
	rep := Report{
		SchemaVersion: schemaVersion,
		Kernel:        Kernel{Release: "5.15.0-79-generic", Major: 5, Minor: 15, Patch: 111, Source: "/proc/version_signature", Machine: "x86_64"},
		Sysctl:        Sysctl{Present: false, MayCreateRings: true, Why: "kernel.io_uring_disabled is absent (kernel before 6.6)"},
		Seccomp:       Seccomp{Mode: "filter", Filters: &filters, NoNewPrivs: true},
		Limits:        Limits{Memlock: Rlimit{Soft: &memlock, Hard: &memlock}, Nofile: Rlimit{Soft: &nofile, Hard: &nofileHard}},
		Container:     []string{"docker: /.dockerenv exists"},
		LSM:           LSM{List: []string{"lockdown", "capability", "apparmor"}},
		Setup:         SetupProbe{Result: "ok", InChild: true, RingInChild: true},
		Warnings:      []string{},
	}
	rep.fromRing(rf, rel, rel)
	rep.conclude(rf, sysinfo.SetupResult{}, sysinfo.Facts{}, nil)
	return rep
}

func TestTableGolden(t *testing.T) {
	for _, c := range []struct {
		file   string
		colour bool
	}{{"table.golden", false}, {"table-colour.golden", true}} {
		t.Run(c.file, func(t *testing.T) {
			var buf bytes.Buffer
			render(&buf, fixedReport(), c.colour)
			path := filepath.Join("testdata", c.file)
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("table differs from %s (go test -update rewrites it):\n%s", path, buf.String())
			}
		})
	}
}

func TestFixedReportIsConsistent(t *testing.T) {
	rep := fixedReport()
	// decide must agree with the verdict the fixture claims.
	if len(rep.Ringo.FallbackOps) == 0 {
		t.Errorf("5.15 fixture has no fallback ops; want FTRUNCATE, SEND_ZC")
	}
	if rep.Verdict != verdictGaps || !rep.Available || rep.Reason != "ok" {
		t.Errorf("fixture verdict %q available %v reason %q", rep.Verdict, rep.Available, rep.Reason)
	}
	if rep.Ringo.Buffers != "provide-buffers" || rep.Ringo.MultishotAccept || rep.Ringo.MultishotRecv {
		t.Errorf("fixture ringo %+v", rep.Ringo)
	}
}
