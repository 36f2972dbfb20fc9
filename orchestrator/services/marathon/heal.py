"""`orchestrator marathon heal`: what Marathon's own healing lacks, with guard rails.

Division of labour (docs/marathon-scaler.md): Marathon kills a task after `maxConsecutiveFailures` failed health
checks and relaunches it with backoff; we never act on those health checks (no duplicate kill). We act on
**app-level signals** Marathon cannot see — an error ratio or latency per task from Prometheus (`HealPolicy.signal`,
one value per `task_id`) above `threshold` for `for_seconds` — and add what Marathon lacks (marathon #3317,
#3318, #2104, #3942):

- **circuit breaker**: when more than `heal_circuit_fraction` of the apps look unhealthy at once (Marathon health
  or signal), it is the platform (an overloaded host, a network partition, Prometheus itself), not the apps:
  no kills, the circuit-open metric is 1 (alert);
- **kill budgets**: per app at most max(1, fraction × instances) per `heal_app_budget_seconds`, cluster-wide at most
  `heal_cluster_kills_per_minute`;
- **replace before kill** when the app is at its minimum capacity (ready − 1 < `min_capacity`): scale +1, wait for
  the new task to be ready, then kill the bad one with `scale=true` (the count returns to where it was);
- tasks that are not TASK_RUNNING (unreachable, lost) are never killed; nothing is done while the app deploys;
- **exponential backoff** per app after each kill (`heal_backoff_initial_seconds` doubling to the max), reset
  after a quiet period.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Protocol

from orchestrator.clients.marathon import App, DeploymentLocked, MarathonClient, MarathonError
from orchestrator.services.marathon.policy import HealPolicy, ScalerConfig, heal_from_labels
from orchestrator.services.marathon.store import MAX_DECISIONS, Store
from orchestrator.services.marathon.telemetry import Telemetry

HEAL = "heal"
REPLACE_TIMEOUT_SECONDS = 600.0


class SignalSource(Protocol):
    def new_cycle(self) -> None: ...

    def by_label(self, query: str, label: str) -> tuple[dict[str, float] | None, str]: ...


class Healer:
    def __init__(self, client: MarathonClient, signals: SignalSource, config: ScalerConfig, store: Store,
                 telemetry: Telemetry, *, dry_run: bool = False, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.signals = signals
        self.config = config
        self.store = store
        self.telemetry = telemetry
        self.dry_run = dry_run
        self.clock = clock
        self.state, self.version = store.read(HEAL)
        self.state.setdefault("apps", {})
        self.state.setdefault("cluster_kills", [])

    def policy_for(self, app: App) -> HealPolicy | None:
        policy = self.config.heal.get(app.id)
        if policy is None and heal_from_labels(app.labels):
            policy = HealPolicy()
        return policy if policy is not None and policy.enabled else None

    def cycle(self) -> list[dict[str, Any]]:
        """One pass; returns the actions and holds it decided (also emitted as events)."""
        started = time.perf_counter()
        now = self.clock()
        self.signals.new_cycle()
        apps = self.client.list_apps(embed_tasks=True)
        in_flight = {a for d in self.client.deployments() for a in d.affectedApps}
        cfg = self.config
        self.state["cluster_kills"] = [t for t in self.state["cluster_kills"] if t > now - 60]

        # Signals first (one query per healed app), then the breaker over every app with running tasks.
        signals: dict[str, dict[str, float] | None] = {}
        thresholds: dict[str, float] = {}
        for app in apps:
            policy = self.policy_for(app)
            if policy is not None:
                signals[app.id], _ = self.signals.by_label(policy.signal.replace("$app", app.id), "task_id")
                thresholds[app.id] = policy.threshold
        considered = [a for a in apps if any(t.state == "TASK_RUNNING" for t in a.tasks)]
        unhealthy = [a for a in considered
                     if self._looks_unhealthy(a, signals.get(a.id), thresholds.get(a.id, math.inf))]
        circuit_open = len(considered) >= 3 and len(unhealthy) > cfg.heal_circuit_fraction * len(considered)
        if circuit_open != bool(self.state.get("circuit_open")):
            self.telemetry.event("heal", reason="circuit-open" if circuit_open else "circuit-closed",
                                 unhealthy=len(unhealthy), apps=len(considered))
        self.state["circuit_open"] = circuit_open
        self.telemetry.circuit.set(1 if circuit_open else 0)

        actions: list[dict[str, Any]] = []
        live_ids = {a.id for a in apps}
        for app in apps:
            policy = self.policy_for(app)
            if policy is None:
                continue
            entry = self.state["apps"].setdefault(app.id, {})
            action = self._heal_app(app, policy, entry, signals.get(app.id), now,
                                    deploying=app.deploying or app.id in in_flight, circuit_open=circuit_open)
            if action:
                actions.append(action)
                self.telemetry.event("heal", dry_run=self.dry_run, **action)
        for gone in set(self.state["apps"]) - live_ids:
            del self.state["apps"][gone]
        self.state["decisions"] = (self.state.get("decisions", []) + [dict(a, ts=round(now, 3)) for a in actions
                                                                       if a["reason"] != "healthy"])[-MAX_DECISIONS:]
        if not self.dry_run:
            self.version = self.store.write(HEAL, self.state, self.version)
        self.telemetry.cycle.labels("heal").observe(time.perf_counter() - started)
        self.telemetry.last_cycle.labels("heal").set(time.time())
        return actions

    @staticmethod
    def _looks_unhealthy(app: App, signal: dict[str, float] | None, threshold: float) -> bool:
        running = [t for t in app.tasks if t.state == "TASK_RUNNING"]
        failing_checks = bool(app.healthChecks) and any(t.healthCheckResults and not t.healthy for t in running)
        return failing_checks or any(v > threshold for v in (signal or {}).values())

    def _heal_app(self, app: App, policy: HealPolicy, entry: dict[str, Any], signal: dict[str, float] | None,
                  now: float, *, deploying: bool, circuit_open: bool) -> dict[str, Any] | None:
        cfg = self.config
        running = {t.id: t for t in app.tasks if t.state == "TASK_RUNNING"}
        bad_since: dict[str, float] = {k: v for k, v in entry.get("bad_since", {}).items() if k in running}
        if signal is not None:
            for task_id in running:
                if signal.get(task_id, 0.0) > policy.threshold:
                    bad_since.setdefault(task_id, now)
                else:
                    bad_since.pop(task_id, None)
        entry["bad_since"] = bad_since
        if not bad_since and entry.get("backoff") and now - entry.get("last_kill", now) > cfg.heal_backoff_max_seconds:
            entry.pop("backoff", None)  # quiet long enough: the next kill starts from the initial backoff

        def hold(reason: str, **extra: Any) -> dict[str, Any]:
            return {"app": app.id, "action": "none", "reason": reason, **extra}

        replacing = entry.get("replacing")
        if replacing:
            return self._finish_replacement(app, entry, replacing, now, circuit_open)
        candidates = sorted((since, tid) for tid, since in bad_since.items() if now - since >= policy.for_seconds)
        if not candidates:
            return None if signal is not None else hold("signal-missing")
        if deploying:
            return hold("deployment-in-flight", tasks=len(candidates))
        if circuit_open:
            return hold("circuit-open", tasks=len(candidates))
        if now < entry.get("backoff_until", 0.0):
            return hold("backoff", until=entry["backoff_until"])
        kills = [t for t in entry.get("kills", []) if t > now - cfg.heal_app_budget_seconds]
        entry["kills"] = kills
        if len(kills) >= max(1, math.floor(cfg.heal_app_budget_fraction * app.instances)):
            self.telemetry.budget_exhausted.labels("app").inc()
            return hold("app-budget-exhausted", kills=len(kills))
        if len(self.state["cluster_kills"]) >= cfg.heal_cluster_kills_per_minute:
            self.telemetry.budget_exhausted.labels("cluster").inc()
            return hold("cluster-budget-exhausted")
        task_id = candidates[0][1]
        if app.ready_count() - 1 < policy.min_capacity:
            # At minimum capacity: add a task first, kill the bad one once the new one is ready.
            if self.dry_run:
                return {"app": app.id, "action": "replace", "reason": "min-capacity", "task": task_id}
            try:
                self.client.scale(app.id, app.instances + 1)
            except DeploymentLocked:
                return hold("deployment-in-flight")
            except MarathonError as exc:
                self.telemetry.errors.labels("heal", "marathon").inc()
                return hold("marathon-error", error=str(exc))
            entry["replacing"] = {"task": task_id, "ready_before": app.ready_count(), "since": now}
            return {"app": app.id, "action": "replace", "reason": "min-capacity", "task": task_id}
        return self._kill(app, entry, task_id, now, scale=False)

    def _finish_replacement(self, app: App, entry: dict[str, Any], replacing: dict[str, Any], now: float,
                            circuit_open: bool) -> dict[str, Any] | None:
        task_id = replacing["task"]
        if task_id not in {t.id for t in app.tasks if t.state == "TASK_RUNNING"}:
            entry.pop("replacing")  # the bad task went away by itself; the extra one stays until autoscaled
            return {"app": app.id, "action": "none", "reason": "replace-target-gone", "task": task_id}
        if app.deploying or app.ready_count() <= int(replacing["ready_before"]):
            if now - float(replacing["since"]) > REPLACE_TIMEOUT_SECONDS:
                entry.pop("replacing")
                return {"app": app.id, "action": "none", "reason": "replace-timeout", "task": task_id}
            return {"app": app.id, "action": "none", "reason": "replacement-not-ready", "task": task_id}
        if circuit_open:
            return {"app": app.id, "action": "none", "reason": "circuit-open", "task": task_id}
        entry.pop("replacing")
        return self._kill(app, entry, task_id, now, scale=True)

    def _kill(self, app: App, entry: dict[str, Any], task_id: str, now: float, *, scale: bool) -> dict[str, Any]:
        mode = "replace" if scale else "scale-false"
        action = {"app": app.id, "action": "kill", "reason": "signal", "task": task_id, "mode": mode}
        if self.dry_run:
            return action
        try:
            self.client.kill_task(app.id, task_id, scale=scale)
        except MarathonError as exc:
            self.telemetry.errors.labels("heal", "marathon").inc()
            return {"app": app.id, "action": "none", "reason": "marathon-error", "task": task_id, "error": str(exc)}
        cfg = self.config
        backoff = min(cfg.heal_backoff_max_seconds, float(entry.get("backoff", 0)) * 2 or cfg.heal_backoff_initial_seconds)
        entry.update(backoff=backoff, backoff_until=now + backoff, last_kill=now)
        entry.setdefault("kills", []).append(now)
        entry.get("bad_since", {}).pop(task_id, None)
        self.state["cluster_kills"].append(now)
        self.telemetry.kills.labels(app.id, mode).inc()
        return action
