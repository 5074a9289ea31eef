package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringo-io/ringo/proactor"
)

// chromiumPath finds Debian's chromium, installing it when missing and
// running as root (as the Makefile's deps would); "" with a reason
// otherwise.
func chromiumPath() (string, string) {
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, ""
	}
	if os.Geteuid() != 0 {
		return "", "chromium is not installed and the test is not root (apt-get install chromium)"
	}
	cmd := exec.Command("apt-get", "install", "-y", "--no-install-recommends", "chromium")
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "apt-get install chromium failed: " + err.Error() + ": " + lastLine(string(out))
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		return "", "chromium still missing after apt-get install"
	}
	return p, ""
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	return s[strings.LastIndexByte(s, '\n')+1:]
}

// TestBrowser loads the index page in headless Chromium and checks that
// the page rendered and that the browser fetched its stylesheet and both
// images (from the server's access log). A screenshot is written to
// $FILESERVER_ARTIFACTS (if set) as browser-<driver>.png.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	bin, why := chromiumPath()
	if bin == "" {
		t.Skip(why)
	}
	drivers(t, func(t *testing.T, p *proactor.Proactor) {
		root := makeRoot(t)
		logf := filepath.Join(t.TempDir(), "access.log")
		ts := start(t, p, root, func(c *config) { c.logPath = logf })
		args := []string{
			"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(),
		}
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		defer cancel()
		out, err := chromium(ctx, bin, append(args, "--dump-dom", ts.url+"/")...).Output()
		if err != nil {
			t.Fatalf("chromium --dump-dom: %v", err)
		}
		dom := string(out)
		if !strings.Contains(dom, "<h1>ringo</h1>") || !strings.Contains(dom, `src="/img/ring.png"`) {
			t.Fatalf("page did not arrive:\n%.500s", dom)
		}
		if dir := os.Getenv("FILESERVER_ARTIFACTS"); dir != "" {
			shot := filepath.Join(dir, "browser-"+p.Backend().String()+".png")
			sargs := append(args, "--screenshot="+shot, "--window-size=800,600", ts.url+"/")
			if out, err := chromium(ctx, bin, sargs...).CombinedOutput(); err != nil {
				t.Errorf("screenshot: %v: %s", err, lastLine(string(out)))
			}
		}
		ts.alog.flush()
		b, err := os.ReadFile(logf)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`"GET / HTTP/1.1" 200`, `"GET /style.css HTTP/1.1" 200`, `"GET /img/ring.png HTTP/1.1" 200`, `"GET /img/ring.svg HTTP/1.1" 200`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("access log lacks %s:\n%s", want, b)
			}
		}
	})
}

// chromium is the browser command, killed with every process it started
// when ctx ends. Killing the first one is not enough: its renderer and
// zygote children hold the output pipe, and Output waited for them (a
// 10-minute hang of the whole package once, on a loaded machine).
func chromium(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}
