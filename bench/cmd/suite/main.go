// Command suite runs every ringo benchmark comparison side by side in one
// run, repeats each point, and writes the medians with min and max, ratios
// against each peer and charts to docs/ (full) or bench/out/ (quick).
// `suite soak` is the long-running leak and correctness test.
//
// It is run by bench/run.sh (make bench, make bench-quick, make soak) from
// the bench/ directory; it installs nothing itself.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// config is what differs between a full and a quick run.
type config struct {
	name      string
	runs      int
	benchtime string        // go test -benchtime for ring/ and proactor/
	nopSecs   float64       // nop_liburing -d
	echoConns []int         // echo connection counts
	echoDur   time.Duration // echo measured window
	echoWarm  time.Duration
	idleConns int // idle connections for the memory measurement
	fsQDs     []int
	fsDur     time.Duration
	fsSize    int64 // random-read file size
	seqSize   int64 // sequential write size
	httpSizes []string
	httpConns []int
	httpDur   time.Duration
	outDir    string // where BENCHMARKS.md and the PNGs go
}

var (
	full = config{
		name: "full", runs: 5, benchtime: "1s", nopSecs: 1,
		echoConns: []int{1, 100, 1000}, echoDur: 2 * time.Second, echoWarm: 500 * time.Millisecond, idleConns: 10000,
		fsQDs: []int{1, 32, 128}, fsDur: 2 * time.Second, fsSize: 1 << 30, seqSize: 256 << 20,
		httpSizes: []string{"1k", "16k", "1m"}, httpConns: []int{64, 256}, httpDur: 3 * time.Second,
	}
	quick = config{
		name: "quick", runs: 1, benchtime: "200ms", nopSecs: 0.3,
		echoConns: []int{1, 100}, echoDur: time.Second, echoWarm: 200 * time.Millisecond, idleConns: 2000,
		fsQDs: []int{32}, fsDur: time.Second, fsSize: 256 << 20, seqSize: 64 << 20,
		httpSizes: []string{"1k", "1m"}, httpConns: []int{64}, httpDur: time.Second,
	}
)

// Paths, relative to bench/ (the suite's working directory).
const (
	rootDir = ".."
	binDir  = "bin"
	cBin    = "c/bin"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: suite full|quick [-out DIR] [-only GROUPS] | suite soak [-duration D]")
		os.Exit(2)
	}
	mode := os.Args[1]
	stopOnSignal()
	fl := flag.NewFlagSet(mode, flag.ExitOnError)
	out := fl.String("out", "", "directory for BENCHMARKS.md and charts (default ../docs for full, out for quick)")
	only := fl.String("only", "", "comma-separated groups to run (nop,proactor,echo,idle,fsrand,fsseq,http); default all")
	runs := fl.Int("runs", 0, "repetitions of each point (default 5 full, 1 quick)")
	dur := fl.Duration("duration", 10*time.Minute, "soak: how long")
	soakServers := fl.String("servers", "ringo", "soak: ringo (examples/fileserver and examples/echo), peers (stdlib stand-ins, to try the harness) or peers-leaky (a stand-in that leaks: the soak must fail)")
	fl.Parse(os.Args[2:])

	var cfg config
	switch mode {
	case "full":
		cfg = full
		cfg.outDir = filepath.Join(rootDir, "docs")
	case "quick":
		cfg = quick
		cfg.outDir = "out"
	case "soak":
		os.Exit(soak(*dur, *soakServers))
	default:
		fmt.Fprintf(os.Stderr, "suite: unknown mode %q\n", mode)
		os.Exit(2)
	}
	if *out != "" {
		cfg.outDir = *out
	}
	if *runs > 0 {
		cfg.runs = *runs
	}
	if err := os.MkdirAll(cfg.outDir, 0o755); err != nil {
		fatal(err)
	}
	groups := map[string]bool{}
	for _, g := range strings.Split(*only, ",") {
		if g != "" {
			groups[g] = true
		}
	}
	s := newSuite(cfg)
	s.build()
	s.plan(groups)
	s.run()
	s.cleanup()
	if err := s.report(); err != nil {
		fatal(err)
	}
	if s.failures > 0 {
		fmt.Printf("suite: %d measurement(s) failed; see the log above\n", s.failures)
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "suite:", err)
	os.Exit(1)
}

