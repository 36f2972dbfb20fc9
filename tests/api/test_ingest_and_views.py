"""Probe reports in (gzip, limits, schema, deltas), views, search, grouping, details, probe states out."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from orchestrator.contracts.report import MAX_BODY_BYTES, MAX_DECOMPRESSED_BYTES
from orchestrator.services.api.server import state_from_config
from tests.api.conftest import ApiFiles, RunningApi, start_api
from tests.api.requests_for_routes import full_report

JSON = {"Content-Type": "application/json"}


def topology(i: int, peer: int | None) -> dict:
    """Host i runs one container with a listening process; with `peer`, it connects to host peer's."""
    addr = f"10.0.0.{i}"
    cid = f"{i:02d}" * 32
    conns = [{"state": "listen", "local_ip": addr, "local_port": 8080, "pid": 100}]
    if peer is not None:
        conns.append({"state": "established", "local_ip": addr, "local_port": 40000, "remote_ip": f"10.0.0.{peer}",
                      "remote_port": 8080, "pid": 100})
    return full_report(
        probe=f"node-{i}", host={"hostname": f"node-{i}", "addresses": [addr], "cpu_percent": 10.0 * i},
        processes=[{"pid": 100, "name": "web", "container_id": cid, "cpu_percent": 5.0 * i}],
        containers=[{"id": cid, "runtime": "containerd", "name": f"web-{i}", "namespace": "prod" if i % 2 else "dev",
                     "pod_uid": f"uid-{i}", "pod_name": f"web-{i}", "labels": {"app": "web"},
                     "cpu_percent": 5.0 * i, "memory_bytes": 1e8}],
        connections=conns)


def post(api: RunningApi, report: dict | bytes, headers: dict | None = None):
    body = report if isinstance(report, bytes) else json.dumps(report).encode()
    with api.client("probe") as client:
        return client.post("/api/v1/reports", content=body, headers={**JSON, **(headers or {})})


def test_reports_build_views_edges_search_and_groups(api: RunningApi) -> None:
    assert post(api, topology(1, peer=2)).status_code == 200
    gz = gzip.compress(json.dumps(topology(2, peer=None)).encode())
    assert post(api, gz, {"Content-Encoding": "gzip"}).status_code == 200
    with api.client("viewer") as client:
        hosts = client.get("/api/v1/topology/hosts").json()
        containers = client.get("/api/v1/topology/containers").json()
        hot = client.get("/api/v1/topology/containers", params={"search": "cpu>7 namespace:dev"}).json()
        grouped = client.get("/api/v1/topology/containers", params={"group_by": "namespace"}).json()
        services = client.get("/api/v1/topology/services").json()
        details = client.get("/api/v1/topology/hosts/nodes/host:node-1").json()
    assert {n["id"] for n in hosts["nodes"]} == {"host:node-1", "host:node-2"}
    assert hosts["edges"] == [{"source": "host:node-1", "target": "host:node-2", "connections": 1}]
    assert containers["edges"] == [{"source": "container:" + "01" * 32, "target": "container:" + "02" * 32,
                                    "connections": 1}]
    assert [n["label"] for n in hot["nodes"]] == ["web-2"] and hot["total_nodes"] == 2
    groups = {n["id"]: n["count"] for n in grouped["nodes"] if n["kind"] == "group"}
    assert groups == {"group:namespace:prod": 1, "group:namespace:dev": 1}
    assert {n["parent"] for n in grouped["nodes"] if n["kind"] == "container"} == set(groups)
    assert {n["id"] for n in services["nodes"]} == {"service:prod/web", "service:dev/web"}
    assert details["samples"][-1]["cpu"] == 10.0 and details["interval_seconds"] == 15
    assert [n["id"] for n in details["neighbours"]] == ["host:node-2"]


def test_delta_applies_on_its_base_only(api: RunningApi) -> None:
    post(api, topology(1, peer=None))
    delta = {**full_report(probe="node-1", seq=2), "kind": "delta", "base_seq": 1, "removed_containers": ["01" * 32]}
    assert post(api, delta).json() == {"probe_id": "node-1", "seq": 2, "next": "delta"}
    with api.client("viewer") as client:
        assert client.get("/api/v1/topology/containers").json()["nodes"] == []
    stale = {**delta, "seq": 9, "base_seq": 7}
    response = post(api, stale)
    assert response.status_code == 409 and response.json()["next"] == "full"


