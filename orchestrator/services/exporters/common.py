"""What both exporters share: per-target health series, the HTTP server, and a throttled cache."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from orchestrator.contracts import probe as names
from orchestrator.services.metrics_http import serve_metrics

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
    return serve_metrics(registry, address, port, name="exporter-http")
