package ring

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Ring is one io_uring instance: its fd, the mapped queues and what setup
// settled on. Not safe for concurrent use.
type Ring struct {
	fd      int
	params  Params // as completed by the kernel (features masked by release)
	flags   uint32 // setup flags in force
	dropped uint32 // optional setup flags the kernel refused
	release Release

	sq sqRing
	cq cqRing

	sqRingMem []byte // the SQ ring mapping; with SINGLE_MMAP also the CQ ring
	cqRingMem []byte // nil with SINGLE_MMAP
	sqeMem    []byte

	// enterFd and enterFlags are what io_uring_enter is called with: the
	// ring fd, or its registered index with EnterRegisteredRing.
	enterFd    int
	enterFlags uint32
	// regTid is the thread that registered the ring fd (RegisterRingFd):
	// the registration lives in that thread's table.
	regTid int

	// waitArg and waitTs are the EXT_ARG wait arguments, kept in the Ring
	// so that a timed wait does not allocate.
	waitArg GetEventsArg
	waitTs  Timespec
	// waitEnd is when an EXT_ARG timed wait must end: waitTs is relative,
	// so a wait entered again (after EINTR, or after an enter that also
	// submitted and so returned before its timeout said so) gets what is
	// left of it, not all of it again.
	waitEnd time.Time

	// closedIdx is what the queue pointers point at once the ring is
	// closed (detach).
	closedIdx [2]uint32

	stats Stats
}

// Stats counts what the ring saw. Read with Ring.Stats.
type Stats struct {
	Enters      uint64 // io_uring_enter calls
	Submitted   uint64 // SQEs the kernel consumed
	EINTR       uint64 // enters interrupted by a signal, retried
	Busy        uint64 // EAGAIN/EBUSY from enter: reap, then retry
	CQOverflows uint64 // times the SQ flags showed IORING_SQ_CQ_OVERFLOW
	EBADR       uint64 // enters that reported dropped CQEs (5.19+)
}

type sqRing struct {
	khead    *uint32 // written by the kernel as it consumes SQEs
	ktail    *uint32 // written by us to publish SQEs
	kflags   *uint32 // SQ* flags, written by the kernel
	kdropped *uint32
	mask     uint32
	entries  uint32
	sqes     unsafe.Pointer
	shift    uint32 // 1 for SQE128 rings: index << shift is the SQE slot
	sqeHead  uint32 // SQEs up to here have been published in ktail
	sqeTail  uint32 // SQEs handed out by GetSQE
}

type cqRing struct {
	khead     *uint32 // written by us as we consume CQEs
	ktail     *uint32 // written by the kernel as it posts CQEs
	koverflow *uint32 // CQEs the kernel had to drop
	kflags    *uint32
	mask      uint32
	entries   uint32
	cqes      unsafe.Pointer
	shift     uint32 // 1 for CQE32 rings: index << shift is the CQE slot
}

// Option configures New.
type Option func(*config)

type config struct {
	flags    uint32 // setup flags asked for
	optional uint32 // the subset that may be dropped on EINVAL
	params   Params
	release  Release
}

// optionalFlags may be dropped by the EINVAL retry ladder: they change
// performance, not meaning. dropOrder is newest first, so that an older
// kernel loses only what it lacks.
var dropOrder = []uint32{
	SetupNoSQArray, SetupDeferTaskrun, SetupSingleIssuer, SetupTaskrunFlag,
	SetupCoopTaskrun, SetupSubmitAll, SetupClamp, SetupCQSize,
}

func optional(f uint32) Option {
	return func(c *config) { c.flags |= f; c.optional |= f }
}

func required(f uint32) Option {
	return func(c *config) { c.flags |= f }
}

// WithSQPoll starts a kernel thread that polls the SQ, sleeping after idleMs
// milliseconds without work. Required: setup fails rather than drop it.
func WithSQPoll(idleMs uint32) Option {
	return func(c *config) { c.flags |= SetupSQPoll; c.params.SQThreadIdle = idleMs }
}

