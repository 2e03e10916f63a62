#!/usr/bin/env python3
"""A/B of ringway builds (and the floor) under ringway-load's client.

compare runs one ringway binary; this runs several side by side, repetitions
interleaved, each alone on CPU 0 with the config compare gives ringway, the
backend and a 64-connection client on CPU 1. Each variant is NAME=PATH, PATH
a ringway binary or a wrapper script that execs one (to set an environment
variable, say); `floor` adds the floor relay. Prints each run, then the median
CPU microseconds per request of each variant: total, user and system.

usage: loadtest/scripts/ab_variants.py [--body 100] [--reps 5] [--duration 3]
       [--close] [--bin target/release]  NAME=PATH ... [floor]

--close opens a new connection for every request, as compare's "new
connection per request" scenario does.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time

from compare_vs_wrk import cpu_times, wait_listening
from proxies_vs_wrk import wait_closed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--body", type=int, default=100)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--close", action="store_true", help="a new connection per request")
    ap.add_argument("--bin", default="target/release", help="where ringway-load is")
    ap.add_argument("variants", nargs="+")
    args = ap.parse_args()
    load = f"{args.bin}/ringway-load"
    port, bport = 18580, 18590
    work = tempfile.mkdtemp(prefix="ab-variants-")
    backend = subprocess.Popen(
        ["taskset", "-c", "1", load, "backend", "--listen", f"127.0.0.1:{bport}",
         "--body-size", str(args.body)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(bport)
    config = subprocess.run(
        [load, "config", "ringway", "--listen", f"127.0.0.1:{port}",
         "--upstream", f"127.0.0.1:{bport}", "--dir", work],
        capture_output=True, text=True, check=True).stdout
    with open(f"{work}/ringway.toml", "w") as f:
        f.write(config)
    results = {}
    try:
        for rep in range(args.reps):
            for variant in args.variants:
                if variant == "floor":
                    name = "floor"
                    command = [load, "floor", "--listen", f"127.0.0.1:{port}",
                               "--upstream", f"127.0.0.1:{bport}", "--threads", "1"]
                else:
                    name, path = variant.split("=", 1)
                    command = [path, "run", "-c", f"{work}/ringway.toml"]
                proxy = subprocess.Popen(["taskset", "-c", "0", *command],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                         start_new_session=True)
                wait_listening(port)
                client = subprocess.Popen(
                    ["taskset", "-c", "1", load, f"http://127.0.0.1:{port}/", "-c", "64",
                     "-d", f"{args.duration}s", "--warmup", "1s", "--json",
                     *(["--close"] if args.close else [])],
                    stdout=subprocess.PIPE, text=True)
                # The client's warmup: its requests are not counted.
                time.sleep(1.0)
                user0, sys0 = cpu_times(proxy.pid)
                out, _ = client.communicate()
                user1, sys1 = cpu_times(proxy.pid)
                os.killpg(proxy.pid, signal.SIGTERM)
                proxy.wait(timeout=10)
                wait_closed(port)
                done = max(json.loads(out)["requests"], 1)
                user = (user1 - user0) * 1e6 / done
                system = (sys1 - sys0) * 1e6 / done
                results.setdefault(name, []).append((user + system, user, system))
                print(f"rep {rep + 1} {name:10} total {user + system:6.2f} user {user:5.2f} "
                      f"sys {system:6.2f} us/req", flush=True)
    finally:
        backend.terminate()
        shutil.rmtree(work, ignore_errors=True)
    kind = "a new connection per request" if args.close else "keep-alive"
    print(f"\nmedians, {args.body} B body, {kind}, {args.reps} reps of {args.duration} s:")
    for name, rows in results.items():
        total, user, system = (statistics.median(row[i] for row in rows) for i in range(3))
        print(f"  {name:10} total {total:6.2f} user {user:5.2f} sys {system:6.2f} us/req")


if __name__ == "__main__":
    main()
