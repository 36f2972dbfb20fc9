"""Autoscaling and healing policies: the models, where they come from, and the operators' overrides.

Sources, in order (the first that declares a field for an app wins, field by field, for whole sections):

1. **Operator overrides** (`bounds`, `paused`) made through the API (`PolicyStore.update_override`) — what an
   operator does instead of scaling an autoscaled app by hand (a manual scale would be undone by the next
   cycle). Kept in the scaler's state store (a znode), so every replica and restart sees them.
2. **Stack config** (`orchestrator:marathonScaler.policies`, rendered into the scaler's config file): the
   platform team's word. It wins over labels because labels are editable by whoever can deploy the app.
3. **Marathon app labels** (tendrilinc-style, so Marathon-native users need no repository change)::

       "orchestrator.autoscale.min": "2", "orchestrator.autoscale.max": "20",
       "orchestrator.autoscale.metric": "cpu",  "orchestrator.autoscale.target": "0.6"

   Optional: `orchestrator.autoscale.metric-type` (`average`|`total`), `.tolerance`,
   `.scale-down-window` / `.scale-up-window` (seconds), `.heal` (`true` enables the healer for the app).

An app with no policy from any source is never touched.
"""
from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.errors import InputError

LABEL_PREFIX = "orchestrator.autoscale."

# Named metrics: PromQL templates with $app (the Marathon app id). They read the Marathon exporter's per-task
# series; any PromQL returning one number per app works as well (policy `metric: "promql: ..."`).
NAMED_METRICS: dict[str, str] = {
    "cpu": 'avg(rate(marathon_task_cpu_seconds_total{app="$app"}[1m]) / marathon_task_cpu_limit_cores{app="$app"})',
    "memory": 'avg(marathon_task_memory_bytes{app="$app"} / marathon_task_memory_limit_bytes{app="$app"})',
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


# Kubernetes HPA defaults (behavior): up = max(100 %, 4 pods) per 15 s, no window; down = 100 % per 15 s, 300 s.
DEFAULT_UP = Behavior(stabilization_seconds=0, policies=(RatePolicy(type="Percent", value=100, period_seconds=15),
                                                         RatePolicy(type="Pods", value=4, period_seconds=15)))
DEFAULT_DOWN = Behavior(stabilization_seconds=300,
                        policies=(RatePolicy(type="Percent", value=100, period_seconds=15),))
# Our default for Marathon apps: the HPA's, with a 600 s scale-down window. A Marathon task may take up to its
# health-check grace period (300 s by default) to turn healthy, so a 300 s window has not yet seen the effect of
# the last scale-up; measured (scripts/bench_marathon_scaler.py), ±15 % load oscillating with a 10-minute period
# made 12 changes an hour with 300 s and 1 with 600 s.
MARATHON_DOWN = DEFAULT_DOWN.model_copy(update={"stabilization_seconds": 600})


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


def policy_from_labels(app_id: str, labels: dict[str, str]) -> AutoscalePolicy | None:
    """An AutoscalePolicy from `orchestrator.autoscale.*` labels, None if the app has none.

    A label set that is present but invalid raises InputError naming the app and label: the scaler reports it
    as a decision with reason `invalid-policy` and leaves the app alone."""
    ours = {k[len(LABEL_PREFIX):]: v for k, v in labels.items() if k.startswith(LABEL_PREFIX)}
    ours.pop("heal", None)
    if not ours:
        return None
    names = {"min": "min_instances", "max": "max_instances", "metric": "metric", "target": "target",
             "metric-type": "metric_type", "tolerance": "tolerance", "paused": "paused"}
    data: dict[str, Any] = {}
    for key, value in ours.items():
        if key in names:
            data[names[key]] = value
        elif key in ("scale-down-window", "scale-up-window"):
            data[key] = value
        else:
            raise InputError(f"app {app_id}: unknown label {LABEL_PREFIX}{key}")
    try:
        if "scale-down-window" in data:
            data["scale_down"] = MARATHON_DOWN.model_copy(
                update={"stabilization_seconds": int(data.pop("scale-down-window"))})
        if "scale-up-window" in data:
            data["scale_up"] = DEFAULT_UP.model_copy(update={"stabilization_seconds": int(data.pop("scale-up-window"))})
        return AutoscalePolicy.model_validate(data)
    except (ValidationError, ValueError) as exc:
        raise InputError(f"app {app_id}: labels {LABEL_PREFIX}*: {_first_error(exc)}") from None


def heal_from_labels(labels: dict[str, str]) -> bool:
    return labels.get(LABEL_PREFIX + "heal", "").lower() == "true"


def apply_override(policy: AutoscalePolicy, override: Override | None) -> AutoscalePolicy:
    if override is None:
        return policy
    update: dict[str, Any] = {k: v for k, v in override.model_dump().items() if v is not None}
    lo = update.get("min_instances", policy.min_instances)
    hi = update.get("max_instances", policy.max_instances)
    if lo > hi:  # an override that crosses the configured bound moves the other bound (the operator's intent wins)
        if "min_instances" in update:
            update["max_instances"] = lo
        else:
            update["min_instances"] = hi
    return policy.model_copy(update=update)


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


def load_config(path: str | None) -> ScalerConfig:
    """Read the scaler config (YAML or JSON). InputError names the file and the key."""
    if not path:
        return ScalerConfig()
    from pathlib import Path

    from orchestrator import strict_yaml

    # Strict: size-bounded UTF-8, no duplicate keys, no alias bombs (InputError naming file and line).
    raw = strict_yaml.load_file(Path(path)) or {}
    try:
        normalised = dict(raw)
        for section in ("policies", "heal"):
            if isinstance(normalised.get(section), dict):
                normalised[section] = {_norm_id(path, section, k): v for k, v in normalised[section].items()}
        return ScalerConfig.model_validate(normalised)
    except (ValidationError, TypeError, ValueError) as exc:
        raise InputError(f"{path}: {_first_error(exc)}") from None


def _norm_id(path: str, section: str, app_id: str) -> str:
    from orchestrator.clients.marathon import normalize_app_id

    try:
        return normalize_app_id(str(app_id))
    except InputError as exc:
        raise InputError(f"{path}: {section}: {exc}") from None


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}" if where else err["msg"]
    return str(exc)
