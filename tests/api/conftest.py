"""The API over real HTTP on loopback: uvicorn in a thread (port 0), config and key files written per test,
the one fake Marathon on the real clock, and helpers for tokens and requests."""
from __future__ import annotations

import asyncio
import io
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from orchestrator.contracts.api import SCOPE_REPORT_WRITE, Role
from orchestrator.fakes.marathon import FakeMarathon
from orchestrator.services.api.app import ApiState, create_app
from orchestrator.services.api.audit import AuditLog
from orchestrator.services.api.auth import hash_password, issue
from orchestrator.services.api.server import state_from_config

ACCOUNTS = {"ana": Role.ADMIN, "otto": Role.OPERATOR, "vera": Role.VIEWER, "probe-bot": Role.VIEWER}
# Who calls in the authorization matrix: an account's role, or the probe's scoped token.
CALLERS = ("anonymous", "viewer", "operator", "admin", "probe")


@pytest.fixture(scope="session")
def passwords() -> dict[str, str]:
    return {name: secrets.token_urlsafe(12) for name in ACCOUNTS}


@pytest.fixture(scope="session")
def hashes(passwords: dict[str, str]) -> dict[str, str]:
    return {name: hash_password(pw) for name, pw in passwords.items()}


@dataclass
class ApiFiles:
    config: Path
    keys: Path
    data: dict[str, Any]

    def write(self, **changes: Any) -> None:
        self.data.update(changes)
        self.config.write_text(yaml.safe_dump(self.data))


@pytest.fixture
def api_files(tmp_path: Path, hashes: dict[str, str]) -> ApiFiles:
    keys = tmp_path / "signing-keys"
    keys.write_text(f"k1 {secrets.token_urlsafe(40)}\n")
    data = {"signing_key_file": "signing-keys",
            "accounts": [{"name": n, "role": r.value, "password_hash": hashes[n]} for n, r in ACCOUNTS.items()]}
    files = ApiFiles(tmp_path / "api.yaml", keys, data)
    files.write()
    return files


@dataclass
class RunningApi:
    url: str
    state: ApiState
    audit_stream: io.StringIO
    server: Any
    thread: threading.Thread

    def token(self, caller: str, *, kind: str = "access", ttl: float = 600) -> str | None:
        """A token for a matrix caller: None for anonymous, the probe's scoped API token, or a role's account."""
        keys = self.state.keys.get()
        if caller == "anonymous":
            return None
        if caller == "probe":
            return issue(keys, account="probe-bot", kind="api", scope=SCOPE_REPORT_WRITE, ttl=ttl)[0]
        account = next(n for n, r in ACCOUNTS.items() if r.value == caller and n != "probe-bot")
        return issue(keys, account=account, kind=kind, role=Role(caller), ttl=ttl)[0]  # type: ignore[arg-type]

    def client(self, caller: str = "anonymous") -> httpx.Client:
        token = self.token(caller)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10.0)

    def audit_lines(self) -> list[str]:
        return [line for line in self.audit_stream.getvalue().splitlines() if line]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_api(state: ApiState, ui_dir: str | None = None) -> RunningApi:
    import uvicorn

    stream = io.StringIO()
    state.audit = AuditLog(state.audit.window, stream=stream)
    app = create_app(state, ui_dir=ui_dir)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                                           ws="websockets-sansio", lifespan="on", ws_max_size=64 * 1024))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name="api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return RunningApi(f"http://127.0.0.1:{port}", state, stream, server, thread)


@pytest.fixture
def fake_marathon() -> Iterator[FakeMarathon]:
    with FakeMarathon(instances=2, step_seconds=0.3, health_delay=0.3) as fake:
        fake.add_app({"id": "/shop/web", "instances": 2})
        fake.add_app({"id": "/shop/api", "instances": 1})
        yield fake


@pytest.fixture
def api(api_files: ApiFiles, fake_marathon: FakeMarathon) -> Iterator[RunningApi]:
    api_files.write(marathon={"urls": fake_marathon.urls})
    state = state_from_config(str(api_files.config), reload_every=0)
    running = start_api(state)
    try:
        yield running
    finally:
        running.stop()
