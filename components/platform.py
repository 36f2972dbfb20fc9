"""The platform: namespaces, the five tiers wired together, and the stack-outputs contract."""
from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components.marathon import Marathon, MarathonArgs
from components.mesos_agent import MesosAgents, MesosAgentsArgs
from components.mesos_master import MesosMasters, MesosMastersArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.settings import PlatformSettings
from components.zookeeper import ZooKeeperEnsemble, ZooKeeperEnsembleArgs

# Bump on any incompatible change to the outputs below (renamed/removed key, changed meaning).
OUTPUTS_CONTRACT_VERSION = "1"


@dataclass(frozen=True)
class PlatformArgs:
    settings: PlatformSettings


class Platform(pulumi.ComponentResource):
    outputs: dict[str, pulumi.Output[str] | str]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:platform:Platform", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)

        # Pod Security Admission: everything is 'restricted' except the agents, which launch containers.
        namespaces = {}
        for ns_name, level in ((s.namespace, "restricted"), (s.agents_namespace, "privileged")):
            ns_labels = {**kx.labels(ns_name, "namespace", name),
                         "pod-security.kubernetes.io/enforce": level,
                         "pod-security.kubernetes.io/warn": level,
                         "pod-security.kubernetes.io/audit": level}
            namespaces[ns_name] = k8s.core.v1.Namespace(
                f"namespace-{ns_name}", metadata=kx.metadata(ns_name, None, ns_labels), opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=list(namespaces.values()))

        zookeeper = ZooKeeperEnsemble("zookeeper", ZooKeeperEnsembleArgs(s), in_ns)
        masters = MesosMasters("mesos-master", MesosMastersArgs(s, zookeeper.connect_string), in_ns)
        agents = MesosAgents("mesos-agent", MesosAgentsArgs(s, masters.zk_url), in_ns)
        marathon = Marathon("marathon", MarathonArgs(s, zookeeper.connect_string, masters.zk_url), in_ns)
        monitoring = Monitoring("prometheus", MonitoringArgs(s), in_ns)

        self.outputs = {
            "contract_version": OUTPUTS_CONTRACT_VERSION,
            "namespace": namespaces[s.namespace].metadata["name"],
            "agents_namespace": agents.namespace,
            "zookeeper_connect": zookeeper.connect_string,
            "zookeeper_client_service": zookeeper.client_service,
            "mesos_zk_url": masters.zk_url,
            "mesos_master_url": masters.http_url,
            "marathon_url": marathon.url,
            "marathon_zk_url": marathon.zk_url,
            "prometheus_url": monitoring.url,
        }
        self.register_outputs(dict(self.outputs))
