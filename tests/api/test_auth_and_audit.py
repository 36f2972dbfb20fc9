"""Logins, token lifecycle (refresh, logout, revocation list, key rotation, demotion) and the audit trail."""
from __future__ import annotations

import json

import pytest

from orchestrator.contracts.api import ROUTES, Route
from orchestrator.services.api.auth import issue
from orchestrator.services.api.marathon_ops import MemoryPolicyStore
from tests.api.conftest import ApiFiles, RunningApi
from tests.api.requests_for_routes import request_for

MUTATING = [r for r in ROUTES if r.mutating]


def login(api: RunningApi, account: str, password: str) -> dict:
    with api.client() as client:
        response = client.post("/api/v1/login", json={"account": account, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


def test_login_refresh_logout(api: RunningApi, passwords: dict[str, str]) -> None:
    tokens = login(api, "otto", passwords["otto"])
    assert tokens["role"] == "operator" and tokens["expires_in"] <= 900 and tokens["refresh_expires_in"] <= 43200
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    with api.client() as client:
        assert client.get("/api/v1/whoami", headers=bearer).json()["account"] == "otto"
        renewed = client.post("/api/v1/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert renewed.status_code == 200 and renewed.json()["refresh_token"] is None
        assert client.post("/api/v1/logout", headers=bearer,
                           json={"refresh_token": tokens["refresh_token"]}).status_code == 204
        # Both the access token used to log out and the refresh token are now refused.
        assert client.get("/api/v1/whoami", headers=bearer).status_code == 401
        assert client.post("/api/v1/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_logout_without_a_refresh_token_revokes_the_access_token(api: RunningApi) -> None:
    token = api.token("viewer")
    with api.client() as client:
        bearer = {"Authorization": f"Bearer {token}"}
        assert client.post("/api/v1/logout", headers=bearer, json={}).status_code == 204
        assert client.get("/api/v1/whoami", headers=bearer).status_code == 401


def test_wrong_password_and_unknown_account_are_the_same_401(api: RunningApi) -> None:
    with api.client() as client:
        a = client.post("/api/v1/login", json={"account": "otto", "password": "wrong"})
        b = client.post("/api/v1/login", json={"account": "nobody", "password": "wrong"})
    assert a.status_code == b.status_code == 401 and a.json()["detail"] == b.json()["detail"]


def test_login_rate_limited_per_account(api: RunningApi, passwords: dict[str, str]) -> None:
    with api.client() as client:
        statuses = [client.post("/api/v1/login", json={"account": "vera", "password": "wrong"}).status_code
                    for _ in range(6)]
        # Even the right password is refused while the account is limited: guessing cannot tell.
        right = client.post("/api/v1/login", json={"account": "vera", "password": passwords["vera"]})
    assert statuses == [401] * 5 + [429]
    assert right.status_code == 429 and int(right.headers["Retry-After"]) > 0


def test_revocation_list_in_config_applies_without_restart(api: RunningApi, api_files: ApiFiles) -> None:
    token, jti, _ = issue(api.state.keys.get(), account="probe-bot", kind="api", scope="report:write", ttl=3600)
    with api.client() as client:
        bearer = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        body = json.dumps({"schema_version": 1, "probe_id": "n", "seq": 1, "timestamp": 1e9,
                           "host": {"hostname": "n"}})
        assert client.post("/api/v1/reports", headers=bearer, content=body).status_code == 200
        api_files.write(revoked_tokens=[jti])
        response = client.post("/api/v1/reports", headers=bearer, content=body)
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_key_rotation_accepts_old_and_new_then_drops_old(api: RunningApi, api_files: ApiFiles) -> None:
    old_token = api.token("viewer")
    old_line = api_files.keys.read_text().strip()
    api_files.keys.write_text(f"k2 {'n' * 48}\n{old_line}\n")   # new key first: it signs from now on
    with api.client() as client:
        assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {old_token}"}).status_code == 200
        new_token = api.token("viewer")
        assert new_token and new_token != old_token
        api_files.keys.write_text(f"k2 {'n' * 48}\n")              # the old key is retired
        assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {old_token}"}).status_code == 401
        assert client.get("/api/v1/whoami", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200


def test_a_broken_config_edit_keeps_the_last_good_one(api: RunningApi, api_files: ApiFiles) -> None:
    api_files.config.write_text("accounts: [ {name: }")
    with api.client("admin") as client:
        assert client.get("/api/v1/whoami").status_code == 200


def test_demotion_applies_to_tokens_already_issued(api: RunningApi, api_files: ApiFiles, hashes: dict) -> None:
    token = api.token("operator")
    api_files.write(accounts=[{**a, "role": "viewer"} if a["name"] == "otto" else a
                              for a in api_files.data["accounts"]])
    with api.client() as client:
        response = client.post("/api/v1/marathon/apps/shop/web/scale", json={"instances": 3},
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


@pytest.mark.parametrize("route", MUTATING, ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize("caller", ["anonymous", "viewer", "operator"])
def test_every_mutating_call_writes_exactly_one_audit_line(api: RunningApi, passwords: dict, route: Route,
                                                           caller: str) -> None:
    api.state.policies = MemoryPolicyStore()
    method, path, kwargs = request_for(route, api, passwords)
    before = len(api.audit_lines())
    with api.client(caller) as client:
        response = client.request(method, path, **kwargs)
    lines = api.audit_lines()[before:]
    assert len(lines) == 1, (response.status_code, lines)
    entry = json.loads(lines[0])
    assert entry["request_id"] == response.headers["x-request-id"]
    assert entry["source"] == "127.0.0.1" and entry["time"] > 0
    expected_outcome = ("ok" if response.status_code < 400 else "denied" if response.status_code in (401, 403)
                        else "conflict" if response.status_code == 409 else "invalid")
    assert entry["outcome"] == expected_outcome
    if route.path.endswith("/scale") and response.status_code < 400:
        assert entry["action"] == "marathon.scale" and entry["target"] == "/shop/web"
        assert entry["actor"] == "otto" and entry["role"] == "operator"


def test_invalid_body_on_a_mutating_route_is_audited_once(api: RunningApi) -> None:
    before = len(api.audit_lines())
    with api.client("operator") as client:
        response = client.post("/api/v1/marathon/apps/shop/web/scale", json={"instances": -1})
    assert response.status_code == 422 and "instances" in response.json()["detail"]
    (line,) = api.audit_lines()[before:]
    assert json.loads(line)["outcome"] == "invalid"


def test_reads_are_not_audited_but_failed_authentication_is(api: RunningApi) -> None:
    before = len(api.audit_lines())
    with api.client("viewer") as client:
        assert client.get("/api/v1/topology").status_code == 200
    assert len(api.audit_lines()) == before
    with api.client() as client:
        assert client.get("/api/v1/topology", headers={"Authorization": "Bearer nope"}).status_code == 401
    (line,) = api.audit_lines()[before:]
    assert json.loads(line)["outcome"] == "denied"


def test_audit_route_shows_the_window(api: RunningApi) -> None:
    with api.client("operator") as client:
        client.post("/api/v1/marathon/apps/shop/api/restart", json={})
    with api.client("admin") as client:
        page = client.get("/api/v1/audit", params={"limit": 5}).json()
    assert page["entries"][-1]["action"] == "marathon.restart" and page["window"] >= 100
