package main

import (
	"bytes"
	"io"
	"mime"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// file is one open regular file with everything its responses need worked
// out once: its validators and the header lines that never change while
// the file does not. It is shared by every response that uses it and
// counted: the descriptor closes when the cache has dropped it and the last
// response using it (a SendFile in flight, say) has released it.
type file struct {
	fd       int
	size     int64
	mod      time.Time // truncated to seconds, as Last-Modified is
	dev, ino uint64
	mtimeNs  int64
	etag     string // quoted, strong
	lastMod  string // http.TimeFormat
	body     []byte // whole content when small, else nil
	hdr      []byte // "Content-Type: ...\r\nLast-Modified: ...\r\nETag: ...\r\nAccept-Ranges: bytes\r\n"
	ctype    string
	encoding string // "gzip" for a precompressed sibling
	refs     atomic.Int32
	// resident: the file is a memfd this process wrote (a prebuilt
	// response), so its pages are in memory and the transports send it
	// without asking the page cache first (EventConn.SendFileResident).
	resident bool
	// pre is this small file's whole 200 response, prebuilt, once the file
	// is hot (see prebuilt); copies counts the responses that copied the
	// body since pre was last built.
	pre     atomic.Pointer[prebuilt]
	copies  atomic.Int32
	copySec atomic.Int64 // the second copies counts in
}

func (f *file) acquire() { f.refs.Add(1) }

// tryAcquire takes a reference unless the last one is gone (the
// descriptor is closed or closing): for a file found through an atomic
// pointer that another goroutine may swap and release meanwhile.
func (f *file) tryAcquire() bool {
	for {
		n := f.refs.Load()
		if n <= 0 {
			return false
		}
		if f.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (f *file) release() {
	if f.refs.Add(-1) == 0 {
		unix.Close(f.fd)
		if f.resident {
			prebuiltOpen.Add(-1)
		}
		if p := f.pre.Swap(nil); p != nil {
			p.release()
		}
	}
}

// A prebuilt response is the whole answer to a plain GET of a small file
// (status line, headers and body) written once into a sealed memfd, so
// that each response is one sendfile(2) of it instead of a send of a
// fresh copy of the body.
//
// Why, measured (docs/BENCHMARKS.md): sent by copy, every response's body
// lands in new socket buffer pages, written by the server's CPU, and the
// client copies it out of them cold. From a memfd the client copies from
// the same few pages every time, hot in its cache, as nginx's sendfile
// from the page cache gives it; on a real network the server copies
// nothing at all. sendfile(2) costs the loop more than a batched send of
// a few KiB, though, so only bodies of at least preMin go this way.
//
// The response holds a Date, so a prebuilt serves only requests whose
// response headers come out byte for byte the same (session.serveFile
// compares them): one second, keep-alive HTTP/1.1, the same Vary. A file
// gets one once preAfter responses within one second went by copy, so a
// file served less often than that never does: a build is a memfd, a
// write of the body and a seal, worth it for hot files only. A hot file's
// prebuilt is built again in each second it is asked for.
//
// A file holds its latest prebuilt until the cache drops it; an older one
// stays open while a response queued before the rebuild still uses it (a
// client that stops reading keeps its own for up to the write timeout).
// maxPrebuilt bounds them all, process-wide, in descriptors and memory
// (1024 of at most 64 KiB and headers: 64 MiB); at the bound responses
// copy.
type prebuilt struct {
	file        // the memfd: fd, size, refs (f.pre's and each response's)
	head []byte // the status line and headers it begins with
}

const (
	preMin   = 16 << 10
	preAfter = 8
)

var (
	maxPrebuilt  atomic.Int64 // 1024 (init); a test lowers it
	prebuiltOpen atomic.Int64
	// noMemfd is set once memfd_create(2) was refused for good (ENOSYS,
	// or EPERM or EACCES from a seccomp filter or vm.memfd_noexec):
	// responses then copy, without asking again.
	noMemfd atomic.Bool
)

func init() { maxPrebuilt.Store(1024) }

// prebuiltFor returns f's prebuilt response if it begins with head,
// acquired, or nil: the caller copies. A caller whose response may be
// built (a plain keep-alive GET, see serveFile) counts a copy, and builds
// a new one from head once preAfter have piled up.
func (f *file) prebuiltFor(head []byte, mayBuild bool) *prebuilt {
	if p := f.pre.Load(); p != nil && bytes.Equal(p.head, head) && p.tryAcquire() {
		return p
	}
	if !mayBuild || noMemfd.Load() {
		return nil
	}
	// The loops race on the reset, so the count is rough: at worst a
	// build comes a few copies late.
	if sec := time.Now().Unix(); f.copySec.Load() != sec {
		f.copySec.Store(sec)
		f.copies.Store(0)
	}
	if f.copies.Add(1) < preAfter {
		return nil
	}
	if prebuiltOpen.Add(1) > maxPrebuilt.Load() {
		prebuiltOpen.Add(-1)
		return nil
	}
	f.copies.Store(0)
	p, err := newPrebuilt(head, f.body)
	if err != nil {
		prebuiltOpen.Add(-1)
		if err == unix.ENOSYS || err == unix.EPERM || err == unix.EACCES {
			noMemfd.Store(true)
		}
		return nil // out of descriptors or memory, say: copy
	}
	p.acquire() // the caller's
	if old := f.pre.Swap(p); old != nil {
		old.release()
	}
	return p
}

// newPrebuilt writes head and body into a new memfd and seals it: the
// kernel refuses any later write, which matters because sendfile(2) queues
// references to its pages, not copies, and the client reads them later.
func newPrebuilt(head, body []byte) (*prebuilt, error) {
	// Not executable, sealed so (6.3): without either flag, 6.3 and later
	// log a warning, and refuse it under vm.memfd_noexec=2.
	const flags = unix.MFD_CLOEXEC | unix.MFD_ALLOW_SEALING
	fd, err := unix.MemfdCreate("ringo-response", flags|unix.MFD_NOEXEC_SEAL)
	if err == unix.EINVAL {
		fd, err = unix.MemfdCreate("ringo-response", flags) // before 6.3
	}
	if err != nil {
		return nil, err
	}
	size := len(head) + len(body)
	n, err := unix.Pwritev(fd, [][]byte{head, body}, 0)
	if err == nil && n != size {
		err = io.ErrShortWrite
	}
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SEAL|unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	p := &prebuilt{head: bytes.Clone(head)}
	p.fd, p.size, p.resident = fd, int64(size), true
	p.refs.Store(1) // f.pre's
	return p, nil
}

// entry is what a request path resolves to: a file, and its precompressed
// sibling if there is one.
type entry struct {
	f, gz   *file
	checked atomic.Int64 // unix nanoseconds of the last look at the disk
}

// cache maps request paths to open files. It is bounded in entries (open
// descriptors) and in bytes of small contents, and an entry older than
// revalidate is checked against the disk (re-resolved and compared by
// device, inode, size and mtime) before use, so edits show within that
// time.
type cache struct {
	root       int
	maxEntries int
	maxBytes   int64
	smallMax   int64
	revalidate time.Duration

	mu    sync.Mutex
	m     map[string]*entry
	bytes int64
}

func newCache(root int) *cache {
	return &cache{
		root:       root,
		maxEntries: 4096,     // descriptors; nginx's open_file_cache max is of this order
		maxBytes:   64 << 20, // small contents kept in memory
		smallMax:   64 << 10, // above this the body goes by SendFile
		revalidate: time.Second,
		m:          make(map[string]*entry),
	}
}

// lookupStatus is what a path resolved to, when it is not a file.
type lookupStatus int

const (
	lookFile lookupStatus = iota
	lookNotFound
	lookForbidden
	lookRedirect // a directory asked for without its trailing slash
	lookListing  // a directory without index.html (listing decides)
	lookError
	// lookWait: getNow would have to read the disk; nothing was changed.
	lookWait
)

// get returns the files for key (the cleaned path, with a trailing slash
// when the request named a directory) acquired; the caller releases them.
// now is the request's clock (unix nanoseconds).
//
// dw says how a lookup the entry needs may wait for the disk: the
// transports first look with dw.never, on the loop or the connection's
// goroutine, and where the answer needs the disk (lookWait) again with
// dw.loop, off the loop (session.wait). Without openat2's RESOLVE_CACHED
// (5.12) a lookup cannot tell, and opens as without dw.never.
func (c *cache) get(key []byte, now int64, dw diskWait) (f, gz *file, st lookupStatus) {
	c.mu.Lock()
	e := c.m[string(key)] // no allocation: the compiler special-cases this
	if e != nil && now-e.checked.Load() < int64(c.revalidate) {
		f, gz = e.f, e.gz
		f.acquire()
		if gz != nil {
			gz.acquire()
		}
		c.mu.Unlock()
		return f, gz, lookFile
	}
	c.mu.Unlock()
	return c.load(string(key), now, dw)
}

// load resolves key on disk and refreshes the cache: an unchanged entry is
// only marked checked, a changed one is replaced, a vanished one dropped.
// With dw.never it gives up with lookWait, changing nothing, where it
// would read the disk.
func (c *cache) load(key string, now int64, dw diskWait) (*file, *file, lookupStatus) {
	dir := strings.HasSuffix(key, "/")
	rel := strings.TrimSuffix(key, "/")
	fd, name, st, ls := c.resolve(rel, dir, dw)
	if ls == lookWait {
		return nil, nil, ls
	}
	if ls != lookFile {
		c.drop(key)
		return nil, nil, ls
	}
	gzfd, gzst := -1, unix.Stat_t{}
	g, err := openBeneath(c.root, name+".gz", dw)
	if err == errWouldBlock {
		unix.Close(fd)
		return nil, nil, lookWait
	}
	if err == nil {
		if unix.Fstat(g, &gzst) == nil && gzst.Mode&unix.S_IFMT == unix.S_IFREG {
			gzfd = g
		} else {
			unix.Close(g)
		}
	}
	closeNew := func() {
		unix.Close(fd)
		if gzfd >= 0 {
			unix.Close(gzfd)
		}
	}
	c.mu.Lock()
	if e := c.m[key]; e != nil && e.f.same(&st) && (e.gz == nil) == (gzfd < 0) && (e.gz == nil || e.gz.same(&gzst)) {
		e.checked.Store(now)
		e.f.acquire()
		if e.gz != nil {
			e.gz.acquire()
		}
		c.mu.Unlock()
		closeNew()
		return e.f, e.gz, lookFile
	}
	c.mu.Unlock()
	f, err := c.newFile(fd, &st, name, "", dw)
	if err != nil {
		closeNew()
		if err == errWouldBlock {
			return nil, nil, lookWait
		}
		return nil, nil, lookError
	}
	var gz *file
	if gzfd >= 0 {
		if gz, err = c.newFile(gzfd, &gzst, name, "gzip", dw); err == errWouldBlock {
			unix.Close(gzfd)
			f.release()
			return nil, nil, lookWait
		} else if err != nil {
			unix.Close(gzfd)
			gz = nil
		}
	}
	e := &entry{f: f, gz: gz}
	e.checked.Store(now)
	c.mu.Lock()
	if cur := c.m[key]; cur != nil {
		delete(c.m, key)
		c.releaseEntryLocked(cur)
	}
	size := int64(len(f.body))
	if gz != nil {
		size += int64(len(gz.body))
	}
	for len(c.m) > 0 && (len(c.m) >= c.maxEntries || c.bytes+size > c.maxBytes) {
		for k, v := range c.m { // random eviction: cheap and good enough
			delete(c.m, k)
			c.releaseEntryLocked(v)
			break
		}
	}
	c.m[key] = e
	c.bytes += size
	f.acquire()
	if gz != nil {
		gz.acquire()
	}
	c.mu.Unlock()
	return f, gz, lookFile
}

// resolve opens rel (the directory's index.html when dir) and stats it.
// name is the served file's path, which gives its type.
func (c *cache) resolve(rel string, dir bool, dw diskWait) (fd int, name string, st unix.Stat_t, ls lookupStatus) {
	fd, err := openBeneath(c.root, rel, dw)
	if err != nil {
		return -1, "", st, errStatus(err)
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, "", st, lookError
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if dir && rel != "" {
			unix.Close(fd) // "/file.txt/": not a directory
			return -1, "", st, lookNotFound
		}
		return fd, rel, st, lookFile
	case unix.S_IFDIR:
		if !dir {
			unix.Close(fd)
			return -1, "", st, lookRedirect
		}
		// Resolved from the root like any path, so that an index.html
		// symlink is served when it stays beneath the root.
		unix.Close(fd)
		ifd, err := openBeneath(c.root, path.Join(rel, "index.html"), dw)
		if err != nil {
			if err == unix.ENOENT {
				return -1, "", st, lookListing
			}
			return -1, "", st, errStatus(err)
		}
		if err := unix.Fstat(ifd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			unix.Close(ifd)
			return -1, "", st, lookListing
		}
		return ifd, path.Join(rel, "index.html"), st, lookFile
	}
	unix.Close(fd) // devices, FIFOs, sockets are never served
	return -1, "", st, lookForbidden
}

func (c *cache) releaseEntryLocked(e *entry) {
	c.bytes -= int64(len(e.f.body))
	e.f.release()
	if e.gz != nil {
		c.bytes -= int64(len(e.gz.body))
		e.gz.release()
	}
}

// drop forgets key after it vanished from disk.
func (c *cache) drop(key string) {
	c.mu.Lock()
	if e := c.m[key]; e != nil {
		delete(c.m, key)
		c.releaseEntryLocked(e)
	}
	c.mu.Unlock()
}

// close releases every entry (responses in flight keep theirs).
func (c *cache) close() {
	c.mu.Lock()
	for k, e := range c.m {
		delete(c.m, k)
		c.releaseEntryLocked(e)
	}
	c.mu.Unlock()
}

func (f *file) same(st *unix.Stat_t) bool {
	return f.dev == st.Dev && f.ino == st.Ino && f.size == st.Size && f.mtimeNs == st.Mtim.Nano()
}

// newFile builds a file from an open descriptor; name gives the type (for
// a gzip sibling, the name without ".gz"). The returned file holds one
// reference, the cache's.
//
// With dw.never, a small body not all in the page cache is errWouldBlock.
func (c *cache) newFile(fd int, st *unix.Stat_t, name, encoding string, dw diskWait) (*file, error) {
	f := &file{
		fd: fd, size: st.Size, dev: st.Dev, ino: st.Ino, mtimeNs: st.Mtim.Nano(),
		mod: time.Unix(st.Mtim.Sec, 0).UTC(), encoding: encoding,
	}
	f.refs.Store(1)
	f.lastMod = f.mod.Format(timeFormat)
	// nginx's ETag shape: mtime and size in hex; the gzip variant differs
	// by its own size and mtime, and by a suffix so that the two never
	// collide.
	f.etag = `"` + strconv.FormatInt(st.Mtim.Sec, 16) + "-" + strconv.FormatInt(st.Size, 16)
	if encoding != "" {
		f.etag += "-gz"
	}
	f.etag += `"`
	f.ctype = contentType(name)
	if f.size <= c.smallMax {
		body := make([]byte, f.size)
		n, err := readSmall(fd, body, dw)
		if err != nil {
			return nil, err
		}
		if int64(n) != f.size {
			// Changed under us: serve what a fresh stat says next time.
			return nil, unix.EAGAIN
		}
		f.body = body
	}
	h := make([]byte, 0, 160)
	h = append(h, "Content-Type: "...)
	h = append(h, f.ctype...)
	h = append(h, "\r\nLast-Modified: "...)
	h = append(h, f.lastMod...)
	h = append(h, "\r\nETag: "...)
	h = append(h, f.etag...)
	h = append(h, "\r\nAccept-Ranges: bytes\r\n"...)
	if encoding != "" {
		h = append(h, "Content-Encoding: "...)
		h = append(h, encoding...)
		h = append(h, "\r\n"...)
	}
	f.hdr = h
	return f, nil
}

// readSmall reads a small body from offset 0, waiting for the disk as dw
// says. With dw.never it reads only from the page cache (preadv2
// RWF_NOWAIT) and says errWouldBlock when that is not enough; a file
// system that cannot tell (EOPNOTSUPP) is read with a blocking pread.
func readSmall(fd int, body []byte, dw diskWait) (int, error) {
	if dw.never && len(body) > 0 {
		for {
			n, err := unix.Preadv2(fd, [][]byte{body}, 0, unix.RWF_NOWAIT)
			switch {
			case err == unix.EINTR:
				continue
			case err == unix.EAGAIN || (err == nil && n > 0 && n < len(body)):
				// A short read: the rest is not cached.
				return 0, errWouldBlock
			case err != unix.EOPNOTSUPP && err != unix.ENOSYS:
				return n, err
			}
			break
		}
	}
	if dw.loop != nil {
		n := 0
		for n < len(body) {
			res, _, err := dw.loop.DoUntil(&proactor.Read{Fd: fd, Buf: body[n:], Off: int64(n)}, time.Time{}, dw.stop)
			switch {
			case err != nil:
				return n, err
			case res == -int32(unix.EINTR):
				continue
			case res < 0:
				return n, unix.Errno(-res)
			case res == 0:
				return n, nil // shorter than its stat said
			}
			n += int(res)
		}
		return n, nil
	}
	for {
		n, err := unix.Pread(fd, body, 0)
		if err != unix.EINTR {
			return n, err
		}
	}
}

func errStatus(err error) lookupStatus {
	switch err {
	case unix.ENOENT, unix.ENOTDIR, unix.ENAMETOOLONG:
		return lookNotFound
	case unix.EACCES, unix.EPERM, unix.EXDEV, unix.ELOOP, errOutside:
		// EXDEV is openat2's answer for a path that would leave the root.
		return lookForbidden
	case errWouldBlock:
		return lookWait
	}
	return lookError
}

// types fixes the common types, so that responses do not depend on the
// host's /etc/mime.types; others come from package mime.
var types = map[string]string{
	".html": "text/html; charset=utf-8", ".htm": "text/html; charset=utf-8",
	".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
	".mjs": "text/javascript; charset=utf-8", ".json": "application/json",
	".txt": "text/plain; charset=utf-8", ".md": "text/markdown; charset=utf-8",
	".xml": "text/xml; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
	".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
	".avif": "image/avif", ".ico": "image/vnd.microsoft.icon", ".wasm": "application/wasm",
	".pdf": "application/pdf", ".woff": "font/woff", ".woff2": "font/woff2",
	".mp4": "video/mp4", ".webm": "video/webm", ".gz": "application/gzip",
	".zip": "application/zip", ".tar": "application/x-tar",
}

func contentType(name string) string {
	ext := path.Ext(name)
	if t, ok := types[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}
