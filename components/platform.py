"""The platform: namespaces, the five tiers wired together, and the stack-outputs contract."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components.gitops import GitOps, GitOpsApplications, GitOpsApplicationsArgs, GitOpsArgs, Tier
from components.marathon import Marathon, MarathonArgs
from components.mesos_agent import MesosAgents, MesosAgentsArgs
from components.mesos_master import MesosMasters, MesosMastersArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.orchestrator_service import OrchestratorService, OrchestratorServiceArgs
from components.security import (
    External,
    NetworkSecurity,
    NetworkSecurityArgs,
    PlatformSecrets,
    PlatformSecretsArgs,
    platform_flows,
    read_credentials,
    zk_sync_flows,
)
from components.settings import PlatformSettings
from components.zk_sync import ZkSync, ZkSyncArgs
from components.zookeeper import ZooKeeperEnsemble, ZooKeeperEnsembleArgs, connect_string, server_hosts

# Bump on any incompatible change to the outputs below (renamed/removed key, changed meaning).
OUTPUTS_CONTRACT_VERSION = "1"


# What a run declares (docs/delivery.md):
#   "deploy": what `pulumi up` applies: every tier (direct delivery), or the namespaces, the credentials'
#             Secrets and the Argo CD objects (gitops);
#   "tree":   the whole rendered tree Argo CD syncs, whatever the delivery: every tier and the Argo CD
#             objects. `orchestrator render` sets ORCHESTRATOR_SCOPE=tree.
Scope = Literal["deploy", "tree"]
SCOPE_ENV = "ORCHESTRATOR_SCOPE"
ZK_SYNC_TIER = "zk-sync"
AUTH_TIER = "auth"  # Kubernetes Secrets of the credentials (rendered redacted; never synced by Argo CD)
ARGOCD_TIER, ARGOCD_APPS_TIER = "argocd", "argocd-apps"


@dataclass(frozen=True)
class PlatformArgs:
    settings: PlatformSettings
    scope: Scope | None = None  # None: from $ORCHESTRATOR_SCOPE, default "deploy"


class Platform(pulumi.ComponentResource):
    outputs: dict[str, pulumi.Output[str] | str]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:platform:Platform", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        scope = args.scope or os.environ.get(SCOPE_ENV) or "deploy"
        if scope not in ("deploy", "tree"):
            raise ValueError(f"{SCOPE_ENV}={scope!r}: expected 'deploy' or 'tree'")
        stack = pulumi.get_stack()

        # Pod Security Admission: everything is 'restricted' except the agents, which launch containers.
        # Namespaces and credentials are Pulumi's in both delivery modes: Secrets never go to git.
        namespaces = {}
        for ns_name, level in ((s.namespace, "restricted"), (s.agents_namespace, "privileged")):
            ns_labels = {**kx.labels(ns_name, "namespace", name),
                         "pod-security.kubernetes.io/enforce": level,
                         "pod-security.kubernetes.io/warn": level,
                         "pod-security.kubernetes.io/audit": level}
            namespaces[ns_name] = k8s.core.v1.Namespace(
                f"namespace-{ns_name}", metadata=kx.metadata(ns_name, None, ns_labels), opts=child)
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=list(namespaces.values()))
        credentials = read_credentials(s)  # None unless authentication is on

        if scope == "deploy" and s.delivery == "gitops":
            # Argo CD applies the tiers from the repository; Pulumi applies the namespaces, the
            # credentials and the Argo CD objects.
            self.outputs = outputs_from_settings(s)
            if credentials is not None:
                PlatformSecrets(AUTH_TIER, PlatformSecretsArgs(s, credentials, self.outputs["zookeeper_connect"]),
                                in_ns)
            GitOps(ARGOCD_TIER, GitOpsArgs(s, stack, ARGOCD_APPS_TIER), child)
            self.register_outputs(dict(self.outputs))
            return

        zookeeper = ZooKeeperEnsemble("zookeeper", ZooKeeperEnsembleArgs(s), in_ns)
        auth: dict[str, pulumi.Output[str]] = {}
        if credentials is not None:
            auth = PlatformSecrets(AUTH_TIER, PlatformSecretsArgs(s, credentials, zookeeper.connect_string),
                                   in_ns).names
        masters = MesosMasters("mesos-master", MesosMastersArgs(s, zookeeper.connect_string,
                                                                auth.get("mesos-master-auth")), in_ns)
        agents = MesosAgents("mesos-agent", MesosAgentsArgs(s, masters.zk_url, auth.get("mesos-agent-auth")), in_ns)
        marathon = Marathon("marathon", MarathonArgs(s, zookeeper.connect_string, masters.zk_url,
                                                     auth.get("marathon-auth")), in_ns)
        monitoring = Monitoring("prometheus", MonitoringArgs(s, auth.get("prometheus-scrape-auth")), in_ns)
        service = OrchestratorService("orchestrator-service", OrchestratorServiceArgs(s, monitoring.url), in_ns)
        peers = [zookeeper.peer, masters.peer, agents.peer, marathon.peer, monitoring.peer, service.peer]
        flows = platform_flows(zookeeper.peer, masters.peer, agents.peer, marathon.peer, monitoring.peer,
                               service.peer, s.security.rollouts_namespace)
        if s.zk_sync.enabled:  # during a migration onto this platform's ensemble (docs/migration.md)
            sync = ZkSync(ZK_SYNC_TIER, ZkSyncArgs(s, zookeeper.connect_string, auth.get("zk-sync-auth")), in_ns)
            source = External("zk-source", tuple(s.zk_sync.source_cidrs), {"client": s.zk_sync.source_port})
            peers.append(sync.peer)
            flows += zk_sync_flows(sync.peer, zookeeper.peer, monitoring.peer, source)
        NetworkSecurity("network-policy", NetworkSecurityArgs(s, peers, flows), in_ns)
        if scope == "tree":
            # Sync waves: namespaces, then ZooKeeper with monitoring, Mesos masters, agents and Marathon,
            # and the canaried service last. Every tier directory of the render needs its Application.
            tiers = [Tier("network-policy", s.namespace, -1),
                     Tier("prometheus", s.namespace, 0),
                     Tier("zookeeper", s.namespace, 0), Tier("mesos-master", s.namespace, 1),
                     Tier("mesos-agent", s.agents_namespace, 2), Tier("marathon", s.namespace, 2),
                     Tier("orchestrator-service", s.namespace, 3)]
            if s.zk_sync.enabled:
                tiers.append(Tier(ZK_SYNC_TIER, s.namespace, 1))
            GitOpsApplications(ARGOCD_APPS_TIER, GitOpsApplicationsArgs(s, stack, tiers), child)
            GitOps(ARGOCD_TIER, GitOpsArgs(s, stack, ARGOCD_APPS_TIER), child)

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
            "delivery": s.delivery,
            "service_url": service.url,
            "service_canary_url": service.canary_url,
            "service_rollout": service.rollout_name,
        }
        self.register_outputs(dict(self.outputs))


def outputs_from_settings(s: PlatformSettings) -> dict[str, pulumi.Output[str] | str]:
    """The outputs contract when Pulumi builds no tier (GitOps delivery): the same values the tiers
    export, from the same settings and names. tests/test_gitops.py proves both ways agree per stack."""
    zk = connect_string(server_hosts(s, "zookeeper", "zookeeper-headless"), s.zookeeper.client_port)

    def url(service: str, port: int) -> str:
        return f"http://{s.service_fqdn(service)}:{port}"

    return {
        "contract_version": OUTPUTS_CONTRACT_VERSION,
        "namespace": s.namespace,
        "agents_namespace": s.agents_namespace,
        "zookeeper_connect": zk,
        "zookeeper_client_service": f"{s.service_fqdn('zookeeper-client')}:{s.zookeeper.client_port}",
        "mesos_zk_url": f"zk://{zk}{s.mesos_master.zk_path}",
        "mesos_master_url": url("mesos-master", s.mesos_master.port),
        "marathon_url": url("marathon", s.marathon.port),
        "marathon_zk_url": f"zk://{zk}{s.marathon.zk_path}",
        "prometheus_url": url("prometheus", s.monitoring.port),
        "delivery": s.delivery,
        "service_url": url("orchestrator-service", s.service.port),
        "service_canary_url": url("orchestrator-service-canary", s.service.port),
        "service_rollout": "orchestrator-service",
    }
