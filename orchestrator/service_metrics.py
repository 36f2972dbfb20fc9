"""The orchestrator service's HTTP metrics: the contract the canary gates query (docs/metrics.md).

The API (a later issue) records every request through `ServiceMetrics.observe`; the names, labels and
buckets come from components/orchestrator_service.py, where the analysis queries are built, so the
exporter and the queries cannot drift apart. tests/test_canary.py checks the exposition against the
queries' selectors.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from components.orchestrator_service import (LATENCY_BUCKETS_SECONDS, LIVENESS_PATH, METRICS_PATH, READINESS_PATH,
                                             REQUEST_DURATION, REQUESTS_TOTAL)

LABELS = ("method", "route", "code")
# Probes and scrapes are not traffic: counting them would let an idle canary look healthy.
UNCOUNTED_PATHS = frozenset({LIVENESS_PATH, READINESS_PATH, METRICS_PATH})


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        # prometheus_client appends `_total` to counter names.
        self.requests = Counter(REQUESTS_TOTAL.removesuffix("_total"),
                                "HTTP requests answered, by method, route template and status code",
                                list(LABELS), registry=self.registry)
        self.duration = Histogram(REQUEST_DURATION,
                                  "Time from receiving a request to the end of its response, in seconds",
                                  ["method", "route"], buckets=LATENCY_BUCKETS_SECONDS, registry=self.registry)

    def observe(self, method: str, route: str, code: int, seconds: float) -> None:
        """One answered request. `route` is the route template (`/v1/apps/{id}`), never the raw path."""
        if route in UNCOUNTED_PATHS:
            return
        if not 100 <= code <= 599:
            raise ValueError(f"{code} is not an HTTP status code")
        self.requests.labels(method.upper(), route, str(code)).inc()
        self.duration.labels(method.upper(), route).observe(max(seconds, 0.0))
