package ring

// Op is an io_uring opcode (enum io_uring_op). Release tells which kernel
// added each one; the table in release.go is the source.
type Op uint8

// Opcodes, in the kernel's order. The value is the position in the enum.
const (
	OpNop            Op = iota // 5.1
	OpReadv                    // 5.1
	OpWritev                   // 5.1
	OpFsync                    // 5.1
	OpReadFixed                // 5.1
	OpWriteFixed               // 5.1
	OpPollAdd                  // 5.1
	OpPollRemove               // 5.1
	OpSyncFileRange            // 5.2
	OpSendmsg                  // 5.3
	OpRecvmsg                  // 5.3
	OpTimeout                  // 5.4
	OpTimeoutRemove            // 5.5
	OpAccept                   // 5.5
	OpAsyncCancel              // 5.5
	OpLinkTimeout              // 5.5
	OpConnect                  // 5.5
	OpFallocate                // 5.6
	OpOpenat                   // 5.6
	OpClose                    // 5.6
	OpFilesUpdate              // 5.6
	OpStatx                    // 5.6
	OpRead                     // 5.6
	OpWrite                    // 5.6
	OpFadvise                  // 5.6
	OpMadvise                  // 5.6
	OpSend                     // 5.6
	OpRecv                     // 5.6
	OpOpenat2                  // 5.6
	OpEpollCtl                 // 5.6
	OpSplice                   // 5.7
	OpProvideBuffers           // 5.7
	OpRemoveBuffers            // 5.7
	OpTee                      // 5.8
	OpShutdown                 // 5.11
	OpRenameat                 // 5.11
	OpUnlinkat                 // 5.11
	OpMkdirat                  // 5.15
	OpSymlinkat                // 5.15
	OpLinkat                   // 5.15
	OpMsgRing                  // 5.18
	OpFsetxattr                // 5.19
	OpSetxattr                 // 5.19
	OpFgetxattr                // 5.19
	OpGetxattr                 // 5.19
	OpSocket                   // 5.19
	OpUringCmd                 // 5.19
	OpSendZC                   // 6.0
	OpSendmsgZC                // 6.1
	OpReadMultishot            // 6.7
	OpWaitid                   // 6.7
	OpFutexWait                // 6.7
	OpFutexWake                // 6.7
	OpFutexWaitv               // 6.7
	OpFixedFdInstall           // 6.8
	OpFtruncate                // 6.9
	OpBind                     // 6.11
	OpListen                   // 6.11
	OpRecvZC                   // 6.15
	OpEpollWait                // 6.15
	OpReadvFixed               // 6.15
	OpWritevFixed              // 6.15
	OpPipe                     // 6.16
	OpNop128                   // 6.19
	OpUringCmd128              // 6.19

	// OpLast is one past the highest opcode this package knows.
	OpLast
)

// SQE flags (IOSQE_*), set in SQE.Flags.
const (
	SQEFixedFile      uint8 = 1 << 0 // fd is an index into the registered file table (5.1)
	SQEIODrain        uint8 = 1 << 1 // start only after all earlier SQEs complete (5.2)
	SQEIOLink         uint8 = 1 << 2 // the next SQE starts after this one succeeds (5.3)
	SQEIOHardlink     uint8 = 1 << 3 // like IOLink, but the chain survives failure (5.5)
	SQEAsync          uint8 = 1 << 4 // always punt to io-wq; slow, never a default (5.6)
	SQEBufferSelect   uint8 = 1 << 5 // take the buffer from a provided-buffer group (5.7)
	SQECQESkipSuccess uint8 = 1 << 6 // post no CQE on success (5.17)
)

// Setup flags (IORING_SETUP_*), in Params.Flags.
const (
	SetupIOPoll           uint32 = 1 << 0
	SetupSQPoll           uint32 = 1 << 1
	SetupSQAff            uint32 = 1 << 2
	SetupCQSize           uint32 = 1 << 3
	SetupClamp            uint32 = 1 << 4
	SetupAttachWQ         uint32 = 1 << 5
	SetupRDisabled        uint32 = 1 << 6
	SetupSubmitAll        uint32 = 1 << 7
	SetupCoopTaskrun      uint32 = 1 << 8
	SetupTaskrunFlag      uint32 = 1 << 9
	SetupSQE128           uint32 = 1 << 10
	SetupCQE32            uint32 = 1 << 11
	SetupSingleIssuer     uint32 = 1 << 12
	SetupDeferTaskrun     uint32 = 1 << 13
	SetupNoMmap           uint32 = 1 << 14
	SetupRegisteredFdOnly uint32 = 1 << 15
	SetupNoSQArray        uint32 = 1 << 16
	SetupHybridIOPoll     uint32 = 1 << 17
	SetupCQEMixed         uint32 = 1 << 18
	SetupSQEMixed         uint32 = 1 << 19
	SetupSQRewind         uint32 = 1 << 20
)