// WithSQAff pins the SQPOLL thread to cpu (needs WithSQPoll).
func WithSQAff(cpu uint32) Option {
	return func(c *config) { c.flags |= SetupSQAff; c.params.SQThreadCPU = cpu }
}

// WithCQSize asks for a CQ of n entries instead of twice the SQ (5.5).
func WithCQSize(n uint32) Option {
	return func(c *config) { optional(SetupCQSize)(c); c.params.CQEntries = n }
}

// WithClamp clamps too-large entry counts instead of failing (5.6).
func WithClamp() Option { return optional(SetupClamp) }

// WithCoopTaskrun runs completion task work only at the next enter, with no
// interrupt of the submitting thread (5.19).
func WithCoopTaskrun() Option { return optional(SetupCoopTaskrun) }

// WithTaskrunFlag makes the kernel set SQTaskrun when task work is pending
// (5.19; needs COOP_TASKRUN or DEFER_TASKRUN).
func WithTaskrunFlag() Option { return optional(SetupTaskrunFlag) }

// WithSingleIssuer promises that one thread submits (6.0).
func WithSingleIssuer() Option { return optional(SetupSingleIssuer) }

// WithDeferTaskrun defers completion work until the issuer enters with
// GETEVENTS (6.1; implies SINGLE_ISSUER).
func WithDeferTaskrun() Option { return optional(SetupDeferTaskrun | SetupSingleIssuer) }

// WithNoSQArray drops the SQ index array indirection (6.6).
func WithNoSQArray() Option { return optional(SetupNoSQArray) }

// WithSubmitAll keeps submitting a batch after one SQE fails (5.18).
func WithSubmitAll() Option { return optional(SetupSubmitAll) }

// WithRDisabled creates the ring disabled until EnableRings (5.10).
func WithRDisabled() Option { return required(SetupRDisabled) }

// WithCQE32 doubles the CQE size (5.19).
func WithCQE32() Option { return required(SetupCQE32) }

// WithFlags adds raw setup flags, all required.
func WithFlags(flags uint32) Option { return required(flags) }

// WithRelease makes the ring behave as on kernel release r: setup fails with
// ENOSYS before 5.1, setup flags and features newer than r are unavailable,
// and the probe reports only the opcodes r had (none at all before 5.6,
// which had no IORING_REGISTER_PROBE). Native means no simulation.
func WithRelease(r Release) Option { return func(c *config) { c.release = r } }

// New sets up a ring with at least entries SQEs. Errors from io_uring_setup
// keep their errno as an *os.SyscallError (ENOSYS: no io_uring; EPERM:
// seccomp or kernel.io_uring_disabled; EACCES: an LSM; ENOMEM: memlock;
// EINVAL: bad arguments), so callers can tell "unavailable" from a bug.
func New(entries uint32, opts ...Option) (*Ring, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.release != Native && !c.release.Has(Release{5, 1}) {
		return nil, os.NewSyscallError("io_uring_setup", unix.ENOSYS)
	}
	if c.flags&(SetupCQEMixed|SetupSQEMixed) != 0 {
		// Mixed-size queues need Peek and GetSQE to walk entries of two
		// sizes (CQEF32 and CQEFSkip, 6.18); ring does not, so it must
		// refuse rather than misread them.
		return nil, errMixed
	}
	// On a simulated release the kernel's newer flags are refused up
	// front, as the old kernel would have refused them with EINVAL.
	tooNew := flagsNewerThan(SetupFlags, c.release)
	if c.flags&tooNew&^c.optional != 0 {
		return nil, os.NewSyscallError("io_uring_setup", unix.EINVAL)
	}
	flags := c.flags &^ tooNew
	dropped := c.flags & tooNew
	for {
		flags, dropped = fixDependencies(flags, dropped)
		p := c.params
		p.Flags = flags
		fd, err := setup(entries, &p)
		if err == nil {
			r, err := newRing(fd, &p, c.release)
			if err != nil {
				unix.Close(fd)
				return nil, err
			}
			r.dropped = dropped
			return r, nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return nil, err
		}
		next := nextDrop(flags & c.optional)
		if next == 0 {
			return nil, err
		}
		flags &^= next
		dropped |= next
	}
}

