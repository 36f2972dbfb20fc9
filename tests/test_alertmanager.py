"""Alertmanager's configuration: amtool check-config, routing by severity (amtool), and inhibition proven on a
real Alertmanager (Debian's prometheus-alertmanager) on loopback."""
from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from components.alertmanager import INHIBITIONS, Receiver, Smtp, config, secret_files
from tests.support.tools import require_tool

RECEIVERS = [Receiver(name="oncall", severities=["critical"], slack_channel="#oncall"),
             Receiver(name="team", email_to="team@example.org"),
             Receiver(name="hook", severities=["warning"], webhook_url="http://127.0.0.1:9/hook")]
SMTP = Smtp(smarthost="smtp.example.org:587", sender="alerts@example.org", username="alerts")


def write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.mark.parametrize("receivers", [[], RECEIVERS], ids=["no receivers", "slack, email, webhook"])
def test_amtool_accepts_the_config(tmp_path, receivers):
    amtool = require_tool("amtool", hint="scripts/install-system-tools.sh installs Debian's prometheus-alertmanager")
    out = subprocess.run([amtool, "check-config", str(write(tmp_path, config(receivers, SMTP)))],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f" - {len(receivers) + 1} receivers" in out.stdout


def test_routes_by_severity(tmp_path):
    amtool = require_tool("amtool", hint="scripts/install-system-tools.sh installs Debian's prometheus-alertmanager")
    path = write(tmp_path, config(RECEIVERS, SMTP))

    def route(*labels: str) -> str:
        out = subprocess.run([amtool, "config", "routes", "test", f"--config.file={path}", *labels],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert route("alertname=MesosNoLeader", "severity=critical") == "oncall,team"
    assert route("alertname=ProbeOffline", "severity=warning") == "team,hook"
    assert route("alertname=Other") == "nobody"


def test_credentials_are_files_and_bad_settings_are_refused():
    doc = config(RECEIVERS, SMTP)
    text = json.dumps(doc)
    assert "slack-api-url" in text and "smtp-password" in text and "api_url\"" not in text
    assert secret_files(RECEIVERS) == ["slack-api-url", "smtp-password"] and secret_files([]) == []
    with pytest.raises(ValueError, match="smtp"):
        config([Receiver(name="a", email_to="a@b.c")])
    with pytest.raises(ValueError, match="unique"):
        config([Receiver(name="a", webhook_url="http://x"), Receiver(name="a", webhook_url="http://y")])
    with pytest.raises(ValueError, match="slack_channel, email_to or webhook_url"):
        Receiver(name="empty")


def test_inhibitions_name_real_alerts():
    from components.monitoring import alert_rules

    names = {r["alert"] for g in alert_rules(3)["groups"] for r in g["rules"] if "alert" in r}
    for source, targets in INHIBITIONS:
        assert source in names
        assert set(targets.split("|")) <= names, set(targets.split("|")) - names


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_lost_quorum_silences_the_alerts_it_causes(tmp_path):
    binary = require_tool("prometheus-alertmanager",
                          hint="scripts/install-system-tools.sh installs Debian's prometheus-alertmanager")
    path = write(tmp_path, config([]))
    port = free_port()
    proc = subprocess.Popen([binary, f"--config.file={path}", f"--storage.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}/api/v2"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/status", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("alertmanager did not start") from None
                time.sleep(0.2)

        def alert(name: str, platform: str) -> dict:
            return {"labels": {"alertname": name, "platform": platform, "severity": "warning"}}

        alerts = [alert("ZooKeeperQuorumLost", "a"), alert("ZooKeeperServerDown", "a"), alert("MesosNoLeader", "a"),
                  alert("MarathonNoLeader", "a"), alert("ZooKeeperServerDown", "b"), alert("ProbeOffline", "a")]
        request = urllib.request.Request(f"{base}/alerts", data=json.dumps(alerts).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=5)
        deadline = time.monotonic() + 30
        while True:  # inhibition is computed when alerts are listed; give the dispatcher a moment
            listed = json.loads(urllib.request.urlopen(f"{base}/alerts", timeout=5).read())
            state = {(a["labels"]["alertname"], a["labels"]["platform"]): a["status"]["state"] for a in listed}
            if len(state) == len(alerts) and state[("ZooKeeperServerDown", "a")] == "suppressed":
                break
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert state == {
        ("ZooKeeperQuorumLost", "a"): "active",
        ("ZooKeeperServerDown", "a"): "suppressed",   # explained by the lost quorum
        ("MesosNoLeader", "a"): "suppressed",
        ("MarathonNoLeader", "a"): "suppressed",
        ("ZooKeeperServerDown", "b"): "active",       # another platform: not inhibited
        ("ProbeOffline", "a"): "active",              # unrelated
    }
