"""Grafana dashboards as code: typed models (pydantic) of the part of Grafana's dashboard JSON we use, and the
platform's dashboards built from them. Pure functions, no Pulumi: the monitoring tier mounts the JSON from a
ConfigMap, the compose stack from files, and the tests check every panel's PromQL with promtool.

Why our own models and not grafana-foundation-sdk: the only Python build on the package index is its
Grafana 10.1 one (version `1769699998!10.1.0`), while the pinned Grafana is 13.2 (../shared/pins.md); the
subset below is small, and `SCHEMA_VERSION` is the dashboard schema Grafana 11-13 read without migration.
"""
from __future__ import annotations

import json
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.contracts import probe as probe_names

SCHEMA_VERSION = 39
DATASOURCE_UID = "prometheus"   # the provisioned datasource (monitoring tier, compose stack)
DATASOURCE = {"type": "prometheus", "uid": DATASOURCE_UID}
GRID_WIDTH = 24

# Grafana's template variables and the values promtool checks them with (it does not know them).
TEMPLATE_VALUES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$app": "/shop/web",
                   "$node": "node-1"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Target(_Model):
    expr: str = Field(min_length=1)
    legendFormat: str = ""
    refId: str = "A"
    datasource: dict[str, str] = Field(default_factory=lambda: dict(DATASOURCE))


class GridPos(_Model):
    x: int = Field(ge=0, lt=GRID_WIDTH)
    y: int = Field(ge=0)
    w: int = Field(ge=1, le=GRID_WIDTH)
    h: int = Field(ge=1)


def _field_config(unit: str) -> dict[str, dict[str, object]]:
    return {"defaults": {"unit": unit} if unit else {}, "overrides": {}}


class Panel(_Model):
    id: int = Field(ge=1)
    title: str = Field(min_length=1)
    type: Literal["timeseries", "stat", "table"]
    gridPos: GridPos
    targets: list[Target] = Field(min_length=1, max_length=26)
    datasource: dict[str, str] = Field(default_factory=lambda: dict(DATASOURCE))
    description: str = ""
    fieldConfig: dict[str, dict[str, object]] = Field(default_factory=lambda: _field_config(""))

    @field_validator("targets")
    @classmethod
    def _ref_ids(cls, targets: list[Target]) -> list[Target]:
        return [t.model_copy(update={"refId": chr(ord("A") + i)}) for i, t in enumerate(targets)]


class Variable(_Model):
    name: str = Field(pattern=r"^[a-z_]+$")
    label: str
    query: str              # a label_values(...) query
    type: Literal["query"] = "query"
    datasource: dict[str, str] = Field(default_factory=lambda: dict(DATASOURCE))
    includeAll: bool = True
    multi: bool = True
    refresh: int = 2        # on time range change


class Templating(_Model):
    variables: list[Variable] = Field(default_factory=list, alias="list")  # Grafana names it `list`


class Dashboard(_Model):
    uid: str = Field(pattern=r"^[a-z0-9-]{1,40}$")
    title: str
    tags: list[str] = Field(default_factory=lambda: ["orchestrator"])
    panels: list[Panel]
    templating: Templating = Field(default_factory=Templating)
    schemaVersion: int = SCHEMA_VERSION
    refresh: str = "30s"
    time: dict[str, str] = Field(default_factory=lambda: {"from": "now-1h", "to": "now"})
    editable: bool = False

    @field_validator("panels")
    @classmethod
    def _unique_ids_no_overlap(cls, panels: list[Panel]) -> list[Panel]:
        ids = [p.id for p in panels]
        if len(set(ids)) != len(ids):
            raise ValueError(f"panel ids must be unique: {ids}")
        cells: set[tuple[int, int]] = set()
        for p in panels:
            g = p.gridPos
            if g.x + g.w > GRID_WIDTH:
                raise ValueError(f"panel {p.title!r} is wider than the grid")
            mine = {(x, y) for x in range(g.x, g.x + g.w) for y in range(g.y, g.y + g.h)}
            if mine & cells:
                raise ValueError(f"panel {p.title!r} overlaps another panel")
            cells |= mine
        return panels

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json", by_alias=True), indent=1, sort_keys=True) + "\n"


