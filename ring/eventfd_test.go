package ring

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// eventfdRing returns a ring with a non-blocking eventfd registered, and a
// function that reports whether the eventfd was signalled since its last
// call.
func eventfdRing(t *testing.T) (*Ring, func() bool) {
	r := newTestRing(t, 8)
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(efd) })
	require.NoError(t, r.RegisterEventfd(efd))
	return r, func() bool {
		var v [8]byte
		_, err := unix.Read(efd, v[:])
		if err == unix.EAGAIN {
			return false
		}
		require.NoError(t, err)
		return true
	}
}

func TestRegisterEventfd(t *testing.T) {
	r, signalled := eventfdRing(t)
	PrepNop(r.GetSQE())
	reap(t, r, 1)
	require.True(t, signalled(), "eventfd not signalled by the CQE")
	require.NoError(t, r.UnregisterEventfd())
	PrepNop(r.GetSQE())
	reap(t, r, 1)
	require.False(t, signalled(), "eventfd signalled after UnregisterEventfd")
}

func TestMuteEventfd(t *testing.T) {
	r, signalled := eventfdRing(t)
	require.True(t, r.MuteEventfd(true), "6.x has IORING_CQ_EVENTFD_DISABLED")
	PrepNop(r.GetSQE())
	reap(t, r, 1)
	require.False(t, signalled(), "a muted eventfd was signalled")

	require.True(t, r.MuteEventfd(false))
	PrepNop(r.GetSQE())
	reap(t, r, 1)
	require.True(t, signalled(), "eventfd not signalled after unmuting")
}

func TestMuteEventfdOldKernel(t *testing.T) {
	r, err := New(8, WithRelease(Release{5, 7}))
	require.NoError(t, err)
	defer r.Close()
	require.False(t, r.MuteEventfd(true), "5.7 has no IORING_CQ_EVENTFD_DISABLED")
}
