package proactor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ringo-io/ringo/ring"
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
// completion dispatched to a handler. The raw ring's cost for the same
// batches (ring's BenchmarkNop at batch=32) is measured in the same run,
// in chunks that alternate with the proactor's, and reported as
// ring-ns/op with the ratio x-ring: this machine's speed drifts by a
// quarter from one second to the next, more than the difference measured,
// so the two are compared only side by side.
func BenchmarkNopCallback(b *testing.B) {
	for _, d := range benchDrivers {
		b.Run(d.name, func(b *testing.B) {
			p := benchProactor(b, d.opts)
			l := p.Loop(0)
			r, err := ring.New(256)
			if err != nil {
				b.Skip(err)
			}
			defer r.Close()
			cqes := make([]ring.CQE, 256)
			const batch = 32
			done := make(chan struct{}, 1)
			left, inflight := 0, 0
			var end time.Time
			var h Handler
			submit := func() {
				for inflight < batch && left > 0 {
					if _, err := l.SubmitInLoop(Nop{}, h); err != nil {
						b.Error(err)
						done <- struct{}{}
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
						// Timed here, not after <-done: a WaitEnter loop's
						// thread keeps its P as it blocks in io_uring_enter,
						// so with GOMAXPROCS=1 the goroutine done wakes
						// runs only once sysmon retakes the P.
						end = time.Now()
						done <- struct{}{}
						return
					}
					submit()
				}
			}
			var ringTime, loopTime time.Duration
			const chunk = 1 << 15
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n += chunk {
				k := min(chunk, b.N-n)
				t0 := time.Now()
				ringNops(b, r, cqes, k, batch)
				t1 := time.Now()
				left = k
				l.Post(submit)
				<-done
				ringTime += t1.Sub(t0)
				loopTime += end.Sub(t1)
			}
			b.StopTimer()
			m := p.Metrics()[0]
			b.ReportMetric(m.SQEsPerEnter(), "sqes/enter")
			// ns/op is the proactor's alone, without the ring's chunks.
			b.ReportMetric(float64(loopTime.Nanoseconds())/float64(b.N), "ns/op")
			b.ReportMetric(float64(ringTime.Nanoseconds())/float64(b.N), "ring-ns/op")
			b.ReportMetric(float64(loopTime)/float64(ringTime), "x-ring")
		})
	}
}

// ringNops is ring's BenchmarkNop loop: n NOPs through r in batches, one
// io_uring_enter per batch.
func ringNops(b *testing.B, r *ring.Ring, cqes []ring.CQE, n, batch int) {
	for done := 0; done < n; {
		k := min(batch, n-done)
		for i := 0; i < k; i++ {
			ring.PrepNop(r.GetSQE())
		}
		if _, err := r.SubmitAndWait(uint32(k)); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < k; {
			c := r.Peek(cqes)
			r.Advance(c)
			got += c
		}
		done += k
	}
}

// BenchmarkNopBlocking is Do(Nop) from one goroutine: a submission through
// the queue, a wake of the idle loop, the op, and a goroutine wake-up back.
// This is also the idle-wait comparison: every op finds the loop asleep,
// so the loop's way of waiting (WaitEnter or WaitNetpoll) is what differs.
// BenchmarkGoroutineWake is the floor it is measured against; its round
// trip also runs here, in chunks alternating with the Do chunks (as
// BenchmarkNopCallback does with the ring), reported as wake-ns/op and
// x-wake.
func BenchmarkNopBlocking(b *testing.B) {
	for _, d := range benchDrivers {
		b.Run(d.name, func(b *testing.B) {
			p := benchProactor(b, d.opts)
			l := p.Loop(0)
			ctx := context.Background()
			req, resp := make(chan struct{}), make(chan struct{})
			go func() {
				for range req {
					resp <- struct{}{}
				}
			}()
			defer close(req)
			var doTime, wakeTime time.Duration
			const chunk = 1 << 12
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n += chunk {
				k := min(chunk, b.N-n)
				t0 := time.Now()
				for i := 0; i < k; i++ {
					req <- struct{}{}
					<-resp
				}
				t1 := time.Now()
				for i := 0; i < k; i++ {
					if _, _, err := l.Do(ctx, Nop{}); err != nil {
						b.Fatal(err)
					}
				}
				doTime += time.Since(t1)
				wakeTime += t1.Sub(t0)
			}
			b.StopTimer()
			// ns/op is Do's alone, without the wake-up chunks.
			b.ReportMetric(float64(doTime.Nanoseconds())/float64(b.N), "ns/op")
			b.ReportMetric(float64(wakeTime.Nanoseconds())/float64(b.N), "wake-ns/op")
			b.ReportMetric(float64(doTime)/float64(wakeTime), "x-wake")
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
