#!/usr/bin/env python3
"""Cross-checks one `ringway-load compare` scenario (keep-alive 100 B through
ringway, 1 worker) with wrk, on the same layout as compare uses.

ringway runs pinned to CPU 0 with the config compare generates; the built-in
backend and each client run pinned to CPU 1. wrk and ringway-load (with
--warmup 0, so that both count the whole run) take turns, repetition by
repetition. For each run: requests/s, p50/p99, and ringway's CPU per request
(utime + stime of the ringway process over the client's run, from /proc,
divided by the requests the client counted).

    python3 loadtest/scripts/compare_vs_wrk.py --bin-dir /work/target-load/release
"""
import argparse
import os
import re
import socket
import statistics
import subprocess
import tempfile
import time

UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}
TICKS = os.sysconf("SC_CLK_TCK")

RINGWAY_CONFIG = """[runtime]
workers = 1
pin = true
shutdown_timeout = "1s"

[log]
level = "warn"
access = "off"

[upstreams.backend]
servers = ["127.0.0.1:{backend}"]
keepalive = 32

[[server]]
listen = ["127.0.0.1:{proxy}"]

  [[server.route]]
  prefix = "/"
  proxy = "backend"
"""


def micros(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * UNITS[unit]


def parse_wrk(out):
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = micros(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = micros(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    return requests, rps, p50, p99


def parse_ringway_load(out):
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    row = out.splitlines()[3].split()
    return requests, rps, micros(row[0]), micros(row[2])


def cpu_times(pid):
    """(user, system) CPU seconds of `pid` so far (utime, stime of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


def cpu_seconds(pid):
    return sum(cpu_times(pid))


def wait_listening(port):
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise SystemExit(f"nothing listens on {port}")


def main():
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--bin-dir", default="target/release")
    args.add_argument("--reps", type=int, default=5)
    args.add_argument("--duration", type=int, default=5, help="seconds per run")
    args.add_argument("--backend-port", type=int, default=19110)
    args.add_argument("--proxy-port", type=int, default=19111)
    opts = args.parse_args()
    load = os.path.join(opts.bin_dir, "ringway-load")
    ringway = os.path.join(opts.bin_dir, "ringway")

    work = tempfile.mkdtemp(prefix="compare-vs-wrk-")
    config = os.path.join(work, "ringway.toml")
    with open(config, "w") as out:
        out.write(RINGWAY_CONFIG.format(backend=opts.backend_port, proxy=opts.proxy_port))
    backend = subprocess.Popen(
        ["taskset", "-c", "1", load, "backend", "--listen", f"127.0.0.1:{opts.backend_port}",
         "--body-size", "100"], stderr=subprocess.DEVNULL)
    proxy = subprocess.Popen(["taskset", "-c", "0", ringway, "run", "-c", config, "--workers", "1"])
    try:
        wait_listening(opts.backend_port)
        wait_listening(opts.proxy_port)
        url = f"http://127.0.0.1:{opts.proxy_port}/"
        d = f"{opts.duration}s"
        clients = {
            "wrk": (["wrk", "--latency", "-t1", "-c64", f"-d{d}", url], parse_wrk),
            "ringway-load": ([load, url, "-t1", "-c64", f"-d{d}", "--warmup", "0"],
                             parse_ringway_load),
        }
        runs = {name: [] for name in clients}
        for rep in range(opts.reps):
            for name, (command, parse) in clients.items():
                before = cpu_seconds(proxy.pid)
                out = subprocess.run(["taskset", "-c", "1", *command], capture_output=True,
                                     text=True, check=True).stdout
                cpu = cpu_seconds(proxy.pid) - before
                requests, rps, p50, p99 = parse(out)
                cpu_us = cpu * 1e6 / max(requests, 1)
                runs[name].append((rps, p50, p99, cpu_us))
                print(f"rep {rep + 1} {name:<13} {rps:>9.0f} req/s  p50 {p50:>8.0f} µs  "
                      f"p99 {p99:>8.0f} µs  ringway CPU {cpu_us:6.2f} µs/req", flush=True)
        print("\n| client | requests/s | p50 | p99 | ringway CPU µs/req |")
        print("|---|---:|---:|---:|---:|")
        for name, rows in runs.items():
            med = [statistics.median(column) for column in zip(*rows)]
            print(f"| {name} | {med[0]:.0f} | {med[1]:.0f} µs | {med[2]:.0f} µs | {med[3]:.2f} |")
        pairs = [b[3] / a[3] for a, b in zip(runs["wrk"], runs["ringway-load"])]
        rates = [b[0] / a[0] for a, b in zip(runs["wrk"], runs["ringway-load"])]
        print(f"\nringway-load ÷ wrk, median of pairs: requests/s {statistics.median(rates):.2f}, "
              f"ringway CPU µs/req {statistics.median(pairs):.2f}")
    finally:
        proxy.terminate()
        backend.terminate()
        proxy.wait()
        backend.wait()


if __name__ == "__main__":
    main()
