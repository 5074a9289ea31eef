# ringo: every target a fresh machine needs. `make test` is what CI runs.
SHELL := /bin/bash
GO ?= go
export PATH := $(PATH):$(shell $(GO) env GOPATH)/bin

# Debian packages the tests need: gcc and the kernel's uapi headers for the
# ABI check in ring/. Installed only when missing, and only as root.
TEST_DEBS := gcc linux-libc-dev
# What the benchmarks compare against.
BENCH_DEBS := gcc linux-libc-dev liburing-dev nginx wrk fio

.PHONY: all run test test-short lint bench bench-quick probe deps-test deps-bench clean

all: test

run:
	$(GO) test -run XXX -bench Nop -benchtime 200000x ./ring

test: deps-test
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

lint:
	@fmt="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@latest
	staticcheck ./...

bench: deps-bench
	./bench/run.sh full

bench-quick: deps-bench
	./bench/run.sh quick

probe:
	$(GO) run ./examples/uringprobe

# deps-% installs the listed Debian packages that are missing.
deps-test:
	@./.ci/debs.sh $(TEST_DEBS)

deps-bench:
	@./.ci/debs.sh $(BENCH_DEBS)

clean:
	$(MAKE) -C bench/c clean