@pytest.mark.parametrize(("body", "headers", "status", "detail"), [
    (b"{}", {"Content-Type": "text/plain"}, 415, "application/json"),
    (b"not json", {}, 422, "report"),
    (json.dumps(full_report(seq=-1)).encode(), {}, 422, "seq"),
    (json.dumps({**full_report(), "schema_version": 0}).encode(), {}, 422, "schema_version"),
    (b"x" * 10, {"Content-Encoding": "gzip"}, 422, "gzip"),
    (b"x", {"Content-Encoding": "br"}, 415, "Content-Encoding"),
    (b"x" * (MAX_BODY_BYTES + 1), {}, 413, "at most"),
    (gzip.compress(b" " * (MAX_DECOMPRESSED_BYTES + 10)), {"Content-Encoding": "gzip"}, 413, "decompressed"),
])
def test_bad_reports_are_refused_and_change_nothing(api: RunningApi, body: bytes, headers: dict, status: int,
                                                    detail: str) -> None:
    response = post(api, body, headers)
    assert response.status_code == status, response.text
    assert detail in response.json()["detail"]
    assert api.state.topology.probes == {} and api.state.reports.labels("accepted")._value.get() == 0


def test_probe_states_and_last_report_metric(api: RunningApi) -> None:
    post(api, topology(1, peer=None))
    post(api, topology(2, peer=None))
    topo = api.state.topology
    topo.probes["node-2"].received -= 46        # missed three reports
    topo.probes["node-1"].received -= 301       # silent for more than five minutes
    with api.client("viewer") as client:
        states = {p["probe_id"]: p["state"] for p in client.get("/api/v1/probes").json()}
        hosts = {n["id"]: n["status"] for n in client.get("/api/v1/topology/hosts").json()["nodes"]}
        containers = client.get("/api/v1/topology/containers").json()["nodes"]
    assert states == {"node-1": "offline", "node-2": "stale"}
    assert hosts == {"host:node-1": "offline", "host:node-2": "stale"}
    assert [c["label"] for c in containers] == ["web-2"]      # an offline host's containers are unknown
    with api.client() as client:
        metrics = client.get("/metrics").text
    line = next(x for x in metrics.splitlines()
                if x.startswith('orchestrator_probe_last_report_timestamp_seconds{probe="node-1"}'))
    assert abs(float(line.split()[-1]) - topo.probes["node-1"].received) < 1e-3
    assert 'orchestrator_probes{state="offline"} 1.0' in metrics


@pytest.mark.parametrize(("params", "detail"), [
    ({"search": "cpu>high"}, "search"), ({"group_by": "kernel"}, "group_by"), ({"search": "x" * 600}, "search")])
def test_bad_queries_are_400_or_422(api: RunningApi, params: dict, detail: str) -> None:
    with api.client("viewer") as client:
        response = client.get("/api/v1/topology/containers", params=params)
        unknown_view = client.get("/api/v1/topology/planets")
        unknown_node = client.get("/api/v1/topology/hosts/nodes/host:nope")
    assert response.status_code in (400, 422) and detail in response.json()["detail"]
    assert unknown_view.status_code == 422 and unknown_node.status_code == 404


def test_marathon_apps_view_merges_marathon_and_the_probes(api: RunningApi) -> None:
    report = topology(1, peer=None)
    report["containers"][0]["marathon_app_id"] = "/shop/web"
    post(api, report)
    with api.client("viewer") as client:
        nodes = {n["id"]: n for n in client.get("/api/v1/topology/marathon-apps").json()["nodes"]}
    # /shop/api has no task the probes saw: it still appears, from Marathon's list.
    assert set(nodes) == {"marathon-app:/shop/web", "marathon-app:/shop/api"}
    assert nodes["marathon-app:/shop/web"]["metrics"]["containers"] == 1
    assert nodes["marathon-app:/shop/web"]["metrics"]["instances"] == 2


def test_ui_files_are_served_at_the_root(api_files: ApiFiles, tmp_path: Path) -> None:
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "index.html").write_text("<!doctype html><title>orchestrator</title>")
    running = start_api(state_from_config(str(api_files.config)), ui_dir=str(tmp_path / "ui"))
    try:
        with running.client() as client:
            page = client.get("/")
            api_still_guarded = client.get("/api/v1/topology")
            metrics = client.get("/metrics").text
    finally:
        running.stop()
    assert page.status_code == 200 and "<title>orchestrator</title>" in page.text
    assert api_still_guarded.status_code == 401
    assert 'orchestrator_http_requests_total{code="200",method="GET",route="/{ui}"} 1.0' in metrics


def test_large_views_are_gzipped_for_clients_that_accept_it(api: RunningApi) -> None:
    report = topology(1, peer=None)
    report["processes"] = [{"pid": pid, "name": f"worker-{pid}", "cmdline": f"/usr/bin/worker --id {pid} " + "x" * 100}
                           for pid in range(1, 600)]
    post(api, report)
    with api.client("viewer") as client:
        zipped = client.get("/api/v1/topology/processes", headers={"Accept-Encoding": "gzip"})
        plain = client.get("/api/v1/topology/processes", headers={"Accept-Encoding": "identity"})
    assert zipped.headers["content-encoding"] == "gzip" and "content-encoding" not in plain.headers
    assert zipped.json() == plain.json() and len(plain.content) > 64 * 1024
    assert int(zipped.headers["content-length"]) < len(plain.content) / 3
