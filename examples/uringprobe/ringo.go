package main

import (
	"github.com/ringo-io/ringo/fs"
	"github.com/ringo-io/ringo/proactor"
	"github.com/ringo-io/ringo/ring"
)

// usedOps are the opcodes ringo's proactor, net and fs packages submit. An
// op the ring lacks runs on the driver's epoll reactor instead (per-op
// fallback, proactor/driver_uring.go): correct, but without io_uring's
// savings for that op.
var usedOps = []ring.Op{
	ring.OpNop, ring.OpAccept, ring.OpConnect, ring.OpRecv, ring.OpSend,
	ring.OpSendZC, ring.OpRead, ring.OpWrite, ring.OpReadv, ring.OpWritev,
	ring.OpFsync, ring.OpOpenat, ring.OpOpenat2, ring.OpClose, ring.OpStatx,
	ring.OpFallocate, ring.OpSplice, ring.OpShutdown, ring.OpPollAdd,
	ring.OpAsyncCancel, ring.OpLinkTimeout, ring.OpTimeout, ring.OpFtruncate,
	ring.OpFadvise,
}

// usedSetupFlags are the optional setup flags proactor's io_uring driver
// asks for (newUringDriver) in the wait mode a zero proactor.Options gets:
// a kernel that lacks one still works, with the retry ladder in ring.New
// dropping it. WaitNetpoll (the default) asks only for CQSIZE and CLAMP;
// WaitEnter adds the single-submitter flags, which need the loop's locked
// thread.
func usedSetupFlags() []uint32 {
	flags := []uint32{ring.SetupCQSize, ring.SetupClamp}
	if (proactor.Options{}).Wait == proactor.WaitEnter {
		flags = append(flags, ring.SetupDeferTaskrun, ring.SetupCoopTaskrun, ring.SetupTaskrunFlag, ring.SetupSingleIssuer)
	}
	return flags
}

// Releases that gate what ringo does beyond the opcode probe, as
// proactor gates them (proactor exports no accessor for these yet).
var (
	multishotAcceptSince = ring.Release{Major: 5, Minor: 19} // IORING_ACCEPT_MULTISHOT
	multishotRecvSince   = ring.Release{Major: 6, Minor: 0}  // driver_uring.go bufRing
)

// sendfileMethod is what fs.SendFile (and so net.Conn.ReadFrom) uses:
// fs.DefaultSendMethod, chosen there by measurement.
func sendfileMethod() string {
	if fs.DefaultSendMethod == fs.SendSplice {
		return "splice"
	}
	return "sendfile(2)"
}

// decide says what ringo will do given its backend and the ring's answers;
// eff is the release decisions are drawn from (simulated, or the kernel's).
func decide(backend string, rf RingFacts, eff ring.Release) Ringo {
	r := Ringo{
		Buffers:      "loop-selected",
		Sendfile:     sendfileMethod(),
		Deadlines:    "loop-timers",
		FallbackOps:  []string{},
		MissingFlags: []string{},
	}
	uring := backend == "uring"
	sup := func(op ring.Op) bool { return int(op) < len(rf.Supported) && rf.Supported[op] }
	for _, op := range usedOps {
		path := "epoll"
		if uring {
			path = "ring"
			if !sup(op) {
				path = "fallback"
				r.FallbackOps = append(r.FallbackOps, op.String())
			}
		}
		r.Ops = append(r.Ops, UsedOp{Name: op.String(), Path: path})
	}
	if !uring {
		return r
	}
	for _, f := range usedSetupFlags() {
		if rf.SetupFlags.Raw&f == 0 {
			r.MissingFlags = append(r.MissingFlags, ring.Names(ring.SetupFlags, f)...)
		}
	}
	// A buffer ring (5.19), else PROVIDE_BUFFERS (5.7), else the loop
	// selects the buffer itself, on the per-op epoll path.
	onRing := false
	switch rf.BufferMode {
	case "ring":
		r.Buffers, onRing = "buf-ring", true
	case "provide":
		r.Buffers, onRing = "provide-buffers", true
	}
	r.MultishotAccept = sup(ring.OpAccept) && eff.Has(multishotAcceptSince)
	r.MultishotRecv = onRing && eff.Has(multishotRecvSince)
	if sup(ring.OpLinkTimeout) {
		r.Deadlines = "link-timeout"
	}
	return r
}
