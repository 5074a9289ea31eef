package ring

import (
	"fmt"
	"strconv"
	"strings"
)

// Release is a kernel release as major.minor: the granularity at which
// io_uring gained opcodes, features and setup flags.
type Release struct {
	Major, Minor int
}

// Native is the zero Release: no simulation, use what the running kernel has.
var Native = Release{}

// ParseRelease reads "5.10", "5.10.0" or a uname release such as
// "6.18.44-fc-v769"; anything after major.minor is ignored.
func ParseRelease(s string) (Release, error) {
	orig := s
	s = strings.TrimSpace(s)
	major, rest, ok := strings.Cut(s, ".")
	if !ok {
		return Release{}, fmt.Errorf("ring: kernel release %q: want MAJOR.MINOR", orig)
	}
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	ma, err1 := strconv.Atoi(major)
	mi, err2 := strconv.Atoi(rest[:end])
	if err1 != nil || err2 != nil || ma < 0 || mi < 0 || ma > 1000 || mi > 1000 {
		return Release{}, fmt.Errorf("ring: kernel release %q: want MAJOR.MINOR", orig)
	}
	return Release{ma, mi}, nil
}

func (r Release) String() string {
	if r == Native {
		return "native"
	}
	return fmt.Sprintf("%d.%d", r.Major, r.Minor)
}

// Less reports whether r is older than o.
func (r Release) Less(o Release) bool {
	return r.Major < o.Major || (r.Major == o.Major && r.Minor < o.Minor)
}

// Has reports whether a kernel of release r has something added in since.
// Native has everything: the running kernel decides.
func (r Release) Has(since Release) bool {
	return r == Native || !r.Less(since)
}

// opSince is the release that added each opcode, from the kernel's
// io_uring_enter.2 and git history (../shared/reference/io_uring.md §1.2).
var opSince = [OpLast]Release{
	OpNop: {5, 1}, OpReadv: {5, 1}, OpWritev: {5, 1}, OpFsync: {5, 1},
	OpReadFixed: {5, 1}, OpWriteFixed: {5, 1}, OpPollAdd: {5, 1}, OpPollRemove: {5, 1},
	OpSyncFileRange: {5, 2}, OpSendmsg: {5, 3}, OpRecvmsg: {5, 3}, OpTimeout: {5, 4},
	OpTimeoutRemove: {5, 5}, OpAccept: {5, 5}, OpAsyncCancel: {5, 5}, OpLinkTimeout: {5, 5},
	OpConnect: {5, 5}, OpFallocate: {5, 6}, OpOpenat: {5, 6}, OpClose: {5, 6},
	OpFilesUpdate: {5, 6}, OpStatx: {5, 6}, OpRead: {5, 6}, OpWrite: {5, 6},
	OpFadvise: {5, 6}, OpMadvise: {5, 6}, OpSend: {5, 6}, OpRecv: {5, 6},
	OpOpenat2: {5, 6}, OpEpollCtl: {5, 6}, OpSplice: {5, 7}, OpProvideBuffers: {5, 7},
	OpRemoveBuffers: {5, 7}, OpTee: {5, 8}, OpShutdown: {5, 11}, OpRenameat: {5, 11},
	OpUnlinkat: {5, 11}, OpMkdirat: {5, 15}, OpSymlinkat: {5, 15}, OpLinkat: {5, 15},
	OpMsgRing: {5, 18}, OpFsetxattr: {5, 19}, OpSetxattr: {5, 19}, OpFgetxattr: {5, 19},
	OpGetxattr: {5, 19}, OpSocket: {5, 19}, OpUringCmd: {5, 19}, OpSendZC: {6, 0},
	OpSendmsgZC: {6, 1}, OpReadMultishot: {6, 7}, OpWaitid: {6, 7}, OpFutexWait: {6, 7},
	OpFutexWake: {6, 7}, OpFutexWaitv: {6, 7}, OpFixedFdInstall: {6, 8}, OpFtruncate: {6, 9},
	OpBind: {6, 11}, OpListen: {6, 11}, OpRecvZC: {6, 15}, OpEpollWait: {6, 15},
	OpReadvFixed: {6, 15}, OpWritevFixed: {6, 15}, OpPipe: {6, 16}, OpNop128: {6, 19},
	OpUringCmd128: {6, 19},
}

var opNames = [OpLast]string{
	"NOP", "READV", "WRITEV", "FSYNC", "READ_FIXED", "WRITE_FIXED", "POLL_ADD",
	"POLL_REMOVE", "SYNC_FILE_RANGE", "SENDMSG", "RECVMSG", "TIMEOUT",
	"TIMEOUT_REMOVE", "ACCEPT", "ASYNC_CANCEL", "LINK_TIMEOUT", "CONNECT",
	"FALLOCATE", "OPENAT", "CLOSE", "FILES_UPDATE", "STATX", "READ", "WRITE",
	"FADVISE", "MADVISE", "SEND", "RECV", "OPENAT2", "EPOLL_CTL", "SPLICE",
	"PROVIDE_BUFFERS", "REMOVE_BUFFERS", "TEE", "SHUTDOWN", "RENAMEAT",
	"UNLINKAT", "MKDIRAT", "SYMLINKAT", "LINKAT", "MSG_RING", "FSETXATTR",
	"SETXATTR", "FGETXATTR", "GETXATTR", "SOCKET", "URING_CMD", "SEND_ZC",
	"SENDMSG_ZC", "READ_MULTISHOT", "WAITID", "FUTEX_WAIT", "FUTEX_WAKE",
	"FUTEX_WAITV", "FIXED_FD_INSTALL", "FTRUNCATE", "BIND", "LISTEN", "RECV_ZC",
	"EPOLL_WAIT", "READV_FIXED", "WRITEV_FIXED", "PIPE", "NOP128", "URING_CMD128",
}

