package ring

import (
	"errors"
	"os"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func newTestRing(t *testing.T, entries uint32, opts ...Option) *Ring {
	t.Helper()
	r, err := New(entries, opts...)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		t.Skipf("io_uring unavailable here: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, r.Close()) })
	return r
}

// reap waits for and collects exactly n CQEs.
func reap(t *testing.T, r *Ring, n int) []CQE {
	t.Helper()
	out := make([]CQE, 0, n)
	buf := make([]CQE, 64)
	for len(out) < n {
		if r.CQReady() == 0 {
			_, err := r.SubmitAndWaitTimeout(1, 5*time.Second)
			if errors.Is(err, unix.ETIME) {
				t.Fatalf("timed out with %d of %d CQEs", len(out), n)
			}
			require.NoError(t, err)
		}
		k := r.Peek(buf[:min(len(buf), n-len(out))])
		out = append(out, buf[:k]...)
		r.Advance(k)
	}
	return out
}

func TestNopRoundTrip(t *testing.T) {
	r := newTestRing(t, 8)
	sqe := r.GetSQE()
	require.NotNil(t, sqe)
	PrepNop(sqe)
	sqe.UserData = 42
	n, err := r.SubmitAndWait(1)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	c := reap(t, r, 1)[0]
	require.EqualValues(t, 42, c.UserData)
	require.EqualValues(t, 0, c.Res)
	require.Zero(t, r.CQReady())
}

// TestReadyCQEsInPlace: ReadyCQEs hands out the CQ's own entries in order,
// stops at the end of the array, and gives the wrapped rest after Advance.
func TestReadyCQEsInPlace(t *testing.T) {
	r := newTestRing(t, 8) // a CQ of 16
	submit := func(from, n int) {
		for i := range n {
			s := r.GetSQE()
			PrepNop(s)
			s.UserData = uint64(from + i)
		}
		_, err := r.SubmitAndWait(uint32(n))
		require.NoError(t, err)
	}
	submit(0, 8)
	submit(8, 4)
	got := r.ReadyCQEs()
	require.Len(t, got, 12)
	for i, c := range got {
		require.EqualValues(t, i, c.UserData)
	}
	r.Advance(len(got))
	require.Empty(t, r.ReadyCQEs())
	submit(12, 8) // CQ slots 12-15, then 0-3
	var uds []uint64
	for range 2 {
		run := r.ReadyCQEs()
		require.Len(t, run, 4)
		for _, c := range run {
			uds = append(uds, c.UserData)
		}
		r.Advance(len(run))
	}
	require.Equal(t, []uint64{12, 13, 14, 15, 16, 17, 18, 19}, uds)
	require.Zero(t, r.CQReady())

	big := newTestRing(t, 8, WithCQE32())
	PrepNop(big.GetSQE())
	_, err := big.SubmitAndWait(1)
	require.NoError(t, err)
	require.Nil(t, big.ReadyCQEs(), "a CQE32 ring has no []CQE view")
}

func TestManyNopsAccounted(t *testing.T) {
	r := newTestRing(t, 256)
	const total = 100_000
	seen := make([]bool, total)
	next, done := 0, 0
	cqes := make([]CQE, 256)
	for done < total {
		for next < total {
			sqe := r.GetSQE()
			if sqe == nil {
				break
			}
			PrepNop(sqe)
			sqe.UserData = uint64(next)
			next++
		}
		_, err := r.SubmitAndWait(1)
		require.NoError(t, err)
		for {
			k := r.Peek(cqes)
			if k == 0 {
				break
			}
			for _, c := range cqes[:k] {
				require.False(t, seen[c.UserData], "CQE %d twice", c.UserData)
				require.Zero(t, c.Res)
				seen[c.UserData] = true
			}
			r.Advance(k)
			done += k
		}
	}
	for i, s := range seen {
		require.True(t, s, "NOP %d never completed", i)
	}
	require.EqualValues(t, total, r.Stats().Submitted)
}

func TestSQFullReturnsNil(t *testing.T) {
	r := newTestRing(t, 4)
	var sqes []*SQE
	for i := 0; i < int(r.SQEntries()); i++ {
		s := r.GetSQE()
		require.NotNil(t, s)
		sqes = append(sqes, s)
	}
	require.Nil(t, r.GetSQE())
	require.Zero(t, r.SQSpace())
	// Submitting frees the slots again.
	for _, s := range sqes {
		PrepNop(s)
	}
	_, err := r.Submit()
	require.NoError(t, err)
	require.NotNil(t, r.GetSQE())
}

func TestLinkedSQEs(t *testing.T) {
	r := newTestRing(t, 8)
	var fds [2]int
	require.NoError(t, unix.Pipe2(fds[:], unix.O_CLOEXEC))
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])

	// write -> read, linked: the read starts only after the write.
	msg := []byte("linked")
	got := make([]byte, 16)
	w := r.GetSQE()
	PrepWrite(w, int32(fds[1]), msg, ^uint64(0))
	w.Flags |= SQEIOLink
	w.UserData = 1
	rd := r.GetSQE()
	PrepRead(rd, int32(fds[0]), got, ^uint64(0))
	rd.UserData = 2
	cqes := reap(t, r, 2)
	require.EqualValues(t, 1, cqes[0].UserData)
	require.EqualValues(t, len(msg), cqes[0].Res)
	require.EqualValues(t, 2, cqes[1].UserData)
	require.Equal(t, msg, got[:cqes[1].Res])

	// A failed link head cancels the rest of the chain.
	bad := r.GetSQE()
	PrepWrite(bad, -1, msg, 0)
	bad.Flags |= SQEIOLink
	bad.UserData = 3
	after := r.GetSQE()
	PrepNop(after)
	after.UserData = 4
	cqes = reap(t, r, 2)
	require.EqualValues(t, -int32(unix.EBADF), cqes[0].Res)
	require.EqualValues(t, -int32(unix.ECANCELED), cqes[1].Res)
}

