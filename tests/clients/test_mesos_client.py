"""The one Mesos client against the one fake Mesos (real HTTP on loopback)."""
from __future__ import annotations

import json

import pytest

from orchestrator.clients.mesos import (
    AgentState,
    Credentials,
    MasterState,
    MesosAuthError,
    MesosClient,
    MesosNoLeader,
    MesosProtocolError,
    load_credentials,
    marathon_app_id,
    parse_metrics_snapshot,
)
from orchestrator.errors import ExitCode, UnreachableError
from orchestrator.fakes.mesos import FakeMesos


@pytest.fixture
def mesos():
    with FakeMesos(masters=3, agents=2) as fake:
        yield fake


def test_leader_found_from_any_master_and_state_read(mesos: FakeMesos) -> None:
    mesos.elect(2)
    task = mesos.add_marathon_task("/shop/web", agent=1)
    with MesosClient(mesos.master_urls) as client:
        assert client.find_leader() == mesos.master_urls[2]
        state = client.master_state()
    assert state.is_leader and state.pid == mesos.master_pid(2)
    assert [a.id for a in state.agents] == ["fake-agent-S0", "fake-agent-S1"]
    (framework,) = state.frameworks
    assert framework.name == "marathon" and [t.id for t in framework.tasks] == [task.id]
    assert framework.tasks[0].container_id == task.container_id


def test_standby_redirect_followed_once_and_leader_remembered(mesos: FakeMesos) -> None:
    with MesosClient(mesos.master_urls) as client:
        assert client.master_state().pid == mesos.master_pid(0)
        mesos.elect(1)  # the cached leader (0) is now a standby: it answers 307 to master 1
        state = client.master_state()
        assert state.pid == mesos.master_pid(1) and client.leader == mesos.master_urls[1]
    assert mesos.requests[("master", 0, "/master/state")] == 2
    assert mesos.requests[("master", 1, "/master/state")] == 1


def test_leader_gone_then_reresolved(mesos: FakeMesos) -> None:
    with MesosClient(mesos.master_urls, timeout=2) as client:
        client.master_state()
        mesos.stop_master(0)
        with pytest.raises(MesosNoLeader):  # 503 from the surviving masters' /master/redirect
            client.master_state()
        mesos.elect(2)
        assert client.master_state().pid == mesos.master_pid(2)


def test_nothing_answers_is_unreachable() -> None:
    fake = FakeMesos(masters=1, agents=0)
    url = fake.master_urls[0]
    fake.close()
    with MesosClient([url], timeout=1) as client, pytest.raises(UnreachableError) as err:
        client.master_state()
    assert err.value.exit_code == ExitCode.UNREACHABLE and url in str(err.value)


def test_snapshots_per_master(mesos: FakeMesos) -> None:
    mesos.add_marathon_task("/a", state="TASK_RUNNING")
    with MesosClient(mesos.master_urls) as client:
        leader = client.master_snapshot(mesos.master_urls[0])
        standby = client.master_snapshot(mesos.master_urls[1])
    assert leader["master/elected"] == 1.0 and leader["master/tasks_running"] == 1.0
    assert standby["master/elected"] == 0.0 and "master/tasks_running" not in standby


def test_agent_state_and_statistics(mesos: FakeMesos) -> None:
    task = mesos.add_marathon_task("/shop/db", agent=0)
    with MesosClient(mesos.master_urls) as client:
        state = client.agent_state(mesos.agent_urls[0])
        stats = client.agent_statistics(mesos.agent_urls[0])
        other = client.agent_state(mesos.agent_urls[1])
    ((framework, executor),) = list(state.executors())
    assert framework.name == "marathon" and executor.container == task.container_id
    assert [t.id for t in executor.tasks] == [task.id]
    assert stats[0].executor_id == task.id and "mem_rss_bytes" in stats[0].statistics
    assert list(other.executors()) == []


def test_basic_auth(tmp_path) -> None:
    creds = Credentials("prometheus", "s3cret")
    with FakeMesos(masters=1, agents=1, credentials=creds) as fake:
        with MesosClient(fake.master_urls) as anonymous, pytest.raises(MesosAuthError) as err:
            anonymous.master_state()
        assert err.value.exit_code == ExitCode.INPUT and "s3cret" not in str(err.value)
        secret_file = tmp_path / "password"
        secret_file.write_text("s3cret\n")
        with MesosClient(fake.master_urls, load_credentials(secret_file, principal="prometheus")) as client:
            assert client.master_state().is_leader
            assert client.agent_state(fake.agent_urls[0]).id == "fake-agent-S0"


def test_credentials_file_forms(tmp_path) -> None:
    pair = tmp_path / "pair"
    pair.write_text("ops:pw1\n")
    assert load_credentials(pair) == Credentials("ops", "pw1")
    mesos_json = tmp_path / "creds.json"
    mesos_json.write_text(json.dumps({"credentials": [{"principal": "a", "secret": "x"},
                                                      {"principal": "b", "secret": "y"}]}))
    assert load_credentials(mesos_json) == Credentials("a", "x")
    assert load_credentials(mesos_json, principal="b") == Credentials("b", "y")
    assert "y" not in repr(load_credentials(mesos_json, principal="b")).replace("principal='b'", "")
    bad = tmp_path / "bad"
    bad.write_text("no-colon")
    from orchestrator.errors import InputError
    with pytest.raises(InputError, match="bad: expected 'principal:secret'"):
        load_credentials(bad)
    with pytest.raises(InputError, match="missing"):
        load_credentials(tmp_path / "missing")


def test_legacy_shapes_parse() -> None:
    with FakeMesos(masters=2, agents=1, legacy=True, version="0.28.0") as fake:
        fake.add_marathon_task("/old")
        with MesosClient(fake.master_urls) as client:
            state = client.master_state()
    assert state.is_leader and state.leader_info is None
    assert state.frameworks[0].connected is True and state.frameworks[0].tasks[0].container_id is None


def test_models_tolerate_nulls_strings_and_missing() -> None:
    state = MasterState.model_validate({
        "pid": "master@1.2.3.4:5050", "leader": "master@1.2.3.4:5050", "elected_time": None,
        "slaves": [{"id": "s1", "resources": {"cpus": "2", "mem": None}, "active": None}],
        "frameworks": [{"id": "f", "tasks": [{"id": "t", "statuses": None, "resources": None}]}],
        "unknown_future_field": {"x": 1},
    })
    assert state.is_leader and state.slaves[0].resources.cpus == 2.0 and state.slaves[0].active
    assert state.frameworks[0].tasks[0].statuses == []
    assert AgentState.model_validate({}).frameworks == []
    assert parse_metrics_snapshot({"a": 1, "b": "2.5", "c": "x", "d": None, "e": True}) == \
        {"a": 1.0, "b": 2.5, "e": 1.0}
    with pytest.raises(MesosProtocolError):
        parse_metrics_snapshot([1, 2])


@pytest.mark.parametrize(("task_id", "app"), [
    ("hello.dc130e23-df88-11e4-b9ec-080027fc1312", "/hello"),
    ("shop_web.marathon-0b7fe4b0-4d29-11e6-8e83-0242ac110003", "/shop/web"),
    ("shop_web.instance-0b7fe4b0-4d29-11e6-8e83-0242ac110003._app.3", "/shop/web"),
    ("dotted.name_api.instance-0b7fe4b0-4d29-11e6-8e83-0242ac110003", "/dotted.name/api"),
    ("not-marathon-task-7", None),
    ("", None),
])
def test_marathon_app_id(task_id: str, app: str | None) -> None:
    assert marathon_app_id(task_id) == app
