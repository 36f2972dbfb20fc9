"""The grafana tier (components/grafana.py) under the render's mocks: schemas, references and checkov on what it
registers, the provisioned datasource and dashboards, the admin password only as a mounted file, and the Ingress
only when configured."""
from __future__ import annotations

import configparser
import json
from pathlib import Path

import pulumi_kubernetes as k8s
import yaml

from components import dashboards
from components import k8s as kx
from components.grafana import SECRET_DIR, Grafana, GrafanaArgs, grafana_ini
from components.settings import GrafanaSettings
from orchestrator.contracts import tiers
from orchestrator.toolchain import checks
from tests.support.harness import objects, one, run, settings
from tests.support.tools import require_checkov

PROMETHEUS = "http://prometheus.orchestrator.svc.cluster.local:9090"
PASSWORD = "not-in-the-pod-spec"


def build(grafana: GrafanaSettings, allow_ingress: bool = False):
    def program():
        s = settings(security={"allow_ingress": allow_ingress})
        k8s.core.v1.Namespace("orchestrator", metadata=kx.metadata("orchestrator", None, {}))
        k8s.core.v1.Secret("grafana-auth", metadata=kx.metadata("grafana-auth", "orchestrator", {}),
                           string_data={"admin-password": PASSWORD})
        g = Grafana("grafana", GrafanaArgs(kx.PlatformContext.of(s), grafana, PROMETHEUS, "grafana-auth"))
        build.peer, build.flows = g.peer, g.flows
    return program


def test_grafana_renders_valid_objects_with_the_dashboards():
    result = run(build(GrafanaSettings(enabled=True)))
    deployment = one(result, "Deployment", "grafana")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == GrafanaSettings().image and not container["image"].endswith(":latest")
    assert "env" not in container, "no setting, and above all no password, through the environment"
    assert PASSWORD not in json.dumps([m for m in result.manifests if m["kind"] != "Secret"])
    assert {"name": "admin", "mountPath": SECRET_DIR, "readOnly": True} in container["volumeMounts"]
    (admin,) = [v for v in pod["volumes"] if v["name"] == "admin"]
    assert admin["secret"]["secretName"] == "grafana-auth"

    provisioning = one(result, "ConfigMap", "grafana-provisioning")["data"]
    source = yaml.safe_load(provisioning["datasource.yaml"])["datasources"][0]
    assert (source["uid"], source["url"]) == (dashboards.DATASOURCE_UID, PROMETHEUS)
    ini = configparser.ConfigParser(interpolation=None)
    ini.read_string(provisioning["grafana.ini"])
    assert ini["security"]["admin_password"] == f"$__file{{{SECRET_DIR}/admin-password}}"
    assert ini["auth.anonymous"]["enabled"] == "false" and ini["users"]["allow_sign_up"] == "false"
    boards = one(result, "ConfigMap", "grafana-dashboards")["data"]
    assert set(boards) == set(dashboards.files()) and len(boards) == 5

    problems = checks.kubernetes_schema_problems(result.manifests) + checks.reference_problems(result.manifests)
    assert problems == []
    assert len(objects(result, "Service")) == 1 and objects(result, "Ingress") == []
    # Without an Ingress nobody may connect (kubectl port-forward is not filtered by NetworkPolicies).
    assert [(f.source, f.dest, f.port) for f in build.flows] == [(tiers.GRAFANA, tiers.PROMETHEUS, "http")]


def test_an_ingress_only_with_tls_and_only_from_the_controller():
    ingress = {"host": "grafana.example.org", "tls_secret": "grafana-tls", "controller_namespace": "ingress-nginx"}
    result = run(build(GrafanaSettings(enabled=True, ingress=ingress), allow_ingress=True))
    ing = one(result, "Ingress", "grafana")
    assert ing["spec"]["tls"] == [{"hosts": ["grafana.example.org"], "secretName": "grafana-tls"}]
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "grafana", "port": {"name": "http"}}
    inbound = [f for f in build.flows if getattr(f.dest, "id", None) == "grafana"]
    assert [(f.source.name, f.port) for f in inbound] == [("ingress-nginx", "http")]
    ini = one(result, "ConfigMap", "grafana-provisioning")["data"]["grafana.ini"]
    assert "root_url = https://grafana.example.org/" in ini and "cookie_secure = true" in ini


def test_grafana_ini_is_one_source_for_the_cluster_and_compose():
    text = grafana_ini(3000, secret_dir="/run/secrets")
    assert "$__file{/run/secrets/admin-password}" in text and "root_url" not in text


def test_checkov_finds_only_the_missing_network_policy(tmp_path):
    checkov = require_checkov()
    result = run(build(GrafanaSettings(enabled=True)))
    docs = [m for m in result.manifests if m["kind"] != "Secret"]
    (tmp_path / "grafana").mkdir()
    (tmp_path / "grafana" / "manifests.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    problems = checks.checkov_problems(tmp_path, Path(checkov))
    # Alone, only its NetworkPolicy is missing: the security tier writes it (tests/test_alerting_tiers.py).
    assert [p.split(" ")[1] for p in problems] == ["CKV2_K8S_6"], problems
