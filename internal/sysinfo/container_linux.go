package sysinfo

import (
	"os"
	"strings"
)

// host is the slice of the file system and environment that container
// detection looks at, so tests can describe a host without being on one.
type host struct {
	getenv   func(string) string
	exists   func(string) bool
	readFile func(string) ([]byte, error)
}

var realHost = host{
	getenv: os.Getenv,
	exists: func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	},
	readFile: os.ReadFile,
}

// Container returns one line per sign that this process runs in a container
// or sandbox, each naming the runtime and the evidence ("docker: /.dockerenv
// exists"). None of them is proof; together they explain which seccomp
// profile is likely in force. An empty result means no sign was found.
func Container() []string { return containerHints(realHost) }

// gvisorUnameVersion is the utsname.version the gVisor sentry reports for
// every release it emulates (its fixed build stamp), observed on runsc since
// 2018. The sentry answers uname itself, so a host kernel never shows it.
const gvisorUnameVersion = "#1 SMP Sun Jan 10 15:06:54 PST 2016"

func containerHints(h host) []string {
	var hints []string
	add := func(s string) { hints = append(hints, s) }

	if h.exists("/.dockerenv") {
		add("docker: /.dockerenv exists")
	}
	if h.exists("/run/.containerenv") {
		add("podman: /run/.containerenv exists")
	}
	switch c := h.getenv("container"); {
	case c == "podman":
		add("podman: $container=podman")
	case c != "":
		// systemd-nspawn, lxc, oci, ...: the convention from systemd's
		// Container Interface.
		add("container: $container=" + c)
	}
	if h.getenv("KUBERNETES_SERVICE_HOST") != "" {
		add("kubernetes: $KUBERNETES_SERVICE_HOST is set")
	}
	if h.exists("/proc/gvisor/kernel_is_gvisor") {
		// Only present when runsc runs with --gvisor-marker-file.
		add("gvisor: /proc/gvisor/kernel_is_gvisor exists")
	}
	if v, err := h.readFile("/proc/version"); err == nil {
		s := string(v)
		switch {
		case strings.Contains(s, gvisorUnameVersion):
			add("gvisor: /proc/version carries the sentry's fixed build stamp")
		case strings.Contains(strings.ToLower(s), "gvisor"):
			add("gvisor: /proc/version mentions gVisor")
		}
	}
	if b, err := h.readFile("/proc/sys/kernel/osrelease"); err == nil {
		rel := strings.TrimSpace(string(b))
		low := strings.ToLower(rel)
		switch {
		case strings.Contains(low, "wsl2") || strings.Contains(low, "microsoft-standard"):
			add("wsl2: kernel release " + rel)
		case strings.Contains(low, "microsoft") || strings.Contains(low, "wsl"):
			// WSL1 translates syscalls and has no io_uring at all.
			add("wsl1: kernel release " + rel)
		}
	}
	if b, err := h.readFile("/proc/1/cgroup"); err == nil {
		// cgroup v1 paths name the runtime; under cgroup v2 PID 1 usually
		// sees "0::/" and this says nothing, which is why it comes last.
		s := string(b)
		for _, m := range []struct{ word, name string }{
			{"kubepods", "kubernetes"},
			{"docker", "docker"},
			{"libpod", "podman"},
			{"containerd", "containerd"},
			{"lxc", "lxc"},
		} {
			if strings.Contains(s, m.word) {
				add(m.name + ": /proc/1/cgroup mentions " + m.word)
				break
			}
		}
	}
	return hints
}

// hasHint reports whether one of hints is from the named runtime.
func hasHint(hints []string, name string) bool {
	for _, h := range hints {
		if strings.HasPrefix(h, name+":") {
			return true
		}
	}
	return false
}
