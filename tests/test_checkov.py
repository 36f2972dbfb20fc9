"""checkov's Kubernetes checks on every rendered stack: zero failures; each accepted finding is skipped by
an annotation on the resource itself, with its reason, and no skip is stale."""
import json
import subprocess

import pytest
import yaml

from orchestrator.toolchain.render import write_render
from tests.support.harness import stack
from tests.support.tools import require_checkov


def scan(directory):
    exe = require_checkov()
    proc = subprocess.run([exe, "-d", str(directory), "--framework", "kubernetes",
                           "--skip-download", "-o", "json"], capture_output=True, text=True, timeout=600)
    report = json.loads(proc.stdout)
    return report[0] if isinstance(report, list) else report


def annotated_skips(directory):
    skips = {}
    for path in directory.rglob("manifests.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            for key, value in (doc["metadata"].get("annotations") or {}).items():
                if key.startswith("checkov.io/skip"):
                    check, reason = value.split("=", 1)
                    skips[(doc["kind"], doc["metadata"]["name"], check)] = reason
    return skips


@pytest.fixture(scope="module", params=["dev", "prod"])
def rendered(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("checkov") / request.param
    write_render(stack(request.param), out)
    return out


def test_no_failed_checks_and_every_skip_is_reasoned_and_used(rendered):
    report = scan(rendered)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 300
    skipped = {(c["resource"].split(".")[0], c["resource"].split(".")[-1], c["check_id"])
               for c in report["results"]["skipped_checks"]}
    skips = annotated_skips(rendered)
    assert skips, "no skip annotations found"
    for key, reason in skips.items():
        assert len(reason) > 20, f"{key}: a skip needs its reason"
        assert key in skipped, f"{key}: stale skip (checkov no longer reports this finding)"


def test_removing_a_skip_makes_the_scan_fail(rendered, tmp_path):
    docs = list(yaml.safe_load_all((rendered / "mesos-agent" / "manifests.yaml").read_text()))
    for doc in docs:
        annotations = doc["metadata"].get("annotations") or {}
        for key in [k for k, v in annotations.items() if v.startswith("CKV_K8S_16=")]:
            del annotations[key]
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump_all(docs))
    failed = {c["check_id"] for c in scan(tmp_path)["results"]["failed_checks"]}
    # Alone, the agent also lacks a NetworkPolicy (CKV2_K8S_6): checkov does see the policies' effect.
    assert failed == {"CKV_K8S_16", "CKV2_K8S_6"}
    (tmp_path / "policies.yaml").write_text((rendered / "network-policy" / "manifests.yaml").read_text())
    failed = {c["check_id"] for c in scan(tmp_path)["results"]["failed_checks"]}
    assert failed == {"CKV_K8S_16"}
