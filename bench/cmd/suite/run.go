package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CPUs: the server under test and the load generator never share one.
const (
	serverCPU = "1"
	clientCPU = "0"
	// userHz is the unit of /proc's CPU times (USER_HZ, 100 on Linux
	// whatever the kernel's HZ).
	userHz = 100
)

// build makes every program the suite runs. A program that does not build
// is recorded with the reason; the comparisons that need it are skipped.
func (s *suite) build() {
	fmt.Println("building peers and ringo programs")
	var err error
	if s.tmp, err = os.MkdirTemp("", "ringo-bench-"); err != nil {
		fatal(err)
	}
	os.MkdirAll(binDir, 0o755)
	if out, err := exec.Command("make", "-s", "-C", "c").CombinedOutput(); err != nil {
		fmt.Printf("  make -C bench/c failed: %s\n", firstLine(string(out)))
	}
	for _, p := range []string{"nop_liburing", "echo_epoll", "echo_uring", "echo_client"} {
		if _, err := os.Stat(filepath.Join(cBin, p)); err != nil {
			s.built[p] = "make -C bench/c did not produce " + p + " (liburing-dev and gcc installed? `make deps-bench`)"
		} else {
			s.built[p] = ""
		}
	}
	abs, _ := filepath.Abs(binDir)
	for _, p := range []string{"stdecho", "netpollecho", "httpfs", "fsbench"} {
		s.goBuild(p, ".", filepath.Join(abs, p), "./cmd/"+p)
	}
	for _, p := range []string{"fileserver", "echo"} {
		s.goBuild(p, rootDir, filepath.Join(abs, p), "./examples/"+p)
	}
	for _, p := range []string{"ring", "proactor"} {
		c := exec.Command("go", "test", "-c", "-o", filepath.Join(abs, p+".test"), "./"+p)
		c.Dir = rootDir
		if out, err := c.CombinedOutput(); err != nil {
			s.built[p+".test"] = "go test -c ./" + p + ": " + firstLine(string(out))
		} else {
			s.built[p+".test"] = ""
		}
	}
	for _, p := range []string{"nginx", "wrk", "fio", "taskset"} {
		if path, err := exec.LookPath(p); err != nil {
			// nginx lives in /usr/sbin, which a non-root PATH may lack.
			if _, err2 := os.Stat("/usr/sbin/" + p); err2 == nil {
				s.built[p] = ""
				continue
			}
			s.built[p] = p + " not installed (`make deps-bench`)"
		} else {
			_ = path
			s.built[p] = ""
		}
	}
	for p, why := range s.built {
		if why != "" {
			fmt.Printf("  %s: not built: %s\n", p, why)
		}
	}
}

func (s *suite) goBuild(name, dir, out, pkg string) {
	c := exec.Command("go", "build", "-o", out, pkg)
	c.Dir = dir
	if b, err := c.CombinedOutput(); err != nil {
		s.built[name] = "go build " + pkg + ": " + firstLine(string(b))
		return
	}
	s.built[name] = ""
}

// have reports whether every program is built, recording a skip if not.
func (s *suite) have(group, what string, progs ...string) bool {
	for _, p := range progs {
		if why, ok := s.built[p]; !ok || why != "" {
			if !ok {
				why = p + " unknown"
			}
			s.skip(group, what, why)
			return false
		}
	}
	return true
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		// go build prints "# pkg" first; the error is on the next line.
		if strings.HasPrefix(s, "#") {
			return firstLine(s[i+1:])
		}
		return s[:i]
	}
	return s
}

func bin(p string) string {
	abs, _ := filepath.Abs(filepath.Join(binDir, p))
	return abs
}

func cbin(p string) string {
	abs, _ := filepath.Abs(filepath.Join(cBin, p))
	return abs
}

// output runs a command to completion within timeout and returns stdout.
func output(timeout time.Duration, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := exec.CommandContext(ctx, args[0], args[1:]...)
	c.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, firstLine(errb.String()))
	}
	return out.String(), nil
}

// proc is a server under test.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

var portSeq = 0

// nextPort returns a fresh free port for each server start, so a listener
// never meets the TIME_WAIT sockets of the previous run. Ports stay below
// the kernel's ephemeral range (32768 and up), where the load generators'
// own sockets live.
func nextPort() int {
	for {
		portSeq++
		p := 12000 + (os.Getpid()*7+portSeq)%20000
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			ln.Close()
			return p
		}
	}
}

// running is every server started and not yet stopped, so that an
// interrupted suite does not leave them behind.
var (
	runningMu sync.Mutex
	running   = map[*proc]bool{}
)

// stopOnSignal stops the running servers and exits on SIGINT or SIGTERM.
func stopOnSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		runningMu.Lock()
		for p := range running {
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
		runningMu.Unlock()
		fmt.Fprintln(os.Stderr, "suite: stopped by", sig)
		os.Exit(1)
	}()
}

// startServer starts args pinned to the server CPU and waits until addr
// accepts connections.
func (s *suite) startServer(name, addr string, env []string, args ...string) (*proc, error) {
	logf := filepath.Join(s.tmp, name+".log")
	f, err := os.Create(logf)
	if err != nil {
		return nil, err
	}
	c := exec.Command("taskset", append([]string{"-c", serverCPU}, args...)...)
	c.Env = append(os.Environ(), env...)
	c.Stdout, c.Stderr = f, f
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{cmd: c, log: logf, done: make(chan struct{})}
	runningMu.Lock()
	running[p] = true
	runningMu.Unlock()
	go func() {
		c.Wait()
		f.Close()
		runningMu.Lock()
		delete(running, p)
		runningMu.Unlock()
		close(p.done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.done:
			b, _ := os.ReadFile(logf)
			return nil, fmt.Errorf("%s exited at start: %s", name, firstLine(string(b)))
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return p, nil
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not listen on %s", name, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether the server is still running.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop ends the server's process group: SIGTERM, then SIGKILL.
func (p *proc) stop() {
	pid := p.cmd.Process.Pid
	syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
}

// cpuSeconds is the user+system CPU time of pid (its threads, not its
// children: every measured server is one process).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the command (which may hold spaces) start after ')'.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	// f[0] is field 3 (state); utime is field 14, stime 15.
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / userHz
}

// cpuTicks is CPU cpu's busy time (user, nice, system, irq, softirq) and
// that plus its idle and iowait time, in USER_HZ ticks, from /proc/stat.
// Steal is in neither: time the hypervisor gave to someone else is not
// time this CPU could have worked.
func cpuTicks(cpu string) (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 8 || f[0] != "cpu"+cpu {
			continue
		}
		v := make([]float64, 8)
		for i := range v {
			v[i], _ = strconv.ParseFloat(f[i], 64)
		}
		// v[1..7]: user nice system idle iowait irq softirq
		busy = v[1] + v[2] + v[3] + v[6] + v[7]
		return busy, busy + v[4] + v[5]
	}
	return 0, 0
}

// kv parses "key=value" words from a program's output line.
func kv(out string) map[string]float64 {
	m := map[string]float64{}
	for _, w := range strings.Fields(out) {
		if k, v, ok := strings.Cut(w, "="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				m[k] = f
			}
		}
	}
	return m
}

func (s *suite) cleanup() {
	os.RemoveAll(s.tmp)
	os.Remove(shmFile)
}
