package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// A Batch is a set of file operations that a storage engine issues
// together: added one by one, submitted in one go, and collected as they
// complete or all at once.
//
// Submission: Submit hands the whole batch to one loop in one step; on
// io_uring every op that does not wait for another becomes an SQE in the
// same loop turn, so the lot costs one io_uring_enter. A read that waits
// for nothing is first tried from the page cache by Submit itself
// (preadv2 with RWF_NOWAIT, as File.ReadAt), so a cached read never
// becomes an SQE.
//
// Ordering: After(op, deps...) makes op start only after each of deps has
// completed. This is all the ordering a Batch gives, and it is exact:
//   - ordered: a dependent op is started from the completion handler of the
//     last op it waits for, on the loop goroutine, so the kernel has
//     finished those ops before it sees this one. A buffered write that
//     has completed is in the page cache, so an fsync that depends on it
//     covers it: that is the write-before-fsync guarantee.
//   - if an op it depends on fails (including a read that ends with
//     io.EOF), the dependent op is not started; it completes with an
//     error matching ErrDependency and the dependency's own error.
//   - not ordered: ops without a dependency between them run concurrently
//     and complete in any order; nothing is ordered against other batches
//     or other callers' operations on the same file; a partially completed
//     read or write is continued by further requests, which are not atomic
//     with respect to anyone else.
//   - the same on both drivers: on io_uring and on epoll the dependent op
//     is sequenced by the loop, not linked in the kernel. A dependent op
//     costs one more loop turn (one more io_uring_enter) and stalls
//     nothing else. IOSQE_IO_LINK was not used because it cannot keep
//     this contract: a linked write that completes short breaks the
//     chain and the fsync behind it fails with ECANCELED instead of
//     waiting for the rest of the write; proactor's driver may submit
//     in the middle of a chain when the SQ fills, which ends the chain
//     there; and an op the ring lacks (per-op fallback) runs on the
//     epoll path, outside any chain. IOSQE_IO_DRAIN would stall
//     unrelated ops on the ring.
//
// A Batch is used by one goroutine at a time. Reset makes it reusable,
// keeping its memory, so a steady stream of batches allocates nothing.
type Batch struct {
	p    *proactor.Proactor
	loop *proactor.Loop
	file *File

	// Owned by the caller until Submit, then by the loop until each op's
	// result has been sent.
	ops []*batchOp
	n   int // ops[:n] are this batch's; the rest are kept for reuse

	results   chan Result
	taken     int // results received by Next or Wait (caller side)
	submitted bool
	out       []Result
	startFn   func()
	cancels   []chan struct{} // closed when a posted cancel has run

	cancelled bool // loop goroutine only
}

// Result is one batch op's outcome: its index (as returned when it was
// added), the bytes moved, and its error (io.EOF for a read that reached the
// end of the file first, as io.ReaderAt).
type Result struct {
	Index int
	N     int
	Err   error
}

// ErrDependency is matched by the error of a batch op that did not start
// because an op it depended on failed.
var ErrDependency = errors.New("fs: batch dependency failed")

type batchKind uint8

const (
	bRead batchKind = iota
	bWrite
	bSync
	bDatasync
)

type batchOp struct {
	b     *Batch
	idx   int
	kind  batchKind
	f     *File
	buf   []byte
	off   int64
	done  int
	ndeps int   // how many ops this one waits for
	waits int   // of those, how many have not completed
	next  []int // ops that wait for this one
	err   error // found before the start: reported without running
	dep   error // the first failure among the ops this one waits for
	held  bool  // holds a reference on f
	id    uint64
	live  bool // an SQE (or emulated op) is in flight
	res   Result

	rd proactor.Read
	wr proactor.Write
	fy proactor.Fsync
	h  proactor.Handler
}

// Batch returns an empty batch whose ReadAt, WriteAt, Sync and Datasync
// act on f, on f's loop.
func (f *File) Batch() *Batch {
	if f == nil {
		// Every op fails with os.ErrInvalid, as f's methods do.
		b := &Batch{}
		b.init()
		return b
	}
	b := &Batch{p: f.p, loop: f.loop, file: f}
	b.init()
	return b
}

// NewBatch returns an empty batch not tied to a file (use ReadAtOn and the
// other *On methods) that runs on one of p's loops; p nil means
// proactor.Default().
func NewBatch(p *proactor.Proactor) (*Batch, error) {
	if p == nil {
		var err error
		if p, err = proactor.Default(); err != nil {
			return nil, err
		}
	}
	b := &Batch{p: p, loop: p.Next()}
	b.init()
	return b, nil
}

