package net

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/leakcheck"
	"github.com/ringo-io/ringo/proactor"
)

// The two proactors every behavioural test runs on; nil when that backend
// cannot be set up here (the tests then skip with the reason).
var (
	uringP, epollP *proactor.Proactor
	uringErr       error
	// WaitEnter proactors, which callback servers are best on: the
	// Serve tests run on these as well.
	uringEnterP, epollEnterP *proactor.Proactor
)

func TestMain(m *testing.M) {
	if addr := os.Getenv(clientEnv); addr != "" {
		// A child process of TestServe10k: the client side, whose
		// descriptors would not fit in this process's limit too.
		os.Exit(runClient(addr))
	}
	// 2,000 connections need 4,000 descriptors plus the rings.
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &rl)
	}
	leakcheck.Main(m, func() (err error) {
		uringP, uringErr = proactor.New(proactor.Options{Backend: proactor.Uring, Loops: 2})
		if uringErr == nil {
			uringEnterP, uringErr = proactor.New(proactor.Options{Backend: proactor.Uring, Loops: 2, Wait: proactor.WaitEnter})
		}
		epollP, err = proactor.New(proactor.Options{Backend: proactor.Epoll, Loops: 2})
		if err == nil {
			epollEnterP, err = proactor.New(proactor.Options{Backend: proactor.Epoll, Loops: 2, Wait: proactor.WaitEnter})
		}
		if err != nil {
			return fmt.Errorf("epoll proactor: %w", err)
		}
		return nil
	}, func() {
		for _, p := range []*proactor.Proactor{uringP, uringEnterP, epollP, epollEnterP} {
			if p != nil {
				p.Close()
			}
		}
	})
}

func countFds() int { return leakcheck.CountFds() }

// drivers runs f once per backend, as subtests "uring" and "epoll".
func drivers(t *testing.T, f func(t *testing.T, p *proactor.Proactor)) {
	t.Run("uring", func(t *testing.T) {
		if uringP == nil {
			t.Skipf("io_uring unavailable: %v", uringErr)
		}
		f(t, uringP)
	})
	t.Run("epoll", func(t *testing.T) { f(t, epollP) })
}

// evDrivers is drivers for the callback API: each backend with each
// WaitMode, as subtests "uring", "epoll", "uring-enter" and "epoll-enter".
func evDrivers(t *testing.T, f func(t *testing.T, p *proactor.Proactor)) {
	drivers(t, f)
	t.Run("uring-enter", func(t *testing.T) {
		if uringEnterP == nil {
			t.Skipf("io_uring unavailable: %v", uringErr)
		}
		f(t, uringEnterP)
	})
	t.Run("epoll-enter", func(t *testing.T) { f(t, epollEnterP) })
}

// listen opens a listener for network on a free address.
func testListen(t testing.TB, p *proactor.Proactor, network string) *Listener {
	t.Helper()
	addr := "127.0.0.1:0"
	if network == "unix" {
		addr = filepath.Join(t.TempDir(), "s")
	}
	lc := ListenConfig{Proactor: p}
	ln, err := lc.Listen(context.Background(), network, addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln.(*Listener)
}

// pair returns both ends of one connection, both ringo Conns.
func pair(t testing.TB, p *proactor.Proactor, network string) (dialed, accepted *Conn) {
	t.Helper()
	ln := testListen(t, p, network)
	defer ln.Close()
	c1, c2, err := pairOn(ln, p)
	if err != nil {
		t.Fatal(err)
	}
	return c1, c2
}

func pairOn(ln *Listener, p *proactor.Proactor) (dialed, accepted *Conn, err error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	d := Dialer{Proactor: p}
	c1, err := d.DialContext(context.Background(), ln.Addr().Network(), ln.Addr().String())
	r := <-ch
	if err != nil || r.err != nil {
		if c1 != nil {
			c1.Close()
		}
		if r.c != nil {
			r.c.Close()
		}
		return nil, nil, fmt.Errorf("dial: %v, accept: %v", err, r.err)
	}
	return c1.(*Conn), r.c.(*Conn), nil
}
