"""`orchestrator marathon validate|reconcile` as processes: exit codes from the one table, one-line errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from orchestrator.fakes.marathon import FakeMarathon


def orchestrator(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_validate(tmp_path):
    (tmp_path / "web.yaml").write_text("id: /shop/web\ncmd: serve\n")
    ok = orchestrator("marathon", "validate", "--apps-dir", str(tmp_path))
    assert ok.returncode == 0 and "ok: 1 app definition(s)" in ok.stdout
    (tmp_path / "api.yaml").write_text("id: /shop/api\ncmd: serve\ncpus: -1\n")
    bad = orchestrator("marathon", "validate", "--apps-dir", str(tmp_path))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "api.yaml: cpus:" in bad.stderr and "Traceback" not in bad.stderr


def test_reconcile_refuses_deletes_without_the_flag(tmp_path):
    apps = tmp_path / "apps.json"
    with FakeMarathon(step_seconds=0.05, health_delay=0.05) as fake:  # deployments done before the next run
        apps.write_text(json.dumps([{"id": "/keep", "cmd": "x"}, {"id": "/old", "cmd": "x"}]))
        assert orchestrator("marathon", "reconcile", "--once", "--apps-file", str(apps),
                            "--marathon", fake.urls[0]).returncode == 0
        apps.write_text(json.dumps([{"id": "/keep", "cmd": "x"}]))
        refused = orchestrator("marathon", "reconcile", "--once", "--apps-file", str(apps), "--marathon", fake.urls[0])
        assert refused.returncode == 6 and "/old" in refused.stderr and "--allow-delete" in refused.stderr
        assert "/old" in fake.app_ids()
        allowed = orchestrator("marathon", "reconcile", "--once", "--allow-delete", "--apps-file", str(apps),
                               "--marathon", fake.urls[0])
        assert allowed.returncode == 0, allowed.stderr
        events = [json.loads(line) for line in allowed.stdout.splitlines()]
        assert [(e["app"], e["action"]) for e in events if e.get("action")] == [("/old", "delete")]


def test_missing_marathon_url_or_apps_file_is_bad_input(tmp_path):
    (tmp_path / "apps.json").write_text("[]")
    env_free = orchestrator("marathon", "reconcile", "--once", "--apps-file", str(tmp_path / "apps.json"))
    assert env_free.returncode == 2 and "--marathon" in env_free.stderr
    missing = orchestrator("marathon", "reconcile", "--once", "--apps-file", str(tmp_path / "nope.json"),
                           "--marathon", "http://127.0.0.1:9")
    assert missing.returncode == 2 and "nope.json" in missing.stderr
