package compat

import "golang.org/x/sys/unix"

// Directions index fdState.q and entry.where.
const (
	dirRead  = 0
	dirWrite = 1
	onPool   = 2 // entry.where for an op handed to the worker pool
)

func dirOf(readiness uint32) int {
	if readiness&unix.EPOLLOUT != 0 {
		return dirWrite
	}
	return dirRead
}

// entry is a pending op: waiting on an fd's FIFO or owned by the pool.
// Entries are recycled through Reactor.free so that parking an op does not
// allocate.
type entry struct {
	// Set by the loop before the entry is queued; immutable until release.
	ud    uint64
	op    Op
	fdnum int      // op.PollFd(), captured so the pool can match CancelFd without calling op under its lock
	where uint8    // dirRead, dirWrite or onPool
	fd    *fdState // the fd whose FIFO holds the entry; nil on the pool

	// Links in exactly one entryList: an fd's FIFO (loop goroutine only) or
	// the pool's job queue (guarded by pool.mu). Also links Reactor.free.
	next, prev *entry

	// jobState is the entry's state on the pool; guarded by pool.mu.
	jobState uint8
}

// entryList is an intrusive doubly linked FIFO, so Cancel removes from the
// middle in O(1).
type entryList struct{ head, tail *entry }

func (l *entryList) empty() bool { return l.head == nil }

func (l *entryList) push(e *entry) {
	e.next, e.prev = nil, l.tail
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

func (l *entryList) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.next, e.prev = nil, nil
}

// fdState is the reactor's view of one descriptor. It lives from the first
// op that has to wait on the fd until CancelFd, and is reused by every op in
// between, so steady-state traffic on a connection allocates nothing.
// Loop goroutine only.
type fdState struct {
	fd         int
	mask       uint32       // events registered with epoll; 0 until EPOLL_CTL_ADD
	unpollable bool         // epoll refused the fd (EPERM): its ops run on the pool
	dead       bool         // forgotten by CancelFd; may still be on the run queue
	runBits    uint8        // 1<<dir for each direction waiting on the run queue
	q          [2]entryList // waiting ops per direction, in submission order
}

// fdState returns st, or the state for fd, creating it if needed.
func (r *Reactor) fdState(st *fdState, fd int) *fdState {
	if st != nil {
		return st
	}
	if st = r.fds[fd]; st == nil {
		st = &fdState{fd: fd}
		r.fds[fd] = st
	}
	return st
}

func (r *Reactor) alloc() *entry {
	e := r.free
	if e == nil {
		return new(entry)
	}
	r.free = e.next
	e.next = nil
	return e
}

// release forgets e and recycles it.
func (r *Reactor) release(e *entry) {
	// ud is opaque and a caller may reuse one; only drop the mapping if it
	// still points at this entry.
	if r.byUD[e.ud] == e {
		delete(r.byUD, e.ud)
	}
	*e = entry{next: r.free}
	r.free = e
}

// park queues op on st's FIFO for dir and makes sure epoll watches for it.
func (r *Reactor) park(st *fdState, dir int, ud uint64, op Op) {
	e := r.alloc()
	e.ud, e.op, e.fdnum, e.where, e.fd = ud, op, st.fd, uint8(dir), st
	st.q[dir].push(e)
	r.byUD[ud] = e
	r.arm(st)
}

// schedule puts st on the run queue: dir is ready but its drain stopped
// before EAGAIN, so no new edge will come for it.
func (r *Reactor) schedule(st *fdState, dir int) {
	if st.runBits == 0 {
		r.runq = append(r.runq, st)
	}
	st.runBits |= 1 << dir
}

// arm brings st's epoll registration in line with its waiting ops: added
// with baseEvents on the first waiting op, EPOLLOUT present exactly while a
// write waits. EPOLL_CTL_ADD and _MOD both re-check readiness in the kernel,
// so an fd that became ready between the op's EAGAIN and this call still
// reports.
func (r *Reactor) arm(st *fdState) {
	want := uint32(baseEvents)
	if !st.q[dirWrite].empty() {
		want |= unix.EPOLLOUT
	}
	if st.mask == want || st.dead || st.unpollable {
		return
	}
	ev := unix.EpollEvent{Events: want, Fd: int32(st.fd)}
	op := unix.EPOLL_CTL_MOD
	if st.mask == 0 {
		op = unix.EPOLL_CTL_ADD
	}
	err := unix.EpollCtl(r.epfd, op, st.fd, &ev)
	if err == unix.ENOENT && op == unix.EPOLL_CTL_MOD {
		// The fd was closed and its number reused without CancelFd: the
		// kernel dropped the old registration. Register the new file.
		err = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, st.fd, &ev)
	}
	if err != nil {
		r.failFd(st, err)
		return
	}
	st.mask = want
}

// failFd handles an fd epoll will not watch. EPERM means a file type without
// poll support (a regular file or directory handed in as pollable): its ops
// never become "ready", so they go to the worker pool, where Perform can
// simply run. Any other error (EBADF for a closed fd) is the result each
// waiting op gets, as io_uring would report it in the CQE.
func (r *Reactor) failFd(st *fdState, err error) {
	errno, _ := err.(unix.Errno)
	if errno == 0 {
		errno = unix.EINVAL
	}
	for dir := range st.q {
		for e := st.q[dir].head; e != nil; {
			next := e.next
			if errno == unix.EPERM {
				ud, op := e.ud, e.op
				r.release(e)
				r.toPool(ud, op)
			} else {
				r.post(e.ud, -int32(errno), 0)
				r.release(e)
			}
			e = next
		}
		st.q[dir] = entryList{}
	}
	if errno == unix.EPERM {
		st.unpollable = true // later ops on fd skip epoll until CancelFd
		return
	}
	st.dead = true
	delete(r.fds, st.fd)
}

// drain runs st's waiting ops for dir in order until one reports -EAGAIN, as
// edge-triggered epoll requires, or the fairness budget runs out.
func (r *Reactor) drain(st *fdState, dir int) {
	q := &st.q[dir]
	budget := drainBudget
	for e := q.head; e != nil; {
		if budget == 0 {
			r.schedule(st, dir)
			return
		}
		budget--
		res, flags := r.perform(e.op)
		if res == -int32(unix.EAGAIN) {
			if flags&FlagAgainIsResult == 0 {
				return
			}
			flags &^= FlagAgainIsResult
		}
		r.post(e.ud, res, flags)
		if flags&FlagMore != 0 {
			continue // multishot: still armed, try again
		}
		next := e.next
		q.remove(e)
		r.release(e)
		e = next
	}
}
