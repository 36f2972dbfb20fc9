"""The real probe (`orchestrator probe`, this machine's /proc) publishing to the real API: the report schema is
one contract on both sides — full report first, then deltas applied on their base, nothing rejected."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.api.conftest import RunningApi


def test_the_probe_publishes_to_the_api(api: RunningApi, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(api.token("probe") or "")
    proc = subprocess.run([sys.executable, "-m", "orchestrator.cli", "probe", "--api", api.url, "--token-file",
                           str(token), "--probe-id", "e2e-node", "--interval", "1", "--iterations", "3",
                           "--metrics-port", "0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    reports = api.state.reports
    assert reports.labels("accepted")._value.get() >= 3
    assert reports.labels("rejected")._value.get() == 0 and reports.labels("resync")._value.get() == 0
    with api.client("viewer") as client:
        probes = {p["probe_id"]: p for p in client.get("/api/v1/probes").json()}
        processes = client.get("/api/v1/topology/processes", params={"search": "host:" + probes["e2e-node"]["hostname"]})
    assert probes["e2e-node"]["state"] == "ok" and probes["e2e-node"]["schema_version"] == 1
    assert processes.json()["nodes"], "the host's processes are in the processes view"
