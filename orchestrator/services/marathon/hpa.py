"""The autoscaler's decision, with Kubernetes HPA semantics (pure functions: no I/O, no clock of its own).

Transcribed from the HPA documentation (kubernetes/website, concepts/workloads/autoscaling/horizontal-pod-
autoscale.md) and the controller's behaviour (kubernetes/kubernetes pkg/controller/podautoscaler/horizontal.go:
stabilizeRecommendationWithBehaviors, convertDesiredReplicasWithBehaviorRate, calculateScaleUp/DownLimit):

1. raw desired = ceil(ready × value / target) (`average` metrics; `total`: ceil(value / target)); nothing
   when |ratio − 1| ≤ tolerance. Tasks that are not ready count as 0 % of target on a scale-up and as 100 %
   on a scale-down (HPA's not-ready / missing-metric rule); if that correction brings the ratio into
   tolerance or reverses it, nothing happens.
2. stabilization: the recommendation is recorded; the result is at most the **max** of the recommendations in
   the scale-down window and at least the **min** of those in the scale-up window. Ours, not the HPA's: after a
   drop to a level the window has not seen, the scale-down window shortens to its drop window (`_down_bound`).
3. rate policies: per direction, each policy limits the change relative to the replica count at the start of
   its period (from recorded scale events); `select` Max takes the policy allowing the biggest change, Min
   the smallest, Disabled none. Then min/max bounds.

Holds (no action, no recommendation recorded): a deployment in flight, a missing/empty/NaN metric (never a
scale-down on missing data: KEDA #965/#3064), paused, 0 instances (HPA: scaled to zero = paused), no ready task.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from orchestrator.services.marathon.policy import AutoscalePolicy, Behavior


@dataclass(frozen=True)
class Recommendation:
    at: float
    value: int


@dataclass(frozen=True)
class ScaleEvent:
    at: float
    change: int  # > 0 scale-up by that many instances, < 0 scale-down


@dataclass
class History:
    """Per-app memory the decision needs; persisted by the state store so a restart keeps it."""

    recommendations: list[Recommendation] = field(default_factory=list)
    events: list[ScaleEvent] = field(default_factory=list)

    def prune(self, now: float, policy: AutoscalePolicy) -> None:
        window = max(policy.scale_down.stabilization_seconds, policy.scale_up.stabilization_seconds)
        # Scale events: for the rate policies' periods, and for the scale-down window (the drop window's rule).
        period = max([p.period_seconds for p in policy.scale_up.policies + policy.scale_down.policies]
                     + [policy.scale_down.stabilization_seconds])
        self.recommendations = [r for r in self.recommendations if r.at > now - window]
        self.events = [e for e in self.events if e.at > now - period]

    def to_json(self) -> dict[str, Any]:
        return {"r": [[r.at, r.value] for r in self.recommendations], "e": [[e.at, e.change] for e in self.events]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> History:
        return cls([Recommendation(float(a), int(v)) for a, v in data.get("r", [])],
                   [ScaleEvent(float(a), int(c)) for a, c in data.get("e", [])])


@dataclass(frozen=True)
class Inputs:
    instances: int           # Marathon's `instances` (the desired count it converges to)
    ready: int               # running, healthy tasks of the current version
    value: float | None      # the metric (None: missing, empty result or error)
    deploying: bool = False


@dataclass(frozen=True)
class Decision:
    app: str
    current: int
    desired: int
    reason: str
    value: float | None = None
    ready: int = 0
    recommended: int | None = None

    @property
    def direction(self) -> str:
        return "up" if self.desired > self.current else "down" if self.desired < self.current else "none"

    @property
    def acts(self) -> bool:
        return self.desired != self.current

    def as_event(self) -> dict[str, Any]:
        return {"app": self.app, "direction": self.direction, "reason": self.reason, "current": self.current,
                "desired": self.desired, "value": self.value, "ready": self.ready, "recommended": self.recommended}


def usable(value: float | None) -> bool:
    return value is not None and math.isfinite(value) and value >= 0


def recommend(policy: AutoscalePolicy, inputs: Inputs) -> tuple[int, str]:
    """Step 1: the raw recommendation from the metric (or the current count with the reason it holds)."""
    current, ready = inputs.instances, inputs.ready
    assert inputs.value is not None
    value, target, tol = inputs.value, policy.target, policy.tolerance
    if policy.metric_type == "total":
        ratio = value / (target * current)
        if abs(ratio - 1) <= tol:
            return current, "within-tolerance"
        return math.ceil(value / target), "metric"
    ratio = value / target
    if abs(ratio - 1) <= tol:
        return current, "within-tolerance"
    unready = max(0, current - ready)
    if unready:
        # HPA: not-ready tasks count as 0 % on a scale-up, as 100 % of target on a scale-down.
        corrected = (ready * ratio) / current if ratio > 1 else (ready * ratio + unready) / current
        if abs(corrected - 1) <= tol or (ratio > 1) != (corrected > 1):
            return current, "within-tolerance-after-unready"
        return math.ceil(current * corrected), "metric"
    return math.ceil(ready * ratio), "metric"


def stabilize(history: History, recommended: int, current: int, now: float, policy: AutoscalePolicy) -> int:
    """Step 2: clamp by the windows, then record the recommendation."""
    up_rec = recommended
    up_cut = now - policy.scale_up.stabilization_seconds
    for rec in history.recommendations:
        if rec.at > up_cut:
            up_rec = min(up_rec, rec.value)
    last_up = max((e.at for e in history.events if e.change > 0), default=None)
    down_rec = _down_bound(history.recommendations, Recommendation(now, recommended), policy.scale_down, last_up)
    result = max(current, up_rec)
    result = min(result, down_rec)
    history.recommendations.append(Recommendation(now, recommended))
    return result


def _down_bound(recorded: list[Recommendation], new: Recommendation, behavior: Behavior,
                last_up: float | None = None) -> int:
    """The lowest count a scale-down may reach: the highest recommendation of the window (HPA) or, after a drop,
    the highest of the drop window.

    A drop: split the window at its latest recommendation at least `drop_window_seconds` old; if every
    recommendation before that one is higher than every one from it on, the load fell to a level the window has
    not seen and stayed there for the drop window: the older, higher ones are history, not a peak that comes back.
    A dip between peaks (an oscillation) fails the test as soon as the window holds one earlier trough as low as
    the current one, so it keeps the whole window. Nor does a drop shorten the window within a window of a
    scale-up (`last_up`): undoing a scale-up that soon is the flap the window is for (a slow wave would otherwise
    be followed down and up a step at a time); the drop window releases capacity held longer than that."""
    now = new.at
    window = [r for r in recorded if r.at > now - behavior.stabilization_seconds] + [new]
    highest = max(r.value for r in window)
    drop = behavior.drop_window_seconds
    if drop is None or drop >= behavior.stabilization_seconds:
        return highest
    if last_up is not None and last_up > now - behavior.stabilization_seconds:
        return highest
    split = max((r.at for r in window if r.at <= now - drop), default=None)
    if split is None:
        return highest
    older = [r.value for r in window if r.at < split]
    since = max(r.value for r in window if r.at >= split)
    return since if older and min(older) > since else highest


def _changes(events: list[ScaleEvent], now: float, period: int) -> tuple[int, int]:
    added = sum(e.change for e in events if e.change > 0 and e.at > now - period)
    deleted = -sum(e.change for e in events if e.change < 0 and e.at > now - period)
    return added, deleted


def scale_up_limit(current: int, events: list[ScaleEvent], now: float, behavior: Behavior) -> int:
    if behavior.select == "Disabled":
        return current
    proposals = []
    for policy in behavior.policies:
        added, deleted = _changes(events, now, policy.period_seconds)
        start = current - added + deleted
        proposals.append(start + policy.value if policy.type == "Pods"
                         else math.ceil(start * (1 + policy.value / 100)))
    return max(proposals) if behavior.select == "Max" else min(proposals)


def scale_down_limit(current: int, events: list[ScaleEvent], now: float, behavior: Behavior) -> int:
    if behavior.select == "Disabled":
        return current
    proposals = []
    for policy in behavior.policies:
        added, deleted = _changes(events, now, policy.period_seconds)
        start = current - added + deleted
        proposals.append(start - policy.value if policy.type == "Pods"
                         else int(start * (1 - policy.value / 100)))
    # Max = the policy allowing the biggest change = the lowest count.
    return min(proposals) if behavior.select == "Max" else max(proposals)


def decide(app: str, policy: AutoscalePolicy, inputs: Inputs, history: History, now: float) -> Decision:
    """One decision for one app. Records the recommendation in `history` (not the scale event: the caller
    records that with `record_scale` once Marathon accepted the change)."""
    current = inputs.instances

    def hold(reason: str) -> Decision:
        return Decision(app, current, current, reason, inputs.value, inputs.ready)

    if inputs.deploying:
        return hold("deployment-in-flight")
    if policy.paused:
        return hold("paused")
    if current == 0:
        return hold("scaled-to-zero")
    if current > policy.max_instances:
        return Decision(app, current, policy.max_instances, "above-max", inputs.value, inputs.ready)
    if current < policy.min_instances:
        return Decision(app, current, policy.min_instances, "below-min", inputs.value, inputs.ready)
    if not usable(inputs.value):
        # The count Marathon runs is all we know: recorded, it keeps a scale-down after the outage waiting for
        # the drop window of fresh samples instead of acting on the first one (KEDA #965's failure, one step on).
        history.prune(now, policy)
        history.recommendations.append(Recommendation(now, current))
        return hold("metrics-missing")
    if policy.metric_type == "average" and inputs.ready == 0:
        return hold("no-ready-tasks")
    history.prune(now, policy)
    raw, reason = recommend(policy, inputs)
    recommended = min(max(raw, policy.min_instances), policy.max_instances)
    stabilized = stabilize(history, recommended, current, now, policy)
    desired = stabilized
    if recommended != current and stabilized == current:
        reason = "stabilized"
    if desired > current:
        limit = max(scale_up_limit(current, history.events, now, policy.scale_up), current)
        if desired > limit:
            desired, reason = limit, "rate-limited"
        desired = min(desired, policy.max_instances)
    elif desired < current:
        limit = min(scale_down_limit(current, history.events, now, policy.scale_down), current)
        if desired < limit:
            desired, reason = limit, "rate-limited"
        desired = max(desired, policy.min_instances)
    if desired != current and reason == "metric":
        reason = "scale-up" if desired > current else "scale-down"
    return Decision(app, current, desired, reason, inputs.value, inputs.ready, recommended)


def record_scale(history: History, decision: Decision, now: float) -> None:
    if decision.acts:
        history.events.append(ScaleEvent(now, decision.desired - decision.current))
