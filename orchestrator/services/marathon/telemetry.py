"""Every decision of the scaler is a metric (orchestrator/contracts/marathon_scaler.py) and an event: one JSON
line on stdout (`{"ts": ..., "loop": "autoscale", "app": ..., "direction": ..., "reason": ..., inputs}`), which
the platform's log pipeline keeps as the audit trail."""
from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from orchestrator.contracts import marathon_scaler as contract


class Telemetry:
    def __init__(self, registry: CollectorRegistry | None = None, out: TextIO | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.out = out if out is not None else sys.stdout
        self.clock = clock
        self._lock = threading.Lock()
        r = self.registry
        # prometheus_client appends `_total` to counter names.
        self.decisions = Counter(contract.DECISIONS_TOTAL.removesuffix("_total"), "Autoscaler decisions",
                                 ["app", "direction", "reason"], registry=r)
        self.desired = Gauge(contract.DESIRED_INSTANCES, "Instances the last decision asked for", ["app"], registry=r)
        self.errors = Counter(contract.ERRORS_TOTAL.removesuffix("_total"), "Errors of a loop's cycle",
                              ["loop", "kind"], registry=r)
        self.cycle = Histogram(contract.CYCLE_SECONDS, "Duration of one cycle of a loop", ["loop"],
                               buckets=contract.CYCLE_BUCKETS_SECONDS, registry=r)
        self.last_cycle = Gauge(contract.LAST_CYCLE_TIMESTAMP, "End of the last completed cycle (unix time)",
                                ["loop"], registry=r)
        self.kills = Counter(contract.HEAL_KILLS_TOTAL.removesuffix("_total"), "Tasks the healer killed",
                             ["app", "mode"], registry=r)
        self.budget_exhausted = Counter(contract.HEAL_BUDGET_EXHAUSTED_TOTAL.removesuffix("_total"),
                                        "Kills the healer wanted but a budget refused", ["scope"], registry=r)
        self.circuit = Gauge(contract.HEAL_CIRCUIT_OPEN, "1 while the healer's circuit breaker is open", registry=r)
        self.reconcile = Counter(contract.RECONCILE_CHANGES_TOTAL.removesuffix("_total"), "Reconcile changes",
                                 ["action"], registry=r)
        self.drift = Gauge(contract.RECONCILE_DRIFT, "Apps whose live definition drifted from the repository",
                           registry=r)
        self.active = Gauge(contract.ACTIVE, "1 while this replica is the active scaler", registry=r)

    def event(self, loop: str, **fields: Any) -> None:
        line = json.dumps({"ts": round(self.clock(), 3), "loop": loop, **fields}, sort_keys=True, default=str)
        with self._lock:
            self.out.write(line + "\n")
            self.out.flush()
