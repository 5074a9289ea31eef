package fs

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// benchFile returns a file of size bytes in dir, reusing one left by an
// earlier run (the name carries the size), so that benchmarks do not pay
// for creating hundreds of MiB each time.
func benchFile(b *testing.B, dir string, size int64) string {
	b.Helper()
	path := filepath.Join(dir, fmt.Sprintf("ringo-fs-bench-%d", size))
	if st, err := os.Stat(path); err == nil && st.Size() == size {
		return path
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 1))
	for off := int64(0); off < size; off += int64(len(buf)) {
		for i := range buf {
			buf[i] = byte(r.Uint32())
		}
		if _, err := f.WriteAt(buf[:min(int64(len(buf)), size-off)], off); err != nil {
			b.Fatal(err)
		}
	}
	return path
}

func benchProactor(b *testing.B, d driverCase) *proactor.Proactor {
	return newProactor(b, d.opts)
}

// BenchmarkReadAtCached: 4 KiB random reads of a page-cached 64 MiB file
// on tmpfs. inline is the default (preadv2 RWF_NOWAIT first), ring sends
// every read through the proactor, os is os.File.ReadAt.
func BenchmarkReadAtCached(b *testing.B) {
	const size = 64 << 20
	path := benchFile(b, "/dev/shm", size)
	run := func(b *testing.B, r io.ReaderAt) {
		buf := make([]byte, 4096)
		rng := rand.New(rand.NewPCG(2, 2))
		b.SetBytes(4096)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			off := int64(rng.IntN(size/4096)) * 4096
			if _, err := r.ReadAt(buf, off); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, d := range drivers {
		for _, inline := range []bool{true, false} {
			name := d.name + "/inline"
			if !inline {
				name = d.name + "/ring"
			}
			b.Run(name, func(b *testing.B) {
				p := benchProactor(b, d)
				f, err := OpenFileOptions(path, os.O_RDONLY, 0, OpenOptions{Proactor: p, NoInline: !inline})
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				run(b, f)
			})
		}
	}
	b.Run("os", func(b *testing.B) {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		run(b, f)
	})
}

// randReadSize is issue 6's file size for the random-read benchmarks: 1
// GiB, so that O_DIRECT reads spread over the device rather than a few
// tracks, and the buffered file is larger than any CPU cache.
const randReadSize = 1 << 30

// BenchmarkRandRead4K: 4 KiB random reads of a 1 GiB file at queue depth 1,
// 32 and 128: O_DIRECT on /var/tmp (the disk; /tmp may be tmpfs elsewhere)
// and buffered on /dev/shm (tmpfs); fs with QD goroutines, fs with batches
// of QD, os.File with QD goroutines. The names are stable: bench/ calls
// them (docs/BENCHMARKS.md). fio at the same settings is the peer.
func BenchmarkRandRead4K(b *testing.B) {
	const size = randReadSize
	for _, place := range []struct {
		name, dir string
		flag      int
	}{{"direct", "/var/tmp", O_DIRECT}, {"shm", "/dev/shm", 0}} {
		path := benchFile(b, place.dir, size)
		for _, qd := range []int{1, 32, 128} {
			for _, d := range drivers {
				b.Run(fmt.Sprintf("%s/qd%d/%s/goroutines", place.name, qd, d.name), func(b *testing.B) {
					p := benchProactor(b, d)
					f, err := OpenFileOptions(path, os.O_RDONLY|place.flag, 0, opts(p))
					if err != nil {
						b.Skip(err)
					}
					defer f.Close()
					goroutines(b, qd, size, f.ReadAt, alignedPage)
				})
				b.Run(fmt.Sprintf("%s/qd%d/%s/batch", place.name, qd, d.name), func(b *testing.B) {
					p := benchProactor(b, d)
					f, err := OpenFileOptions(path, os.O_RDONLY|place.flag, 0, opts(p))
					if err != nil {
						b.Skip(err)
					}
					defer f.Close()
					mem, _ := AlignedBuffer(qd * 4096)
					defer Free(mem)
					rng := rand.New(rand.NewPCG(3, 3))
					bt := f.Batch()
					b.ReportAllocs()
					start := time.Now()
					reads := 0
					for b.Loop() {
						bt.Reset()
						for i := range qd {
							bt.ReadAt(mem[i*4096:(i+1)*4096], int64(rng.IntN(size/4096))*4096)
						}
						if err := bt.Submit(); err != nil {
							b.Fatal(err)
						}
						if _, err := bt.Wait(); err != nil {
							b.Fatal(err)
						}
						reads += qd
					}
					b.ReportMetric(float64(reads)/time.Since(start).Seconds(), "iops")
				})
			}
			b.Run(fmt.Sprintf("%s/qd%d/os", place.name, qd), func(b *testing.B) {
				f, err := os.OpenFile(path, os.O_RDONLY|place.flag, 0)
				if err != nil {
					b.Skip(err)
				}
				defer f.Close()
				goroutines(b, qd, size, f.ReadAt, alignedPage)
			})
		}
	}
}

func alignedPage() ([]byte, func()) {
	buf, err := AlignedBuffer(4096)
	if err != nil {
		panic(err)
	}
	return buf, func() { Free(buf) }
}

// goroutines runs b.N reads of 4 KiB at random aligned offsets of a file of
// size bytes from qd goroutines and reports IOPS.
func goroutines(b *testing.B, qd int, size int64, readAt func([]byte, int64) (int, error), alloc func() ([]byte, func())) {
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for g := range qd {
		wg.Go(func() {
			buf, free := alloc()
			defer free()
			rng := rand.New(rand.NewPCG(uint64(g), 4))
			for left.Add(-1) >= 0 {
				if _, err := readAt(buf, rng.Int64N(size/4096)*4096); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "iops")
}

// BenchmarkSendFile: one file per op over loopback TCP, drained by a
// reader goroutine, by size, driver and method: sendfile (inline first, the
// default), sendfile-loop (every chunk through the loop), splice, and raw
// sendfile(2) without ringo as the floor.
func BenchmarkSendFile(b *testing.B) {
	for _, size := range []int64{1 << 10, 16 << 10, 64 << 10, 1 << 20} {
		path := benchFile(b, "/dev/shm", size)
		for _, d := range drivers {
			for _, m := range methods {
				b.Run(fmt.Sprintf("%dK/%s/%s", size>>10, d.name, m), func(b *testing.B) {
					p := benchProactor(b, d)
					f, err := OpenWith(path, opts(p))
					if err != nil {
						b.Fatal(err)
					}
					defer f.Close()
					sock, c := tcpPair(b, 0)
					go io.Copy(io.Discard, c)
					ctx := context.Background()
					b.SetBytes(size)
					b.ReportAllocs()
					for b.Loop() {
						if _, err := SendFileMethod(ctx, m, f.Loop(), sock, int(f.Fd()), 0, size); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
		// sendfile-loop: SendFile on a NoInline file, so every chunk
		// takes the loop's Sendfile op: what the inline attempt saves.
		for _, d := range drivers {
			b.Run(fmt.Sprintf("%dK/%s/sendfile-loop", size>>10, d.name), func(b *testing.B) {
				p := benchProactor(b, d)
				f, err := OpenFileOptions(path, os.O_RDONLY, 0, OpenOptions{Proactor: p, NoInline: true})
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				sock, c := tcpPair(b, 0)
				go io.Copy(io.Discard, c)
				ctx := context.Background()
				b.SetBytes(size)
				b.ReportAllocs()
				for b.Loop() {
					if _, err := SendFile(ctx, nil, sock, f, 0, size); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		// raw: sendfile(2) called directly on the benchmark goroutine,
		// poll(2) when the socket is full: the floor SendFile is held to.
		b.Run(fmt.Sprintf("%dK/raw", size>>10), func(b *testing.B) {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			sock, c := tcpPair(b, 0)
			go io.Copy(io.Discard, c)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if err := rawSendfile(sock, int(f.Fd()), size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func rawSendfile(sock, fd int, size int64) error {
	var off int64
	for off < size {
		_, err := unix.Sendfile(sock, fd, &off, int(size-off))
		if err == unix.EAGAIN {
			pfd := []unix.PollFd{{Fd: int32(sock), Events: unix.POLLOUT}}
			if _, err := unix.Poll(pfd, -1); err != nil && err != unix.EINTR {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkSeq1M: sequential 1 MiB transfers over a 256 MiB file on
// /var/tmp (the disk), one at a time: write is buffered WriteAt with an
// fsync after every 16 writes (fio --rw=write --bs=1M --fsync=16), read is
// O_DIRECT ReadAt (fio --rw=read --bs=1M --direct=1). fs on each driver
// against os.File.
func BenchmarkSeq1M(b *testing.B) {
	const size, chunk, syncEvery = 256 << 20, 1 << 20, 16
	dir := "/var/tmp"
	type file interface {
		ReadAt([]byte, int64) (int, error)
		WriteAt([]byte, int64) (int, error)
		Sync() error
		Close() error
	}
	opens := []struct {
		name string
		open func(b *testing.B, path string, flag int) file
	}{}
	for _, d := range drivers {
		opens = append(opens, struct {
			name string
			open func(b *testing.B, path string, flag int) file
		}{d.name, func(b *testing.B, path string, flag int) file {
			f, err := OpenFileOptions(path, flag, 0o600, opts(benchProactor(b, d)))
			if err != nil {
				b.Skip(err)
			}
			return f
		}})
	}
	opens = append(opens, struct {
		name string
		open func(b *testing.B, path string, flag int) file
	}{"os", func(b *testing.B, path string, flag int) file {
		f, err := os.OpenFile(path, flag, 0o600)
		if err != nil {
			b.Skip(err)
		}
		return f
	}})
	buf, err := AlignedBuffer(chunk)
	if err != nil {
		b.Fatal(err)
	}
	defer Free(buf)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for _, o := range opens {
		b.Run("write/"+o.name, func(b *testing.B) {
			path := filepath.Join(dir, "ringo-fs-bench-seqw")
			defer os.Remove(path)
			f := o.open(b, path, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
			defer f.Close()
			b.SetBytes(chunk)
			var off int64
			n := 0
			for b.Loop() {
				if _, err := f.WriteAt(buf, off); err != nil {
					b.Fatal(err)
				}
				off = (off + chunk) % size
				if n++; n%syncEvery == 0 {
					if err := f.Sync(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		})
	}
	path := benchFile(b, dir, size)
	for _, o := range opens {
		b.Run("read/"+o.name, func(b *testing.B) {
			f := o.open(b, path, os.O_RDONLY|O_DIRECT)
			defer f.Close()
			b.SetBytes(chunk)
			var off int64
			for b.Loop() {
				if _, err := f.ReadAt(buf, off); err != nil {
					b.Fatal(err)
				}
				off = (off + chunk) % size
			}
		})
	}
}
