"""The authorization matrix, generated from the contract's route table: every route x every caller.

A route added to the app without a table entry is refused when the app is built, and a table entry the
matrix does not cover fails here, so no route can be added without an access rule and its test.
"""
from __future__ import annotations

import json

import pytest
from websockets.sync.client import connect

from orchestrator.contracts import ws as proto
from orchestrator.contracts.api import ROLE_ORDER, ROUTES, SCOPES, Role, Route
from orchestrator.services.api.app import _check_route_table, create_app
from orchestrator.services.api.auth import issue
from orchestrator.services.api.config import parse_keys
from tests.api.conftest import CALLERS, RunningApi
from tests.api.requests_for_routes import request_for

HTTP_ROUTES = [r for r in ROUTES if r.method != "WEBSOCKET"]


def expected(route: Route, caller: str) -> str:
    """'allowed' (any answer but 401/403), 401 or 403."""
    if route.access == "public":
        return "allowed"
    if caller == "anonymous":
        return "401"
    if route.access in SCOPES:
        return "allowed" if caller == "probe" else "403"
    if caller == "probe":
        return "403"
    return "allowed" if Role(caller).allows(Role(route.access)) else "403"


def outcome(status: int) -> str:
    return str(status) if status in (401, 403) else "allowed"


@pytest.mark.parametrize("route", HTTP_ROUTES, ids=lambda r: f"{r.method} {r.path}")
def test_matrix(api: RunningApi, passwords: dict[str, str], route: Route) -> None:
    seen = {}
    for caller in CALLERS:
        method, path, kwargs = request_for(route, api, passwords)
        with api.client(caller) as client:
            response = client.request(method, path, **kwargs)
        assert response.status_code < 500, (caller, response.status_code, response.text)
        seen[caller] = outcome(response.status_code)
        if response.status_code in (401, 403):
            assert set(response.json()) == {"detail", "request_id"}
    assert seen == {c: expected(route, c) for c in CALLERS}


def test_matrix_covers_the_whole_table() -> None:
    ws_routes = [r for r in ROUTES if r.method == "WEBSOCKET"]
    assert len(HTTP_ROUTES) + len(ws_routes) == len(ROUTES)
    assert {r.access for r in ROUTES} <= {"public", *(r.value for r in ROLE_ORDER), *SCOPES}


def test_a_route_without_a_table_entry_is_refused(api: RunningApi) -> None:
    app = create_app(api.state)

    @app.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    with pytest.raises(RuntimeError, match="/api/v1/forgotten"):
        _check_route_table(app)


@pytest.mark.parametrize(("caller", "close_code"), [
    ("anonymous", proto.CLOSE_UNAUTHENTICATED), ("probe", proto.CLOSE_FORBIDDEN),
    ("viewer", None), ("operator", None), ("admin", None)])
def test_websocket_matrix(api: RunningApi, caller: str, close_code: int | None) -> None:
    token = api.token(caller) or "not-a-token"
    with connect(api.url.replace("http", "ws") + "/api/v1/ws", open_timeout=5) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        if close_code is None:
            ready = json.loads(ws.recv(timeout=5))
            assert ready["type"] == "ready" and ready["role"] == caller
        else:
            with pytest.raises(Exception):  # noqa: B017 - the server closes; the exception type is the library's
                ws.recv(timeout=5)
            assert ws.close_code == close_code


def _bad_tokens(api: RunningApi) -> dict[str, str]:
    good = api.token("admin")
    assert good
    other_key = parse_keys("k1 " + "x" * 40, "test")
    header, payload, signature = good.split(".")
    return {
        "garbage": "not-a-jwt",
        "tampered": f"{header}.{payload}.{signature[:-4]}AAAA",
        "other key with the same id": issue(other_key, account="ana", kind="access", role=Role.ADMIN, ttl=60)[0],
        "expired": issue(api.state.keys.get(), account="ana", kind="access", role=Role.ADMIN, ttl=60,
                         now=1_000_000.0)[0],
        "refresh token as access": issue(api.state.keys.get(), account="ana", kind="refresh", role=Role.ADMIN,
                                         ttl=60)[0],
        "unknown account": issue(api.state.keys.get(), account="mallory", kind="access", role=Role.ADMIN,
                                 ttl=60)[0],
    }


@pytest.mark.parametrize("kind", ["garbage", "tampered", "other key with the same id", "expired",
                                  "refresh token as access", "unknown account"])
def test_bad_tokens_are_401(api: RunningApi, kind: str) -> None:
    token = _bad_tokens(api)[kind]
    with api.client() as client:
        response = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert "Traceback" not in response.text
