"""The Marathon scaler as a platform tier: one replica of `orchestrator marathon run` (reconcile, autoscale and
heal loops; docs/marathon-scaler.md) holding a ZooKeeper lock, its state in znodes of its own (shared with the
API's policy edits), its config and the declared app definitions in a ConfigMap, its ZooKeeper identity and
Marathon's HTTP credentials from the credentials tier, its flows and alert rules."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components import security as sec
from components.settings import MarathonScalerSettings
from components.zookeeper import NO_TLS, ClientTls
from orchestrator.apps_as_code import configmap_data, load_apps
from orchestrator.contracts import marathon_scaler as contract
from orchestrator.contracts import tiers

TIER = tiers.MARATHON_SCALER
UID = 10001  # the services image's unprivileged user
CONFIG_DIR = "/etc/marathon-scaler"
AUTH_DIR = "/var/run/secrets/marathon-scaler"
CONFIG_FILE, APPS_FILE = "scaler.yaml", "apps.json"
RUNBOOK = "https://github.com/orchestrator/orchestrator/blob/main/docs/runbooks/marathon-scaler.md"


def scaler_config(s: MarathonScalerSettings) -> dict[str, Any]:
    """The scaler's config file (orchestrator.contracts.marathon_scaler.ScalerConfig) from the stack settings."""
    return contract.ScalerConfig(policies=s.policies, heal=s.heal, sync_seconds=s.sync_seconds).model_dump(
        mode="json", exclude_defaults=True)


def run_args(s: MarathonScalerSettings, marathon_url: str, prometheus_url: str, zk_connect: str,
             auth: bool, tls: ClientTls = NO_TLS) -> list[str]:
    args = ["marathon", "run", "--marathon", marathon_url, "--prometheus", prometheus_url,
            "--config", f"{CONFIG_DIR}/{CONFIG_FILE}", "--zk", zk_connect, *tls.args("--zk-tls"), "--zk-path", s.zk_path,
            "--metrics-listen", f"0.0.0.0:{s.metrics_port}", "--reconcile-interval", f"{s.reconcile_seconds:g}"]
    if s.apps_dir is not None:
        args += ["--apps-file", f"{CONFIG_DIR}/{APPS_FILE}"]
    if s.allow_delete:
        args.append("--allow-delete")
    if auth:
        args += ["--marathon-credentials-file", f"{AUTH_DIR}/http-credentials"]
    return args


def alert_rule_group() -> dict[str, Any]:
    """The scaler's alerts (the monitoring tier includes this group), each with its runbook."""
    def alert(name: str, expr: str, for_: str, severity: str, summary: str) -> dict[str, Any]:
        return {"alert": name, "expr": expr, "for": for_, "labels": {"severity": severity},
                "annotations": {"summary": summary, "runbook_url": f"{RUNBOOK}#{name.lower()}"}}

    return {"name": "orchestrator-marathon-scaler", "rules": [
        alert("MarathonScalerErrors", f"sum by (loop) (increase({contract.ERRORS_TOTAL}[10m])) > 3", "0m", "warning",
              "The Marathon scaler's {{ $labels.loop }} loop failed more than 3 cycles in 10 minutes."),
        alert("MarathonScalerStalled", f"time() - max by (loop) ({contract.LAST_CYCLE_TIMESTAMP}) > 300", "5m",
              "warning", "The Marathon scaler's {{ $labels.loop }} loop has not completed a cycle for 5 minutes."),
        alert("MarathonHealBudgetExhausted",
              f"sum by (scope) (increase({contract.HEAL_BUDGET_EXHAUSTED_TOTAL}[15m])) > 0", "0m", "warning",
              "The healer wanted to replace tasks but its {{ $labels.scope }} kill budget refused."),
        alert("MarathonHealCircuitOpen", f"max({contract.HEAL_CIRCUIT_OPEN}) == 1", "2m", "critical",
              "Many Marathon apps look unhealthy at once: the healer stopped killing (platform problem?)."),
    ]}


