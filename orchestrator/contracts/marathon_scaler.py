"""The Marathon scaler's contract: the metric names its daemon exports and its alert rules query, and the
policy models (autoscale, heal, overrides, the scaler's config file) that the stack settings, the scaler and the
API share. Pure pydantic: components/ (settings, the tier) and the services both import it.
"""
from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PREFIX = "orchestrator_marathon_scaler"
DECISIONS_TOTAL = f"{PREFIX}_decisions_total"              # counter: app, direction (up|down|none), reason
DESIRED_INSTANCES = f"{PREFIX}_desired_instances"          # gauge: app — the last decision's target
ERRORS_TOTAL = f"{PREFIX}_errors_total"                    # counter: loop (autoscale|heal|reconcile), kind
CYCLE_SECONDS = f"{PREFIX}_cycle_seconds"                  # histogram: loop
LAST_CYCLE_TIMESTAMP = f"{PREFIX}_last_cycle_timestamp_seconds"  # gauge: loop — a stuck loop stops moving it
HEAL_KILLS_TOTAL = f"{PREFIX}_heal_kills_total"            # counter: app, mode (replace|scale-false)
HEAL_BUDGET_EXHAUSTED_TOTAL = f"{PREFIX}_heal_budget_exhausted_total"  # counter: scope (app|cluster)
HEAL_CIRCUIT_OPEN = f"{PREFIX}_heal_circuit_open"          # gauge 0/1: many apps unhealthy at once
RECONCILE_CHANGES_TOTAL = f"{PREFIX}_reconcile_changes_total"  # counter: action (create|update|delete|skip-delete)
RECONCILE_DRIFT = f"{PREFIX}_reconcile_drift_apps"         # gauge: apps whose live definition drifted
ACTIVE = f"{PREFIX}_active"                                # gauge 0/1: this replica holds the lock

CYCLE_BUCKETS_SECONDS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
METRICS_PORT = 9108
# The API's ZooKeeper digest ACL id (`orchestrator-api:<base64 sha1>`, a hash, not a password), set by the tier
# from its Secret: with authentication the scaler grants it READ on its state and READ|WRITE on its overrides.
API_ACL_ENV = "ORCHESTRATOR_ZK_API_ACL"

# ------------------------------------------------------------------------------------------------ policies
LABEL_PREFIX = "orchestrator.autoscale."

# Named metrics: PromQL templates with $app (the Marathon app id). They read the Marathon exporter's per-task
# series; any PromQL returning one number per app works as well (policy `metric: "promql: ..."`).
NAMED_METRICS: dict[str, str] = {
    # Utilization of the app's CPU limit, from the Mesos exporter's per-app executor series.
    "cpu": 'sum(rate(mesos_agent_executor_cpu_seconds_total{app="$app"}[2m]))'
           ' / sum(mesos_agent_executor_cpus_limit{app="$app"})',
    "memory": 'sum(mesos_agent_executor_memory_rss_bytes{app="$app"})'
              ' / sum(mesos_agent_executor_memory_limit_bytes{app="$app"})',
    # Requests per second of the whole app (use with metric_type: total), for apps exporting http_requests_total.
    "rps": 'sum(rate(http_requests_total{marathon_app="$app"}[1m]))',
}


class RatePolicy(BaseModel):
    """HPA HPAScalingPolicy: at most `value` pods (or percent) per `period_seconds`."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["Pods", "Percent"]
    value: int = Field(gt=0)
    period_seconds: int = Field(gt=0, le=1800)


class Behavior(BaseModel):
    """HPA HPAScalingRules for one direction."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    stabilization_seconds: int = Field(ge=0, le=3600)
    policies: tuple[RatePolicy, ...]
    select: Literal["Max", "Min", "Disabled"] = "Max"
    # Ours, not the HPA's, scale-down only (hpa._down_bound, MARATHON_DOWN): after a drop the window shortens to
    # this. None, or not shorter than the window: the plain HPA window.
    drop_window_seconds: int | None = Field(default=None, ge=0, le=3600)


# Kubernetes HPA defaults (behavior): up = max(100 %, 4 pods) per 15 s, no window; down = 100 % per 15 s, 300 s.
DEFAULT_UP = Behavior(stabilization_seconds=0, policies=(RatePolicy(type="Percent", value=100, period_seconds=15),
                                                         RatePolicy(type="Pods", value=4, period_seconds=15)))
