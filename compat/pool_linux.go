package compat

import (
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Job states, in entry.jobState.
const (
	jobQueued  = iota // in pool.queue; Cancel completes it with -ECANCELED
	jobRunning        // a worker is inside Perform; Cancel answers -EALREADY
	jobDone           // its final result is in pool.done; Cancel answers -ENOENT
)

// pool runs ops whose descriptors epoll cannot watch. Like io_uring's io-wq
// it is bounded (Config.Workers goroutines, each possibly blocked in a
// syscall), so a burst of file ops cannot spawn a thread per op. Workers
// start lazily: a reactor serving only sockets never starts one.
type pool struct {
	max    int    // immutable after init
	signal func() // wakes the loop after results are posted; immutable after init

	mu      sync.Mutex
	cond    sync.Cond
	queue   entryList   // jobs not yet started, oldest first
	done    []jobResult // results not yet collected by the loop
	spare   []jobResult // loop goroutine only: the previous done slice, reused
	started int         // workers started
	idle    int         // workers waiting on cond and not yet signalled
	closing bool
	wg      sync.WaitGroup

	hasDone atomic.Bool // done is non-empty; lets the loop skip mu when idle
}

// jobResult is one completion from a worker. e is set on the final
// completion only, so the loop recycles the entry exactly once.
type jobResult struct {
	e        *entry
	ud       uint64
	res      int32
	flags    uint32
	panicked any // Perform panicked with this (res is then -EINVAL)
}

func (p *pool) init(max int, signal func()) {
	p.max = max
	p.signal = signal
	p.cond.L = &p.mu
}

// toPool hands op to the worker pool.
func (r *Reactor) toPool(ud uint64, op Op) {
	e := r.alloc()
	e.ud, e.op, e.fdnum, e.where = ud, op, op.PollFd(), onPool
	r.byUD[ud] = e
	p := &r.pool
	p.mu.Lock()
	e.jobState = jobQueued
	p.queue.push(e)
	switch {
	case p.idle > 0:
		p.idle-- // counted here so a second submit before the wake-up starts or signals another
		p.cond.Signal()
	case p.started < p.max:
		p.started++
		p.wg.Add(1)
		go p.worker()
	}
	p.mu.Unlock()
}

func (p *pool) worker() {
	defer p.wg.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		for p.queue.empty() && !p.closing {
			p.idle++
			p.cond.Wait()
		}
		if p.closing {
			return
		}
		e := p.queue.head
		p.queue.remove(e)
		e.jobState = jobRunning
		ud, op := e.ud, e.op
		p.mu.Unlock()
		res, flags, panicked := performSafe(op)
		p.mu.Lock()
		if p.closing {
			return // Close delivers nothing further
		}
		jr := jobResult{ud: ud, res: res, flags: flags &^ FlagAgainIsResult, panicked: panicked}
		if flags&FlagMore != 0 {
			// Still armed: back of the queue, so one multishot job cannot
			// monopolise a worker.
			e.jobState = jobQueued
			p.queue.push(e)
		} else {
			e.jobState = jobDone
			jr.e = e
		}
		p.done = append(p.done, jr)
		p.hasDone.Store(true)
		p.mu.Unlock()
		p.signal()
		p.mu.Lock()
	}
}

// collect moves worker results to the completion queue. Loop goroutine.
func (r *Reactor) collect() {
	p := &r.pool
	if !p.hasDone.Load() {
		return
	}
	p.mu.Lock()
	batch := p.takeDoneLocked()
	p.mu.Unlock()
	r.postDone(batch)
}

// takeDoneLocked takes the workers' results; p.mu is held.
func (p *pool) takeDoneLocked() []jobResult {
	batch := p.done
	p.done = p.spare[:0]
	p.hasDone.Store(false)
	return batch
}

// postDone queues the results takeDoneLocked took. Loop goroutine.
func (r *Reactor) postDone(batch []jobResult) {
	for _, jr := range batch {
		if jr.panicked != nil {
			r.reportPanic(jr.panicked)
		}
		r.post(jr.ud, jr.res, jr.flags)
		if jr.e != nil {
			r.release(jr.e)
		}
	}
	clear(batch)
	r.pool.spare = batch[:0]
}

// cancelJob cancels a job entry, answering as ASYNC_CANCEL would.
func (r *Reactor) cancelJob(e *entry) int32 {
	ud := e.ud
	// Results already posted by the worker (a multishot job's earlier
	// completions) must be queued before the -ECANCELED that ends it, and
	// taken under the same hold of the lock as the job's state: a worker
	// that finished in between would re-queue the job and post a FlagMore
	// result that, collected later, would follow the final -ECANCELED.
	p := &r.pool
	p.mu.Lock()
	batch := p.takeDoneLocked()
	state := e.jobState
	if state == jobQueued {
		p.queue.remove(e)
	}
	p.mu.Unlock()
	r.postDone(batch)
	if r.byUD[ud] != e {
		return -int32(unix.ENOENT) // its final result was just collected
	}
	switch state {
	case jobQueued:
		r.post(ud, -int32(unix.ECANCELED), 0)
		r.release(e)
		return 0
	case jobRunning:
		return -int32(unix.EALREADY)
	default:
		return -int32(unix.ENOENT) // finished; its result comes with the next Poll
	}
}

// cancelJobsOnFd cancels the jobs on fd that no worker has started.
func (r *Reactor) cancelJobsOnFd(fd int) int {
	p := &r.pool
	var cancelled entryList
	p.mu.Lock()
	batch := p.takeDoneLocked() // as in cancelJob: results before the cancels
	for e := p.queue.head; e != nil; {
		next := e.next
		if e.fdnum == fd {
			p.queue.remove(e)
			cancelled.push(e)
		}
		e = next
	}
	p.mu.Unlock()
	r.postDone(batch)
	n := 0
	for e := cancelled.head; e != nil; {
		next := e.next
		r.post(e.ud, -int32(unix.ECANCELED), 0)
		r.release(e)
		e = next
		n++
	}
	return n
}

// close drops queued jobs, waits for running ones and stops the workers.
func (p *pool) close() {
	p.mu.Lock()
	p.closing = true
	p.queue = entryList{}
	p.done = nil
	p.cond.Broadcast()
	p.mu.Unlock()
	p.wg.Wait()
}