func TestTimeoutFires(t *testing.T) {
	r := newTestRing(t, 8)
	ts := &Timespec{Nsec: int64(20 * time.Millisecond)}
	sqe := r.GetSQE()
	PrepTimeout(sqe, ts, 0, 0)
	sqe.UserData = 7
	start := time.Now()
	c := reap(t, r, 1)[0]
	require.EqualValues(t, 7, c.UserData)
	require.EqualValues(t, -int32(unix.ETIME), c.Res)
	require.GreaterOrEqual(t, time.Since(start), 15*time.Millisecond)
}

func TestWaitTimeout(t *testing.T) {
	for _, rel := range []Release{Native, {5, 10}} {
		t.Run(rel.String(), func(t *testing.T) {
			r := newTestRing(t, 8, WithRelease(rel))
			start := time.Now()
			_, err := r.SubmitAndWaitTimeout(1, 10*time.Millisecond)
			// Native: the EXT_ARG wait itself times out. 5.10: a
			// TIMEOUT SQE ends the wait; its CQE is internal, and the
			// ring says ETIME for it.
			require.ErrorIs(t, err, unix.ETIME)
			require.GreaterOrEqual(t, time.Since(start), 8*time.Millisecond)
			require.Zero(t, r.Peek(make([]CQE, 4)), "the internal timeout CQE leaked")
		})
	}
}

