package fs

import (
	"context"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/internal/pagecache"
	"github.com/ringo-io/ringo/proactor"
)

// sendSyscall moves the bytes with sendfile(2). With inline set it calls
// sendfile(2) on the calling goroutine while the socket has room, as
// package net's own sendfile does, and hands the rest to the loop
// (proactor's Sendfile op: after EPOLLOUT or a ring poll) only when the
// socket answers EAGAIN; a loop op costs a hand-off to the loop and back,
// which for a small file costs several times the sendfile itself
// (BenchmarkSendFile: /raw against /sendfile). What inline gives up: a
// file not in the page cache is read from disk on the calling goroutine,
// where ctx is not looked at until the call returns; OpenOptions.NoInline
// turns it off. Before the loop's op, the part it will send is read into
// the page cache by a Read op if it is not there (internal/pagecache), so
// that the loop does not read the disk.
func sendSyscall(ctx context.Context, loop *proactor.Loop, sock, fd int, name string, off, n int64, inline bool) (int64, error) {
	op := &proactor.Sendfile{Sock: sock, File: fd}
	var sent int64
	var warm pagecache.Warmth
	tryInline := inline
	for sent < n {
		chunk := int(min(n-sent, maxSendChunk))
		if tryInline {
			if err := ctx.Err(); err != nil {
				return sent, sendErr("sendfile", name, err)
			}
			o := off + sent
			m, err := unix.Sendfile(sock, fd, &o, chunk)
			switch {
			case err == nil && m == 0:
				return sent, shrunk(name, sent, n)
			case err == nil:
				sent += int64(m)
			case err == unix.EINTR:
			case err == unix.EAGAIN:
				tryInline = false // full: wait for room on the loop
			default:
				return sent, sendErr("sendfile", name, err)
			}
			continue
		}
		op.Off = off + sent
		if op.Off >= warm.UpTo && !warm.Resident(fd, op.Off, int64(chunk)) {
			want := min(int64(chunk), pagecache.MaxRead)
			deadline, _ := ctx.Deadline()
			res, cut := pagecache.Read(loop, fd, op.Off, want, deadline, ctx.Done())
			if cut {
				err := ctx.Err()
				if err == nil {
					err = context.DeadlineExceeded
				}
				return sent, sendErr("sendfile", name, err)
			}
			warm.Warmed(op.Off, want, res) // a read error is sendfile(2)'s to report
			continue
		}
		op.N = int(min(int64(chunk), warm.UpTo-op.Off))
		res, err := doOn(ctx, loop, op)
		if err != nil {
			return sent, sendErr("sendfile", name, err)
		}
		if res == 0 {
			return sent, shrunk(name, sent, n)
		}
		sent += int64(res)
		tryInline = inline // the socket had room again
	}
	return sent, nil
}
