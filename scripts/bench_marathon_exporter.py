#!/usr/bin/env python3
"""Marathon exporter scrape time at 1,000 apps (issue 11 target: <= 200 ms).

The fake Marathon runs in its own process (so its JSON encoding does not share the exporter's interpreter
lock); the exporter's collector is scraped in this process through `generate_latest`, exactly what a
Prometheus scrape runs. Prints median, p90, p99 and max over the scrapes, the exporter's own share (everything but the HTTP
request and JSON decoding), the series count and body size.

    .venv/bin/python scripts/bench_marathon_exporter.py [--apps 1000] [--scrapes 50]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

FAKE = """
import sys, threading
from orchestrator.fakes.marathon import FakeMarathon
n = int(sys.argv[1])
fake = FakeMarathon(instances=1).start()
for i in range(n):
    checks = [{"protocol": "HTTP"}] if i % 2 else []
    fake.add_app({"id": f"/team-{i % 20}/app-{i}", "instances": 1 + i % 5, "healthChecks": checks})
print(fake.urls[0], flush=True)
sys.stdin.read()
fake.stop()
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--apps", type=int, default=1000)
    ap.add_argument("--scrapes", type=int, default=50)
    args = ap.parse_args()

    from prometheus_client import CollectorRegistry, generate_latest

    from orchestrator.clients.marathon import MarathonClient
    from orchestrator.services.exporters.marathon import MarathonCollector

    fake = subprocess.Popen([sys.executable, "-c", FAKE, str(args.apps)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        url = fake.stdout.readline().strip()  # type: ignore[union-attr]
        if not url:
            raise SystemExit("the fake Marathon did not start")
        client = MarathonClient([url], retries=0, timeout=10)
        registry = CollectorRegistry()
        collector = MarathonCollector(client)
        registry.register(collector)
        body = generate_latest(registry)  # warm-up: connection, imports
        times, own = [], []
        for _ in range(args.scrapes):
            start = time.perf_counter()
            body = generate_latest(registry)
            times.append(time.perf_counter() - start)
            own.append(times[-1] - collector.last_fetch_seconds)
        client.close()
    finally:
        if fake.stdin:
            fake.stdin.close()
        try:
            fake.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(fake.pid, signal.SIGKILL)
            fake.wait(timeout=20)
    times.sort()
    series = sum(1 for line in body.decode().splitlines() if line and not line.startswith("#"))

    def pct(q: float) -> float:
        return times[min(len(times) - 1, int(q * len(times)))] * 1000

    print(f"marathon exporter, {args.apps} apps, {args.scrapes} scrapes: median {statistics.median(times) * 1000:.0f} ms,"
          f" p90 {pct(0.9):.0f} ms, p99 {pct(0.99):.0f} ms, max {times[-1] * 1000:.0f} ms; "
          f"{series} series, {len(body) / 1024:.0f} KiB exposition")
    own.sort()
    print(f"  of which the exporter's own work (all but GET /v2/apps + JSON decode): median "
          f"{statistics.median(own) * 1000:.0f} ms, max {own[-1] * 1000:.0f} ms; load average now "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
