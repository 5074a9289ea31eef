package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	stdnet "net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The random-read files: on the disk (O_DIRECT) and on tmpfs (buffered).
var (
	diskDir = "/var/tmp"
	shmFile = ""
)

func (s *suite) plan(only map[string]bool) {
	want := func(g string) bool { return len(only) == 0 || only[g] }
	if want("nop") {
		s.planNop()
	}
	if want("proactor") {
		s.planProactor()
	}
	if want("echo") {
		s.planEcho()
	}
	if want("idle") {
		s.planIdle()
	}
	if want("fsrand") || want("fsseq") {
		s.planFS(want("fsrand"), want("fsseq"))
	}
	if want("http") {
		s.planHTTP()
	}
}

func (s *suite) addTask(group, label string, est time.Duration, run func() ([]sample, error)) {
	s.tasks = append(s.tasks, task{group: group, label: label, est: est, run: run})
}

func pin(cpu string, args ...string) []string {
	return append([]string{"taskset", "-c", cpu}, args...)
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+(\d+)\s+(.*)$`)

// goBench parses `go test -bench` output into name -> metrics.
func goBench(out string) map[string]map[string]float64 {
	res := map[string]map[string]float64{}
	for _, line := range strings.Split(out, "\n") {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		f := strings.Fields(m[4])
		mm := map[string]float64{}
		for i := 0; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				mm[f[i+1]] = v
			}
		}
		if ns := mm["ns/op"]; ns > 0 {
			mm["ops/s"] = 1e9 / ns
		}
		res[m[1]] = mm
	}
	return res
}

func (s *suite) planNop() {
	const g = "nop"
	bt := s.cfg.benchtime
	if s.have(g, "ringo ring NOP benchmark", "ring.test", "taskset") {
		args := pin(serverCPU, bin("ring.test"), "-test.run", "^$", "-test.bench", "Nop$", "-test.benchtime", bt, "-test.benchmem")
		s.cmd(g, "cd ring && go test -c -o ring.test && "+strings.Join(pin(serverCPU, "./ring.test", "-test.run", "^$", "-test.bench", "Nop$", "-test.benchtime", bt, "-test.benchmem"), " "))
		s.addTask(g, "ringo ring.BenchmarkNop (batch 1, 32, 256)", 4*benchDur(bt)+time.Second, func() ([]sample, error) {
			out, err := output(5*time.Minute, nil, args...)
			var smp []sample
			for name, m := range goBench(out) {
				if b, ok := strings.CutPrefix(name, "Nop/"); ok {
					smp = append(smp, sample{key: b, impl: "ringo", metrics: m})
				}
			}
			if err == nil && len(smp) == 0 {
				err = fmt.Errorf("no benchmark lines in output")
			}
			return smp, err
		})
	}
	if s.have(g, "C liburing NOP loop", "nop_liburing", "taskset") {
		for _, b := range []int{1, 32, 256} {
			args := pin(serverCPU, cbin("nop_liburing"), "-b", strconv.Itoa(b), "-d", fmt.Sprint(s.cfg.nopSecs))
			s.cmd(g, strings.Join(pin(serverCPU, "bench/c/bin/nop_liburing", "-b", strconv.Itoa(b), "-d", fmt.Sprint(s.cfg.nopSecs)), " "))
			s.addTask(g, fmt.Sprintf("C liburing batch=%d", b), time.Duration(s.cfg.nopSecs*float64(time.Second))+100*time.Millisecond, func() ([]sample, error) {
				out, err := output(time.Minute, nil, args...)
				m := kv(out)
				if err != nil || m["ops_per_sec"] == 0 {
					return nil, fmt.Errorf("nop_liburing: %v %q", err, out)
				}
				return []sample{{key: fmt.Sprintf("batch=%d", b), impl: "liburing", metrics: map[string]float64{
					"ops/s": m["ops_per_sec"], "ns/op": m["ns_per_op"], "allocs/op": 0}}}, nil
			})
		}
	}
}

func benchDur(bt string) time.Duration {
	d, err := time.ParseDuration(bt)
	if err != nil {
		return time.Second
	}
	return d
}

func (s *suite) planProactor() {
	const g = "proactor"
	if !s.have(g, "ringo proactor benchmarks", "proactor.test", "taskset") {
		return
	}
	bt := s.cfg.benchtime
	re := "NopCallback|NopBlocking|Submitters|GoroutineWake"
	args := pin(serverCPU, bin("proactor.test"), "-test.run", "^$", "-test.bench", re, "-test.benchtime", bt, "-test.benchmem")
	s.cmd(g, "cd proactor && go test -c -o proactor.test && "+strings.Join(pin(serverCPU, "./proactor.test", "-test.run", "^$", "-test.bench", "'"+re+"'", "-test.benchtime", bt, "-test.benchmem"), " "))
	s.addTask(g, "ringo proactor (4 drivers x 3 benchmarks)", 14*(benchDur(bt)+300*time.Millisecond), func() ([]sample, error) {
		out, err := output(10*time.Minute, nil, args...)
		var smp []sample
		for name, m := range goBench(out) {
			key, impl, _ := strings.Cut(name, "/")
			if key == "Submitters" {
				// "uring/goroutines=1000"
				d, n, _ := strings.Cut(impl, "/")
				key, impl = "Submitters "+strings.TrimPrefix(n, "goroutines="), d
			}
			if impl == "" {
				impl = "Go runtime"
			}
			smp = append(smp, sample{key: key, impl: impl, metrics: m})
		}
		if err == nil && len(smp) == 0 {
			err = fmt.Errorf("no benchmark lines in output")
		}
		return smp, err
	})
}

// echoServer is one echo implementation: how to start it on a port.
type echoServer struct {
	name  string
	progs []string
	args  func(port int) []string
}

func (s *suite) echoServers() []echoServer {
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	var v []echoServer
	for _, api := range []string{"callback", "conn"} {
		for _, be := range []string{"uring", "epoll"} {
			v = append(v, echoServer{"ringo-" + api + "-" + be, []string{"echo"}, func(p int) []string {
				return []string{bin("echo"), "-api", api, "-backend", be, "-loops", "1", "-addr", addr(p)}
			}})
		}
	}
	v = append(v,
		echoServer{"go-stdlib", []string{"stdecho"}, func(p int) []string { return []string{bin("stdecho"), "-addr", addr(p)} }},
		echoServer{"netpoll", []string{"netpollecho"}, func(p int) []string { return []string{bin("netpollecho"), "-addr", addr(p)} }},
		echoServer{"c-epoll", []string{"echo_epoll"}, func(p int) []string {
			return []string{cbin("echo_epoll"), "-a", "127.0.0.1", "-p", strconv.Itoa(p)}
		}},
		echoServer{"c-liburing", []string{"echo_uring"}, func(p int) []string {
			return []string{cbin("echo_uring"), "-a", "127.0.0.1", "-p", strconv.Itoa(p)}
		}},
	)
	return v
}

func (s *suite) planEcho() {
	const g = "echo"
	if !s.have(g, "echo load client", "echo_client", "taskset") {
		return
	}
	d, w := s.cfg.echoDur.Seconds(), s.cfg.echoWarm.Seconds()
	s.cmd(g, fmt.Sprintf("server: taskset -c %s <server> (e.g. bench/bin/echo -api callback -backend uring -loops 1 -addr 127.0.0.1:PORT; bench/c/bin/echo_epoll -p PORT)", serverCPU))
	s.cmd(g, fmt.Sprintf("client: taskset -c %s bench/c/bin/echo_client -a 127.0.0.1 -p PORT -c CONNS -s 64 -d %g -w %g", clientCPU, d, w))
	for _, conns := range s.cfg.echoConns {
		for _, sv := range s.echoServers() {
			if !s.have(g, sv.name, sv.progs...) {
				continue
			}
			s.addTask(g, fmt.Sprintf("conns=%d %s", conns, sv.name), s.cfg.echoDur+s.cfg.echoWarm+500*time.Millisecond, func() ([]sample, error) {
				port := nextPort()
				p, err := s.startServer(sv.name, fmt.Sprintf("127.0.0.1:%d", port), nil, sv.args(port)...)
				if err != nil {
					return nil, err
				}
				defer p.stop()
				pid := p.cmd.Process.Pid
				c := exec.Command("taskset", "-c", clientCPU, cbin("echo_client"), "-a", "127.0.0.1", "-p", strconv.Itoa(port),
					"-c", strconv.Itoa(conns), "-s", "64", "-d", fmt.Sprint(d), "-w", fmt.Sprint(w))
				var out, errb bytes.Buffer
				c.Stdout, c.Stderr = &out, &errb
				start := time.Now()
				if err := c.Start(); err != nil {
					return nil, err
				}
				// Sample the server's CPU time over the measured window:
				// from after connecting and warm-up to the client's exit.
				time.Sleep(s.cfg.echoWarm + 50*time.Millisecond + time.Duration(conns)*50*time.Microsecond)
				cpu0, t0 := cpuSeconds(pid), time.Now()
				werr := c.Wait()
				cpu1, t1 := cpuSeconds(pid), time.Now()
				if werr != nil {
					return nil, fmt.Errorf("echo_client against %s: %v: %s", sv.name, werr, firstLine(errb.String()))
				}
				_ = start
				m := kv(out.String())
				if m["msgs_per_sec"] == 0 {
					return nil, fmt.Errorf("echo_client: no result: %q", out.String())
				}
				cpuPerMsg := (cpu1 - cpu0) * 1e6 / (m["msgs_per_sec"] * t1.Sub(t0).Seconds())
				if !p.alive() {
					return nil, fmt.Errorf("%s exited during the run", sv.name)
				}
				return []sample{{key: strconv.Itoa(conns), impl: sv.name, metrics: map[string]float64{
					"msgs/s": m["msgs_per_sec"], "p50 µs": m["p50_us"], "p99 µs": m["p99_us"], "CPU µs/msg": cpuPerMsg}}}, nil
			})
		}
	}
}

// planIdle measures what an idle connection costs each echo server: RSS
// before and after idleConns connections that each echoed one byte (so the
// server really set them up) and then stay silent.
func (s *suite) planIdle() {
	const g = "idle"
	n := s.cfg.idleConns
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		// The servers inherit it; the suite holds the client ends.
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	if rl.Cur < uint64(n)+200 {
		s.skip(g, "idle connections", fmt.Sprintf("RLIMIT_NOFILE %d is below %d connections", rl.Cur, n))
		return
	}
	s.cmd(g, fmt.Sprintf("server: taskset -c %s <echo server> as in the echo table; the suite opens %d connections, echoes one byte on each, waits 1 s, and reads VmRSS from /proc/PID/status before and after", serverCPU, n))
	for _, sv := range s.echoServers() {
		if sv.name == "netpoll" || !s.have(g, sv.name, sv.progs...) {
			continue
		}
		s.addTask(g, fmt.Sprintf("%d idle %s", n, sv.name), 15*time.Second, func() ([]sample, error) {
			port := nextPort()
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			p, err := s.startServer(sv.name, addr, nil, sv.args(port)...)
			if err != nil {
				return nil, err
			}
			defer p.stop()
			pid := p.cmd.Process.Pid
			time.Sleep(300 * time.Millisecond)
			rss0 := rssKiB(pid)
			conns := make([]stdnet.Conn, 0, n)
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range n {
				c, err := stdnet.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					return nil, fmt.Errorf("connection %d: %v", len(conns), err)
				}
				conns = append(conns, c)
			}
			one := []byte{'x'}
			for _, c := range conns {
				if _, err := c.Write(one); err != nil {
					return nil, err
				}
			}
			for i, c := range conns {
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(c, one); err != nil {
					return nil, fmt.Errorf("echo on connection %d: %v", i, err)
				}
			}
			time.Sleep(time.Second)
			rss1 := rssKiB(pid)
			if !p.alive() {
				return nil, fmt.Errorf("%s exited during the run", sv.name)
			}
			return []sample{{key: strconv.Itoa(n), impl: sv.name, metrics: map[string]float64{
				"KiB/conn": (rss1 - rss0) / float64(n), "RSS MiB": rss1 / 1024}}}, nil
		})
	}
}

// rssKiB is VmRSS of pid.
func rssKiB(pid int) float64 { return rssMiB(pid) * 1024 }

// makeFile writes size random bytes to path unless a file of that size is
// already there (the disk file is kept between runs: 1 GiB takes a while).
func makeFile(path string, size int64) error {
	if st, err := os.Stat(path); err == nil && st.Size() == size {
		return nil
	}
	fmt.Printf("  writing %d MiB to %s\n", size>>20, path)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		rand.Read(buf)
		if _, err := f.Write(buf[:min(int64(len(buf)), size-off)]); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type fioDir struct {
	IOPS    float64 `json:"iops"`
	BWBytes float64 `json:"bw_bytes"`
}

type fioJob struct {
	Jobs []struct {
		Read  fioDir `json:"read"`
		Write fioDir `json:"write"`
	} `json:"jobs"`
}

// runFio runs fio with JSON output and returns (read+write) IOPS and MB/s.
func runFio(args []string) (iops, mbps float64, err error) {
	out, err := output(10*time.Minute, nil, args...)
	if err != nil {
		return 0, 0, err
	}
	// fio may print warnings before the JSON.
	if i := strings.IndexByte(out, '{'); i > 0 {
		out = out[i:]
	}
	var j fioJob
	if err := json.Unmarshal([]byte(out), &j); err != nil || len(j.Jobs) == 0 {
		return 0, 0, fmt.Errorf("fio output: %v", err)
	}
	r, w := j.Jobs[0].Read, j.Jobs[0].Write
	return r.IOPS + w.IOPS, (r.BWBytes + w.BWBytes) / 1e6, nil
}

func (s *suite) planFS(rnd, seq bool) {
	size := s.cfg.fsSize
	disk := filepath.Join(diskDir, fmt.Sprintf("ringo-bench-%d", size))
	shmFile = fmt.Sprintf("/dev/shm/ringo-bench-%d", size)
	wfile := filepath.Join(diskDir, "ringo-bench-write")
	prepared := false
	prep := func() error {
		if prepared {
			return nil
		}
		prepared = true
		if err := makeFile(disk, size); err != nil {
			return err
		}
		return makeFile(shmFile, size)
	}
	secs := fmt.Sprintf("%g", s.cfg.fsDur.Seconds())
	if rnd {
		const g = "fsrand"
		s.cmd(g, fmt.Sprintf("fio: taskset -c 1 fio --name=r --filename=FILE --size=%d --rw=randread --bs=4k --direct=1|0 --ioengine=io_uring --iodepth=QD --runtime=%ss --time_based --norandommap --randrepeat=0 --output-format=json", size, secs))
		s.cmd(g, "fio psync: the same with --ioengine=psync --iodepth=1 --numjobs=QD --thread --group_reporting")
		s.cmd(g, fmt.Sprintf("ringo/os: taskset -c 1 bench/bin/fsbench -mode rand -impl goroutines|batch|os -file FILE [-direct] -qd QD -dur %ss -backend uring", secs))
		for _, place := range []struct {
			name   string
			direct bool
		}{{"O_DIRECT disk", true}, {"tmpfs buffered", false}} {
			for _, qd := range s.cfg.fsQDs {
				key := fmt.Sprintf("%s QD %d", place.name, qd)
				file := func() string {
					if place.direct {
						return disk
					}
					return shmFile
				}
				dflag := "0"
				if place.direct {
					dflag = "1"
				}
				est := s.cfg.fsDur + 300*time.Millisecond
				if s.have(g, "fio", "fio", "taskset") {
					for _, eng := range []string{"io_uring", "psync"} {
						s.addTask(g, key+" fio "+eng, est, func() ([]sample, error) {
							if err := prep(); err != nil {
								return nil, err
							}
							args := pin(serverCPU, "fio", "--name=r", "--filename="+file(), fmt.Sprintf("--size=%d", size),
								"--rw=randread", "--bs=4k", "--direct="+dflag, "--ioengine="+eng, "--runtime="+secs+"s", "--time_based",
								"--norandommap", "--randrepeat=0", "--output-format=json")
							if eng == "psync" {
								args = append(args, "--iodepth=1", fmt.Sprintf("--numjobs=%d", qd), "--thread", "--group_reporting")
							} else {
								args = append(args, fmt.Sprintf("--iodepth=%d", qd))
							}
							iops, _, err := runFio(args)
							if err != nil {
								return nil, err
							}
							return []sample{{key: key, impl: "fio " + eng, metrics: map[string]float64{"IOPS": iops}}}, nil
						})
					}
				}
				if s.have(g, "ringo fs", "fsbench", "taskset") {
					for _, impl := range []struct{ name, arg string }{
						{"ringo batch", "batch"}, {"ringo goroutines", "goroutines"}, {"os.File.ReadAt", "os"}} {
						s.addTask(g, key+" "+impl.name, est, func() ([]sample, error) {
							if err := prep(); err != nil {
								return nil, err
							}
							args := pin(serverCPU, bin("fsbench"), "-mode", "rand", "-impl", impl.arg, "-file", file(),
								"-qd", strconv.Itoa(qd), "-dur", secs+"s", "-backend", "uring")
							if place.direct {
								args = append(args, "-direct")
							}
							out, err := output(5*time.Minute, nil, args...)
							if err != nil {
								return nil, err
							}
							return []sample{{key: key, impl: impl.name, metrics: map[string]float64{"IOPS": kv(out)["iops"]}}}, nil
						})
					}
				}
			}
		}
	}
	if seq {
		const g = "fsseq"
		s.cmd(g, fmt.Sprintf("fio: taskset -c 1 fio --name=s --filename=FILE --rw=read|write --bs=1M --direct=1 --ioengine=io_uring|psync --iodepth=1 --size=%d [--end_fsync=1] --output-format=json", s.cfg.seqSize))
		s.cmd(g, fmt.Sprintf("ringo/os: taskset -c 1 bench/bin/fsbench -mode seqread|seqwrite -impl goroutines|os -direct -file FILE -size %d", s.cfg.seqSize))
		for _, op := range []string{"read", "write"} {
			key := "read 1 MiB"
			if op == "write" {
				key = "write 1 MiB + fsync"
			}
			n := s.cfg.seqSize
			est := time.Duration(float64(n)/500e6*float64(time.Second)) + 300*time.Millisecond
			if s.have(g, "fio", "fio", "taskset") {
				for _, eng := range []string{"io_uring", "psync"} {
					s.addTask(g, key+" fio "+eng, est, func() ([]sample, error) {
						if err := prep(); err != nil {
							return nil, err
						}
						f := disk
						args := []string{"--rw=read"}
						if op == "write" {
							f, args = wfile, []string{"--rw=write", "--end_fsync=1"}
						}
						args = append(pin(serverCPU, "fio", "--name=s", "--filename="+f, fmt.Sprintf("--size=%d", n), "--bs=1M",
							"--direct=1", "--ioengine="+eng, "--iodepth=1", "--output-format=json"), args...)
						_, mbps, err := runFio(args)
						if op == "write" {
							os.Remove(wfile)
						}
						if err != nil {
							return nil, err
						}
						return []sample{{key: key, impl: "fio " + eng, metrics: map[string]float64{"MB/s": mbps}}}, nil
					})
				}
			}
			if s.have(g, "ringo fs", "fsbench", "taskset") {
				for _, impl := range []struct{ name, arg string }{{"ringo", "goroutines"}, {"os.File", "os"}} {
					s.addTask(g, key+" "+impl.name, est, func() ([]sample, error) {
						if err := prep(); err != nil {
							return nil, err
						}
						args := pin(serverCPU, bin("fsbench"), "-mode", "seqread", "-impl", impl.arg, "-direct", "-file", disk,
							"-size", strconv.FormatInt(n, 10), "-backend", "uring")
						if op == "write" {
							args = pin(serverCPU, bin("fsbench"), "-mode", "seqwrite", "-impl", impl.arg, "-direct", "-file", wfile,
								"-size", strconv.FormatInt(n, 10), "-backend", "uring")
						}
						out, err := output(5*time.Minute, nil, args...)
						if op == "write" {
							os.Remove(wfile)
						}
						if err != nil {
							return nil, err
						}
						return []sample{{key: key, impl: impl.name, metrics: map[string]float64{"MB/s": kv(out)["mbps"]}}}, nil
					})
				}
			}
		}
	}
}

var (
	fileSizes = map[string]int{"1k": 1 << 10, "16k": 16 << 10, "1m": 1 << 20}
	sizeLabel = map[string]string{"1k": "1 KiB", "16k": "16 KiB", "1m": "1 MiB"}
)

// httpServer is one file server implementation.
type httpServer struct {
	name  string
	progs []string
	args  func(port int, root string) ([]string, error)
}

func (s *suite) httpServers() []httpServer {
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	v := []httpServer{{"nginx", []string{"nginx"}, func(p int, root string) ([]string, error) {
		return s.nginxConf(p, root)
	}}}
	// ringo next to nginx: a goal's per-round ratio compares two runs,
	// and the closer in time, the less of the machine's drift it holds.
	for _, be := range []string{"uring", "epoll"} {
		v = append(v, httpServer{"ringo-" + be, []string{"fileserver"}, func(p int, root string) ([]string, error) {
			return []string{bin("fileserver"), "-root", root, "-addr", addr(p), "-backend", be, "-loops", "1"}, nil
		}})
	}
	return append(v, httpServer{"go http.FileServer", []string{"httpfs"}, func(p int, root string) ([]string, error) {
		return []string{bin("httpfs"), "-root", root, "-addr", addr(p)}, nil
	}})
}

// nginxConf writes an nginx configuration under the suite's temporary
// prefix: one worker, sendfile, tcp_nopush, no access log, open_file_cache.
func (s *suite) nginxConf(port int, root string) ([]string, error) {
	prefix := filepath.Join(s.tmp, "nginx")
	os.MkdirAll(filepath.Join(prefix, "logs"), 0o755)
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log stderr warn;
events { worker_connections 4096; }
http {
	default_type application/octet-stream;
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 100000000;
	keepalive_timeout 120s;
	open_file_cache max=1000 inactive=60s;
	open_file_cache_valid 60s;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[2]d;
		root %[3]s;
	}
}
`, prefix, port, root)
	path := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	nginx := "nginx"
	if _, err := exec.LookPath(nginx); err != nil {
		nginx = "/usr/sbin/nginx"
	}
	return []string{nginx, "-p", prefix, "-e", "stderr", "-c", path}, nil
}