func (b *Batch) init() {
	b.startFn = b.start
}

// Len returns the number of ops added.
func (b *Batch) Len() int { return b.n }

// ReadAt adds a read of len(p) bytes at off on the batch's file and returns
// its index. p belongs to the batch until the op's result is taken.
func (b *Batch) ReadAt(p []byte, off int64) int { return b.add(b.file, bRead, p, off) }

// WriteAt adds a write of p at off on the batch's file.
func (b *Batch) WriteAt(p []byte, off int64) int { return b.add(b.file, bWrite, p, off) }

// Sync adds an fsync of the batch's file.
func (b *Batch) Sync() int { return b.add(b.file, bSync, nil, 0) }

// Datasync adds an fdatasync of the batch's file.
func (b *Batch) Datasync() int { return b.add(b.file, bDatasync, nil, 0) }

// ReadAtOn adds a read on f, which must belong to the batch's proactor.
func (b *Batch) ReadAtOn(f *File, p []byte, off int64) int { return b.add(f, bRead, p, off) }

// WriteAtOn adds a write on f.
func (b *Batch) WriteAtOn(f *File, p []byte, off int64) int { return b.add(f, bWrite, p, off) }

// SyncOn adds an fsync of f.
func (b *Batch) SyncOn(f *File) int { return b.add(f, bSync, nil, 0) }

// DatasyncOn adds an fdatasync of f.
func (b *Batch) DatasyncOn(f *File) int { return b.add(f, bDatasync, nil, 0) }

var (
	errSubmitted = errors.New("fs: batch already submitted")
	errNoFile    = fmt.Errorf("fs: batch op without a file: %w", os.ErrInvalid)
	errDepOrder  = errors.New("fs: a batch op can only wait for ops added before it")
)

func (b *Batch) add(f *File, kind batchKind, p []byte, off int64) int {
	if b.submitted {
		// The loop owns the ops now; Reset first.
		return -1
	}
	if b.n == len(b.ops) {
		o := &batchOp{b: b}
		o.h = func(res int32, _ uint32) { o.b.handle(o, res) }
		b.ops = append(b.ops, o)
	}
	o := b.ops[b.n]
	o.idx = b.n
	b.n++
	o.kind, o.f, o.buf, o.off = kind, f, p, off
	switch {
	case f == nil:
		o.err = errNoFile
	case f.p != b.p:
		o.err = f.pathErr(o.name(), errOtherProactor)
	case off < 0:
		o.err = f.pathErr(o.name(), errNegativeOffset)
	case kind == bWrite && f.append:
		o.err = f.pathErr(o.name(), errAppendWriteAt)
	case f.direct && (kind == bRead || kind == bWrite):
		if err := f.checkAlign(p, off); err != nil {
			o.err = f.pathErr(o.name(), err)
		}
	}
	return o.idx
}

func (o *batchOp) name() string {
	switch o.kind {
	case bRead:
		return "read"
	case bWrite:
		return "write"
	case bDatasync:
		return "datasync"
	}
	return "sync"
}

// After makes op start only once every op in deps has completed (see
// Batch for exactly what that orders). deps must have been added before
// op, which rules out cycles. Call before Submit.
func (b *Batch) After(op int, deps ...int) error {
	if b.submitted {
		return errSubmitted
	}
	if op < 0 || op >= b.n {
		return fmt.Errorf("fs: batch has no op %d", op)
	}
	for _, d := range deps {
		if d < 0 || d >= op {
			return errDepOrder
		}
		b.ops[d].next = append(b.ops[d].next, op)
		b.ops[op].ndeps++
	}
	return nil
}

