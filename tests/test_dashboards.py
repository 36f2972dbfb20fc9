"""Dashboards as code: the typed models, the JSON, every panel's PromQL through promtool, and every metric
of ours a panel reads is one our exporters or the probe really export."""
from __future__ import annotations

import json
import re
import subprocess

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from components.dashboards import Dashboard, GridPos, Panel, Target, dashboards, files, substitute
from tests.support.tools import require_tool


def test_dashboards_build_and_round_trip() -> None:
    built = dashboards()
    assert [d.uid for d in built] == ["orchestrator-overview", "orchestrator-zookeeper", "orchestrator-mesos",
                                      "orchestrator-marathon", "orchestrator-probes"]
    for name, text in files().items():
        data = json.loads(text)
        assert Dashboard.model_validate(data).to_json() == text, name
        assert data["schemaVersion"] == 39 and all(p["datasource"]["uid"] == "prometheus" for p in data["panels"])
        assert all(t["refId"] for p in data["panels"] for t in p["targets"])


def test_models_refuse_bad_dashboards() -> None:
    panel = Panel(id=1, title="a", type="stat", gridPos=GridPos(x=0, y=0, w=12, h=4), targets=[Target(expr="up")])
    with pytest.raises(ValidationError, match="overlaps"):
        Dashboard(uid="x", title="x", panels=[panel, panel.model_copy(update={"id": 2})])
    with pytest.raises(ValidationError, match="unique"):
        Dashboard(uid="x", title="x", panels=[panel, panel.model_copy(update={"gridPos": GridPos(x=12, y=0, w=12, h=4)})])
    with pytest.raises(ValidationError):
        Panel(id=1, title="a", type="stat", gridPos=GridPos(x=0, y=0, w=12, h=4), targets=[])
    with pytest.raises(ValueError, match="unknown template"):
        substitute("rate(x[$nope])")


def exprs() -> list[tuple[str, str]]:
    return [(f"{d.uid}/{p.title}/{t.refId}", t.expr) for d in dashboards() for p in d.panels for t in p.targets]


def test_every_panel_query_passes_promtool(tmp_path) -> None:
    promtool = require_tool("promtool", hint="scripts/install-system-tools.sh installs Debian's prometheus")
    rules = [{"record": f"dashboard:panel_{i}", "expr": substitute(expr)} for i, (_, expr) in enumerate(exprs())]
    (tmp_path / "panels.yml").write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    out = subprocess.run([promtool, "check", "rules", str(tmp_path / "panels.yml")], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules)} rules found" in out.stdout


def exported_names() -> set[str]:
    """Sample names the exporters (against the fakes) and the probe really expose."""
    from orchestrator.clients.marathon import MarathonClient
    from orchestrator.clients.mesos import MesosClient
    from orchestrator.fakes.marathon import FakeMarathon
    from orchestrator.fakes.mesos import FakeMesos
    from orchestrator.services.exporters.marathon import MarathonCollector
    from orchestrator.services.exporters.mesos import MesosCollector
    from orchestrator.services.probe.agent import ProbeMetrics

    texts = []
    with FakeMesos(masters=1, agents=1) as mesos, FakeMarathon(instances=1) as marathon:
        t = mesos.add_marathon_task("/a")
        t.cpu_seconds = 1.0
        marathon.add_app({"id": "/a", "instances": 1})
        with MesosClient(mesos.master_urls) as mc:
            collector = MesosCollector(mc, mc.masters)
            registry = CollectorRegistry()
            registry.register(collector)
            texts.append(generate_latest(registry).decode())
            collector.close()
        client = MarathonClient(marathon.urls, retries=0)
        registry = CollectorRegistry()
        registry.register(MarathonCollector(client))
        texts.append(generate_latest(registry).decode())
        client.close()
    from orchestrator.services.probe.collector import Collector

    metrics = ProbeMetrics()
    metrics.observe(Collector("n", "/proc", "/sys/fs/cgroup").collect(0))  # what a first interval sets
    metrics.report_bytes.labels("full").set(1)  # set by the first publish
    texts.append(generate_latest(metrics.registry).decode())
    return {s.name for text in texts for f in text_string_to_metric_families(text) for s in f.samples}


def test_our_metrics_in_panels_exist() -> None:
    ours = re.compile(r"\b((?:mesos|marathon|orchestrator_probe|orchestrator_exporter)_[a-z_]+)\b")
    used = {m for _, expr in exprs() for m in ours.findall(expr)}
    # The API exports the last-report timestamp (orchestrator/services/api); the rest is ours here.
    used.discard("orchestrator_probe_last_report_timestamp_seconds")
    assert len(used) > 20
    missing = used - exported_names()
    assert not missing, f"panels read metrics nobody exports: {sorted(missing)}"
