// Command fsbench measures ringo's fs package the way fio measures the
// kernel, on the same file, so the suite can put them side by side: 4 KiB
// random reads at a queue depth (ringo with QD goroutines or one batch of
// QD, os.File.ReadAt from QD goroutines) and sequential 1 MiB reads and
// writes (the write ends with fsync, as fio's end_fsync=1).
//
// It prints one line: "iops=N mbps=N".
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringo-io/ringo/fs"
	"github.com/ringo-io/ringo/proactor"
)

type readerAt func([]byte, int64) (int, error)

func main() {
	mode := flag.String("mode", "rand", "rand, seqread or seqwrite")
	impl := flag.String("impl", "goroutines", "goroutines or batch (ringo fs), or os (os.File)")
	file := flag.String("file", "", "file to read (rand, seqread) or write (seqwrite)")
	direct := flag.Bool("direct", false, "open with O_DIRECT")
	qd := flag.Int("qd", 32, "queue depth (rand)")
	dur := flag.Duration("dur", 5*time.Second, "how long to run (rand)")
	size := flag.Int64("size", 256<<20, "bytes to write (seqwrite) or at most to read (seqread)")
	backend := flag.String("backend", "uring", "auto, uring or epoll")
	wait := flag.String("wait", "netpoll", "how the loop waits: netpoll or enter")
	spin := flag.Duration("spin", 0, "proactor.Options.Spin")
	flag.Parse()
	wm, err := proactor.ParseWaitMode(*wait)
	if err != nil {
		log.Fatal(err)
	}

	b, err := proactor.ParseBackend(*backend)
	if err != nil {
		log.Fatal(err)
	}
	flags := os.O_RDONLY
	if *mode == "seqwrite" {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	if *direct {
		flags |= syscall.O_DIRECT
	}
	var (
		rd    readerAt
		wr    func([]byte, int64) (int, error)
		sync_ func() error
		f     *fs.File
	)
	if *impl == "os" {
		of, err := os.OpenFile(*file, flags, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		defer of.Close()
		rd, wr, sync_ = of.ReadAt, of.WriteAt, of.Sync
	} else {
		p, err := proactor.New(proactor.Options{Backend: b, Loops: 1, Wait: wm, Spin: *spin, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			log.Fatal(err)
		}
		defer p.Close()
		f, err = fs.OpenFileOptions(*file, flags, 0o644, fs.OpenOptions{Proactor: p})
		if err != nil {
			log.Fatal(err)
		}
		defer f.Close()
		rd, wr, sync_ = f.ReadAt, f.WriteAt, f.Sync
	}
	st, err := os.Stat(*file)
	if err != nil {
		log.Fatal(err)
	}
	switch *mode {
	case "rand":
		var n int64
		start := time.Now()
		if *impl == "batch" {
			n = randBatch(f, st.Size(), *qd, *dur)
		} else {
			n = randGoroutines(rd, st.Size(), *qd, *dur)
		}
		el := time.Since(start).Seconds()
		fmt.Printf("iops=%.0f mbps=%.1f\n", float64(n)/el, float64(n)*4096/el/1e6)
	case "seqread":
		buf := aligned(1 << 20)
		start := time.Now()
		var off int64
		for off < min(st.Size(), *size) {
			k, err := rd(buf, off)
			if k <= 0 {
				if err != nil && err != io.EOF {
					log.Fatal(err)
				}
				break
			}
			off += int64(k)
		}
		el := time.Since(start).Seconds()
		fmt.Printf("iops=%.0f mbps=%.1f\n", float64(off>>20)/el, float64(off)/el/1e6)
	case "seqwrite":
		buf := aligned(1 << 20)
		for i := range buf {
			buf[i] = byte(i * 7)
		}
		start := time.Now()
		for off := int64(0); off < *size; off += 1 << 20 {
			if _, err := wr(buf, off); err != nil {
				log.Fatal(err)
			}
		}
		if err := sync_(); err != nil {
			log.Fatal(err)
		}
		el := time.Since(start).Seconds()
		fmt.Printf("iops=%.0f mbps=%.1f\n", float64(*size>>20)/el, float64(*size)/el/1e6)
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
}

// aligned returns n bytes aligned for O_DIRECT, outside the Go heap.
func aligned(n int) []byte {
	b, err := fs.AlignedBuffer(n)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

func randGoroutines(rd readerAt, size int64, qd int, dur time.Duration) int64 {
	var total atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for g := range qd {
		wg.Go(func() {
			buf := aligned(4096)
			rng := rand.New(rand.NewPCG(uint64(g), 9))
			n := int64(0)
			for !stop.Load() {
				if _, err := rd(buf, rng.Int64N(size/4096)*4096); err != nil {
					log.Fatal(err)
				}
				n++
			}
			total.Add(n)
		})
	}
	time.Sleep(dur)
	stop.Store(true)
	wg.Wait()
	return total.Load()
}

func randBatch(f *fs.File, size int64, qd int, dur time.Duration) int64 {
	if f == nil {
		log.Fatal("-impl batch needs ringo fs, not os")
	}
	mem := aligned(qd * 4096)
	rng := rand.New(rand.NewPCG(1, 9))
	bt := f.Batch()
	n := int64(0)
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		bt.Reset()
		for i := range qd {
			bt.ReadAt(mem[i*4096:(i+1)*4096], rng.Int64N(size/4096)*4096)
		}
		if err := bt.Submit(); err != nil {
			log.Fatal(err)
		}
		if _, err := bt.Wait(); err != nil {
			log.Fatal(err)
		}
		n += int64(qd)
	}
	return n
}
