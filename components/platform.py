"""The platform: namespaces, the tiers of the registry (orchestrator/contracts/tiers.py) wired together,
and the stack-outputs contract."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components.alertmanager import Alertmanager, AlertmanagerArgs, peer_hosts
from components.exporters import Exporters, ExportersArgs
from components.gitops import GitOps, GitOpsApplications, GitOpsApplicationsArgs, GitOpsArgs, Tier
from components.grafana import Grafana, GrafanaArgs
from components.marathon import Marathon, MarathonArgs
from components.marathon_scaler import MarathonScaler, MarathonScalerArgs
from components.mesos_agent import MesosAgents, MesosAgentsArgs
from components.mesos_master import MesosMasters, MesosMastersArgs
from components.monitoring import Monitoring, MonitoringArgs
from components.orchestrator_service import API_PREFIX, OrchestratorService, OrchestratorServiceArgs, api_config
from components.probe import Probe, ProbeArgs
from components.security import (
    ZK_SUPERUSER_SECRET,
    Flow,
    NetworkSecurity,
    NetworkSecurityArgs,
    Peer,
    PlatformSecrets,
    PlatformSecretsArgs,
    read_credentials,
)
from components.settings import PlatformSettings
from components.zk_backup import ZkBackup, ZkBackupArgs
from components.zk_certs import GeneratedZooKeeperTls
from components.zk_sync import ZkSync, ZkSyncArgs
from components.zookeeper import ClientTls, ZooKeeperEnsemble, ZooKeeperEnsembleArgs, connect_string, server_hosts
from orchestrator.contracts import tiers

# Bump on any incompatible change to the outputs below (renamed/removed key, changed meaning).
# 2: the orchestrator service is the API; `api_url`, `ui_url` and `api_probe_url` added.
OUTPUTS_CONTRACT_VERSION = "2"


# What a run declares (docs/delivery.md):
#   "deploy": what `pulumi up` applies: every tier (direct delivery), or the namespaces, the credentials'
#             Secrets and the Argo CD objects (gitops);
#   "tree":   the whole rendered tree Argo CD syncs, whatever the delivery: every tier and the Argo CD
#             objects. `orchestrator render` sets the config key SCOPE_CONFIG to "tree"; __main__.py
#             reads it into PlatformArgs.
Scope = Literal["deploy", "tree"]
SCOPE_CONFIG_NAMESPACE, SCOPE_CONFIG_KEY = "orchestrator-render", "scope"
ZK_SYNC_TIER = tiers.ZK_SYNC.id
AUTH_TIER = tiers.AUTH.id  # Kubernetes Secrets of the credentials (rendered redacted; never synced by Argo CD)
ARGOCD_TIER, ARGOCD_APPS_TIER = tiers.ARGOCD.id, tiers.ARGOCD_APPS.id


def scope_from_config(value: str | None) -> Scope:
    """The scope from the program's config (`orchestrator-render:scope`); unset means "deploy"."""
    if value in (None, "", "deploy"):
        return "deploy"
    if value == "tree":
        return "tree"
    raise ValueError(f"{SCOPE_CONFIG_NAMESPACE}:{SCOPE_CONFIG_KEY}={value!r}: expected 'deploy' or 'tree'")


@dataclass(frozen=True)
class PlatformArgs:
    settings: PlatformSettings
    scope: Scope = "deploy"


