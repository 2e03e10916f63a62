#!/usr/bin/env python3
"""Which memory a proxy's first-level data cache misses on, from a trace of
every load and store.

callgrind's cache simulation (callgrind_per_request.sh with
VG_ARGS=--cache-sim=yes) counts misses per request and per line of code, but
not per object. This replays a `valgrind --tool=lackey --trace-mem=yes` trace
through a first-level data cache like this machine's (48 KiB, 12 ways, 64-byte
lines, least recently used out first) and says where the misses land: per
mapping of the process (heap, stacks, the io_uring rings, the binary), then
per 64 KiB chunk of the heap, and with --chunk, line by line inside one chunk
(a connection's task shows up as a block repeated at its allocation's stride).

    LOAD=target/release/ringway-load
    $LOAD backend --listen 127.0.0.1:9393 --driver epoll &
    $LOAD config ringway --listen 127.0.0.1:8383 --upstream 127.0.0.1:9393 > r.toml
    valgrind --tool=lackey --trace-mem=yes --log-file=trace \\
        target/release/ringway run -c r.toml --workers 1 &
    wrk -t1 -c64 -d4s http://127.0.0.1:8383/; cat /proc/$(pgrep -f lackey)/maps > maps
    data_lines.py trace maps [--skip N] [--chunk 0x980000]

--skip leaves out the first N accesses (start-up; the cache is warmed on
them all the same). Loopback only; lackey runs a proxy about 500 times slower,
so a few seconds of wrk give a few hundred requests.
"""
import argparse
import bisect
import collections

LINE, SETS, WAYS = 64, 64, 12


def mappings(path):
    spans = []
    for line in open(path):
        parts = line.split()
        start, end = (int(x, 16) for x in parts[0].split("-"))
        spans.append((start, end, parts[5] if len(parts) > 5 else f"anonymous {parts[0]}"))
    return sorted(spans)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trace")
    ap.add_argument("maps")
    ap.add_argument("--skip", type=int, default=0)
    ap.add_argument("--chunk", help="a heap chunk's offset (as printed) to map line by line")
    args = ap.parse_args()
    spans = mappings(args.maps)
    starts = [s[0] for s in spans]
    # The heap: mimalloc's arena is the largest anonymous mapping.
    heap = max((s for s in spans if s[2].startswith("anonymous")), key=lambda s: s[1] - s[0])
    sets = [collections.OrderedDict() for _ in range(SETS)]
    by_mapping, by_chunk = collections.Counter(), collections.Counter()
    chunk_lines = collections.Counter()
    want = int(args.chunk, 16) if args.chunk else None
    accesses = 0
    for line in open(args.trace):
        # " L addr,size", " S addr,size", " M addr,size"; "I" lines are code.
        if line[0] != " ":
            continue
        try:
            addr = int(line[3:line.index(",")], 16)
        except ValueError:
            continue
        accesses += 1
        number = addr // LINE
        ways = sets[number % SETS]
        if number in ways:
            ways.move_to_end(number)
            continue
        ways[number] = True
        if len(ways) > WAYS:
            ways.popitem(last=False)
        if accesses <= args.skip:
            continue
        i = bisect.bisect_right(starts, addr) - 1
        name = spans[i][2] if i >= 0 and addr < spans[i][1] else "unmapped"
        by_mapping[name] += 1
        if heap[0] <= addr < heap[1]:
            chunk = (addr - heap[0]) >> 16 << 16
            by_chunk[chunk] += 1
            if chunk == want:
                chunk_lines[(addr - heap[0] - chunk) // LINE] += 1
    total = sum(by_mapping.values())
    print(f"{accesses - args.skip} accesses, {total} first-level data misses")
    for name, n in by_mapping.most_common(8):
        print(f"  {n:8d} {100 * n / total:5.1f} %  {name}")
    heap_total = sum(by_chunk.values()) or 1
    print("heap chunks of 64 KiB with the most misses (offset in the heap):")
    for chunk, n in by_chunk.most_common(12):
        print(f"  {chunk:#10x} {n:8d} {100 * n / heap_total:5.1f} %")
    if want is not None:
        print(f"chunk {want:#x}, one row per 2 KiB, one mark per line (blank: no miss, "
              "'.' under 10, 'o' under 30, '#' more):")
        for row in range(32):
            marks = ""
            for n in (chunk_lines.get(row * 32 + k, 0) for k in range(32)):
                marks += " " if n == 0 else "." if n < 10 else "o" if n < 30 else "#"
            print(f"  {row * 2048:6d} {marks}")


if __name__ == "__main__":
    main()
