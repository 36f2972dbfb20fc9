"""Grafana for the monitoring tier: the pinned official image, the Prometheus datasource and the dashboards of
components/dashboards.py provisioned from ConfigMaps, the admin password only as a mounted file.

Not wired into the Platform yet (settings and the admin password's secret config through the credentials
tier are the missing pieces); tests/test_grafana.py builds it under the render's mocks and runs the
schema, reference and checkov checks on what it registers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import dashboards
from components import k8s as kx
from components.settings import Resources

# ../shared/pins.md: grafana/grafana 13.2.x (13.2.0 released 2026-08-18); grafana/grafana-oss stopped at 12.4.
IMAGE = "grafana/grafana:13.2.0"
PORT = 3000
UID = 10472  # not the image's 472: a high uid (checkov CKV_K8S_40); Grafana runs as any uid with writable dirs
PROVISIONING = "/etc/grafana/provisioning"
DASHBOARDS_DIR = "/var/lib/grafana/dashboards"
SECRET_DIR = "/etc/grafana/secrets"


def datasource_yaml(prometheus_url: str) -> str:
    text: str = yaml.safe_dump({"apiVersion": 1, "datasources": [{
        "name": "Prometheus", "type": "prometheus", "uid": dashboards.DATASOURCE_UID, "access": "proxy",
        "url": prometheus_url, "isDefault": True, "editable": False}]}, sort_keys=False)
    return text


def dashboard_provider_yaml() -> str:
    text: str = yaml.safe_dump({"apiVersion": 1, "providers": [{
        "name": "orchestrator", "folder": "Orchestrator", "type": "file", "disableDeletion": True,
        "allowUiUpdates": False, "options": {"path": DASHBOARDS_DIR}}]}, sort_keys=False)
    return text


@dataclass(frozen=True)
class GrafanaArgs:
    platform: kx.PlatformContext
    namespace: str
    prometheus_url: pulumi.Input[str]
    admin_secret: pulumi.Input[str]  # Secret with the key `admin-password` (from a Pulumi secret)
    image: str = IMAGE
    resources: Resources = Resources(cpu_request="100m", memory_request="128Mi", memory_limit="256Mi")


class Grafana(pulumi.ComponentResource):
    def __init__(self, name: str, args: GrafanaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:monitoring:Grafana", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = kx.labels("grafana", "grafana", name)
        selector = kx.selector_labels("grafana", "grafana", name)
        ns = args.namespace
        provisioning = k8s.core.v1.ConfigMap(
            f"{name}-provisioning", metadata=kx.metadata(f"{name}-provisioning", ns, labels),
            data={"datasource.yaml": pulumi.Output.from_input(args.prometheus_url).apply(datasource_yaml),
                  "dashboards.yaml": dashboard_provider_yaml()}, opts=child)
        boards = k8s.core.v1.ConfigMap(f"{name}-dashboards", metadata=kx.metadata(f"{name}-dashboards", ns, labels),
                                       data=dashboards.files(), opts=child)
        account = kx.service_account(name, name, ns, labels, child, False)
        secret_volume, secret_mount = kx.secret_volume("admin", args.admin_secret, ("admin-password",), SECRET_DIR)
        container = kx.container({
            "name": "grafana",
            "image": args.image,
            "env": [
                # The admin password only as a file: never a default, never an environment value.
                {"name": "GF_SECURITY_ADMIN_PASSWORD__FILE", "value": f"{SECRET_DIR}/admin-password"},
                {"name": "GF_SECURITY_DISABLE_INITIAL_ADMIN_CREATION", "value": "false"},
                {"name": "GF_AUTH_ANONYMOUS_ENABLED", "value": "false"},
                {"name": "GF_USERS_ALLOW_SIGN_UP", "value": "false"},
                {"name": "GF_ANALYTICS_REPORTING_ENABLED", "value": "false"},
                {"name": "GF_ANALYTICS_CHECK_FOR_UPDATES", "value": "false"},
                {"name": "GF_PATHS_PROVISIONING", "value": PROVISIONING},
            ],
            "ports": [{"name": "http", "container_port": PORT}],
            "liveness_probe": kx.http_probe("/api/health", "http", initial_delay=30),
            "readiness_probe": kx.http_probe("/api/health", "http", initial_delay=10),
            "volume_mounts": [
                {"name": "provisioning", "mount_path": f"{PROVISIONING}/datasources/datasource.yaml",
                 "sub_path": "datasource.yaml", "read_only": True},
                {"name": "provisioning", "mount_path": f"{PROVISIONING}/dashboards/dashboards.yaml",
                 "sub_path": "dashboards.yaml", "read_only": True},
                {"name": "dashboards", "mount_path": DASHBOARDS_DIR, "read_only": True},
                {"name": "data", "mount_path": "/var/lib/grafana"},
                {"name": "tmp", "mount_path": "/tmp"},
                secret_mount,
            ],
        }, args.resources)
        volumes: list[dict[str, Any]] = [
            {"name": "provisioning", "config_map": {"name": provisioning.metadata["name"]}},
            {"name": "dashboards", "config_map": {"name": boards.metadata["name"]}},
            # Dashboards come from code and users from the admin: nothing in Grafana's database needs keeping.
            {"name": "data", "empty_dir": {}},
            {"name": "tmp", "empty_dir": {}},
            secret_volume,
        ]
        pod: dict[str, Any] = {"containers": [container], "service_account_name": account.metadata["name"],
                               "automount_service_account_token": False,
                               "security_context": kx.restricted_pod_security(UID), "volumes": volumes}
        self.deployment = k8s.apps.v1.Deployment(
            name, metadata=kx.metadata(name, ns, labels, kx.checkov_skips(args.resources)),
            spec={"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"match_labels": selector},
                  "template": {"metadata": {"labels": labels}, "spec": pod}}, opts=child)
        self.service = kx.cluster_service(name, name, ns, labels, selector, [kx.service_port("http", PORT)], child)
        self.register_outputs({"deployment": self.deployment.metadata["name"]})
