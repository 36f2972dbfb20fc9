"""The orchestrator service's HTTP metrics: the contract the canary gates query (docs/metrics.md).

The API (a later issue) records every request through `ServiceMetrics.observe`; the names, labels and
buckets are defined here and imported by components/orchestrator_service.py, where the analysis queries
are built, so the exporter and the queries cannot drift apart. tests/test_canary.py checks the exposition against the
queries' selectors.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REQUESTS_TOTAL = "orchestrator_http_requests_total"            # counter: method, route, code
REQUEST_DURATION = "orchestrator_http_request_duration_seconds"  # histogram (seconds): method, route
# Bucket upper bounds the service must export. The p95/p99 gates sit on bucket bounds, so
# histogram_quantile decides them exactly instead of interpolating inside a bucket.
LATENCY_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)
METRICS_PATH, LIVENESS_PATH, READINESS_PATH = "/metrics", "/healthz", "/readyz"

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