// Feature flags (IORING_FEAT_*), reported in Params.Features.
const (
	FeatSingleMmap     uint32 = 1 << 0
	FeatNoDrop         uint32 = 1 << 1
	FeatSubmitStable   uint32 = 1 << 2
	FeatRWCurPos       uint32 = 1 << 3
	FeatCurPersonality uint32 = 1 << 4
	FeatFastPoll       uint32 = 1 << 5
	FeatPoll32Bits     uint32 = 1 << 6
	FeatSQPollNonfixed uint32 = 1 << 7
	FeatExtArg         uint32 = 1 << 8
	FeatNativeWorkers  uint32 = 1 << 9
	FeatRsrcTags       uint32 = 1 << 10
	FeatCQESkip        uint32 = 1 << 11
	FeatLinkedFile     uint32 = 1 << 12
	FeatRegRegRing     uint32 = 1 << 13
	FeatRecvSendBundle uint32 = 1 << 14
	FeatMinTimeout     uint32 = 1 << 15
	FeatRWAttr         uint32 = 1 << 16
	FeatNoIOWait       uint32 = 1 << 17
)

// io_uring_enter flags (IORING_ENTER_*).
const (
	EnterGetEvents      uint32 = 1 << 0
	EnterSQWakeup       uint32 = 1 << 1
	EnterSQWait         uint32 = 1 << 2
	EnterExtArg         uint32 = 1 << 3
	EnterRegisteredRing uint32 = 1 << 4
	EnterAbsTimer       uint32 = 1 << 5
	EnterExtArgReg      uint32 = 1 << 6
	EnterNoIOWait       uint32 = 1 << 7
)

// SQ ring flags (IORING_SQ_*), read from the shared SQ ring.
const (
	SQNeedWakeup uint32 = 1 << 0 // the SQPOLL thread sleeps: enter with EnterSQWakeup
	SQCQOverflow uint32 = 1 << 1 // CQEs wait in the kernel's overflow list: enter with EnterGetEvents
	SQTaskrun    uint32 = 1 << 2 // task work is pending (TASKRUN_FLAG rings)
)

// CQ ring flags (IORING_CQ_*).
const (
	CQEventfdDisabled uint32 = 1 << 0
)

// CQE flags (IORING_CQE_F_*), in CQE.Flags.
const (
	CQEFBuffer       uint32 = 1 << 0 // upper 16 bits hold the provided buffer id
	CQEFMore         uint32 = 1 << 1 // a multishot op stays armed: more CQEs follow
	CQEFSockNonempty uint32 = 1 << 2 // the socket still has data after this recv
	CQEFNotif        uint32 = 1 << 3 // zero-copy send notification: the buffer is free
	CQEFBufMore      uint32 = 1 << 4 // incremental buffer ring: the buffer is not yet used up
	CQEFSkip         uint32 = 1 << 5 // padding CQE in a CQE_MIXED ring
	CQEF32           uint32 = 1 << 15

	// CQEBufferShift is the shift of the buffer id in CQE.Flags.
	CQEBufferShift = 16
)

// Register opcodes (IORING_REGISTER_* and IORING_UNREGISTER_*).
const (
	RegisterBuffers           = 0
	UnregisterBuffers         = 1
	RegisterFiles             = 2
	UnregisterFiles           = 3
	RegisterEventfd           = 4
	UnregisterEventfd         = 5
	RegisterFilesUpdate       = 6
	RegisterEventfdAsync      = 7
	RegisterProbe             = 8
	RegisterPersonality       = 9
	UnregisterPersonality     = 10
	RegisterRestrictions      = 11
	RegisterEnableRings       = 12
	RegisterFiles2            = 13
	RegisterFilesUpdate2      = 14
	RegisterBuffers2          = 15
	RegisterBuffersUpdate     = 16
	RegisterIOWQAff           = 17
	UnregisterIOWQAff         = 18
	RegisterIOWQMaxWorkers    = 19
	RegisterRingFds           = 20
	UnregisterRingFds         = 21
	RegisterPbufRing          = 22
	UnregisterPbufRing        = 23
	RegisterSyncCancel        = 24
	RegisterFileAllocRange    = 25
	RegisterPbufStatus        = 26
	RegisterNAPI              = 27
	UnregisterNAPI            = 28
	RegisterClock             = 29
	RegisterCloneBuffers      = 30
	RegisterSendMsgRing       = 31
	RegisterZcrxIfq           = 32
	RegisterResizeRings       = 33
	RegisterMemRegion         = 34
	RegisterQuery             = 35
	RegisterZcrxCtrl          = 36
	RegisterBPFFilter         = 37
	RegisterUseRegisteredRing = 1 << 31
)

