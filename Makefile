# ringo: every target a fresh machine needs. `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
export PATH := $(PATH):$(shell $(GO) env GOPATH)/bin

# Debian packages the tests need: gcc and the kernel's uapi headers for the
# ABI check in ring/, Chromium for the file server's browser test.
# Installed only when missing, and only as root.
TEST_DEBS := gcc linux-libc-dev chromium
# What the benchmarks compare against.
BENCH_DEBS := gcc linux-libc-dev liburing-dev nginx wrk fio

.PHONY: all run test test-short lint bench bench-quick soak probe deps-test deps-bench clean

all: test

# The main job: the file server on testdata/www (Ctrl-C stops it).
run:
	$(GO) run ./examples/fileserver -root testdata/www -addr 127.0.0.1:8080

test: deps-test
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...
	$(GO) test -run XXX -fuzz FuzzParseRequest -fuzztime 10s ./examples/fileserver
	$(GO) test -run XXX -fuzz FuzzSockaddr -fuzztime 5s ./net

lint:
	@fmt="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	staticcheck ./...

# Benchmarks and the soak test (never run by `make test`): see
# docs/BENCHMARKS.md. bench rewrites its generated section and the charts in
# docs/; bench-quick writes to bench/out/; soak writes docs/soak.png.
SOAK_DURATION ?= 10m

bench: deps-bench
	./bench/run.sh full

bench-quick: deps-bench
	./bench/run.sh quick

soak: deps-bench
	SOAK_DURATION=$(SOAK_DURATION) ./bench/run.sh soak

probe:
	$(GO) run ./examples/uringprobe

# deps-% installs the listed Debian packages that are missing.
deps-test:
	@./.ci/debs.sh $(TEST_DEBS)

deps-bench:
	@./.ci/debs.sh $(BENCH_DEBS)

clean:
	$(MAKE) -C bench/c clean