// Submit starts the batch: every op that waits for no other is started in
// one loop turn. Results come from Next or Wait.
func (b *Batch) Submit() error {
	if b.submitted {
		return errSubmitted
	}
	b.submitted = true
	if b.n == 0 {
		return nil
	}
	if cap(b.results) < b.n {
		b.results = make(chan Result, b.n)
	}
	for _, o := range b.ops[:b.n] {
		o.waits = o.ndeps
		if o.err == nil {
			if o.f.acquire() {
				o.held = true
				if o.kind == bRead && o.ndeps == 0 {
					b.readInline(o)
				}
			} else {
				o.err = o.f.pathErr(o.name(), ErrClosed)
			}
		}
	}
	if b.loop == nil {
		// A nil File's batch: every op has failed already (errNoFile or
		// errOtherProactor), and there is no loop to hand them to.
		b.start()
		return nil
	}
	if err := b.loop.Post(b.startFn); err != nil {
		// The proactor is closed, so the loop will never start the batch:
		// fail every op here, on the caller's goroutine, which complete
		// allows before start.
		for _, o := range b.ops[:b.n] {
			if o.err == nil {
				o.err = o.f.pathErr(o.name(), ErrClosed)
			}
		}
		b.start()
	}
	return nil
}

// readInline serves what it can of a read that waits for no other op from
// the page cache, on the caller's goroutine, as File.ReadAt does: the loop
// then only hands over the result (launch sees the buffer full) or reads
// the rest through the ring. On tmpfs this is the difference between a
// syscall and a trip through io-wq, which tmpfs reads take on io_uring
// because tmpfs refuses RWF_NOWAIT.
func (b *Batch) readInline(o *batchOp) {
	f := o.f
	if f.noInline.Load() || f.stream || len(o.buf) == 0 {
		return
	}
	var flags uintptr = unix.RWF_NOWAIT
	if f.memory {
		flags = 0
	}
	m, e := preadv2Nowait(f.fd, o.buf, o.off, flags)
	switch e {
	case 0:
		if m == 0 {
			o.err = io.EOF // launch reports it without a ring trip
			return
		}
		o.done = m
	case unix.EAGAIN, unix.EINTR: // the op tries again (see interrupted)
	case unix.EOPNOTSUPP, unix.ENOSYS, unix.EINVAL:
		f.noInline.Store(true) // see File.pread
	default:
		o.err = f.pathErr(o.name(), e)
	}
}

// start runs on the loop goroutine: it starts the ops that wait for none;
// the others start from completions.
func (b *Batch) start() {
	for _, o := range b.ops[:b.n] {
		if o.ndeps == 0 {
			b.launch(o)
		}
	}
}

// launch starts (or, after a short transfer, continues) o. Loop goroutine.
func (b *Batch) launch(o *batchOp) {
	if o.err != nil {
		b.complete(o, 0, o.err)
		return
	}
	if b.cancelled {
		b.complete(o, o.done, o.f.pathErr(o.name(), context.Canceled))
		return
	}
	var op proactor.Op
	switch o.kind {
	case bRead, bWrite:
		if o.done == len(o.buf) {
			b.complete(o, o.done, nil)
			return
		}
		if o.kind == bRead {
			o.rd = proactor.Read{Fd: o.f.fd, Buf: o.buf[o.done:], Off: o.off + int64(o.done)}
			op = &o.rd
		} else {
			o.wr = proactor.Write{Fd: o.f.fd, Buf: o.buf[o.done:], Off: o.off + int64(o.done)}
			op = &o.wr
		}
	case bSync, bDatasync:
		o.fy = proactor.Fsync{Fd: o.f.fd, Datasync: o.kind == bDatasync}
		op = &o.fy
	}
	id, err := b.loop.SubmitInLoop(op, o.h)
	if err != nil {
		b.complete(o, o.done, o.f.pathErr(o.name(), engineErr(err)))
		return
	}
	o.id, o.live = id, true
}

// handle receives o's completion on the loop goroutine.
func (b *Batch) handle(o *batchOp, res int32) {
	o.live = false
	o.rd.Buf, o.wr.Buf = nil, nil
	if interrupted(res) && !b.cancelled && !o.f.closing() {
		b.launch(o) // as File.do does
		return
	}
	if res < 0 {
		err := o.f.resErr(noCtx, res, false)
		if b.cancelled && res == -int32(unix.ECANCELED) {
			err = context.Canceled
		}
		b.complete(o, o.done, o.f.pathErr(o.name(), err))
		return
	}
	switch o.kind {
	case bSync, bDatasync:
		b.complete(o, 0, nil)
		return
	case bRead:
		if res == 0 {
			b.complete(o, o.done, io.EOF)
			return
		}
	case bWrite:
		if res == 0 {
			b.complete(o, o.done, o.f.pathErr("write", io.ErrShortWrite))
			return
		}
	}
	o.done += int(res)
	if o.f.direct && o.done < len(o.buf) && o.f.checkAlign(o.buf[o.done:], o.off+int64(o.done)) != nil {
		// O_DIRECT transfers end short at the end of the file only; the
		// rest cannot even be asked for.
		if o.kind == bRead {
			b.complete(o, o.done, io.EOF)
		} else {
			b.complete(o, o.done, o.f.pathErr("write", io.ErrShortWrite))
		}
		return
	}
	b.launch(o) // the rest of a short transfer, or completion
}

