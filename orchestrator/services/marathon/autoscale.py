"""`orchestrator marathon autoscale`: one cycle = one read of Marathon, one decision per autoscaled app.

A cycle: read the operators' overrides; list apps (tasks embedded) and deployments once; settle the write-ahead
intents of the previous cycle; for each app with a policy, read its metric and decide (hpa.decide); write the
intents of the scale-changes to the state store; then `PUT /v2/apps/{id}` each (never forced: a 409 means a
deployment started meanwhile, the intent is dropped and the app holds); save the state. Every decision, holds
included, is a metric and a JSON event.

Why write-ahead: if the scaler is SIGKILLed after Marathon accepted a PUT but before it saved the scale event,
a restart without the event would let the rate policy allow the same step again (a double scale). The intent
{from, to} is saved first; the next cycle (or the restarted scaler) looks at Marathon's `instances`: equal to
`to` = applied (the event stays), equal to `from` = never applied (the event is dropped).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.clients.marathon import App, DeploymentLocked, MarathonClient, MarathonError
from orchestrator.errors import InputError
from orchestrator.services.marathon import hpa
from orchestrator.services.marathon.policy import (
    AutoscalePolicy,
    Override,
    ScalerConfig,
    apply_override,
    policy_from_labels,
)
from orchestrator.services.marathon.store import MAX_DECISIONS, OVERRIDES, STATE, Store
from orchestrator.services.marathon.telemetry import Telemetry


class MetricSource(Protocol):
    def new_cycle(self) -> None: ...

    def value(self, query: str) -> tuple[float | None, str]: ...


@dataclass
class Resolved:
    policy: AutoscalePolicy | None
    source: str  # config | labels | invalid
    error: str = ""


def resolve_policy(app: App, config: ScalerConfig, overrides: dict[str, Override]) -> Resolved:
    """Stack config wins over labels (the platform team's word over whoever deploys the app); then overrides."""
    policy = config.policies.get(app.id)
    source = "config"
    if policy is None:
        try:
            policy = policy_from_labels(app.id, app.labels)
        except InputError as exc:
            return Resolved(None, "invalid", str(exc))
        source = "labels"
    if policy is None:
        return Resolved(None, "none")
    return Resolved(apply_override(policy, overrides.get(app.id)), source)


class Autoscaler:
    def __init__(self, client: MarathonClient, metrics: MetricSource, config: ScalerConfig, store: Store,
                 telemetry: Telemetry, *, dry_run: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.metrics = metrics
        self.config = config
        self.store = store
        self.telemetry = telemetry
        self.dry_run = dry_run
        self.clock = clock
        self.state, self.version = store.read(STATE)
        self.state.setdefault("apps", {})

    def _save(self) -> None:
        if not self.dry_run:
            self.version = self.store.write(STATE, self.state, self.version)

    def cycle(self) -> list[hpa.Decision]:
        started = time.perf_counter()
        now = self.clock()
        self.metrics.new_cycle()
        overrides = {app: Override.model_validate(o)
                     for app, o in self.store.read(OVERRIDES)[0].get("apps", {}).items()}
        apps = self.client.list_apps(embed_tasks=True)
        in_flight = {a for d in self.client.deployments() for a in d.affectedApps}
        by_id = {a.id: a for a in apps}
        self._settle_intents(by_id)

        decisions: list[hpa.Decision] = []
        policies: dict[str, Any] = {}
        histories: dict[str, hpa.History] = {}
        for app in apps:
            resolved = resolve_policy(app, self.config, overrides)
            if resolved.policy is None:
                if resolved.source == "invalid":
                    decisions.append(hpa.Decision(app.id, app.instances, app.instances, "invalid-policy"))
                    self.telemetry.event("autoscale", app=app.id, direction="none", reason="invalid-policy",
                                         error=resolved.error)
                continue
            policy = resolved.policy
            policies[app.id] = {"source": resolved.source, **policy.model_dump(mode="json")}
            deploying = app.deploying or app.id in in_flight
            value, why = (None, "") if deploying or policy.paused else self.metrics.value(policy.query(app.id))
            entry = self.state["apps"].setdefault(app.id, {})
            history = hpa.History.from_json(entry.get("history", {}))
            histories[app.id] = history
            decision = hpa.decide(app.id, policy, hpa.Inputs(app.instances, app.ready_count(), value, deploying),
                                  history, now)
            if decision.reason == "metrics-missing" and why:
                decision = hpa.Decision(decision.app, decision.current, decision.desired, f"metrics-missing:{why}",
                                        decision.value, decision.ready)
            decisions.append(decision)

        acting = [d for d in decisions if d.acts]
        if acting and not self.dry_run:
            for d in acting:  # write-ahead: the intent and its scale event before any PUT
                hpa.record_scale(histories[d.app], d, now)
                self.state["apps"][d.app]["pending"] = {"from": d.current, "to": d.desired, "at": now}
                self.state["apps"][d.app]["history"] = histories[d.app].to_json()
            self._save()
        final: list[hpa.Decision] = []
        for decision in decisions:
            if decision.acts and not self.dry_run:
                decision = self._apply(decision, histories[decision.app], now)
            if decision.app in histories:
                self.state["apps"][decision.app]["history"] = histories[decision.app].to_json()
            final.append(decision)
            self._report(decision, by_id.get(decision.app))
        for gone in set(self.state["apps"]) - set(by_id):  # apps deleted from Marathon: forget them
            del self.state["apps"][gone]
        self.state["policies"] = policies
        recent = [dict(d.as_event(), ts=round(now, 3)) for d in final if d.acts or d.reason != "within-tolerance"]
        self.state["decisions"] = (self.state.get("decisions", []) + recent)[-MAX_DECISIONS:]
        self._save()
        self.telemetry.cycle.labels("autoscale").observe(time.perf_counter() - started)
        self.telemetry.last_cycle.labels("autoscale").set(time.time())
        return final

    def _apply(self, decision: hpa.Decision, history: hpa.History, now: float) -> hpa.Decision:
        entry = self.state["apps"][decision.app]
        try:
            deployment = self.client.scale(decision.app, decision.desired)
        except DeploymentLocked:
            # A deployment started between our read and the PUT: it was not applied; hold this cycle.
            entry.pop("pending", None)
            history.events = [e for e in history.events if not (e.at == now and e.change == decision.desired -
                                                                 decision.current)]
            return hpa.Decision(decision.app, decision.current, decision.current, "deployment-in-flight",
                                decision.value, decision.ready, decision.recommended)
        except MarathonError as exc:
            # Unknown outcome (timeout, 5xx): the intent stays; the next cycle settles it from Marathon's answer.
            self.telemetry.errors.labels("autoscale", "marathon").inc()
            self.telemetry.event("autoscale", app=decision.app, direction=decision.direction, reason="put-failed",
                                 error=str(exc))
            return decision
        entry.pop("pending", None)
        entry["deployment"] = deployment
        return decision

    def _settle_intents(self, apps: dict[str, App]) -> None:
        for app_id, entry in self.state["apps"].items():
            pending = entry.get("pending")
            if not pending or app_id not in apps:
                continue
            instances = apps[app_id].instances
            if instances == pending["to"]:
                outcome = "applied"
            elif instances == pending["from"]:
                outcome = "not-applied"
                history = hpa.History.from_json(entry.get("history", {}))
                change = pending["to"] - pending["from"]
                history.events = [e for e in history.events if not (e.at == pending["at"] and e.change == change)]
                entry["history"] = history.to_json()
            else:
                outcome = "superseded"
            entry.pop("pending")
            self.telemetry.event("autoscale", app=app_id, reason=f"intent-{outcome}", **{
                "from": pending["from"], "to": pending["to"], "instances": instances})

    def _report(self, decision: hpa.Decision, app: App | None) -> None:
        reason = decision.reason.split(":", 1)[0]
        self.telemetry.decisions.labels(decision.app, decision.direction, reason).inc()
        self.telemetry.desired.labels(decision.app).set(decision.desired)
        if decision.acts or reason not in ("within-tolerance", "stabilized"):
            self.telemetry.event("autoscale", dry_run=self.dry_run, **decision.as_event())
