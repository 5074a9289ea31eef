#!/usr/bin/env bash
# Run ringo's benchmark suite: ./bench/run.sh full|quick|soak [suite flags].
#   full   every comparison, 5 rounds each; rewrites the generated section of
#          docs/BENCHMARKS.md and the charts in docs/ (about 25 minutes)
#   quick  one short round of a subset, written to bench/out/ (under 2 minutes)
#   soak   servers under abusive clients for SOAK_DURATION (default 10m);
#          writes docs/soak.png, fails on growth or a wrong answer
# Peers come from `make deps-bench` (Debian) and the bench/ Go module; this
# script installs nothing.
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-quick}
shift || true
export GOFLAGS=${GOFLAGS:-}
mkdir -p bin
go build -o bin/suite ./cmd/suite
case "$mode" in
soak)
	# The clients run in the suite: keep them off the servers' CPU.
	exec taskset -c 0 ./bin/suite soak -duration "${SOAK_DURATION:-10m}" "$@"
	;;
full | quick)
	exec ./bin/suite "$mode" "$@"
	;;
*)
	echo "usage: $0 full|quick|soak [flags]" >&2
	exit 2
	;;
esac
