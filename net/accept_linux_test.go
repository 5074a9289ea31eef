package net

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ringo-io/ringo/proactor"
	"github.com/ringo-io/ringo/ring"
)

// acceptOps is how many ACCEPT ops p's loops have been given.
func acceptOps(p *proactor.Proactor) uint64 {
	var n uint64
	for _, m := range p.Metrics() {
		n += m.Submitted[ring.OpAccept]
	}
	return n
}

// TestAcceptTakesQueuedConnections: connections already in the kernel's
// accept queue are taken by Accept directly, with no op (and so no round
// trip through a loop) each; only an Accept that finds the queue empty
// parks an op. A burst of connections used to wait for one loop round trip
// per connection, 2 s for the last of 1,000 behind a busy loop.
func TestAcceptTakesQueuedConnections(t *testing.T) {
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		lc := ListenConfig{Proactor: p}
		ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		const n = 20
		var clients []net.Conn
		defer func() {
			for _, c := range clients {
				c.Close()
			}
		}()
		for range n {
			// The handshake completes in the kernel: the connection
			// waits in the accept queue.
			c, err := net.Dial("tcp4", ln.Addr().String())
			require.NoError(t, err)
			clients = append(clients, c)
		}
		before := acceptOps(p)
		for range n {
			c, err := ln.Accept()
			require.NoError(t, err)
			c.Close()
		}
		require.Equal(t, before, acceptOps(p), "queued connections were accepted through ops")

		// An empty queue: Accept parks an op, and the next connection
		// completes it.
		got := make(chan error, 1)
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.Close()
			}
			got <- err
		}()
		require.Eventually(t, func() bool { return acceptOps(p) > before }, 10*time.Second, time.Millisecond,
			"an Accept on an empty queue parked no op")
		c, err := net.Dial("tcp4", ln.Addr().String())
		require.NoError(t, err)
		clients = append(clients, c)
		select {
		case err := <-got:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("the parked Accept did not return")
		}
	})
}
