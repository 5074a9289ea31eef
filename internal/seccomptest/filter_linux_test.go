package seccomptest

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// setup calls io_uring_setup(2, zeroed params) and closes any ring it gets.
func setup() unix.Errno {
	var params [120]byte // sizeof(struct io_uring_params)
	fd, _, e := unix.Syscall(unix.SYS_IO_URING_SETUP, 2, uintptr(unsafe.Pointer(&params)), 0)
	if e == 0 {
		unix.Close(int(fd))
	}
	return e
}

// enter calls io_uring_enter on fd -1: the kernel answers EBADF, a filter
// answers first.
func enter() unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_ENTER, ^uintptr(0), 0, 0, 0, 0, 0)
	return e
}

func register() unix.Errno {
	_, _, e := unix.Syscall6(unix.SYS_IO_URING_REGISTER, ^uintptr(0), 0, 0, 0, 0, 0)
	return e
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ENOSYS, EPERM, Kill, Interrupt} {
		got, err := ParseMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v; want %v", m.String(), got, err, m)
		}
	}
	for _, s := range []string{"", "ENOSYS", "allow", "kill "} {
		if _, err := ParseMode(s); err == nil {
			t.Errorf("ParseMode(%q) succeeded", s)
		}
	}
}

func TestProgram(t *testing.T) {
	if _, err := program(0); err == nil {
		t.Error("program(0) succeeded")
	}
	for _, tc := range []struct {
		mode Mode
		deny uint32
	}{
		{ENOSYS, unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{EPERM, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{Kill, unix.SECCOMP_RET_KILL_PROCESS},
	} {
		p, err := program(tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		// Walk the program the way the kernel would for a few inputs.
		for _, in := range []struct {
			arch, nr uint32
			want     uint32
		}{
			{auditArch, unix.SYS_IO_URING_SETUP, tc.deny},
			{auditArch, unix.SYS_IO_URING_ENTER, tc.deny},
			{auditArch, unix.SYS_IO_URING_REGISTER, tc.deny},
			{auditArch, unix.SYS_GETPID, unix.SECCOMP_RET_ALLOW},
			{auditArch, unix.SYS_WRITE, unix.SECCOMP_RET_ALLOW},
			{0x40000003, unix.SYS_IO_URING_SETUP, unix.SECCOMP_RET_ALLOW}, // foreign arch
		} {
			if got := run(t, p, in.arch, in.nr); got != in.want {
				t.Errorf("%v: arch %#x nr %d -> %#x, want %#x", tc.mode, in.arch, in.nr, got, in.want)
			}
		}
	}
}

// run interprets the subset of classic BPF that program emits.
func run(t *testing.T, p []unix.SockFilter, arch, nr uint32) uint32 {
	var a uint32
	for pc := 0; pc < len(p); pc++ {
		in := p[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			switch in.K {
			case offNr:
				a = nr
			case offArch:
				a = arch
			default:
				t.Fatalf("load from offset %d", in.K)
			}
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			if a == in.K {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("unexpected opcode %#x", in.Code)
		}
	}
	t.Fatal("program fell off the end")
	return 0
}

// TestDeny re-executes the test binary under each mode and lets
// TestFilteredChild check the filter from the inside.
func TestDeny(t *testing.T) {
	if _, ok := Installed(); ok {
		t.Skip("parent-only test")
	}
	if errno := setup(); errno != 0 {
		// Without a working io_uring the ENOSYS/EPERM answers could come
		// from the kernel rather than the filter and prove nothing.
		t.Skipf("io_uring_setup fails unfiltered (%v); cannot tell the filter's answer apart", errno)
	}
	for _, mode := range []Mode{ENOSYS, EPERM, Kill} {
		t.Run(mode.String(), func(t *testing.T) {
			out, err := ReexecUnder(t, mode, "^TestFilteredChild$")
			if mode == Kill {
				if !KilledBy(err, syscall.SIGSYS) {
					t.Fatalf("child was not killed by SIGSYS: %v\n%s", err, out)
				}
				if !strings.Contains(out, "about to call io_uring_setup") {
					t.Fatalf("child died before reaching io_uring_setup:\n%s", out)
				}
				return
			}
			if err != nil {
				t.Fatalf("child failed: %v\n%s", err, out)
			}
			if !strings.Contains(out, "--- PASS: TestFilteredChild") {
				t.Fatalf("child did not pass:\n%s", out)
			}
		})
	}
}

// TestFilteredChild runs only in a child started by TestDeny.
func TestFilteredChild(t *testing.T) {
	mode, ok := Installed()
	if !ok {
		t.Skip("runs only in a child re-executed under a filter")
	}

	// TSYNC put every thread under the filter, not only the one that
	// installed it.
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(tasks) < 2 {
		t.Fatalf("want several threads to check, got %d (%v)", len(tasks), err)
	}
	for _, p := range tasks {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited meanwhile
		}
		if !strings.Contains(string(b), "\nSeccomp:\t2\n") {
			t.Errorf("%s: thread not in seccomp filter mode", p)
		}
	}

	// Other syscalls still work.
	if pid, _, e := unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0); e != 0 || int(pid) != os.Getpid() {
		t.Fatalf("getpid: %d, %v", pid, e)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if n, err := unix.Write(p[1], []byte("ok")); n != 2 || err != nil {
		t.Fatalf("pipe write: %d, %v", n, err)
	}

	if mode == Kill {
		t.Log("about to call io_uring_setup")
		os.Stdout.Sync()
		setup()
		t.Fatal("io_uring_setup returned under a Kill filter")
	}
	want := unix.ENOSYS
	if mode == EPERM {
		want = unix.EPERM
	}
	if got := setup(); got != want {
		t.Errorf("io_uring_setup: %v, want %v", got, want)
	}
	if got := enter(); got != want {
		t.Errorf("io_uring_enter: %v, want %v", got, want)
	}
	if got := register(); got != want {
		t.Errorf("io_uring_register: %v, want %v", got, want)
	}
	// From many threads at once, not just this goroutine's.
	var wg sync.WaitGroup
	errs := make(chan unix.Errno, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // exits with the goroutine: a fresh thread next time
			errs <- setup()
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		if e != want {
			t.Errorf("io_uring_setup on another thread: %v, want %v", e, want)
		}
	}
}
