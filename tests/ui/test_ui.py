"""The web UI (ui/): its vitest unit tests, and the end-to-end run in Debian's Chromium against the real API
(`orchestrator api serve --demo-topology`, built-in fake Marathon) on loopback. Node, npm and Chromium are
required: missing, these tests skip on a laptop and FAIL under CI=true (tests/support/tools.py)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.tools import in_ci, require_tool

ROOT = Path(__file__).resolve().parents[2]
UI = ROOT / "ui"
ORCHESTRATOR = Path(sys.executable).with_name("orchestrator")
LOGIN = re.compile(r"^demo login \((viewer|operator|admin)\): (\S+) / (\S+)$")
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


def _node_env() -> dict[str, str]:
    require_tool("node", hint="scripts/install-system-tools.sh installs Node.js")
    require_tool("npm", hint="scripts/install-system-tools.sh installs npm")
    if not (UI / "node_modules" / ".bin" / "vite").exists():
        reason = "ui/node_modules is missing: `make setup` runs npm ci in ui/"
        if in_ci():
            pytest.fail(reason + " (CI=true: missing tools fail, they never skip)")
        pytest.skip(reason)
    return {**os.environ, "CI": "true"}  # vitest: no watch mode, plain output


def test_ui_unit_tests() -> None:
    """Store, search parser (with the shared vectors) and graph diffing/layout: vitest."""
    env = _node_env()
    run = subprocess.run(["npx", "--no-install", "vitest", "run"], cwd=UI, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"Tests\s+\d+ passed", re.sub(r"\x1b\[[0-9;]*m", "", run.stdout)), run.stdout[-2000:]


class _Api:
    """`orchestrator api serve --demo-topology` in a subprocess; its stdout collected by a thread."""

    def __init__(self, ui_dir: Path, demo: str = "24:6") -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [str(ORCHESTRATOR), "api", "serve", "--demo-topology", demo, "--demo-seed", "7",
             "--listen", "127.0.0.1:0", "--ui-dir", str(ui_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_ready(self, timeout: float = 60.0) -> tuple[str, dict[str, tuple[str, str]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            url = next((m.group(1) for line in self.lines if (m := LISTENING.search(line))), None)
            logins = {m.group(1): (m.group(2), m.group(3)) for line in self.lines if (m := LOGIN.match(line))}
            if url and len(logins) == 3:
                return url + "/", logins
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("the API did not start:\n" + "\n".join(self.lines[-30:]))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._reader.join(timeout=5)


@pytest.fixture(scope="module")
def built_ui() -> Path:
    """`npm run build`: tsc (strict) then vite build into ui/dist, which the API serves."""
    env = _node_env()
    run = subprocess.run(["npm", "run", "--silent", "build"], cwd=UI, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert (UI / "dist" / "index.html").is_file()
    return UI / "dist"


@pytest.fixture()
def demo_api(built_ui: Path) -> Iterator[tuple[_Api, str, dict[str, tuple[str, str]]]]:
    api = _Api(built_ui)
    try:
        url, logins = api.wait_ready()
        yield api, url, logins
    finally:
        api.stop()


@pytest.fixture()
def empty_api(built_ui: Path) -> Iterator[tuple[str, dict[str, tuple[str, str]]]]:
    """A second API whose probes reported hosts but no containers: the UI's empty state."""
    api = _Api(built_ui, demo="2:0")
    try:
        yield api.wait_ready()
    finally:
        api.stop()


def _e2e_env(url: str, logins: dict[str, tuple[str, str]], artefacts: Path) -> dict[str, str]:
    chromium = require_tool("chromium", path="/usr/bin/chromium", hint="scripts/install-system-tools.sh installs it")
    return {**_node_env(), "CHROMIUM": chromium, "E2E_URL": url, "E2E_ARTIFACTS": str(artefacts),
            **{f"E2E_{role.upper()}": f"{name}:{password}" for role, (name, password) in logins.items()}}


ARTEFACTS = Path(os.environ.get("UI_E2E_ARTIFACTS", UI / "artifacts" / "e2e"))


def test_ui_end_to_end_in_chromium(demo_api: tuple[_Api, str, dict[str, tuple[str, str]]],
                                   empty_api: tuple[str, dict[str, tuple[str, str]]]) -> None:
    """Log in, views, search, details, a live delta, scale as operator (Marathon and audit), viewer without
    controls, reconnect indicator, renewal, session end, unreachable API, empty state; axe-core WCAG AA on
    every page. One browser for all of it."""
    api, url, logins = demo_api
    empty_url, empty_logins = empty_api
    env = {**_e2e_env(url, logins, ARTEFACTS), "E2E_EMPTY_URL": empty_url,
           "E2E_EMPTY_VIEWER": ":".join(empty_logins["viewer"])}
    run = subprocess.run(["node", "e2e/run.mjs"], cwd=UI, env=env, capture_output=True, text=True, timeout=600)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    assert re.search(r"^\d+ passed, 0 failed$", run.stdout, re.M), report
    # The API wrote the scale to its audit stream (stdout JSON lines) exactly as the audit route returned it.
    audit = [json.loads(line) for line in api.lines if line.startswith("{")]
    scales = [a for a in audit if "scale" in a.get("action", "") and a.get("actor") == logins["operator"][0]]
    assert [a["outcome"] for a in scales] == ["ok"], audit[-10:]
    assert list(ARTEFACTS.glob("*.png")), "no screenshots saved"
