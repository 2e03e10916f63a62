#!/usr/bin/env python3
"""Cross-checks ringway-load against wrk on one ringway-load backend.

The backend runs pinned to CPU 0, each client pinned to CPU 1; the clients
take turns, repetition by repetition, so that machine noise hits them alike.
Prints every run, then medians: requests/s, p50/p99 latency, and client CPU
per request (utime + stime of the client process over its whole run).

    python3 loadtest/scripts/vs_wrk.py --binary target/release/ringway-load
"""
import argparse
import os
import re
import resource
import statistics
import subprocess
import time

UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}


def micros(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * UNITS[unit]


def parse_wrk(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = micros(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = micros(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    return rps, p50, p99


def parse_ringway_load(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    row = out.splitlines()[3].split()
    return rps, micros(row[0]), micros(row[2])


def show(us):
    return f"{us / 1e3:.2f} ms" if us >= 1e3 else f"{us:.0f} µs"


def main():
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--binary", default="target/release/ringway-load")
    args.add_argument("--reps", type=int, default=5)
    args.add_argument("--duration", type=int, default=5, help="seconds per run")
    args.add_argument("--body-size", default="100")
    args.add_argument("--port", type=int, default=19100)
    opts = args.parse_args()

    url = f"http://127.0.0.1:{opts.port}/"
    d = f"{opts.duration}s"
    clients = {
        # name: (command, seconds under load, parser)
        "wrk": (["wrk", "--latency", "-t1", "-c64", f"-d{d}", url], opts.duration, parse_wrk),
        "ringway-load": ([opts.binary, url, "-t1", "-c64", f"-d{d}"], opts.duration + 1, parse_ringway_load),
        "ringway-load --warmup 0": (
            [opts.binary, url, "-t1", "-c64", f"-d{d}", "--warmup", "0"],
            opts.duration,
            parse_ringway_load,
        ),
    }
    backend_cmd = ["taskset", "-c", "0", opts.binary, "backend", "--listen", f"127.0.0.1:{opts.port}",
                   "--body-size", opts.body_size]
    print("backend:", " ".join(backend_cmd))
    for name, (cmd, _, _) in clients.items():
        print(f"{name}:", " ".join(["taskset", "-c", "1"] + cmd))
    backend = subprocess.Popen(backend_cmd, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    results = {name: [] for name in clients}
    try:
        for rep in range(opts.reps):
            for name, (cmd, loaded, parse) in clients.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                out = subprocess.run(["taskset", "-c", "1"] + cmd, capture_output=True, text=True,
                                     check=False).stdout
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
                rps, p50, p99 = parse(out)
                print(f"## rep {rep + 1} {name}: client cpu {cpu:.2f}s\n{out}", flush=True)
                # ringway-load's warmup is assumed to run at the measured rate.
                results[name].append((rps, p50, p99, cpu / (rps * loaded) * 1e6))
    finally:
        backend.kill()
    print("| client | requests/s (min–max) | p50 | p99 | client CPU µs/request |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        med = [statistics.median(column) for column in zip(*runs)]
        low = min(r[0] for r in runs)
        high = max(r[0] for r in runs)
        print(f"| {name} | {med[0]:.0f} ({low:.0f}–{high:.0f}) | {show(med[1])} | {show(med[2])} | {med[3]:.1f} |")
    print("load average after:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
