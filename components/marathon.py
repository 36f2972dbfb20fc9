"""Marathon: HA instances sharing one ZooKeeper state; any instance proxies to the leader."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import k8s as kx
from components import security as sec
from components.settings import MarathonSettings
from orchestrator.contracts import tiers

TIER = tiers.MARATHON
UID = 65534
AUTH_DIR = "/etc/marathon/auth"


def marathon_flags(platform: kx.PlatformContext, m: MarathonSettings, master_zk_url: str,
                   zk_connect: str) -> list[str]:
    """With authentication on, the ZooKeeper URL (it carries the digest password) and the HTTP
    credentials come from the auth Secret as MARATHON_ZK / MARATHON_HTTP_CREDENTIALS instead."""
    flags = ["--master", master_zk_url]
    if not platform.auth_enabled:
        flags += ["--zk", f"zk://{zk_connect}{m.zk_path}"]
    flags += [
        "--http_port", str(m.port),
        # Stored in ZooKeeper so standbys can proxy to the leader: the pod IP is reachable from every pod.
        "--hostname", "$(POD_IP)",
    ]
    if platform.auth_enabled:
        flags += ["--mesos_authentication",
                  "--mesos_authentication_principal", sec.MARATHON_PRINCIPAL,
                  "--mesos_authentication_secret_file", f"{AUTH_DIR}/mesos-secret"]
    return flags


@dataclass(frozen=True)
class MarathonArgs:
    platform: kx.PlatformContext
    marathon: MarathonSettings
    zk_connect: pulumi.Input[str]
    master_zk_url: pulumi.Input[str]
    auth_secret: pulumi.Input[str] | None = None  # Secret with `zk`, `http-credentials`, `mesos-secret`


class Marathon(pulumi.ComponentResource):
    url: pulumi.Output[str]
    zk_url: pulumi.Output[str]

    def __init__(self, name: str, args: MarathonArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:marathon:Marathon", name, None, opts)
        platform, m = args.platform, args.marathon
        t = kx.TierContext.of(self, TIER, name, platform)

        self.service = t.cluster_service([kx.service_port("http", m.port)])
        self.pdb = t.disruption_budget()
        account = t.service_account()
        self.peer = sec.Peer.of(t, {"http": m.port, "libprocess": m.libprocess_port})
        self.flows = [
            sec.Flow(tiers.MESOS_MASTER, TIER, "libprocess", "the master sends offers and status updates to Marathon"),
            sec.Flow(TIER, TIER, "http", "standby Marathon instances proxy API calls to the leader"),
            sec.Flow(tiers.PROMETHEUS, TIER, "http", "scrape Marathon's /metrics/prometheus"),
            sec.Flow(sec.CLIENTS, TIER, "http", "users and automation call Marathon's API"),
        ]
        env: list[dict[str, Any]] = [kx.field_env("POD_IP", "status.podIP"),
                           # The scheduler driver (libmesos) must advertise an address and a fixed port
                           # the masters can reach (a fixed port so NetworkPolicies can allow it).
                           {"name": "LIBPROCESS_IP", "value": "$(POD_IP)"},
                           {"name": "LIBPROCESS_PORT", "value": str(m.libprocess_port)},
                           {"name": "JAVA_OPTS", "value": f"-Xmx{m.heap_mb}m"}]
        mounts: list[dict[str, Any]] = [{"name": "tmp", "mount_path": "/tmp"}]
        volumes: list[dict[str, Any]] = [{"name": "tmp", "empty_dir": {}}]
        # /ping answers on every instance, leader or standby; with HTTP auth on, probes cannot log in
        # (a header would put the password in the pod spec), so they only check the port.
        probe = kx.http_probe("/ping", "http", initial_delay=60)
        ready = kx.http_probe("/ping", "http", initial_delay=20)
        if args.auth_secret is not None:
            auth_name = args.auth_secret
            env += [kx.secret_env("MARATHON_ZK", auth_name, "zk"),
                    kx.secret_env("MARATHON_HTTP_CREDENTIALS", auth_name, "http-credentials")]
            volume, mount = kx.secret_volume("auth", auth_name, ("mesos-secret",), AUTH_DIR)
            volumes.append(volume)
            mounts.append(mount)
            probe = kx.tcp_probe("http", initial_delay=60)
            ready = kx.tcp_probe("http", initial_delay=20)
        flags = pulumi.Output.all(args.master_zk_url, args.zk_connect).apply(
            lambda v: marathon_flags(platform, m, v[0], v[1]))
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
        self.deployment = t.deployment(
            # Replace one instance at a time so a leader is always electable.
            m.replicas, {"type": "RollingUpdate", "rolling_update": {"max_unavailable": 1, "max_surge": 1}},
            t.pod_spec(account, [container], uid=UID, spread=True, volumes=volumes),
            kx.checkov_skips(m.resources, CKV_K8S_35="Marathon reads its ZooKeeper URL and HTTP credentials only "
                                                     "from the environment (MARATHON_ZK, MARATHON_HTTP_CREDENTIALS), "
                                                     "set from the Secret"))
        self.zk_url = pulumi.Output.from_input(args.zk_connect).apply(lambda c: f"zk://{c}{m.zk_path}")
        self.url = t.url(self.service, m.port)
        self.register_outputs({"url": self.url, "zk_url": self.zk_url})
