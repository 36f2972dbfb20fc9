"""The live-topology WebSocket over real loopback connections (contracts/ws.py)."""
from __future__ import annotations

import json

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from orchestrator.contracts import ws as proto
from orchestrator.contracts.api import Role
from orchestrator.services.api.auth import issue
from tests.api.conftest import RunningApi
from tests.api.test_ingest_and_views import post, topology


def open_ws(api: RunningApi, token: str | None) -> ClientConnection:
    ws = connect(api.url.replace("http", "ws") + "/api/v1/ws", open_timeout=5, legacy=True)
    if token is not None:
        ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(ws.recv(timeout=5))["type"] == "ready"
    return ws


def recv(ws: ClientConnection) -> dict:
    return json.loads(ws.recv(timeout=5))


def closed_with(ws: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        while True:
            ws.recv(timeout=8)
    return ws.close_code


def renders(api: RunningApi, view: str) -> float:
    return api.state.renders.labels(view)._value.get()


def test_snapshot_then_shared_deltas_with_sequence_numbers(api: RunningApi) -> None:
    post(api, topology(1, peer=None))
    subs = [open_ws(api, api.token("viewer")) for _ in range(3)]
    try:
        for ws in subs:
            ws.send(json.dumps({"type": "subscribe", "view": "hosts", "filter": "", "group_by": None}))
        snaps = [recv(ws) for ws in subs]
        assert {s["type"] for s in snaps} == {"snapshot"}
        assert [n["id"] for n in snaps[0]["nodes"]] == ["host:node-1"]
        rendered = renders(api, "hosts")
        post(api, topology(2, peer=1))
        deltas = [recv(ws) for ws in subs]
        # One render for the three subscribers, the same delta text to each.
        assert renders(api, "hosts") == rendered + 1
        assert deltas[0] == deltas[1] == deltas[2]
        assert deltas[0]["type"] == "delta" and deltas[0]["seq"] == snaps[0]["seq"] + 1
        assert [n["id"] for n in deltas[0]["add"]] == ["host:node-2"]
        assert deltas[0]["edges_add"] == [{"source": "host:node-2", "target": "host:node-1", "connections": 1}]
    finally:
        for ws in subs:
            ws.close()


def test_filtered_subscription_sees_only_matching_nodes_and_bad_filters_do_not_close(api: RunningApi) -> None:
    post(api, topology(1, peer=None))
    with open_ws(api, api.token("viewer")) as ws:
        ws.send(json.dumps({"type": "subscribe", "view": "hosts", "filter": "cpu>high"}))
        error = recv(ws)
        assert error["type"] == "error" and "filter" in error["reason"]
        ws.send(json.dumps({"type": "subscribe", "view": "hosts", "filter": "cpu>15"}))
        assert recv(ws)["nodes"] == []
        post(api, topology(2, peer=None))      # cpu 20: matches
        delta = recv(ws)
        assert [n["id"] for n in delta["add"]] == ["host:node-2"] and delta["total_nodes"] == 2


def test_no_auth_within_five_seconds_closes(api: RunningApi) -> None:
    with open_ws(api, None) as ws:
        assert closed_with(ws) == proto.CLOSE_AUTH_TIMEOUT


@pytest.mark.parametrize(("message", "code"), [
    ({"type": "subscribe", "view": "hosts"}, proto.CLOSE_UNAUTHENTICATED),
    ({"type": "auth"}, proto.CLOSE_POLICY),
    ("x" * (proto.MAX_MESSAGE_BYTES + 10), None),
])
def test_bad_first_messages_close(api: RunningApi, message: object, code: int | None) -> None:
    with open_ws(api, None) as ws:
        ws.send(message if isinstance(message, str) else json.dumps(message))
        closed = closed_with(ws)
    # An oversized frame is refused by the server's frame limit (1009) before it reaches the endpoint.
    assert closed == (code or 1009)


def test_expired_token_closes_the_session_unless_renewed(api: RunningApi) -> None:
    keys = api.state.keys.get()
    short = issue(keys, account="vera", kind="access", role=Role.VIEWER, ttl=5)[0]
    with open_ws(api, short) as ws:
        ws.send(json.dumps({"type": "auth", "token": api.token("viewer")}))   # renewed: stays open
        assert recv(ws)["type"] == "ready"
        ws.send(json.dumps({"type": "subscribe", "view": "hosts"}))
        assert recv(ws)["type"] == "snapshot"
    with open_ws(api, short) as ws:
        assert closed_with(ws) == proto.CLOSE_TOKEN_EXPIRED


def test_websocket_upgrades_are_counted_apart_from_requests(api: RunningApi) -> None:
    with open_ws(api, api.token("viewer")):
        pass
    with api.client() as client:
        metrics = client.get("/metrics").text
    assert "orchestrator_websocket_connections_total 1.0" in metrics
    assert "/api/v1/ws" not in metrics
