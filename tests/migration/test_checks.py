"""The gate checks on their own, against the one fake Mesos: leader detection through a standby, master
health, the drain gate; and the sync engine's metrics."""
from __future__ import annotations

from orchestrator.services.migration import checks as C
from tests.migration.helpers import StaticHttp

ENGINE_METRICS = """# HELP orchestrator_zk_sync_up x
orchestrator_zk_sync_up 1.0
orchestrator_zk_sync_lag_seconds {lag}
orchestrator_zk_sync_errors_total 0.0
orchestrator_zk_sync_info{{paths="/mesos",source="a1:2181,a2:2181",target="b1:2181"}} 1.0
"""


def test_the_leader_is_found_through_a_standby(mesos):
    leader_url, standby_url = mesos.master_urls[0], mesos.master_urls[1]  # master 0 leads
    state, error = C.leader_state([standby_url])
    assert state is not None and state.pid == mesos.master_pid(0) == state.leader, error
    assert C.mesos_leader_in("A", [leader_url], state, error).ok
    assert not C.mesos_leader_in("B", [standby_url], state, error).ok
    mesos.no_leader()  # none elected: 503, reported as a failing check rather than an exception
    got, error = C.leader_state([standby_url, leader_url])
    assert got is None and "503" in error
    assert not C.mesos_leader_in("A", [leader_url], got, error).ok


def test_masters_stopped_and_healthy(mesos):
    url = mesos.master_urls[2]
    assert C.masters_healthy("B", [url]).ok and not C.masters_stopped("B", [url]).ok
    mesos.stop_master(2)
    assert C.masters_stopped("B", [url]).ok and not C.masters_healthy("B", [url]).ok


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
    mesos.add_agent("agent-a1")
    task = mesos.add_marathon_task("/app", agent=0)
    state, error = C.leader_state(mesos.master_urls)
    typo = C.agents_drained(["agent-al"], state, error)  # "l" for "1": the gate compared nothing
    assert not typo.ok and "nothing to check" in typo.detail
    busy = C.agents_drained(["agent-a1", "agent-a2"], state, error)
    assert not busy.ok and busy.detail == "agent-a1: 1 live tasks (agent-a2 unknown to the leader)"
    mesos.finish_task(task.id)
    drained = C.agents_drained(["agent-a1"], *C.leader_state(mesos.master_urls))
    assert drained.ok and drained.detail == "no live tasks on 1 of 1 agents"


def test_task_failures_come_from_the_leaders_counters(mesos):
    mesos.add_agent("agent-a1")
    state, _ = C.leader_state(mesos.master_urls)
    assert C.task_failures(mesos.master_urls, state) == 0
    for final in ("TASK_FAILED", "TASK_LOST", "TASK_FINISHED"):
        mesos.finish_task(mesos.add_marathon_task("/app").id, final)
    assert C.task_failures(mesos.master_urls, state) == 2  # a finished task is no failure
    check = C.no_new_task_failures(0, C.task_failures(mesos.master_urls, state))
    assert not check.ok and check.detail == "2 failed/lost since the migration began"