@dataclass(frozen=True)
class MarathonScalerArgs:
    platform: kx.PlatformContext
    scaler: MarathonScalerSettings
    image: str  # the services image (service.image)
    marathon_url: pulumi.Input[str]
    prometheus_url: pulumi.Input[str]
    zk_connect: pulumi.Input[str]  # the secure client port with zookeeper.tls_secret
    auth_secret: pulumi.Input[str] | None = None  # the credentials tier's `marathon-scaler-auth` Secret
    tls: ClientTls = NO_TLS  # zookeeper.tls_secret: the scaler's session is TLS


class MarathonScaler(pulumi.ComponentResource):
    def __init__(self, name: str, args: MarathonScalerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:marathon_scaler:MarathonScaler", name, None, opts)
        s = args.scaler
        t = kx.TierContext.of(self, TIER, name, args.platform)
        account = t.service_account()
        self.peer = sec.Peer.of(t, {"metrics": s.metrics_port})
        self.flows = [
            sec.Flow(TIER, tiers.MARATHON, "http", "the scaler reads apps and deployments, scales, kills, reconciles"),
            sec.Flow(TIER, tiers.ZOOKEEPER, args.tls.port, "the scaler's lock and state znodes"),
            sec.Flow(TIER, tiers.PROMETHEUS, "http", "the scaler queries app metrics and heal signals"),
            sec.Flow(tiers.PROMETHEUS, TIER, "metrics", "scrape the scaler (decisions, errors, heal circuit)"),
        ]
        data = {CONFIG_FILE: json.dumps(scaler_config(s), indent=2, sort_keys=True) + "\n"}
        if s.apps_dir is not None:
            data[APPS_FILE] = configmap_data(load_apps(s.apps_dir))[APPS_FILE]
        config = k8s.core.v1.ConfigMap(f"{name}-config", metadata=t.metadata(f"{name}-config"), data=data,
                                       opts=t.opts)
        volumes: list[dict[str, Any]] = [{"name": "config", "config_map": {"name": config.metadata["name"]}}]
        mounts: list[dict[str, Any]] = [{"name": "config", "mount_path": CONFIG_DIR, "read_only": True}]
        tls_volumes, tls_mounts = args.tls.volumes()
        volumes += tls_volumes
        mounts += tls_mounts
        env: list[dict[str, Any]] = []
        auth = args.auth_secret is not None
        if args.auth_secret is not None:
            # Its own ZooKeeper digest identity (creator-only state znodes) and Marathon's HTTP credentials:
            # nothing of the Mesos or Marathon ZooKeeper users.
            env.append(kx.secret_env("ORCHESTRATOR_ZK_AUTH", args.auth_secret, "zk-auth"))
            # The API's digest (not a password): the scaler grants it READ on state, READ|WRITE on overrides.
            env.append(kx.secret_env(contract.API_ACL_ENV, args.auth_secret, sec.SCALER_API_ACL_KEY))
            volume, mount = kx.secret_volume("auth", args.auth_secret, ("http-credentials",), AUTH_DIR)
            volumes.append(volume)
            mounts.append(mount)
        command_args = pulumi.Output.all(args.marathon_url, args.prometheus_url, args.zk_connect).apply(
            lambda v: run_args(s, v[0], v[1], v[2], auth, args.tls))
        container = kx.container({
            "name": "marathon-scaler",
            "image": args.image,
            "command": ["orchestrator"],
            "args": command_args,
            "env": env,
            "ports": [{"name": "metrics", "container_port": s.metrics_port}],
            "volume_mounts": mounts,
            "liveness_probe": kx.http_probe("/metrics", "metrics", initial_delay=30),
            "readiness_probe": kx.http_probe("/metrics", "metrics", initial_delay=5),
        }, s.resources)
        self.deployment = t.deployment(
            1,
            # Never two scalers: the old pod stops before the new one starts (the ZooKeeper lock guards as well).
            {"type": "Recreate"},
            t.pod_spec(account, [container], uid=UID, spread=None, volumes=volumes),
            annotations=kx.checkov_skips(s.resources, **({"CKV_K8S_35": "the scaler takes its ZooKeeper digest "
                                                           "identity from the environment, set from the Secret"}
                                                        if auth else {})),
            template_annotations={**kx.scrape_annotations(s.metrics_port, "/metrics"), **args.tls.annotations(),
                                  "orchestrator.io/config-sha": kx.content_hash(json.dumps(data, sort_keys=True))})
        self.register_outputs({"deployment": self.deployment.metadata["name"]})
