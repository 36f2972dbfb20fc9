"""What both exporters share: per-target health series, the HTTP server, and a throttled cache."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from orchestrator.contracts import probe as names

T = TypeVar("T")


class TargetHealth:
    """`up` per target for the last scrape, and errors per target since start (a real counter)."""

    def __init__(self, exporter: str) -> None:
        self.exporter = exporter
        self.errors: dict[str, int] = {}
        self.lock = threading.Lock()

    def families(self, up: dict[str, bool], seconds: float) -> Iterator[Metric]:
        up_family = GaugeMetricFamily(names.EXPORTER_UP, "1 if the exporter's last request to this target worked",
                                      labels=["exporter", "target"])
        with self.lock:
            for target, ok in up.items():
                self.errors.setdefault(target, 0)
                if not ok:
                    self.errors[target] += 1
                up_family.add_metric([self.exporter, target], 1.0 if ok else 0.0)
            errors = CounterMetricFamily(names.EXPORTER_SCRAPE_ERRORS.removesuffix("_total"),
                                         "Failed requests to a target, since the exporter started",
                                         labels=["exporter", "target"])
            for target, count in sorted(self.errors.items()):
                errors.add_metric([self.exporter, target], float(count))
        yield up_family
        yield errors
        duration = GaugeMetricFamily(names.EXPORTER_SCRAPE_SECONDS, "Time the last scrape took, seconds",
                                     labels=["exporter"])
        duration.add_metric([self.exporter], seconds)
        yield duration


class Throttled(Generic[T]):
    """Calls `fetch` at most once per `min_interval` seconds, whatever the scrape rate; concurrent scrapes
    wait for the one fetch in flight. A failed fetch is retried no sooner either (the master stays protected)."""

    def __init__(self, fetch: Callable[[], T], min_interval: float, clock: Callable[[], float] = time.monotonic):
        self.fetch, self.min_interval, self.clock = fetch, min_interval, clock
        self.value: T | None = None
        self.error: Exception | None = None
        self.fetched_at: float | None = None
        self.fetches = 0
        self.lock = threading.Lock()

    def get(self) -> T | None:
        with self.lock:
            now = self.clock()
            if self.fetched_at is None or now - self.fetched_at >= self.min_interval:
                self.fetched_at = now
                self.fetches += 1
                try:
                    self.value, self.error = self.fetch(), None
                except Exception as exc:  # noqa: BLE001 - reported as a target error, the value kept
                    self.error = exc
            return self.value

    def age(self) -> float | None:
        return None if self.fetched_at is None else self.clock() - self.fetched_at


def serve(registry: CollectorRegistry, address: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if path == "/metrics":
                body, code, ctype = generate_latest(registry), 200, CONTENT_TYPE_LATEST
            elif path == "/healthz":
                body, code, ctype = b"ok\n", 200, "text/plain"
            else:
                body, code, ctype = b"not found\n", 404, "text/plain"
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="exporter-http", daemon=True).start()
    return server
