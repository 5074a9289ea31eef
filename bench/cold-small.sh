#!/usr/bin/env bash
# cold-small.sh ROUNDS BIN...: a file server's loop while it serves small
# files that are not in the page cache, from a slow disk. Per round and
# server binary (examples/fileserver builds), rounds alternating:
#   - 3,000 files of 16 KiB under DIR (default /var/tmp/ringo-coldsite,
#     made once), their pages dropped (posix_fadvise DONTNEED);
#   - the server (-loops 1, CPU 1) in a blkio (cgroup v1) cgroup limited
#     to IOPS (default 100) reads a second on the disk of DIR;
#   - on CPU 0, one client fetches cold files one after another over a
#     keep-alive connection while wrk -t1 -c8 -d5s asks for a hot 1 KiB
#     file on the same loop.
# It prints wrk's req/s, p50, p99 and max, and the cold fetches' count and
# median latency. Needs root, cgroup v1 blkio, python3, wrk.
set -euo pipefail
if [ $# -lt 2 ]; then
	sed -n '2,13p' "$0" >&2
	exit 2
fi
rounds=$1
shift
dir=${DIR:-/var/tmp/ringo-coldsite}
port=${PORT:-8097}
cg=/sys/fs/cgroup/blkio/ringo-coldsmall
if [ ! -f "$dir/f2999.bin" ]; then
	mkdir -p "$dir"
	python3 -c '
import os, sys
d = sys.argv[1]
for i in range(3000):
    open(os.path.join(d, "f%d.bin" % i), "wb").write(os.urandom(16384))
open(os.path.join(d, "1k.bin"), "wb").write(os.urandom(1024))' "$dir"
fi
dev=$(lsblk -no MAJ:MIN "$(df --output=source "$dir" | tail -1)" | head -1 | tr -d ' ')
mkdir -p $cg
echo "$dev ${IOPS:-100}" >$cg/blkio.throttle.read_iops_device
trap 'for p in $(cat $cg/cgroup.procs); do echo $p >/sys/fs/cgroup/blkio/cgroup.procs; done; rmdir $cg' EXIT
fetch='
import http.client, sys, time
port, start, dur = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port)
lat, i, end = [], start, time.time() + dur
while time.time() < end and i < 3000:
    t = time.time()
    c.request("GET", "/f%d.bin" % i)
    r = c.getresponse()
    b = r.read()
    if r.status != 200 or len(b) != 16384:
        sys.exit("f%d.bin: status %d, %d bytes" % (i, r.status, len(b)))
    lat.append(time.time() - t)
    i += 1
lat.sort()
print("cold fetches %d, median %.1f ms" % (len(lat), lat[len(lat) // 2] * 1000))'
drop='
import os, sys
d = sys.argv[1]
for n in os.listdir(d):
    fd = os.open(os.path.join(d, n), os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)'
start=0
for r in $(seq "$rounds"); do
	for bin in "$@"; do
		sh -c "echo \$\$ >$cg/cgroup.procs; exec taskset -c 1 $bin -root $dir -addr 127.0.0.1:$port -loops 1" >/dev/null 2>&1 &
		srv=$!
		sleep 0.5
		# Again, now that the cgroup has a task: a limit written to an
		# empty cgroup was seen not to hold in the first round.
		echo "$dev ${IOPS:-100}" >$cg/blkio.throttle.read_iops_device
		python3 -c "$drop" "$dir"
		cat "$dir/1k.bin" >/dev/null
		curl -s -o /dev/null "http://127.0.0.1:$port/1k.bin"
		out=$(mktemp)
		taskset -c 0 python3 -c "$fetch" $port $start 5 >"$out" &
		w=$(taskset -c 0 wrk -t1 -c8 -d5s --latency "http://127.0.0.1:$port/1k.bin")
		wait $!
		echo "round $r $(basename "$bin"): req/s $(echo "$w" | awk '/Requests\/sec/{print $2}')" \
			"p50 $(echo "$w" | awk '$1=="50%"{print $2}') p99 $(echo "$w" | awk '$1=="99%"{print $2}')" \
			"max $(echo "$w" | awk '/Latency/{print $4}') | $(cat "$out")"
		rm -f "$out"
		kill $srv
		wait $srv 2>/dev/null || true
		start=$(((start + 500) % 2500))
	done
done
