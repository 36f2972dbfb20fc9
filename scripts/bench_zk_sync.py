#!/usr/bin/env python3
"""Benchmark of the ZooKeeper sync engine on two real 3-node loopback ensembles (Debian `zookeeper`).

Prints, in one run, the median over --runs of:
  * bootstrap throughput of `zk copy` and of `zk sync` (which also arms a watch per node) for
    10,000 1-KB znodes;
  * the raw ceiling of the target ensemble: pipelined asynchronous creates of the same nodes, no reads;
  * zk-shell's `cp` on the same data (if a `zk-shell` executable is found; install it in a separate
    venv: `python3 -m venv /tmp/zkshell && /tmp/zkshell/bin/pip install zk-shell`);
  * propagation lag p50/p99 under a steady write load, measured outside the engine: a writer stamps each
    value with its send time on A, an observer with watches on B takes the difference on arrival;
  * one synchronous write round trip on the target.

    .venv/bin/python scripts/bench_zk_sync.py [--runs 3] [--zk-shell /tmp/zkshell/bin/zk-shell]

`--protocol` runs the lag protocol of issue 14 instead: after a warm-up of each workload (not counted),
3 runs x {writes-only, mixed create/set/delete} x {quiet, a second process busy on one core}; in each run
one writer on A and two watchers side by side on the same writes, >= 2,000 samples each: one on A itself
(the floor) and one on B (through the engine). It checks the engine's p99 against max(50 ms, 2 x the
floor's p99 of the same run):

    .venv/bin/python scripts/bench_zk_sync.py --protocol [--runs 3] [--rate 200] [--lag-seconds 12] \
        [--watch-modes auto per-node] [--baseline /tmp/base]

`--baseline DIR` measures, in the same runs, the engine of an older checkout (`git worktree add /tmp/base
440f9be`): the before/after comparison on the same machine at the same moments.
"""
from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kazoo.client import KazooClient  # noqa: E402

from orchestrator.services.zk.engine import SWITCH_INTERVAL, SyncEngine, bootstrap  # noqa: E402
from orchestrator.services.zk.tree import connect, delete_tree  # noqa: E402
from tests.support.zk_ensemble import DEFAULT_CFG, LocalEnsemble  # noqa: E402

ROOT = "/bench"
MIX = f"{ROOT}/mix"


def tree_items(branches: int, leaves: int, size: int) -> list[tuple[str, bytes]]:
    items = [(ROOT, b"")]
    for b in range(branches):
        items.append((f"{ROOT}/b{b:03d}", b""))
        for n in range(leaves):
            items.append((f"{ROOT}/b{b:03d}/n{n:04d}", os.urandom(size)))
    return items


def populate(client: KazooClient, items) -> None:
    pending = []
    for i in range(0, len(items), 200):
        tx = client.transaction()
        for path, data in items[i:i + 200]:
            tx.create(path, data)
        pending.append(tx.commit_async())
    for r in pending:
        r.get()


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def raw_creates(hosts: str, items) -> float:
    """The ceiling: every create sent asynchronously at once, no reads, one request per znode."""
    c = KazooClient(hosts=hosts)
    c.start()
    try:
        return timed(lambda: [r.get() for r in [c.create_async(p, d) for p, d in items]])
    finally:
        c.stop()
        c.close()


def count(hosts: str) -> int:
    side = connect(hosts)
    try:
        return len(side.read([ROOT]))
    finally:
        side.close()


def clear(hosts: str) -> None:
    side = connect(hosts)
    try:
        delete_tree(side, ROOT)
    finally:
        side.close()


def engine_copy(a: str, b: str) -> float:
    src, dst = connect(a), connect(b)
    try:
        return timed(lambda: bootstrap(src, dst, [ROOT], ephemeral="skip"))
    finally:
        src.close()
        dst.close()


def engine_sync_bootstrap(a: str, b: str) -> float:
    src, dst = connect(a), connect(b)
    engine = SyncEngine(src, dst, [ROOT], resync_interval=0)
    try:
        return timed(lambda: (engine.start(), engine.bootstrapped.wait(600)))
    finally:
        engine.stop()
        src.close()
        dst.close()


def zk_shell_cp(exe: str, a: str, b: str) -> float:
    cmd = [exe, "--run-once", f"cp zk://{a}{ROOT} zk://{b}{ROOT} true true", a]
    return timed(lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        timeout=1800))


