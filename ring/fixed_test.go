package ring

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSQERange(t *testing.T) {
	a := newTestRing(t, 8)
	b := newTestRing(t, 8)
	alo, ahi := a.SQERange()
	blo, bhi := b.SQERange()
	require.NotZero(t, alo)
	require.EqualValues(t, 8*64, ahi-alo, "8 SQEs of 64 bytes")
	for range 8 {
		s := a.GetSQE()
		require.True(t, s.InRange(alo, ahi))
		require.False(t, s.InRange(blo, bhi), "an SQE of ring a in ring b's range")
	}
	require.False(t, new(SQE).InRange(alo, ahi), "heap SQE")
	c, err := New(4)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	lo, hi := c.SQERange()
	require.Zero(t, lo)
	require.Zero(t, hi)
}