func nextDrop(optional uint32) uint32 {
	for _, f := range dropOrder {
		if optional&f != 0 {
			return f
		}
	}
	return 0
}

// fixDependencies drops flags whose prerequisite is gone: TASKRUN_FLAG needs
// COOP_TASKRUN or DEFER_TASKRUN, DEFER_TASKRUN needs SINGLE_ISSUER.
func fixDependencies(flags, dropped uint32) (uint32, uint32) {
	if flags&SetupDeferTaskrun != 0 && flags&SetupSingleIssuer == 0 {
		flags &^= SetupDeferTaskrun
		dropped |= SetupDeferTaskrun
	}
	if flags&SetupTaskrunFlag != 0 && flags&(SetupCoopTaskrun|SetupDeferTaskrun) == 0 {
		flags &^= SetupTaskrunFlag
		dropped |= SetupTaskrunFlag
	}
	return flags, dropped
}

var errMixed = fmt.Errorf("ring: CQE_MIXED and SQE_MIXED rings are not supported: %w", unix.EINVAL)

// setup is io_uring_setup(2), a variable so tests can inject failures.
var setup = func(entries uint32, p *Params) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(p)), 0)
	if errno != 0 {
		return -1, os.NewSyscallError("io_uring_setup", errno)
	}
	return int(fd), nil
}