def sync_process(a: str, b: str, extra: list[str] = (), tree: Path | None = None) -> subprocess.Popen:
    """`orchestrator zk sync` A -> B in its own process, as deployed (sharing the benchmark's process and GIL
    would measure the writer and the watchers too), returned once it has bootstrapped. `tree`: the checkout
    whose engine runs (default this one)."""
    tree = tree or Path(__file__).resolve().parent.parent
    engine = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "zk", "sync", "--source", a, "--target", b,
                               "--path", ROOT, "--metrics-port", "0", "--metrics-address", "127.0.0.1", *extra],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=tree,
                              env={**os.environ, "PYTHONPATH": str(tree)})
    assert engine.stdout is not None
    for line in engine.stdout:
        if line.startswith("bootstrapped"):
            break
    return engine


def propagation(a: str, b: str, rate: float, seconds: float, hot: int = 50, engine_on: bool = True) -> list[float]:
    """Lags (s) of values written on A at `rate`/s, as seen by watches on B, with the engine running.
    With `engine_on=False` and b == a: the same writer and watcher on A alone, i.e. the floor that
    ZooKeeper and this machine set before any replication."""
    writer, observer = KazooClient(hosts=a), KazooClient(hosts=b)
    writer.start()
    observer.start()
    paths = [f"{ROOT}/hot/h{i:02d}" for i in range(hot)]
    writer.ensure_path(f"{ROOT}/hot")
    for p in paths:
        writer.create(p, b"0")
    # The engine runs as `orchestrator zk sync` in its own process, as deployed: sharing this process
    # (and its GIL) with the writer and the observer would measure them too.
    engine = sync_process(a, b) if engine_on else None
    try:
        lags: list[float] = []
        lock = threading.Lock()

        # Reads are pipelined: a synchronous get in kazoo's single callback thread serves at most one event
        # per round trip, so once the round trip exceeded 1/rate (5 ms at 200/s) under load, or a multi
        # delivered several changes at once, the observer measured its own backlog, not the propagation.
        def on_change(event) -> None:
            observer.get_async(event.path, watch=on_change).rawlink(on_data)

        def on_data(result) -> None:
            arrived = time.time()
            try:
                data, _ = result.get()
            except Exception:
                return
            if data != b"0":
                with lock:
                    lags.append(arrived - float(data))

        for p in paths:  # the engine's bootstrap has copied them; allow for the last batch to commit
            for _ in range(100):
                if observer.exists(p):
                    break
                time.sleep(0.1)
            observer.get(p, watch=on_change)
        pending = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            pending.append(writer.set_async(paths[i % hot], repr(time.time()).encode()))
        for r in pending:
            r.get()
        deadline = time.time() + 10
        while time.time() < deadline and len(lags) < total * 0.95:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:  # never leave the engine running, whatever failed
        if engine is not None:
            engine.terminate()
            engine.wait(timeout=30)
    for c in (writer, observer):
        c.stop()
        c.close()
    return lags


class Observer:
    """Watches MIX (children) and every node under it (data) on one ensemble; each arrival of a value is a
    sample: sets and creates carry their send time in the value, deletes are timed from `deleted_at`."""

    def __init__(self, client: KazooClient, deleted_at: dict[str, list[float]]) -> None:
        self.client, self.deleted_at = client, deleted_at
        self.lags: dict[str, list[float]] = {"create": [], "set": [], "delete": []}
        self.known: set[str] = set()
        self.seen: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def samples(self) -> int:
        with self.lock:
            return sum(map(len, self.lags.values()))

    def all_lags(self) -> list[float]:
        with self.lock:
            return [lag for kind in self.lags.values() for lag in kind]

    def start(self) -> None:
        for child in self.client.get_children(MIX, watch=self.on_children):
            self.known.add(child)
            self.client.get(f"{MIX}/{child}", watch=self.on_change)

    def on_children(self, event) -> None:
        self.client.get_children_async(MIX, watch=self.on_children).rawlink(self.on_list)

    def on_list(self, result) -> None:
        arrived = time.time()
        try:
            current = set(result.get())
        except Exception:
            return
        with self.lock:
            new, gone = current - self.known, self.known - current
            self.known = current
            for child in gone:
                sent = self.deleted_at.get(f"{MIX}/{child}")
                if sent:
                    self.lags["delete"].append(arrived - sent.pop(0))
        for child in new:
            path = f"{MIX}/{child}"
            self.client.get_async(path, watch=self.on_change).rawlink(functools.partial(self.on_data, path, "create"))

    def on_change(self, event) -> None:
        if event.type == "CHANGED":
            self.client.get_async(event.path, watch=self.on_change).rawlink(
                functools.partial(self.on_data, event.path, "set"))

    def on_data(self, path: str, kind: str, result) -> None:
        arrived = time.time()
        try:
            data, _ = result.get()
        except Exception:
            return
        with self.lock:
            if data and data != b"0" and self.seen.get(path) != data:
                self.seen[path] = data
                self.lags[kind].append(arrived - float(data))
                if kind == "create":
                    # Deletes sent before this create that were never seen as a gone child (the path was
                    # deleted and created again between two reads of the list): no sample, and never matched
                    # with a later disappearance, which would time that one from the older delete.
                    earlier = self.deleted_at.get(path, [])
                    earlier[:] = [t for t in earlier if t > float(data)]


