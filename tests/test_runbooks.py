"""Every alert the monitoring tier renders carries a runbook_url that points at an existing section."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from orchestrator.toolchain import checks
from tests.support.harness import stack

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "https://github.com/orchestrator/orchestrator/blob/main/"


def test_every_alert_has_a_runbook_section():
    rules = yaml.safe_load(checks.prometheus_files(stack("prod").manifests)["alerts.yml"])
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert len(alerts) >= 14
    for rule in alerts:
        url = rule["annotations"].get("runbook_url", "")
        assert url.startswith(PREFIX), f"{rule['alert']}: no runbook_url"
        path, _, anchor = url[len(PREFIX):].partition("#")
        page = ROOT / path
        assert page.is_file(), f"{rule['alert']}: {path} does not exist"
        headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                    for h in re.findall(r"^#+ (.+)$", page.read_text(), re.M)}
        assert anchor in headings, f"{rule['alert']}: no section #{anchor} in {path}"
