"""The Marathon exporter against the fake Marathon (real HTTP on loopback)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from orchestrator.clients.marathon import MarathonClient
from orchestrator.fakes.marathon import FakeMarathon, SimClock
from orchestrator.services.exporters.marathon import MarathonCollector
from tests.exporters.test_mesos_exporter import scrape, series, value

REPO = Path(__file__).resolve().parents[2]


def apps(fake: FakeMarathon) -> None:
    fake.add_app({"id": "/shop/web", "instances": 3, "healthChecks": [{"protocol": "HTTP"}]})
    fake.add_app({"id": "/shop/db", "instances": 1})
    fake.add_app({"id": "/batch/job", "instances": 2})


def test_per_app_series_and_a_deleted_app_disappears() -> None:
    clock = SimClock(start=1_000.0)
    with FakeMarathon(instances=2, clock=clock, step_seconds=1) as fake:
        apps(fake)
        client = MarathonClient(fake.urls[1:] + fake.urls[:1], retries=0)  # a standby first: it proxies
        collector = MarathonCollector(client)
        _, s = scrape(collector)  # type: ignore[arg-type]
        assert value(s, "marathon_up") == 1.0 and value(s, "marathon_leader") == 1.0
        assert value(s, "marathon_apps") == 3.0 and value(s, "marathon_deployments_active") == 0.0
        assert value(s, "marathon_app_instances", app="/shop/web") == 3.0
        assert value(s, "marathon_app_tasks", app="/shop/web", state="running") == 3.0
        assert value(s, "marathon_app_tasks", app="/shop/web", state="healthy") == 3.0
        assert value(s, "marathon_app_tasks", app="/shop/db", state="healthy") == 0.0
        assert {lbl["app"] for lbl in series(s, "marathon_app_instances")} == {"/shop/web", "/shop/db", "/batch/job"}
        assert all(set(lbl) <= {"app", "state"} for lbl in series(s, "marathon_app_tasks"))  # no version, no task

        client.scale("/shop/web", 5)
        _, s = scrape(collector)  # type: ignore[arg-type]
        assert value(s, "marathon_app_deployments", app="/shop/web") == 1.0
        assert value(s, "marathon_deployments_active") == 1.0
        assert value(s, "marathon_app_instances", app="/shop/web") == 5.0

        client.delete_app("/batch/job")
        fake.advance(30)
        _, s = scrape(collector)  # type: ignore[arg-type]
        assert value(s, "marathon_apps") == 2.0
        for name in ("marathon_app_instances", "marathon_app_tasks", "marathon_app_deployments"):
            assert all(lbl["app"] != "/batch/job" for lbl in series(s, name)), name

        fake.fail_over(None)
        _, s = scrape(collector)  # type: ignore[arg-type]
        assert value(s, "marathon_leader") == 0.0
        client.close()


def test_unreachable_marathon_is_reported_not_raised() -> None:
    fake = FakeMarathon(instances=1).start()
    url = fake.urls[0]
    fake.stop()
    client = MarathonClient([url], retries=0, timeout=1)
    collector = MarathonCollector(client)
    scrape(collector)  # type: ignore[arg-type]
    _, s = scrape(collector)  # type: ignore[arg-type]
    client.close()
    assert value(s, "marathon_up") == 0.0
    assert series(s, "marathon_app_instances") == []
    assert value(s, "orchestrator_exporter_target_up", exporter="marathon", target="marathon") == 0.0
    assert value(s, "orchestrator_exporter_scrape_errors_total", exporter="marathon", target="marathon") == 2.0


def test_command_once_prints_the_exposition() -> None:
    with FakeMarathon(instances=1) as fake:
        apps(fake)
        out = subprocess.run([sys.executable, "-m", "orchestrator.cli", "exporter", "marathon", "--marathon",
                              fake.urls[0], "--once"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert 'marathon_app_instances{app="/shop/db"} 1.0' in out.stdout


def test_old_and_partial_app_shapes() -> None:
    """Old Marathon sent numbers as strings; partial bodies miss fields: counted as 0, never an error."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    apps = {"apps": [{"id": "/old", "instances": "2", "tasksRunning": "1", "tasksHealthy": None},
                     {"instances": 3},                                   # no id: skipped
                     {"id": "/bare"},                                    # only an id
                     "not an app",
                     {"id": "/deploying", "deployments": [{"id": "d-1"}, "junk"]}]}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith("/v2/leader"):
                body, code = json.dumps({"leader": "127.0.0.1:8080"}).encode(), 200
            else:
                body, code = json.dumps(apps).encode(), 200
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = MarathonClient([f"http://127.0.0.1:{server.server_address[1]}"], retries=0)
        _, s = scrape(MarathonCollector(client))  # type: ignore[arg-type]
        client.close()
    finally:
        server.shutdown()
        server.server_close()
    assert value(s, "marathon_up") == 1.0 and value(s, "marathon_apps") == 3.0
    assert value(s, "marathon_app_instances", app="/old") == 2.0
    assert value(s, "marathon_app_tasks", app="/old", state="running") == 1.0
    assert value(s, "marathon_app_tasks", app="/old", state="healthy") == 0.0
    assert value(s, "marathon_app_instances", app="/bare") == 0.0
    assert value(s, "marathon_app_deployments", app="/deploying") == 1.0
    assert {lbl["app"] for lbl in series(s, "marathon_app_instances")} == {"/old", "/bare", "/deploying"}
