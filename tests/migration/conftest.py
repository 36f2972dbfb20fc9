"""Real ZooKeeper ensembles (shared with tests/zk), fake Mesos masters and Marathon, moto S3, and the world
the migration runs in."""
from __future__ import annotations

import stat

import pytest

from tests.migration.fakes import FakeMarathon, MesosCluster
from tests.migration.helpers import AUTH, AUTH_ENV, HOOK, Engine
from tests.support.s3 import mocked_s3
from tests.support.zk_ensemble import free_ports
from tests.zk.conftest import ensembles, zk  # noqa: F401  (fixtures)


@pytest.fixture
def mesos():
    cluster = MesosCluster()
    cluster.frameworks.append({"id": "20150101-000000-16777343-5050-1234-0000", "name": "marathon", "active": True,
                               "tasks": []})
    yield cluster
    for m in cluster.masters:
        m.stop()


@pytest.fixture
def marathon():
    m = FakeMarathon()
    yield m
    m.stop()


@pytest.fixture
def s3(monkeypatch):
    yield from mocked_s3(monkeypatch, "zk-archive")


@pytest.fixture
def world(zk, mesos, marathon, s3, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv(AUTH_ENV, AUTH)
    zk.ca.create(zk.root, b"")
    zk.ca.create(f"{zk.root}/state", b"framework state")
    a1, a2 = mesos.add_master(), mesos.add_master()
    mesos.leader = a1
    agent_a = mesos.add_agent("agent-a1")
    mesos.run_task(agent_a)
    b_placeholder = mesos.add_master()  # B's master address before it runs: nothing answers there
    b_placeholder.stop()
    engine = Engine(zk, free_ports(1)[0])
    calls = tmp_path / "hook-calls"
    hook = tmp_path / "hook.sh"
    hook.write_text(HOOK.format(calls=calls))
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    config = {"source": zk.a.connect_string, "target": zk.b.connect_string, "paths": [zk.root],
              "auth": f"env:{AUTH_ENV}", "masters_a": [a1.url, a2.url], "masters_b": [b_placeholder.url],
              "agents_a": ["agent-a1"], "agents_b": ["agent-b1"], "marathon": [marathon.url],
              "sync_metrics": f"http://127.0.0.1:{engine.port}/metrics", "archive": "s3://zk-archive/ensemble-a",
              "max_lag_seconds": 5.0}
    w = type("World", (), dict(zk=zk, mesos=mesos, marathon=marathon, s3=s3, engine=engine, config=config,
                               tmp=tmp_path, hook=hook, calls=calls, state=tmp_path / "state.json",
                               a_masters=[a1, a2]))
    yield w
    engine.stop()
