"""Grafana, the grafana tier: the pinned official image (settings `grafana.image`), the Prometheus datasource
and the dashboards of components/dashboards.py provisioned from ConfigMaps, the admin password only as a
file mounted from the credentials tier's Secret `grafana-auth` (secret config `grafana_admin_password`).

Reached with `kubectl port-forward` (NetworkPolicies do not filter it), or through an Ingress with TLS when
`grafana.ingress` is set (and security.allow_ingress): then only the ingress controller's namespace may
connect. No anonymous access, no sign-up.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import dashboards
from components import k8s as kx
from components import security as sec
from components.settings import GrafanaSettings
from orchestrator.contracts import tiers

TIER = tiers.GRAFANA
UID = 10472  # not the image's 472: a high uid (checkov CKV_K8S_40); Grafana runs as any uid with writable dirs
PROVISIONING = "/etc/grafana/provisioning"
DASHBOARDS_DIR = "/var/lib/grafana/dashboards"
SECRET_DIR = "/etc/grafana/secrets"


def datasource_yaml(prometheus_url: str) -> str:
    text: str = yaml.safe_dump({"apiVersion": 1, "datasources": [{
        "name": "Prometheus", "type": "prometheus", "uid": dashboards.DATASOURCE_UID, "access": "proxy",
        "url": prometheus_url, "isDefault": True, "editable": False}]}, sort_keys=False)
    return text


def dashboard_provider_yaml(path: str = DASHBOARDS_DIR) -> str:
    text: str = yaml.safe_dump({"apiVersion": 1, "providers": [{
        "name": "orchestrator", "folder": "Orchestrator", "type": "file", "disableDeletion": True,
        "allowUiUpdates": False, "options": {"path": path}}]}, sort_keys=False)
    return text


def grafana_ini(port: int, root_url: str | None = None, secret_dir: str = SECRET_DIR,
                provisioning: str = PROVISIONING) -> str:
    """Grafana's config file (the same for the cluster and the docker-compose stack). The admin password
    is read from a file by Grafana's `$__file{}` expansion: never a default, never in an environment
    variable or the pod spec."""
    server = f"http_port = {port}\n" + (f"root_url = {root_url}\n" if root_url else "")
    return (f"[server]\n{server}\n"
            f"[paths]\nprovisioning = {provisioning}\n\n"
            # Logs to stdout only: the root filesystem is read-only (no /var/log/grafana).
            "[log]\nmode = console\n\n"
            "[security]\nadmin_user = admin\n"
            f"admin_password = $__file{{{secret_dir}/admin-password}}\n"
            "disable_gravatar = true\ncookie_secure = " + ("true" if root_url else "false") + "\n\n"
            "[auth.anonymous]\nenabled = false\n\n"
            "[users]\nallow_sign_up = false\nallow_org_create = false\n\n"
            "[analytics]\nreporting_enabled = false\ncheck_for_updates = false\ncheck_for_plugin_updates = false\n")


@dataclass(frozen=True)
class GrafanaArgs:
    platform: kx.PlatformContext
    grafana: GrafanaSettings
    prometheus_url: pulumi.Input[str]
    admin_secret: pulumi.Input[str]  # the credentials tier's Secret with the key `admin-password`


class Grafana(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(self, name: str, args: GrafanaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:grafana:Grafana", name, None, opts)
        g = args.grafana
        t = kx.TierContext.of(self, TIER, name, args.platform)
        self.peer = sec.Peer.of(t, {"http": g.port})
        self.flows = [sec.Flow(TIER, tiers.PROMETHEUS, "http", "Grafana's datasource queries Prometheus")]
        if g.ingress is not None:
            self.flows.append(sec.Flow(sec.InNamespace(g.ingress.controller_namespace), TIER, "http",
                                       "users reach Grafana through the ingress controller (grafana.ingress)"))
        ini = grafana_ini(g.port, f"https://{g.ingress.host}/" if g.ingress is not None else None)
        provisioning = k8s.core.v1.ConfigMap(
            f"{name}-provisioning", metadata=t.metadata(f"{name}-provisioning"),
            data={"datasource.yaml": pulumi.Output.from_input(args.prometheus_url).apply(datasource_yaml),
                  "dashboards.yaml": dashboard_provider_yaml(), "grafana.ini": ini}, opts=t.opts)
        boards_data = dashboards.files()
        boards = k8s.core.v1.ConfigMap(f"{name}-dashboards", metadata=t.metadata(f"{name}-dashboards"),
                                       data=boards_data, opts=t.opts)
        account = t.service_account()
        secret_volume, secret_mount = kx.secret_volume("admin", args.admin_secret, ("admin-password",), SECRET_DIR)
        container = kx.container({
            "name": "grafana",
            "image": g.image,
            "ports": [{"name": "http", "container_port": g.port}],
            "liveness_probe": kx.http_probe("/api/health", "http", initial_delay=30),
            "readiness_probe": kx.http_probe("/api/health", "http", initial_delay=10),
            "volume_mounts": [
                {"name": "provisioning", "mount_path": "/etc/grafana/grafana.ini", "sub_path": "grafana.ini",
                 "read_only": True},
                {"name": "provisioning", "mount_path": f"{PROVISIONING}/datasources/datasource.yaml",
                 "sub_path": "datasource.yaml", "read_only": True},
                {"name": "provisioning", "mount_path": f"{PROVISIONING}/dashboards/dashboards.yaml",
                 "sub_path": "dashboards.yaml", "read_only": True},
                {"name": "dashboards", "mount_path": DASHBOARDS_DIR, "read_only": True},
                {"name": "data", "mount_path": "/var/lib/grafana"},
                {"name": "tmp", "mount_path": "/tmp"},
                secret_mount,
            ],
        }, g.resources)
        volumes: list[dict[str, Any]] = [
            {"name": "provisioning", "config_map": {"name": provisioning.metadata["name"]}},
            {"name": "dashboards", "config_map": {"name": boards.metadata["name"]}},
            # Dashboards come from code and the one user from the secret: nothing in Grafana's database
            # needs keeping. One replica for that reason too: sessions live in each replica's own database.
            {"name": "data", "empty_dir": {}},
            {"name": "tmp", "empty_dir": {}},
            secret_volume,
        ]
        self.deployment = t.deployment(
            1, {"type": "Recreate"}, t.pod_spec(account, [container], uid=UID, spread=None, volumes=volumes),
            kx.checkov_skips(g.resources),
            # A dashboard change rolls the pod (subPath and file providers would otherwise lag or miss it).
            template_annotations={"orchestrator.io/config-sha": kx.content_hash(
                ini + dashboard_provider_yaml() + "".join(sorted(boards_data.values())))})
        self.service = t.cluster_service([kx.service_port("http", g.port)])
        if g.ingress is not None:
            ing = g.ingress
            k8s.networking.v1.Ingress(name, metadata=t.metadata(), spec={
                **({"ingress_class_name": ing.class_name} if ing.class_name else {}),
                "tls": [{"hosts": [ing.host], "secret_name": ing.tls_secret}],
                "rules": [{"host": ing.host, "http": {"paths": [{"path": "/", "path_type": "Prefix", "backend": {
                    "service": {"name": self.service.metadata["name"], "port": {"name": "http"}}}}]}}]},
                opts=t.opts)
        self.url = t.url(self.service, g.port)
        self.register_outputs({"url": self.url})
