"""Alertmanager, the alertmanager tier: its configuration as a pure function (routes by severity to the
receivers of the settings, credentials only as files mounted from the credentials tier's Secret, inhibition
so that one cause pages once) and the component (a StatefulSet whose replicas gossip silences and the
notification log; Prometheus sends every alert to each replica).

`config()` is checked by Debian's `amtool check-config` (tests/test_alertmanager.py). The image is pinned to
the version of that checker (0.25.0, settings `alertmanager.image`), so the check speaks for what runs:
Alertmanager 0.25 reads `api_url_file` (Slack) and `auth_password_file` (SMTP), but not `url_file` for
webhooks, so webhook URLs are plain settings (the settings refuse credentials in them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import k8s as kx
from components import security as sec
from components.settings import AlertmanagerSettings, AlertReceiver, AlertSmtp
from orchestrator.contracts import tiers

TIER = tiers.ALERTMANAGER
UID = 65534  # the image's `nobody`
CONFIG_DIR = "/etc/alertmanager"
DATA_DIR = "/alertmanager"
SECRETS_DIR = "/etc/alertmanager/secrets"
SLACK_URL_FILE = f"{SECRETS_DIR}/slack-api-url"
SMTP_PASSWORD_FILE = f"{SECRETS_DIR}/smtp-password"
# The receivers are settings (components/settings.py); the names the config functions have always used.
Receiver = AlertReceiver
Smtp = AlertSmtp

# A cause silences the alerts it explains, in the same platform: (source alert, target alerts regex).
INHIBITIONS: list[tuple[str, str]] = [
    # No quorum: every server looks down or slow, and Mesos and Marathon cannot elect.
    ("ZooKeeperQuorumLost", "ZooKeeperServerDown|ZooKeeperOutstandingRequestsHigh|ZooKeeperLeaderElections"
                            "|MesosNoLeader|MarathonNoLeader"),
    # No Mesos leader: agents cannot register and Marathon's framework is disconnected.
    ("MesosNoLeader", "MesosAgentRegistrationsDropped|MarathonNoLeader"),
]


def config(receivers: list[Receiver], smtp: Smtp | None = None, group_wait: str = "30s",
           repeat_interval: str = "4h") -> dict[str, Any]:
    """The alertmanager.yml document. Without receivers every alert goes to a receiver that notifies
    nobody (the UI and API still show them): never a silent default to somebody's address."""
    if any(r.email_to for r in receivers) and smtp is None:
        raise ValueError("an email receiver needs the smtp settings")
    names = [r.name for r in receivers]
    if len(set(names)) != len(names):
        raise ValueError(f"receiver names must be unique: {names}")
    out_receivers: list[dict[str, Any]] = [{"name": "nobody"}]
    routes: list[dict[str, Any]] = []
    for r in receivers:
        body: dict[str, Any] = {"name": r.name}
        if r.slack_channel:
            body["slack_configs"] = [{"api_url_file": SLACK_URL_FILE, "channel": r.slack_channel,
                                      "send_resolved": True}]
        if r.email_to and smtp is not None:
            body["email_configs"] = [{"to": r.email_to, "from": smtp.sender, "smarthost": smtp.smarthost,
                                      "auth_username": smtp.username, "auth_password_file": SMTP_PASSWORD_FILE,
                                      "send_resolved": True}]
        if r.webhook_url:
            body["webhook_configs"] = [{"url": r.webhook_url, "send_resolved": True}]
        out_receivers.append(body)
        routes.append({"receiver": r.name, "continue": True,
                       "matchers": [f'severity=~"{"|".join(r.severities)}"']})
    return {
        "route": {"receiver": "nobody", "group_by": ["alertname", "namespace"], "group_wait": group_wait,
                  "group_interval": "5m", "repeat_interval": repeat_interval, "routes": routes},
        "receivers": out_receivers,
        "inhibit_rules": [{"source_matchers": [f'alertname="{source}"'],
                           "target_matchers": [f'alertname=~"{targets}"'],
                           # Only within one platform (Prometheus' external label).
                           "equal": ["platform"]}
                          for source, targets in INHIBITIONS],
    }


def secret_files(receivers: list[Receiver]) -> list[str]:
    """Keys the Alertmanager Secret must hold for these receivers."""
    keys = []
    if any(r.slack_channel for r in receivers):
        keys.append("slack-api-url")
    if any(r.email_to for r in receivers):
        keys.append("smtp-password")
    return keys


def peer_hosts(platform: kx.PlatformContext, replicas: int, name: str = TIER.id) -> list[str]:
    """Each replica's stable name (`<name>-<i>.<name>-headless.<ns>.svc.<domain>`): Prometheus sends every
    alert to each of them (not through a Service, which would pick one) and the replicas gossip with them."""
    return [f"{name}-{i}.{platform.service_fqdn(f'{name}-headless')}" for i in range(replicas)]


