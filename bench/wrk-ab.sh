#!/usr/bin/env bash
# wrk-ab.sh PATH ROUNDS URL_BASE...: side-by-side wrk rounds against
# servers that are already running, interleaved (each round visits every
# server in turn), with the load on CPU 0. Per server and round it prints
#   req/s  client-CPU-us/req  server-CPU-us/req
# where the CPU times are CPU 0's and CPU 1's busy time (user, system,
# irq and softirq, not steal) from /proc/stat, divided by the requests wrk
# completed. Start the servers pinned to CPU 1 (taskset -c 1). The CPU
# columns show which side a change moved work to: on this machine req/s
# swings by 20% between rounds, CPU time per request much less.
#   CONNS (default 64) and SECS (default 3) set wrk's -c and -d.
# Example: bench/wrk-ab.sh /1m.bin 6 http://127.0.0.1:8081 http://127.0.0.1:8082
set -euo pipefail
if [ $# -lt 3 ]; then
	sed -n '2,13p' "$0" >&2
	exit 2
fi
path=$1 rounds=$2
shift 2
snap() { awk '/^cpu[01] /{printf "%d %d ", $2+$3+$4+$7+$8, $9}' /proc/stat; }
for r in $(seq "$rounds"); do
	line="round $r"
	for base in "$@"; do
		a=$(snap)
		out=$(taskset -c 0 wrk -t1 -c"${CONNS:-64}" -d"${SECS:-3}"s "$base$path")
		b=$(snap)
		line+=$(echo "$a $b" | awk -v out="$out" -v base="$base" -v hz="$(getconf CLK_TCK)" '{
			rs = out; sub(/.*Requests\/sec: */, "", rs); sub(/[^0-9.].*/, "", rs)
			n = out; sub(/ requests in.*/, "", n); sub(/.*\n */, "", n)
			us = 1e6 / hz / n
			printf " | %s %.0f %.1f %.1f", base, rs, ($5-$1)*us, ($7-$3)*us }')
	done
	echo "$line"
done
