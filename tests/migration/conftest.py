"""Real ZooKeeper ensembles (shared with tests/zk), fake Mesos masters and Marathon, moto S3, and the world
the migration runs in."""
from __future__ import annotations

import stat

import pytest

from orchestrator.fakes.marathon import FakeMarathon
from orchestrator.fakes.mesos import FakeMesos
from tests.migration.helpers import AUTH, AUTH_ENV, HOOK, Engine
from tests.support.s3 import mocked_s3
from tests.support.zk_ensemble import free_ports
from tests.zk.conftest import ensembles, zk  # noqa: F401  (fixtures)


@pytest.fixture
def mesos():
    """The one fake Mesos: masters 0 and 1 are A's (0 leads), master 2 is B's, no agents yet."""
    with FakeMesos(masters=3, agents=0) as fake:
        fake.marathon_framework()
        yield fake


@pytest.fixture
def marathon():
    with FakeMarathon(instances=1) as fake:
        yield fake


@pytest.fixture
def s3(monkeypatch):
    yield from mocked_s3(monkeypatch, "zk-archive")


@pytest.fixture
def world(zk, mesos, marathon, s3, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv(AUTH_ENV, AUTH)
    zk.ca.create(zk.root, b"")
    zk.ca.create(f"{zk.root}/state", b"framework state")
    a1, a2, b1 = mesos.master_urls
    mesos.add_agent("agent-a1")
    mesos.add_marathon_task("/app", agent=0)
    engine_port, b_placeholder = free_ports(2)  # B's master address before it runs: nothing answers there
    engine = Engine(zk, engine_port)
    calls = tmp_path / "hook-calls"
    hook = tmp_path / "hook.sh"
    hook.write_text(HOOK.format(calls=calls))
    hook.chmod(hook.stat().st_mode | stat.S_IEXEC)
    config = {"source": zk.a.connect_string, "target": zk.b.connect_string, "paths": [zk.root],
              "auth": f"env:{AUTH_ENV}", "masters_a": [a1, a2],
              "masters_b": [f"http://127.0.0.1:{b_placeholder}"],
              "agents_a": ["agent-a1"], "agents_b": ["agent-b1"], "marathon": marathon.urls,
              "sync_metrics": f"http://127.0.0.1:{engine.port}/metrics", "archive": "s3://zk-archive/ensemble-a",
              "max_lag_seconds": 5.0}
    w = type("World", (), dict(zk=zk, mesos=mesos, marathon=marathon, s3=s3, engine=engine, config=config,
                               tmp=tmp_path, hook=hook, calls=calls, state=tmp_path / "state.json",
                               b_master=b1))
    yield w
    engine.stop()
