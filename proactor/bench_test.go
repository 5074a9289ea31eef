package proactor

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

func benchProactor(b *testing.B, opts Options) *Proactor {
	opts.Logger = quiet
	if opts.Loops == 0 {
		opts.Loops = 1
	}
	p, err := New(opts)
	if err != nil {
		b.Skip(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

var benchDrivers = []struct {
	name string
	opts Options
}{
	{"uring", Options{Backend: Uring, Wait: WaitEnter}},
	{"uring-netpoll", Options{Backend: Uring, Wait: WaitNetpoll}},
	{"epoll", Options{Backend: Epoll, Wait: WaitEnter}},
	{"epoll-netpoll", Options{Backend: Epoll, Wait: WaitNetpoll}},
}

// BenchmarkNopCallback is the engine's own cost per op in the callback
// form: NOPs submitted from the loop goroutine in batches of 32, each
// completion dispatched to a handler. Compare with ring's BenchmarkNop
// at batch=32 (the raw ring cost).
func BenchmarkNopCallback(b *testing.B) {
	for _, d := range benchDrivers {
		b.Run(d.name, func(b *testing.B) {
			p := benchProactor(b, d.opts)
			l := p.Loop(0)
			const batch = 32
			done := make(chan struct{})
			left, inflight := b.N, 0
			var h Handler
			submit := func() {
				for inflight < batch && left > 0 {
					if _, err := l.SubmitInLoop(Nop{}, h); err != nil {
						b.Error(err)
						return
					}
					inflight++
					left--
				}
			}
			h = func(int32, uint32) {
				inflight--
				if inflight == 0 {
					if left == 0 {
						close(done)
						return
					}
					submit()
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			l.Post(submit)
			<-done
			b.StopTimer()
			m := p.Metrics()[0]
			b.ReportMetric(m.SQEsPerEnter(), "sqes/enter")
		})
	}
}

// BenchmarkNopBlocking is Do(Nop) from one goroutine: a submission through
// the queue, a wake of the idle loop, the op, and a goroutine wake-up back.
// This is also the idle-wait comparison: every op finds the loop asleep,
// so the loop's way of waiting (WaitEnter or WaitNetpoll) is what differs.
// BenchmarkGoroutineWake is the floor it is measured against.
func BenchmarkNopBlocking(b *testing.B) {
	for _, d := range benchDrivers {
		b.Run(d.name, func(b *testing.B) {
			p := benchProactor(b, d.opts)
			l := p.Loop(0)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, _, err := l.Do(ctx, Nop{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGoroutineWake is one goroutine handing work to another and
// being woken with the answer: the cost Do cannot avoid.
func BenchmarkGoroutineWake(b *testing.B) {
	req, resp := make(chan struct{}), make(chan struct{})
	go func() {
		for range req {
			resp <- struct{}{}
		}
	}()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		req <- struct{}{}
		<-resp
	}
	close(req)
}

// BenchmarkSubmitters is Do(Nop) from many goroutines at once: the queue
// batches their ops, so many SQEs go in one io_uring_enter.
func BenchmarkSubmitters(b *testing.B) {
	for _, n := range []int{1000} {
		for _, d := range benchDrivers {
			b.Run(fmt.Sprintf("%s/goroutines=%d", d.name, n), func(b *testing.B) {
				p := benchProactor(b, d.opts)
				l := p.Loop(0)
				var wg sync.WaitGroup
				per := b.N/n + 1
				start := make(chan struct{})
				for g := 0; g < n; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						for i := 0; i < per; i++ {
							l.Do(context.Background(), Nop{})
						}
					}()
				}
				b.ReportAllocs()
				b.ResetTimer()
				close(start)
				wg.Wait()
				b.StopTimer()
				m := p.Metrics()[0]
				b.ReportMetric(m.SQEsPerEnter(), "sqes/enter")
			})
		}
	}
}
