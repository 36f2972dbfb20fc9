"""`orchestrator api serve | hash-password | token` as processes: exit codes, one-line errors, a real server."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from orchestrator.services.api.auth import verify, verify_password
from orchestrator.services.api.config import load_config, load_keys
from tests.api.conftest import ApiFiles

CLI = [sys.executable, "-m", "orchestrator.cli", "api"]


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=60)


def test_hash_password_reads_stdin() -> None:
    proc = run("hash-password", stdin="correct horse battery\n")
    assert proc.returncode == 0, proc.stderr
    assert verify_password(proc.stdout.strip(), "correct horse battery")
    assert "correct horse" not in proc.stdout
    short = run("hash-password", stdin="short\n")
    assert short.returncode == 2 and short.stderr.count("\n") == 1


def test_token_prints_a_scoped_token(api_files: ApiFiles) -> None:
    proc = run("token", "--config", str(api_files.config), "--account", "probe-bot", "--ttl", "2h",
               "--scope", "report:write")
    assert proc.returncode == 0, proc.stderr
    config = load_config(api_files.config)
    principal = verify(proc.stdout.strip(), load_keys(config.signing_key_file), config, kinds=("api",))
    assert principal.scope == "report:write" and principal.role is None
    assert 7100 < principal.expires_at - time.time() <= 7200
    assert principal.token_id in proc.stderr


@pytest.mark.parametrize(("args", "needle"), [
    (["--account", "nobody"], "nobody"), (["--account", "ana", "--ttl", "forever"], "--ttl"),
    (["--account", "ana", "--scope", "everything"], "scope"), (["--account", "ana", "--ttl", "400d"], "at most")])
def test_token_bad_input_is_one_line_exit_2(api_files: ApiFiles, args: list[str], needle: str) -> None:
    proc = run("token", "--config", str(api_files.config), *args)
    assert proc.returncode == 2 and needle in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(("content", "needle"), [
    ("accounts: []\n", "signing_key_file"),
    ("signing_key_file: k\naccounts: [{name: a, role: root, password_hash: x}]\n", "role"),
    ("signing_key_file: k\naccounts: [{name: a, role: admin, password_hash: plain}]\n", "argon2id"),
    ("signing_key_file: k\nlisten: 1\n", "listen"),
    ("signing_key_file: missing-file\n", "missing-file"),
])
def test_serve_refuses_bad_config_in_one_line(tmp_path: Path, content: str, needle: str) -> None:
    (tmp_path / "k").write_text("k1 " + "s" * 40 + "\n")
    (tmp_path / "api.yaml").write_text(content)
    proc = run("serve", "--config", str(tmp_path / "api.yaml"), "--listen", "127.0.0.1:0")
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str, list[str]]:
    proc = subprocess.Popen([*CLI, "serve", "--listen", "127.0.0.1:0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if "listening on" in line:
            url = line.split("listening on ")[1].strip()
            return proc, url, lines
    proc.kill()
    raise AssertionError(f"the API did not start: {lines} {proc.stderr.read() if proc.stderr else ''}")


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_with_config_is_ready_and_stops_on_sigterm(api_files: ApiFiles) -> None:
    proc, url, _ = _start(["--config", str(api_files.config)])
    try:
        assert httpx.get(url + "/readyz").status_code == 200
        assert httpx.get(url + "/api/v1/topology").status_code == 401
    finally:
        code = _stop(proc)
    assert code in (0, 130)


def test_demo_prints_random_logins_that_work() -> None:
    logins = []
    for _ in range(2):
        proc, url, lines = _start(["--demo-topology", "5:3", "--demo-seed", "7"])
        try:
            for _ in range(3):
                lines.append((proc.stdout.readline() if proc.stdout else "").strip())
            creds = dict(line.split(": ", 1)[1].split(" / ") for line in lines if line.startswith("demo login"))
            assert set(creds) == {"demo-viewer", "demo-operator", "demo-admin"}
            token = httpx.post(url + "/api/v1/login", json={"account": "demo-operator",
                                                            "password": creds["demo-operator"]}).json()["access_token"]
            apps = httpx.get(url + "/api/v1/marathon/apps", headers={"Authorization": f"Bearer {token}"}).json()
            assert "/shop/web" in {a["id"] for a in apps}
            hosts = httpx.get(url + "/api/v1/topology/hosts", headers={"Authorization": f"Bearer {token}"}).json()
            assert len(hosts["nodes"]) == 5
            logins.append(creds["demo-admin"])
        finally:
            _stop(proc)
    assert logins[0] != logins[1]
