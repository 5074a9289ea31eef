package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// ANSI colours. Every mark is wrapped in codes of the same length, so the
// columns tabwriter aligns stay aligned with colour on.
const (
	green  = "\x1b[32m"
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	bold   = "\x1b[01m"
	reset  = "\x1b[0m"
)

type painter bool

func (p painter) paint(code, s string) string {
	if !p {
		return s
	}
	return code + s + reset
}

func (p painter) mark(ok bool) string {
	if ok {
		return p.paint(green, "✔")
	}
	return p.paint(red, "✘")
}

func (p painter) verdict(v string) string {
	switch v {
	case verdictUsable:
		return p.paint(green, "✔ "+v)
	case verdictGaps:
		return p.paint(yellow, "◐ "+v)
	}
	return p.paint(red, "✘ "+v)
}

// render writes rep as aligned tables, one per section. It reads nothing but
// rep, so a fixed report renders the same on every host (the golden tests).
func render(w io.Writer, rep Report, colour bool) {
	p := painter(colour)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(cells ...string) {
		// A trailing empty cell would still be padded: drop it.
		for len(cells) > 1 && cells[len(cells)-1] == "" {
			cells = cells[:len(cells)-1]
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	section := func(title string) {
		tw.Flush()
		fmt.Fprintln(w)
		fmt.Fprintln(w, p.paint(bold, title))
	}

	fmt.Fprintln(w, p.paint(bold, "io_uring for ringo on this host"))
	row("  verdict", p.verdict(rep.Verdict))
	row("  reason", rep.Reason+": "+rep.Why)
	errno := "-"
	if rep.Errno != nil {
		errno = fmt.Sprintf("%s (%d)", rep.Errno.Name, rep.Errno.Number)
	}
	row("  errno", errno)
	row("  backend", rep.Backend+" ("+rep.BackendReason+")")

	section("host")
	k := rep.Kernel
	row("  kernel", fmt.Sprintf("%s: %d.%d.%d from %s, %s", k.Release, k.Major, k.Minor, k.Patch, k.Source, k.Machine))
	sim := "no (native)"
	if k.Simulated != nil {
		// -kernel wins over RINGO_KERNEL, so the variable is the source
		// only when it names the release simulated.
		from := "-kernel"
		if r, err := parseKernel(rep.Knobs.Kernel); err == nil && rep.Knobs.Kernel != "" && r.String() == *k.Simulated {
			from = "RINGO_KERNEL"
		}
		sim = *k.Simulated + " (from " + from + ")"
	}
	row("  simulating", sim)
	row("  RINGO_BACKEND", orDash(rep.Knobs.Backend))
	row("  RINGO_KERNEL", orDash(rep.Knobs.Kernel))
	row("  kernel.io_uring_disabled", intOrAbsent(rep.Sysctl.Disabled))
	row("  kernel.io_uring_group", intOrAbsent(rep.Sysctl.Group))
	row("  may create rings", p.mark(rep.Sysctl.MayCreateRings)+" "+rep.Sysctl.Why)
	sc := rep.Seccomp
	filters := "unknown"
	if sc.Filters != nil {
		filters = strconv.Itoa(*sc.Filters)
	}
	row("  seccomp", fmt.Sprintf("%s, filters: %s, NoNewPrivs: %s", sc.Mode, filters, yesNo(sc.NoNewPrivs)))
	row("  RLIMIT_MEMLOCK", rlimitString(rep.Limits.Memlock, " bytes"))
	row("  RLIMIT_NOFILE", rlimitString(rep.Limits.Nofile, ""))
	row("  container", orDash(strings.Join(rep.Container, "; ")))
	lsm := orDash(strings.Join(rep.LSM.List, ","))
	if rep.LSM.SELinux != "" {
		lsm += ", SELinux " + rep.LSM.SELinux
	}
	row("  LSMs", lsm)
	where := "in this process"
	if rep.Setup.InChild {
		where = "in a child process (seccomp filter)"
	}
	row("  io_uring_setup", rep.Setup.Result+", "+where)
	if rep.Setup.RingInChild {
		row("  ring probe", "in a child process (seccomp filter)")
	}

	flags := func(title string, fs FlagSet) {
		section(fmt.Sprintf("%s: %#x (%s)", title, fs.Raw, fs.Method))
		row("", "bit", "name", "since", "")
		for _, f := range fs.List {
			row("  "+p.mark(f.Supported), strconv.Itoa(f.Bit), f.Name, f.Since, f.Note)
		}
	}
	flags("features", rep.Features)
	flags("setup flags", rep.SetupFlags)

	last := "unknown"
	if rep.LastOp != nil {
		last = strconv.Itoa(*rep.LastOp)
	}
	section(fmt.Sprintf("opcodes: last_op %s (%s)", last, rep.OpsSource))
	row("", "op", "name", "since")
	for _, o := range rep.Ops {
		row("  "+p.mark(o.Supported), strconv.Itoa(o.Op), o.Name, o.Since)
	}

	section("registrations")
	if len(rep.Registrations) == 0 {
		row("  -", "none tried: no ring")
	}
	for _, r := range rep.Registrations {
		row("  "+p.mark(r.Supported), fmt.Sprintf("%s (%d)", r.Name, r.Opcode), r.Since, r.Detail)
	}

	section("what ringo will do")
	rg := rep.Ringo
	if rep.Backend != "uring" {
		row("  backend", "epoll reactor for every op; nothing below uses io_uring")
	}
	row("  multishot accept", onOff(p, rg.MultishotAccept, "one ACCEPT per connection (5.19+ for multishot)"))
	row("  multishot recv", onOff(p, rg.MultishotRecv, "re-armed after each receive (6.0+ with a buffer ring)"))
	row("  receive buffers", buffersText(rg.Buffers))
	row("  sendfile", rg.Sendfile+sendfilePath(rg.Sendfile, rep.Backend))
	row("  deadlines", deadlinesText(rg.Deadlines))
	fb := "none"
	if rep.Backend != "uring" {
		fb = "n/a (every op is on epoll)"
	} else if len(rg.FallbackOps) > 0 {
		fb = strings.Join(rg.FallbackOps, " ")
	}
	row("  per-op fallback", fb)
	if len(rg.MissingFlags) > 0 {
		row("  missing setup flags", strings.Join(rg.MissingFlags, " "))
	}

	if len(rep.Warnings) > 0 {
		section("warnings")
		for _, s := range rep.Warnings {
			row("  " + s)
		}
	}
	tw.Flush()
}

func onOff(p painter, on bool, off string) string {
	if on {
		return p.mark(true) + " on"
	}
	return p.mark(false) + " off: " + off
}

func buffersText(b string) string {
	switch b {
	case "buf-ring":
		return "provided buffer ring (REGISTER_PBUF_RING, 5.19)"
	case "provide-buffers":
		return "PROVIDE_BUFFERS (5.7), a receive re-armed per buffer"
	case "loop-selected":
		return "loop-selected pool buffers, buffered receives on the epoll path"
	}
	return "plain buffers, one per op"
}

func sendfilePath(method, backend string) string {
	switch {
	case method == "splice" && backend == "uring":
		return " (file to pipe as SPLICE on the ring, pipe to socket on writability)"
	case method == "splice":
		return " (two splice(2) through a pooled pipe)"
	case backend == "uring":
		return " (no io_uring opcode: runs on the per-op epoll path)"
	}
	return " when the socket is writable"
}

func deadlinesText(d string) string {
	if d == "link-timeout" {
		return "LINK_TIMEOUT linked to the op"
	}
	return "the loop's timers, then ASYNC_CANCEL or epoll removal"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func intOrAbsent(p *int) string {
	if p == nil {
		return "absent (before 6.6)"
	}
	return strconv.Itoa(*p)
}

func rlimitString(l Rlimit, unit string) string {
	f := func(v *uint64) string {
		if v == nil {
			return "unlimited"
		}
		return strconv.FormatUint(*v, 10)
	}
	return "soft " + f(l.Soft) + ", hard " + f(l.Hard) + unit
}
