package main

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/sysinfo"
	"github.com/ringo-io/ringo/proactor"
	"github.com/ringo-io/ringo/ring"
)

// RingFacts is what a real ring, and ringo's own backend choice, said. It is
// gathered by the code the runtime uses (ring.New, Ring.Probe, the register
// calls, proactor.New) and crosses a pipe as JSON when it was gathered in a
// child process.
type RingFacts struct {
	// SetupErrno is ring.New's errno (0 when the ring was created);
	// SetupErr is its error when that error carries no errno.
	SetupErrno int    `json:"setup_errno"`
	SetupErr   string `json:"setup_err"`

	Features uint32 `json:"features"`
	// OpsSource is "probe" (IORING_REGISTER_PROBE answered), "release-table"
	// (5.1-5.5: what ringo assumes from the release), or "none".
	OpsSource  string         `json:"ops_source"`
	LastOp     int            `json:"last_op"` // -1 when unknown
	Supported  []bool         `json:"supported"`
	SetupFlags FlagSet        `json:"setup_flags"`
	Regs       []Registration `json:"regs"`

	// Backend, BackendCode and BackendWhy are proactor's choice;
	// BackendErr is set instead when proactor.New refused to start.
	Backend     string `json:"backend"`
	BackendCode string `json:"backend_code"`
	BackendWhy  string `json:"backend_why"`
	BackendErr  string `json:"backend_err"`
	// BufferMode is how proactor's loop set its receive buffers up on
	// this ring (proactor.Buffers.Mode): "ring" (a provided buffer ring,
	// 5.19), "provide" (PROVIDE_BUFFERS, 5.7) or "select" (the loop picks
	// them on the epoll path); "" when no loop could be set up.
	BufferMode string `json:"buffer_mode"`
}

// effectiveRelease is the release ringo's decisions are drawn from: the
// simulated one, or the running kernel's major.minor.
func effectiveRelease(rel ring.Release, k sysinfo.Release) ring.Release {
	if rel != ring.Native {
		return rel
	}
	return ring.Release{Major: k.Major, Minor: k.Minor}
}

// probeRing sets up a ring as ringo would on release rel and asks it
// everything, then lets proactor choose a backend the way it does at start.
// Call it only where io_uring_setup cannot kill the process.
func probeRing(rel ring.Release, kernel string) RingFacts {
	var f RingFacts
	k, _ := sysinfo.KernelRelease()
	eff := effectiveRelease(rel, k)
	f.gatherRing(rel, eff)
	f.SetupFlags = probeSetupFlags(rel, eff)
	f.choose(kernel)
	return f
}

func (f *RingFacts) gatherRing(rel, eff ring.Release) {
	f.LastOp = -1
	f.OpsSource = "none"
	f.Supported = make([]bool, ring.OpLast)
	r, err := ring.New(8, ring.WithRelease(rel))
	if err != nil {
		var errno unix.Errno
		if errors.As(err, &errno) {
			f.SetupErrno = int(errno)
		} else {
			f.SetupErr = err.Error()
		}
		return
	}
	defer r.Close()
	f.Features = r.Features()

	p, err := r.Probe()
	switch {
	case err == nil:
		f.OpsSource = "probe"
		f.LastOp = int(p.LastOp())
		for op := ring.Op(0); op < ring.OpLast; op++ {
			f.Supported[op] = p.Supports(op)
		}
	case errors.Is(err, ring.ErrNoProbe):
		// 5.1-5.5 cannot say; ringo then trusts the release table, and
		// a real kernel without the probe is assumed to be 5.5 at best
		// (proactor's supports does the same).
		if rel == ring.Native {
			eff = ring.Release{Major: 5, Minor: 5}
		}
		f.OpsSource = "release-table"
		for op := ring.Op(0); op < ring.OpLast; op++ {
			if eff.Has(op.Since()) {
				f.Supported[op] = true
				f.LastOp = int(op)
			}
		}
	}
	f.Regs = probeRegistrations(r)
}