class _Layout:
    """Places panels left to right, `per_row` per row, and numbers them."""

    def __init__(self, per_row: int = 3, height: int = 8) -> None:
        self.per_row, self.height = per_row, height
        self.y = self._in_row = 0
        self.panels: list[Panel] = []

    def add(self, title: str, *exprs: tuple[str, str], kind: Literal["timeseries", "stat", "table"] = "timeseries",
            unit: str = "", description: str = "") -> None:
        width = GRID_WIDTH // self.per_row
        if self._in_row == self.per_row:
            self._in_row, self.y = 0, self.y + self.height
        self.panels.append(Panel(
            id=len(self.panels) + 1, title=title, type=kind, description=description, fieldConfig=_field_config(unit),
            gridPos=GridPos(x=self._in_row * width, y=self.y, w=width, h=self.height),
            targets=[Target(expr=e, legendFormat=legend) for e, legend in exprs]))
        self._in_row += 1


P = probe_names


def overview() -> Dashboard:
    lay = _Layout()
    lay.add("ZooKeeper servers up", ('sum(up{job="zookeeper"})', "up"), kind="stat")
    lay.add("ZooKeeper request latency", ('max by (pod) (avg_latency{job="zookeeper"})', "{{pod}}"), unit="ms")
    lay.add("Mesos leader elected", ('max(mesos_master_elected) or vector(0)', "elected"), kind="stat")
    lay.add("Mesos agents", ('sum by (state) (mesos_master_slaves_state)', "{{state}}"))
    lay.add("Mesos tasks", ('sum by (state) (mesos_master_task_states_current)', "{{state}}"))
    lay.add("Task failure rate", ('sum(rate(mesos_master_task_states_exit_total{state=~"failed|errored|lost"}'
                                  '[$__rate_interval])) / sum(rate(mesos_master_task_states_exit_total'
                                  '[$__rate_interval]))', "failed"), unit="percentunit")
    lay.add("Marathon apps and deployments", ("marathon_apps", "apps"), ("marathon_deployments_active",
                                                                          "deployments"))
    lay.add("Marathon leader", ("max(marathon_leader) or vector(0)", "leader"), kind="stat")
    lay.add("ZooKeeper sync lag", ("max(orchestrator_zk_sync_lag_seconds)", "lag"), unit="s")
    lay.add("Probes reporting", ("count(time() - orchestrator_probe_last_report_timestamp_seconds < 60)",
                                 "reporting"), kind="stat")
    lay.add("Probe CPU (max over nodes)",
            (f"max(rate({P.PROBE_CPU_SECONDS}[$__rate_interval]))", "cores"), unit="percentunit")
    lay.add("Canary gates: success rate and p99",
            ('sum(rate(orchestrator_http_requests_total{code!~"5.."}[$__rate_interval])) / '
             'sum(rate(orchestrator_http_requests_total[$__rate_interval]))', "success"),
            ('histogram_quantile(0.99, sum by (le) (rate(orchestrator_http_request_duration_seconds_bucket'
             '[$__rate_interval])))', "p99 s"))
    return Dashboard(uid="orchestrator-overview", title="Orchestrator: platform overview", panels=lay.panels)


def mesos() -> Dashboard:
    lay = _Layout()
    lay.add("Elected master", ("mesos_master_elected", "{{master}}"))
    lay.add("Master uptime", ("mesos_master_uptime_seconds", "{{master}}"), unit="s")
    lay.add("Agents by state", ("sum by (state) (mesos_master_slaves_state)", "{{state}}"))
    lay.add("Frameworks by state", ("sum by (state) (mesos_master_frameworks_state)", "{{state}}"))
    lay.add("Tasks by state", ("sum by (state) (mesos_master_task_states_current)", "{{state}}"))
    lay.add("Task exits per second", ("sum by (state) (rate(mesos_master_task_states_exit_total[$__rate_interval]))",
                                      "{{state}}"))
    lay.add("CPUs used / total", ('sum by (type) (mesos_master_cpus)', "{{type}}"))
    lay.add("Memory used / total", ('sum by (type) (mesos_master_mem_bytes)', "{{type}}"), unit="bytes")
    lay.add("Executor CPU by app", ('sum by (app) (rate(mesos_agent_executor_cpu_seconds_total{app=~"$app"}'
                                    '[$__rate_interval]))', "{{app}}"))
    lay.add("Executor memory by app", ('sum by (app) (mesos_agent_executor_memory_rss_bytes{app=~"$app"})',
                                       "{{app}}"), unit="bytes")
    lay.add("Exporter targets down", ('sum by (target) (1 - orchestrator_exporter_target_up{exporter="mesos"})',
                                      "{{target}}"))
    lay.add("/master/state age", ("max(mesos_master_state_age_seconds)", "age"), unit="s")
    return Dashboard(uid="orchestrator-mesos", title="Orchestrator: Mesos", panels=lay.panels,
                     templating=Templating(variables=[Variable(name="app", label="Marathon app",
                                                          query="label_values(mesos_agent_executor_cpus_limit, app)")]))


