package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gonum.org/v1/plot/vg"
)

// soakServer is one server under the soak test and its samples.
type soakServer struct {
	name, addr, metrics string
	kind                string // "http" or "echo"
	p                   *proc
	t, rss, fds, gor    []float64
}

type soakStats struct {
	ok, wrong, connErr, aborts atomic.Int64
	firstWrong                 atomic.Value
}

func (st *soakStats) bad(format string, a ...any) {
	if st.wrong.Add(1) == 1 {
		st.firstWrong.Store(fmt.Sprintf(format, a...))
	}
}

// soak runs the file server and the echo servers under clients that
// connect, abort and reset at random, samples RSS, open fds and goroutines
// every second, and fails if any grows without bound or any answer is
// wrong. It returns the exit code.
func soak(dur time.Duration, which string) int {
	s := newSuite(full)
	var err error
	if s.tmp, err = os.MkdirTemp("", "ringo-soak-"); err != nil {
		fatal(err)
	}
	defer os.RemoveAll(s.tmp)
	os.MkdirAll(binDir, 0o755)
	abs, _ := filepath.Abs(binDir)
	if which == "peers" || which == "peers-leaky" {
		s.goBuild("httpfs", ".", filepath.Join(abs, "httpfs"), "./cmd/httpfs")
		s.goBuild("stdecho", ".", filepath.Join(abs, "stdecho"), "./cmd/stdecho")
	} else {
		s.goBuild("fileserver", rootDir, filepath.Join(abs, "fileserver"), "./examples/fileserver")
		s.goBuild("echo", rootDir, filepath.Join(abs, "echo"), "./examples/echo")
	}
	missing := 0
	for p, why := range s.built {
		if why != "" {
			fmt.Printf("soak: %s: not built: %s (its soak is skipped; the soak fails)\n", p, why)
			missing++
		}
	}
	root := filepath.Join(s.tmp, "www")
	os.MkdirAll(root, 0o755)
	contents := map[string][]byte{}
	for name, n := range fileSizes {
		b := make([]byte, n)
		crand.Read(b)
		contents[name] = b
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			fatal(err)
		}
	}
	addr := func() string { return fmt.Sprintf("127.0.0.1:%d", nextPort()) }
	var servers []*soakServer
	if strings.HasPrefix(which, "peers") {
		a, m := addr(), addr()
		servers = append(servers, &soakServer{name: "go http.FileServer", kind: "http", addr: a, metrics: m})
		a2, m2 := addr(), addr()
		servers = append(servers, &soakServer{name: "go stdlib echo", kind: "echo", addr: a2, metrics: m2})
	} else {
		servers = append(servers,
			&soakServer{name: "ringo fileserver", kind: "http", addr: addr(), metrics: addr()},
			&soakServer{name: "ringo echo callback", kind: "echo", addr: addr(), metrics: addr()},
			&soakServer{name: "ringo echo conn", kind: "echo", addr: addr(), metrics: addr()})
	}
	var runnable []*soakServer
	for _, sv := range servers {
		prog := map[string]string{"http": "fileserver", "echo": "echo"}[sv.kind]
		if strings.HasPrefix(which, "peers") {
			prog = map[string]string{"http": "httpfs", "echo": "stdecho"}[sv.kind]
		}
		if s.built[prog] == "" {
			runnable = append(runnable, sv)
		}
	}
	servers = runnable
	if len(servers) == 0 {
		fmt.Println("soak: FAIL: nothing to soak")
		return 1
	}
	for _, sv := range servers {
		var args []string
		switch {
		case strings.HasPrefix(which, "peers") && sv.kind == "http":
			args = []string{bin("httpfs"), "-root", root, "-addr", sv.addr, "-metrics", sv.metrics}
		case strings.HasPrefix(which, "peers"):
			args = []string{bin("stdecho"), "-addr", sv.addr, "-metrics", sv.metrics}
			if which == "peers-leaky" {
				args = append(args, "-leak")
			}
		case sv.kind == "http":
			args = []string{bin("fileserver"), "-root", root, "-addr", sv.addr, "-backend", "auto", "-loops", "1", "-metrics", sv.metrics}
		default:
			api := strings.TrimPrefix(sv.name, "ringo echo ")
			args = []string{bin("echo"), "-api", api, "-backend", "auto", "-loops", "1", "-addr", sv.addr, "-metrics", sv.metrics}
		}
		fmt.Printf("soak: starting %s: taskset -c %s %s\n", sv.name, serverCPU, strings.Join(args, " "))
		p, err := s.startServer(strings.ReplaceAll(sv.name, " ", "_"), sv.addr, nil, args...)
		if err != nil {
			fmt.Println("soak:", err)
			for _, o := range servers {
				if o.p != nil {
					o.p.stop()
				}
			}
			return 1
		}
		sv.p = p
	}
	st := &soakStats{}
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var wg sync.WaitGroup
	for i, sv := range servers {
		for w := 0; w < 16; w++ {
			rng := rand.New(rand.NewPCG(uint64(i), uint64(w)))
			wg.Go(func() {
				if sv.kind == "http" {
					httpWorker(ctx, sv.addr, rng, contents, st)
				} else {
					echoWorker(ctx, sv.addr, rng, st)
				}
			})
		}
	}
	fmt.Printf("soak: %d servers under %d clients each for %s; sampling every second\n", len(servers), 16, dur)
	start := time.Now()
	tick := time.NewTicker(time.Second)
	died := ""
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		el := time.Since(start).Seconds()
		for _, sv := range servers {
			if !sv.p.alive() {
				died = sv.name
				cancel()
				break loop
			}
			pid := sv.p.cmd.Process.Pid
			sv.t = append(sv.t, el)
			sv.rss = append(sv.rss, rssMiB(pid))
			sv.fds = append(sv.fds, fdCount(pid))
			sv.gor = append(sv.gor, goroutines(sv.metrics))
		}
		if n := len(servers[0].t); n%30 == 0 {
			var parts []string
			for _, sv := range servers {
				parts = append(parts, fmt.Sprintf("%s rss=%.1fMiB fds=%.0f goroutines=%s", sv.name, sv.rss[n-1], sv.fds[n-1], num(sv.gor[n-1])))
			}
			fmt.Printf("soak: %s elapsed, %s left: ok=%d wrong=%d aborted=%d connect errors=%d; %s\n",
				time.Since(start).Round(time.Second), (dur - time.Since(start)).Round(time.Second),
				st.ok.Load(), st.wrong.Load(), st.aborts.Load(), st.connErr.Load(), strings.Join(parts, "; "))
		}
	}
	tick.Stop()
	wg.Wait()
	for _, sv := range servers {
		sv.p.stop()
	}
	fail := missing > 0
	var doc strings.Builder
	fmt.Fprintf(&doc, "%s\n\n## Soak test (%s, %s)\n\n", soakBegin, dur, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&doc, "`make soak SOAK_DURATION=%s`: servers on CPU 1, 16 clients per server on CPU 0 doing checked exchanges, aborts and resets at random.\n\n", dur)
	fmt.Fprintf(&doc, "- %d good exchanges, %d aborted or reset on purpose, %d wrong, %d connect errors\n",
		st.ok.Load(), st.aborts.Load(), st.wrong.Load(), st.connErr.Load())
	fmt.Printf("soak: %s: %d good exchanges, %d aborted/reset on purpose, %d wrong, %d connect errors\n",
		time.Since(start).Round(time.Second), st.ok.Load(), st.aborts.Load(), st.wrong.Load(), st.connErr.Load())
	if died != "" {
		fmt.Printf("soak: FAIL: %s exited during the soak\n", died)
		fail = true
	}
	if st.wrong.Load() > 0 {
		fmt.Printf("soak: FAIL: %d wrong responses; first: %v\n", st.wrong.Load(), st.firstWrong.Load())
		fail = true
	}
	if c := st.connErr.Load(); c > 0 && c*100 > st.ok.Load() {
		fmt.Printf("soak: FAIL: %d connect errors (more than 1%% of exchanges)\n", c)
		fail = true
	}
	for _, sv := range servers {
		for _, m := range []struct {
			name     string
			v        []float64
			rel, abs float64
		}{{"RSS MiB", sv.rss, 0.25, 16}, {"open fds", sv.fds, 0.10, 32}, {"goroutines", sv.gor, 0.10, 64}} {
			msg, ok := bounded(m.v, m.rel, m.abs)
			verdict := "ok"
			if !ok {
				verdict = "FAIL"
				fail = true
			}
			fmt.Printf("soak: %-20s %-10s %s: %s\n", sv.name, m.name, verdict, msg)
			fmt.Fprintf(&doc, "- %s, %s: %s (%s)\n", sv.name, m.name, verdict, msg)
		}
	}
	// Only the real soak replaces the chart in docs/.
	out := filepath.Join(rootDir, "docs", "soak.png")
	if which != "ringo" {
		os.MkdirAll("out", 0o755)
		out = filepath.Join("out", "soak.png")
	}
	if err := soakChart(out, servers, dur); err != nil {
		fmt.Println("soak: chart:", err)
	} else {
		fmt.Println("soak: wrote", out)
	}
	if which == "ringo" {
		verdict := "PASS"
		if fail {
			verdict = "FAIL"
		}
		for p, why := range s.built {
			if why != "" {
				fmt.Fprintf(&doc, "- %s: not built: %s\n", p, why)
			}
		}
		fmt.Fprintf(&doc, "\nVerdict: %s\n\n![soak samples](soak.png)\n\n%s\n", verdict, soakEnd)
		if err := writeMarked(filepath.Join(rootDir, "docs", "BENCHMARKS.md"), soakBegin, soakEnd, doc.String()); err != nil {
			fmt.Println("soak:", err)
		}
	}
	if fail {
		fmt.Println("soak: FAIL")
		return 1
	}
	fmt.Println("soak: PASS")
	return 0
}