// Per-opcode flags, each named for the SQE field it goes in.
const (
	// FsyncDatasync in OpFlags of OpFsync: fdatasync instead of fsync.
	FsyncDatasync uint32 = 1 << 0

	// Timeout flags, in OpFlags of OpTimeout / OpTimeoutRemove / OpLinkTimeout.
	TimeoutAbs               uint32 = 1 << 0
	TimeoutUpdate            uint32 = 1 << 1
	TimeoutBoottime          uint32 = 1 << 2
	TimeoutRealtime          uint32 = 1 << 3
	TimeoutLinkTimeoutUpdate uint32 = 1 << 4
	TimeoutETimeSuccess      uint32 = 1 << 5
	TimeoutMultishot         uint32 = 1 << 6

	// Poll flags, in Len of OpPollAdd / OpPollRemove.
	PollAddMulti       uint32 = 1 << 0
	PollUpdateEvents   uint32 = 1 << 1
	PollUpdateUserData uint32 = 1 << 2
	PollAddLevel       uint32 = 1 << 3

	// Cancel flags, in OpFlags of OpAsyncCancel.
	AsyncCancelAll      uint32 = 1 << 0
	AsyncCancelFd       uint32 = 1 << 1
	AsyncCancelAny      uint32 = 1 << 2
	AsyncCancelFdFixed  uint32 = 1 << 3
	AsyncCancelUserdata uint32 = 1 << 4
	AsyncCancelOp       uint32 = 1 << 5

	// Send/recv flags, in IoPrio of OpSend / OpRecv / OpSendZC.
	RecvsendPollFirst uint16 = 1 << 0
	RecvMultishot     uint16 = 1 << 1
	RecvsendFixedBuf  uint16 = 1 << 2
	SendZCReportUsage uint16 = 1 << 3
	RecvsendBundle    uint16 = 1 << 4
	// There is no flag for a multishot receive's byte limit (the kernel's
	// IORING_RECV_MSHOT_LIM, 1<<12, is internal): see PrepRecvMultishotLimit.

	// NotifUsageZCCopied is set in a SEND_ZC notification's Res when the
	// kernel had to copy after all (SendZCReportUsage).
	NotifUsageZCCopied uint32 = 1 << 31

	// Accept flags, in IoPrio of OpAccept.
	AcceptMultishot uint16 = 1 << 0
	AcceptDontwait  uint16 = 1 << 1
	AcceptPollFirst uint16 = 1 << 2

	// MSG_RING commands (in Addr) and flags (in OpFlags).
	MsgData                 = 0
	MsgSendFd               = 1
	MsgRingCQESkip   uint32 = 1 << 0
	MsgRingFlagsPass uint32 = 1 << 1

	// SpliceFdInFixed in OpFlags of OpSplice/OpTee: SpliceFdIn is a fixed file index.
	SpliceFdInFixed uint32 = 1 << 31

	// FileIndexAlloc asks the kernel to pick a free fixed-file slot.
	FileIndexAlloc uint32 = ^uint32(0)
)

// mmap offsets (IORING_OFF_*).
const (
	offSQRing    = 0
	offCQRing    = 0x8000000
	offSQEs      = 0x10000000
	offPbufRing  = 0x80000000
	offPbufShift = 16
)

// Registration details.
const (
	// RegisterFilesSkip in a files update leaves that slot unchanged.
	RegisterFilesSkip int32 = -2
	// RsrcRegisterSparse registers an all-empty file table (REGISTER_FILES2).
	RsrcRegisterSparse uint32 = 1 << 0
	// PbufRingMmap asks the kernel to allocate the buffer ring (6.4).
	PbufRingMmap uint16 = 1 << 0
	// PbufRingInc makes buffers consumable in pieces (6.12).
	PbufRingInc uint16 = 1 << 1
	// OpSupported is set in ProbeOp.Flags for an opcode the kernel runs.
	OpSupported uint16 = 1 << 0
)

// UserDataTimeout is the user_data of the internal TIMEOUT SQE that
// WaitTimeout uses on kernels without EXT_ARG. Peek never returns its CQE,
// so callers must not use this value.
const UserDataTimeout = ^uint64(0)
