#!/usr/bin/env python3
"""What the data-safety guards of `zk copy|sync|verify` cost, on two real 3-node loopback ensembles.

Prints the median over --runs of:
  * the ensemble-identity probe (identity.same_ensemble): two different ensembles, and one ensemble under
    two spellings (127.0.0.1 vs localhost);
  * the preflight `zk sync` now runs before its engine starts (read the source, read the target, plan):
    the extra start-up time of sync, for --nodes 1-KB znodes already on both sides;
  * `zk copy --dry-run` and a full `zk copy` of the same znodes onto an empty target (the command as users
    run it: identity probe, source-root checks, plan, writes).

    .venv/bin/python scripts/bench_zk_guards.py [--runs 3] [--nodes 10000]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kazoo.client import KazooClient  # noqa: E402

from orchestrator.cli import main  # noqa: E402
from orchestrator.services.zk.identity import same_ensemble  # noqa: E402
from orchestrator.services.zk.tree import connect, delete_tree, plan_copy  # noqa: E402
from tests.support.zk_ensemble import LocalEnsemble  # noqa: E402

ROOT = "/bench-guards"


def populate(hosts: str, nodes: int) -> None:
    branches = max(1, nodes // 100)
    items = [(ROOT, b"")]
    for b in range(branches):
        items.append((f"{ROOT}/b{b:03d}", b""))
        items += [(f"{ROOT}/b{b:03d}/n{n:04d}", os.urandom(1024)) for n in range(nodes // branches)]
    c = KazooClient(hosts=hosts)
    c.start(timeout=15)
    try:
        pending = []
        for i in range(0, len(items), 200):
            tx = c.transaction()
            for path, data in items[i:i + 200]:
                tx.create(path, data)
            pending.append(tx.commit_async())
        for r in pending:
            r.get()
    finally:
        c.stop()
        c.close()


def quietly(argv: list[str]) -> tuple[int, float]:
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        rc = main(argv)
    return rc, time.perf_counter() - started


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f} ms"


def run(runs: int, nodes: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        a = LocalEnsemble(Path(tmp) / "A", size=3, heap_mb=256)
        b = LocalEnsemble(Path(tmp) / "B", size=3, heap_mb=256)
        try:
            a.start()
            b.start()
            a.wait_quorum()
            b.wait_quorum()
            populate(a.connect_string, nodes)
            A, B = connect(a.connect_string), connect(b.connect_string)
            A_local = connect(f"localhost:{a.nodes[0].client_port}")
            try:
                different = [_timed(lambda: same_ensemble(A.client, B.client)) for _ in range(max(runs, 20))]
                same = [_timed(lambda: same_ensemble(A.client, A_local.client)) for _ in range(max(runs, 20))]
                copy = ["zk", "copy", "--source", a.connect_string, "--target", b.connect_string, "--path", ROOT]
                dry, full, preflight = [], [], []
                for _ in range(runs):
                    delete_tree(B, ROOT)
                    rc, t = quietly(copy + ["--dry-run"])
                    assert rc == 0, rc
                    dry.append(t)
                    rc, t = quietly(copy)
                    assert rc == 0, rc
                    full.append(t)
                    preflight.append(_timed(lambda: plan_copy(A.read([ROOT]), B, [ROOT], "mirror")))
                total = len(A.read([ROOT]))
            finally:
                for side in (A, B, A_local):
                    side.close()
        finally:
            a.stop()
            b.stop()
    print(f"znodes: {total} (1 KB each), runs: {runs}, load average: {os.getloadavg()[0]:.1f}")
    print(f"identity probe, two ensembles:              {median_ms(different)} (median of {len(different)})")
    print(f"identity probe, one ensemble two spellings: {median_ms(same)} (median of {len(same)})")
    print(f"sync preflight (read both full sides+plan): {median_ms(preflight)}")
    print(f"zk copy --dry-run onto an empty target:     {median_ms(dry)}")
    print(f"zk copy onto an empty target:               {median_ms(full)} "
          f"({total / statistics.median(full):.0f} znodes/s)")


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each measurement (median printed)")
    parser.add_argument("--nodes", type=int, default=10_000, help="znodes in the copied tree")
    args = parser.parse_args()
    if not 1 <= args.runs <= 20 or not 1 <= args.nodes <= 100_000:
        parser.error("--runs must be 1-20 and --nodes 1-100000")
    run(args.runs, args.nodes)