DEFAULT_DOWN = Behavior(stabilization_seconds=300,
                        policies=(RatePolicy(type="Percent", value=100, period_seconds=15),))
# Our default for Marathon apps: the HPA's, with a 600 s scale-down window and a 120 s drop window.
# 600 s: a Marathon task may take up to its health-check grace period (300 s by default) to turn healthy, so a
# 300 s window has not yet seen the effect of the last scale-up; measured (scripts/bench_marathon_scaler.py),
# ±15 % load oscillating with a 10-minute period made 12 changes an hour with 300 s and 1 with 600 s.
# The drop window (hpa._down_bound) is what the long window costs back: it held a peak's capacity for 600 s
# after the load had gone for good, the autoscaler's whole extra cost over the anchor's. When every
# recommendation older than the drop window is higher than every one since, and no scale-up is younger than the
# window, the load fell to a level the window has not seen and the scale-down needs only the drop window of it.
# 120 s: a lull must last 8 cycles of 15 s before capacity goes, and the part of the window that can show an
# earlier trough as low (600 - 120 = 480 s) stays long, so periodic load keeps its capacity. Measured
# (`--drop-window`, `--more`): the square wave (10 min high / 10 min low) cost 649 instance-minutes without a
# drop window, 598 with 300 s, 574 with 180 s, 562 with 120 s; ±15 % with a 15-minute period made 8, 4 and 1
# change(s) an hour with 300, 180 and 120 s (1 without); the 10-minute oscillation 1 change with any of them.
MARATHON_DOWN = DEFAULT_DOWN.model_copy(update={"stabilization_seconds": 600, "drop_window_seconds": 120})


class AutoscalePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    min_instances: int = Field(ge=1)
    max_instances: int = Field(ge=1)
    metric: str = Field(min_length=1, description="a named metric (cpu, memory, rps) or 'promql: <query with $app>'")
    target: float = Field(gt=0)
    metric_type: Literal["average", "total"] = "average"
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    scale_up: Behavior = DEFAULT_UP
    scale_down: Behavior = MARATHON_DOWN
    paused: bool = False

    @field_validator("target")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in NAMED_METRICS and not value.startswith("promql:"):
            raise ValueError(f"unknown metric {value!r}: use one of {', '.join(sorted(NAMED_METRICS))} "
                             "or 'promql: <query>'")
        return value

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalePolicy:
        if self.min_instances > self.max_instances:
            raise ValueError(f"min_instances {self.min_instances} > max_instances {self.max_instances}")
        return self

    def query(self, app_id: str) -> str:
        template = NAMED_METRICS.get(self.metric) or self.metric.split(":", 1)[1].strip()
        return template.replace("$app", app_id)


class HealPolicy(BaseModel):
    """App-level healing: a task whose signal stays above `threshold` for `for_seconds` is replaced."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    # PromQL returning one value per task, labelled `task_id` ($app substituted); e.g. an error ratio.
    signal: str = 'sum by (task_id) (rate(http_requests_total{marathon_app="$app",code=~"5.."}[1m])) / ' \
                  'sum by (task_id) (rate(http_requests_total{marathon_app="$app"}[1m]))'
    threshold: float = Field(default=0.5, gt=0)
    for_seconds: int = Field(default=60, ge=0)
    min_capacity: int = Field(default=1, ge=0, description="replace before kill when ready tasks <= this")


class Override(BaseModel):
    """What operators change through the API (bounds, pause). Empty fields leave the policy alone."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    min_instances: int | None = Field(default=None, ge=1)
    max_instances: int | None = Field(default=None, ge=1)
    paused: bool | None = None


class ScalerConfig(BaseModel):
    """The scaler's config file (rendered from stack config into a ConfigMap)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    policies: dict[str, AutoscalePolicy] = Field(default_factory=dict)
    heal: dict[str, HealPolicy] = Field(default_factory=dict)
    sync_seconds: float = Field(default=15.0, gt=0, le=600)
    heal_app_budget_fraction: float = Field(default=0.1, gt=0, le=1)
    heal_app_budget_seconds: int = Field(default=300, gt=0)
    heal_cluster_kills_per_minute: int = Field(default=3, ge=0)
    heal_circuit_fraction: float = Field(default=0.3, gt=0, le=1)
    heal_backoff_initial_seconds: float = Field(default=10.0, gt=0)
    heal_backoff_max_seconds: float = Field(default=300.0, gt=0)