// String returns the kernel's name without the IORING_OP_ prefix.
func (op Op) String() string {
	if op < OpLast {
		return opNames[op]
	}
	return "OP_" + strconv.Itoa(int(op))
}

// Since returns the release that added op, or the zero Release for an
// opcode this package does not know.
func (op Op) Since() Release {
	if op < OpLast {
		return opSince[op]
	}
	return Release{}
}

// Flag names a bit of a flag word and the release that added it.
type Flag struct {
	Bit   uint32
	Name  string
	Since Release
}

// Features lists the IORING_FEAT_* bits (io_uring.md §1.3; MIN_TIMEOUT and
// RW_ATTR are the releases their patches merged in).
var Features = []Flag{
	{FeatSingleMmap, "SINGLE_MMAP", Release{5, 4}},
	{FeatNoDrop, "NODROP", Release{5, 5}},
	{FeatSubmitStable, "SUBMIT_STABLE", Release{5, 5}},
	{FeatRWCurPos, "RW_CUR_POS", Release{5, 6}},
	{FeatCurPersonality, "CUR_PERSONALITY", Release{5, 6}},
	{FeatFastPoll, "FAST_POLL", Release{5, 7}},
	{FeatPoll32Bits, "POLL_32BITS", Release{5, 9}},
	{FeatSQPollNonfixed, "SQPOLL_NONFIXED", Release{5, 11}},
	{FeatExtArg, "EXT_ARG", Release{5, 11}},
	{FeatNativeWorkers, "NATIVE_WORKERS", Release{5, 12}},
	{FeatRsrcTags, "RSRC_TAGS", Release{5, 13}},
	{FeatCQESkip, "CQE_SKIP", Release{5, 17}},
	{FeatLinkedFile, "LINKED_FILE", Release{5, 17}},
	{FeatRegRegRing, "REG_REG_RING", Release{6, 3}},
	{FeatRecvSendBundle, "RECVSEND_BUNDLE", Release{6, 10}},
	{FeatMinTimeout, "MIN_TIMEOUT", Release{6, 12}},
	{FeatRWAttr, "RW_ATTR", Release{6, 14}},
	{FeatNoIOWait, "NO_IOWAIT", Release{6, 15}},
}

// SetupFlags lists the IORING_SETUP_* bits (io_uring.md §1.4).
var SetupFlags = []Flag{
	{SetupIOPoll, "IOPOLL", Release{5, 1}},
	{SetupSQPoll, "SQPOLL", Release{5, 1}},
	{SetupSQAff, "SQ_AFF", Release{5, 1}},
	{SetupCQSize, "CQSIZE", Release{5, 5}},
	{SetupClamp, "CLAMP", Release{5, 6}},
	{SetupAttachWQ, "ATTACH_WQ", Release{5, 6}},
	{SetupRDisabled, "R_DISABLED", Release{5, 10}},
	{SetupSubmitAll, "SUBMIT_ALL", Release{5, 18}},
	{SetupCoopTaskrun, "COOP_TASKRUN", Release{5, 19}},
	{SetupTaskrunFlag, "TASKRUN_FLAG", Release{5, 19}},
	{SetupSQE128, "SQE128", Release{5, 19}},
	{SetupCQE32, "CQE32", Release{5, 19}},
	{SetupSingleIssuer, "SINGLE_ISSUER", Release{6, 0}},
	{SetupDeferTaskrun, "DEFER_TASKRUN", Release{6, 1}},
	{SetupNoMmap, "NO_MMAP", Release{6, 5}},
	{SetupRegisteredFdOnly, "REGISTERED_FD_ONLY", Release{6, 5}},
	{SetupNoSQArray, "NO_SQARRAY", Release{6, 6}},
	{SetupHybridIOPoll, "HYBRID_IOPOLL", Release{6, 13}},
	{SetupCQEMixed, "CQE_MIXED", Release{6, 18}},
	{SetupSQEMixed, "SQE_MIXED", Release{6, 19}},
	{SetupSQRewind, "SQ_REWIND", Release{7, 0}},
}

// registerSince is the release that added each register opcode this
// package uses (io_uring.md §1.5).
var registerSince = map[uint32]Release{
	RegisterBuffers: {5, 1}, UnregisterBuffers: {5, 1}, RegisterFiles: {5, 1},
	UnregisterFiles: {5, 1}, RegisterEventfd: {5, 2}, UnregisterEventfd: {5, 2},
	RegisterFilesUpdate: {5, 5}, RegisterEventfdAsync: {5, 6}, RegisterProbe: {5, 6},
	RegisterEnableRings: {5, 10}, RegisterFiles2: {5, 13}, RegisterFilesUpdate2: {5, 13},
	RegisterIOWQMaxWorkers: {5, 15}, RegisterRingFds: {5, 18}, UnregisterRingFds: {5, 18},
	RegisterPbufRing: {5, 19}, UnregisterPbufRing: {5, 19}, RegisterSyncCancel: {6, 0},
	RegisterQuery: {6, 18},
}

// flagsNewerThan returns the bits of flags whose Since is newer than r.
func flagsNewerThan(table []Flag, r Release) uint32 {
	var m uint32
	for _, f := range table {
		if !r.Has(f.Since) {
			m |= f.Bit
		}
	}
	return m
}

// Names decodes a flag word with table; unknown bits appear as hex.
func Names(table []Flag, bits uint32) []string {
	var out []string
	for _, f := range table {
		if bits&f.Bit != 0 {
			out = append(out, f.Name)
			bits &^= f.Bit
		}
	}
	for b := uint32(1); b != 0; b <<= 1 {
		if bits&b != 0 {
			out = append(out, fmt.Sprintf("0x%x", b))
		}
	}
	return out
}
