package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot/vg"
)

func formatFloat(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

// num formats a measurement with 3-4 significant digits.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case math.IsNaN(v):
		return "-"
	case a >= 1e6:
		return formatFloat(v/1e6, 2) + "M"
	case a >= 1e4:
		return formatFloat(v/1e3, 1) + "k"
	case a >= 100:
		return formatFloat(v, 0)
	case a >= 10:
		return formatFloat(v, 1)
	default:
		return formatFloat(v, 2)
	}
}

// groupSpec says how a group's table is laid out.
type groupSpec struct {
	name, title, intro, keyCol, main string
	lowerBetter                      bool
	extras                           []string
	chart                            string
}

var specs = []groupSpec{
	{name: "nop", title: "Ring NOPs: ringo ring/ vs C liburing (issue 2)", keyCol: "batch", main: "ops/s",
		extras: []string{"ns/op", "allocs/op"}, chart: "nop.png",
		intro: "NOP submit-and-reap, one io_uring_enter per batch, pinned to CPU 1. Goal: ringo within 20% of liburing (ratio >= 0.8) at batch 32 and 256, 0 allocs/op."},
	{name: "proactor", title: "Proactor per-op cost on both drivers (issues 3, 4)", keyCol: "benchmark", main: "ns/op", lowerBetter: true,
		extras: []string{"allocs/op", "sqes/enter", "ring-ns/op", "wake-ns/op"},
		intro:  "go test -bench in proactor/, pinned to CPU 1. NopCallback runs the raw ring's batch-32 NOP loop in the same process, in chunks alternating with the proactor's (ring-ns/op), because this machine's speed drifts by up to a quarter between seconds; its ratio to the raw ring is the median of those in-run ratios (goal <= 1.5). NopBlocking likewise alternates with a goroutine wake-up round trip (wake-ns/op; goal <= 2). Submitters: goal >= 16 sqes/enter."},
	{name: "echo", title: "Echo, 64-byte messages (issue 5)", keyCol: "conns", main: "msgs/s",
		extras: []string{"p50 µs", "p99 µs", "CPU µs/msg"}, chart: "echo.png",
		intro: "Servers on CPU 1, the single-threaded C epoll client bench/c/echo_client on CPU 0. CPU µs/msg is the server's user+system time over the measured window divided by the messages echoed in it. The ringo servers run with examples/echo's default -spin 50us: a loop polls 50 µs for more work before it sleeps, which at 1 connection keeps its CPU busy between messages (see Polling before sleeping, above). Ratios: ringo msgs/s / peer msgs/s (> 1: ringo faster)."},
	{name: "idle", title: "Idle connections: memory (issue 5)", keyCol: "connections", main: "KiB/conn", lowerBetter: true,
		extras: []string{"RSS MiB"},
		intro:  "Each echo server on CPU 1 as in the echo table; the suite opens the connections, echoes one byte on each, waits a second and reads the server's VmRSS. KiB/conn is the RSS growth over the connection count. Goal for the callback API: under 4 KiB per connection. Ratios: ringo KiB/conn / peer KiB/conn (< 1: ringo smaller)."},
	{name: "fsrand", title: "4 KiB random reads (issue 6)", keyCol: "file, queue depth", main: "IOPS", chart: "fsrand.png",
		intro: "All on CPU 1. O_DIRECT on a file on the disk under /var/tmp; buffered on a tmpfs file in /dev/shm. fio psync runs QD threads; ringo goroutines and os.File.ReadAt run QD goroutines; ringo batch submits QD reads per fs.Batch. Ratios: ringo IOPS / peer IOPS."},
	{name: "fsseq", title: "Sequential 1 MiB reads and writes, O_DIRECT (issue 6)", keyCol: "test", main: "MB/s",
		intro: "Queue depth 1, on the disk under /var/tmp, pinned to CPU 1; writes end with fsync (fio --end_fsync=1). Ratios: ringo MB/s / peer MB/s."},
	{name: "http", title: "Static file server (issue 7)", keyCol: "file, conns", main: "req/s",
		extras: []string{"p50 ms", "p99 ms", "errors", "client CPU %", "server µs/req"}, chart: "http.png",
		intro: "Servers on CPU 1, wrk (one thread, keep-alive) on CPU 0. Every server first answers one GET checked byte for byte. errors: non-2xx responses plus wrk socket errors. " +
			"client CPU %: how busy CPU 0 (wrk, and the kernel's work there) was during the run; near 100, wrk was the limit, not the server. " +
			"server µs/req: CPU 1's busy time (the server, and the kernel's work there) per request. Ratios: ringo req/s / peer req/s."},
}