def mixed_propagation(a: str, b: str, rate: float, seconds: float, workload: str, hot: int = 50,
                      trace: Path | None = None, watch_mode: str = "auto",
                      engine_tree: Path | None = None) -> tuple[list[float], list[float]]:
    """The same writes (`workload` 'writes': sets only; 'mixed': creates, sets and deletes in turn), sent to
    A at `rate`/s with the engine replicating A to B, seen side by side by two watchers: one on A itself
    (the floor: ZooKeeper and this machine, at this very moment and load) and one on B (through the engine).
    Returns (floor lags, engine lags), in seconds. `trace`: the engine writes its per-change stage
    timestamps there (`zk sync --trace`)."""
    writer, on_a, on_b = KazooClient(hosts=a), KazooClient(hosts=a), KazooClient(hosts=b)
    for c in (writer, on_a, on_b):
        c.start()
    paths = [f"{MIX}/s{i:02d}" for i in range(hot)]
    writer.ensure_path(MIX)
    for p in paths:
        writer.create(p, b"0")
    # engine_tree: another checkout's engine (the baseline), which may predate --watch-mode.
    engine = sync_process(a, b, ([] if engine_tree else ["--watch-mode", watch_mode])
                          + (["--trace", str(trace)] if trace else []), engine_tree)
    # Each watcher times deletes from its own copy of the send times (it consumes them).
    floor, through = Observer(on_a, {}), Observer(on_b, {})
    observers = (floor, through)
    try:
        for p in paths:
            for _ in range(100):
                if on_b.exists(p):
                    break
                time.sleep(0.1)
        for o in observers:
            o.start()
        exists = dict.fromkeys(paths, True)
        turn = dict.fromkeys(paths, 0)
        pending = []
        start = time.perf_counter()
        total = int(rate * seconds)
        for i in range(total):
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            path = paths[i % hot]
            turn[path] += 1
            if workload == "mixed" and not exists[path]:
                pending.append(writer.create_async(path, repr(time.time()).encode()))
                exists[path] = True
            elif workload == "mixed" and turn[path] % 3 == 0:
                sent = time.time()
                for o in observers:
                    with o.lock:
                        o.deleted_at.setdefault(path, []).append(sent)
                pending.append(writer.delete_async(path))
                exists[path] = False
            else:
                pending.append(writer.set_async(path, repr(time.time()).encode()))
        for r in pending:
            r.get()
        deadline = time.time() + 15
        while time.time() < deadline and min(o.samples() for o in observers) < total * 0.98:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:  # never leave the engine running, whatever failed
        engine.terminate()
        engine.wait(timeout=30)
        for c in (writer, on_a, on_b):
            c.stop()
            c.close()
    return floor.all_lags(), through.all_lags()


STAGES = (("A: commit -> engine's event", "origin", "event"), ("queue wait", "event", "drained"),
          ("read back on A", "drained", "planned"), ("send wait", "planned", "sent"),
          ("B: multi -> ack", "sent", "acked"))


