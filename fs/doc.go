// Package fs is files on ringo's proactor: open, read, write, sync,
// truncate, allocate, stat and advise as operations that run through
// io_uring, or through the epoll driver's worker pool where io_uring is
// missing, with the same results on both.
//
// It owns:
//   - File, with the io.ReaderAt/io.WriterAt/io.Reader/io.Writer/io.Seeker
//     semantics of *os.File, errors as *fs.PathError wrapping the errno
//     (errors.Is(err, fs.ErrNotExist), fs.ErrPermission, fs.ErrClosed),
//     context variants that cancel the operation in flight, and a Close
//     that cancels, waits for the kernel to let go of the buffers, then
//     closes the descriptor; an operation a signal cut short (EINTR, from
//     NFS mounted with intr or a FUSE file system) is made again, as
//     package os does;
//   - the inline page-cache read: ReadAt first tries preadv2(RWF_NOWAIT)
//     on the calling goroutine and only sends through the ring what would
//     block, since a cached read costs one syscall either way and the ring
//     adds a hand-off to the loop and back;
//   - Batch, for storage engines: many reads, writes and syncs submitted
//     in one loop turn (one io_uring_enter), with explicit ordering;
//   - O_DIRECT support: the alignment the file needs (statx DIOALIGN, the
//     device's logical block size, or 4096), AlignedBuffer memory outside
//     the Go heap, and an AlignmentError naming the alignment instead of a
//     bare EINVAL;
//   - SendFile, moving file bytes to a socket without user-space copies
//     (sendfile(2) on the loop, or a SPLICE pair through a pooled pipe),
//     for net.Conn.ReadFrom and the file server.
//
// It does not own the loops, the rings or the op slab (package proactor),
// sockets (package net), or directory listing and path operations other
// than open, which package os does well enough off the hot path.
//
// What should move into proactor: the fs-local ops in ops.go (Ftruncate,
// Fadvise, and a SPLICE whose readiness is the socket's writability, so
// a full socket is re-armed rather than returned as -EAGAIN); and a
// per-loop close hook, so the SendFile pipe pool can be released with its
// loop instead of by ReleasePipes or a GC cleanup.
//
// Registered buffers: File.ReadAtFixed and WriteAtFixed read into and
// write from buffers registered with proactor.Loop.RegisterBuffers on the
// file's loop (READ_FIXED/WRITE_FIXED, so the kernel keeps the pages
// pinned instead of mapping them per read: the block-cache pattern of a
// storage engine); on the epoll driver they are preads into the same
// memory. Registered files (Loop.RegisterFiles) are available to ops
// submitted directly on the loop; File still names its fd.
package fs
