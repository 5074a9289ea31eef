package fs

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Alignment is what O_DIRECT requires of a file's I/O: buffer addresses
// aligned to Mem bytes, offsets and lengths to Offset bytes.
type Alignment struct {
	Mem    int
	Offset int
}

// Alignment returns the file's O_DIRECT alignment; the zero value for a
// file opened without O_DIRECT.
func (f *File) Alignment() Alignment {
	if f == nil {
		return Alignment{}
	}
	return f.align
}

// defaultBlock is the alignment assumed when the kernel will not say:
// 4096 satisfies every logical block size in common use (512 and 4096).
const defaultBlock = 4096

// dioAlignment finds what O_DIRECT needs on fd: statx's STATX_DIOALIGN
// (6.1+, and only on filesystems that fill it), else the logical block size
// of the device (BLKSSZGET on a block device, sysfs for a file on one),
// else 4096.
func dioAlignment(fd int) Alignment {
	var st unix.Statx_t
	err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_DIOALIGN|unix.STATX_TYPE, &st)
	if err == nil && st.Mask&unix.STATX_DIOALIGN != 0 && st.Dio_offset_align != 0 {
		return Alignment{Mem: max(int(st.Dio_mem_align), 1), Offset: int(st.Dio_offset_align)}
	}
	if err == nil && st.Mode&unix.S_IFMT == unix.S_IFBLK {
		if n, err := unix.IoctlGetInt(fd, unix.BLKSSZGET); err == nil && n > 0 {
			return Alignment{Mem: n, Offset: n}
		}
	}
	if err == nil {
		if n := sysfsBlockSize(st.Dev_major, st.Dev_minor); n > 0 {
			return Alignment{Mem: n, Offset: n}
		}
	}
	return Alignment{Mem: defaultBlock, Offset: defaultBlock}
}

// sysfsBlockSize reads the logical block size of device major:minor; a
// partition has no queue/ of its own, its disk (the parent) does.
func sysfsBlockSize(major, minor uint32) int {
	base := fmt.Sprintf("/sys/dev/block/%d:%d/", major, minor)
	for _, p := range []string{base + "queue/logical_block_size", base + "../queue/logical_block_size"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// ErrMisaligned is matched (errors.Is) by every *AlignmentError.
var ErrMisaligned = errors.New("misaligned for O_DIRECT")

// AlignmentError reports I/O on an O_DIRECT file that the kernel would
// refuse with a bare EINVAL; it says which value and what alignment. It
// also matches unix.EINVAL, for code that checks for the kernel's answer.
type AlignmentError struct {
	What  string // "buffer address", "offset" or "length"
	Value int64
	Align int
}

func (e *AlignmentError) Error() string {
	return fmt.Sprintf("O_DIRECT needs the %s aligned to %d bytes, got %d (use fs.AlignedBuffer)", e.What, e.Align, e.Value)
}

func (e *AlignmentError) Unwrap() []error { return []error{ErrMisaligned, unix.EINVAL} }

// checkAlign checks a buffer and offset against the file's O_DIRECT
// alignment.
func (f *File) checkAlign(p []byte, off int64) error {
	a := f.align
	if len(p) > 0 {
		if addr := uintptr(unsafe.Pointer(unsafe.SliceData(p))); addr%uintptr(a.Mem) != 0 {
			return &AlignmentError{What: "buffer address", Value: int64(addr), Align: a.Mem}
		}
	}
	// off < 0 is an append-mode write: the kernel picks the offset (the
	// file's size, which O_DIRECT keeps aligned) and checks it itself.
	if off >= 0 && off%int64(a.Offset) != 0 {
		return &AlignmentError{What: "offset", Value: off, Align: a.Offset}
	}
	if len(p)%a.Offset != 0 {
		return &AlignmentError{What: "length", Value: int64(len(p)), Align: a.Offset}
	}
	return nil
}

// Aligned buffers are anonymous mmap memory: page aligned (which covers
// every dio_mem_align in practice, 4 to 4096 bytes), outside the Go heap so
// the collector never scans or moves them, and returned to the kernel by
// Free. mapped records each live mapping so that Free refuses a slice it
// did not hand out instead of unmapping someone else's memory.
var (
	mappedMu sync.Mutex
	mapped   = map[uintptr]int{}
)

// AlignedBuffer returns size bytes of zeroed, page-aligned memory outside
// the Go heap, suitable for O_DIRECT. Release it with Free; using it after
// Free faults.
func AlignedBuffer(size int) ([]byte, error) {
	if size <= 0 {
		return nil, fmt.Errorf("fs: AlignedBuffer(%d): size must be positive", size)
	}
	p, err := unix.MmapPtr(-1, 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	mappedMu.Lock()
	mapped[uintptr(p)] = size
	mappedMu.Unlock()
	return unsafe.Slice((*byte)(p), size), nil
}

// Free releases a buffer from AlignedBuffer. b must be the slice
// AlignedBuffer returned (or start where it started).
func Free(b []byte) error {
	if cap(b) == 0 {
		return errors.New("fs: Free of an empty slice")
	}
	p := unsafe.Pointer(unsafe.SliceData(b[:1]))
	mappedMu.Lock()
	size, ok := mapped[uintptr(p)]
	delete(mapped, uintptr(p))
	mappedMu.Unlock()
	if !ok {
		return errors.New("fs: Free of memory AlignedBuffer did not return")
	}
	if err := unix.MunmapPtr(p, uintptr(size)); err != nil {
		return os.NewSyscallError("munmap", err)
	}
	return nil
}
