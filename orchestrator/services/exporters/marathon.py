"""`orchestrator exporter marathon`: per-app instances and task health, deployments and leader, fresh per scrape.

Marathon's own `/metrics/prometheus` has framework-wide gauges only; per-app figures need `/v2/apps`
(counts and deployments are always in it; tasks are not requested: their count is all we need, and at 1,000
apps the tasks would multiply the body). Labels are the app id only: no version label (every deploy would be
a new series, marathon_exporter's churn) and no task ids. A custom collector: a deleted app has no series at
the next scrape.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.clients.marathon import MarathonClient
from orchestrator.errors import OrchestratorError
from orchestrator.services.exporters.common import TargetHealth

TASK_STATES = ("staged", "running", "healthy", "unhealthy")  # /v2/apps fields tasksStaged, tasksRunning, ...


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


class MarathonCollector(Collector):
    def __init__(self, client: MarathonClient) -> None:
        self.client = client
        self.health = TargetHealth("marathon")
        self.last_fetch_seconds = 0.0  # GET /v2/apps and JSON decoding of the last scrape

    def _apps(self) -> list[dict[str, Any]] | None:
        """The raw app list: five fields per app are read, so 1,000 full app models are not built per scrape.
        Missing fields count as 0 and numbers sent as strings (old Marathon) are accepted."""
        try:
            response = self.client.request("GET", "/v2/apps")
        except OrchestratorError:
            return None
        if response.status_code != 200:
            return None
        try:
            body = response.json()
        except ValueError:
            return None
        apps = body.get("apps") if isinstance(body, dict) else None
        return [a for a in apps if isinstance(a, dict)] if isinstance(apps, list) else None

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up_ok = True
        leader = GaugeMetricFamily("marathon_leader", "1 if Marathon has an elected leader (GET /v2/leader)")
        try:
            leader.add_metric([], 1.0 if self.client.leader() else 0.0)
        except OrchestratorError:
            up_ok = False
        instances = GaugeMetricFamily("marathon_app_instances", "Instances the app is configured to run",
                                      labels=["app"])
        tasks = GaugeMetricFamily("marathon_app_tasks", "The app's tasks by state (healthy/unhealthy: by health "
                                  "checks, only for apps that have them)", labels=["app", "state"])
        deploying = GaugeMetricFamily("marathon_app_deployments", "Deployments running for the app",
                                      labels=["app"])
        apps_total = GaugeMetricFamily("marathon_apps", "Apps defined in Marathon")
        deployments = GaugeMetricFamily("marathon_deployments_active", "Deployments in progress")
        up = GaugeMetricFamily("marathon_up", "1 if the last /v2/apps request worked")
        fetch_started = time.perf_counter()
        apps = self._apps()
        self.last_fetch_seconds = time.perf_counter() - fetch_started
        if apps is not None:
            active: set[str] = set()
            for app in apps:
                app_id = str(app.get("id") or "")
                if not app_id:
                    continue
                instances.add_metric([app_id], _number(app.get("instances")))
                for state in TASK_STATES:
                    tasks.add_metric([app_id, state], _number(app.get(f"tasks{state.title()}")))
                refs = [d for d in app.get("deployments") or [] if isinstance(d, dict)]
                deploying.add_metric([app_id], float(len(refs)))
                active.update(str(d.get("id")) for d in refs)
            apps_total.add_metric([], float(len(instances.samples)))
            deployments.add_metric([], float(len(active)))
        up.add_metric([], 1.0 if apps is not None else 0.0)
        yield from (up, leader, instances, tasks, deploying, apps_total, deployments)
        yield from self.health.families({"marathon": apps is not None and up_ok}, time.perf_counter() - started)
