package main

import (
	"fmt"
	"math/bits"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/ring"
)

// Which IORING_SETUP_* flags does the kernel accept? On 6.18 and later the
// kernel says so itself (IORING_REGISTER_QUERY, no ring needed). Before
// that the only way is to try: io_uring_setup with the flag, then close the
// ring. Trying one flag at a time mis-reports the flags that need another
// (io_uring.md §1.4), so each flag is tried in the smallest combination the
// kernel accepts it in. Under -kernel, flags newer than the simulated release
// are unsupported without asking, as ring.New would refuse them.

// setupTrial is how one flag is tried.
type setupTrial struct {
	with uint32 // flags it needs alongside
	// recognisedErr is an errno that proves the kernel knows the flag:
	// NO_MMAP without user memory fails with EFAULT only after the flag
	// has been accepted.
	recognisedErr unix.Errno
}

var setupTrials = map[uint32]setupTrial{
	ring.SetupSQAff:            {with: ring.SetupSQPoll},
	ring.SetupTaskrunFlag:      {with: ring.SetupCoopTaskrun},
	ring.SetupDeferTaskrun:     {with: ring.SetupSingleIssuer},
	ring.SetupNoMmap:           {recognisedErr: unix.EFAULT},
	ring.SetupRegisteredFdOnly: {with: ring.SetupNoMmap, recognisedErr: unix.EFAULT},
	ring.SetupHybridIOPoll:     {with: ring.SetupIOPoll},
	ring.SetupSQRewind:         {with: ring.SetupNoSQArray},
}

// queryRelease is the first release with IORING_REGISTER_QUERY.
var queryRelease = ring.Release{Major: 6, Minor: 18}

// probeSetupFlags reports the setup flags a ring on release rel accepts;
// eff is rel, or the running kernel's release when rel is Native.
func probeSetupFlags(rel, eff ring.Release) FlagSet {
	tooNew := uint32(0)
	for _, fl := range ring.SetupFlags {
		if !rel.Has(fl.Since) {
			tooNew |= fl.Bit
		}
	}
	notes := map[uint32]string{}
	var accepted uint32
	method := "trial"
	if eff.Has(queryRelease) {
		if q, err := querySetupFlags(); err == nil {
			method = "query"
			// The word is 64 bits wide; IORING_SETUP_* still fits in 32.
			accepted = uint32(q) &^ tooNew
		}
	}
	var all uint32
	for _, fl := range ring.SetupFlags {
		all |= fl.Bit
	}
	switch {
	case tooNew == all:
		// Before 5.1 there is no ring to try flags on.
		method = "none"
	case method == "trial":
		accepted, notes = trySetupFlags(tooNew)
	}
	for _, fl := range ring.SetupFlags {
		if tooNew&fl.Bit != 0 {
			notes[fl.Bit] = "newer than " + rel.String()
		}
	}
	return newFlagSet(ring.SetupFlags, accepted, method, notes)
}

// trySetupFlags tries every known flag that is not tooNew.
func trySetupFlags(tooNew uint32) (uint32, map[uint32]string) {
	notes := map[uint32]string{}
	var accepted uint32
	// ATTACH_WQ shares the io-wq of an existing ring, so it needs one.
	wq, wqErr := rawSetup(ring.Params{})
	if wqErr == 0 {
		defer unix.Close(wq)
	}
	for _, fl := range ring.SetupFlags {
		if tooNew&fl.Bit != 0 {
			continue
		}
		t := setupTrials[fl.Bit]
		if t.with&tooNew != 0 {
			notes[fl.Bit] = "needs a flag newer than the release"
			continue
		}
		var p ring.Params
		p.Flags = fl.Bit | t.with
		if p.Flags&ring.SetupCQSize != 0 {
			p.CQEntries = 16
		}
		if p.Flags&ring.SetupSQPoll != 0 {
			p.SQThreadIdle = 10 // ms; the thread exits with the ring
		}
		if p.Flags&ring.SetupAttachWQ != 0 {
			if wqErr != 0 {
				notes[fl.Bit] = "not tried: no ring to attach to (" + errnoName(wqErr) + ")"
				continue
			}
			p.WQFd = uint32(wq)
		}
		fd, errno := rawSetup(p)
		switch {
		case errno == 0:
			unix.Close(fd)
			accepted |= fl.Bit
		case t.recognisedErr != 0 && errno == t.recognisedErr:
			accepted |= fl.Bit
			notes[fl.Bit] = "recognised (" + errnoName(errno) + " without user memory)"
		case errno == unix.EPERM:
			notes[fl.Bit] = "EPERM: known, but this process lacks the privilege"
		default:
			notes[fl.Bit] = errnoName(errno)
		}
		if t.with != 0 {
			notes[fl.Bit] = joinNote(fmt.Sprintf("tried with %s", nameList(ring.SetupFlags, t.with)), notes[fl.Bit])
		}
	}
	return accepted, notes
}

func joinNote(a, b string) string {
	if b == "" {
		return a
	}
	return a + "; " + b
}

// rawSetup is io_uring_setup(2) with 2 entries. The probe calls it directly
// rather than through ring.New because a trial ring is never used: ring.New
// would map queues whose layout some flags change (NO_MMAP, SQE128).
func rawSetup(p ring.Params) (int, unix.Errno) {
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 2, uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), 0
}

// newFlagSet decodes raw against table.
func newFlagSet(table []ring.Flag, raw uint32, method string, notes map[uint32]string) FlagSet {
	fs := FlagSet{Raw: raw, Names: ring.Names(table, raw), Method: method}
	if fs.Names == nil {
		fs.Names = []string{}
	}
	for _, fl := range table {
		fs.List = append(fs.List, FlagEntry{
			Bit:       bits.TrailingZeros32(fl.Bit),
			Name:      fl.Name,
			Since:     fl.Since.String(),
			Supported: raw&fl.Bit != 0,
			Note:      notes[fl.Bit],
		})
	}
	return fs
}

// nameList is ring.Names joined with "|".
func nameList(table []ring.Flag, bits uint32) string {
	s := ""
	for i, n := range ring.Names(table, bits) {
		if i > 0 {
			s += "|"
		}
		s += n
	}
	return s
}
