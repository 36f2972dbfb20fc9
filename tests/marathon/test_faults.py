"""Fault tests with real processes: the scaler SIGKILLed mid-cycle and restarted, against the real-time fake."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.contracts.marathon_scaler import NAMED_METRICS
from orchestrator.fakes.marathon import FakeMarathon
from tests.support.prometheus import PrometheusStub

QUERY = NAMED_METRICS["cpu"].replace("$app", "/shop/web")
CONFIG = """
policies:
  /shop/web:
    min_instances: 2
    max_instances: 12
    metric: cpu
    target: 0.5
    scale_up: {stabilization_seconds: 0, policies: [{type: Pods, value: 1, period_seconds: 600}]}
"""


def scaler(fake: FakeMarathon, prom: PrometheusStub, tmp: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "orchestrator.cli", "marathon", "autoscale", "--prometheus", prom.url,
           "--config", str(tmp / "scaler.yaml"), "--state-dir", str(tmp / "state"), "--interval", "0.3", *extra]
    for url in fake.urls:
        cmd += ["--marathon", url]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def puts(fake: FakeMarathon) -> list[dict]:
    return [json.loads(r["body"]) for r in fake.requests if r["method"] == "PUT"]


def test_sigkill_mid_cycle_then_restart_does_not_scale_twice(tmp_path):
    (tmp_path / "scaler.yaml").write_text(CONFIG)
    prom = PrometheusStub()
    prom.values[QUERY] = 1.0  # 200 % of target all along: the policy allows +1 per 10 minutes
    fake = FakeMarathon(instances=2, step_seconds=0.1, health_delay=0.1).start()
    first = second = None
    try:
        fake.add_app({"id": "/shop/web", "instances": 4, "healthChecks": [{"protocol": "HTTP"}]})
        fake.pause_writes()  # the PUT reaches Marathon and waits there
        first = scaler(fake, prom, tmp_path)
        wait_for(lambda: puts(fake) != [])
        first.send_signal(signal.SIGKILL)  # killed after its decision, before Marathon's answer
        first.wait(timeout=10)
        fake.resume_writes()               # ... and Marathon applies it all the same
        wait_for(lambda: fake.running("/shop/web") == 5)
        second = scaler(fake, prom, tmp_path, "--max-cycles", "8")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        fake.stop()
        prom.stop()
    assert puts(fake) == [{"instances": 5}]
    events = [json.loads(line) for line in out.splitlines()]
    assert {"intent-applied"} <= {e.get("reason") for e in events}
    assert fake.instances("/shop/web") == 5


def test_sigkill_before_marathon_saw_it_then_restart_scales_once(tmp_path):
    (tmp_path / "scaler.yaml").write_text(CONFIG)
    prom = PrometheusStub()
    prom.values[QUERY] = 1.0
    fake = FakeMarathon(instances=1, step_seconds=0.1, health_delay=0.1).start()
    first = second = None
    try:
        fake.add_app({"id": "/shop/web", "instances": 4, "healthChecks": [{"protocol": "HTTP"}]})
        first = scaler(fake, prom, tmp_path)
        wait_for(lambda: (tmp_path / "state" / "state.state").exists())
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        n = len(puts(fake))
        second = scaler(fake, prom, tmp_path, "--max-cycles", "6")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        fake.stop()
        prom.stop()
    assert puts(fake) == [{"instances": 5}] and n in (0, 1)


def test_bad_config_is_exit_2_with_file_and_key(tmp_path):
    (tmp_path / "scaler.yaml").write_text("policies:\n  /shop/web: {min_instances: 5, max_instances: 2, metric: cpu, "
                                          "target: 1}\n")
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "marathon", "autoscale", "--once", "--marathon",
                           "http://127.0.0.1:9", "--prometheus", "http://127.0.0.1:9", "--config",
                           str(tmp_path / "scaler.yaml"), "--dry-run"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "scaler.yaml" in proc.stderr and "/shop/web" in proc.stderr and "min_instances 5 > max_instances 2" in \
        proc.stderr and "Traceback" not in proc.stderr


def test_marathon_down_once_is_exit_5(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "marathon", "autoscale", "--once", "--marathon",
                           "http://127.0.0.1:9", "--prometheus", "http://127.0.0.1:9", "--dry-run", "--timeout", "1"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 5, proc.stderr


def test_run_reconciles_the_declared_apps_then_autoscales_them(tmp_path):
    (tmp_path / "scaler.yaml").write_text(CONFIG)
    (tmp_path / "apps.json").write_text(json.dumps([{"id": "/shop/web", "cmd": "serve", "instances": 4}]))
    prom = PrometheusStub()
    prom.values[QUERY] = 1.0
    fake = FakeMarathon(step_seconds=0.05, health_delay=0.05).start()
    try:
        cmd = [sys.executable, "-m", "orchestrator.cli", "marathon", "run", "--prometheus", prom.url, "--config",
               str(tmp_path / "scaler.yaml"), "--state-dir", str(tmp_path / "state"), "--apps-file",
               str(tmp_path / "apps.json"), "--interval", "0.5", "--max-cycles", "8", "--marathon", fake.urls[0]]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PYTHONPATH": os.getcwd()})
    finally:
        fake.stop()
        prom.stop()
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {"reconcile", "autoscale"} <= {e["loop"] for e in events}
    assert (tmp_path / "state" / "heal.state").exists()  # the heal loop ran too (no policy: no event)
    assert [e["action"] for e in events if e["loop"] == "reconcile" and e.get("action")] == ["create"]
    assert fake.instances("/shop/web") == 5  # created with 4, then +1 (the policy allows one per 10 minutes)