def receiver_ports(receivers: list[Receiver], smtp: Smtp | None) -> dict[str, int]:
    """Named ports the receivers are reached on, for the egress NetworkPolicy."""
    ports: dict[str, int] = {}
    if any(r.slack_channel for r in receivers):
        ports["slack"] = 443
    if smtp is not None and any(r.email_to for r in receivers):
        ports["smtp"] = int(smtp.smarthost.rsplit(":", 1)[1])
    for r in receivers:
        if r.webhook_url:
            url = urlsplit(r.webhook_url)
            ports[f"webhook-{r.name}"] = url.port or (443 if url.scheme == "https" else 80)
    return ports


def alertmanager_args(platform: kx.PlatformContext, a: AlertmanagerSettings) -> list[str]:
    args = [f"--config.file={CONFIG_DIR}/alertmanager.yml", f"--storage.path={DATA_DIR}",
            f"--web.listen-address=:{a.port}"]
    if a.replicas == 1:
        return [*args, "--cluster.listen-address="]  # empty: no gossip, no cluster port opened
    return [*args, f"--cluster.listen-address=0.0.0.0:{a.cluster_port}",
            f"--cluster.advertise-address=$(POD_IP):{a.cluster_port}",
            *[f"--cluster.peer={host}:{a.cluster_port}" for host in peer_hosts(platform, a.replicas)]]


@dataclass(frozen=True)
class AlertmanagerArgs:
    platform: kx.PlatformContext
    alertmanager: AlertmanagerSettings
    # The credentials tier's Secret `alertmanager-auth` (keys of secret_files()); None without such receivers.
    auth_secret: pulumi.Input[str] | None = None


class Alertmanager(pulumi.ComponentResource):
    def __init__(self, name: str, args: AlertmanagerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:alertmanager:Alertmanager", name, None, opts)
        a, platform = args.alertmanager, args.platform
        t = kx.TierContext.of(self, TIER, name, platform)
        keys = secret_files(a.receivers)
        if keys and args.auth_secret is None:
            raise ValueError(f"alertmanager: receivers need the Secret with {keys} (credentials tier)")
        self.peer = sec.Peer.of(t, {"http": a.port, "cluster": a.cluster_port})
        self.flows = [sec.Flow(tiers.PROMETHEUS, TIER, "http", "Prometheus sends alerts to every replica and "
                                                               "scrapes Alertmanager's metrics")]
        if a.replicas > 1:
            # memberlist: TCP push/pull of the full state, UDP gossip of each silence and notification.
            self.flows.append(sec.Flow(TIER, TIER, "cluster", "replicas gossip silences and the notification log",
                                       protocols=("TCP", "UDP")))
        ports = receiver_ports(a.receivers, a.smtp)
        out = sec.External("alert-receivers", tuple(a.receiver_cidrs), ports)
        self.flows += [sec.Flow(TIER, out, port, f"notifications ({port})") for port in ports]

        text = yaml.safe_dump(config(a.receivers, a.smtp, a.group_wait, a.repeat_interval), sort_keys=False)
        cm = k8s.core.v1.ConfigMap(f"{name}-config", metadata=t.metadata(f"{name}-config"),
                                   data={"alertmanager.yml": text}, opts=t.opts)
        account = t.service_account()
        self.headless = t.headless_service([kx.service_port("http", a.port), kx.service_port("cluster", a.cluster_port)])
        self.service = t.cluster_service([kx.service_port("http", a.port)])
        self.pdb = t.disruption_budget()
        mounts: list[dict[str, Any]] = [{"name": "config", "mount_path": CONFIG_DIR, "read_only": True},
                                        {"name": "data", "mount_path": DATA_DIR}]
        volumes: list[dict[str, Any]] = [{"name": "config", "config_map": {"name": cm.metadata["name"]}}]
        if keys and args.auth_secret is not None:
            volume, mount = kx.secret_volume("receivers", args.auth_secret, keys, SECRETS_DIR)
            volumes.append(volume)
            mounts.append(mount)
        container = kx.container({
            "name": "alertmanager",
            "image": a.image,
            "args": alertmanager_args(platform, a),
            "env": [kx.field_env("POD_IP", "status.podIP")],
            "ports": [{"name": "http", "container_port": a.port},
                      {"name": "cluster", "container_port": a.cluster_port, "protocol": "TCP"},
                      {"name": "cluster-udp", "container_port": a.cluster_port, "protocol": "UDP"}],
            "liveness_probe": kx.http_probe("/-/healthy", "http", initial_delay=10),
            "readiness_probe": kx.http_probe("/-/ready", "http", initial_delay=5),
            "volume_mounts": mounts,
        }, a.resources)
        self.statefulset = t.quorum_statefulset(
            self.headless, a.replicas,
            t.pod_spec(account, [container], uid=UID, spread=True, volumes=volumes),
            [kx.volume_claim("data", a.storage, a.storage_class)], kx.checkov_skips(a.resources),
            {"orchestrator.io/config-sha": kx.content_hash(text), **kx.scrape_annotations(a.port, "/metrics")})
        self.url = t.url(self.service, a.port)
        self.register_outputs({"url": self.url})
