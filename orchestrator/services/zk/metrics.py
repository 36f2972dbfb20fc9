"""Prometheus metrics of the sync engine, served on /metrics.

The names are a contract with the monitoring tier's alert rules (`max(orchestrator_zk_sync_lag_seconds)
> 0.5` for 1m, among others): change them only together with those rules.
"""
from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import start_http_server

PROPAGATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SyncMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.lag = Gauge("orchestrator_zk_sync_lag_seconds",
                         "Latest end-to-end propagation lag (change committed on the source -> acknowledged on the "
                         "target), or the age of the oldest change not yet applied if that is larger", registry=r)
        self.propagation = Histogram("orchestrator_zk_sync_propagation_seconds",
                                     "End-to-end propagation lag of each replicated change",
                                     buckets=PROPAGATION_BUCKETS, registry=r)
        self.synced = Counter("orchestrator_zk_sync_znodes_synced", "Znode writes applied to the target "
                              "(creates, data changes, deletes, ACL changes)", registry=r)
        self.errors = Counter("orchestrator_zk_sync_errors", "Failed reads, writes and resynchronisations",
                              registry=r)
        self.resyncs = Counter("orchestrator_zk_sync_resyncs", "Full re-comparisons after a lost connection or "
                               "session, an error, or the periodic interval", registry=r)
        self.znodes = Gauge("orchestrator_zk_sync_znodes", "Znodes in the synced subtrees", ["side"], registry=r)
        self.up = Gauge("orchestrator_zk_sync_up", "1 while both sessions are connected and changes are being "
                        "followed", registry=r)
        self.pending = Gauge("orchestrator_zk_sync_pending_events", "Watch events received but not yet applied",
                             registry=r)
        self.last_resync = Gauge("orchestrator_zk_sync_last_resync_timestamp_seconds",
                                 "Unix time of the last completed full re-comparison", registry=r)
        self.info = Gauge("orchestrator_zk_sync_info", "Direction of replication (value 1)",
                          ["source", "target", "paths"], registry=r)
        self._last_lag = 0.0
        self._oldest_pending: Callable[[], float | None] = lambda: None
        self.lag.set_function(self._lag_now)

    def follow_pending(self, oldest: Callable[[], float | None]) -> None:
        """`oldest()` gives the wall time of the oldest change received but not applied, or None."""
        self._oldest_pending = oldest

    def observe(self, lag: float) -> None:
        lag = max(lag, 0.0)
        self._last_lag = lag
        self.propagation.observe(lag)

    def _lag_now(self) -> float:
        oldest = self._oldest_pending()
        waiting = time.time() - oldest if oldest is not None else 0.0
        return max(self._last_lag, waiting)

    def serve(self, address: str = "0.0.0.0", port: int = 0):
        """Start the /metrics HTTP server; returns (server, thread). Port 0 picks a free port."""
        return start_http_server(port, addr=address, registry=self.registry)
