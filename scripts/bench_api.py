#!/usr/bin/env python3
"""Benchmark of `orchestrator api serve` (issue 10), bounded in time, printing figures (never asserting).

The API runs as its own process (its CPU is read from /proc/<pid>/stat); this script is the load: 1,000
simulated probes of 10 containers each (the demo topology's generator: ~10 processes, 10 containers and ~30
sockets per host, gzipped like the probe sends them).

  1. ingest: 67 reports/s (each host every 15 s; deltas, every 10th report from a host a full one) for
     --ingest-seconds: the API process's CPU as a share of one core;
  2. containers view at 1,000 hosts / 10,000 containers, during that ingest: latency of GET
     /api/v1/topology/containers, served from the per-tick render (as browsers get it) and forced to
     render (a distinct search per request: the cost of a render);
  3. WebSocket: 20 subscribers of the hosts view; a report posted after a quiet second; time until each
     subscriber has the delta;
  4. an authenticated trivial GET (/api/v1/whoami) paced at 200 requests/s: latency percentiles, from a
     separate process (raw HTTP/1.1 on 4 keep-alive connections, open loop: request k is sent at start +
     k/200 s whatever the previous answers) so the load generator is not the bottleneck; once alone, once
     during ingest and containers-view reads (what a render on the event loop does to other requests);
     The floor: the same client against the smallest asyncio HTTP server (no framework, no auth), run
     right after, shows how much of a p99 the machine's load alone accounts for;
  5. --memory: in a separate process, the topology of 1,000 hosts / 10,000 containers fed an hour of
     reports (240 per host) in process; RSS before and after.

Each measure runs --runs times; the median is printed. The 2-core machine is shared, so the load average is
printed with the figures. --baseline DIR runs the same measures against the API of another source tree
(e.g. `git archive <commit> orchestrator | tar -x -C DIR`), alternating with this tree's in each run, so a
before/after comparison shares the machine's load.
Usage: .venv/bin/python scripts/bench_api.py [--runs 3] [--memory] [--baseline DIR]
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from orchestrator.contracts.api import Role  # noqa: E402
from orchestrator.services.api.auth import hash_password, issue  # noqa: E402
from orchestrator.services.api.config import load_keys  # noqa: E402
from orchestrator.services.api.demo import DemoTopology  # noqa: E402

HOSTS, PER_HOST = 1000, 10
RATE = HOSTS / 15.0     # ≈ 67 reports/s
TICKS = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q / 100 * (len(s) - 1))))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Server:
    def __init__(self, workdir: Path, source: Path | None = None) -> None:
        (workdir / "keys").write_text(f"k1 {secrets.token_urlsafe(40)}\n")
        password = secrets.token_urlsafe(12)
        (workdir / "api.yaml").write_text(json.dumps({
            "signing_key_file": "keys",
            "accounts": [{"name": "bench", "role": "viewer", "password_hash": hash_password(password)},
                         {"name": "probe", "role": "viewer", "password_hash": hash_password(password)}]}))
        keys = load_keys(workdir / "keys")
        self.viewer = issue(keys, account="bench", kind="access", role=Role.VIEWER, ttl=900)[0]
        self.probe = issue(keys, account="probe", kind="api", scope="report:write", ttl=3600)[0]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if source is not None:   # the baseline's package shadows the installed one
            env["PYTHONPATH"] = str(source)
        self.proc = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "api", "serve", "--config",
                                      str(workdir / "api.yaml"), "--listen", "127.0.0.1:0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                     cwd=str(source) if source is not None else None)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if "listening on" in line:
                self.url = line.split("listening on ")[1].strip()
                break
        else:
            self.stop()
            raise SystemExit("the API did not start")
        # Drain stdout (audit lines) so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout or []], daemon=True).start()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def gz(report: object) -> bytes:
    return gzip.compress(report.model_dump_json().encode(), 6)  # type: ignore[attr-defined]


def prepare_reports(demo: DemoTopology, rounds: int) -> list[bytes]:
    """rounds × HOSTS report bodies in publish order; each host sends a full report every 10th time."""
    bodies = []
    for r in range(rounds):
        for i in range(HOSTS):
            bodies.append(gz(demo.full_report(i) if (r + i) % 10 == 0 else demo.delta_report(i)))
    return bodies


def post_all(server: Server, bodies: list[bytes], rate: float, stop_at: float) -> tuple[int, int]:
    headers = {"Authorization": f"Bearer {server.probe}", "Content-Type": "application/json",
               "Content-Encoding": "gzip"}
    sent = failed = 0
    start = time.monotonic()
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
        for k, body in enumerate(bodies):
            due = start + k / rate
            now = time.monotonic()
            if now >= stop_at:
                break
            if due > now:
                time.sleep(due - now)
            if client.post("/api/v1/reports", content=body).status_code != 200:
                failed += 1
            sent += 1
    return sent, failed


def measure_ingest_and_view(server: Server, demo: DemoTopology, seconds: float) -> dict[str, float]:
    """Ingest alone for `seconds` (CPU share), then ingest with a browser-like reader of the containers view
    (GET every 100 ms: served from the per-tick render), then renders forced by distinct searches."""
    bodies = prepare_reports(demo, rounds=max(1, int(2 * seconds * RATE / HOSTS) + 1))
    half = len(bodies) // 2
    start = time.monotonic()
    cpu0 = cpu_seconds(server.proc.pid)
    sent, failed = post_all(server, bodies[:half], RATE, start + seconds)
    elapsed = time.monotonic() - start
    cpu_share = (cpu_seconds(server.proc.pid) - cpu0) / elapsed
    rate = sent / elapsed

    stop_at = time.monotonic() + seconds
    poster = threading.Thread(target=post_all, args=(server, bodies[half:], RATE, stop_at))
    poster.start()
    trivial = start_trivial_with_token(server, seconds=max(1.0, seconds - 2))
    cached, rendered = [], []
    headers = {"Authorization": f"Bearer {server.viewer}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        while time.monotonic() < stop_at:
            t = time.perf_counter()
            r = client.get("/api/v1/topology/containers")
            cached.append(time.perf_counter() - t)
            assert r.status_code == 200 and r.json()["total_nodes"] >= HOSTS * PER_HOST * 0.9, r.text[:200]
            time.sleep(0.1)
        poster.join()
        during = finish_trivial(trivial)
        size = len(r.content)
        for k in range(20):
            t = time.perf_counter()
            client.get("/api/v1/topology/containers", params={"search": f"-name:nothing{k}"})
            rendered.append(time.perf_counter() - t)
    return {"reports_per_s": rate, "failed": failed, "ingest_cpu_share": cpu_share,
            "view_p50_ms": pct(cached, 50) * 1000, "view_p95_ms": pct(cached, 95) * 1000,
            **{f"{k}_during_ingest": v for k, v in during.items()},
            "render_p50_ms": pct(rendered, 50) * 1000, "render_p95_ms": pct(rendered, 95) * 1000,
            "view_mb": size / 2**20}


async def measure_ws(server: Server, demo: DemoTopology, trials: int = 8) -> dict[str, float]:
    from websockets.asyncio.client import connect

    subs = []
    for _ in range(20):
        ws = await connect(server.url.replace("http", "ws") + "/api/v1/ws", max_size=64 * 2**20)
        await ws.send(json.dumps({"type": "auth", "token": server.viewer}))
        await ws.recv()
        await ws.send(json.dumps({"type": "subscribe", "view": "hosts", "filter": ""}))
        await ws.recv()   # snapshot
        subs.append(ws)
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {server.probe}", "Content-Type": "application/json",
               "Content-Encoding": "gzip"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=10) as client:
        for trial in range(trials):
            await asyncio.sleep(1.2)   # a quiet second: the next change renders at once
            body = gz(demo.full_report(trial))   # a full report: always applies, whatever the base
            start = time.perf_counter()
            post = asyncio.ensure_future(client.post("/api/v1/reports", content=body))

            arrivals = await asyncio.gather(*(_first_delta(ws, start) for ws in subs))
            assert (await post).status_code == 200
            latencies.append(max(arrivals))
    for ws in subs:
        await ws.close()
    return {"ws_all20_p50_ms": pct(latencies, 50) * 1000, "ws_all20_max_ms": max(latencies) * 1000}


async def _first_delta(ws: object, start: float) -> float:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))  # type: ignore[attr-defined]
        if msg["type"] == "delta":
            return time.perf_counter() - start


def start_trivial(server: Server, rate: float = 200.0, seconds: float = 10.0) -> subprocess.Popen[str]:
    """The trivial-GET load in its own process (see trivial_client)."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return subprocess.Popen([sys.executable, __file__, "--trivial-client", host, port, str(rate), str(seconds)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def finish_trivial(proc: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = proc.communicate(timeout=120)
    return {k: float(v) for k, v in json.loads(out).items()}