class Platform(pulumi.ComponentResource):
    outputs: dict[str, pulumi.Output[str] | str]

    def __init__(self, name: str, args: PlatformArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:platform:Platform", name, None, opts)
        s, scope = args.settings, args.scope
        if scope not in ("deploy", "tree"):
            raise ValueError(f"scope {scope!r}: expected 'deploy' or 'tree'")
        child = pulumi.ResourceOptions(parent=self)
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
        credentials = read_credentials(s) if tiers.AUTH.enabled(s) else None
        ctx = kx.PlatformContext.of(s)

        def secrets(zk_connect: pulumi.Input[str]) -> PlatformSecretsArgs:
            assert credentials is not None
            # The API's config, accounts and keys: a Secret Pulumi applies in both delivery modes.
            return PlatformSecretsArgs(ctx, credentials, zk_connect, s.mesos_master.zk_path, s.marathon.zk_path,
                                       api_config(s), s.service.api.admin_account)

        gitops = GitOpsArgs(ctx, s.gitops, stack, tiers.ARGOCD_APPS.id)

        if scope == "deploy" and s.delivery == "gitops":
            # Argo CD applies the tiers from the repository; Pulumi applies the namespaces, the
            # credentials and the Argo CD objects.
            self.outputs = outputs_from_settings(s)
            if credentials is not None:
                PlatformSecrets(tiers.AUTH.id, secrets(self.outputs["zookeeper_connect"]), in_ns)
            if s.zookeeper.tls_certificates == "generate":  # a Secret: Pulumi's to apply, never git's
                GeneratedZooKeeperTls(tiers.AUTH.id, ctx, s.zookeeper, tiers.ZOOKEEPER.id, in_ns)
            GitOps(tiers.ARGOCD.id, gitops, child)
            self.register_outputs(dict(self.outputs))
            return

        # Each tier's component is named after its registry id: that names its render directory, its
        # Argo CD Application, its instance label and its NetworkPolicies.
        # The superuser Secret is the credentials tier's (created below): referenced by its fixed name.
        superuser = ZK_SUPERUSER_SECRET if credentials and credentials.zookeeper_superuser_password else None
        zk_opts = in_ns
        if s.zookeeper.tls_certificates == "generate":
            # The certificates the program issues (docs/zookeeper-tls.md), before the members that mount them.
            generated = GeneratedZooKeeperTls(tiers.AUTH.id, ctx, s.zookeeper, tiers.ZOOKEEPER.id, in_ns)
            zk_opts = pulumi.ResourceOptions.merge(in_ns, pulumi.ResourceOptions(depends_on=[generated]))
        zookeeper = ZooKeeperEnsemble(tiers.ZOOKEEPER.id, ZooKeeperEnsembleArgs(ctx, s.zookeeper, superuser), zk_opts)
        # The tiers whose clients speak TLS use the secure client port when there is one (docs/zookeeper-tls.md);
        # Mesos and Marathon cannot, and keep the plain port.
        zk_tls = ClientTls.of(s.zookeeper)
        auth: dict[str, pulumi.Output[str]] = {}
        if credentials is not None:
            auth = PlatformSecrets(tiers.AUTH.id, secrets(zookeeper.connect_string), in_ns).names
        masters = MesosMasters(tiers.MESOS_MASTER.id, MesosMastersArgs(
            ctx, s.mesos_master, zookeeper.connect_string, auth.get("mesos-master-auth")), in_ns)
        agents = MesosAgents(tiers.MESOS_AGENT.id, MesosAgentsArgs(
            ctx, s.mesos_agent, masters.zk_url, auth.get("mesos-agent-auth")), in_ns)
        marathon = Marathon(tiers.MARATHON.id, MarathonArgs(
            ctx, s.marathon, zookeeper.connect_string, masters.zk_url, auth.get("marathon-auth")), in_ns)
        alerting: list[Alertmanager] = []
        if tiers.ALERTMANAGER.enabled(s):  # routes the alerts to the receivers of the settings (docs/monitoring.md)
            alerting.append(Alertmanager(tiers.ALERTMANAGER.id, AlertmanagerArgs(
                ctx, s.alertmanager, auth.get("alertmanager-auth")), in_ns))
        alertmanagers = tuple(f"{host}:{s.alertmanager.port}"
                              for host in peer_hosts(ctx, s.alertmanager.replicas)) if alerting else ()
        monitoring = Monitoring(tiers.PROMETHEUS.id, MonitoringArgs(
            ctx, s.monitoring, s.zookeeper.replicas, auth.get("prometheus-scrape-auth"), alertmanagers), in_ns)
        service = OrchestratorService(tiers.ORCHESTRATOR_SERVICE.id, OrchestratorServiceArgs(
            ctx, s.service, monitoring.url, s.monitoring.scrape_interval, s.security.rollouts_namespace,
            api_config(s), auth.get("orchestrator-api"), zk_tls), in_ns)
        # Every master by its stable name: each answers its own /metrics/snapshot.
        master_urls = masters.headless.metadata["name"].apply(lambda headless: [
            f"http://{tiers.MESOS_MASTER.id}-{i}.{ctx.service_fqdn(headless)}:{s.mesos_master.port}"
            for i in range(s.mesos_master.replicas)])
        exporters = Exporters(tiers.EXPORTERS.id, ExportersArgs(
            ctx, s.exporters, master_urls, marathon.url, auth.get("mesos-master-auth"), auth.get("marathon-auth")),
            in_ns)
        built: list[ZooKeeperEnsemble | MesosMasters | MesosAgents | Marathon | Monitoring | OrchestratorService
                    | ZkSync | ZkBackup | MarathonScaler | Exporters | Probe | Alertmanager | Grafana] = [
            zookeeper, masters, agents, marathon, monitoring, service, exporters, *alerting]
        if tiers.GRAFANA.enabled(s):  # dashboards as code (docs/monitoring.md); settings require its password
            built.append(Grafana(tiers.GRAFANA.id, GrafanaArgs(ctx, s.grafana, monitoring.url, auth["grafana-auth"]),
                                 in_ns))
        if tiers.ZK_SYNC.enabled(s):  # during a migration onto this platform's ensemble (docs/migration.md)
            built.append(ZkSync(tiers.ZK_SYNC.id, ZkSyncArgs(
                ctx, s.zk_sync, s.service.image, zookeeper.tls_connect_string, auth.get("zk-sync-auth"), zk_tls), in_ns))
        if tiers.ZK_BACKUP.enabled(s):  # scheduled snapshots to S3 (docs/backups.md)
            built.append(ZkBackup(tiers.ZK_BACKUP.id, ZkBackupArgs(
                ctx, s.zk_backup, s.service.image, zookeeper.tls_connect_string, auth.get("zk-backup-s3"), zk_tls),
                in_ns))
        if tiers.MARATHON_SCALER.enabled(s):  # autoscale, heal and reconcile Marathon apps (docs/marathon-scaler.md)
            built.append(MarathonScaler(tiers.MARATHON_SCALER.id, MarathonScalerArgs(
                ctx, s.marathon_scaler, s.service.image, marathon.url, monitoring.url, zookeeper.tls_connect_string,
                auth.get("marathon-scaler-auth"), zk_tls), in_ns))
        if tiers.PROBE.enabled(s):  # every node reports to the API (docs/probe.md); settings require auth
            built.append(Probe(tiers.PROBE.id, ProbeArgs(
                ctx, s.probe, s.service.image, s.probe.api_url or service.probe_url, auth["probe-token"],
                s.mesos_agent.port), in_ns))
        peers: list[Peer] = [c.peer for c in built]
        flows: list[Flow] = [f for c in built for f in c.flows]
        disabled = frozenset(t for t in tiers.TIERS if not t.enabled(s))
        NetworkSecurity(tiers.NETWORK_POLICY.id, NetworkSecurityArgs(s.security, peers, flows, disabled), in_ns)
        if scope == "tree":
            # Every Argo CD-synced tier directory of the render gets its child Application.
            apps = [Tier(t.id, t.namespace_of(s.namespace), t.wave or 0) for t in tiers.argocd_tiers(s)]
            GitOpsApplications(tiers.ARGOCD_APPS.id, GitOpsApplicationsArgs(ctx, s.gitops, stack, apps), child)
            GitOps(tiers.ARGOCD.id, gitops, child)

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
            "api_url": service.api_url,
            "api_probe_url": service.probe_url,
            "ui_url": service.ui_url,
        }
        self.register_outputs(dict(self.outputs))


