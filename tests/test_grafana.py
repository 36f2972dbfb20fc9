"""Grafana (components/grafana.py) under the render's mocks: schemas, references and checkov on what it
registers, the provisioned datasource and dashboards, and no password anywhere but a mounted file."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from components import dashboards
from components import k8s as kx
from components.grafana import IMAGE, Grafana, GrafanaArgs
from orchestrator.toolchain import checks
from tests.support.harness import objects, one, run, settings
from tests.support.tools import require_checkov


def build():
    ctx = kx.PlatformContext.of(settings())
    secret = kx.metadata("grafana-auth", "orchestrator", {})
    import pulumi_kubernetes as k8s

    k8s.core.v1.Namespace("orchestrator", metadata=kx.metadata("orchestrator", None, {}))
    k8s.core.v1.Secret("grafana-auth", metadata=secret, string_data={"admin-password": "not-in-the-pod-spec"})
    Grafana("grafana", GrafanaArgs(ctx, "orchestrator", "http://prometheus.orchestrator.svc.cluster.local:9090",
                                   "grafana-auth"))


def test_grafana_renders_valid_objects_with_the_dashboards():
    result = run(build)
    deployment = one(result, "Deployment", "grafana")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == IMAGE and ":" in IMAGE and not IMAGE.endswith(":latest")
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"].endswith("/admin-password")
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env and env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    spec_text = json.dumps(deployment)
    assert "not-in-the-pod-spec" not in spec_text

    provisioning = one(result, "ConfigMap", "grafana-provisioning")["data"]
    source = yaml.safe_load(provisioning["datasource.yaml"])["datasources"][0]
    assert (source["uid"], source["url"]) == (dashboards.DATASOURCE_UID,
                                              "http://prometheus.orchestrator.svc.cluster.local:9090")
    boards = one(result, "ConfigMap", "grafana-dashboards")["data"]
    assert set(boards) == set(dashboards.files()) and len(boards) == 5

    problems = checks.kubernetes_schema_problems(result.manifests) + checks.reference_problems(result.manifests)
    assert problems == []
    assert len(objects(result, "Service")) == 1


def test_checkov_finds_only_the_missing_network_policy(tmp_path):
    checkov = require_checkov()
    result = run(build)
    docs = [m for m in result.manifests if m["kind"] != "Secret"]
    (tmp_path / "grafana").mkdir()
    (tmp_path / "grafana" / "manifests.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    problems = checks.checkov_problems(tmp_path, Path(checkov))
    # Only the NetworkPolicy is missing: the security tier writes it once Grafana is wired into the Platform.
    assert [p.split(" ")[1] for p in problems] == ["CKV2_K8S_6"], problems
