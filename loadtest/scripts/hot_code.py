#!/usr/bin/env python3
"""The code a proxy runs for every request, in 64-byte cache lines.

    callgrind_per_request.sh BIN wrk OUT   # with VG_ARGS=--dump-instr=yes
    hot_code.py OUT/large.out.1 REQUESTS [SHARE]

REQUESTS is the request count of the large run (the second number on the
"large" line callgrind_per_request.sh prints). An instruction is hot when it
ran at least SHARE times per request (default 0.5); start-up and rare paths
fall below that. Prints the hot instructions, the distinct cache lines they
sit in (the code footprint of a request, to hold against the CPU's 32 KiB
first-level instruction cache), and those lines per object file.
"""
import re
import sys


def position(token, last):
    """An instruction address in callgrind's compressed form: absolute,
    relative to the last one (+n, -n), or the same (*)."""
    if token == "*":
        return last
    if token[0] in "+-":
        step = int(token[1:], 0)
        return last + step if token[0] == "+" else last - step
    return int(token, 0)


def hot_lines(path, requests, share):
    counts, objects = {}, {}
    names, current = {}, None
    address, call_cost = 0, False
    with open(path) as out:
        if not any(line.startswith("positions: instr") for line in out):
            sys.exit(f"{path}: no instruction positions; run callgrind with --dump-instr=yes")
        out.seek(0)
        for line in out:
            first = line[0]
            if first.isdigit() or first in "+-*":
                fields = line.split()
                address = position(fields[0], address)
                if call_cost:
                    # The line after calls= is the call's inclusive cost.
                    call_cost = False
                    continue
                # positions: instr line, then the Ir count.
                counts[address] = counts.get(address, 0) + int(fields[2] if len(fields) > 2 else 0)
                objects[address] = current
            elif line.startswith("calls="):
                call_cost = True
            elif line.startswith(("ob=", "cob=")):
                # An object is named at its first mention, ob= or cob=, and
                # by its number after that.
                match = re.match(r"c?ob=\((\d+)\)(?: (.*))?", line.strip())
                if match:
                    if match.group(2):
                        names[match.group(1)] = match.group(2)
                    if line[0] == "o":
                        current = match.group(1)
    hot = [a for a, n in counts.items() if n >= share * requests]
    per_object = {}
    for a in hot:
        per_object.setdefault(names.get(objects[a], objects[a]), set()).add(a >> 6)
    return hot, {a >> 6 for a in hot}, per_object


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, requests = sys.argv[1], int(sys.argv[2])
    share = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
    hot, lines, per_object = hot_lines(path, requests, share)
    print(f"{len(hot)} instructions run at least {share} times per request, "
          f"in {len(lines)} cache lines ({len(lines) * 64 / 1024:.1f} KiB)")
    for name, object_lines in sorted(per_object.items(), key=lambda kv: -len(kv[1])):
        print(f"  {len(object_lines):6d} lines  {name}")


if __name__ == "__main__":
    main()