def start_trivial_with_token(server: Server, rate: float = 200.0, seconds: float = 10.0) -> subprocess.Popen[str]:
    proc = start_trivial(server, rate, seconds)
    assert proc.stdin is not None
    proc.stdin.write(server.viewer + "\n")   # the token on stdin, never in argv
    proc.stdin.flush()
    return proc


async def trivial_client(host: str, port: int, rate: float, seconds: float, token: str,
                         connections: int = 4) -> dict[str, float]:
    """Open-loop GET /api/v1/whoami: request k is due at start + k/rate on connection k mod `connections`
    (raw HTTP/1.1, keep-alive). Latency runs from the request's due time to its last byte, so a stalled server
    (or connection) counts in full, not only the requests it answers after the stall; `late` counts requests
    sent more than 5 ms after their due time (a busy connection or a starved client)."""
    request = (f"GET /api/v1/whoami HTTP/1.1\r\nHost: {host}:{port}\r\n"
               f"Authorization: Bearer {token}\r\n\r\n").encode()
    total = int(rate * seconds)
    latencies: list[float] = []
    late = 0
    start = time.monotonic() + 0.2

    async def worker(c: int) -> None:
        nonlocal late
        reader, writer = await asyncio.open_connection(host, port)
        for k in range(c, total, connections):
            due = start + k / rate
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -0.005:
                late += 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            latencies.append(time.monotonic() - due)
            if status != 200:
                raise SystemExit(f"whoami answered {status}")
        writer.close()

    await asyncio.gather(*(worker(c) for c in range(connections)))
    elapsed = time.monotonic() - start
    return {"trivial_rps": len(latencies) / elapsed, "trivial_p50_ms": pct(latencies, 50) * 1000,
            "trivial_p99_ms": pct(latencies, 99) * 1000, "trivial_late_share": late / max(1, len(latencies))}