// bounded compares the maximum of the last third of v with the maximum of
// the first third: growth beyond rel (a fraction) plus abs fails.
func bounded(v []float64, rel, abs float64) (string, bool) {
	var clean []float64
	for _, x := range v {
		if !math.IsNaN(x) {
			clean = append(clean, x)
		}
	}
	if len(clean) < 6 {
		if len(v) > 0 && len(clean) == 0 {
			return "not published by the server (no samples)", true
		}
		return fmt.Sprintf("only %d samples, too few to judge", len(clean)), true
	}
	n := len(clean)
	first, last := maxOf(clean[:n/3]), maxOf(clean[n-n/3:])
	limit := first*(1+rel) + abs
	return fmt.Sprintf("first third max %.1f, last third max %.1f, limit %.1f", first, last, limit), last <= limit
}

func maxOf(v []float64) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	return m
}

func rssMiB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return math.NaN()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return kb / 1024
		}
	}
	return math.NaN()
}

func fdCount(pid int) float64 {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return math.NaN()
	}
	return float64(len(ents))
}

var metricsClient = &http.Client{Timeout: 2 * time.Second}

// goroutines reads "goroutines" from the server's expvar endpoint.
func goroutines(addr string) float64 {
	resp, err := metricsClient.Get("http://" + addr + "/debug/vars")
	if err != nil {
		return math.NaN()
	}
	defer resp.Body.Close()
	var v map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return math.NaN()
	}
	var n float64
	if err := json.Unmarshal(v["goroutines"], &n); err != nil {
		return math.NaN()
	}
	return n
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// echoWorker: normal exchanges (checked byte for byte), aborts (close with
// data unread) and resets (RST) at random.
func echoWorker(ctx context.Context, addr string, rng *rand.Rand, st *soakStats) {
	msg := make([]byte, 16<<10)
	got := make([]byte, 16<<10)
	for ctx.Err() == nil {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			st.connErr.Add(1)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		switch rng.IntN(5) {
		case 0, 1, 2:
			for k := rng.IntN(20) + 1; k > 0 && ctx.Err() == nil; k-- {
				n := rng.IntN(len(msg)) + 1
				for i := range n {
					msg[i] = byte(rng.Uint32())
				}
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := c.Write(msg[:n]); err != nil {
					st.bad("echo %s: write: %v", addr, err)
					break
				}
				if _, err := io.ReadFull(c, got[:n]); err != nil {
					st.bad("echo %s: read %d bytes: %v", addr, n, err)
					break
				}
				if !bytes.Equal(msg[:n], got[:n]) {
					st.bad("echo %s: %d bytes echoed differently", addr, n)
					break
				}
				st.ok.Add(1)
			}
			c.Close()
		case 3:
			c.Write(msg[:rng.IntN(len(msg))+1])
			c.Close()
			st.aborts.Add(1)
		default:
			c.Write(msg[:rng.IntN(len(msg))+1])
			reset(c)
			st.aborts.Add(1)
		}
	}
}

