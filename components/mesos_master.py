"""Mesos masters: a StatefulSet (the replicated-log registry needs a durable work_dir per master)."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components.settings import PlatformSettings

COMPONENT = "mesos-master"
UID = 65534  # the master needs no root: it only writes its work_dir
WORK_DIR = "/var/lib/mesos/master"
EXPORTER_PORT = 9105


def master_flags(s: PlatformSettings, zk_url: str, headless: str) -> list[str]:
    """Command-line flags of every master. `$(POD_NAME)`/`$(POD_IP)` are expanded by the kubelet."""
    m = s.mesos_master
    return [
        f"--zk={zk_url}",
        f"--quorum={m.quorum}",
        "--registry=replicated_log",
        f"--work_dir={WORK_DIR}",
        f"--port={m.port}",
        f"--cluster={m.cluster_name}",
        # Advertised in ZooKeeper and used by /master/redirect: must resolve from every peer and client.
        f"--hostname=$(POD_NAME).{s.service_fqdn(headless)}",
        "--ip=$(POD_IP)",
        # Agents ping every 15 s; 5 misses outlast the 10 s ZooKeeper session timeout (Mesos docs).
        "--zk_session_timeout=10secs",
        "--max_agent_ping_timeouts=5",
    ]


@dataclass(frozen=True)
class MesosMastersArgs:
    settings: PlatformSettings
    zk_connect: pulumi.Input[str]  # host:port list from the ZooKeeper ensemble


class MesosMasters(pulumi.ComponentResource):
    zk_url: pulumi.Output[str]
    http_url: pulumi.Output[str]

    def __init__(self, name: str, args: MesosMastersArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:mesos_master:MesosMasters", name, None, opts)
        s, m = args.settings, args.settings.mesos_master
        ns = s.namespace
        labels = kx.labels(COMPONENT, COMPONENT, name)
        selector = kx.selector_labels(COMPONENT, COMPONENT, name)
        child = pulumi.ResourceOptions(parent=self)
        headless_name = f"{name}-headless"

        ports = [kx.service_port("http", m.port), kx.service_port("metrics", EXPORTER_PORT)]
        self.headless = kx.headless_service(headless_name, headless_name, ns, labels, selector, ports, child)
        self.service = kx.cluster_service(name, name, ns, labels, selector, [kx.service_port("http", m.port)], child)
        self.pdb = kx.disruption_budget(f"{name}-pdb", f"{name}-pdb", ns, labels, selector, child)

        self.zk_url = pulumi.Output.from_input(args.zk_connect).apply(lambda c: f"zk://{c}{m.zk_path}")
        args_out = pulumi.Output.all(self.zk_url, self.headless.metadata["name"]).apply(
            lambda v: master_flags(s, v[0], v[1]))
        master = {
            "name": "mesos-master",
            "image": m.image,
            "args": args_out,
            "env": [kx.field_env("POD_NAME", "metadata.name"), kx.field_env("POD_IP", "status.podIP")],
            "ports": [{"name": "http", "container_port": m.port}],
            # /master/health is 200 on every healthy master, leader or not.
            "liveness_probe": kx.http_probe("/master/health", "http", initial_delay=30),
            "readiness_probe": kx.http_probe("/master/health", "http", initial_delay=10),
            "resources": kx.resources(m.resources),
            "security_context": kx.restricted_container_security(),
            "volume_mounts": [{"name": "work", "mount_path": WORK_DIR}, {"name": "tmp", "mount_path": "/tmp"}],
        }
        # Mesos speaks JSON (/metrics/snapshot); the exporter translates it for Prometheus
        # (mesos_master_elected, mesos_master_slaves_state, mesos_master_task_states_exit_total...).
        exporter = {
            "name": "exporter",
            "image": m.exporter_image,
            "args": [f"-master=http://127.0.0.1:{m.port}", f"-addr=:{EXPORTER_PORT}"],
            "ports": [{"name": "metrics", "container_port": EXPORTER_PORT}],
            "liveness_probe": kx.http_probe("/metrics", "metrics", initial_delay=10, period=30),
            "resources": kx.resources(m.exporter_resources),
            "security_context": kx.restricted_container_security(),
        }
        self.statefulset = k8s.apps.v1.StatefulSet(
            name,
            metadata=kx.metadata(name, ns, labels),
            spec={
                "service_name": self.headless.metadata["name"],
                "replicas": m.replicas,
                # Masters must see each other to form the replicated-log quorum: start them together.
                "pod_management_policy": "Parallel",
                "update_strategy": {"type": "RollingUpdate"},
                "persistent_volume_claim_retention_policy": {"when_deleted": "Retain", "when_scaled": "Retain"},
                "selector": {"match_labels": selector},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automount_service_account_token": False,
                        "affinity": kx.pod_anti_affinity(selector, required=s.production),
                        "security_context": kx.restricted_pod_security(UID),
                        "containers": [master, exporter],
                        "volumes": [{"name": "tmp", "empty_dir": {}}],
                    },
                },
                "volume_claim_templates": [kx.volume_claim("work", m.storage, m.storage_class)],
            },
            opts=child)

        self.http_url = self.service.metadata["name"].apply(lambda n: f"http://{s.service_fqdn(n)}:{m.port}")
        self.register_outputs({"zk_url": self.zk_url, "http_url": self.http_url})
