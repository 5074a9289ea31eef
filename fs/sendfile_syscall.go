package fs

import (
	"context"

	"github.com/ringo-io/ringo/proactor"
)

// sendSyscall moves the bytes with proactor's Sendfile op (sendfile(2) on
// the loop: inline while the socket has room, after EPOLLOUT or a ring
// poll otherwise), continuing after each short transfer.
func sendSyscall(ctx context.Context, loop *proactor.Loop, sock, fd int, name string, off, n int64) (int64, error) {
	op := &proactor.Sendfile{Sock: sock, File: fd}
	var sent int64
	for sent < n {
		op.Off = off + sent
		op.N = int(min(n-sent, maxSendChunk))
		res, err := doOn(ctx, loop, op)
		if err != nil {
			return sent, sendErr("sendfile", name, err)
		}
		if res == 0 {
			return sent, shrunk(name, sent, n)
		}
		sent += int64(res)
	}
	return sent, nil
}
