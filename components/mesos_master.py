"""Mesos masters: a StatefulSet (the replicated-log registry needs a durable work_dir per master)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import k8s as kx
from components import security as sec
from components.settings import MesosMasterSettings
from orchestrator.contracts import tiers

TIER = tiers.MESOS_MASTER
UID = 65534  # the master needs no root: it only writes its work_dir
WORK_DIR = "/var/lib/mesos/master"
AUTH_DIR = sec.MESOS_AUTH_DIR


def master_flags(platform: kx.PlatformContext, m: MesosMasterSettings, zk_url: str, headless: str) -> list[str]:
    """Command-line flags of every master. `$(POD_NAME)`/`$(POD_IP)` are expanded by the kubelet.

    With authentication on, the ZooKeeper URL carries the digest credentials, so it is read from a
    mounted Secret (`file://`): Mesos logs its flags at start-up, and a file path leaks nothing."""
    zk_flag = f"--zk=file://{AUTH_DIR}/zk" if platform.auth_enabled else f"--zk={zk_url}"
    auth_flags = [
        # Frameworks (Marathon) and agents must log in (CRAM-MD5); the HTTP API needs basic auth.
        "--authenticate_frameworks=true",
        "--authenticate_agents=true",
        "--authenticate_http_readwrite=true",
        "--authenticate_http_readonly=true",
        f"--credentials={AUTH_DIR}/credentials",
        f"--http_credentials={AUTH_DIR}/http-credentials",
    ] if platform.auth_enabled else []
    return [
        zk_flag,
        f"--quorum={m.quorum}",
        "--registry=replicated_log",
        f"--work_dir={WORK_DIR}",
        f"--port={m.port}",
        f"--cluster={m.cluster_name}",
        # Advertised in ZooKeeper and used by /master/redirect: must resolve from every peer and client.
        f"--hostname=$(POD_NAME).{platform.service_fqdn(headless)}",
        "--ip=$(POD_IP)",
        # Agents ping every 15 s; 5 misses outlast the 10 s ZooKeeper session timeout (Mesos docs).
        "--zk_session_timeout=10secs",
        "--max_agent_ping_timeouts=5",
        *auth_flags,
    ]


@dataclass(frozen=True)
class MesosMastersArgs:
    platform: kx.PlatformContext
    mesos_master: MesosMasterSettings
    zk_connect: pulumi.Input[str]  # host:port list from the ZooKeeper ensemble
    # Name of the Secret with the files `zk`, `credentials`, `http-credentials` and the key
    # `http-password` (security.PlatformSecrets); None when authentication is off.
    auth_secret: pulumi.Input[str] | None = None


class MesosMasters(pulumi.ComponentResource):
    zk_url: pulumi.Output[str]
    http_url: pulumi.Output[str]

    def __init__(self, name: str, args: MesosMastersArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:mesos_master:MesosMasters", name, None, opts)
        platform, m = args.platform, args.mesos_master
        t = kx.TierContext.of(self, TIER, name, platform)

        # Metrics: the exporters tier reads every master's /metrics/snapshot over "http" (no sidecar).
        ports = [kx.service_port("http", m.port)]
        self.headless = t.headless_service(ports)
        self.service = t.cluster_service([kx.service_port("http", m.port)])
        self.pdb = t.disruption_budget()
        account = t.service_account()
        self.peer = sec.Peer.of(t, {"http": m.port})
        self.flows = [
            sec.Flow(TIER, TIER, "http", "masters replicate the registry log and elect through each other"),
            sec.Flow(tiers.MESOS_AGENT, TIER, "http", "agents register with the leading master"),
            sec.Flow(tiers.MARATHON, TIER, "http", "Marathon's scheduler driver talks to the leading master"),
            sec.Flow(sec.CLIENTS, TIER, "http", "users and automation call the Mesos API and UI"),
        ]

        self.zk_url = pulumi.Output.from_input(args.zk_connect).apply(lambda c: f"zk://{c}{m.zk_path}")
        args_out = pulumi.Output.all(self.zk_url, self.headless.metadata["name"]).apply(
            lambda v: master_flags(platform, m, v[0], v[1]))
        volumes: list[dict[str, Any]] = [{"name": "tmp", "empty_dir": {}}]
        master_mounts: list[dict[str, Any]] = [{"name": "work", "mount_path": WORK_DIR},
                                               {"name": "tmp", "mount_path": "/tmp"}]
        if args.auth_secret is not None:
            volume, mount = kx.secret_volume("auth", args.auth_secret, ("zk", "credentials", "http-credentials"),
                                             AUTH_DIR)
            volumes.append(volume)
            master_mounts.append(mount)
        master = kx.container({
            "name": "mesos-master",
            "image": m.image,
            "args": args_out,
            "env": [kx.field_env("POD_NAME", "metadata.name"), kx.field_env("POD_IP", "status.podIP")],
            "ports": [{"name": "http", "container_port": m.port}],
            # /master/health is 200 on every healthy master, leader or not.
            "liveness_probe": kx.http_probe("/master/health", "http", initial_delay=30),
            "readiness_probe": kx.http_probe("/master/health", "http", initial_delay=10),
            "volume_mounts": master_mounts,
        }, m.resources)
        # The replicated-log registry: a quorum of masters, each with its durable work_dir.
        self.statefulset = t.quorum_statefulset(
            self.headless, m.replicas,
            t.pod_spec(account, [master], uid=UID, spread=True, volumes=volumes),
            [kx.volume_claim("work", m.storage, m.storage_class)],
            kx.checkov_skips(m.resources))

        self.http_url = t.url(self.service, m.port)
        self.register_outputs({"zk_url": self.zk_url, "http_url": self.http_url})
