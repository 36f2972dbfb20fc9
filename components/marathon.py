"""Marathon: HA instances sharing one ZooKeeper state; any instance proxies to the leader."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components import security as sec
from components.settings import PlatformSettings
from orchestrator.contracts import tiers

TIER = tiers.MARATHON
COMPONENT = TIER.component_label
UID = 65534
AUTH_DIR = "/etc/marathon/auth"


def marathon_flags(s: PlatformSettings, master_zk_url: str, zk_connect: str) -> list[str]:
    """With authentication on, the ZooKeeper URL (it carries the digest password) and the HTTP
    credentials come from the auth Secret as MARATHON_ZK / MARATHON_HTTP_CREDENTIALS instead."""
    m = s.marathon
    flags = ["--master", master_zk_url]
    if not s.auth_enabled:
        flags += ["--zk", f"zk://{zk_connect}{m.zk_path}"]
    flags += [
        "--http_port", str(m.port),
        # Stored in ZooKeeper so standbys can proxy to the leader: the pod IP is reachable from every pod.
        "--hostname", "$(POD_IP)",
    ]
    if s.auth_enabled:
        flags += ["--mesos_authentication",
                  "--mesos_authentication_principal", sec.MARATHON_PRINCIPAL,
                  "--mesos_authentication_secret_file", f"{AUTH_DIR}/mesos-secret"]
    return flags


@dataclass(frozen=True)
class MarathonArgs:
    settings: PlatformSettings
    zk_connect: pulumi.Input[str]
    master_zk_url: pulumi.Input[str]
    auth_secret: pulumi.Input[str] | None = None  # Secret with `zk`, `http-credentials`, `mesos-secret`


class Marathon(pulumi.ComponentResource):
    url: pulumi.Output[str]
    zk_url: pulumi.Output[str]

    def __init__(self, name: str, args: MarathonArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:marathon:Marathon", name, None, opts)
        s, m = args.settings, args.settings.marathon
        ns = s.namespace
        labels = kx.labels(COMPONENT, COMPONENT, name)
        selector = kx.selector_labels(COMPONENT, COMPONENT, name)
        child = pulumi.ResourceOptions(parent=self)

        self.service = kx.cluster_service(name, name, ns, labels, selector, [kx.service_port("http", m.port)], child)
        self.pdb = kx.disruption_budget(f"{name}-pdb", f"{name}-pdb", ns, labels, selector, child)
        account = kx.service_account(name, name, ns, labels, child)
        self.peer = sec.Peer(TIER, name, ns, selector, {"http": m.port, "libprocess": m.libprocess_port})
        self.flows = [
            sec.Flow(tiers.MESOS_MASTER, TIER, "libprocess", "the master sends offers and status updates to Marathon"),
            sec.Flow(TIER, TIER, "http", "standby Marathon instances proxy API calls to the leader"),
            sec.Flow(tiers.PROMETHEUS, TIER, "http", "scrape Marathon's /metrics/prometheus"),
            sec.Flow(sec.CLIENTS, TIER, "http", "users and automation call Marathon's API"),
        ]
        env: list[dict] = [kx.field_env("POD_IP", "status.podIP"),
                           # The scheduler driver (libmesos) must advertise an address and a fixed port
                           # the masters can reach (a fixed port so NetworkPolicies can allow it).
                           {"name": "LIBPROCESS_IP", "value": "$(POD_IP)"},
                           {"name": "LIBPROCESS_PORT", "value": str(m.libprocess_port)},
                           {"name": "JAVA_OPTS", "value": f"-Xmx{m.heap_mb}m"}]
        mounts: list[dict] = [{"name": "tmp", "mount_path": "/tmp"}]
        volumes: list[dict] = [{"name": "tmp", "empty_dir": {}}]
        # /ping answers on every instance, leader or standby; with HTTP auth on, probes cannot log in
        # (a header would put the password in the pod spec), so they only check the port.
        probe = kx.http_probe("/ping", "http", initial_delay=60)
        ready = kx.http_probe("/ping", "http", initial_delay=20)
        if args.auth_secret is not None:
            auth_name = args.auth_secret
            env += [sec.secret_env("MARATHON_ZK", auth_name, "zk"),
                    sec.secret_env("MARATHON_HTTP_CREDENTIALS", auth_name, "http-credentials")]
            mounts.append({"name": "auth", "mount_path": AUTH_DIR, "read_only": True})
            volumes.append({"name": "auth", "secret": {"secret_name": auth_name, "default_mode": 0o440,
                                                       "items": [{"key": "mesos-secret", "path": "mesos-secret"}]}})
            probe = kx.tcp_probe("http", initial_delay=60)
            ready = kx.tcp_probe("http", initial_delay=20)
        flags = pulumi.Output.all(args.master_zk_url, args.zk_connect).apply(lambda v: marathon_flags(s, v[0], v[1]))
        container = kx.container({
            "name": "marathon",
            "image": m.image,
            "args": flags,
            "env": env,
            "ports": [{"name": "http", "container_port": m.port},
                      {"name": "libprocess", "container_port": m.libprocess_port}],
            "liveness_probe": probe,
            "readiness_probe": ready,
            "volume_mounts": mounts,
        }, m.resources)
        self.deployment = k8s.apps.v1.Deployment(
            name,
            metadata=kx.metadata(name, ns, labels, kx.checkov_skips(
                m.resources, CKV_K8S_35="Marathon reads its ZooKeeper URL and HTTP credentials only from the "
                                        "environment (MARATHON_ZK, MARATHON_HTTP_CREDENTIALS), set from the Secret")),
            spec={"replicas": m.replicas,
                  "selector": {"match_labels": selector},
                  # Replace one instance at a time so a leader is always electable.
                  "strategy": {"type": "RollingUpdate", "rolling_update": {"max_unavailable": 1, "max_surge": 1}},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "service_account_name": account.metadata["name"],
                      "automount_service_account_token": False,
                      "affinity": kx.pod_anti_affinity(selector, required=s.production),
                      "security_context": kx.restricted_pod_security(UID),
                      "containers": [container],
                      "volumes": volumes}}},
            opts=child)
        self.zk_url = pulumi.Output.from_input(args.zk_connect).apply(lambda c: f"zk://{c}{m.zk_path}")
        self.url = self.service.metadata["name"].apply(lambda n: f"http://{s.service_fqdn(n)}:{m.port}")
        self.register_outputs({"url": self.url, "zk_url": self.zk_url})
