#!/usr/bin/env python3
"""Second opinion on `ringway-load compare`: the same proxies under wrk.

Starts the benchmark backend, then ringway, the floor relay and nginx in turn
(each alone on CPU 0, wrk and the backend on CPU 1, with the configs compare
runs, from `ringway-load config`), runs `wrk -t1 -c64` against each and reads the proxy's CPU time
(utime + stime of all its processes, /proc) over the wrk run, and its split
into user and kernel time. `--proxies ringway,floor,http-floor` adds the HTTP floor
(`ringway-load floor --http`). As compare does, a run from which the host took
more than --max-steal percent of the window on CPU 0 or 1 (steal time) is run
again, up to --steal-retries times.
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
TICKS = os.sysconf("SC_CLK_TCK")


def steal_ticks(cpus=(0, 1)):
    """Steal time of `cpus` so far (the eighth number of each cpuN line of
    /proc/stat), in clock ticks: time the hypervisor ran something else."""
    found = {}
    with open("/proc/stat") as stat:
        for line in stat:
            fields = line.split()
            if fields and fields[0].startswith("cpu") and fields[0][3:].isdigit():
                found[int(fields[0][3:])] = int(fields[8])
    return [found.get(cpu, 0) for cpu in cpus]


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
    ap.add_argument("--max-steal", type=float, default=1.0,
                    help="percent of the window the host may take from a CPU before a run is redone")
    ap.add_argument("--steal-retries", type=int, default=2)
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
        def measure(name):
            """One wrk run through `name`: (req/s, CPU, user, kernel µs per
            request, non-2xx count or None, steal ms on the CPU robbed most)."""
            proc = start_proxy(name, commands[name], port)
            pids = family(proc.pid)
            stolen = steal_ticks()
            before = cpu_of(pids)
            out = subprocess.run(WRK + [f"-d{args.duration}s", f"http://127.0.0.1:{port}/"],
                                 capture_output=True, text=True).stdout
            after = cpu_of(pids)
            stolen = max(a - b for a, b in zip(steal_ticks(), stolen))
            stop_proxy(proc, port)
            done = int(re.search(r"(\d+) requests in", out).group(1))
            errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            user_us = (after[0] - before[0]) * 1e6 / max(done, 1)
            kernel_us = (after[1] - before[1]) * 1e6 / max(done, 1)
            return (done / args.duration, user_us + kernel_us, user_us, kernel_us,
                    errors.group(1) if errors else None, stolen * 1000 / TICKS)

        limit_ms = args.duration * 1000 * args.max_steal / 100
        for rep in range(args.reps):
            for name in proxies:
                # As compare does: a run the host robbed of more than
                # --max-steal percent of the window is run again, and the
                # least robbed of the tries kept.
                kept = None
                for attempt in range(args.steal_retries + 1):
                    run = measure(name)
                    if kept is None or run[5] < kept[5]:
                        kept = run
                    if run[5] <= limit_ms:
                        break
                    print(f"rep {rep + 1} {name:10} the host took {run[5]:.0f} ms of a CPU"
                          + (": run again" if attempt < args.steal_retries
                             else ": kept the least robbed run"), flush=True)
                rate, cpu_us, user_us, kernel_us, errors, steal_ms = kept
                results[name].append((rate, cpu_us))
                print(f"rep {rep + 1} {name:10} {rate:9.0f} req/s "
                      f"{cpu_us:7.2f} proxy CPU us/req (user {user_us:.2f}, "
                      f"kernel {kernel_us:.2f})  steal {steal_ms:.0f} ms"
                      + (f"  non-2xx {errors}" if errors else ""), flush=True)
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
