package compat

import (
	"io"
	"net"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The two ping-pong benchmarks move the same 4-byte message back and forth
// over a unix socketpair; one round trip is one b.N iteration. In both, every
// receive is posted before its data exists, so each one really waits for
// readiness: the reactor parks the op and finds it ready in epoll_wait, Go's
// netpoller parks the goroutine and readies it from netpoll.

// BenchmarkReactorPingPong drives both ends from one loop goroutine, as a
// ringo loop serving a client and a server would.
func BenchmarkReactorPingPong(b *testing.B) {
	r := newReactor(b, Config{})
	a, s := socketpair(b)
	const (
		udRecvServer = iota + 1
		udSendClient
		udRecvClient
		udSendServer
	)
	recvServer := &recvOp{fd: s, buf: make([]byte, 4)}
	recvClient := &recvOp{fd: a, buf: make([]byte, 4)}
	sendClient := &sendOp{fd: a, buf: []byte("ping")}
	sendServer := &sendOp{fd: s, buf: []byte("pong")}

	var done uint64
	deliver := func(c Completion) {
		if c.Res != 4 {
			b.Fatalf("completion %+v", c)
		}
		if c.UserData == udRecvServer || c.UserData == udRecvClient {
			done = c.UserData
		}
	}
	waitFor := func(ud uint64) {
		for done != ud {
			if err := r.Poll(-1, deliver); err != nil {
				b.Fatal(err)
			}
		}
		done = 0
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		r.Submit(udRecvServer, recvServer) // parks: nothing sent yet
		r.Submit(udSendClient, sendClient) // completes at once
		waitFor(udRecvServer)
		r.Submit(udRecvClient, recvClient)
		r.Submit(udSendServer, sendServer)
		waitFor(udRecvClient)
	}
}

// BenchmarkNetpollPingPong is the same exchange through Go's own netpoller:
// net.FileConn over the socketpair, a client goroutine and an echo goroutine.
func BenchmarkNetpollPingPong(b *testing.B) {
	a, s := socketpair(b)
	client, server := fileConn(b, a), fileConn(b, s)
	echoed := make(chan struct{})
	go func() {
		defer close(echoed)
		buf := make([]byte, 4)
		pong := []byte("pong")
		for {
			// Ends when server is closed below.
			if _, err := io.ReadFull(server, buf); err != nil {
				return
			}
			if _, err := server.Write(pong); err != nil {
				return
			}
		}
	}()
	ping := []byte("ping")
	buf := make([]byte, 4)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := client.Write(ping); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	client.Close()
	server.Close()
	<-echoed
}

// fileConn wraps a dup of fd in a net.Conn on Go's netpoller.
func fileConn(b *testing.B, fd int) net.Conn {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	require.NoError(b, err)
	f := os.NewFile(uintptr(dup), "socketpair")
	defer f.Close() // FileConn dups again
	c, err := net.FileConn(f)
	require.NoError(b, err)
	return c
}
