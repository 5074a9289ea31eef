package fs

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ringo-io/ringo/internal/leakcheck"
	"github.com/ringo-io/ringo/internal/seccomptest"
	"github.com/ringo-io/ringo/proactor"
)

// TestMain fails the run if any test leaves a goroutine or a descriptor
// behind, on either driver. A child re-executed under a seccomp filter
// (TestInterruptedRetried) only runs its test: the filter's supervisor
// goroutine lives until it exits.
func TestMain(m *testing.M) {
	seccomptest.MaybeInstallFromEnv()
	if _, ok := seccomptest.Installed(); ok {
		os.Exit(m.Run())
	}
	leakcheck.Main(m, nil, nil)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type driverCase struct {
	name string
	opts proactor.Options
}

// drivers are the configurations every behavioural test runs on.
var drivers = []driverCase{
	{"uring", proactor.Options{Backend: proactor.Uring, Loops: 1}},
	{"epoll", proactor.Options{Backend: proactor.Epoll, Loops: 1}},
}

// kernels adds simulated older kernels: 5.10 keeps io_uring (without
// FTRUNCATE, so Truncate takes the per-op fallback); 5.4 has no usable
// io_uring for ringo (no ASYNC_CANCEL), so Auto lands on epoll.
var kernels = []driverCase{
	{"uring-5.10", proactor.Options{Backend: proactor.Uring, Loops: 1, Kernel: "5.10"}},
	{"auto-5.4", proactor.Options{Backend: proactor.Auto, Loops: 1, Kernel: "5.4"}},
}

// eachDriver runs f on both drivers and on the simulated kernels: the
// kernel matrix of issue 6. simulated tells f whether p is one of the
// latter, for tests that shorten their work there.
func eachDriver(t *testing.T, f func(t *testing.T, p *proactor.Proactor)) {
	run(t, drivers, f)
	run(t, kernels, f)
}

// simulated reports whether p runs as an older kernel (Options.Kernel).
func simulated(p *proactor.Proactor) bool {
	k := p.Kernel()
	return k != "" && k != "native"
}

func run(t *testing.T, cases []driverCase, f func(t *testing.T, p *proactor.Proactor)) {
	for _, d := range cases {
		t.Run(d.name, func(t *testing.T) {
			f(t, newProactor(t, d.opts))
		})
	}
}

func newProactor(t testing.TB, opts proactor.Options) *proactor.Proactor {
	t.Helper()
	opts.Logger = quiet
	p, err := proactor.New(opts)
	if errors.Is(err, proactor.ErrUnavailable) {
		t.Skipf("io_uring unavailable: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, p.Close())
		for _, l := range p.Loops() {
			ReleasePipes(l)
		}
	})
	return p
}

func opts(p *proactor.Proactor) OpenOptions { return OpenOptions{Proactor: p} }

// tempFile creates a file with content in dir (t.TempDir() if empty) and
// returns its path.
func tempFile(t testing.TB, dir string, content []byte) string {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	f, err := os.CreateTemp(dir, "ringo-fs-*")
	require.NoError(t, err)
	t.Cleanup(func() { os.Remove(f.Name()) })
	_, err = f.Write(content)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return f.Name()
}
