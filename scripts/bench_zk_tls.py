#!/usr/bin/env python3
"""What TLS on the secure client port costs our clients: the same work over the plain and the TLS port.

Starts one ZooKeeper 3.8 member on loopback with the component's TLS zoo.cfg and a generated certificate
(components/zk_certs.py), writes --znodes nodes of --size bytes, then prints, median over --runs:
the sync engine's bulk read of the whole tree (BulkReader: our own socket) and the latency of --ops
sequential setData calls through a kazoo session (p50/p99), each over the plain and the TLS port, through
the one client helper (orchestrator/services/zk/tls.py). Needs java and Debian's zookeeper package.

    .venv/bin/python scripts/bench_zk_tls.py [--znodes 5000] [--size 512] [--ops 2000] [--runs 3]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components import zk_certs  # noqa: E402
from components.settings import ZooKeeperSettings  # noqa: E402
from orchestrator.services.zk.session import close_client, open_client  # noqa: E402
from orchestrator.services.zk.tls import ZkTls  # noqa: E402
from tests.support.statefulset_roll import LoopbackStatefulSet, write_secret_files  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--znodes", type=int, default=5000, help="nodes in the tree read in bulk (default 5000)")
    parser.add_argument("--size", type=int, default=512, help="bytes of data per node (default 512)")
    parser.add_argument("--ops", type=int, default=2000, help="sequential setData calls per run (default 2000)")
    parser.add_argument("--runs", type=int, default=3, help="repetitions; medians are printed (default 3)")
    args = parser.parse_args()
    if not (1 <= args.znodes <= 100_000 and 0 <= args.size <= 65_536 and 1 <= args.ops <= 100_000
            and 1 <= args.runs <= 20):
        parser.error("--znodes 1..100000, --size 0..65536, --ops 1..100000, --runs 1..20")
    with tempfile.TemporaryDirectory(prefix="bench-zk-tls-") as tmp:
        work = Path(tmp)
        outs = zk_certs.CertificatesProvider().create(
            {"dns_names": ["localhost"], "ip_addresses": ["127.0.0.1"], "cert_days": 30}).outs
        assert outs is not None
        secret = write_secret_files(work / "secret", outs["ca_crt"], outs["tls_crt"], outs["tls_key"])
        sts = LoopbackStatefulSet(work / "sts", max_replicas=1, tls_dir=secret)
        try:
            sts.apply(ZooKeeperSettings(replicas=1, tick_time_ms=500, tls_secret="zookeeper-tls"), 1)
            sides = {"plain": (sts.connect_string([0]), None),
                     "tls": (f"127.0.0.1:{sts.secure_ports[0]}", ZkTls.from_dir(str(secret)))}
            writer = open_client(sides["plain"][0], label="bench")
            try:
                payload = b"x" * args.size
                writer.client.ensure_path("/bench")
                for start in range(0, args.znodes, 500):
                    tx = writer.client.transaction()
                    for i in range(start, min(start + 500, args.znodes)):
                        tx.create(f"/bench/n{i:06d}", payload)
                    tx.commit()
            finally:
                close_client(writer)
            print(f"tree: {args.znodes} znodes x {args.size} B; {args.ops} sequential setData per run; "
                  f"median of {args.runs} runs")
            for name, (connect, tls) in sides.items():
                reads, p50s, p99s = [], [], []
                for _ in range(args.runs):
                    side = open_client(connect, label=name, tls=tls)
                    try:
                        t0 = time.perf_counter()
                        tree = side.read(["/bench"])
                        reads.append(time.perf_counter() - t0)
                        assert len(tree) == args.znodes + 1, len(tree)
                        latencies = []
                        for i in range(args.ops):
                            t0 = time.perf_counter()
                            side.client.set("/bench", str(i).encode())
                            latencies.append((time.perf_counter() - t0) * 1000)
                        p50s.append(percentile(latencies, 0.5))
                        p99s.append(percentile(latencies, 0.99))
                    finally:
                        close_client(side)
                print(f"{name:>5}: bulk read {statistics.median(reads) * 1000:8.1f} ms "
                      f"({args.znodes / statistics.median(reads):8.0f} znodes/s); "
                      f"setData p50 {statistics.median(p50s):.3f} ms, p99 {statistics.median(p99s):.3f} ms")
        finally:
            sts.stop()


if __name__ == "__main__":
    main()
