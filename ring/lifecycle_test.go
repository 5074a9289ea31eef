package ring

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// TestSQE128Stride: on an SQE128 ring the kernel reads SQE i at i*128, so
// GetSQE must hand out slots 128 bytes apart; with a 64-byte stride the
// second NOP landed in the first one's command area and the kernel ran a
// zeroed slot instead.
func TestSQE128Stride(t *testing.T) {
	r := newTestRing(t, 8, WithFlags(SetupSQE128))
	for round := 0; round < 3; round++ { // past the ring's end: the mask too
		for i := uint64(1); i <= 4; i++ {
			s := r.GetSQE()
			require.NotNil(t, s)
			PrepNop(s)
			s.UserData = i
		}
		cqes := reap(t, r, 4)
		for i, c := range cqes {
			require.EqualValues(t, i+1, c.UserData, "round %d", round)
			require.Zero(t, c.Res)
		}
	}
}

// TestMixedRefused: rings whose queues mix entry sizes are refused with a
// clear error; Peek would read a 32-byte CQE's second half as a CQE.
func TestMixedRefused(t *testing.T) {
	for _, f := range []uint32{SetupCQEMixed, SetupSQEMixed} {
		_, err := New(8, WithFlags(f))
		require.ErrorIs(t, err, unix.EINVAL)
		require.Contains(t, err.Error(), "MIXED")
	}
}

// TestCloseUnregistersRingFd: a registered ring fd holds the ring alive,
// so Close must unregister it. Before, a read parked on a pipe kept
// running after Close and took the bytes written later into the buffer
// the caller had been told was free.
func TestCloseUnregistersRingFd(t *testing.T) {
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // as proactor's WaitEnter loop
		defer runtime.UnlockOSThread()
		done <- closeUnregisters()
	}()
	err := <-done
	if errors.Is(err, errNoRegisteredRing) {
		t.Skip("RegisterRingFd needs 5.18")
	}
	require.NoError(t, err)
}

var errNoRegisteredRing = errors.New("no registered rings")

func closeUnregisters() error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	r, err := New(8)
	if err != nil {
		return err
	}
	if err := r.RegisterRingFd(); err != nil {
		r.Close()
		if errors.Is(err, unix.EINVAL) {
			return errNoRegisteredRing
		}
		return err
	}
	buf := make([]byte, 16)
	PrepRead(r.GetSQE(), int32(p[0]), buf, ^uint64(0))
	if _, err := r.Submit(); err != nil {
		r.Close()
		return err
	}
	if err := r.Close(); err != nil {
		return err
	}
	// The ring's teardown cancels the read asynchronously.
	time.Sleep(50 * time.Millisecond)
	if _, err := unix.Write(p[1], []byte("hello")); err != nil {
		return err
	}
	time.Sleep(20 * time.Millisecond)
	got := make([]byte, 16)
	if n, err := unix.Read(p[0], got); n != 5 {
		return errors.Join(errors.New("the closed ring's read took the bytes: it was still alive"), err)
	}
	return nil
}

// TestCloseElsewhereReported: Close on another thread than the one that
// registered the ring fd cannot unregister it, and says so.
func TestCloseElsewhereReported(t *testing.T) {
	r := newTestRing(t, 8)
	reg := make(chan error)
	hold := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		reg <- r.RegisterRingFd()
		<-hold
		reg <- r.Close() // on the registering thread: clean
	}()
	require.NoError(t, <-reg)
	done := make(chan error)
	go func() {
		runtime.LockOSThread() // surely not the registering thread
		defer runtime.UnlockOSThread()
		done <- r.unregisterRingFd()
	}()
	err := <-done
	require.Error(t, err)
	require.Contains(t, err.Error(), "registered on thread")
	close(hold)
	require.NoError(t, <-reg)
}

// TestUseAfterClose: a closed ring's methods return nothing or an error;
// before, they touched the unmapped queues and the process died of a
// fault no recover could catch.
func TestUseAfterClose(t *testing.T) {
	r, err := New(8)
	require.NoError(t, err)
	require.NoError(t, r.Close())
	require.Nil(t, r.GetSQE())
	require.Zero(t, r.CQReady())
	require.Zero(t, r.SQSpace())
	require.Zero(t, r.Peek(make([]CQE, 4)))
	require.Nil(t, r.ReadyCQEs())
	r.Advance(0)
	_, err = r.Submit()
	require.NoError(t, err, "nothing to submit")
	_, err = r.SubmitAndWait(1)
	require.ErrorIs(t, err, unix.EBADF)
	require.NoError(t, r.Close(), "second Close")
}

// TestWaitTimeoutWithSubmission: an enter that submits returns the count
// and drops its wait's -ETIME; the ring still reports the timeout.
func TestWaitTimeoutWithSubmission(t *testing.T) {
	for _, rel := range []Release{Native, {5, 10}} {
		t.Run(rel.String(), func(t *testing.T) {
			r := newTestRing(t, 8, WithRelease(rel))
			var p [2]int
			require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC))
			defer unix.Close(p[0])
			defer unix.Close(p[1])
			buf := make([]byte, 8)
			PrepRead(r.GetSQE(), int32(p[0]), buf, ^uint64(0))
			start := time.Now()
			n, err := r.SubmitAndWaitTimeout(1, 20*time.Millisecond)
			require.ErrorIs(t, err, unix.ETIME)
			require.GreaterOrEqual(t, n, 1) // 5.10 counts its TIMEOUT SQE too
			require.GreaterOrEqual(t, time.Since(start), 18*time.Millisecond)
			// Let the read finish, so the buffer is free before return.
			_, err = unix.Write(p[1], []byte("x"))
			require.NoError(t, err)
			reap(t, r, 1)
		})
	}
}

// TestWaitTimeoutUnderSignals: signals interrupt a timed wait (Go's
// preemption, a profiler), and each retry used to start the full timeout
// again: with a signal every 20 ms a 100 ms wait never ended.
func TestWaitTimeoutUnderSignals(t *testing.T) {
	r := newTestRing(t, 8)
	tid := make(chan int)
	took := make(chan time.Duration)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		start := time.Now()
		_, err := r.SubmitAndWaitTimeout(1, 100*time.Millisecond)
		if !errors.Is(err, unix.ETIME) {
			t.Errorf("wait: %v, want ETIME", err)
		}
		took <- time.Since(start)
	}()
	id := <-tid
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	stop := time.After(2 * time.Second) // the bound the wait must beat
	for {
		select {
		case d := <-took:
			require.Less(t, d, time.Second, "signals postponed the timeout")
			require.NotZero(t, r.Stats().EINTR, "no signal reached the wait; the test proves nothing")
			return
		case <-tick.C:
			_ = unix.Tgkill(unix.Getpid(), id, unix.SIGURG)
		case <-stop:
			// Stop signalling: the wait then ends by itself, late.
			tick.Stop()
			d := <-took
			t.Fatalf("signals postponed a 100ms timeout to %v", d)
		}
	}
}
