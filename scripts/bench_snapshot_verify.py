#!/usr/bin/env python3
"""What the restore's snapshot verification costs: decode + node count + digest of a snapshot object.

Builds a synthetic tree of --znodes nodes of --size bytes (as `zk snapshot` would have read them), encodes it
as a snapshot object, then times, median over --runs: encoding, decoding (gzip + JSON + base64 + structure
checks) and the integrity check (count + SHA-256 digest over every node) that `zk restore` now runs before it
touches the target. No ZooKeeper, no S3: only the CPU work added in front of a restore.

    .venv/bin/python scripts/bench_snapshot_verify.py [--znodes 10000] [--size 1024] [--runs 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.services.zk.archive import check_integrity, decode, encode  # noqa: E402
from orchestrator.services.zk.tree import Node, Tree  # noqa: E402


def build(znodes: int, size: int) -> Tree:
    acl = (("world", "anyone", 31),)
    tree: Tree = {"/bench": Node(b"root", acl, "persistent")}
    per_branch = 100
    for b in range((znodes - 1 + per_branch - 1) // per_branch):
        branch = f"/bench/b{b:04d}"
        tree[branch] = Node(b"branch", acl, "persistent")
        for n in range(per_branch):
            if len(tree) >= znodes:
                break
            tree[f"{branch}/n{n:03d}"] = Node(os.urandom(size), acl, "persistent")
        if len(tree) >= znodes:
            break
    return tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--znodes", type=int, default=10_000, help="nodes in the snapshot (default 10000)")
    parser.add_argument("--size", type=int, default=1024, help="bytes of data per leaf node (default 1024)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions; the median is printed (default 5)")
    args = parser.parse_args()
    if not (1 <= args.znodes <= 1_000_000 and 0 <= args.size <= 1_048_576 and 1 <= args.runs <= 50):
        parser.error("--znodes 1..1000000, --size 0..1048576, --runs 1..50")
    tree = build(args.znodes, args.size)
    enc, dec, chk = [], [], []
    blob = b""
    for _ in range(args.runs):
        t0 = time.perf_counter()
        blob = encode(tree, ["/bench"], "bench", datetime.now(UTC))
        t1 = time.perf_counter()
        doc, decoded = decode(blob, "bench")
        t2 = time.perf_counter()
        check_integrity(doc, decoded, "bench")
        t3 = time.perf_counter()
        enc.append(t1 - t0)
        dec.append(t2 - t1)
        chk.append(t3 - t2)
    ms = lambda xs: statistics.median(xs) * 1000  # noqa: E731
    print(f"snapshot of {len(tree)} znodes ({args.size} B leaves): {len(blob) / 2**20:.1f} MiB gzip'd")
    print(f"encode        {ms(enc):8.1f} ms  (median of {args.runs})")
    print(f"decode        {ms(dec):8.1f} ms")
    print(f"count+digest  {ms(chk):8.1f} ms")
    # Restore always decoded the object; the count and digest comparison is the part the check added.
    print(f"integrity check added before a restore: {ms(chk):.1f} ms ({ms(chk) / len(tree) * 1000:.1f} µs per "
          f"znode); decode + check: {ms(dec) + ms(chk):.1f} ms")


if __name__ == "__main__":
    main()
