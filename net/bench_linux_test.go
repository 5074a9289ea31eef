package net

import (
	"io"
	"net"
	"testing"

	"github.com/ringo-io/ringo/proactor"
)

// BenchmarkEcho: 64-byte ping-pong over one TCP connection, a ringo Conn on
// each driver against package net's. Both ends are of the kind measured.
func BenchmarkEcho(b *testing.B) {
	b.Run("std", func(b *testing.B) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			echo64(c)
		}()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		pingPong(b, c)
	})
	for _, d := range []struct {
		name string
		p    func() *proactor.Proactor
	}{{"uring", func() *proactor.Proactor { return uringP }}, {"epoll", func() *proactor.Proactor { return epollP }}} {
		b.Run(d.name, func(b *testing.B) {
			p := d.p()
			if p == nil {
				b.Skip("io_uring unavailable")
			}
			c, s := pair(b, p, "tcp")
			defer c.Close()
			go echo64(s)
			pingPong(b, c)
		})
	}
}

func pingPong(b *testing.B, c net.Conn) {
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	b.SetBytes(64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
}

// echo64 answers each 64-byte message, the same way for both kinds of
// Conn (io.Copy would splice between std sockets).
func echo64(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64)
	for {
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}