func isRingo(impl string) bool { return strings.HasPrefix(impl, "ringo") }

// keys and impls of a group in first-seen order.
func (s *suite) layout(group string) (keys, impls []string) {
	seenK, seenI := map[string]bool{}, map[string]bool{}
	for _, id := range s.order {
		p := s.points[id]
		if p.group != group {
			continue
		}
		if !seenK[p.key] {
			seenK[p.key] = true
			keys = append(keys, p.key)
		}
		if !seenI[p.impl] {
			seenI[p.impl] = true
			impls = append(impls, p.impl)
		}
	}
	return keys, impls
}

func (s *suite) med(group, key, impl, metric string) float64 {
	p := s.points[group+"/"+key+"/"+impl]
	if p == nil || len(p.values[metric]) == 0 {
		return math.NaN()
	}
	m, _, _ := stats(p.values[metric])
	return m
}

func (s *suite) table(b *strings.Builder, sp groupSpec) {
	keys, impls := s.layout(sp.name)
	var peers []string
	for _, i := range impls {
		if !isRingo(i) {
			peers = append(peers, i)
		}
	}
	if sp.name == "proactor" {
		peers = nil
	}
	hdr := []string{sp.keyCol, "implementation", sp.main + " median [min-max]"}
	hdr = append(hdr, sp.extras...)
	for _, p := range peers {
		hdr = append(hdr, "vs "+p)
	}
	if sp.name == "proactor" {
		hdr = append(hdr, "vs ring batch=32", "vs goroutine wake")
	}
	fmt.Fprintf(b, "| %s |\n|%s\n", strings.Join(hdr, " | "), strings.Repeat("---|", len(hdr)))
	ringNs := s.med("nop", "batch=32", "ringo", "ns/op")
	wake := s.med("proactor", "GoroutineWake", "Go runtime", "ns/op")
	for _, k := range keys {
		for _, impl := range impls {
			p := s.points[sp.name+"/"+k+"/"+impl]
			if p == nil {
				continue
			}
			m, lo, hi := stats(p.values[sp.main])
			row := []string{k, impl, fmt.Sprintf("%s [%s-%s]", num(m), num(lo), num(hi))}
			for _, e := range sp.extras {
				if v, ok := p.values[e]; ok {
					em, _, _ := stats(v)
					row = append(row, num(em))
				} else {
					row = append(row, "-")
				}
			}
			for _, peer := range peers {
				r := "-"
				if isRingo(impl) {
					if pm := s.med(sp.name, k, peer, sp.main); !math.IsNaN(pm) && pm > 0 {
						r = formatFloat(m/pm, 2) + "x"
					}
				}
				row = append(row, r)
			}
			if sp.name == "proactor" {
				// Each ratio only where the issue sets a goal for it.
				for i, ref := range []float64{ringNs, wake} {
					if xr, ok := p.values["x-ring"]; ok && i == 0 && k == "NopCallback" {
						// Measured side by side in the same run.
						xm, _, _ := stats(xr)
						row = append(row, formatFloat(xm, 2)+"x")
					} else if xw, ok := p.values["x-wake"]; ok && i == 1 && k == "NopBlocking" {
						xm, _, _ := stats(xw)
						row = append(row, formatFloat(xm, 2)+"x")
					} else if math.IsNaN(ref) || ref == 0 || (i == 0) != (k == "NopCallback") || k == "GoroutineWake" {
						row = append(row, "-")
					} else {
						row = append(row, formatFloat(m/ref, 2)+"x")
					}
				}
			}
			fmt.Fprintf(b, "| %s |\n", strings.Join(row, " | "))
		}
	}
}

func cmdOut(args ...string) string {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return "not available"
	}
	return firstLine(string(out))
}

