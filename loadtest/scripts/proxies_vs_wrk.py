#!/usr/bin/env python3
"""Second opinion on `ringway-load compare`: the same proxies under wrk.

Starts the benchmark backend, then ringway, the floor relay and nginx in turn
(each alone on CPU 0, wrk and the backend on CPU 1, with the configs compare
runs, from `ringway-load config`), runs `wrk -t1 -c64` against each and reads the proxy's CPU time
(utime + stime of all its processes, /proc) over the wrk run, and its split
into user and kernel time. `--proxies ringway,floor,http-floor` adds the HTTP floor
(`ringway-load floor --http`).
Prints requests/s and proxy CPU microseconds per request, repetitions
interleaved, and the medians.

usage: loadtest/scripts/proxies_vs_wrk.py [--body 100] [--reps 3] [--duration 5]
       [--bin DIR]   (ringway and ringway-load, default target/release)
"""
import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import shutil
import socket
import tempfile
import time

from compare_vs_wrk import cpu_times, wait_listening


def family(pid):
    """`pid` and its children (nginx's master and workers)."""
    pids = [pid]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def wait_closed(port):
    """Until nothing accepts on `port` (the previous proxy is gone)."""
    for _ in range(500):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            time.sleep(0.02)
        except OSError:
            return
    raise SystemExit(f"something still listens on {port}")


WRK = ["taskset", "-c", "1", "wrk", "-t1", "-c64"]


def write_configs(load, port, bport, work):
    """ringway.toml and nginx.conf in `work`: the configs compare itself runs
    (`ringway-load config`), listening on `port`, proxying to `bport`."""
    for name, file in [("ringway", "ringway.toml"), ("nginx", "nginx.conf")]:
        text = subprocess.run(
            [load, "config", name, "--listen", f"127.0.0.1:{port}",
             "--upstream", f"127.0.0.1:{bport}", "--dir", work],
            capture_output=True, text=True, check=True).stdout
        with open(f"{work}/{file}", "w") as f:
            f.write(text)


def start_proxy(name, command, port):
    """Start a proxy in a session of its own, wait for it to listen on
    `port`, and warm it up with one second of wrk."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    wait_listening(port)
    if proc.poll() is not None:
        sys.exit(f"{name} exited at start (exit {proc.returncode})")
    subprocess.run(WRK + ["-d1s", f"http://127.0.0.1:{port}/"], capture_output=True)
    return proc


def stop_proxy(proc, port):
    """Stop a proxy from `start_proxy` and wait until `port` is free."""
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=10)
    wait_closed(port)


def cpu_of(pids):
    """(user, kernel) seconds of `pids`."""
    user = kernel = 0.0
    for pid in pids:
        try:
            u, k = cpu_times(pid)
            user += u
            kernel += k
        except OSError:
            pass
    return user, kernel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--body", type=int, default=100)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--bin", default="target/release")
    ap.add_argument("--proxies", default="ringway,floor,nginx")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    work = tempfile.mkdtemp(prefix="wrk-compare-")
    port, bport = 18480, 18490
    backend = subprocess.Popen(
        [f"{args.bin}/ringway-load", "backend", "--listen", f"127.0.0.1:{bport}",
         "--body-size", str(args.body), "--pin-cpus", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(bport)
    write_configs(f"{args.bin}/ringway-load", port, bport, work)
    commands = {
        "ringway": [f"{args.bin}/ringway", "run", "-c", f"{work}/ringway.toml"],
        "floor": ["taskset", "-c", "0", f"{args.bin}/ringway-load", "floor", "--listen",
                  f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{bport}", "--threads", "1"],
        "nginx": ["nginx", "-c", f"{work}/nginx.conf", "-e", f"{work}/error.log"],
        # The HTTP floor (`floor --http`): only when asked for in --proxies.
        "http-floor": ["taskset", "-c", "0", f"{args.bin}/ringway-load", "floor", "--http",
                       "--listen", f"127.0.0.1:{port}", "--upstream", f"127.0.0.1:{bport}",
                       "--threads", "1"],
    }
    proxies = args.proxies.split(",")
    results = {p: [] for p in proxies}
    try:
        for rep in range(args.reps):
            for name in proxies:
                proc = start_proxy(name, commands[name], port)
                pids = family(proc.pid)
                before = cpu_of(pids)
                out = subprocess.run(WRK + [f"-d{args.duration}s", f"http://127.0.0.1:{port}/"],
                                     capture_output=True, text=True).stdout
                after = cpu_of(pids)
                stop_proxy(proc, port)
                done = int(re.search(r"(\d+) requests in", out).group(1))
                errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
                user_us = (after[0] - before[0]) * 1e6 / max(done, 1)
                kernel_us = (after[1] - before[1]) * 1e6 / max(done, 1)
                cpu_us = user_us + kernel_us
                results[name].append((done / args.duration, cpu_us))
                print(f"rep {rep + 1} {name:10} {done / args.duration:9.0f} req/s "
                      f"{cpu_us:7.2f} proxy CPU us/req (user {user_us:.2f}, "
                      f"kernel {kernel_us:.2f})"
                      + (f"  non-2xx {errors.group(1)}" if errors else ""), flush=True)
    finally:
        backend.terminate()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nmedians, {args.body} B body, wrk -t1 -c64 -d{args.duration}s, {args.reps} reps:")
    med = {p: statistics.median(c for _, c in results[p]) for p in proxies}
    for p in proxies:
        line = f"  {p:10} {statistics.median(r for r, _ in results[p]):9.0f} req/s {med[p]:7.2f} us/req"
        if p == "ringway":
            for q in proxies:
                if q != p:
                    line += f"  {med[p] / med[q]:.2f}x {q}"
                    interval = ratio_interval([c for _, c in results[p]],
                                              [c for _, c in results[q]])
                    if interval:
                        line += f" ({interval[0]:.2f}-{interval[1]:.2f})"
        print(line)
    if args.reps >= 3:
        print("  (in brackets: the 90 % interval of the ratio, a bootstrap over the "
              "repetitions paired by repetition, as `compare` gives it)")


def ratio_interval(top, bottom, resamples=4000, level=0.90):
    """The central `level` of median(top) / median(bottom) over paired
    resamples of the repetitions (the same draws for both: repetition i of
    the two proxies ran side by side), or None under three repetitions.
    The method of `compare` (loadtest/src/compare/interval.rs); the random
    draws differ, so the last digit may."""
    n = len(top)
    if n < 3 or len(bottom) != n or min(bottom) <= 0:
        return None
    draw = random.Random(0x5EED0FC0FFEE)
    ratios = []
    for _ in range(resamples):
        picks = [draw.randrange(n) for _ in range(n)]
        ratios.append(statistics.median(top[i] for i in picks)
                      / statistics.median(bottom[i] for i in picks))
    ratios.sort()
    tail = (1 - level) / 2
    return ratios[int(tail * resamples)], ratios[min(int((1 - tail) * resamples), resamples - 1)]

if __name__ == "__main__":
    main()