// complete records o's result, hands it to the caller and releases the ops
// that wait for o. Loop goroutine (or Submit's goroutine before start).
func (b *Batch) complete(o *batchOp, n int, err error) {
	if o.held {
		o.held = false
		o.f.release()
	}
	o.res = Result{Index: o.idx, N: n, Err: err}
	// After the send the caller may take the last result and Reset the
	// batch, so nothing of o is read past it; the ops in next have not
	// completed, so the batch cannot be reset under them.
	next := o.next
	b.results <- o.res // never blocks: the channel holds every result
	for _, i := range next {
		d := b.ops[i]
		if err != nil && d.dep == nil {
			d.dep = fmt.Errorf("%w: op %d: %w", ErrDependency, o.idx, err)
		}
		d.waits--
		if d.waits == 0 {
			if d.dep != nil {
				if d.held {
					d.held = false
					d.f.release()
				}
				d.err = d.dep
			}
			b.launch(d)
		}
	}
}

// Cancel asks the kernel to stop the batch's ops in flight; they complete
// with an error matching context.Canceled (or their real result if they had
// finished), and ops not started yet do not start. Wait or Next still
// deliver every result.
func (b *Batch) Cancel() {
	if !b.submitted || b.taken == b.n || b.loop == nil {
		return
	}
	// The cancel runs on the loop and reads the ops, so Reset waits for
	// it before handing them back to the caller.
	done := make(chan struct{})
	b.cancels = append(b.cancels, done)
	posted := b.loop.Post(func() {
		defer close(done)
		b.cancelled = true
		for _, o := range b.ops[:b.n] {
			if o.live {
				b.loop.CancelInLoop(o.id)
			}
		}
	})
	if posted != nil {
		close(done) // a closed loop has cancelled everything already
	}
}

// Next waits for the next op to complete and returns its result; false
// once every result has been taken (or the batch was never submitted).
func (b *Batch) Next() (Result, bool) {
	if !b.submitted || b.taken == b.n {
		return Result{}, false
	}
	r := <-b.results
	b.taken++
	return r, true
}

// NextContext is Next that stops waiting when ctx ends; the ops go on
// (Cancel stops them).
func (b *Batch) NextContext(ctx context.Context) (Result, bool, error) {
	if !b.submitted || b.taken == b.n {
		return Result{}, false, nil
	}
	select {
	case r := <-b.results:
		b.taken++
		return r, true, nil
	case <-ctx.Done():
		return Result{}, false, ctx.Err()
	}
}

// Wait waits for every op and returns all results in index order (the
// slice is the batch's until Reset) and the first error by index, io.EOF
// included.
func (b *Batch) Wait() ([]Result, error) {
	for b.submitted && b.taken < b.n {
		<-b.results
		b.taken++
	}
	b.out = b.out[:0]
	var first error
	for _, o := range b.ops[:b.n] {
		b.out = append(b.out, o.res)
		if first == nil && o.res.Err != nil {
			first = o.res.Err
		}
	}
	return b.out, first
}

// WaitContext is Wait that cancels the batch when ctx ends, and still waits
// for every op to complete (their buffers are the kernel's until then).
func (b *Batch) WaitContext(ctx context.Context) ([]Result, error) {
	for b.submitted && b.taken < b.n {
		select {
		case <-b.results:
			b.taken++
		case <-ctx.Done():
			b.Cancel()
			return b.Wait()
		}
	}
	return b.Wait()
}

// Reset waits for every op of a submitted batch, then empties it for reuse.
func (b *Batch) Reset() {
	if b.submitted {
		_, _ = b.Wait()
	}
	for _, c := range b.cancels {
		<-c
	}
	b.cancels = b.cancels[:0]
	for _, o := range b.ops[:b.n] {
		*o = batchOp{b: b, h: o.h, next: o.next[:0]}
	}
	b.n, b.taken, b.submitted, b.cancelled = 0, 0, false, false
}
