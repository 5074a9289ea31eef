package proactor

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Proactor. The zero value is a good default.
type Options struct {
	// Backend: Auto (default), Uring or Epoll. When Auto, the
	// RINGO_BACKEND environment variable (auto, uring, epoll) decides.
	Backend Backend
	// Loops is the number of shards; default one per usable CPU
	// (GOMAXPROCS). At most MaxLoops.
	Loops int
	// Entries is each ring's SQ size (default 1024; the CQ is 4 times it,
	// as multishot ops post many CQEs per SQE). The kernel rounds it up to
	// a power of two; above MaxEntries, its limit, it is clamped to that.
	Entries uint32
	// Kernel restricts the runtime to what that kernel release had
	// ("5.10"); empty means the RINGO_KERNEL environment variable, or the
	// running kernel.
	Kernel string
	// Wait selects how an idle io_uring loop waits (see WaitMode).
	Wait WaitMode
	// Spin is how long a loop that ran out of work polls for completions
	// and queued tasks before it sleeps (default 0: sleep at once). Work
	// found by polling skips the sleep, the wake-up and the context
	// switch back: a 1-connection echo on the callback API went from 26k
	// to 37k msgs/s here with 50µs on io_uring, and from 28k to 35k on
	// epoll (docs/BENCHMARKS.md). io_uring looks at its CQ in shared
	// memory; epoll needs a poll(2) of its epoll fd per look. The price is
	// CPU: while work keeps coming less than Spin apart the loop never
	// sleeps, and a loop that goes idle burns Spin once. A WaitEnter loop
	// holds its P while it polls, so keep it short; a WaitNetpoll loop
	// yields between looks, and while it polls a Do queues its op for it
	// instead of running a caller turn. On io_uring a WaitNetpoll ring
	// has no COOP_TASKRUN, so a completion that comes while the thread
	// that submitted its op is running (polling, say) interrupts that
	// thread with an IPI, paid by the CPU that produced the event: on one
	// virtual machine (docs/BENCHMARKS.md) that made a 1-connection
	// net.Conn echo twice as slow with 50µs as without.
	Spin time.Duration
	// Workers bounds the epoll driver's pool for file ops (default 4).
	Workers int
	// Buffers and BufferSize size each loop's receive buffer pool
	// (default 2048 buffers of 4 KiB, rounded up to a power of two).
	Buffers, BufferSize int
	// Logger receives the one-line backend choice and handler panics;
	// default slog.Default().
	Logger *slog.Logger
	// OnPanic, if set, is called on the loop goroutine with the value of a
	// handler panic after the loop has recovered from it.
	OnPanic func(loop int, v any)
}

// MaxLoops bounds Options.Loops. Each loop has a ring and a goroutine, and
// with WaitEnter a locked OS thread: beyond Go's 10,000-thread limit the
// runtime kills the process, so a mistyped count must be an error first.
// Loops are shards of the machine's CPUs, so real counts are far below.
const MaxLoops = 1024

// MaxEntries is the largest SQ the kernel sets up (IORING_MAX_ENTRIES).
const MaxEntries = 32768

// Proactor is a set of loops sharing one backend choice.
type Proactor struct {
	opts    Options
	loops   []*Loop
	backend Backend
	sel     selection
	next    atomic.Uint32
}

// New chooses the backend, sets up every loop and starts them.
func New(opts Options) (*Proactor, error) {
	if opts.Loops <= 0 {
		opts.Loops = runtime.GOMAXPROCS(0)
	}
	if opts.Loops > MaxLoops {
		return nil, fmt.Errorf("proactor: Loops %d: want at most %d", opts.Loops, MaxLoops)
	}
	if opts.Entries == 0 {
		opts.Entries = 1024
	}
	// Clamped here, not only by IORING_SETUP_CLAMP: the CQ size is 4 times
	// it, which must not wrap around 32 bits.
	opts.Entries = min(opts.Entries, MaxEntries)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	sel, err := choose(opts)
	if err != nil {
		return nil, err
	}
	p := &Proactor{opts: opts, backend: sel.backend, sel: sel}
	// Each loop creates its driver on its own goroutine: a SINGLE_ISSUER
	// ring belongs to the thread that set it up, and a registered ring fd
	// is only valid on the thread that registered it.
	lock := p.backend == Uring && opts.Wait == WaitEnter
	errs := make(chan error, opts.Loops)
	for i := 0; i < opts.Loops; i++ {
		l := newLoop(p, i)
		p.loops = append(p.loops, l)
		go l.run(lock, errs)
	}
	var first error
	for range p.loops {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		p.Close()
		return nil, fmt.Errorf("proactor: %w", first)
	}
	sel.log(opts.Logger)
	return p, nil
}

// testHookDriver, set only by tests, wraps each new loop's driver: the way
// to inject refusals (a full SQ) that the kernel cannot be made to give on
// demand.
var testHookDriver func(driver) driver

func (p *Proactor) newDriver(l *Loop) (driver, error) {
	var d driver
	var err error
	if p.backend == Uring {
		d, err = newUringDriver(l, p.opts, p.sel)
	} else {
		d, err = newEpollDriver(l, p.opts)
	}
	if err == nil && testHookDriver != nil {
		d = testHookDriver(d)
	}
	return d, err
}

// Backend returns the backend in use: Uring or Epoll.
func (p *Proactor) Backend() Backend { return p.backend }

// Reason says why that backend was chosen: a stable code (sysinfo reasons
// such as "eperm-seccomp", or "ok") and a sentence for people.
func (p *Proactor) Reason() string { return string(p.sel.code) + ": " + p.sel.why }

// ReasonCode returns the stable code part of Reason.
func (p *Proactor) ReasonCode() string { return string(p.sel.code) }

// Kernel returns the kernel release the runtime limits itself to
// ("native" when not simulating).
func (p *Proactor) Kernel() string { return p.sel.release.String() }

// Loops returns the loops.
func (p *Proactor) Loops() []*Loop { return p.loops }

// Loop returns loop i.
func (p *Proactor) Loop(i int) *Loop { return p.loops[i] }

// Next returns the loops in turn, for spreading work.
func (p *Proactor) Next() *Loop {
	return p.loops[int(p.next.Add(1)-1)%len(p.loops)]
}

// Close cancels every op in flight on every loop, waits for each op's final
// completion, and releases the rings. Handlers see -ECANCELED for what was
// cut short. Closing twice is safe; so is Close from several goroutines,
// each returning once everything is released. It must not be called from a
// loop goroutine.
func (p *Proactor) Close() error {
	var wg sync.WaitGroup
	for _, l := range p.loops {
		wg.Add(1)
		go func() { defer wg.Done(); l.close() }()
	}
	wg.Wait()
	return nil
}

func (p *Proactor) logError(l *Loop, err error) {
	p.opts.Logger.Error("ringo: loop error", "loop", l.id, "err", err)
}

func (p *Proactor) reportPanic(l *Loop, v any) {
	if p.opts.OnPanic != nil {
		p.opts.OnPanic(l.id, v)
		return
	}
	p.opts.Logger.Error("ringo: handler panicked; the loop goes on", "loop", l.id, "panic", v)
}

// ErrUnavailable is wrapped by New's error when Backend is Uring and
// io_uring cannot serve here.
var ErrUnavailable = errors.New("proactor: io_uring unavailable")