// task is one measurement: it runs once per round and adds its samples.
type task struct {
	group, label string
	est          time.Duration
	run          func() ([]sample, error)
}

// sample is one value of one metric of one (group, key, impl) point.
type sample struct {
	key, impl string
	metrics   map[string]float64
}

// series holds every round's values of one metric.
type point struct {
	group, key, impl string
	values           map[string][]float64
}

type suite struct {
	cfg      config
	tasks    []task
	skipped  map[string][]string // group -> "not built: ..." lines
	points   map[string]*point   // group/key/impl
	order    []string            // first-seen order of points
	cmds     map[string][]string // group -> example commands, for the docs
	failures int
	built    map[string]string // program -> "" when built, else the reason
	started  time.Time
	tmp      string
}

func newSuite(cfg config) *suite {
	return &suite{cfg: cfg, skipped: map[string][]string{}, points: map[string]*point{},
		cmds: map[string][]string{}, built: map[string]string{}}
}

func (s *suite) skip(group, what, reason string) {
	line := fmt.Sprintf("%s: not built: %s", what, reason)
	for _, l := range s.skipped[group] {
		if l == line {
			return
		}
	}
	s.skipped[group] = append(s.skipped[group], line)
	fmt.Println("  skip", group, line)
}

func (s *suite) cmd(group, c string) {
	for _, x := range s.cmds[group] {
		if x == c {
			return
		}
	}
	s.cmds[group] = append(s.cmds[group], c)
}

func (s *suite) add(group string, smp []sample) {
	for _, x := range smp {
		id := group + "/" + x.key + "/" + x.impl
		p := s.points[id]
		if p == nil {
			p = &point{group: group, key: x.key, impl: x.impl, values: map[string][]float64{}}
			s.points[id] = p
			s.order = append(s.order, id)
		}
		for m, v := range x.metrics {
			p.values[m] = append(p.values[m], v)
		}
	}
}

// run executes the plan round by round: within a round every point of a
// group runs once, so slow drift of a shared machine hits every peer alike.
func (s *suite) run() {
	s.started = time.Now()
	var total time.Duration
	for _, t := range s.tasks {
		total += t.est * time.Duration(s.cfg.runs)
	}
	fmt.Printf("suite %s: %d measurements x %d rounds, estimated %s\n", s.cfg.name, len(s.tasks), s.cfg.runs, total.Round(time.Second))
	done, n := time.Duration(0), 0
	all := len(s.tasks) * s.cfg.runs
	// Group by group so each table's rounds stay together.
	var groups []string
	seen := map[string]bool{}
	for _, t := range s.tasks {
		if !seen[t.group] {
			seen[t.group] = true
			groups = append(groups, t.group)
		}
	}
	for _, g := range groups {
		var gt []task
		for _, t := range s.tasks {
			if t.group == g {
				gt = append(gt, t)
			}
		}
		for r := 1; r <= s.cfg.runs; r++ {
			// Every other round runs the group backwards, so that the
			// machine's drift within a round does not always favour the
			// program that runs first of two compared ones: for the
			// per-round ratios, A then B, then B then A.
			order := slices.Clone(gt)
			if r%2 == 0 {
				slices.Reverse(order)
			}
			for _, t := range order {
				n++
				el := time.Since(s.started)
				left := total - done
				if done > 0 {
					left = time.Duration(float64(left) * float64(el) / float64(done))
				}
				fmt.Printf("[%3d/%d] %-8s %-44s round %d/%d  elapsed %s, ~%s left\n", n, all, g, t.label, r, s.cfg.runs,
					el.Round(time.Second), left.Round(time.Second))
				smp, err := t.run()
				if err != nil {
					// One retry: on a shared machine a single stall should
					// not cost a point of an unattended run.
					fmt.Printf("  failed (%v); retrying once\n", err)
					smp, err = t.run()
				}
				if err != nil {
					s.failures++
					fmt.Printf("  FAILED: %v\n", err)
				}
				s.add(g, smp)
				done += t.est
			}
		}
	}
	fmt.Printf("suite %s: done in %s\n", s.cfg.name, time.Since(s.started).Round(time.Second))
}

// stats returns the median, min and max of v.
func stats(v []float64) (med, lo, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	n := len(c)
	med = c[n/2]
	if n%2 == 0 {
		med = (c[n/2-1] + c[n/2]) / 2
	}
	return med, c[0], c[n-1]
}
