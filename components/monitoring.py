"""Monitoring: Prometheus with namespaced service-discovery RBAC, scrape jobs per tier and the alert rules.

`prometheus_config()` and `alert_rules()` are pure: the tests feed them to promtool, and the local
docker-compose stack is generated from the same source.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components import exporters, marathon_scaler
from components import k8s as kx
from components import security as sec
from components.settings import MonitoringSettings
from orchestrator.contracts import tiers

TIER = tiers.PROMETHEUS
UID = 65534
CONFIG_DIR = "/etc/prometheus"
RULES_FILE = "alerts.yml"  # relative: Prometheus resolves rule_files next to prometheus.yml
SECRETS_DIR = "secrets"    # relative as well: /etc/prometheus/secrets
MARATHON_PASSWORD_FILE = f"{SECRETS_DIR}/marathon-password"

# Metric names of the project's own services (a contract, see docs/metrics.md).
ZK_SYNC_LAG = "orchestrator_zk_sync_lag_seconds"
PROBE_LAST_REPORT = "orchestrator_probe_last_report_timestamp_seconds"
PROBE_LAST_REPORT_KEPT = "orchestrator:probe_last_report_timestamp_seconds:kept"
PROBE_RETIRE_AFTER_SECONDS = 7 * 86400   # an offline probe stays alerted for a week, then counts as retired


def _keep_component(component: str, port_name: str) -> list[dict[str, Any]]:
    return [
        {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
         "regex": component, "action": "keep"},
        {"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": port_name, "action": "keep"},
    ]


# Identify every target by namespace and pod, whatever the job.
_POD_LABELS = [
    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
]


def prometheus_config(platform: kx.PlatformContext, mon: MonitoringSettings,
                      alertmanagers: list[str] | None = None) -> dict[str, Any]:
    """`alertmanagers`: `host:port` of every Alertmanager replica (each gets every alert: they deduplicate
    among themselves); None or empty: no alerting block (alerts are only evaluated)."""
    namespaces = [platform.namespace, platform.agents_namespace]

    def sd() -> list[dict[str, Any]]:
        return [{"role": "pod", "namespaces": {"names": list(namespaces)}}]

    jobs: list[dict[str, Any]] = [
        {"job_name": "prometheus", "static_configs": [{"targets": [f"localhost:{mon.port}"]}]},
        {"job_name": "zookeeper", "kubernetes_sd_configs": sd(),
         "relabel_configs": _keep_component("zookeeper", "metrics") + _POD_LABELS},
        # Our exporters (components/exporters.py) scrape every master and agent; the job keeps the name the
        # alert rules select ("mesos-master"), the series carry the master in a `master` label.
        {"job_name": "mesos-master", "kubernetes_sd_configs": sd(),
         "relabel_configs": _keep_component("exporters", "mesos-metrics") + _POD_LABELS},
        {"job_name": "marathon-exporter", "kubernetes_sd_configs": sd(),
         "relabel_configs": _keep_component("exporters", "marathon-metrics") + _POD_LABELS},
        {"job_name": "marathon", "metrics_path": "/metrics/prometheus", "kubernetes_sd_configs": sd(),
         "relabel_configs": _keep_component("marathon", "http") + _POD_LABELS,
         **({"basic_auth": {"username": sec.HTTP_ADMIN, "password_file": MARATHON_PASSWORD_FILE}}
            if platform.auth_enabled else {})},
        # Anything else that opts in with the usual prometheus.io/* annotations (the project's services).
        {"job_name": "annotated-pods", "kubernetes_sd_configs": sd(),
         "relabel_configs": [
             {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
              "regex": "true", "action": "keep"},
             {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
              "regex": "(.+)", "target_label": "__metrics_path__"},
             {"source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
              "regex": r"([^:]+)(?::\d+)?;(\d+)", "replacement": "$1:$2", "target_label": "__address__"},
             {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
              "target_label": "component"},
         ] + _POD_LABELS},
    ]
    return {
        "global": {"scrape_interval": mon.scrape_interval,
                   "evaluation_interval": mon.evaluation_interval,
                   "external_labels": {"platform": platform.namespace}},
        **({"alerting": {"alertmanagers": [{"api_version": "v2", "static_configs": [
            {"targets": list(alertmanagers)}]}]}} if alertmanagers else {}),
        "rule_files": [RULES_FILE],
        "scrape_configs": jobs,
    }


RUNBOOKS = "https://github.com/orchestrator/orchestrator/blob/main/docs/runbooks"
# The runbook page of each alert (docs/runbooks/<page>.md, one section per alert; tests/test_runbooks.py).
RUNBOOK_PAGE = {"ZooKeeper": "zookeeper", "Mesos": "mesos", "Marathon": "marathon", "Probe": "probe-and-exporters"}


def runbook_url(name: str) -> str:
    page = "zk-sync" if name == "ZooKeeperSyncLagHigh" else next(
        p for prefix, p in RUNBOOK_PAGE.items() if name.startswith(prefix))
    return f"{RUNBOOKS}/{page}.md#{name.lower()}"


def _alert(name: str, expr: str, for_: str, severity: str, summary: str) -> dict[str, Any]:
    return {"alert": name, "expr": expr, "for": for_, "labels": {"severity": severity},
            "annotations": {"summary": summary, "runbook_url": runbook_url(name)}}


def alert_rules(zookeeper_replicas: int) -> dict[str, Any]:
    """The alert rules; the quorum alert needs the size of the ZooKeeper ensemble."""
    zk_quorum = zookeeper_replicas // 2 + 1
    return {"groups": [
        {"name": "orchestrator-zookeeper", "rules": [
            _alert("ZooKeeperQuorumLost",
                   f'(count(up{{job="zookeeper"}} == 1) or vector(0)) < {zk_quorum}', "1m", "critical",
                   f"Fewer than {zk_quorum} of {zookeeper_replicas} ZooKeeper servers are up: no quorum, "
                   "no leader, Mesos and Marathon cannot elect."),
            _alert("ZooKeeperServerDown", 'up{job="zookeeper"} == 0', "5m", "warning",
                   "ZooKeeper server {{ $labels.pod }} is down."),
            _alert("ZooKeeperLeaderElections", 'increase(election_time_count{job="zookeeper"}[10m]) > 1',
                   "0m", "warning", "ZooKeeper held repeated leader elections in 10 minutes."),
            _alert("ZooKeeperOutstandingRequestsHigh", 'outstanding_requests{job="zookeeper"} > 10', "5m",
                   "warning", "ZooKeeper {{ $labels.pod }} has had more than 10 queued requests for 5 minutes."),
        ]},
        {"name": "orchestrator-mesos", "rules": [
            {"record": "orchestrator:mesos_agents_connected:max",
             "expr": 'max(sum by (pod) (mesos_master_slaves_state{job="mesos-master",state=~"connected_.*"}))'},
            _alert("MesosNoLeader", '(max(mesos_master_elected{job="mesos-master"}) or vector(0)) < 1', "30s",
                   "critical", "No Mesos master has been elected for 30 seconds."),
            _alert("MesosAgentRegistrationsDropped",
                   "orchestrator:mesos_agents_connected:max"
                   " < 0.9 * max_over_time(orchestrator:mesos_agents_connected:max[1h])", "5m", "critical",
                   "Connected Mesos agents dropped by more than 10 % against the last hour's peak."),
            _alert("MesosTaskFailureRateHigh",
                   'sum(rate(mesos_master_task_states_exit_total{job="mesos-master",state=~"failed|errored|lost"}[10m]))'
                   ' / sum(rate(mesos_master_task_states_exit_total{job="mesos-master"}[10m])) > 0.05', "5m",
                   "warning", "More than 5 % of finished Mesos tasks failed, errored or were lost."),
        ]},
        {"name": "orchestrator-marathon", "rules": [
            # Marathon exports no leader gauge; without a leader its framework leaves the Mesos master.
            _alert("MarathonNoLeader",
                   '(count(up{job="marathon"} == 1) or vector(0)) == 0'
                   ' or max(mesos_master_frameworks_state{job="mesos-master",state="connected_active"}) < 1',
                   "1m", "critical", "Marathon has no elected leader (no instance up or no active framework)."),
        ]},
        {"name": "orchestrator-services", "rules": [
            _alert("ZooKeeperSyncLagHigh", f"max({ZK_SYNC_LAG}) > 0.5", "1m", "critical",
                   "ZooKeeper sync lag is above 500 ms: migration cutover is not safe."),
            # Prometheus keeps each probe's last report time itself: the recording rule falls back to its own
            # previous value when no API replica exports the probe any more (an API restart forgets offline
            # probes; a range like max_over_time[1h] forgot them after an hour), so ProbeOffline keeps firing
            # until the probe reports again or PROBE_RETIRE_AFTER has passed (a node removed for good).
            {"record": PROBE_LAST_REPORT_KEPT,
             "expr": f"max by (probe) ({PROBE_LAST_REPORT}) or ({PROBE_LAST_REPORT_KEPT}"
                     f" and on (probe) (time() - {PROBE_LAST_REPORT_KEPT} < {PROBE_RETIRE_AFTER_SECONDS}))"},
            _alert("ProbeOffline", f"time() - {PROBE_LAST_REPORT_KEPT} > 300", "0m", "warning",
                   "Probe {{ $labels.probe }} has not reported for more than 5 minutes."),
        ]},
        marathon_scaler.alert_rule_group(),
        exporters.alert_rule_group(),
    ]}


def to_yaml(data: dict[str, Any]) -> str:
    text: str = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return text


@dataclass(frozen=True)
class MonitoringArgs:
    platform: kx.PlatformContext
    monitoring: MonitoringSettings
    zookeeper_replicas: int  # for the quorum alert
    auth_secret: pulumi.Input[str] | None = None  # Secret with `marathon-password`
    alertmanagers: tuple[str, ...] = ()  # every Alertmanager replica, `host:port` (the alertmanager tier)


class Monitoring(pulumi.ComponentResource):
    url: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:monitoring:Monitoring", name, None, opts)
        platform, mon = args.platform, args.monitoring
        t = kx.TierContext.of(self, TIER, name, platform)
        ns, labels, child = t.namespace, t.labels, t.opts

        # The one workload that talks to the Kubernetes API (service discovery): it keeps its token.
        account = t.service_account(automount=True)
        self.peer = sec.Peer.of(t, {"http": mon.port})
        self.flows = [
            sec.Flow(TIER, sec.API_SERVER, "https", "Kubernetes service discovery"),
            sec.Flow(sec.CLIENTS, TIER, "http", "dashboards and users query Prometheus"),
        ]
        # Service discovery needs read access to pods/services/endpoints in the platform namespaces
        # only: namespaced Roles, not a ClusterRole.
        for target_ns in (platform.namespace, platform.agents_namespace):
            role_name = f"{name}-discovery"
            role = k8s.rbac.v1.Role(
                f"{name}-discovery-{target_ns}", metadata=kx.metadata(role_name, target_ns, labels),
                rules=[{"api_groups": [""], "resources": ["pods", "services", "endpoints"],
                        "verbs": ["get", "list", "watch"]}], opts=child)
            k8s.rbac.v1.RoleBinding(
                f"{name}-discovery-{target_ns}", metadata=kx.metadata(role_name, target_ns, labels),
                role_ref={"api_group": "rbac.authorization.k8s.io", "kind": "Role", "name": role.metadata["name"]},
                subjects=[{"kind": "ServiceAccount", "name": account.metadata["name"], "namespace": ns}],
                opts=child)

        config_text = to_yaml(prometheus_config(platform, mon, list(args.alertmanagers)))
        rules_text = to_yaml(alert_rules(args.zookeeper_replicas))
        config = k8s.core.v1.ConfigMap(f"{name}-config", metadata=kx.metadata(f"{name}-config", ns, labels),
                                       data={"prometheus.yml": config_text, RULES_FILE: rules_text}, opts=child)
        claim_spec = kx.volume_claim("data", mon.storage, mon.storage_class)["spec"]
        claim = k8s.core.v1.PersistentVolumeClaim(f"{name}-data", metadata=kx.metadata(f"{name}-data", ns, labels),
                                                  spec=claim_spec, opts=child)
        self.service = t.cluster_service([kx.service_port("http", mon.port)])
        mounts: list[dict[str, Any]] = [{"name": "config", "mount_path": CONFIG_DIR},
                                        {"name": "data", "mount_path": "/prometheus"}]
        volumes: list[dict[str, Any]] = [{"name": "config", "config_map": {"name": config.metadata["name"]}},
                   {"name": "data", "persistent_volume_claim": {"claim_name": claim.metadata["name"]}}]
        if args.auth_secret is not None:
            volume, mount = kx.secret_volume("scrape-auth", args.auth_secret, ("marathon-password",),
                                             f"{CONFIG_DIR}/{SECRETS_DIR}")
            volumes.append(volume)
            mounts.append(mount)
        container = kx.container({
            "name": "prometheus",
            "image": mon.image,
            "args": [f"--config.file={CONFIG_DIR}/prometheus.yml",
                     "--storage.tsdb.path=/prometheus",
                     f"--storage.tsdb.retention.time={mon.retention}",
                     f"--web.listen-address=:{mon.port}"],
            "ports": [{"name": "http", "container_port": mon.port}],
            "liveness_probe": kx.http_probe("/-/healthy", "http", initial_delay=30),
            "readiness_probe": kx.http_probe("/-/ready", "http", initial_delay=10),
            "volume_mounts": mounts,
        }, mon.resources)
        self.deployment = t.deployment(
            # One writer on a ReadWriteOnce volume: the old pod must stop before the new one mounts it.
            1, {"type": "Recreate"},
            # One replica: nothing to spread. The account mounts its token (see above).
            t.pod_spec(account, [container], uid=UID, spread=None, automount=True, volumes=volumes),
            kx.checkov_skips(mon.resources, CKV_K8S_38="Prometheus discovers scrape targets through the Kubernetes "
                                                       "API: it needs its token (read-only, namespaced Roles)"),
            template_annotations={"orchestrator.io/config-sha": kx.content_hash(config_text + rules_text)})
        self.url = t.url(self.service, mon.port)
        self.register_outputs({"url": self.url})

