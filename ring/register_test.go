package ring

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func pipe(t *testing.T) (r, w int) {
	var fds [2]int
	require.NoError(t, unix.Pipe2(fds[:], unix.O_CLOEXEC))
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

// kernelBuf returns n bytes of memory the kernel may keep a pointer to
// beyond one syscall: mapped outside the Go heap, as proactor does. A
// buffer that does not escape lives on the goroutine stack, which moves
// when it grows, and the kernel would then write to the old copy (this
// test failed that way without -race).
func kernelBuf(t *testing.T, n int) []byte {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Munmap(b) })
	return b
}

func socketpair(t *testing.T) (a, b int) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds[0], fds[1]
}

func TestRegisterFiles(t *testing.T) {
	r := newTestRing(t, 8)
	rd, wr := pipe(t)
	require.NoError(t, r.RegisterFiles([]int32{int32(rd), -1}))
	_, err := unix.Write(wr, []byte("fixed"))
	require.NoError(t, err)
	buf := kernelBuf(t, 8)
	sqe := r.GetSQE()
	PrepRead(sqe, 0, buf, ^uint64(0)) // fd 0 is slot 0 of the table
	sqe.Flags |= SQEFixedFile
	c := reap(t, r, 1)[0]
	require.EqualValues(t, 5, c.Res)
	require.Equal(t, "fixed", string(buf[:5]))

	// Update slot 1 to the write end and write through it.
	n, err := r.UpdateFiles(1, []int32{int32(wr)})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	sqe = r.GetSQE()
	PrepWrite(sqe, 1, []byte("again"), ^uint64(0))
	sqe.Flags |= SQEFixedFile
	require.EqualValues(t, 5, reap(t, r, 1)[0].Res)
	require.NoError(t, r.UnregisterFiles())

	require.NoError(t, r.RegisterFilesSparse(16))
	n, err = r.UpdateFiles(3, []int32{int32(rd)})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	sqe = r.GetSQE()
	PrepRead(sqe, 3, buf, ^uint64(0))
	sqe.Flags |= SQEFixedFile
	c = reap(t, r, 1)[0]
	require.Equal(t, "again", string(buf[:c.Res]))
}

func TestRegisterBuffersReadFixed(t *testing.T) {
	r := newTestRing(t, 8)
	rd, wr := pipe(t)
	buf := kernelBuf(t, 4096)
	require.NoError(t, r.RegisterBuffers([]unix.Iovec{{Base: &buf[0], Len: uint64(len(buf))}}))
	_, err := unix.Write(wr, []byte("registered"))
	require.NoError(t, err)
	sqe := r.GetSQE()
	PrepReadFixed(sqe, int32(rd), buf[:64], ^uint64(0), 0)
	c := reap(t, r, 1)[0]
	require.Equal(t, "registered", string(buf[:c.Res]))
	require.NoError(t, r.UnregisterBuffers())
}

func TestBufRingRecv(t *testing.T) {
	r := newTestRing(t, 8)
	br, err := r.RegisterBufRing(8, 7)
	require.NoError(t, err)
	defer func() { require.NoError(t, br.Unregister()) }()
	const size = 64
	mem, err := unix.Mmap(-1, 0, 8*size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANONYMOUS|unix.MAP_PRIVATE)
	require.NoError(t, err)
	defer unix.Munmap(mem)
	for i := 0; i < 8; i++ {
		br.Add(unsafe.Pointer(&mem[i*size]), size, uint16(i), i)
	}
	br.Advance(8)

	a, b := socketpair(t)
	sqe := r.GetSQE()
	PrepRecvMultishot(sqe, int32(a), 7, 0)
	sqe.UserData = 9
	_, err = r.Submit()
	require.NoError(t, err)
	for i, msg := range []string{"one", "two", "three"} {
		_, err := unix.Write(b, []byte(msg))
		require.NoError(t, err)
		c := reap(t, r, 1)[0]
		require.EqualValues(t, 9, c.UserData)
		require.NotZero(t, c.Flags&CQEFBuffer)
		require.NotZero(t, c.Flags&CQEFMore, "multishot recv ended early")
		bid := c.BufferID()
		require.EqualValues(t, i, bid)
		require.Equal(t, msg, string(mem[int(bid)*size:int(bid)*size+int(c.Res)]))
		// Hand the buffer back.
		br.Add(unsafe.Pointer(&mem[int(bid)*size]), size, bid, 0)
		br.Advance(1)
	}
	sqe = r.GetSQE()
	PrepCancel(sqe, 9, 0)
	sqe.UserData = 10
	cqes := reap(t, r, 2)
	for _, c := range cqes {
		if c.UserData == 9 {
			require.Zero(t, c.Flags&CQEFMore, "the final multishot CQE must clear F_MORE")
		}
	}
	_, err = r.RegisterBufRing(3, 1)
	require.ErrorIs(t, err, ErrBufRingSize)
}

func TestIOWQMaxWorkersAndRingFd(t *testing.T) {
	r := newTestRing(t, 8)
	prev, err := r.SetIOWQMaxWorkers(4, 4)
	require.NoError(t, err)
	require.NotZero(t, prev[1])
	require.NoError(t, r.RegisterRingFd())
	require.NotZero(t, r.enterFlags&EnterRegisteredRing)
	PrepNop(r.GetSQE())
	reap(t, r, 1)
}

func TestSendZCTwoCompletions(t *testing.T) {
	r := newTestRing(t, 8)
	p, err := r.Probe()
	require.NoError(t, err)
	if !p.Supports(OpSendZC) {
		t.Skip("kernel lacks IORING_OP_SEND_ZC (6.0)")
	}
	ln, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(ln)
	require.NoError(t, unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	require.NoError(t, unix.Listen(ln, 8))
	sa, err := unix.Getsockname(ln)
	require.NoError(t, err)
	c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(c)
	require.NoError(t, unix.Connect(c, sa))

	// Accept through the ring, multishot.
	sqe := r.GetSQE()
	PrepAcceptMultishot(sqe, int32(ln), unix.SOCK_CLOEXEC)
	sqe.UserData = 1
	acc := reap(t, r, 1)[0]
	require.Greater(t, acc.Res, int32(0))
	require.NotZero(t, acc.Flags&CQEFMore)
	defer unix.Close(int(acc.Res))

	msg := []byte("zero copy")
	sqe = r.GetSQE()
	PrepSendZC(sqe, acc.Res, msg, unix.MSG_NOSIGNAL, 0)
	sqe.UserData = 2
	cqes := reap(t, r, 2)
	require.EqualValues(t, len(msg), cqes[0].Res)
	require.NotZero(t, cqes[0].Flags&CQEFMore)
	require.NotZero(t, cqes[1].Flags&CQEFNotif)
	got := make([]byte, 32)
	n, err := unix.Read(c, got)
	require.NoError(t, err)
	require.Equal(t, msg, got[:n])
	sqe = r.GetSQE()
	PrepCancel(sqe, 1, 0)
	reap(t, r, 2)
}
