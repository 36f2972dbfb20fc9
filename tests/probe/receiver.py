"""A local report receiver for the probe's tests: real HTTP on loopback, the API's delta rule (409 on a wrong
base), and an independent re-implementation of applying a delta."""
from __future__ import annotations

import gzip
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from orchestrator.contracts.report import DeltaReport, FullReport, connection_key, parse_report


def apply(base: FullReport, delta: DeltaReport) -> FullReport:
    procs = {p.pid: p for p in base.processes}
    for pid in delta.removed_processes:
        procs.pop(pid)
    procs.update({p.pid: p for p in delta.processes})
    conts = {c.id: c for c in base.containers}
    for cid in delta.removed_containers:
        conts.pop(cid)
    conts.update({c.id: c for c in delta.containers})
    conns = {connection_key(c): c for c in base.connections}
    for c in delta.connections_removed:
        conns.pop(connection_key(c))
    conns.update({connection_key(c): c for c in delta.connections_added})
    return FullReport(schema_version=delta.schema_version, probe_id=delta.probe_id, seq=delta.seq,
                      timestamp=delta.timestamp, interval_seconds=delta.interval_seconds, host=delta.host,
                      cost=delta.cost, processes=sorted(procs.values(), key=lambda p: p.pid),
                      containers=sorted(conts.values(), key=lambda c: c.id), connections=list(conns.values()))


class Receiver:
    """`mode`: "ok" (apply), "error" (500), "full-next" (accept, ask for a full report next)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.mode = "ok"
        self.received: list[tuple[str, int]] = []     # (kind, seq) of every accepted report
        self.rejected: list[tuple[str, int]] = []
        self.headers: list[dict[str, str]] = []
        self.state: dict[str, FullReport] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                code, answer = receiver.handle(dict(self.headers), body)
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self.server = Server((host, port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.headers.append(headers)
            if self.mode == "error":
                return 500, {"message": "boom"}
            assert headers.get("Content-Encoding") == "gzip"
            report = parse_report(json.loads(gzip.decompress(body)))
            base = self.state.get(report.probe_id)
            if isinstance(report, DeltaReport):
                if base is None or base.seq != report.base_seq:
                    self.rejected.append(("delta", report.seq))
                    return 409, {"message": f"base_seq {report.base_seq} unknown"}
                self.state[report.probe_id] = apply(base, report)
            else:
                self.state[report.probe_id] = report
            self.received.append((report.kind, report.seq))
            nxt = "full" if self.mode == "full-next" else "delta"
            return 202, {"probe_id": report.probe_id, "seq": report.seq, "next": nxt}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
