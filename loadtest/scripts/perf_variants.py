#!/usr/bin/env python3
"""Where a proxy's CPU goes, kernel included: `perf record -e cpu-clock`
while wrk loads it.

callgrind counts user-space instructions only; the harness's CPU figures
cannot say which kernel paths a proxy's choices cost. perf's software clock
event samples both (no hardware counters needed, so it works in VMs). Each
variant is NAME=PATH (a ringway binary, or a wrapper script that execs one
with more flags), or `floor`, `http-floor` or `nginx`; runs are interleaved, each proxy
alone on CPU 0 with the config compare gives it, wrk and the backend on
CPU 1. Prints, per run, CPU microseconds per request from the samples (total,
user, kernel), then the medians, then the functions whose cost per request
differs most between the first two variants (samples of all runs merged).

usage: loadtest/scripts/perf_variants.py [--body 100] [--post N] [--reps 3] [--duration 5]
       [--bin target/release] [--top 30] NAME=PATH|floor|http-floor|nginx ...

Needs perf (apt-get install linux-perf), wrk and root (or
kernel.perf_event_paranoid <= 1). Loopback only.
"""
import argparse
import collections
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from compare_vs_wrk import wait_listening
from proxies_vs_wrk import WRK, family, start_proxy, stop_proxy, write_configs

PERIOD_NS = 50_000  # one sample per 50 µs of CPU time


def symbols(data):
    """{(kernel?, symbol): samples} of one perf.data."""
    out = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym",
         "--stdio", "-g", "none", "-F", "sample,dso,sym"],
        capture_output=True, text=True, check=True).stdout
    counts = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*(\d+)\s+(\S+)\s+\[(.)\]\s+(.*)", line)
        if m and not line.startswith("#"):
            counts[(m.group(3) == "k", m.group(4).strip())] += int(m.group(1))
    return counts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--body", type=int, default=100)
    ap.add_argument("--post", type=int, metavar="N",
                    help="POST a body of N bytes with each request instead of a GET")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--bin", default="target/release", help="where ringway-load is")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--connections", type=int, default=64,
                    help="wrk's connections (compare uses 64)")
    ap.add_argument("variants", nargs="+")
    args = ap.parse_args()
    for tool in ["perf", "wrk"]:
        if not shutil.which(tool):
            sys.exit(f"{tool} is not installed")
    load = f"{args.bin}/ringway-load"
    work = tempfile.mkdtemp(prefix="perf-variants-")
    port, bport = 18480, 18490
    write_configs(load, port, bport, work)
    commands = {}
    for v in args.variants:
        if v in ("floor", "http-floor"):
            http = ["--http"] if v == "http-floor" else []
            commands[v] = ["taskset", "-c", "0", load, "floor", *http,
                           "--listen", f"127.0.0.1:{port}",
                           "--upstream", f"127.0.0.1:{bport}", "--threads", "1"]
        elif v == "nginx":
            commands[v] = ["nginx", "-c", f"{work}/nginx.conf", "-e", f"{work}/error.log"]
        else:
            name, path = v.split("=", 1)
            commands[name] = [path, "run", "-c", f"{work}/ringway.toml"]
    names = list(commands)
    backend = subprocess.Popen(
        [load, "backend", "--listen", f"127.0.0.1:{bport}", "--body-size", str(args.body),
         "--pin-cpus", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(bport)
    figures = {n: [] for n in names}
    merged = {n: collections.Counter() for n in names}
    requests = {n: 0 for n in names}
    url = f"http://127.0.0.1:{port}/"
    load_args = []
    if args.post is not None:
        with open(f"{work}/post.lua", "w") as f:
            f.write(f'wrk.method = "POST"\nwrk.body = string.rep("x", {args.post})\n')
        load_args = ["-s", f"{work}/post.lua"]
    try:
        for rep in range(args.reps):
            for name in names:
                proc = start_proxy(name, commands[name], port)
                data = f"{work}/{name}-{rep}.data"
                pids = ",".join(str(p) for p in family(proc.pid))
                perf = subprocess.Popen(
                    ["perf", "record", "-e", "cpu-clock", "-c", str(PERIOD_NS), "-p", pids,
                     "-o", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                # perf takes a moment to attach; the idle proxy is not sampled
                # meanwhile, so waiting costs nothing and misses no request.
                time.sleep(0.5)
                wrk = [a if a != "-c64" else f"-c{args.connections}" for a in WRK]
                out = subprocess.run(wrk + load_args + [f"-d{args.duration}s", url],
                                     capture_output=True, text=True).stdout
                perf.send_signal(signal.SIGINT)
                perf.wait(timeout=60)
                stop_proxy(proc, port)
                done = int(re.search(r"(\d+) requests in", out).group(1))
                counts = symbols(data)
                os.unlink(data)
                merged[name].update(counts)
                requests[name] += done
                per = PERIOD_NS / 1000 / done
                kernel = sum(c for (k, _), c in counts.items() if k) * per
                user = sum(c for (k, _), c in counts.items() if not k) * per
                figures[name].append((user + kernel, user, kernel))
                print(f"rep {rep + 1} {name:8} {done / args.duration:8.0f} req/s  total "
                      f"{user + kernel:6.2f} user {user:5.2f} kernel {kernel:6.2f} us/req",
                      flush=True)
    finally:
        backend.terminate()
        shutil.rmtree(work, ignore_errors=True)
    posted = "" if args.post is None else f", {args.post} B POSTed"
    print(f"\nmedians, {args.body} B body{posted}, wrk -t1 -c{args.connections} -d{args.duration}s, {args.reps} reps:")
    for name in names:
        t, u, k = (statistics.median(f[i] for f in figures[name]) for i in range(3))
        print(f"  {name:8} total {t:6.2f} user {u:5.2f} kernel {k:6.2f} us/req")
    if len(names) < 2:
        return
    a, b = names[:2]
    per_a = PERIOD_NS / 1000 / requests[a]
    per_b = PERIOD_NS / 1000 / requests[b]
    keys = set(merged[a]) | set(merged[b])
    diff = sorted(keys, key=lambda key: -abs(merged[a][key] * per_a - merged[b][key] * per_b))
    print(f"\nus/req by function, {a} against {b} (all runs):")
    for key in diff[:args.top]:
        x, y = merged[a][key] * per_a, merged[b][key] * per_b
        print(f"  {x:6.3f} {y:6.3f} {x - y:+6.3f}  {'K' if key[0] else 'U'} {key[1][:90]}")


if __name__ == "__main__":
    main()
