"""The Mesos exporter against the fake Mesos (real HTTP on loopback)."""
from __future__ import annotations

import re
import subprocess

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.clients.mesos import MesosClient
from orchestrator.fakes.mesos import FakeMesos
from orchestrator.services.exporters.mesos import MesosCollector
from tests.support.tools import require_tool


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def scrape(collector: MesosCollector) -> tuple[str, dict[tuple[str, frozenset], float]]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return text, samples


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def series(samples: dict, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


@pytest.fixture
def cluster():
    with FakeMesos(masters=3, agents=2) as fake:
        web = [fake.add_marathon_task("/shop/web", agent=i % 2) for i in range(3)]
        db = fake.add_marathon_task("/shop/db", agent=1, state="TASK_STAGING")
        for t in web + [db]:
            t.cpu_seconds, t.rss_bytes = 10.0, 50 * 2**20
        other = fake.add_framework("spark")
        fake.add_task("driver-1", other, agent=0)
        failed = fake.add_marathon_task("/shop/web", agent=0)
        fake.finish_task(failed.id, "TASK_FAILED")
        yield fake


def test_master_agent_and_executor_series(cluster: FakeMesos) -> None:
    m = [u.split("//")[1] for u in cluster.master_urls]
    a = [u.split("//")[1] for u in cluster.agent_urls]
    with MesosClient(cluster.master_urls) as client:
        collector = MesosCollector(client, client.masters)
        text, s = scrape(collector)
        collector.close()
    assert [value(s, "mesos_master_elected", master=x) for x in m] == [1.0, 0.0, 0.0]
    assert value(s, "mesos_master_slaves_state", master=m[0], state="connected_active") == 2.0
    assert value(s, "mesos_master_frameworks_state", master=m[0], state="connected_active") == 2.0
    assert value(s, "mesos_master_task_states_current", master=m[0], state="running") == 4.0
    assert value(s, "mesos_master_task_states_current", master=m[0], state="staging") == 1.0
    assert value(s, "mesos_master_task_states_exit_total", master=m[0], state="failed") == 1.0
    assert value(s, "mesos_master_task_states_exit_total", master=m[0], state="errored") == 0.0
    # Standbys export only elected and uptime: no zeros that would mislead sums over masters.
    assert {lbl["master"] for lbl in series(s, "mesos_master_task_states_current")} == {m[0]}
    assert value(s, "mesos_master_framework_tasks", framework="marathon", state="running") == 3.0
    assert value(s, "mesos_master_framework_tasks", framework="marathon", state="staging") == 1.0
    assert value(s, "mesos_agent_registered", agent=a[0]) == 1.0
    # Executors summed per (agent, framework, app): 2 web tasks on agent 0 -> 20 s, 1 web + 1 db on agent 1.
    assert value(s, "mesos_agent_executor_cpu_seconds_total", agent=a[0], framework="marathon", app="/shop/web") \
        == pytest.approx(20.0)
    assert value(s, "mesos_agent_executor_memory_rss_bytes", agent=a[1], framework="marathon", app="/shop/db") \
        == 50 * 2**20
    assert value(s, "mesos_agent_executor_cpu_seconds_total", agent=a[0], framework="spark", app="") == 0.0
    assert not any("task" in k for lbl in series(s, "mesos_agent_executor_cpu_seconds_total") for k in lbl)
    assert all(v == 1.0 for (n, _), v in s.items() if n == "orchestrator_exporter_target_up")
    promtool = require_tool("promtool", hint="scripts/install-system-tools.sh installs Debian's prometheus")
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_state_at_most_once_per_interval_whatever_the_scrape_rate(cluster: FakeMesos) -> None:
    clock = Clock()
    with MesosClient(cluster.master_urls) as client:
        collector = MesosCollector(client, client.masters, state_interval=30, clock=clock)
        for _ in range(5):
            scrape(collector)
            clock.now += 5
        assert cluster.state_requests() == 1   # 5 scrapes in 25 s
        clock.now += 5
        scrape(collector)
        assert cluster.state_requests() == 2   # 30 s after the first
        collector.close()


def test_vanished_app_and_agent_leave_no_series(cluster: FakeMesos) -> None:
    with MesosClient(cluster.master_urls) as client:
        collector = MesosCollector(client, client.masters, discover_agents=False, agents=cluster.agent_urls)
        _, before = scrape(collector)
        assert any(lbl.get("app") == "/shop/db" for lbl in series(before, "mesos_agent_executor_memory_rss_bytes"))
        for task in [t for t in cluster.tasks.values() if t.name == "shop_db"]:
            cluster.remove_task(task.id)
        _, after = scrape(collector)
        collector.close()
    for name in ("mesos_agent_executor_memory_rss_bytes", "mesos_agent_executor_cpu_seconds_total",
                 "mesos_agent_executor_cpus_limit", "mesos_agent_executor_memory_limit_bytes"):
        assert all(lbl.get("app") != "/shop/db" for lbl in series(after, name)), name


def test_leader_change_and_a_dead_master(cluster: FakeMesos) -> None:
    m = [u.split("//")[1] for u in cluster.master_urls]
    with MesosClient(cluster.master_urls, timeout=1) as client:
        collector = MesosCollector(client, client.masters, discover_agents=False)
        scrape(collector)
        cluster.stop_master(0)
        cluster.elect(2)
        _, s = scrape(collector)
        _, s2 = scrape(collector)
        collector.close()
    assert value(s, "mesos_master_elected", master=m[2]) == 1.0
    assert value(s, "mesos_master_elected", master=m[0]) is None
    assert value(s, "orchestrator_exporter_target_up", exporter="mesos", target=m[0]) == 0.0
    assert value(s2, "orchestrator_exporter_scrape_errors_total", exporter="mesos", target=m[0]) == 2.0
    assert value(s, "mesos_master_slaves_state", master=m[2], state="connected_active") == 2.0


def test_legacy_master_shapes() -> None:
    with FakeMesos(masters=1, agents=1, legacy=True, version="0.28.0") as fake:
        fake.add_marathon_task("/old/app")
        with MesosClient(fake.master_urls) as client:
            collector = MesosCollector(client, client.masters)
            _, s = scrape(collector)
            collector.close()
    assert value(s, "mesos_master_framework_tasks", framework="marathon", state="running") == 1.0
    assert value(s, "mesos_master_agent_active", agent="fake-agent-S0", hostname="127.0.0.1") == 1.0


def test_every_mesos_metric_the_alert_rules_use_is_exported(cluster: FakeMesos) -> None:
    from components.monitoring import alert_rules

    exprs = [r["expr"] for g in alert_rules(3)["groups"] for r in g["rules"]]
    used = {name for expr in exprs for name in re.findall(r"(?<![:\w])(mesos_[a-z_]+)\b", expr)}
    assert used, "the rules no longer use Mesos metrics: update this test"
    with MesosClient(cluster.master_urls) as client:
        collector = MesosCollector(client, client.masters)
        _, s = scrape(collector)
        collector.close()
    exported = {name for name, _ in s}
    assert used <= exported, f"rules use metrics the exporter does not export: {sorted(used - exported)}"
    states = {lbl["state"] for lbl in series(s, "mesos_master_slaves_state")}
    assert "connected_active" in states
    exit_states = {lbl["state"] for lbl in series(s, "mesos_master_task_states_exit_total")}
    assert {"failed", "errored", "lost"} <= exit_states