def marathon() -> Dashboard:
    lay = _Layout()
    lay.add("Leader", ("marathon_leader", "leader"), kind="stat")
    lay.add("Apps", ("marathon_apps", "apps"), kind="stat")
    lay.add("Deployments in progress", ("marathon_deployments_active", "deployments"), kind="stat")
    lay.add("Instances configured vs running",
            ('sum by (app) (marathon_app_instances{app=~"$app"})', "{{app}} configured"),
            ('sum by (app) (marathon_app_tasks{app=~"$app",state="running"})', "{{app}} running"))
    lay.add("Unhealthy tasks", ('sum by (app) (marathon_app_tasks{app=~"$app",state="unhealthy"})', "{{app}}"))
    lay.add("Apps deploying", ('sum by (app) (marathon_app_deployments{app=~"$app"}) > 0', "{{app}}"))
    return Dashboard(uid="orchestrator-marathon", title="Orchestrator: Marathon", panels=lay.panels,
                     templating=Templating(variables=[Variable(name="app", label="App",
                                                          query="label_values(marathon_app_instances, app)")]))


def zookeeper() -> Dashboard:
    lay = _Layout()
    lay.add("Servers up", ('up{job="zookeeper"}', "{{pod}}"))
    lay.add("Average latency", ('avg_latency{job="zookeeper"}', "{{pod}}"), unit="ms")
    lay.add("Outstanding requests", ('outstanding_requests{job="zookeeper"}', "{{pod}}"))
    lay.add("Leader elections", ('increase(election_time_count{job="zookeeper"}[$__rate_interval])', "{{pod}}"))
    lay.add("Sync engine lag", ("orchestrator_zk_sync_lag_seconds", "lag"), unit="s")
    return Dashboard(uid="orchestrator-zookeeper", title="Orchestrator: ZooKeeper", panels=lay.panels)


def probes() -> Dashboard:
    lay = _Layout()
    lay.add("Seconds since last report", ('time() - orchestrator_probe_last_report_timestamp_seconds{probe=~"$node"}',
                                          "{{probe}}"), unit="s")
    lay.add("Probe CPU", (f'rate({P.PROBE_CPU_SECONDS}[$__rate_interval])', "{{pod}}"), unit="percentunit")
    lay.add("Probe memory", (P.PROBE_RSS_BYTES, "{{pod}}"), unit="bytes")
    lay.add("Collection time p90", (f"histogram_quantile(0.9, sum by (le, pod) (rate({P.PROBE_COLLECT_SECONDS}"
                                    "_bucket[$__rate_interval])))", "{{pod}}"), unit="s")
    lay.add("Report size", (f"max by (kind) ({P.PROBE_REPORT_BYTES})", "{{kind}}"), unit="bytes")
    lay.add("Report outcomes", (f"sum by (result) (rate({P.PROBE_REPORTS}[$__rate_interval]))", "{{result}}"))
    lay.add("Dropped reports", (f"sum(increase({P.PROBE_REPORTS_DROPPED}[$__rate_interval]))", "dropped"))
    lay.add("Objects per node", (f"sum by (kind) ({P.PROBE_OBJECTS})", "{{kind}}"))
    return Dashboard(uid="orchestrator-probes", title="Orchestrator: probes", panels=lay.panels,
                     templating=Templating(variables=[Variable(
                         name="node", label="Node",
                         query="label_values(orchestrator_probe_last_report_timestamp_seconds, probe)")]))


def dashboards() -> list[Dashboard]:
    return [overview(), zookeeper(), mesos(), marathon(), probes()]


def files() -> dict[str, str]:
    """`<uid>.json` -> dashboard JSON (ConfigMap data, compose files)."""
    return {f"{d.uid}.json": d.to_json() for d in dashboards()}


def substitute(expr: str) -> str:
    """A panel's PromQL with Grafana's template variables replaced by values promtool accepts."""
    for var in sorted(TEMPLATE_VALUES, key=len, reverse=True):
        expr = expr.replace(var, TEMPLATE_VALUES[var])
    left = re.findall(r"\$\w+", expr)
    if left:
        raise ValueError(f"unknown template variable(s) {left} in {expr!r}")
    return expr