func TestCancelPendingPoll(t *testing.T) {
	r := newTestRing(t, 8)
	var fds [2]int
	require.NoError(t, unix.Pipe2(fds[:], unix.O_CLOEXEC))
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])

	poll := r.GetSQE()
	PrepPollAdd(poll, int32(fds[0]), unix.POLLIN)
	poll.UserData = 1
	_, err := r.Submit()
	require.NoError(t, err)
	cancel := r.GetSQE()
	PrepCancel(cancel, 1, 0)
	cancel.UserData = 2
	cqes := reap(t, r, 2)
	res := map[uint64]int32{}
	for _, c := range cqes {
		res[c.UserData] = c.Res
	}
	require.EqualValues(t, -int32(unix.ECANCELED), res[1])
	require.EqualValues(t, 0, res[2])

	// Cancel of nothing says so.
	cancel = r.GetSQE()
	PrepCancel(cancel, 99, 0)
	cancel.UserData = 3
	require.EqualValues(t, -int32(unix.ENOENT), reap(t, r, 1)[0].Res)
}

// TestCQOverflowLosesNothing posts far more CQEs than the CQ holds before
// reaping any: the kernel parks the excess in its overflow list
// (FEAT_NODROP), Submit flushes it, and every completion arrives.
func TestCQOverflowLosesNothing(t *testing.T) {
	r := newTestRing(t, 16, WithCQSize(16))
	require.NotZero(t, r.Features()&FeatNoDrop, "kernel without NODROP")
	const total = 200
	for i := 0; i < total; {
		for r.SQSpace() > 0 && i < total {
			sqe := r.GetSQE()
			PrepNop(sqe)
			sqe.UserData = uint64(i)
			i++
		}
		_, err := r.Submit()
		require.NoError(t, err)
	}
	require.True(t, r.CQOverflowPending(), "the CQ never overflowed: the test proves nothing")
	seen := map[uint64]bool{}
	cqes := make([]CQE, 8)
	for len(seen) < total {
		k := r.Peek(cqes)
		if k == 0 {
			_, err := r.SubmitAndWaitTimeout(1, time.Second)
			require.NoError(t, err)
			continue
		}
		for _, c := range cqes[:k] {
			require.False(t, seen[c.UserData])
			seen[c.UserData] = true
		}
		r.Advance(k)
	}
	require.Len(t, seen, total)
	require.Zero(t, r.CQDropped())
	require.NotZero(t, r.Stats().CQOverflows)
}

func TestSetupErrors(t *testing.T) {
	_, err := New(0)
	var se *os.SyscallError
	require.ErrorAs(t, err, &se)
	require.ErrorIs(t, err, unix.EINVAL)
	_, err = New(1 << 20) // past IORING_MAX_ENTRIES, without CLAMP
	require.ErrorIs(t, err, unix.EINVAL)
	r := newTestRing(t, 1<<20, WithClamp())
	require.LessOrEqual(t, r.SQEntries(), uint32(32768))
}

func TestSetupErrnoPreserved(t *testing.T) {
	for _, errno := range []unix.Errno{unix.ENOSYS, unix.EPERM, unix.EACCES, unix.ENOMEM} {
		saved := setup
		setup = func(uint32, *Params) (int, error) { return -1, os.NewSyscallError("io_uring_setup", errno) }
		_, err := New(8, WithCoopTaskrun())
		setup = saved
		require.ErrorIs(t, err, errno)
		var se *os.SyscallError
		require.ErrorAs(t, err, &se)
	}
}

