"""The migration tests' world: ensembles A and B with a sync engine, fake Mesos masters and Marathon, moto
S3, a hook that records its calls (and can be held until the test releases it), and the CLI entry points."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from orchestrator.cli import main
from orchestrator.services.zk.engine import SyncEngine
from tests.zk.helpers import side

AUTH = "digest:orch:s3cret"
AUTH_ENV = "ORCH_TEST_ZK_AUTH"  # the state keeps only this reference, never AUTH itself
# The hook appends "PHASE ACTION" to its log. With HOOK_GATE set it then creates $HOOK_GATE.started and
# waits (at most 60 s) for $HOOK_GATE.release: a test holds a migrate process inside its hook that way.
HOOK = """#!/bin/sh
echo "$1 $2 $ORCH_MIGRATION_PHASE" >> {calls}
if [ -n "$HOOK_GATE" ]; then
  touch "$HOOK_GATE.started"
  i=0
  while [ ! -e "$HOOK_GATE.release" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
fi
exit "${{HOOK_EXIT:-0}}"
"""


class Engine:
    """The sync engine as the operator would run it, its /metrics on one fixed port across restarts."""

    def __init__(self, zk, port: int) -> None:
        self.zk, self.port = zk, port
        self.engine: SyncEngine | None = None
        self.server: Any = None

    def run(self, source: str, target: str) -> None:
        self.stop()
        engine = SyncEngine(side(source), side(target), [self.zk.root], resync_interval=0)
        self.server, _ = engine.metrics.serve("127.0.0.1", self.port)
        self.engine = engine.start()
        assert engine.bootstrapped.wait(60)

    def stop(self) -> None:
        if self.engine is not None:
            self.server.shutdown()
            self.server.server_close()
            self.engine.stop()
            self.engine.source.close()
            self.engine.target.close()
            self.engine = None


def write_config(w, **changes) -> str:
    path = w.tmp / "migration.yaml"
    path.write_text(yaml.safe_dump({**w.config, **changes}))
    return str(path)


def migrate(w, *args: str) -> int:
    return main(["migrate", *args, "--state", str(w.state)])


def migrate_process(w, *args: str) -> subprocess.Popen:
    """`orchestrator migrate …` as its own process (the lock is between processes)."""
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "migrate", *args, "--state", str(w.state)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the process ended (rc={proc.returncode}) before {path.name} appeared: "
                                 f"{proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


def state(w) -> dict:
    return json.loads(w.state.read_text())


class StaticHttp:
    """Serves fixed text at every path on 127.0.0.1 (a sync engine's /metrics page); stop() closes the port."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        page = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                body = page.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()  # the port refuses connections from now on
