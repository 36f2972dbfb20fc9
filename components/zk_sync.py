"""The ZooKeeper sync engine as a platform tier: one replica of `orchestrator zk sync` (a second writer
would fight the first), scraped by Prometheus, with the lag alert of the monitoring tier."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components import k8s as kx
from components import security as sec
from components.settings import ZkSyncSettings
from components.zookeeper import NO_TLS, ClientTls
from orchestrator.contracts import tiers

TIER = tiers.ZK_SYNC
UID = 10001  # the services image's unprivileged user


def sync_args(z: ZkSyncSettings, target: str, tls: ClientTls = NO_TLS) -> list[str]:
    # --allow-deletes: the engine is a restartable daemon; after a restart its bootstrap must apply the deletes
    # made on the source while it was down, or the pod would crash-loop. The other guards (missing or empty
    # source root, target = source ensemble) still refuse a wrong `zk_sync.source`.
    args = ["zk", "sync", "--source", z.source, "--target", target,
            "--metrics-port", str(z.metrics_port), "--allow-deletes", *tls.args("--target-tls")]
    for path in z.paths:
        args += ["--path", path]
    return args


@dataclass(frozen=True)
class ZkSyncArgs:
    platform: kx.PlatformContext
    zk_sync: ZkSyncSettings
    image: str  # the services image (service.image): the engine is `orchestrator zk sync`
    target_connect: pulumi.Input[str]  # this platform's ensemble (its secure client port with TLS)
    auth_secret: pulumi.Input[str] | None = None  # Secret with `auth` (one SCHEME:CREDENTIAL per line)
    # zookeeper.tls_secret: the engine writes over TLS (the old source ensemble is read as configured)
    tls: ClientTls = NO_TLS


class ZkSync(pulumi.ComponentResource):
    def __init__(self, name: str, args: ZkSyncArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:zk_sync:ZkSync", name, None, opts)
        z = args.zk_sync
        t = kx.TierContext.of(self, TIER, name, args.platform)
        account = t.service_account()
        self.peer = sec.Peer.of(t, {"metrics": z.metrics_port})
        # The API reads the engine's lag from its /metrics through this name (zk_sync_metrics_url).
        self.service = t.cluster_service([kx.service_port("metrics", z.metrics_port)])
        source = sec.External("zk-source", tuple(z.source_cidrs), {"client": z.source_port})
        self.flows = [
            sec.Flow(TIER, tiers.ZOOKEEPER, args.tls.port, "the sync engine writes into this platform's ensemble"),
            sec.Flow(TIER, source, "client", "the sync engine reads the old ensemble"),
            sec.Flow(tiers.PROMETHEUS, TIER, "metrics", "scrape the sync engine (lag alert)"),
        ]
        env: list[dict[str, Any]] = []
        if args.auth_secret is not None:
            # The engine writes Mesos' and Marathon's znodes as their digest users (their ACLs).
            env.append(kx.secret_env("ORCHESTRATOR_ZK_AUTH", args.auth_secret, "auth"))
        tls_volumes, tls_mounts = args.tls.volumes()
        container = kx.container({
            "name": "zk-sync",
            "image": args.image,
            "command": ["orchestrator"],
            "args": pulumi.Output.from_input(args.target_connect).apply(lambda target: sync_args(z, target, args.tls)),
            "env": env,
            "volume_mounts": tls_mounts,
            "ports": [{"name": "metrics", "container_port": z.metrics_port}],
            "liveness_probe": kx.http_probe("/metrics", "metrics", initial_delay=30),
            "readiness_probe": kx.http_probe("/metrics", "metrics", initial_delay=5),
        }, z.resources)
        self.deployment = t.deployment(
            # Never two engines: the old one stops before the new one starts (one replica: nothing to spread).
            1, {"type": "Recreate"}, t.pod_spec(account, [container], uid=UID, spread=None, volumes=tls_volumes),
            kx.checkov_skips(z.resources, CKV_K8S_35="the engine takes its ZooKeeper credentials from the "
                                                     "environment, set from the Secret"),
            template_annotations={**kx.scrape_annotations(z.metrics_port, "/metrics"), **args.tls.annotations()})
        self.register_outputs({"deployment": self.deployment.metadata["name"]})