def measure_trivial(server: Server, rate: float = 200.0, seconds: float = 10.0) -> dict[str, float]:
    return finish_trivial(start_trivial_with_token(server, rate, seconds))


async def floor_server() -> None:
    """The floor: the smallest asyncio HTTP/1.1 server (fixed 200 answer, no framework, no auth). The same
    client against it shows what the machine's load alone does to a p99."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.sleep(120)   # bounded: the bench stops it long before


def measure_floor(rate: float = 200.0, seconds: float = 10.0) -> dict[str, float]:
    proc = subprocess.Popen([sys.executable, __file__, "--floor-server"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split("listening on ")[1].strip()
        fake = Server.__new__(Server)
        fake.url, fake.viewer = url, "floor"
        return {f"floor_{k.removeprefix('trivial_')}": v for k, v in measure_trivial(fake, rate, seconds).items()}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def render_cpu_run() -> None:
    """In this process: CPU time (not wall time: the machine is shared) of one ingest and one render of the
    containers and hosts views at 1,000 hosts / 10,000 containers, a 15th of the hosts having reported since
    the previous render (one second of reports)."""
    from orchestrator.contracts.search import parse
    from orchestrator.services.api.topology import Topology

    clock = [1.9e9]
    topo = Topology(clock=lambda: clock[0])
    demo = DemoTopology(HOSTS, PER_HOST, seed=5)
    for i in range(HOSTS):
        topo.ingest(demo.full_report(i, clock[0]))
    figures: dict[str, list[float]] = {"ingest_ms": [], "containers_render_ms": [], "hosts_render_ms": [],
                                       "containers_render_search_ms": []}
    everything, hot = parse(""), parse("cpu>50 namespace:prod")
    for view in ("containers", "hosts"):
        topo.render(view, everything, None)
    for second in range(20):
        clock[0] += 1
        reports = [demo.delta_report(i, clock[0]) for i in range(second % 15, HOSTS, 15)]
        t = time.process_time()
        for report in reports:
            topo.ingest(report)
        figures["ingest_ms"].append((time.process_time() - t) / len(reports) * 1000)
        for view, query, name in (("containers", everything, "containers_render_ms"),
                                  ("hosts", everything, "hosts_render_ms"),
                                  ("containers", hot, "containers_render_search_ms")):
            t = time.process_time()
            topo.render(view, query, None).body(view=view)
            figures[name].append((time.process_time() - t) * 1000)
    print(json.dumps({k: round(statistics.median(v), 2) for k, v in figures.items()}))


def server_side_share(server: Server, route: str, bound: str) -> float:
    """From the API's own latency histogram: the share of `route`'s requests answered within `bound`
    seconds (server time, without this client's overhead)."""
    text = httpx.get(server.url + "/metrics", timeout=10).text
    within = total = 0.0
    for line in text.splitlines():
        if line.startswith("orchestrator_http_request_duration_seconds_bucket{") and f'route="{route}"' in line:
            if f'le="{bound}"' in line:
                within = float(line.rsplit(" ", 1)[1])
            elif 'le="+Inf"' in line:
                total = float(line.rsplit(" ", 1)[1])
    return within / total if total else float("nan")


def memory_run() -> None:
    """In this process: 1,000 hosts / 10,000 containers and an hour of reports; RSS before and after."""
    from orchestrator.services.api.topology import Topology

    clock = [1.9e9]
    topo = Topology(clock=lambda: clock[0])
    demo = DemoTopology(HOSTS, PER_HOST, seed=3)
    base = rss_mb()
    started = time.process_time()
    for i in range(HOSTS):
        topo.ingest(demo.full_report(i, clock[0]))
    after_full = rss_mb()
    for _ in range(239):
        clock[0] += 15
        for i in range(HOSTS):
            topo.ingest(demo.delta_report(i, clock[0], churn=0.0))
    samples = sum(p.host_series.size + sum(s.size for s in p.container_series.values()) for p in topo.probes.values())
    print(json.dumps({"rss_before_mb": round(base, 1), "rss_after_full_reports_mb": round(after_full, 1),
                      "rss_after_hour_mb": round(rss_mb(), 1), "samples": samples,
                      "containers": sum(len(p.containers) for p in topo.probes.values()),
                      "cpu_seconds": round(time.process_time() - started, 1)}))


def one_run(run: int, source: Path | None, ingest_seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp), source)
        try:
            demo = DemoTopology(HOSTS, PER_HOST, seed=run + 1)
            headers = {"Authorization": f"Bearer {server.probe}", "Content-Type": "application/json",
                       "Content-Encoding": "gzip"}
            t = time.monotonic()
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
                for i in range(HOSTS):
                    assert client.post("/api/v1/reports", content=gz(demo.full_report(i))).status_code == 200
            print(f"  loaded {HOSTS} hosts in {time.monotonic() - t:.1f} s", flush=True)
            figures = {"load1": os.getloadavg()[0]}
            figures.update(measure_ingest_and_view(server, demo, ingest_seconds))
            print("  ingest and view measured", flush=True)
            figures.update(asyncio.run(measure_ws(server, demo)))
            print("  websocket measured", flush=True)
            figures.update(measure_trivial(server))
            figures["trivial_server_share_le_5ms"] = server_side_share(server, "/api/v1/whoami", "0.005")
            figures.update(measure_floor())
            figures["view_server_share_le_250ms"] = server_side_share(server, "/api/v1/topology/{view}", "0.25")
            figures["server_rss_mb"] = rss_mb(server.proc.pid)
        finally:
            server.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each measure (median printed)")
    parser.add_argument("--ingest-seconds", type=float, default=30.0, help="length of each ingest measure")
    parser.add_argument("--memory", action="store_true", help="also measure memory (a separate process, ~2 min)")
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--trivial-client", nargs=4, metavar=("HOST", "PORT", "RATE", "SECONDS"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--floor-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also measure the API of this source tree (a directory holding orchestrator/), "
                             "alternating with this tree's in each run")
    parser.add_argument("--render-cpu", action="store_true",
                        help="only the in-process CPU cost of an ingest and of renders (load-independent)")
    args = parser.parse_args()
    if args.memory_only:
        memory_run()
        return
    if args.floor_server:
        asyncio.run(floor_server())
        return
    if args.trivial_client:
        host, port, rate, seconds = args.trivial_client
        figures = asyncio.run(trivial_client(host, int(port), float(rate), float(seconds),
                                             sys.stdin.readline().strip()))
        print(json.dumps(figures))
        return
    if args.render_cpu:
        render_cpu_run()
        return
    print(f"load average before: {os.getloadavg()}")
    trees: list[tuple[str, Path | None]] = [("this tree", None)]
    if args.baseline is not None:
        if not (args.baseline / "orchestrator" / "cli.py").is_file():
            raise SystemExit(f"--baseline {args.baseline}: no orchestrator/cli.py there")
        trees.insert(0, ("baseline", args.baseline.resolve()))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    for run in range(args.runs):
        for name, source in trees:
            figures = one_run(run, source, args.ingest_seconds)
            print(f"{name} run {run + 1}: " + ", ".join(f"{k}={v:.3g}" for k, v in figures.items()), flush=True)
            runs[name].append(figures)
    for name, results in runs.items():
        print(f"{name} median: " + ", ".join(f"{k}={statistics.median(r[k] for r in results):.3g}"
                                              for k in results[0]))
    print(f"load average after: {os.getloadavg()}")
    if args.memory:
        proc = subprocess.run([sys.executable, __file__, "--memory-only"], capture_output=True, text=True,
                              timeout=900)
        print("memory:", proc.stdout.strip() or proc.stderr.strip()[-500:])


if __name__ == "__main__":
    main()