func newRing(fd int, p *Params, rel Release) (*Ring, error) {
	r := &Ring{fd: fd, params: *p, flags: p.Flags, release: rel, enterFd: fd}
	r.params.Features &^= flagsNewerThan(Features, rel)
	if err := r.mmap(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Ring) mmap() error {
	p := &r.params
	cqeSize := uintptr(sizeofCQE)
	if p.Flags&SetupCQE32 != 0 {
		cqeSize *= 2
		r.cq.shift = 1
	}
	sqSize := uintptr(p.SQOff.Array) + uintptr(p.SQEntries)*4
	cqSize := uintptr(p.CQOff.CQEs) + uintptr(p.CQEntries)*cqeSize
	// Without SINGLE_MMAP (before 5.4, or simulating such a release) the CQ
	// ring is its own mapping; newer kernels still accept that layout.
	single := p.Features&FeatSingleMmap != 0
	if single {
		sqSize = max(sqSize, cqSize)
	}
	var err error
	r.sqRingMem, err = unix.Mmap(r.fd, offSQRing, int(sqSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap", err)
	}
	cqMem := r.sqRingMem
	if !single {
		r.cqRingMem, err = unix.Mmap(r.fd, offCQRing, int(cqSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			r.unmap()
			return os.NewSyscallError("mmap", err)
		}
		cqMem = r.cqRingMem
	}
	sqeSize := uintptr(sizeofSQE)
	if p.Flags&SetupSQE128 != 0 {
		sqeSize *= 2
	}
	r.sqeMem, err = unix.Mmap(r.fd, offSQEs, int(uintptr(p.SQEntries)*sqeSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		r.unmap()
		return os.NewSyscallError("mmap", err)
	}

	sq, cq := &r.sq, &r.cq
	at := func(mem []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&mem[off])) }
	sq.khead = at(r.sqRingMem, p.SQOff.Head)
	sq.ktail = at(r.sqRingMem, p.SQOff.Tail)
	sq.kflags = at(r.sqRingMem, p.SQOff.Flags)
	sq.kdropped = at(r.sqRingMem, p.SQOff.Dropped)
	sq.mask = *at(r.sqRingMem, p.SQOff.RingMask)
	sq.entries = *at(r.sqRingMem, p.SQOff.RingEntries)
	// SQE128 rings take two 64-byte slots per SQE: the kernel reads SQE
	// i at i*128, and the second half is the command area.
	sq.sqes = unsafe.Pointer(&r.sqeMem[0])
	if p.Flags&SetupSQE128 != 0 {
		sq.shift = 1
	}
	if p.Flags&SetupNoSQArray == 0 {
		// The index array maps ring slots to SQEs; identity, set once,
		// as liburing does, so the hot path never touches it.
		array := unsafe.Slice(at(r.sqRingMem, p.SQOff.Array), sq.entries)
		for i := range array {
			array[i] = uint32(i)
		}
	}
	cq.khead = at(cqMem, p.CQOff.Head)
	cq.ktail = at(cqMem, p.CQOff.Tail)
	cq.koverflow = at(cqMem, p.CQOff.Overflow)
	if p.CQOff.Flags != 0 {
		cq.kflags = at(cqMem, p.CQOff.Flags)
	}
	cq.mask = *at(cqMem, p.CQOff.RingMask)
	cq.entries = *at(cqMem, p.CQOff.RingEntries)
	cq.cqes = unsafe.Pointer(&cqMem[p.CQOff.CQEs])
	// A new ring's indices start at 0, but nothing requires it: start
	// from the kernel's tail.
	sq.sqeHead = atomic.LoadUint32(sq.ktail)
	sq.sqeTail = sq.sqeHead
	return nil
}

func (r *Ring) unmap() {
	for _, m := range []*[]byte{&r.sqeMem, &r.cqRingMem, &r.sqRingMem} {
		if *m != nil {
			unix.Munmap(*m)
			*m = nil
		}
	}
}

// Close unmaps the queues and closes the ring fd. The kernel cancels what is
// still in flight, asynchronously: callers that lent buffers to the ring
// must drain every CQE before Close. Closing twice is safe.
func (r *Ring) Close() error {
	if r.fd < 0 {
		return nil
	}
	// Unregister first: the registration holds a reference to the ring,
	// which would otherwise outlive the close with its ops still running.
	uerr := r.unregisterRingFd()
	r.unmap()
	err := unix.Close(r.fd)
	r.fd, r.enterFd = -1, -1
	r.detach()
	return errors.Join(uerr, os.NewSyscallError("close", err))
}

// detach points a closed ring's queues at r.closedIdx instead of the
// unmapped memory: heads equal tails, no entries. GetSQE then returns nil,
// Peek and CQReady see nothing, and Submit reaches the kernel with fd -1
// (EBADF) instead of faulting, which no recover could catch.
func (r *Ring) detach() {
	z, flags := &r.closedIdx[0], &r.closedIdx[1]
	r.sq = sqRing{khead: z, ktail: z, kflags: flags, kdropped: flags}
	r.cq = cqRing{khead: z, ktail: z, koverflow: flags, cqes: unsafe.Pointer(&r.closedIdx)}
}

// Fd returns the ring's file descriptor.
func (r *Ring) Fd() int { return r.fd }

// Params returns the setup parameters as the kernel completed them, with
// features limited to the simulated release.
func (r *Ring) Params() Params { return r.params }

// Features returns the IORING_FEAT_* bits (limited to the simulated release).
func (r *Ring) Features() uint32 { return r.params.Features }

// Flags returns the setup flags in force.
func (r *Ring) Flags() uint32 { return r.flags }

// Dropped returns the optional setup flags that were asked for but that the
// kernel (or the simulated release) refused.
func (r *Ring) Dropped() uint32 { return r.dropped }

// Release returns the simulated kernel release, or Native.
func (r *Ring) Release() Release { return r.release }

// SQEntries and CQEntries return the queue sizes.
func (r *Ring) SQEntries() uint32 { return r.sq.entries }

// CQEntries returns the number of CQ slots.
func (r *Ring) CQEntries() uint32 { return r.cq.entries }

// Stats returns the ring's counters.
func (r *Ring) Stats() Stats { return r.stats }
