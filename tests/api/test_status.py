"""Platform status per part: a real ZooKeeper ensemble through the 4-letter words, the one fake Mesos, the one
fake Marathon, the sync engine's real metric exposition, and the canary gates through a Prometheus query stub."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import start_http_server

from orchestrator.fakes.mesos import FakeMesos
from orchestrator.services.api.server import state_from_config
from orchestrator.services.zk.metrics import SyncMetrics
from tests.api.conftest import ApiFiles, RunningApi, start_api
from tests.support.prometheus import PrometheusStub
from tests.support.zk_ensemble import LocalEnsemble, free_ports


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnsemble]:
    ens = LocalEnsemble(tmp_path_factory.mktemp("zk-status"), size=3, heap_mb=128)
    try:
        ens.start()
        ens.wait_quorum()
        yield ens
    finally:
        ens.stop()


@pytest.fixture
def platform(api_files: ApiFiles, ensemble: LocalEnsemble, fake_marathon) -> Iterator[tuple[RunningApi, dict]]:
    sync = SyncMetrics()
    sync.up.set(1)
    sync._last_lag = 0.012
    server, thread = start_http_server(0, addr="127.0.0.1", registry=sync.registry)
    prometheus = PrometheusStub()
    prometheus.values = {"canary-error-rate": 0.002, "canary-p99": 3.0}
    (unused,) = free_ports(1)
    with FakeMesos(masters=2, agents=2) as mesos:
        mesos.add_marathon_task("/shop/web", agent=0)
        mesos.add_marathon_task("/shop/web", agent=1, state="TASK_STAGING")
        api_files.write(
            zookeeper={"servers": [f"127.0.0.1:{n.client_port}" for n in ensemble.nodes] + [f"127.0.0.1:{unused}"],
                       "timeout_seconds": 2},
            mesos={"masters": mesos.master_urls}, marathon={"urls": fake_marathon.urls},
            zk_sync_metrics_url=f"http://127.0.0.1:{server.server_address[1]}/metrics",
            prometheus={"url": prometheus.url, "canary_gates": [
                {"name": "error-rate", "query": "canary-error-rate", "threshold": "< 0.01"},
                {"name": "latency-p99", "query": "canary-p99", "threshold": "< 2"}]},
            status_cache_seconds=0)
        running = start_api(state_from_config(str(api_files.config), reload_every=0))
        try:
            yield running, {"mesos": mesos, "sync": sync, "prometheus": prometheus}
        finally:
            running.stop()
            prometheus.stop()
            server.shutdown()


def test_status_document_and_parts(platform: tuple[RunningApi, dict], ensemble: LocalEnsemble) -> None:
    api, parts = platform
    with api.client("viewer") as client:
        status = client.get("/api/v1/status").json()
        zk_part = client.get("/api/v1/status/zookeeper").json()
    zk = status["zookeeper"]
    leader = ensemble.leader()
    assert leader is not None and zk["leader"] == f"127.0.0.1:{leader.client_port}"
    assert zk["quorum"] is True and zk["health"] == "warning"   # 3 real servers serve, the 4th address is down
    modes = sorted(s.get("mode") or "down" for s in zk["servers"])
    assert modes == ["down", "follower", "follower", "leader"]
    assert zk_part["leader"] == zk["leader"]

    mesos = status["mesos"]
    assert mesos["leader"] and mesos["agents_active"] == 2 and mesos["frameworks"] == ["marathon"]
    assert mesos["tasks"] == {"TASK_RUNNING": 1, "TASK_STAGING": 1}

    marathon = status["marathon"]
    assert marathon["health"] == "healthy" and marathon["apps"] == 2 and marathon["leader"]

    sync = status["zk_sync"]
    assert sync["health"] == "healthy" and sync["lag_seconds"] == pytest.approx(0.012)

    canary = status["canary"]
    assert [(g["name"], g["ok"]) for g in canary["gates"]] == [("error-rate", True), ("latency-p99", False)]
    assert canary["health"] == "critical" and "latency-p99" in canary["summary"]


def test_a_lost_quorum_and_dead_parts_are_reported_not_raised(platform: tuple[RunningApi, dict],
                                                              ensemble: LocalEnsemble) -> None:
    api, parts = platform
    parts["mesos"].no_leader()
    parts["sync"].up.set(0)
    parts["prometheus"].stop()
    followers = [n for n in ensemble.nodes if ensemble.mode(n) == "follower"]
    for node in followers:
        ensemble.stop_node(node)
    try:
        with api.client("viewer") as client:
            status = client.get("/api/v1/status").json()
    finally:
        ensemble.start(lambda n: n.proc is None)
        ensemble.wait_quorum()
    assert status["zookeeper"]["quorum"] is False and status["zookeeper"]["health"] == "critical"
    assert status["mesos"]["health"] == "critical" and status["mesos"]["leader"] is None
    assert status["zk_sync"]["health"] == "critical"
    assert status["canary"]["health"] == "unknown"
    assert all(g["value"] is None for g in status["canary"]["gates"])


def test_unconfigured_parts_are_unknown(api: RunningApi) -> None:
    with api.client("viewer") as client:
        status = client.get("/api/v1/status").json()
    assert {status[p]["health"] for p in ("zookeeper", "mesos", "zk_sync", "canary")} == {"unknown"}
    assert status["marathon"]["health"] == "healthy"
