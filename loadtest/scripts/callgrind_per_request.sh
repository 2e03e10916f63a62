#!/usr/bin/env bash
# Instructions per request of a ringway build, by callgrind.
#
#   callgrind_per_request.sh BIN [seq|wrk] [OUTDIR]
#
# seq: one keep-alive connection, N sequential GETs of a 100 B response, epoll
#      driver (repeatable within ~60 instructions on an idle machine).
# wrk: wrk -t1 -c64 against one io_uring worker, as `compare` loads it
#      (CONNECTIONS=N for another count)
#      (moves by a few hundred between runs with the batching).
# WRK_ARGS="-H Connection: close" (wrk mode) measures a new connection per
# request.
# VG_ARGS adds valgrind options, e.g. VG_ARGS=--cache-sim=yes for cache
# misses per request (every event is then printed per request).
# BODY=N makes the backend answer N body bytes instead of 100.
# PROXY=floor profiles `ringway-load floor` (BIN is then ignored but for its
# directory) instead of ringway; PROXY=http-floor the HTTP floor (`floor --http`).
# Each mode runs twice (small and large load) and prints
# (total_large - total_small) / (requests_large - requests_small), so start-up
# cancels out. Needs valgrind, python3, wrk (wrk mode); loopback only.
set -euo pipefail
BIN=${1:?ringway binary}
MODE=${2:-seq}
OUT=${3:-$(mktemp -d)}
LOAD=${LOAD:-$(dirname "$BIN")/ringway-load}
PORT=${PORT:-8181}
BPORT=${BPORT:-9191}
mkdir -p "$OUT"

"$LOAD" backend --listen 127.0.0.1:$BPORT --body-size "${BODY:-100}" --driver epoll >/dev/null 2>&1 &
BACKEND=$!
trap 'kill $BACKEND 2>/dev/null || true' EXIT
"$LOAD" config ringway --listen 127.0.0.1:$PORT --upstream 127.0.0.1:$BPORT > "$OUT/ringway.toml"

# shellcheck source=wait_port.sh
source "$(dirname "$0")/wait_port.sh"
wait_port $BPORT

seq_client() {
  python3 - "$PORT" "$1" <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
req = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n"
buf = b""
for _ in range(n):
    s.sendall(req)
    while True:
        end = buf.find(b"\r\n\r\n")
        if end >= 0:
            head = buf[:end].decode()
            length = next(int(l.split(":")[1]) for l in head.split("\r\n")[1:] if l.lower().startswith("content-length"))
            total = end + 4 + length
            if len(buf) >= total:
                buf = buf[total:]
                break
        chunk = s.recv(65536)
        if not chunk: raise SystemExit("closed")
        buf += chunk
s.close()
print(n)
PY
}

wrk_client() {
  # WRK_ARGS: more wrk options, e.g. -H "Connection: close" for a new
  # connection per request.
  wrk -t1 -c"${CONNECTIONS:-64}" -d"$1"s ${WRK_ARGS:+"$WRK_ARGS"} http://127.0.0.1:$PORT/ | awk '/requests in/ {print $1}'
}

run() {
  local tag=$1 amount=$2 driver requests
  driver=$([ "$MODE" = seq ] && echo epoll || echo io_uring)
  local cmd=("$BIN" run --config "$OUT/ringway.toml" --workers 1 --driver "$driver")
  if [ "${PROXY:-ringway}" = floor ]; then
    cmd=("$LOAD" floor --listen 127.0.0.1:$PORT --upstream 127.0.0.1:$BPORT --driver "$driver")
  elif [ "${PROXY:-ringway}" = http-floor ]; then
    cmd=("$LOAD" floor --http --listen 127.0.0.1:$PORT --upstream 127.0.0.1:$BPORT --driver "$driver")
  fi
  valgrind --tool=callgrind ${VG_ARGS:-} --callgrind-out-file="$OUT/$tag.out" "${cmd[@]}" >/dev/null 2>"$OUT/$tag.log" &
  local vg=$!
  wait_port $PORT
  if [ "$MODE" = seq ]; then seq_client 50 >/dev/null; requests=$(seq_client "$amount"); requests=$((requests + 50))
  else requests=$(wrk_client "$amount"); fi
  callgrind_control -d "$vg" >/dev/null 2>&1 || true
  sleep 1
  kill -9 "$vg" 2>/dev/null || true; wait "$vg" 2>/dev/null || true
  local events totals
  events=$(ls -t "$OUT/$tag.out"* | head -1 | xargs grep -h '^events:' | head -1 | cut -d' ' -f2- | tr ' ' ,)
  totals=$(ls -t "$OUT/$tag.out"* | head -1 | xargs grep -h '^summary:\|^totals:' | head -1 | cut -d' ' -f2- | tr ' ' ,)
  echo "$tag $requests $totals $events"
}

if [ "$MODE" = seq ]; then small=2000; large=12000; else small=3; large=13; fi
a=$(run small $small); b=$(run large $large)
echo "$a"; echo "$b"
python3 - "$a" "$b" <<'PY'
import sys
_, r1, t1, events = sys.argv[1].split(); _, r2, t2, _ = sys.argv[2].split()
requests = int(r2) - int(r1)
for i, (name, a, b) in enumerate(zip(events.split(","), t1.split(","), t2.split(","))):
    label = "instructions" if name == "Ir" else name
    print(f"{label} per request: {(int(b) - int(a)) / requests:.{0 if i == 0 else 1}f}")
PY