def outputs_from_settings(s: PlatformSettings) -> dict[str, pulumi.Output[str] | str]:
    """The outputs contract when Pulumi builds no tier (GitOps delivery): the same values the tiers
    export, from the same settings and names. tests/test_gitops.py proves both ways agree per stack."""
    ctx = kx.PlatformContext.of(s)
    zk = connect_string(server_hosts(ctx, s.zookeeper.replicas, tiers.ZOOKEEPER.id, f"{tiers.ZOOKEEPER.id}-headless"),
                        s.zookeeper.client_port)
    url = ctx.http_url

    return {
        "contract_version": OUTPUTS_CONTRACT_VERSION,
        "namespace": s.namespace,
        "agents_namespace": s.agents_namespace,
        "zookeeper_connect": zk,
        "zookeeper_client_service": f"{s.service_fqdn('zookeeper-client')}:{s.zookeeper.client_port}",
        "mesos_zk_url": f"zk://{zk}{s.mesos_master.zk_path}",
        "mesos_master_url": url(tiers.MESOS_MASTER.id, s.mesos_master.port),
        "marathon_url": url(tiers.MARATHON.id, s.marathon.port),
        "marathon_zk_url": f"zk://{zk}{s.marathon.zk_path}",
        "prometheus_url": url(tiers.PROMETHEUS.id, s.monitoring.port),
        "delivery": s.delivery,
        "service_url": url(tiers.ORCHESTRATOR_SERVICE.id, s.service.port),
        "service_canary_url": url(f"{tiers.ORCHESTRATOR_SERVICE.id}-canary", s.service.port),
        "service_rollout": tiers.ORCHESTRATOR_SERVICE.id,
        "api_url": url(tiers.ORCHESTRATOR_SERVICE.id, s.service.port) + API_PREFIX,
        "api_probe_url": url(f"{tiers.ORCHESTRATOR_SERVICE.id}-headless", s.service.port),
        "ui_url": (f"https://{s.service.api.ingress.host}/" if s.service.api.ingress
                   else url(tiers.ORCHESTRATOR_SERVICE.id, s.service.port) + "/"),
    }
