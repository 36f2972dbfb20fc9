#!/usr/bin/env python3
"""The probe's own cost on this machine under load (issue 11): 1,000 extra `sleep` processes and 10,000
loopback TCP connections (client ends in one process, server ends in another: the fd limit is per process),
the real `orchestrator probe` publishing to a local receiver at the production interval (15 s) for at
least 10 intervals.

Prints: probe CPU (% of one core: whole run, and steady state after the first report), max RSS, collection
time per interval, full and delta report sizes (gzip), objects per report. Everything the script starts is
bounded and stopped by PID at the end, also on failure.

    .venv/bin/python scripts/bench_probe.py [--interval 15] [--intervals 11] [--sleeps 1000] [--connections 10000]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

EXE = str(Path(sys.executable).with_name("orchestrator"))
CLK_TCK = os.sysconf("SC_CLK_TCK")

SERVER = """
import socket, sys, threading
n = int(sys.argv[1])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(4096)
print(s.getsockname()[1], flush=True)
held = []
while len(held) < n:
    held.append(s.accept()[0])
print("accepted", len(held), flush=True)
sys.stdin.read()
"""
CLIENT = """
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
held = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
print("connected", len(held), flush=True)
sys.stdin.read()
"""


class Receiver:
    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self.first_at: float | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                report = json.loads(gzip.decompress(body))
                receiver.reports.append({"kind": report.get("kind", "full"), "bytes": len(body),
                                         "raw_bytes": len(gzip.decompress(body)),
                                         "collect_seconds": report.get("cost", {}).get("collect_seconds", 0.0),
                                         "processes": len(report.get("processes", [])),
                                         "connections": len(report.get("connections", report.get(
                                             "connections_added", []))),
                                         "at": time.monotonic()})
                answer = json.dumps({"probe_id": report["probe_id"], "seq": report["seq"], "next": "delta"}).encode()
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--interval", type=float, default=15.0, help="probe interval, seconds (default 15, production)")
    ap.add_argument("--intervals", type=int, default=11, help="intervals to run (default 11: 10 measured)")
    ap.add_argument("--sleeps", type=int, default=1000, help="extra sleep processes (default 1000)")
    ap.add_argument("--connections", type=int, default=10_000, help="loopback TCP connections (default 10000)")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if args.connections + 100 > hard:
        print(f"fd limit {hard} is below {args.connections + 100}: lower --connections", file=sys.stderr)
        return 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, args.connections + 100), hard))  # inherited

    started: list[subprocess.Popen[Any]] = []
    probe: subprocess.Popen[Any] | None = None
    receiver = Receiver()
    try:
        t0 = time.monotonic()
        for _ in range(args.sleeps):
            started.append(subprocess.Popen(["sleep", "3600"], stdin=subprocess.DEVNULL))
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(args.connections)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        started.append(server)
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        client = subprocess.Popen([sys.executable, "-c", CLIENT, str(port), str(args.connections)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started.append(client)
        print(client.stdout.readline().strip(), "/", server.stdout.readline().strip(),  # type: ignore[union-attr]
              f"({args.sleeps} sleeps started, load ready in {time.monotonic() - t0:.1f} s)", flush=True)

        probe = subprocess.Popen([EXE, "probe", "--api", f"http://127.0.0.1:{receiver.port}", "--probe-id", "bench",
                                  "--interval", str(args.interval), "--iterations", str(args.intervals),
                                  "--metrics-port", "0", "--metrics-address", "127.0.0.1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        start_wall, start_cpu = time.monotonic(), 0.0
        last = (start_wall, 0.0)
        steady: tuple[float, float] | None = None
        max_rss = 0
        deadline = start_wall + args.interval * (args.intervals + 2) + 60
        while probe.poll() is None and time.monotonic() < deadline:
            try:
                max_rss = max(max_rss, rss_bytes(probe.pid))
                if steady is None and receiver.reports:
                    steady = (time.monotonic(), cpu_seconds(probe.pid))
                last = (time.monotonic(), cpu_seconds(probe.pid))
            except (OSError, IndexError):
                break
            time.sleep(0.5)
        if probe.poll() is None:
            raise SystemExit("the probe did not finish in time")
        if probe.returncode != 0:
            raise SystemExit(f"the probe failed ({probe.returncode}): {probe.stderr.read()[-2000:]}")  # type: ignore[union-attr]
    finally:
        if probe is not None and probe.poll() is None:
            os.kill(probe.pid, signal.SIGTERM)
            probe.wait(timeout=30)
        for proc in started:
            if proc.stdin:
                proc.stdin.close()
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
        for proc in started:
            proc.wait(timeout=30)
        receiver.server.shutdown()
        receiver.server.server_close()

    wall, cpu = last[0] - start_wall, last[1] - start_cpu
    reports = receiver.reports
    full = [r for r in reports if r["kind"] == "full"]
    delta = [r for r in reports if r["kind"] == "delta"]
    collect = [r["collect_seconds"] for r in reports]
    print(f"probe: {len(reports)} reports over {wall:.0f} s at {args.interval:g} s intervals "
          f"({len(full)} full, {len(delta)} delta)")
    print(f"  CPU whole run (start-up included): {100 * cpu / wall:.2f} % of one core ({cpu:.2f} s)")
    if steady:
        s_wall, s_cpu = last[0] - steady[0], last[1] - steady[1]
        print(f"  CPU steady state (after the first report): {100 * s_cpu / s_wall:.2f} % of one core "
              f"({s_cpu:.2f} s over {s_wall:.0f} s)")
    print(f"  RSS max: {max_rss / 2**20:.1f} MiB")
    print(f"  collection time per interval: median {statistics.median(collect) * 1000:.0f} ms, "
          f"max {max(collect) * 1000:.0f} ms")
    print(f"  objects in a full report: {full[-1]['processes']} processes, {full[-1]['connections']} connections")
    print(f"  full report: {statistics.median(r['bytes'] for r in full) / 1024:.1f} KiB gzip "
          f"({statistics.median(r['raw_bytes'] for r in full) / 1024:.0f} KiB JSON)")
    if delta:
        print(f"  delta report: median {statistics.median(r['bytes'] for r in delta) / 1024:.1f} KiB gzip, "
              f"max {max(r['bytes'] for r in delta) / 1024:.1f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