var (
	reqsRe    = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	doneRe    = regexp.MustCompile(`(\d+) requests in `)
	latRe     = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$`)
	non2xxRe  = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	sockErrRe = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func (s *suite) planHTTP() {
	const g = "http"
	if !s.have(g, "wrk load generator", "wrk", "taskset") {
		return
	}
	root := filepath.Join(s.tmp, "www")
	os.MkdirAll(root, 0o755)
	os.Chmod(s.tmp, 0o755) // nginx's worker runs as an unprivileged user
	contents := map[string][]byte{}
	for name, n := range fileSizes {
		b := make([]byte, n)
		rand.Read(b)
		contents[name] = b
		if err := os.WriteFile(filepath.Join(root, name), b, 0o644); err != nil {
			fatal(err)
		}
	}
	secs := int(s.cfg.httpDur.Seconds())
	s.cmd(g, "nginx: taskset -c 1 nginx -p PREFIX -e stderr -c PREFIX/nginx.conf (worker_processes 1; sendfile on; tcp_nopush on; access_log off; open_file_cache max=1000; keepalive_requests 100000000)")
	s.cmd(g, "Go: taskset -c 1 bench/bin/httpfs -root DIR -addr 127.0.0.1:PORT (http.FileServer, GOMAXPROCS=1)")
	s.cmd(g, "ringo: taskset -c 1 bench/bin/fileserver -root DIR -addr 127.0.0.1:PORT -backend uring|epoll -loops 1")
	s.cmd(g, fmt.Sprintf("load: taskset -c 0 wrk -t1 -cCONNS -d%ds --latency http://127.0.0.1:PORT/FILE (keep-alive)", secs))
	for _, size := range s.cfg.httpSizes {
		for _, conns := range s.cfg.httpConns {
			key := fmt.Sprintf("%s c=%d", sizeLabel[size], conns)
			for _, sv := range s.httpServers() {
				if !s.have(g, sv.name, sv.progs...) {
					continue
				}
				s.addTask(g, key+" "+sv.name, s.cfg.httpDur+700*time.Millisecond, func() ([]sample, error) {
					port := nextPort()
					args, err := sv.args(port, root)
					if err != nil {
						return nil, err
					}
					a := fmt.Sprintf("127.0.0.1:%d", port)
					p, err := s.startServer(strings.ReplaceAll(sv.name, " ", "_"), a, nil, args...)
					if err != nil {
						return nil, err
					}
					defer p.stop()
					// One checked request first: a fast wrong answer is no answer.
					url := fmt.Sprintf("http://%s/%s", a, size)
					resp, err := http.Get(url)
					if err != nil {
						return nil, err
					}
					body, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil || resp.StatusCode != 200 || !bytes.Equal(body, contents[size]) {
						return nil, fmt.Errorf("%s: GET %s: status %d, %d bytes, err %v (want 200, %d identical bytes)",
							sv.name, size, resp.StatusCode, len(body), err, len(contents[size]))
					}
					cb0, ct0 := cpuTicks(clientCPU)
					sb0, _ := cpuTicks(serverCPU)
					out, err := output(time.Duration(secs)*time.Second+time.Minute, nil,
						pin(clientCPU, "wrk", "-t1", fmt.Sprintf("-c%d", conns), fmt.Sprintf("-d%ds", secs), "--latency", url)...)
					if err != nil {
						return nil, err
					}
					cb1, ct1 := cpuTicks(clientCPU)
					sb1, _ := cpuTicks(serverCPU)
					m := map[string]float64{}
					if r := reqsRe.FindStringSubmatch(out); r != nil {
						m["req/s"], _ = strconv.ParseFloat(r[1], 64)
					} else {
						return nil, fmt.Errorf("wrk output: %q", out)
					}
					// Which side limited the run: the load generator's CPU
					// busy share, and the server CPU's busy time (the
					// server and the kernel's work on its CPU) per request.
					if ct1 > ct0 {
						m["client CPU %"] = 100 * (cb1 - cb0) / (ct1 - ct0)
					}
					if r := doneRe.FindStringSubmatch(out); r != nil {
						if n, _ := strconv.ParseFloat(r[1], 64); n > 0 {
							m["server µs/req"] = (sb1 - sb0) / userHz * 1e6 / n
						}
					}
					for _, l := range latRe.FindAllStringSubmatch(out, -1) {
						v, _ := strconv.ParseFloat(l[2], 64)
						v *= map[string]float64{"us": 1e-3, "ms": 1, "s": 1e3}[l[3]]
						m["p"+l[1]+" ms"] = v
					}
					errs := 0.0
					if r := non2xxRe.FindStringSubmatch(out); r != nil {
						v, _ := strconv.ParseFloat(r[1], 64)
						errs += v
					}
					if r := sockErrRe.FindStringSubmatch(out); r != nil {
						for _, x := range r[1:] {
							v, _ := strconv.ParseFloat(x, 64)
							errs += v
						}
					}
					m["errors"] = errs
					if !p.alive() {
						return nil, fmt.Errorf("%s exited during the run", sv.name)
					}
					return []sample{{key: key, impl: sv.name, metrics: m}}, nil
				})
			}
		}
	}
}