def stage_report(trace: Path) -> str:
    """Where the engine's time goes: each stage's p50/p99 over every change, and its mean over the slowest
    1 % (by commit on A -> acknowledged on B). Deletes are timed from their event (no commit time on A)."""
    import json
    rows = [json.loads(line) for line in trace.read_text().splitlines() if line]
    resyncs = sum(1 for r in rows if r["kind"] == "resync" and not r["initial"])
    failed = sum(1 for r in rows if r["kind"] == "failed")
    rows = [r for r in rows if r.get("origin")]
    if len(rows) < 100:
        return f"  trace: {len(rows)} changes, too few for percentiles"
    slow = sorted(rows, key=lambda r: r["acked"] - r["origin"])[-max(1, len(rows) // 100):]
    out = [f"  engine stages over {len(rows)} changes (ms): p50 / p99 / mean of the slowest 1 %"]
    for name, start, end in STAGES:
        spans = [(r[end] - r[start]) * 1000 for r in rows]
        worst = statistics.mean((r[end] - r[start]) * 1000 for r in slow)
        out.append(f"    {name:28s} {pct(spans, 50):7.1f} {pct(spans, 99):7.1f} {worst:7.1f}")
    total = [(r["acked"] - r["origin"]) * 1000 for r in rows]
    out.append(f"    {'total (commit on A -> ack)':28s} {pct(total, 50):7.1f} {pct(total, 99):7.1f} "
               f"{statistics.mean(sorted(total)[-len(slow):]):7.1f}")
    kinds = {k: sum(1 for r in slow if r["kind"] == k) for k in ("create", "set", "delete")}
    out.append(f"    slowest 1 %: {kinds}; failed batches {failed}, resyncs {resyncs}")
    return "\n".join(out)


def busy_core(seconds: float) -> subprocess.Popen:
    """A second process spinning on one core for at most `seconds` (stopped by PID before that)."""
    code = f"import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"
    return subprocess.Popen([sys.executable, "-c", code])


def protocol(args) -> int:
    """Issue 14's lag protocol; exit 1 when a run misses the bound."""
    print(f"lag protocol: {args.runs} runs x (writes, mixed) x (quiet, busy core); {args.rate:.0f} ops/s for "
          f"{args.lag_seconds:.0f} s; 2 x 3-node ensembles on loopback, {os.cpu_count()} CPUs; "
          f"load average at start {os.getloadavg()[0]:.1f}; fsync {'off' if args.no_fsync else 'on'}", flush=True)
    rows: dict[str, list[bool]] = {}
    # The watchers' callbacks run in kazoo's threads in this process: the same short GIL switch interval as
    # the engine's (engine.SWITCH_INTERVAL), so that neither watcher waits 5 ms for the other's thread.
    sys.setswitchinterval(SWITCH_INTERVAL)
    base_cfg = DEFAULT_CFG + ("forceSync=no\n" if args.no_fsync else "")
    with tempfile.TemporaryDirectory() as tmp, \
            LocalEnsemble(Path(tmp) / "a", size=3, base_cfg=base_cfg) as ens_a, \
            LocalEnsemble(Path(tmp) / "b", size=3, base_cfg=base_cfg) as ens_b:
        a, b = ens_a.connect_string, ens_b.connect_string
        # Freshly started JVMs compile ZooKeeper's hot paths during their first seconds of traffic: a first
        # run would measure that once, on B more than on A (A serves the writer from the start). Deployed
        # ensembles run for months; the protocol measures them warm, the same for the floor and the engine.
        for workload in args.workloads:
            if args.warmup_seconds > 0:
                for side in (a, b):
                    clear(side)
                floor, lags = mixed_propagation(a, b, args.rate, args.warmup_seconds, workload)
                print(f"warm-up {workload:6s}      : floor p99 {pct(floor, 99) * 1000:6.1f} ms | engine p99 "
                      f"{pct(lags, 99) * 1000:6.1f} ms (not counted)", flush=True)
        for run in range(1, args.runs + 1):
            for workload in args.workloads:
                for load in args.loads:
                    for mode in args.watch_modes + (["baseline"] if args.baseline else []):
                        spinner = busy_core(2 * args.lag_seconds + 90) if load == "busy" else None
                        try:
                            for side in (a, b):
                                clear(side)
                            trace = Path(tmp) / f"trace-{run}-{workload}-{load}-{mode}.jsonl" if args.trace else None
                            floor, lags = mixed_propagation(
                                a, b, args.rate, args.lag_seconds, workload, trace=trace, watch_mode=mode,
                                engine_tree=args.baseline if mode == "baseline" else None)
                        finally:
                            if spinner is not None:
                                spinner.kill()
                                spinner.wait(timeout=10)
                        f99, e99 = pct(floor, 99) * 1000, pct(lags, 99) * 1000
                        bound = max(50.0, 2 * f99)
                        ok = e99 <= bound and min(len(lags), len(floor)) >= 2000
                        rows.setdefault(mode, []).append(ok)
                        print(f"run {run} {workload:6s} {load:5s} {mode:9s}: floor p50 {pct(floor, 50) * 1000:5.1f} "
                              f"p99 {f99:6.1f} ms ({len(floor)}) | engine p50 {pct(lags, 50) * 1000:5.1f} p99 "
                              f"{e99:6.1f} ms ({len(lags)}) | bound {bound:5.1f} ms {'ok' if ok else 'MISSED'} | "
                              f"load {os.getloadavg()[0]:.1f}", flush=True)
                        if trace is not None:
                            print(stage_report(trace), flush=True)
    for mode, oks in rows.items():
        print(f"\n--watch-mode {mode}: {sum(oks)} of {len(oks)} runs within max(50 ms, 2 x floor p99)")
    return 0 if all(all(oks) for mode, oks in rows.items() if mode != "baseline") else 1


def round_trip(hosts: str, n: int = 200) -> float:
    c = KazooClient(hosts=hosts)
    c.start()
    try:
        c.ensure_path(f"{ROOT}-rtt")
        elapsed = timed(lambda: [c.set(f"{ROOT}-rtt", b"x") for _ in range(n)])
        c.delete(f"{ROOT}-rtt")
        return elapsed / n
    finally:
        c.stop()
        c.close()


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 2 else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--branches", type=int, default=100)
    ap.add_argument("--leaves", type=int, default=100)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--rate", type=float, default=200.0, help="writes/s during the lag measurement")
    ap.add_argument("--lag-seconds", type=float, default=None,
                    help="seconds of writes per lag measurement (default 10; --protocol: 12, so that a run "
                         "has >= 2,000 samples even if a few are lost)")
    ap.add_argument("--zk-shell", default=shutil.which("zk-shell"), help="zk-shell executable (optional)")
    ap.add_argument("--zk-shell-runs", type=int, default=1, help="zk-shell is slow: runs of it (default 1)")
    ap.add_argument("--no-fsync", action="store_true",
                    help="forceSync=no on both ensembles: takes the disk's fsync tail out of the lag figures")
    ap.add_argument("--protocol", action="store_true", help="run issue 14's lag protocol only (see above)")
    ap.add_argument("--workloads", nargs="+", choices=("writes", "mixed"), default=["writes", "mixed"],
                    help="--protocol: the workloads to run (default both)")
    ap.add_argument("--loads", nargs="+", choices=("quiet", "busy"), default=["quiet", "busy"],
                    help="--protocol: the load conditions to run (default both)")
    ap.add_argument("--watch-modes", nargs="+", choices=("auto", "recursive", "per-node"), default=["auto"],
                    help="--protocol: the engine's --watch-mode, each measured in every run (e.g. recursive per-node "
                         "to compare them side by side)")
    ap.add_argument("--baseline", type=Path, metavar="DIR",
                    help="--protocol: also measure, in every run, the engine of another checkout of this repository "
                         "(e.g. git worktree add /tmp/base 440f9be), reported as watch mode 'baseline'")
    ap.add_argument("--warmup-seconds", type=float, default=10.0,
                    help="--protocol: seconds of each workload, not counted, before the first run (default 10)")
    ap.add_argument("--trace", action="store_true",
                    help="--protocol: also print where the engine's time goes, per stage (zk sync --trace)")
    args = ap.parse_args()
    if args.lag_seconds is None:
        args.lag_seconds = 12.0 if args.protocol else 10.0
    if args.protocol:
        return protocol(args)

    items = tree_items(args.branches, args.leaves, args.size)
    znodes = len(items)
    leaves = args.branches * args.leaves
    print(f"data: {znodes} znodes ({leaves} leaves of {args.size} B), 2 x 3-node ensembles on loopback, "
          f"{os.cpu_count()} CPUs, median of {args.runs} runs", flush=True)
    results: dict[str, list[float]] = {"raw": [], "copy": [], "sync": [], "zk-shell": [], "p50": [], "p99": [],
                                       "rtt": [], "floor50": [], "floor99": []}
    base_cfg = DEFAULT_CFG + ("forceSync=no\n" if args.no_fsync else "")
    with tempfile.TemporaryDirectory() as tmp, \
            LocalEnsemble(Path(tmp) / "a", size=3, base_cfg=base_cfg) as ens_a, \
            LocalEnsemble(Path(tmp) / "b", size=3, base_cfg=base_cfg) as ens_b:
        a, b = ens_a.connect_string, ens_b.connect_string
        seed = KazooClient(hosts=a)
        seed.start()
        populate(seed, items)
        seed.stop()
        seed.close()
        for run in range(1, args.runs + 1):
            clear(b)
            results["raw"].append(znodes / raw_creates(b, items))
            clear(b)
            results["copy"].append(znodes / engine_copy(a, b))
            assert count(b) == znodes, "copy incomplete"
            clear(b)
            results["sync"].append(znodes / engine_sync_bootstrap(a, b))
            assert count(b) == znodes, "sync bootstrap incomplete"
            clear(b)
            results["rtt"].append(round_trip(b))
            floor = propagation(a, a, args.rate, args.lag_seconds, engine_on=False)
            results["floor50"].append(pct(floor, 50))
            results["floor99"].append(pct(floor, 99))
            delete = connect(a)
            delete_tree(delete, f"{ROOT}/hot")
            delete.close()
            lags = propagation(a, b, args.rate, args.lag_seconds)
            results["p50"].append(pct(lags, 50))
            results["p99"].append(pct(lags, 99))
            print(f"run {run}: raw {results['raw'][-1]:.0f}/s, copy {results['copy'][-1]:.0f}/s, "
                  f"sync bootstrap {results['sync'][-1]:.0f}/s, lag p50 {results['p50'][-1] * 1000:.1f} ms "
                  f"p99 {results['p99'][-1] * 1000:.1f} ms ({len(lags)} samples), "
                  f"write RTT {results['rtt'][-1] * 1000:.2f} ms, floor on A alone p50 "
                  f"{results['floor50'][-1] * 1000:.1f} ms p99 {results['floor99'][-1] * 1000:.1f} ms", flush=True)
            delete = connect(a)
            delete_tree(delete, f"{ROOT}/hot")
            delete.close()
        if args.zk_shell:
            for _ in range(args.zk_shell_runs):
                clear(b)
                elapsed = zk_shell_cp(args.zk_shell, a, b)
                copied = count(b)
                results["zk-shell"].append(copied / elapsed)
                print(f"zk-shell cp: {copied} znodes in {elapsed:.1f} s", flush=True)

    med = {k: statistics.median(v) for k, v in results.items() if v}
    print("\nresult (medians)")
    print(f"  raw ceiling, pipelined async creates on B : {med['raw']:8.0f} znodes/s")
    print(f"  orchestrator zk copy (bootstrap)          : {med['copy']:8.0f} znodes/s "
          f"= {med['copy'] / med['raw']:.0%} of the ceiling")
    print(f"  orchestrator zk sync bootstrap (+watches) : {med['sync']:8.0f} znodes/s "
          f"= {med['sync'] / med['raw']:.0%} of the ceiling")
    if "zk-shell" in med:
        print(f"  zk-shell cp                               : {med['zk-shell']:8.0f} znodes/s")
    else:
        print("  zk-shell cp                               : not run (no zk-shell executable; see --zk-shell)")
    print(f"  propagation lag at {args.rate:.0f} writes/s           : p50 {med['p50'] * 1000:.1f} ms, "
          f"p99 {med['p99'] * 1000:.1f} ms")
    print(f"  same writer and watcher on A, no engine   : p50 {med['floor50'] * 1000:.1f} ms, "
          f"p99 {med['floor99'] * 1000:.1f} ms (the floor: ZooKeeper and this machine)")
    print(f"  one synchronous write round trip on B     : {med['rtt'] * 1000:.2f} ms")
    print(f"  fsync on the ensembles                    : {'off (--no-fsync)' if args.no_fsync else 'on'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
