"""The edge caches of the topology (per probe, per view) against a store built from scratch: a probe's edges
must follow changes reported by the probe at the other end (its listeners, its containers) even though the
probe that owns the edge did not report again."""
from __future__ import annotations

import json
from typing import Any

from orchestrator.contracts.api import VIEWS
from orchestrator.contracts.report import parse_report_json
from orchestrator.contracts.search import parse
from orchestrator.services.api.hub import Hub, Subscriber
from orchestrator.services.api.topology import Topology
from tests.api.requests_for_routes import full_report

NOW = 1.9e9


def report(i: int, *, peers: tuple[int, ...] = (), listen: bool = True, container: str | None = None,
           seq: int = 1) -> Any:
    """Host i: one process (pid 100) in one container, listening on :8080 unless not `listen`, connected to
    each peer's :8080."""
    addr = f"10.0.0.{i}"
    cid = container or f"{i:02d}" * 32
    conns: list[dict[str, Any]] = []
    if listen:
        conns.append({"state": "listen", "local_ip": addr, "local_port": 8080, "pid": 100})
    for k, peer in enumerate(peers):
        conns.append({"state": "established", "local_ip": addr, "local_port": 40000 + k,
                      "remote_ip": f"10.0.0.{peer}", "remote_port": 8080, "pid": 100})
    body = full_report(probe=f"node-{i}", seq=seq, host={"hostname": f"node-{i}", "addresses": [addr]},
                       processes=[{"pid": 100, "name": "web", "container_id": cid}],
                       containers=[{"id": cid, "runtime": "containerd", "name": f"web-{i}", "pod_uid": f"uid-{cid[:4]}",
                                    "pod_name": f"web-{i}", "namespace": "prod", "labels": {"app": f"web-{i % 2}"}}],
                       connections=conns)
    body["timestamp"] = NOW
    return parse_report_json(json.dumps(body).encode())


def edges(topology: Topology) -> dict[str, list[dict[str, Any]]]:
    out = {}
    everything = parse("")
    for view in VIEWS:
        rendered = topology.render(view, everything, None)
        # The cached JSON text says the same as the edge list.
        assert json.loads(rendered.edges_json()) == rendered.edges
        out[view] = sorted(rendered.edges, key=lambda e: (e["source"], e["target"]))
    return out


def test_cached_edges_follow_the_other_end_of_each_connection() -> None:
    cached = Topology(clock=lambda: NOW)
    latest: dict[int, Any] = {}

    def ingest(r: Any, i: int) -> None:
        latest[i] = r
        cached.ingest(r)
        fresh = Topology(clock=lambda: NOW)
        for rep in latest.values():
            fresh.ingest(rep)
        assert edges(cached) == edges(fresh)

    ingest(report(1, peers=(2, 3)), 1)
    ingest(report(2), 2)
    ingest(report(3), 3)
    assert {e["target"] for e in edges(cached)["hosts"]} == {"host:node-2", "host:node-3"}
    # Node 2 replaces its container: node 1's container edge now ends at the new one, without node 1 reporting.
    ingest(report(2, container="ab" * 32, seq=2), 2)
    assert {e["target"] for e in edges(cached)["containers"]} == {"container:" + "ab" * 32, "container:" + "03" * 32}
    # Node 3 stops listening: node 1's connection to it is no longer an edge.
    ingest(report(3, listen=False, seq=2), 3)
    assert [e["target"] for e in edges(cached)["hosts"]] == ["host:node-2"]
    cached.remove_probe("node-2")
    latest.pop(2)
    assert edges(cached)["hosts"] == []


def test_websocket_deltas_carry_only_changed_edges() -> None:
    topology = Topology(clock=lambda: NOW)
    for r in (report(1, peers=(2,)), report(2), report(3)):
        topology.ingest(r)
    hub = Hub(topology)
    sub = Subscriber()
    snapshot = json.loads(hub.subscribe(sub, "hosts", "", None))
    assert snapshot["edges"] == [{"source": "host:node-1", "target": "host:node-2", "connections": 1}]
    topology.ingest(report(3, peers=(2,), seq=2))
    assert hub.tick_once() == 1
    delta = json.loads(sub.queue.get_nowait() or "")
    assert delta["edges_add"] == [{"source": "host:node-3", "target": "host:node-2", "connections": 1}]
    assert delta["edges_remove"] == []
    topology.ingest(report(2, listen=False, seq=2))
    hub.tick_once()
    delta = json.loads(sub.queue.get_nowait() or "")
    assert delta["edges_add"] == []
    assert sorted(e["source"] for e in delta["edges_remove"]) == ["host:node-1", "host:node-3"]
