package ring

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// abiStructs maps each Go ABI type to its C struct and each exported field to
// the C member it mirrors. TestABI compiles a C program against the kernel's
// own <linux/io_uring.h> and checks every size and offset, so a wrong layout
// cannot ship.
var abiStructs = []struct {
	goType reflect.Type
	cType  string
	fields map[string]string
}{
	{reflect.TypeFor[SQE](), "struct io_uring_sqe", map[string]string{
		"Opcode": "opcode", "Flags": "flags", "IoPrio": "ioprio", "Fd": "fd", "Off": "off",
		"Addr": "addr", "Len": "len", "OpFlags": "rw_flags", "UserData": "user_data",
		"BufIndex": "buf_index", "Personality": "personality", "SpliceFdIn": "splice_fd_in",
		"Addr3": "addr3",
	}},
	{reflect.TypeFor[CQE](), "struct io_uring_cqe", map[string]string{
		"UserData": "user_data", "Res": "res", "Flags": "flags",
	}},
	{reflect.TypeFor[Params](), "struct io_uring_params", map[string]string{
		"SQEntries": "sq_entries", "CQEntries": "cq_entries", "Flags": "flags",
		"SQThreadCPU": "sq_thread_cpu", "SQThreadIdle": "sq_thread_idle", "Features": "features",
		"WQFd": "wq_fd", "Resv": "resv", "SQOff": "sq_off", "CQOff": "cq_off",
	}},
	{reflect.TypeFor[SQRingOffsets](), "struct io_sqring_offsets", map[string]string{
		"Head": "head", "Tail": "tail", "RingMask": "ring_mask", "RingEntries": "ring_entries",
		"Flags": "flags", "Dropped": "dropped", "Array": "array", "Resv1": "resv1",
		// user_addr was resv2 until 6.5; Debian's header is older.
		"UserAddr": "resv2",
	}},
	{reflect.TypeFor[CQRingOffsets](), "struct io_cqring_offsets", map[string]string{
		"Head": "head", "Tail": "tail", "RingMask": "ring_mask", "RingEntries": "ring_entries",
		"Overflow": "overflow", "CQEs": "cqes", "Flags": "flags", "Resv1": "resv1", "UserAddr": "resv2",
	}},
	{reflect.TypeFor[ProbeOp](), "struct io_uring_probe_op", map[string]string{
		"Op": "op", "Resv": "resv", "Flags": "flags", "Resv2": "resv2",
	}},
	{reflect.TypeFor[ProbeHeader](), "struct io_uring_probe", map[string]string{
		"LastOp": "last_op", "OpsLen": "ops_len", "Resv": "resv", "Resv2": "resv2",
	}},
	{reflect.TypeFor[BufRingEntry](), "struct io_uring_buf", map[string]string{
		"Addr": "addr", "Len": "len", "Bid": "bid", "Resv": "resv",
	}},
	{reflect.TypeFor[BufReg](), "struct io_uring_buf_reg", map[string]string{
		"RingAddr": "ring_addr", "RingEntries": "ring_entries", "Bgid": "bgid", "Resv": "resv",
		// flags was pad until 6.4.
		"Flags": "pad",
	}},
	{reflect.TypeFor[Timespec](), "struct __kernel_timespec", map[string]string{
		"Sec": "tv_sec", "Nsec": "tv_nsec",
	}},
	{reflect.TypeFor[GetEventsArg](), "struct io_uring_getevents_arg", map[string]string{
		// MinWaitUsec was "pad" before 6.12; the offset is what matters.
		"Sigmask": "sigmask", "SigmaskSz": "sigmask_sz", "MinWaitUsec": "pad", "Ts": "ts",
	}},
	{reflect.TypeFor[RsrcRegister](), "struct io_uring_rsrc_register", map[string]string{
		"Nr": "nr", "Flags": "flags", "Resv2": "resv2", "Data": "data", "Tags": "tags",
	}},
	{reflect.TypeFor[RsrcUpdate](), "struct io_uring_rsrc_update", map[string]string{
		"Offset": "offset", "Resv": "resv", "Data": "data",
	}},
}

func TestABI(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed: cannot compile the uapi header check")
	}
	if _, err := os.Stat("/usr/include/linux/io_uring.h"); err != nil {
		t.Skip("linux-libc-dev not installed: no <linux/io_uring.h> to check against")
	}
	var src strings.Builder
	src.WriteString("#include <stdio.h>\n#include <stddef.h>\n#include <linux/io_uring.h>\n#include <linux/time_types.h>\nint main(void) {\n")
	want := map[string]uintptr{}
	for _, s := range abiStructs {
		fmt.Fprintf(&src, "printf(\"%s sizeof %%zu\\n\", sizeof(%s));\n", s.cType, s.cType)
		want[s.cType+" sizeof"] = s.goType.Size()
		for i := 0; i < s.goType.NumField(); i++ {
			f := s.goType.Field(i)
			if f.Name == "_" {
				continue
			}
			c, ok := s.fields[f.Name]
			require.Truef(t, ok, "%s.%s has no C counterpart in abiStructs", s.goType.Name(), f.Name)
			fmt.Fprintf(&src, "printf(\"%s.%s offset %%zu\\n\", offsetof(%s, %s));\n", s.cType, c, s.cType, c)
			fmt.Fprintf(&src, "printf(\"%s.%s size %%zu\\n\", sizeof(((%s*)0)->%s));\n", s.cType, c, s.cType, c)
			want[s.cType+"."+c+" offset"] = f.Offset
			want[s.cType+"."+c+" size"] = f.Type.Size()
		}
	}
	src.WriteString("return 0; }\n")

	out := compileRun(t, cc, src.String())

	got := map[string]uintptr{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseUint(line[i+1:], 10, 64)
		require.NoError(t, err, line)
		got[line[:i]] = uintptr(v)
	}
	require.Len(t, got, len(want))
	for k, w := range want {
		require.Equalf(t, got[k], w, "%s: C says %d, Go says %d", k, got[k], w)
	}
	require.EqualValues(t, 64, sizeofSQE)
	require.EqualValues(t, 16, sizeofCQE)
	require.EqualValues(t, 120, sizeofParams)
	require.EqualValues(t, 32, reflect.TypeFor[CQE32]().Size())
}

