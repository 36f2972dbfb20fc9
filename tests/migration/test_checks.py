"""The gate checks on their own: Mesos redirects and leader detection, the sync engine's metrics."""
from __future__ import annotations

from orchestrator.services.migration import checks as C
from tests.migration.fakes import StaticHttp

ENGINE_METRICS = """# HELP orchestrator_zk_sync_up x
orchestrator_zk_sync_up 1.0
orchestrator_zk_sync_lag_seconds {lag}
orchestrator_zk_sync_errors_total 0.0
orchestrator_zk_sync_info{{paths="/mesos",source="a1:2181,a2:2181",target="b1:2181"}} 1.0
"""


def test_standby_redirect_is_followed_once_to_the_leader(mesos):
    leader, standby = mesos.add_master(), mesos.add_master()
    mesos.leader = leader
    state = C.mesos_state(standby.url)
    assert state["pid"] == leader.pid == state["leader"]
    check = C.mesos_leader_in("A", [leader.url], *C.leader_state([standby.url]))
    assert check.ok, check.detail
    assert not C.mesos_leader_in("B", [standby.url], *C.leader_state([standby.url])).ok
    mesos.leader = None  # no leader known: 503, reported as a failure rather than an exception
    got, error = C.leader_state([standby.url, leader.url])
    assert got is None and "HTTP 503" in error


def test_masters_stopped_and_healthy(mesos):
    m = mesos.add_master()
    assert C.masters_healthy("A", [m.url]).ok and not C.masters_stopped("A", [m.url]).ok
    m.stop()
    assert C.masters_stopped("A", [m.url]).ok and not C.masters_healthy("A", [m.url]).ok


def test_sync_gate_checks_direction_and_lag():
    page = StaticHttp(ENGINE_METRICS.format(lag="0.004"))
    try:
        assert C.sync_healthy(page.url, "a2:2181,a1:2181", "b1:2181", 0.05).ok
        reversed_ = C.sync_healthy(page.url, "b1:2181", "a1:2181,a2:2181", 0.05)
        assert not reversed_.ok and "not syncing" in reversed_.detail
        page.text = ENGINE_METRICS.format(lag="0.7")
        slow = C.sync_healthy(page.url, "a1:2181,a2:2181", "b1:2181", 0.5)
        assert not slow.ok and "lag=700.0ms" in slow.detail
        assert not C.sync_stopped(page.url).ok
    finally:
        page.stop()
    assert C.sync_stopped(page.url).ok  # nothing answers any more


def test_zookeeper_quorum_through_four_letter_commands(ensembles):
    a, _ = ensembles
    assert C.zk_quorum("A", a.connect_string).ok
    assert not C.zk_quorum("A", a.connect_string + ",127.0.0.1:1").ok  # a listed server that is down


def test_the_drain_gate_never_passes_for_agents_the_leader_does_not_know(mesos):
    leader = mesos.add_master()
    mesos.leader = leader
    on_a = mesos.add_agent("agent-a1")
    mesos.run_task(on_a)
    state, error = C.leader_state([leader.url])
    typo = C.agents_drained(["agent-al"], state, error)  # "l" for "1": the gate compared nothing
    assert not typo.ok and "nothing to check" in typo.detail
    busy = C.agents_drained(["agent-a1", "agent-a2"], state, error)
    assert not busy.ok and busy.detail == "agent-a1: 1 live tasks (agent-a2 unknown to the leader)"
    mesos.frameworks[0]["tasks"].clear()
    drained = C.agents_drained(["agent-a1"], *C.leader_state([leader.url]))
    assert drained.ok and drained.detail == "no live tasks on 1 of 1 agents"