func TestSetupFlagLadder(t *testing.T) {
	// Native: everything asked for is granted.
	r := newTestRing(t, 8, WithCoopTaskrun(), WithTaskrunFlag(), WithDeferTaskrun(), WithNoSQArray())
	require.Zero(t, r.Dropped())
	require.NotZero(t, r.Flags()&SetupDeferTaskrun)

	// On 5.15 DEFER/SINGLE_ISSUER/COOP/NO_SQARRAY are too new and dropped,
	// and TASKRUN_FLAG goes with its prerequisites.
	r = newTestRing(t, 8, WithRelease(Release{5, 15}), WithCoopTaskrun(), WithTaskrunFlag(), WithDeferTaskrun(), WithNoSQArray(), WithClamp())
	require.Equal(t, SetupCoopTaskrun|SetupTaskrunFlag|SetupDeferTaskrun|SetupSingleIssuer|SetupNoSQArray, r.Dropped())
	require.Equal(t, SetupClamp, r.Flags()&^(SetupCQSize))

	// An EINVAL from the real kernel walks the ladder too.
	saved := setup
	calls := 0
	setup = func(entries uint32, p *Params) (int, error) {
		calls++
		if p.Flags&SetupNoSQArray != 0 {
			return -1, os.NewSyscallError("io_uring_setup", unix.EINVAL)
		}
		return saved(entries, p)
	}
	r = newTestRing(t, 8, WithNoSQArray(), WithCoopTaskrun())
	setup = saved
	require.Equal(t, 2, calls)
	require.Equal(t, SetupNoSQArray, r.Dropped())
	require.Equal(t, SetupCoopTaskrun, r.Flags())

	// A required flag is never dropped.
	_, err := New(8, WithRelease(Release{5, 4}), WithRDisabled())
	require.ErrorIs(t, err, unix.EINVAL)
}

func TestReleaseSimulation(t *testing.T) {
	_, err := New(8, WithRelease(Release{4, 18}))
	require.ErrorIs(t, err, unix.ENOSYS)

	r := newTestRing(t, 8, WithRelease(Release{5, 4}))
	_, err = r.Probe()
	require.ErrorIs(t, err, ErrNoProbe)
	require.Zero(t, r.Features()&^FeatSingleMmap)

	r = newTestRing(t, 8, WithRelease(Release{5, 10}))
	p, err := r.Probe()
	require.NoError(t, err)
	require.Equal(t, OpTee, p.LastOp()) // TEE (5.8) is the newest op of 5.10
	require.True(t, p.Supports(OpSplice))
	require.False(t, p.Supports(OpShutdown))
	require.Zero(t, r.Features()&FeatExtArg)
	_, err = r.RegisterBufRing(8, 1)
	require.ErrorIs(t, err, unix.EINVAL)

	// Everything still works on the simulated ring.
	sqe := r.GetSQE()
	PrepNop(sqe)
	require.Len(t, reap(t, r, 1), 1)
}

func TestParseRelease(t *testing.T) {
	for in, want := range map[string]Release{
		"5.10": {5, 10}, "6.18.44-fc-v769": {6, 18}, "4.18.0-553.el8": {4, 18}, " 5.4 ": {5, 4},
	} {
		got, err := ParseRelease(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "5", "x.y", "5.", "-1.2", "99999.1"} {
		_, err := ParseRelease(bad)
		require.Error(t, err, bad)
	}
}

func TestProbeMatchesRawRegister(t *testing.T) {
	r := newTestRing(t, 8)
	p, err := r.Probe()
	require.NoError(t, err)

	// The raw call, by hand, as liburing's test/probe.c does it.
	buf := make([]byte, 16+8*256)
	_, _, errno := unix.Syscall6(unix.SYS_IO_URING_REGISTER, uintptr(r.Fd()), RegisterProbe, uintptr(unsafe.Pointer(&buf[0])), 256, 0, 0)
	require.Zero(t, errno)
	require.Equal(t, Op(buf[0]), p.LastOp())
	require.Equal(t, int(buf[1]), p.OpsLen())
	for op := 0; op < int(buf[1]); op++ {
		e := buf[16+8*op:]
		supported := uint16(e[2])|uint16(e[3])<<8&OpSupported != 0
		require.Equal(t, supported, p.Supports(Op(op)), Op(op).String())
	}
	require.False(t, p.Supports(Op(255)))
	t.Logf("last op %v (%d), features %#x", p.LastOp(), p.LastOp(), r.Features())
	// Every feature we know of is reported by this kernel's release or not
	// at all: the decoded names cover every set bit.
	for _, n := range Names(Features, r.Features()) {
		require.NotContains(t, n, "0x", "unknown feature bit")
	}
}
