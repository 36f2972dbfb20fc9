"""The probe's loop: collect every interval, publish, and expose its own cost on /metrics and /healthz."""
from __future__ import annotations

import logging
import resource
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.contracts import probe as names
from orchestrator.contracts.report import ProbeCost
from orchestrator.services import metrics_http
from orchestrator.services.probe.collector import Collection
from orchestrator.services.probe.collector import Collector as ProbeCollector
from orchestrator.services.probe.publisher import Publisher

log = logging.getLogger("orchestrator.probe")


class ProbeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.collect_seconds = Histogram(names.PROBE_COLLECT_SECONDS, "Wall time of one collection, seconds",
                                         buckets=names.PROBE_COLLECT_BUCKETS, registry=r)
        r.register(_OwnCpu())
        self.rss = Gauge(names.PROBE_RSS_BYTES, "Resident memory of this probe, bytes", registry=r)
        self.report_bytes = Gauge(names.PROBE_REPORT_BYTES, "Gzipped size of the last report, by kind",
                                  ["kind"], registry=r)
        self.reports = Counter(names.PROBE_REPORTS.removesuffix("_total"),
                               "Report deliveries to API replicas, by result", ["result"], registry=r)
        self.dropped = Counter(names.PROBE_REPORTS_DROPPED.removesuffix("_total"),
                               "Reports dropped from a full per-replica buffer (oldest first)", registry=r)
        self.skipped = Counter(names.PROBE_SKIPPED_PROCESSES.removesuffix("_total"),
                               "Processes skipped because they exited mid-walk or denied access", registry=r)
        self.source_errors = Counter(names.PROBE_SOURCE_ERRORS.removesuffix("_total"),
                                     "Optional sources that failed (mesos agent, kubernetes)", ["source"],
                                     registry=r)
        self.objects = Gauge(names.PROBE_OBJECTS, "Objects in the last report, by kind", ["kind"], registry=r)
        self.replicas = Gauge(names.PROBE_REPLICAS, "API replicas the last report was addressed to", registry=r)
        for result in ("ok", "ok-full-next", "rejected", "unreachable", "error", "auth", "deferred"):
            self.reports.labels(result)
        for source in ("mesos", "kubernetes"):
            self.source_errors.labels(source)
        self.last_collection = 0.0

    def observe(self, collection: Collection) -> None:
        self.collect_seconds.observe(collection.seconds)
        self.rss.set(collection.head.cost.rss_bytes)
        self.skipped.inc(collection.skipped)
        head = collection.head
        self.objects.labels("process").set(len(head.processes))
        self.objects.labels("container").set(len(head.containers))
        self.objects.labels("connection").set(len(collection.connections))
        self.last_collection = time.time()


class _OwnCpu(Collector):
    """The probe's CPU seconds, read from the kernel at each scrape: a counter, never a stale copy."""

    def collect(self) -> Iterator[Metric]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        yield CounterMetricFamily(names.PROBE_CPU_SECONDS.removesuffix("_total"),
                                  "CPU seconds (user+system) this probe has used since it started",
                                  value=usage.ru_utime + usage.ru_stime)


def serve_metrics(metrics: ProbeMetrics, address: str, port: int, max_age: float) -> ThreadingHTTPServer:
    def health() -> tuple[bool, bytes]:
        fresh = time.time() - metrics.last_collection <= max_age
        return fresh, (b"ok\n" if fresh else b"no collection recently\n")

    return metrics_http.serve_metrics(metrics.registry, address, port, name="probe-metrics", health=health)


def run(collector: ProbeCollector, publisher: Publisher | None, metrics: ProbeMetrics, interval: float,
        stop: threading.Event, max_iterations: int | None = None) -> int:
    """Collect and publish every `interval` seconds until `stop` is set (or `max_iterations`)."""
    seq = 0
    deadline = time.monotonic()
    while not stop.is_set() and (max_iterations is None or seq < max_iterations):
        mesos_errors_before = collector.mesos.errors
        cost = ProbeCost(report_bytes=publisher.last_sizes.get("full", 0) if publisher else 0,
                         dropped_reports=publisher.dropped_total if publisher else 0)
        collection = collector.collect(seq, cost)
        metrics.observe(collection)
        metrics.source_errors.labels("mesos").inc(collector.mesos.errors - mesos_errors_before)
        if publisher is not None:
            stats = publisher.publish(collection.head, collection.connections)
            for result, count in stats.results.items():
                metrics.reports.labels(result).inc(count)
            metrics.dropped.inc(stats.dropped)
            if stats.bytes_full:
                metrics.report_bytes.labels("full").set(stats.bytes_full)
            if stats.bytes_delta:
                metrics.report_bytes.labels("delta").set(stats.bytes_delta)
            metrics.replicas.set(len(publisher.replicas))
        seq += 1
        # Fixed-rate schedule: a slow collection shortens the next sleep instead of drifting.
        deadline += interval
        stop.wait(max(0.0, deadline - time.monotonic()))
        if time.monotonic() - deadline > interval:
            deadline = time.monotonic()  # we fell a whole interval behind (suspend): do not burst
    return seq
