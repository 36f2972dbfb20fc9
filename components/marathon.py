"""Marathon: HA instances sharing one ZooKeeper state; any instance proxies to the leader."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components.settings import PlatformSettings

COMPONENT = "marathon"
UID = 65534


def marathon_flags(s: PlatformSettings, master_zk_url: str, zk_connect: str) -> list[str]:
    m = s.marathon
    return [
        "--master", master_zk_url,
        "--zk", f"zk://{zk_connect}{m.zk_path}",
        "--http_port", str(m.port),
        # Stored in ZooKeeper so standbys can proxy to the leader: the pod IP is reachable from every pod.
        "--hostname", "$(POD_IP)",
    ]


@dataclass(frozen=True)
class MarathonArgs:
    settings: PlatformSettings
    zk_connect: pulumi.Input[str]
    master_zk_url: pulumi.Input[str]


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
        flags = pulumi.Output.all(args.master_zk_url, args.zk_connect).apply(lambda v: marathon_flags(s, v[0], v[1]))
        container = {
            "name": "marathon",
            "image": m.image,
            "args": flags,
            "env": [kx.field_env("POD_IP", "status.podIP"),
                    # The scheduler driver (libmesos) must advertise an address the masters can reach.
                    {"name": "LIBPROCESS_IP", "value": "$(POD_IP)"},
                    {"name": "JAVA_OPTS", "value": f"-Xmx{m.heap_mb}m"}],
            "ports": [{"name": "http", "container_port": m.port}],
            # /ping answers on every instance, leader or standby.
            "liveness_probe": kx.http_probe("/ping", "http", initial_delay=60),
            "readiness_probe": kx.http_probe("/ping", "http", initial_delay=20),
            "resources": kx.resources(m.resources),
            "security_context": kx.restricted_container_security(),
            "volume_mounts": [{"name": "tmp", "mount_path": "/tmp"}],
        }
        self.deployment = k8s.apps.v1.Deployment(
            name,
            metadata=kx.metadata(name, ns, labels),
            spec={"replicas": m.replicas,
                  "selector": {"match_labels": selector},
                  # Replace one instance at a time so a leader is always electable.
                  "strategy": {"type": "RollingUpdate", "rolling_update": {"max_unavailable": 1, "max_surge": 1}},
                  "template": {"metadata": {"labels": labels}, "spec": {
                      "automount_service_account_token": False,
                      "affinity": kx.pod_anti_affinity(selector, required=s.production),
                      "security_context": kx.restricted_pod_security(UID),
                      "containers": [container],
                      "volumes": [{"name": "tmp", "empty_dir": {}}]}}},
            opts=child)
        self.zk_url = pulumi.Output.from_input(args.zk_connect).apply(lambda c: f"zk://{c}{m.zk_path}")
        self.url = self.service.metadata["name"].apply(lambda n: f"http://{s.service_fqdn(n)}:{m.port}")
        self.register_outputs({"url": self.url, "zk_url": self.zk_url})
