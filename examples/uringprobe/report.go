package main

// The report is the program's one data structure: the live probe fills it,
// the table and the JSON are two renderings of it, and the golden tests
// render a fixed value of it. Its JSON form is the versioned interface
// described by schema.json; add fields, never rename or retype them, and
// bump schemaVersion when a change would break a reader.

// schemaVersion is the "schema_version" of the JSON report.
const schemaVersion = 1

// Verdicts, from best to worst; each has an exit code (see usage).
const (
	verdictUsable      = "usable"
	verdictGaps        = "usable-with-gaps"
	verdictUnavailable = "unavailable"
)

// Exit codes.
const (
	exitUsable      = 0
	exitGaps        = 1
	exitUnavailable = 2
	exitProbeFailed = 3
)

// Report is everything the probe found and what ringo will do with it.
type Report struct {
	SchemaVersion int            `json:"schema_version"`
	Available     bool           `json:"available"`
	Verdict       string         `json:"verdict"`
	Reason        string         `json:"reason"`
	Why           string         `json:"why"`
	Errno         *Errno         `json:"errno"`
	Backend       string         `json:"backend"`
	BackendReason string         `json:"backend_reason"`
	Kernel        Kernel         `json:"kernel"`
	Knobs         Knobs          `json:"knobs"`
	Sysctl        Sysctl         `json:"sysctl"`
	Seccomp       Seccomp        `json:"seccomp"`
	Limits        Limits         `json:"limits"`
	Container     []string       `json:"container"`
	LSM           LSM            `json:"lsm"`
	Setup         SetupProbe     `json:"setup"`
	Features      FlagSet        `json:"features"`
	SetupFlags    FlagSet        `json:"setup_flags"`
	LastOp        *int           `json:"last_op"`
	OpsSource     string         `json:"ops_source"`
	Ops           []OpEntry      `json:"ops"`
	Registrations []Registration `json:"registrations"`
	Ringo         Ringo          `json:"ringo"`
	// Warnings are facts that could not be read; the report is still
	// drawn from the rest.
	Warnings []string `json:"warnings"`
}

// Errno is a raw errno as both name and number, so a reader needs no table.
type Errno struct {
	Name   string `json:"name"`
	Number int    `json:"number"`
}

// Kernel is the running kernel and the release ringo was told to simulate.
type Kernel struct {
	Release   string  `json:"release"` // uname -r, verbatim
	Major     int     `json:"major"`   // upstream version, distro suffix dropped
	Minor     int     `json:"minor"`
	Patch     int     `json:"patch"`
	Source    string  `json:"source"`    // where major.minor.patch was read
	Machine   string  `json:"machine"`   // uname -m
	Simulated *string `json:"simulated"` // "5.10" under -kernel, else null
}

// Knobs are the environment variables that steer ringo's choice.
type Knobs struct {
	Backend string `json:"RINGO_BACKEND"`
	Kernel  string `json:"RINGO_KERNEL"`
}

// Sysctl is kernel.io_uring_disabled and kernel.io_uring_group (6.6+).
type Sysctl struct {
	Present        bool   `json:"present"`
	Disabled       *int   `json:"io_uring_disabled"` // null before 6.6
	Group          *int   `json:"io_uring_group"`
	MayCreateRings bool   `json:"may_create_rings"`
	Why            string `json:"why"`
}

// Seccomp is the process's seccomp state from /proc/self/status.
type Seccomp struct {
	Mode       string `json:"mode"`    // disabled, strict, filter, unknown
	Filters    *int   `json:"filters"` // null when the kernel does not say
	NoNewPrivs bool   `json:"no_new_privs"`
}

// Limits holds the rlimits that can stop io_uring.
type Limits struct {
	Memlock Rlimit `json:"memlock"`
	Nofile  Rlimit `json:"nofile"`
}

// Rlimit is one limit; null stands for RLIM_INFINITY, which as a number
// (2^64-1) would lose precision in every JSON reader that uses doubles.
type Rlimit struct {
	Soft *uint64 `json:"soft"`
	Hard *uint64 `json:"hard"`
}

// LSM lists the Linux security modules in force.
type LSM struct {
	List    []string `json:"list"`
	SELinux string   `json:"selinux"`
}

// SetupProbe is the plain io_uring_setup call sysinfo makes for the verdict.
type SetupProbe struct {
	Result  string `json:"result"`   // "ok", "killed by SIGSYS", an errno name
	InChild bool   `json:"in_child"` // run in a child because of a seccomp filter
	// RingInChild says the detailed ring probe (features, flags, ops) ran in
	// a child process too, so a filter that kills later calls is reported.
	RingInChild bool `json:"ring_in_child"`
}

// FlagSet is a flag word, raw and decoded against ring's tables.
type FlagSet struct {
	Raw    uint32      `json:"raw"`
	Names  []string    `json:"names"`
	List   []FlagEntry `json:"list"`
	Method string      `json:"method"`
}

// FlagEntry is one known bit of a flag word.
type FlagEntry struct {
	Bit       int    `json:"bit"` // bit position: the flag's value is 1<<bit
	Name      string `json:"name"`
	Since     string `json:"since"`
	Supported bool   `json:"supported"`
	Note      string `json:"note,omitempty"`
}

// OpEntry is one io_uring opcode.
type OpEntry struct {
	Op        int    `json:"op"`
	Name      string `json:"name"`
	Supported bool   `json:"supported"`
	Since     string `json:"since"`
}

// Registration is one optional io_uring_register call, tried and undone.
type Registration struct {
	Name      string `json:"name"`
	Opcode    int    `json:"opcode"`
	Since     string `json:"since"`
	Supported bool   `json:"supported"`
	Detail    string `json:"detail"`
}

// Ringo is what the runtime will do on this host.
type Ringo struct {
	MultishotAccept bool     `json:"multishot_accept"`
	MultishotRecv   bool     `json:"multishot_recv"`
	Buffers         string   `json:"buffers"`   // buf-ring, provide-buffers, plain
	Sendfile        string   `json:"sendfile"`  // how sendfile is done
	Deadlines       string   `json:"deadlines"` // link-timeout or loop-timers
	FallbackOps     []string `json:"fallback_ops"`
	MissingFlags    []string `json:"missing_setup_flags"`
	Ops             []UsedOp `json:"ops"`
}

// UsedOp is an opcode ringo uses and the path it takes.
type UsedOp struct {
	Name string `json:"name"`
	Path string `json:"path"` // ring, fallback (per-op epoll) or epoll
}
