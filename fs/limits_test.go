package fs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringo-io/ringo/proactor"
)

// hugeBuf maps n bytes of address space without backing them (the pages
// a transfer touches are allocated then).
func hugeBuf(t *testing.T, n int) []byte {
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(n), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		t.Skipf("cannot map %d bytes: %v", n, err)
	}
	t.Cleanup(func() { unix.MunmapPtr(p, uintptr(n)) })
	return unsafe.Slice((*byte)(p), n)
}

// TestHugeBuffer: a buffer of 4 GiB or more reads like any other. An SQE's
// length has 32 bits, and 4 GiB used to become a read of 0 bytes (EOF).
func TestHugeBuffer(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		data := bytes.Repeat([]byte("ringo"), 20)
		path := filepath.Join(t.TempDir(), "f")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := OpenWith(path, OpenOptions{Proactor: p, NoInline: true})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := hugeBuf(t, 1<<32)
		if n, err := f.ReadAt(buf, 0); n != len(data) || err != io.EOF || !bytes.Equal(buf[:n], data) {
			t.Fatalf("ReadAt into 4 GiB: %d, %v", n, err)
		}
		if n, err := f.Read(buf); n != len(data) || err != nil {
			t.Fatalf("Read into 4 GiB: %d, %v", n, err)
		}
	})
}

// TestManyIovecs: ReadV and WriteV take more buffers than IOV_MAX.
func TestManyIovecs(t *testing.T) {
	eachDriver(t, func(t *testing.T, p *proactor.Proactor) {
		f, err := CreateWith(filepath.Join(t.TempDir(), "v"), OpenOptions{Proactor: p})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		bufs := make([][]byte, 2500)
		for i := range bufs {
			bufs[i] = []byte{byte(i), byte(i >> 8)}
		}
		if n, err := f.WriteV(bufs, 0); n != 2*len(bufs) || err != nil {
			t.Fatalf("WriteV of %d buffers: %d, %v", len(bufs), n, err)
		}
		got := make([][]byte, len(bufs))
		for i := range got {
			got[i] = make([]byte, 2)
		}
		if n, err := f.ReadV(got, 0); n != 2*len(bufs) || err != nil {
			t.Fatalf("ReadV of %d buffers: %d, %v", len(got), n, err)
		}
		for i := range got {
			if !bytes.Equal(got[i], bufs[i]) {
				t.Fatalf("buffer %d: %v, want %v", i, got[i], bufs[i])
			}
		}
	})
}

// TestNilFile: a nil *File answers os.ErrInvalid, as a nil *os.File does,
// and never panics.
func TestNilFile(t *testing.T) {
	var f *File
	buf := make([]byte, 4)
	for name, call := range map[string]func() error{
		"ReadAt":   func() error { _, err := f.ReadAt(buf, 0); return err },
		"WriteAt":  func() error { _, err := f.WriteAt(buf, 0); return err },
		"Read":     func() error { _, err := f.Read(buf); return err },
		"Write":    func() error { _, err := f.Write(buf); return err },
		"ReadV":    func() error { _, err := f.ReadV([][]byte{buf}, 0); return err },
		"WriteV":   func() error { _, err := f.WriteV([][]byte{buf}, 0); return err },
		"Seek":     func() error { _, err := f.Seek(0, io.SeekStart); return err },
		"Stat":     func() error { _, err := f.Stat(); return err },
		"Statx":    func() error { _, err := f.Statx(unix.STATX_SIZE); return err },
		"Sync":     f.Sync,
		"Datasync": f.Datasync,
		"Truncate": func() error { return f.Truncate(0) },
		"Allocate": func() error { return f.Allocate(0, 1) },
		"Advise":   func() error { return f.Advise(0, 1, unix.FADV_NORMAL) },
		"Close":    f.Close,
		"Batch": func() error {
			b := f.Batch()
			b.ReadAt(buf, 0)
			b.Sync()
			if err := b.Submit(); err != nil {
				return err
			}
			b.Cancel()
			rs, err := b.Wait()
			if len(rs) != 2 || !errors.Is(rs[1].Err, os.ErrInvalid) {
				return fmt.Errorf("results %v", rs)
			}
			return err
		},
	} {
		if err := call(); !errors.Is(err, os.ErrInvalid) {
			t.Errorf("%s on a nil *File: %v, want os.ErrInvalid", name, err)
		}
	}
	if f.Name() != "" || f.Fd() != ^uintptr(0) || f.Loop() != nil {
		t.Error("Name, Fd or Loop of a nil *File")
	}
}
