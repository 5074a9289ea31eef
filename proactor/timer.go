package proactor

import (
	"sync/atomic"
	"time"
)

// Timer is a callback on a loop after a delay. Timers live in a binary heap
// per loop: no SQE and no syscall each, so a loop holds 100,000 of them as
// cheaply as one; the loop's wait simply ends at the earliest.
type Timer struct {
	l    *Loop
	when time.Duration // on the loop's monotonic clock
	seq  uint64        // ties fire in the order they were set
	f    func()
	idx  int // position in the heap, -1 when not scheduled
	// state is timerPending until the loop fires the timer or Stop stops
	// it, whichever swaps it first: so Stop can say which happened, and a
	// timer stopped by another timer's callback in the same turn, due too,
	// does not fire. The heap entry goes with the posted removal.
	state atomic.Int32
}

const (
	timerPending int32 = iota
	timerFired
	timerStopped
)

// Stop prevents the timer from firing and reports whether it did, as
// time.Timer's Stop does: false if f has already been called (or is
// running) or the timer was stopped before. From the loop goroutine it
// takes effect at once; from another goroutine, the loop may already be
// firing the timer, and then Stop reports false.
func (t *Timer) Stop() bool {
	if !t.state.CompareAndSwap(timerPending, timerStopped) {
		return false
	}
	_ = t.l.Post(func() { t.l.timers.remove(t) }) // a closed loop has no timers
	return true
}

type timerHeap []*Timer

// first returns the timer due next, or nil.
func (h timerHeap) first() *Timer {
	if len(h) == 0 {
		return nil
	}
	return h[0]
}

func (h *timerHeap) push(t *Timer) {
	t.idx = len(*h)
	*h = append(*h, t)
	h.up(t.idx)
}

func (h *timerHeap) remove(t *Timer) {
	i := t.idx
	if i < 0 || i >= len(*h) || (*h)[i] != t {
		return
	}
	last := len(*h) - 1
	h.swap(i, last)
	(*h)[last] = nil
	*h = (*h)[:last]
	t.idx = -1
	if i < last {
		h.down(i)
		h.up(i)
	}
}

// popDue removes and returns the earliest timer if it is due at now.
func (h *timerHeap) popDue(now time.Duration) *Timer {
	if len(*h) == 0 || (*h)[0].when > now {
		return nil
	}
	t := (*h)[0]
	h.remove(t)
	return t
}

// next returns how long until the earliest timer, or -1 if there is none.
func (h *timerHeap) next(now time.Duration) time.Duration {
	if len(*h) == 0 {
		return -1
	}
	return max(0, (*h)[0].when-now)
}

func (h timerHeap) less(i, j int) bool {
	if h[i].when != h[j].when {
		return h[i].when < h[j].when
	}
	return h[i].seq < h[j].seq
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i
	h[j].idx = j
}

func (h timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h timerHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}
