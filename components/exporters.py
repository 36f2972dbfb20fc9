"""Our Mesos and Marathon exporters as one Deployment that scrapes the masters, agents and Marathon over the
network (docs/exporters.md). It replaces the `mesos/mesos-exporter` sidecar: not a sidecar on the services
image either, because every services release would then roll the masters' StatefulSet and force leader
elections. Its own pinned image setting (`exporters.image`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import k8s as kx
from components import security as sec
from components.settings import ExportersSettings
from orchestrator.contracts import probe as names
from orchestrator.contracts import tiers
from orchestrator.contracts.probe import EXPORTER_MARATHON_PORT, EXPORTER_MESOS_PORT

TIER = tiers.EXPORTERS
UID = 10001  # the services image's unprivileged user
MESOS_SECRET_DIR = "/var/run/secrets/mesos"
MARATHON_SECRET_DIR = "/var/run/secrets/marathon"


RUNBOOK = "https://github.com/orchestrator/orchestrator/blob/main/docs/runbooks/probe-and-exporters.md"


def _alert(name: str, expr: str, for_: str, summary: str) -> dict[str, Any]:
    return {"alert": name, "expr": expr, "for": for_, "labels": {"severity": "warning"},
            "annotations": {"summary": summary, "runbook_url": f"{RUNBOOK}#{name.lower()}"}}


def alert_rule_group() -> dict[str, Any]:
    """Alerts on our exporters and probes (the monitoring tier includes this group), each with its runbook."""
    cpu = f"max by (namespace, pod) (rate({names.PROBE_CPU_SECONDS}[5m]))"
    rss = f"max by (namespace, pod) ({names.PROBE_RSS_BYTES})"
    return {"name": "orchestrator-probe-exporters", "rules": [
        # The seed's budget per probe: < 5 % of one core and < 100 MB (docs/probe.md has the measured cost).
        _alert("ProbeCostHigh", f"{cpu} > {names.PROBE_CPU_TARGET_CORES} or {rss} > {names.PROBE_RSS_TARGET_BYTES}",
               "15m", "Probe {{ $labels.pod }} uses more than 5 % of a core or 100 MB."),
        _alert("ExporterScrapeErrors",
               f"sum by (exporter, target) (increase({names.EXPORTER_SCRAPE_ERRORS}[10m])) > 3", "5m",
               "The {{ $labels.exporter }} exporter failed to read {{ $labels.target }} more than 3 times in "
               "10 minutes."),
    ]}


def mesos_args(e: ExportersSettings, masters: list[str], auth: bool) -> list[str]:
    args = ["exporter", "mesos", "--port", str(EXPORTER_MESOS_PORT), "--state-interval", str(e.state_interval_seconds)]
    for url in masters:
        args += ["--master", url]
    if auth:
        args += ["--principal", sec.HTTP_ADMIN, "--credentials", f"{MESOS_SECRET_DIR}/http-password"]
    return args


def marathon_args(marathon_url: str, auth: bool) -> list[str]:
    args = ["exporter", "marathon", "--port", str(EXPORTER_MARATHON_PORT), "--marathon", marathon_url]
    if auth:
        args += ["--credentials", f"{MARATHON_SECRET_DIR}/http-credentials"]
    return args


@dataclass(frozen=True)
class ExportersArgs:
    platform: kx.PlatformContext
    exporters: ExportersSettings
    master_urls: pulumi.Input[list[str]]   # every master by its stable name (each answers its own snapshot)
    marathon_url: pulumi.Input[str]
    mesos_auth_secret: pulumi.Input[str] | None = None     # key `http-password` (the admin principal)
    marathon_auth_secret: pulumi.Input[str] | None = None  # key `http-credentials` (user:password)


class Exporters(pulumi.ComponentResource):
    def __init__(self, name: str, args: ExportersArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:exporters:Exporters", name, None, opts)
        e, platform = args.exporters, args.platform
        t = kx.TierContext.of(self, TIER, name, platform)
        account = t.service_account()
        self.peer = sec.Peer.of(t, {"mesos-metrics": EXPORTER_MESOS_PORT, "marathon-metrics": EXPORTER_MARATHON_PORT})
        self.flows = [
            sec.Flow(TIER, tiers.MESOS_MASTER, "http", "the exporter reads every master's snapshot and the state"),
            sec.Flow(TIER, tiers.MESOS_AGENT, "http", "the exporter reads each agent's snapshot and statistics"),
            sec.Flow(TIER, tiers.MARATHON, "http", "the exporter reads /v2/apps and /v2/leader"),
            sec.Flow(tiers.PROMETHEUS, TIER, "mesos-metrics", "scrape the Mesos exporter"),
            sec.Flow(tiers.PROMETHEUS, TIER, "marathon-metrics", "scrape the Marathon exporter"),
        ]
        auth = args.mesos_auth_secret is not None
        volumes: list[dict[str, Any]] = []
        mesos_mounts: list[dict[str, Any]] = []
        marathon_mounts: list[dict[str, Any]] = []
        if args.mesos_auth_secret is not None:
            volume, mount = kx.secret_volume("mesos-auth", args.mesos_auth_secret, ("http-password",),
                                             MESOS_SECRET_DIR)
            volumes.append(volume)
            mesos_mounts.append(mount)
        if args.marathon_auth_secret is not None:
            volume, mount = kx.secret_volume("marathon-auth", args.marathon_auth_secret, ("http-credentials",),
                                             MARATHON_SECRET_DIR)
            volumes.append(volume)
            marathon_mounts.append(mount)
        mesos = kx.container({
            "name": "mesos",
            "image": e.image,
            "command": ["orchestrator"],
            "args": pulumi.Output.from_input(args.master_urls).apply(lambda urls: mesos_args(e, list(urls), auth)),
            "ports": [{"name": "mesos-metrics", "container_port": EXPORTER_MESOS_PORT}],
            "liveness_probe": kx.http_probe("/healthz", "mesos-metrics", initial_delay=10, period=30),
            "readiness_probe": kx.http_probe("/healthz", "mesos-metrics", initial_delay=5, period=30),
            "volume_mounts": mesos_mounts,
        }, e.resources)
        marathon = kx.container({
            "name": "marathon",
            "image": e.image,
            "command": ["orchestrator"],
            "args": pulumi.Output.from_input(args.marathon_url).apply(
                lambda url: marathon_args(url, args.marathon_auth_secret is not None)),
            "ports": [{"name": "marathon-metrics", "container_port": EXPORTER_MARATHON_PORT}],
            "liveness_probe": kx.http_probe("/healthz", "marathon-metrics", initial_delay=10, period=30),
            "readiness_probe": kx.http_probe("/healthz", "marathon-metrics", initial_delay=5, period=30),
            "volume_mounts": marathon_mounts,
        }, e.resources)
        # One replica: the exporters hold no state, and two would double every series (the rules use max).
        self.deployment = t.deployment(
            1, {"type": "Recreate"},
            t.pod_spec(account, [mesos, marathon], uid=UID, spread=None, volumes=volumes),
            kx.checkov_skips(e.resources))
        self.register_outputs({"deployment": self.deployment.metadata["name"]})