func machine() []string {
	cpu := "unknown"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	kern, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	load, _ := os.ReadFile("/proc/loadavg")
	netpoll := cmdOut("go", "list", "-m", "github.com/cloudwego/netpoll")
	return []string{
		fmt.Sprintf("CPU: %s, %d CPUs", cpu, runtime.NumCPU()),
		"Kernel: Linux " + strings.TrimSpace(string(kern)),
		"Go: " + cmdOut("go", "version"),
		"Date: " + time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		"Load average at start: " + strings.Join(strings.Fields(string(load))[:3], " ") + " (the machine may be shared; medians of several rounds damp that)",
		"Peers: " + cmdOut("nginx", "-v") + "; " + cmdOut("fio", "--version") + "; " + cmdOut("sh", "-c", "wrk -v 2>&1 | head -1") +
			"; liburing-dev " + cmdOut("dpkg-query", "-W", "-f=${Version}", "liburing-dev") + "; " + cmdOut("gcc", "--version") + "; " + netpoll,
	}
}

const (
	beginMark = "<!-- BEGIN bench suite output: generated by `make bench` (bench/cmd/suite); edits here are overwritten -->"
	endMark   = "<!-- END bench suite output -->"
)

func (s *suite) report() error {
	var b strings.Builder
	b.WriteString(beginMark + "\n\n")
	fmt.Fprintf(&b, "## Benchmark suite results (%s run)\n\n", s.cfg.name)
	b.WriteString(howTo)
	fmt.Fprintf(&b, "Reproduce with `make bench` (full: every point %d rounds) or `make bench-quick` (one short round, written to bench/out/); this is a %s run with %d round(s). "+
		"The suite (bench/cmd/suite, run by bench/run.sh) builds bench/c and the ringo programs, runs each comparison side by side, "+
		"and writes this section and the charts. Cells are the median of the rounds with [min-max]; a ratio column divides ringo's median by that peer's median.\n\n", full.runs, s.cfg.name, s.cfg.runs)
	for _, l := range machine() {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	fmt.Fprintf(&b, "- Suite run took %s\n\n", time.Since(s.started).Round(time.Second))
	s.goalTable(&b)
	for _, sp := range specs {
		keys, _ := s.layout(sp.name)
		if len(keys) == 0 && len(s.skipped[sp.name]) == 0 && len(s.cmds[sp.name]) == 0 {
			continue
		}
		fmt.Fprintf(&b, "### %s\n\n%s\n\n", sp.title, sp.intro)
		if len(s.cmds[sp.name]) > 0 {
			b.WriteString("Commands:\n\n```\n")
			for _, c := range s.cmds[sp.name] {
				b.WriteString(c + "\n")
			}
			b.WriteString("```\n\n")
		}
		if len(keys) > 0 {
			s.table(&b, sp)
			b.WriteString("\n")
		}
		for _, l := range s.skipped[sp.name] {
			fmt.Fprintf(&b, "- %s\n", l)
		}
		if len(s.skipped[sp.name]) > 0 {
			b.WriteString("\n")
		}
		if sp.chart != "" && len(keys) > 0 {
			if err := s.chart(sp); err != nil {
				fmt.Fprintf(&b, "(chart failed: %v)\n\n", err)
			} else {
				fmt.Fprintf(&b, "![%s](%s)\n\n", sp.title, sp.chart)
			}
		}
	}
	b.WriteString(endMark + "\n")
	path := filepath.Join(s.cfg.outDir, "BENCHMARKS.md")
	if err := writeSection(path, b.String()); err != nil {
		return err
	}
	fmt.Printf("suite: wrote %s and charts in %s\n", path, s.cfg.outDir)
	return nil
}

// writeSection replaces the generated section of path, keeping everything
// else (the hand-written sections) as it is; a file without the markers
// gets the section appended.
func writeSection(path, section string) error {
	return writeMarked(path, beginMark, endMark, section)
}

func writeMarked(path, beginMark, endMark, section string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	if i := strings.Index(text, beginMark); i >= 0 {
		rest := ""
		if j := strings.Index(text[i:], endMark); j >= 0 {
			rest = strings.TrimLeft(text[i+j+len(endMark):], "\n")
		}
		if rest != "" {
			rest = "\n" + rest
		}
		text = text[:i] + section + rest
	} else {
		if text == "" {
			text = "# Benchmarks\n\n"
		} else if !strings.HasSuffix(text, "\n\n") {
			text = strings.TrimRight(text, "\n") + "\n\n"
		}
		text += section
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// chart draws a group's chart: one panel per facet value, categories on X.
func (s *suite) chart(sp groupSpec) error {
	keys, impls := s.layout(sp.name)
	path := filepath.Join(s.cfg.outDir, sp.chart)
	mk := func(title, xlabel string, cats []string, keyOf func(cat string) string) facet {
		f := facet{title: title, xlabel: xlabel, ylabel: sp.main, cats: cats, series: impls}
		for _, impl := range impls {
			row := make([]float64, len(cats))
			for ci, c := range cats {
				row[ci] = s.med(sp.name, keyOf(c), impl, sp.main)
			}
			f.val = append(f.val, row)
		}
		return f
	}
	switch sp.name {
	case "nop":
		f := mk("Ring NOPs: ops/s by batch size (higher is better)", "NOPs per io_uring_enter", keys, func(c string) string { return c })
		for i := range f.cats {
			f.cats[i] = strings.TrimPrefix(f.cats[i], "batch=")
		}
		return barChart(path, []facet{f}, 6*vg.Inch, 4*vg.Inch)
	case "echo":
		f := mk("Echo, 64-byte messages: msgs/s by connections and API (higher is better)", "concurrent connections", keys, func(c string) string { return c })
		f.ylabel = "messages per second"
		return barChart(path, []facet{f}, 10*vg.Inch, 5*vg.Inch)
	case "fsrand":
		var facets []facet
		for _, place := range []string{"O_DIRECT disk", "tmpfs buffered"} {
			var qds []string
			for _, k := range keys {
				if q, ok := strings.CutPrefix(k, place+" QD "); ok {
					qds = append(qds, q)
				}
			}
			if len(qds) == 0 {
				continue
			}
			f := mk("4 KiB random reads, "+place+": IOPS by queue depth", "queue depth", qds, func(c string) string { return place + " QD " + c })
			f.ylabel = "IOPS (reads per second)"
			facets = append(facets, f)
		}
		return barChart(path, facets, vg.Length(len(facets))*6*vg.Inch, 4.5*vg.Inch)
	case "http":
		var facets []facet
		for _, size := range []string{"1 KiB", "16 KiB", "1 MiB"} {
			var conns []string
			for _, k := range keys {
				if c, ok := strings.CutPrefix(k, size+" c="); ok {
					conns = append(conns, c)
				}
			}
			if len(conns) == 0 {
				continue
			}
			f := mk("File server, "+size+" files: req/s", "keep-alive connections (wrk)", conns, func(c string) string { return size + " c=" + c })
			f.ylabel = "requests per second"
			facets = append(facets, f)
		}
		return barChart(path, facets, vg.Length(len(facets))*4.5*vg.Inch, 4.5*vg.Inch)
	}
	return nil
}

const howTo = `How to run (from the repository root; none of these run in CI):

- ` + "`make bench`" + ` installs the Debian peers when missing (nginx, wrk, fio, liburing-dev, gcc through .ci/debs.sh), builds bench/c, the Go peers in the
  separate bench/ module (Go standard library echo and http.FileServer, cloudwego/netpoll echo) and the ringo programs (examples/echo,
  examples/fileserver, the ring/ and proactor/ test binaries), runs every comparison with 5 rounds per point and rewrites this section and
  the charts docs/nop.png, docs/echo.png, docs/fsrand.png and docs/http.png. Text outside the BEGIN/END markers is kept. About 25 minutes.
- ` + "`make bench-quick`" + ` runs one short round of a subset (under 2 minutes) and writes bench/out/BENCHMARKS.md and bench/out/*.png.
- ` + "`make soak`" + ` (` + "`SOAK_DURATION=10m`" + ` by default) runs examples/fileserver and examples/echo (callback and conn APIs) under clients that connect,
  abort and reset at random, samples RSS, open fds and goroutines (from -metrics /debug/vars) every second, fails if the maximum of the
  last third of any series exceeds the first third's by more than a tolerance, or if any answer is wrong, and writes docs/soak.png and
  the soak section below. ` + "`bench/run.sh soak -servers peers-leaky`" + ` runs it on a stand-in that leaks, to see it fail.
- A program that does not build is reported as "not built: reason" and its comparisons are skipped; the rest still run.
- Servers run on CPU 1 (taskset -c 1), load generators on CPU 0. Every point is repeated; a failed measurement is retried once.

`

const (
	soakBegin = "<!-- BEGIN soak output: generated by `make soak`; edits here are overwritten -->"
	soakEnd   = "<!-- END soak output -->"
)
