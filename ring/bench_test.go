package ring

import (
	"fmt"
	"testing"
)

// BenchmarkNop submits and reaps NOPs in batches: the ring's own cost per
// op, with one io_uring_enter per batch. bench/c/nop_liburing.c is the same
// loop in C against liburing; `make bench` runs both side by side.
func BenchmarkNop(b *testing.B) {
	for _, batch := range []int{1, 32, 256} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			r, err := New(256)
			if err != nil {
				b.Skip(err)
			}
			defer r.Close()
			cqes := make([]CQE, 256)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(batch, b.N-done)
				for i := 0; i < n; i++ {
					PrepNop(r.GetSQE())
				}
				if _, err := r.SubmitAndWait(uint32(n)); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < n; {
					k := r.Peek(cqes)
					r.Advance(k)
					got += k
				}
				done += n
			}
		})
	}
}
