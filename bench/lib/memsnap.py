#!/usr/bin/env python3
"""Where a container's host memory goes: /proc/meminfo fields and slab
caches (KiB), snapshotted before and after starting N containers.

    memsnap.py save FILE
    memsnap.py diff BEFORE AFTER N [TOP]  # per-container deltas, largest first
"""
import json
import resource
import sys


def snap():
    d = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            d["meminfo " + k] = int(v.split()[0])
    # Free pages in the per-CPU page lists, which MemFree leaves out.
    pcp = 0
    with open("/proc/zoneinfo") as f:
        for line in f:
            x = line.split()
            if x and x[0] == "count:":
                pcp += int(x[1])
    d["meminfo PcpFree"] = pcp * resource.getpagesize() // 1024
    with open("/proc/slabinfo") as f:
        for line in f.readlines()[2:]:
            x = line.split()
            # num_objs * objsize: what the cache holds, in use or not
            d["slab " + x[0]] = int(x[2]) * int(x[3]) // 1024
    return d


def main():
    if sys.argv[1] == "save":
        with open(sys.argv[2], "w") as f:
            json.dump(snap(), f)
        return
    with open(sys.argv[2]) as f:
        a = json.load(f)
    with open(sys.argv[3]) as f:
        b = json.load(f)
    n = int(sys.argv[4])
    rows = [(k, (b.get(k, 0) - a.get(k, 0)) / n) for k in a.keys() | b.keys()]
    top = int(sys.argv[5]) if len(sys.argv) > 5 else len(rows)
    for k, v in sorted(rows, key=lambda r: -abs(r[1]))[:top]:
        if abs(v) >= 2:
            print(f"  {k:36} {v:8.1f} KiB")


main()