// probeRegistrations tries each optional registration ringo may use and
// undoes it, as Netty does: the only reliable test is the call itself.
func probeRegistrations(r *ring.Ring) []Registration {
	regs := []Registration{
		{Name: "PBUF_RING", Opcode: ring.RegisterPbufRing, Since: "5.19"},
		{Name: "FILES2 (sparse)", Opcode: ring.RegisterFiles2, Since: "5.19"},
		{Name: "IOWQ_MAX_WORKERS", Opcode: ring.RegisterIOWQMaxWorkers, Since: "5.15"},
	}
	outcome := func(reg *Registration, err error, ok string) {
		reg.Supported = err == nil
		reg.Detail = ok
		if err != nil {
			reg.Detail = errDetail(err)
		}
	}

	br, err := r.RegisterBufRing(8, 0)
	if err == nil {
		err = br.Unregister()
	}
	outcome(&regs[0], err, "registered and unregistered an 8-entry buffer ring")

	err = r.RegisterFilesSparse(16)
	if err == nil {
		err = r.UnregisterFiles()
	}
	outcome(&regs[1], err, "registered and unregistered 16 empty file slots")

	// Zero limits change nothing: the call only reports the current ones.
	w, err := r.SetIOWQMaxWorkers(0, 0)
	outcome(&regs[2], err, fmt.Sprintf("io-wq limits: %d bounded, %d unbounded", w[0], w[1]))
	return regs
}

// errDetail is an error as "EINVAL (io_uring_register: invalid argument)".
func errDetail(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return fmt.Sprintf("%s (%v)", errnoName(errno), err)
	}
	return err.Error()
}

func errnoName(e unix.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}

// choose builds a one-loop Proactor with the same options ringo's default
// would get, reads its decision, and closes it.
func (f *RingFacts) choose(kernel string) {
	p, err := proactor.New(proactor.Options{
		// Default Entries: the ring ringo would really set up, whose
		// size is what RLIMIT_MEMLOCK is charged for up to 5.11.
		Loops:  1,
		Kernel: kernel,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.BackendErr = err.Error()
		return
	}
	defer p.Close()
	f.Backend = p.Backend().String()
	f.BackendCode = p.ReasonCode()
	f.BackendWhy = p.Reason()
	f.BufferMode = loopBufferMode(p.Loop(0))
}

// loopBufferMode asks the loop for its receive buffers, as net would, and
// returns the mode the loop chose: proactor's own decision (driver_uring.go
// bufRing), not a copy of it.
func loopBufferMode(l *proactor.Loop) string {
	ch := make(chan string, 1)
	if err := l.Post(func() {
		b, err := l.Buffers()
		if err != nil {
			ch <- ""
			return
		}
		ch <- b.Mode().String()
	}); err != nil {
		return ""
	}
	return <-ch
}

// The raw query call: IORING_REGISTER_QUERY (35) with fd -1 and a chain of
// headers (io_uring.md §1.1; include/uapi/linux/io_uring/query.h). ring/
// does not wrap it because only a probe needs it.

// queryHdr is struct io_uring_query_hdr.
type queryHdr struct {
	NextEntry uint64
	QueryData uint64
	QueryOp   uint32
	Size      uint32
	Result    int32
	_         [3]uint32
}

// queryOpcodes is struct io_uring_query_opcode (IO_URING_QUERY_OPCODES).
type queryOpcodes struct {
	NrRequestOpcodes  uint32
	NrRegisterOpcodes uint32
	FeatureFlags      uint64
	RingSetupFlags    uint64
	EnterFlags        uint64
	SQEFlags          uint64
	NrQueryOpcodes    uint32
	_                 uint32
}

// queryOpcodesOp is IO_URING_QUERY_OPCODES.
const queryOpcodesOp = 0

// querySetupFlags asks the kernel, without a ring, which setup flags it
// knows. It fails with EINVAL before 6.18, which had no query opcode.
func querySetupFlags() (uint64, error) {
	// Both structs live on the Go heap, which does not move objects; the
	// header holds out's address as an integer, so out is kept alive until
	// the kernel has written it.
	out := new(queryOpcodes)
	hdr := &queryHdr{QueryData: uint64(uintptr(unsafe.Pointer(out))), QueryOp: queryOpcodesOp, Size: uint32(unsafe.Sizeof(*out))}
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, ^uintptr(0), ring.RegisterQuery, uintptr(unsafe.Pointer(hdr)), 0, 0, 0)
	runtime.KeepAlive(out)
	if errno != 0 {
		return 0, errno
	}
	if hdr.Result < 0 {
		return 0, unix.Errno(-hdr.Result)
	}
	return out.RingSetupFlags, nil
}
