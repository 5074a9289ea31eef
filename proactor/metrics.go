package proactor

import (
	"expvar"
	"sync"

	"github.com/ringo-io/ringo/ring"
)

// Metrics are one loop's counters, copied on the loop goroutine.
type Metrics struct {
	Loop         int
	Submitted    [256]uint64 // by opcode (ring.Op; 253-255 are pseudo-opcodes, see op.go)
	Completed    [256]uint64 // final completions by opcode
	Wakeups      uint64      // times a submitter woke a sleeping loop
	CallerTurns  uint64      // ops a Do caller started itself, on an idle loop (callerTurn)
	SQFull       uint64      // submissions deferred because the SQ was full
	Stale        uint64      // CQEs for no op in flight, dropped
	Panics       uint64      // handler panics recovered
	Rearms       uint64      // -EAGAIN completions re-run on readiness
	BufferStalls uint64      // buffered receives paused for lack of buffers
	SpinHits     uint64      // polls a completion ended, saving a sleep (Options.Spin)
	SpinMisses   uint64      // polls that found nothing within Spin; the loop then slept
	Inflight     int         // ops between submission and final completion
	Timers       int         // pending timers

	// From the driver.
	Enters      uint64 // io_uring_enter or epoll_wait calls
	SQEs        uint64 // SQEs the kernel consumed
	CQOverflows uint64 // times the CQ had overflowed into the kernel's list
	EINTR       uint64 // waits interrupted by signals and retried
	Fallbacks   uint64 // ops run through the epoll path on an io_uring loop
}

// SQEsPerEnter is the average batch size of io_uring_enter.
func (m *Metrics) SQEsPerEnter() float64 {
	if m.Enters == 0 {
		return 0
	}
	return float64(m.SQEs) / float64(m.Enters)
}

// Map renders m for expvar and logs: counters with zero values omitted,
// per-opcode counts under their kernel names.
func (m *Metrics) Map() map[string]any {
	ops := func(a *[256]uint64) map[string]uint64 {
		out := map[string]uint64{}
		for i, v := range a {
			if v == 0 {
				continue
			}
			name := ring.Op(i).String()
			switch ring.Op(i) {
			case opSendfile:
				name = "SENDFILE"
			case opSelectRecv:
				name = "RECV_SELECT"
			case OpSyscall:
				name = "SYSCALL"
			}
			out[name] = v
		}
		return out
	}
	return map[string]any{
		"loop": m.Loop, "submitted": ops(&m.Submitted), "completed": ops(&m.Completed),
		"wakeups": m.Wakeups, "caller_turns": m.CallerTurns, "sq_full": m.SQFull, "stale_cqes": m.Stale, "panics": m.Panics,
		"rearms": m.Rearms, "buffer_stalls": m.BufferStalls,
		"spin_hits": m.SpinHits, "spin_misses": m.SpinMisses, "inflight": m.Inflight, "timers": m.Timers, "enters": m.Enters,
		"sqes": m.SQEs, "sqes_per_enter": m.SQEsPerEnter(), "cq_overflows": m.CQOverflows,
		"eintr": m.EINTR, "fallbacks": m.Fallbacks,
	}
}

// Metrics returns a snapshot of every loop's counters.
func (p *Proactor) Metrics() []Metrics {
	out := make([]Metrics, len(p.loops))
	for i, l := range p.loops {
		out[i] = l.snapshot()
	}
	return out
}

var publishMu sync.Mutex

// Publish exposes the proactor's backend, reason and per-loop metrics as
// the expvar variable name (served at /debug/vars by expvar's handler). A
// name can be published once per process.
func (p *Proactor) Publish(name string) {
	publishMu.Lock()
	defer publishMu.Unlock()
	if expvar.Get(name) != nil {
		return
	}
	expvar.Publish(name, expvar.Func(func() any {
		loops := []map[string]any{}
		for _, m := range p.Metrics() {
			loops = append(loops, m.Map())
		}
		return map[string]any{"backend": p.Backend().String(), "reason": p.Reason(), "loops": loops}
	}))
}