// TestABIConstants checks the constants the header of this machine defines
// against ours. Names newer than the installed header are skipped by the
// preprocessor, not by us.
func TestABIConstants(t *testing.T) {
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not installed")
	}
	if _, err := os.Stat("/usr/include/linux/io_uring.h"); err != nil {
		t.Skip("linux-libc-dev not installed")
	}
	consts := map[string]uint64{}
	for op := Op(0); op < OpLast; op++ {
		consts["IORING_OP_"+op.String()] = uint64(op)
	}
	for _, f := range SetupFlags {
		consts["IORING_SETUP_"+f.Name] = uint64(f.Bit)
	}
	for _, f := range Features {
		consts["IORING_FEAT_"+f.Name] = uint64(f.Bit)
	}
	more := map[string]uint64{
		"IOSQE_FIXED_FILE": uint64(SQEFixedFile), "IOSQE_IO_LINK": uint64(SQEIOLink),
		"IOSQE_BUFFER_SELECT": uint64(SQEBufferSelect), "IOSQE_CQE_SKIP_SUCCESS": uint64(SQECQESkipSuccess),
		"IORING_CQE_F_MORE": uint64(CQEFMore), "IORING_CQE_F_NOTIF": uint64(CQEFNotif),
		"IORING_CQE_BUFFER_SHIFT": CQEBufferShift, "IORING_SQ_CQ_OVERFLOW": uint64(SQCQOverflow),
		"IORING_ENTER_EXT_ARG": uint64(EnterExtArg), "IORING_ENTER_REGISTERED_RING": uint64(EnterRegisteredRing),
		"IORING_REGISTER_PBUF_RING": RegisterPbufRing, "IORING_REGISTER_PROBE": RegisterProbe,
		"IORING_REGISTER_RING_FDS": RegisterRingFds, "IORING_REGISTER_IOWQ_MAX_WORKERS": RegisterIOWQMaxWorkers,
		"IORING_ASYNC_CANCEL_ALL": uint64(AsyncCancelAll), "IORING_ASYNC_CANCEL_FD": uint64(AsyncCancelFd),
		"IORING_RECV_MULTISHOT": uint64(RecvMultishot), "IORING_ACCEPT_MULTISHOT": uint64(AcceptMultishot),
		"IORING_TIMEOUT_ETIME_SUCCESS": uint64(TimeoutETimeSuccess), "IORING_POLL_ADD_MULTI": uint64(PollAddMulti),
		"IORING_OFF_SQES": offSQEs, "IORING_OFF_CQ_RING": offCQRing, "IORING_OFF_PBUF_RING": offPbufRing,
		"IORING_FILE_INDEX_ALLOC": uint64(FileIndexAlloc), "IORING_FSYNC_DATASYNC": uint64(FsyncDatasync),
	}
	for k, v := range more {
		consts[k] = v
	}
	// Opcodes are enum members, invisible to #ifdef: ask the header how
	// many it declares, then compare those.
	last, err := strconv.Atoi(strings.TrimSpace(compileRun(t, cc,
		"#include <stdio.h>\n#include <linux/io_uring.h>\nint main(void) { printf(\"%d\", IORING_OP_LAST); return 0; }\n")))
	require.NoError(t, err)
	var src strings.Builder
	src.WriteString("#include <stdio.h>\n#include <linux/io_uring.h>\nint main(void) {\n")
	for name, v := range consts {
		if strings.HasPrefix(name, "IORING_OP_") {
			if v < uint64(last) {
				fmt.Fprintf(&src, "printf(\"%s %%llu\\n\", (unsigned long long)%s);\n", name, name)
			}
			continue
		}
		fmt.Fprintf(&src, "#ifdef %s\nprintf(\"%s %%llu\\n\", (unsigned long long)(%s));\n#endif\n", name, name, name)
	}
	src.WriteString("return 0; }\n")
	out := compileRun(t, cc, src.String())
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		name, val, _ := strings.Cut(line, " ")
		v, err := strconv.ParseUint(val, 10, 64)
		require.NoError(t, err)
		require.Equalf(t, consts[name], v, "%s", name)
		checked++
	}
	require.Greater(t, checked, 60, "too few constants checked: the header check is not running")
}

func compileRun(t *testing.T, cc, src string) string {
	t.Helper()
	dir := t.TempDir()
	cfile := filepath.Join(dir, "c.c")
	bin := filepath.Join(dir, "c")
	require.NoError(t, os.WriteFile(cfile, []byte(src), 0o644))
	out, err := exec.Command(cc, "-Wall", "-o", bin, cfile).CombinedOutput()
	require.NoError(t, err, "compiling: %s", out)
	out, err = exec.Command(bin).Output()
	require.NoError(t, err)
	return string(out)
}
