#!/usr/bin/env bash
# Build ringway with profile-guided optimisation: an instrumented build is
# trained by the benchmark harness itself (every compare scenario, ringway
# and the floor relay: keep-alive and new connections, bodies from 100 B to
# 1 MiB, open loop, TLS, WebSockets), then the release build uses that
# profile. The proxy's own user-space CPU per request falls by about a
# quarter (docs/benchmarks.md, "Profile-guided build").
#
# ringway-load (the floor relay, the backend and the load generator) is
# trained in the same runs and built with the same profile, so that a
# comparison made with bin/ringway-load holds ringway against a floor built
# the same way.
#
# usage: loadtest/scripts/build_pgo.sh [OUT_DIR]
#   OUT_DIR (default target/pgo) receives bin/ringway and bin/ringway-load.
# Needs rustup's llvm-tools component (installed here when missing).
set -euo pipefail

cd "$(dirname "$0")/../.."
out=$(realpath -m "${1:-target/pgo}")
work="$out/work"
rm -rf "$work"
mkdir -p "$work/profiles" "$out/bin"

sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
profdata="$sysroot/lib/rustlib/$host/bin/llvm-profdata"
if [[ ! -x $profdata ]]; then
  rustup component add llvm-tools
fi

echo "== instrumented build"
RUSTFLAGS="-Cprofile-generate=$work/profiles" CARGO_TARGET_DIR="$work/instrumented" \
  cargo build --release --locked -p ringway -p ringway-load

echo "== training: every compare scenario through the instrumented binaries"
# Each process writes its own profile when it exits (compare stops the
# proxies with SIGTERM, a clean exit); the merged profile serves both builds.
LLVM_PROFILE_FILE="$work/profiles/%p-%m.profraw" \
  "$work/instrumented/release/ringway-load" compare --proxies ringway,floor,http-floor --scenarios all \
  --quick --reps 1 --ws-idle 1000 --ringway "$work/instrumented/release/ringway" \
  --json "$work/training.json" --svg "$work/training.svg"
shopt -s nullglob
profiles=("$work"/profiles/*.profraw)
if (( ${#profiles[@]} == 0 )); then
  echo "no profile was written by the training run" >&2
  exit 1
fi
"$profdata" merge -o "$work/ringway.profdata" "${profiles[@]}"
# A process that dies of a signal writes no profile, and the build would
# then lay its code out as if it never ran (the floor relay did, until it
# learnt to exit on SIGTERM): both proxies' request paths must have counts.
trained() {
  "$profdata" show --all-functions --counts "$work/ringway.profdata" |
    awk -v name="$1" '/^  [^ ]/ { f = index($0, name) > 0 }
      f && /Block counts: \[[1-9]/ { found = 1 } END { exit !found }'
}
for path in ringway..proxy..forward ringway_load..floor.. ringway_load..http_floor..; do
  if ! trained "$path"; then
    echo "the training run left no counts for $path: its process wrote no profile" >&2
    exit 1
  fi
done

echo "== optimised build"
# -pgso=false: LLVM otherwise optimises for size every block outside the
# hottest 95 % of the profile's counts, and the training's crypto and copy
# loops put the whole keep-alive request path there. Its moves of 72 to 112
# bytes (futures, heads) then became `rep movsq`, whose start-up cost perf
# showed in about 0.7 % of the proxy's CPU time (docs/benchmarks.md,
# twenty-third pass).
RUSTFLAGS="-Cprofile-use=$work/ringway.profdata -Cllvm-args=-pgso=false" \
  CARGO_TARGET_DIR="$work/optimised" cargo build --release --locked -p ringway -p ringway-load
cp "$work/optimised/release/ringway" "$out/bin/ringway"
cp "$work/optimised/release/ringway-load" "$out/bin/ringway-load"
echo "built $out/bin/ringway (profile from ${#profiles[@]} runs); compare it with"
echo "  $out/bin/ringway-load compare"
