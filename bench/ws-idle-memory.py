#!/usr/bin/env python3
"""Memory per idle WebSocket through a proxy: RSS delta of the proxy's
processes for N upgraded connections that carry no traffic.

    bench/ws-idle-memory.py ringway target/release/ringway 9000
    bench/ws-idle-memory.py nginx /usr/sbin/nginx 9000
    RINGWAY_DRIVER=epoll bench/ws-idle-memory.py ringway target/release/ringway 9000

A backend (a child process) answers every handshake with 101 and holds the
connection; the clients (another child) open N connections through the proxy,
each a complete WebSocket handshake, and hold them. RSS (VmRSS of the proxy's
processes) is read before the clients connect and once all N are upgraded.
Each process keeps under the file-descriptor limit: the proxy needs two
descriptors per tunnel, so N is bounded by `ulimit -Hn` / 2.
"""

import asyncio
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
SWITCHING = (
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
)


def raise_nofile():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def backend(port):
    async def serve(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(SWITCHING)
        await writer.drain()
        await reader.read()  # hold until the proxy closes
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


async def clients(port, n):
    held = []
    sem = asyncio.Semaphore(200)

    async def one():
        async with sem:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(HANDSHAKE)
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 101"), head
            held.append((reader, writer))

    await asyncio.gather(*(one() for _ in range(n)))
    print(f"upgraded {len(held)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def start_proxy(kind, binary, listen, upstream, tmp):
    if kind == "ringway":
        conf = os.path.join(tmp, "ringway.toml")
        with open(conf, "w") as f:
            f.write(
                f'[log]\naccess = "off"\n[upstreams.app]\nservers = ["127.0.0.1:{upstream}"]\n'
                f'[[server]]\nlisten = ["127.0.0.1:{listen}"]\n'
                f'  [[server.route]]\n  prefix = "/"\n  proxy = "app"\n  idle_timeout = "7d"\n'
            )
        driver = os.environ.get("RINGWAY_DRIVER", "auto")
        proc = subprocess.Popen([binary, "run", "-c", conf, "--workers", "1", "--driver", driver])
        return proc, lambda: [proc.pid]
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(
            f"""daemon off;
worker_processes 1;
worker_rlimit_nofile 20000;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream app {{ server 127.0.0.1:{upstream}; }}
  server {{
    listen 127.0.0.1:{listen};
    location / {{
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 7d;
      proxy_send_timeout 7d;
    }}
  }}
}}
"""
        )
    proc = subprocess.Popen([binary, "-c", conf, "-p", tmp])
    return proc, lambda: [proc.pid] + children(proc.pid)


def main():
    if sys.argv[1] == "backend":
        raise_nofile()
        asyncio.run(backend(int(sys.argv[2])))
        return
    if sys.argv[1] == "clients":
        raise_nofile()
        asyncio.run(clients(int(sys.argv[2]), int(sys.argv[3])))
        return
    kind, binary, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    raise_nofile()
    upstream, listen = free_port(), free_port()
    me = os.path.abspath(__file__)
    back = subprocess.Popen([sys.executable, me, "backend", str(upstream)], stdout=subprocess.PIPE, text=True)
    back.stdout.readline()
    with tempfile.TemporaryDirectory() as tmp:
        proxy, pids = start_proxy(kind, binary, listen, upstream, tmp)
        time.sleep(1.0)
        # Warm up: one tunnel, so lazily built state is not counted per connection.
        warm = subprocess.Popen([sys.executable, me, "clients", str(listen), "1"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        warm.stdout.readline()
        before = rss_kib(pids())
        cl = subprocess.Popen([sys.executable, me, "clients", str(listen), str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started = time.time()
        line = cl.stdout.readline().strip()
        time.sleep(2.0)
        after = rss_kib(pids())
        per = (after - before) * 1024 / n
        print(f"{kind}: {line} in {time.time() - started:.1f}s; RSS {before} KiB -> {after} KiB; "
              f"{per:.0f} bytes per idle WebSocket")
        for p in (cl, warm):
            p.stdin.write("\n")
            p.stdin.flush()
            p.wait()
        proxy.send_signal(signal.SIGTERM if kind == "ringway" else signal.SIGQUIT)
        proxy.wait(timeout=30)
    back.kill()


if __name__ == "__main__":
    main()
