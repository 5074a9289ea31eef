package sysinfo

import (
	"io/fs"
	"reflect"
	"testing"
)

func fakeHost(env map[string]string, files map[string]string) host {
	return host{
		getenv: func(k string) string { return env[k] },
		exists: func(p string) bool { _, ok := files[p]; return ok },
		readFile: func(p string) ([]byte, error) {
			if s, ok := files[p]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
	}
}

func TestContainerHints(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		files map[string]string
		want  []string
	}{
		{"bare host", nil, map[string]string{
			"/proc/version":              "Linux version 6.18.44 (gcc) #1 SMP",
			"/proc/sys/kernel/osrelease": "6.18.44\n",
			"/proc/1/cgroup":             "0::/\n",
		}, nil},
		{"docker", nil, map[string]string{"/.dockerenv": ""},
			[]string{"docker: /.dockerenv exists"}},
		{"podman", map[string]string{"container": "podman"}, map[string]string{"/run/.containerenv": ""},
			[]string{"podman: /run/.containerenv exists", "podman: $container=podman"}},
		{"nspawn", map[string]string{"container": "systemd-nspawn"}, nil,
			[]string{"container: $container=systemd-nspawn"}},
		{"kubernetes v1", map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"},
			map[string]string{"/proc/1/cgroup": "12:pids:/kubepods/besteffort/pod1/abc\n"},
			[]string{"kubernetes: $KUBERNETES_SERVICE_HOST is set", "kubernetes: /proc/1/cgroup mentions kubepods"}},
		{"gvisor", nil, map[string]string{
			"/proc/gvisor/kernel_is_gvisor": "",
			"/proc/version":                 "Linux version 4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016",
		}, []string{"gvisor: /proc/gvisor/kernel_is_gvisor exists", "gvisor: /proc/version carries the sentry's fixed build stamp"}},
		{"gvisor release", nil, map[string]string{"/proc/version": "Linux version 4.19.0-gvisor #2"},
			[]string{"gvisor: /proc/version mentions gVisor"}},
		{"wsl2", nil, map[string]string{"/proc/sys/kernel/osrelease": "5.15.153.1-microsoft-standard-WSL2\n"},
			[]string{"wsl2: kernel release 5.15.153.1-microsoft-standard-WSL2"}},
		{"wsl1", nil, map[string]string{"/proc/sys/kernel/osrelease": "4.4.0-19041-Microsoft\n"},
			[]string{"wsl1: kernel release 4.4.0-19041-Microsoft"}},
	} {
		got := containerHints(fakeHost(tc.env, tc.files))
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestLSMs(t *testing.T) {
	got := lsms(fakeHost(nil, map[string]string{
		"/sys/kernel/security/lsm": "lockdown,capability,yama,selinux,bpf\n",
		"/sys/fs/selinux/enforce":  "1",
	}))
	want := LSMInfo{List: []string{"lockdown", "capability", "yama", "selinux", "bpf"}, SELinux: "enforcing"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := lsms(fakeHost(nil, nil)); !reflect.DeepEqual(got, LSMInfo{}) {
		t.Errorf("nothing mounted: got %+v", got)
	}
}
