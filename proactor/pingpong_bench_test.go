package proactor

import (
	"context"
	"io"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// The ping-pong benchmarks compare a driver's cost per op with Go's own
// netpoller for the same work (issue 4): a 4-byte message back and forth
// over a unix socketpair, one round trip (2 sends, 2 receives, each receive
// posted before its data exists) per b.N iteration.

func benchSocketpair(b *testing.B) (int, int) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// BenchmarkPingPongNetpoll: net.Conn over the socketpair, a client
// goroutine and an echo goroutine, parked and readied by Go's netpoller.
func BenchmarkPingPongNetpoll(b *testing.B) {
	a, s := benchSocketpair(b)
	client, server := benchFileConn(b, a), benchFileConn(b, s)
	echoed := make(chan struct{})
	go func() {
		defer close(echoed)
		buf := make([]byte, 4)
		for {
			if _, err := io.ReadFull(server, buf); err != nil {
				return
			}
			if _, err := server.Write(buf); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 4)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := client.Write([]byte("ping")); err != nil {
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

func benchFileConn(b *testing.B, fd int) net.Conn {
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	f := os.NewFile(uintptr(dup), "socketpair")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkPingPongDo: the same two goroutines, each op through the
// proactor's blocking form (Do), as net.Conn on ringo does it.
func BenchmarkPingPongDo(b *testing.B) {
	for _, d := range benchDrivers {
		b.Run(d.name, func(b *testing.B) {
			p := benchProactor(b, d.opts)
			l := p.Loop(0)
			a, s := benchSocketpair(b)
			ctx := context.Background()
			stop := make(chan struct{})
			echoed := make(chan struct{})
			go func() {
				defer close(echoed)
				buf := make([]byte, 4)
				recv, send := &Recv{Fd: s, Buf: buf}, &Send{Fd: s, Buf: buf}
				for {
					if res, _, err := l.Do(ctx, recv); err != nil || res <= 0 {
						return
					}
					select {
					case <-stop:
						return
					default:
					}
					if res, _, err := l.Do(ctx, send); err != nil || res != 4 {
						return
					}
				}
			}()
			buf := make([]byte, 4)
			send, recv := &Send{Fd: a, Buf: []byte("ping")}, &Recv{Fd: a, Buf: buf}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if res, _, err := l.Do(ctx, send); err != nil || res != 4 {
					b.Fatal(res, err)
				}
				if res, _, err := l.Do(ctx, recv); err != nil || res != 4 {
					b.Fatal(res, err)
				}
			}
			b.StopTimer()
			close(stop)
			unix.Shutdown(a, unix.SHUT_WR) // the echo's recv sees EOF
			<-echoed
		})
	}
}

// BenchmarkPingPongCallback: both ends driven by handlers on the loop
// goroutine, no goroutine parked per op (the gnet-style form).
func BenchmarkPingPongCallback(b *testing.B) {
	for _, d := range benchDrivers {
		b.Run(d.name, func(b *testing.B) {
			p := benchProactor(b, d.opts)
			l := p.Loop(0)
			a, s := benchSocketpair(b)
			sbuf, cbuf := make([]byte, 4), make([]byte, 4)
			recvS, sendS := &Recv{Fd: s, Buf: sbuf}, &Send{Fd: s, Buf: sbuf}
			sendC, recvC := &Send{Fd: a, Buf: []byte("ping")}, &Recv{Fd: a, Buf: cbuf}
			done := make(chan error, 1)
			n := b.N
			var onRecvS, onRecvC, ignore Handler
			ignore = func(res int32, _ uint32) {
				if res != 4 {
					done <- errnoErr(res)
				}
			}
			round := func() {
				if _, err := l.SubmitInLoop(recvS, onRecvS); err != nil {
					done <- err
					return
				}
				l.SubmitInLoop(sendC, ignore)
			}
			onRecvS = func(res int32, _ uint32) {
				if res != 4 {
					done <- errnoErr(res)
					return
				}
				l.SubmitInLoop(recvC, onRecvC)
				l.SubmitInLoop(sendS, ignore)
			}
			onRecvC = func(res int32, _ uint32) {
				if res != 4 {
					done <- errnoErr(res)
					return
				}
				if n--; n == 0 {
					done <- nil
					return
				}
				round()
			}
			b.ReportAllocs()
			b.ResetTimer()
			l.Post(round)
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

func errnoErr(res int32) error {
	if res >= 0 {
		return io.ErrShortWrite
	}
	return unix.Errno(-res)
}
