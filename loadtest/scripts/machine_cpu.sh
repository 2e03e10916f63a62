#!/usr/bin/env bash
# Requests per second and the whole machine's CPU per request, for ringway
# builds in turn.
#
#   machine_cpu.sh [REPS] BIN ...
#
# The harness's figures (compare, ab_variants.py) count the proxy's own CPU
# time. Kernel work a proxy causes on its peers' CPUs is not in them: a poll
# armed by an early read is woken from the peer's `send`, on the peer's CPU.
# This runs each BIN in turn (REPS rounds, default 4) on CPU 0 with wrk -t1
# -c64 and the backend on CPU 1, and prints wrk's requests per second and the
# busy time of both CPUs per request (/proc/stat: user, nice, system, irq,
# softirq, steal), then the medians per build. Needs wrk; loopback only;
# each run is 1 s of warm-up and 3 s measured.
set -euo pipefail
REPS=4
if [[ ${1:-} =~ ^[0-9]+$ ]]; then REPS=$1; shift; fi
[ $# -ge 1 ] || { echo "usage: $0 [REPS] BIN ..." >&2; exit 2; }
LOAD=${LOAD:-$(dirname "$1")/ringway-load}
PORT=${PORT:-8484}
BPORT=${BPORT:-9494}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

busy() { awk '/^cpu[01] / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat | paste -sd' '; }

# shellcheck source=wait_port.sh
source "$(dirname "$0")/wait_port.sh"

one() {
  local bin=$1 backend proxy before after requests
  taskset -c 1 "$LOAD" backend --listen 127.0.0.1:$BPORT --driver epoll >/dev/null 2>&1 &
  backend=$!
  "$LOAD" config ringway --listen 127.0.0.1:$PORT --upstream 127.0.0.1:$BPORT > "$OUT/ringway.toml"
  wait_port $BPORT
  taskset -c 0 "$bin" run -c "$OUT/ringway.toml" --workers 1 >/dev/null 2>&1 &
  proxy=$!
  wait_port $PORT
  taskset -c 1 wrk -t1 -c64 -d1s http://127.0.0.1:$PORT/ >/dev/null
  before=$(busy)
  requests=$(taskset -c 1 wrk -t1 -c64 -d3s http://127.0.0.1:$PORT/ | awk '/requests in/ {print $1}')
  after=$(busy)
  kill $proxy $backend; wait $proxy $backend 2>/dev/null || true
  python3 - "$before" "$after" "$requests" <<'PY'
import os, sys
tick = 1e6 / os.sysconf("SC_CLK_TCK")
before, after = map(int, sys.argv[1].split()), map(int, sys.argv[2].split())
cpu0, cpu1 = ((b - a) * tick / int(sys.argv[3]) for a, b in zip(before, after))
print(f"{int(sys.argv[3]) / 3:.0f} {cpu0:.2f} {cpu1:.2f} {cpu0 + cpu1:.2f}")
PY
}

for rep in $(seq 1 "$REPS"); do
  for bin in "$@"; do
    line=$(one "$bin")
    echo "$bin $line" >> "$OUT/runs"
    read -r rps c0 c1 both <<< "$line"
    echo "rep $rep $bin: $rps req/s, CPU 0 $c0, CPU 1 $c1, both $both us/req"
  done
done
echo
echo "medians of $REPS (requests/s, CPU 0, CPU 1, both µs per request):"
python3 - "$OUT/runs" <<'PY'
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    bin_, *values = line.split()
    runs[bin_].append([float(v) for v in values])
for bin_, rows in runs.items():
    med = [statistics.median(column) for column in zip(*rows)]
    print(f"  {bin_}: {med[0]:.0f} req/s, {med[1]:.2f} + {med[2]:.2f} = {med[3]:.2f} us/req")
PY