// httpWorker: keep-alive GETs checked byte for byte (and a 404), requests
// cut off half-way, and responses reset half-read, at random.
func httpWorker(ctx context.Context, addr string, rng *rand.Rand, contents map[string][]byte, st *soakStats) {
	tr := &http.Transport{MaxIdleConnsPerHost: 2}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	names := []string{"1k", "16k", "1m"}
	for ctx.Err() == nil {
		switch rng.IntN(6) {
		case 0, 1, 2:
			name := names[rng.IntN(len(names))]
			resp, err := cl.Get("http://" + addr + "/" + name)
			if err != nil {
				if ctx.Err() == nil {
					st.bad("GET %s: %v", name, err)
				}
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, contents[name]) {
				st.bad("GET %s: status %d, %d bytes, err %v", name, resp.StatusCode, len(body), err)
				continue
			}
			st.ok.Add(1)
		case 3:
			resp, err := cl.Get("http://" + addr + "/missing")
			if err != nil {
				if ctx.Err() == nil {
					st.bad("GET missing: %v", err)
				}
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 404 {
				st.bad("GET missing: status %d, want 404", resp.StatusCode)
				continue
			}
			st.ok.Add(1)
		case 4:
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				st.connErr.Add(1)
				continue
			}
			c.Write([]byte("GET /1m HTTP/1.1\r\nHost: x\r\n\r\n"))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			c.Read(make([]byte, rng.IntN(4096)+1))
			reset(c)
			st.aborts.Add(1)
		default:
			c, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				st.connErr.Add(1)
				continue
			}
			req := "GET /16k HTTP/1.1\r\nHost: x\r\n\r\n"
			c.Write([]byte(req[:rng.IntN(len(req)-1)+1]))
			if rng.IntN(2) == 0 {
				reset(c)
			} else {
				c.Close()
			}
			st.aborts.Add(1)
		}
	}
}

func soakChart(path string, servers []*soakServer, dur time.Duration) error {
	var facets []lineFacet
	for _, m := range []struct {
		title, unit string
		get         func(*soakServer) []float64
	}{
		{"Resident memory", "RSS (MiB)", func(s *soakServer) []float64 { return s.rss }},
		{"Open file descriptors", "fds (/proc/PID/fd)", func(s *soakServer) []float64 { return s.fds }},
		{"Goroutines", "goroutines (expvar)", func(s *soakServer) []float64 { return s.gor }},
	} {
		f := lineFacet{title: fmt.Sprintf("Soak %s: %s", dur, m.title), xlabel: "time (s)", ylabel: m.unit}
		for _, sv := range servers {
			f.series = append(f.series, sv.name)
			f.xs = append(f.xs, sv.t)
			f.ys = append(f.ys, m.get(sv))
		}
		facets = append(facets, f)
	}
	return lineChart(path, facets, 15*vg.Inch, 4.5*vg.Inch)
}
