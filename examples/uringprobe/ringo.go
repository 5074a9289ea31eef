package main

import (
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
	ring.OpAsyncCancel, ring.OpLinkTimeout, ring.OpFtruncate,
}

// usedSetupFlags are the optional setup flags proactor's io_uring driver
// asks for with its default WaitEnter mode (newUringDriver): a kernel that
// lacks one still works, with the retry ladder in ring.New dropping it.
var usedSetupFlags = []uint32{
	ring.SetupCQSize, ring.SetupClamp, ring.SetupCoopTaskrun,
	ring.SetupTaskrunFlag, ring.SetupSingleIssuer,
}

// Releases that gate what ringo does beyond the opcode probe.
var (
	multishotAcceptSince = ring.Release{Major: 5, Minor: 19} // IORING_ACCEPT_MULTISHOT
	multishotRecvSince   = ring.Release{Major: 6, Minor: 0}  // IORING_RECV_MULTISHOT
	bufRingSince         = ring.Release{Major: 5, Minor: 19} // IORING_REGISTER_PBUF_RING
)

// decide says what ringo will do given its backend and the ring's answers;
// eff is the release decisions are drawn from (simulated, or the kernel's).
func decide(backend string, rf RingFacts, eff ring.Release) Ringo {
	r := Ringo{
		Buffers:      "plain",
		Sendfile:     "sendfile(2)",
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
	for _, f := range usedSetupFlags {
		if rf.SetupFlags.Raw&f == 0 {
			r.MissingFlags = append(r.MissingFlags, ring.Names(ring.SetupFlags, f)...)
		}
	}
	bufRing := false
	for _, reg := range rf.Regs {
		if reg.Opcode == ring.RegisterPbufRing && reg.Supported {
			bufRing = true
		}
	}
	switch {
	case bufRing && eff.Has(bufRingSince):
		r.Buffers = "buf-ring"
	case sup(ring.OpProvideBuffers):
		r.Buffers = "provide-buffers"
	}
	r.MultishotAccept = sup(ring.OpAccept) && eff.Has(multishotAcceptSince)
	r.MultishotRecv = sup(ring.OpRecv) && eff.Has(multishotRecvSince) && r.Buffers != "plain"
	if sup(ring.OpLinkTimeout) {
		r.Deadlines = "link-timeout"
	}
	return r
}
