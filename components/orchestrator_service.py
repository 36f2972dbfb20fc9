"""The orchestrator service, the platform's API (`orchestrator api serve`, docs/api.md), as an Argo Rollout:
canary and stable Services, a headless Service the probes publish through (every replica gets every report),
the canary steps from settings and the analysis gates as AnalysisTemplates querying Prometheus, the API's
config, keys and accounts from the credentials tier's Secret, its network flows, an optional TLS Ingress.

The gates query the service's metric contract (docs/metrics.md): the names below are that contract, and
`analysis_queries()` is pure so the tests evaluate every query with Prometheus's own engine.
Never canary ZooKeeper or the Mesos masters: a quorum member is not a stateless replica.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components.security import (
    API_CONFIG_KEY,
    API_KEYS_KEY,
    API_MARATHON_KEY,
    API_MESOS_KEY,
    API_ZK_KEY,
    CLIENTS,
    Flow,
    InNamespace,
    Peer,
)
from components.settings import CanarySettings, PlatformSettings, ServiceSettings, duration_seconds
from components.zookeeper import CLIENT_TLS_DIR, NO_TLS, ClientTls, server_hosts
from orchestrator.contracts import tiers
from orchestrator.contracts.service_metrics import (
    LIVENESS_PATH,
    METRICS_PATH,
    READINESS_PATH,
    REQUEST_DURATION,
    REQUESTS_TOTAL,
)

TIER = tiers.ORCHESTRATOR_SERVICE
UID = 10001
ARGO_ROLLOUTS_API = "argoproj.io/v1alpha1"

# The metric contract (docs/metrics.md) lives in orchestrator.contracts, shared with the API that serves it.

# Arguments every AnalysisTemplate declares; the Rollout passes them at each analysis step.
ARG_NAMESPACE, ARG_ROLLOUT, ARG_CANARY_HASH = "namespace", "rollout", "canary-hash"
# Pods of the canary ReplicaSet are named `<rollout>-<pod-template-hash>-<suffix>`; the scrape job gives
# every series the `namespace` and `pod` labels, so this selects exactly the canary's own series.
CANARY_SELECTOR = (f'namespace="{{{{args.{ARG_NAMESPACE}}}}}",'
                   f'pod=~"{{{{args.{ARG_ROLLOUT}}}}}-{{{{args.{ARG_CANARY_HASH}}}}}-.+"')

SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}

# Where the API reads its config: the credentials tier's Secret (authentication on) or, without
# authentication, a ConfigMap with no account and a key generated per pod (nobody can log in: no default).
API_CONFIG_DIR = "/etc/orchestrator/api"
EPHEMERAL_KEY_DIR = "/run/orchestrator-api"
UI_DIR = "/opt/orchestrator/ui"  # the web UI in the services image (Dockerfile)
API_PREFIX = "/api/v1"
# Without authentication: a random key per pod, written before the API starts (umask: readable by it only).
KEYGEN = (f"umask 077 && python -c 'import secrets; print(\"pod\", secrets.token_urlsafe(48))' "
          f"> {EPHEMERAL_KEY_DIR}/{API_KEYS_KEY}")


@dataclass(frozen=True)
class Gate:
    """One analysis gate: a PromQL query returning one sample and the bound it must respect."""

    name: str
    query: str
    op: str  # ">=" (value must be at least bound) or "<="
    bound: float
    unit: str

    @property
    def success_condition(self) -> str:
        return f"len(result) == 1 && result[0] {self.op} {self.bound:g}"

    @property
    def failure_condition(self) -> str:
        # The negation for a real number; NaN (no requests in the window) and an empty result satisfy
        # neither, so the measurement is Inconclusive: no traffic is no evidence either way.
        return f"len(result) == 1 && result[0] {'<' if self.op == '>=' else '>'} {self.bound:g}"


def rate_window(c: CanarySettings, scrape_interval: str) -> str:
    """Each measurement looks back one analysis interval, and at least four scrapes (rate() needs two)."""
    seconds = max(duration_seconds(c.analysis_interval), 4 * duration_seconds(scrape_interval))
    return f"{int(seconds) // 60}m" if seconds % 60 == 0 else f"{int(seconds)}s"


def analysis_queries(c: CanarySettings, scrape_interval: str) -> list[Gate]:
    """The four gates, with `{{args.*}}` placeholders that Argo Rollouts substitutes."""
    w = rate_window(c, scrape_interval)
    total = f"sum(rate({REQUESTS_TOTAL}{{{CANARY_SELECTOR}}}[{w}]))"

    def share(codes: str) -> str:
        # `or vector(0)`: a canary answering no request at all with these codes has share 0, not "no data".
        return f'(sum(rate({REQUESTS_TOTAL}{{{CANARY_SELECTOR},code=~"{codes}"}}[{w}])) or vector(0)) / {total}'

    def quantile(q: float) -> str:
        return (f"histogram_quantile({q}, sum by (le) "
                f"(rate({REQUEST_DURATION}_bucket{{{CANARY_SELECTOR}}}[{w}])))")

    return [
        Gate("success-rate", share("[23].."), ">=", c.success_rate_min, "ratio"),
        Gate("error-rate", share("5.."), "<=", c.error_rate_max, "ratio"),
        Gate("latency-p95", quantile(0.95), "<=", c.p95_latency_max_ms / 1000, "seconds"),
        Gate("latency-p99", quantile(0.99), "<=", c.p99_latency_max_ms / 1000, "seconds"),
    ]


def template_name(rollout: str, gate: Gate) -> str:
    return f"{rollout}-{gate.name}"


def analysis_template_spec(c: CanarySettings, gate: Gate, prometheus_url: str) -> dict[str, Any]:
    return {
        "args": [{"name": ARG_NAMESPACE}, {"name": ARG_ROLLOUT}, {"name": ARG_CANARY_HASH}],
        "metrics": [{
            "name": gate.name,
            "interval": c.analysis_interval,
            "count": c.analysis_count,
            # More than `failureLimit` failed measurements fail the analysis, and the Rollout aborts:
            # traffic returns to the stable ReplicaSet and the canary scales down.
            "failureLimit": c.failure_limit,
            "inconclusiveLimit": c.failure_limit,
            "successCondition": gate.success_condition,
            "failureCondition": gate.failure_condition,
            "provider": {"prometheus": {"address": prometheus_url, "query": gate.query}},
        }],
    }


def canary_steps(gates: list[Gate], c: CanarySettings, rollout: str, namespace: str) -> list[dict[str, Any]]:
    """Settings' step strings → Argo CanarySteps; every analysis step runs every gate."""
    templates = [{"templateName": template_name(rollout, g)} for g in gates]
    args = [{"name": ARG_NAMESPACE, "value": namespace},
            {"name": ARG_ROLLOUT, "value": rollout},
            # The hash of the ReplicaSet being rolled out: the canary's pods, not the stable ones.
            {"name": ARG_CANARY_HASH, "valueFrom": {"podTemplateHashValue": "Latest"}}]
    steps: list[dict[str, Any]] = []
    for step in c.steps:
        if step.endswith("%"):
            steps.append({"setWeight": int(step[:-1])})
        elif step == "analysis":
            steps.append({"analysis": {"templates": templates, "args": args}})
        elif step == "pause":
            steps.append({"pause": {}})  # indefinitely: `kubectl argo rollouts promote` continues
        else:
            steps.append({"pause": {"duration": step.split(" ", 1)[1]}})
    return steps


def api_config(s: PlatformSettings) -> dict[str, Any]:
    """The API's config file (services/api/config.py ApiConfig) without its accounts, from the settings alone:
    the same names the tiers use, so the credentials tier builds it in both delivery modes."""
    url = kx.PlatformContext.of(s).http_url
    zk_id, mesos_id = tiers.ZOOKEEPER.id, tiers.MESOS_MASTER.id
    ctx = kx.PlatformContext.of(s)
    zk_port = s.zookeeper.secure_client_port if s.zookeeper.tls_secret else s.zookeeper.client_port
    gates = [{"name": g.name, "threshold": f"{g.op} {g.bound:g}",
              # The AnalysisTemplates' arguments, for every pod of the Rollout (the API shows the live values).
              "query": g.query.replace(f"{{{{args.{ARG_NAMESPACE}}}}}", s.namespace)
                              .replace(f"{{{{args.{ARG_ROLLOUT}}}}}", TIER.id)
                              .replace(f"{{{{args.{ARG_CANARY_HASH}}}}}", "[a-z0-9]+")}
             for g in analysis_queries(s.service.canary, s.monitoring.scrape_interval)]
    config: dict[str, Any] = {
        "signing_key_file": f"{API_CONFIG_DIR if s.auth_enabled else EPHEMERAL_KEY_DIR}/{API_KEYS_KEY}",
        "revoked_tokens": list(s.service.api.revoked_tokens),
        "ui_dir": UI_DIR,
        # With zookeeper.tls_secret the API asks the secure client ports, over TLS (ClientTls mounts the CA).
        "zookeeper": {"servers": [f"{h}:{zk_port}" for h in server_hosts(
            ctx, s.zookeeper.replicas, zk_id, f"{zk_id}-headless")],
            **({"tls_dir": CLIENT_TLS_DIR} if s.zookeeper.tls_secret else {})},
        "mesos": {"masters": [f"http://{h}:{s.mesos_master.port}" for h in server_hosts(
            ctx, s.mesos_master.replicas, mesos_id, f"{mesos_id}-headless")]},
        "marathon": {"urls": [url(tiers.MARATHON.id, s.marathon.port)]},
        "prometheus": {"url": url(tiers.PROMETHEUS.id, s.monitoring.port), "canary_gates": gates},
    }
    if s.auth_enabled:
        config["mesos"]["credentials_file"] = f"{API_CONFIG_DIR}/{API_MESOS_KEY}"
        config["marathon"]["credentials_file"] = f"{API_CONFIG_DIR}/{API_MARATHON_KEY}"
    if tiers.ZK_SYNC.enabled(s):
        config["zk_sync_metrics_url"] = url(tiers.ZK_SYNC.id, s.zk_sync.metrics_port) + "/metrics"
    config.update(_autoscaler_config(s))
    return config


def _autoscaler_config(s: PlatformSettings) -> dict[str, Any]:
    """The scaler's store, so operators see and edit autoscaling policies (docs/api.md); with authentication the
    API's own ZooKeeper identity (read state, write overrides: granted by the scaler), a file of its Secret."""
    if not tiers.MARATHON_SCALER.enabled(s):
        return {}
    target: dict[str, Any] = {"znode": s.marathon_scaler.zk_path}
    if s.auth_enabled:
        target["credentials_file"] = f"{API_CONFIG_DIR}/{API_ZK_KEY}"
    return {"autoscaler": target}


def serve_args(port: int) -> list[str]:
    return ["api", "serve", "--config", f"{API_CONFIG_DIR}/{API_CONFIG_KEY}", "--listen", f"0.0.0.0:{port}"]


@dataclass(frozen=True)
class OrchestratorServiceArgs:
    platform: kx.PlatformContext
    service: ServiceSettings
    prometheus_url: pulumi.Input[str]
    scrape_interval: str  # monitoring.scrape_interval: the gates' rate window covers four scrapes
    rollouts_namespace: str  # security.rollouts_namespace: where the analysis queries come from
    api_config: dict[str, Any] | None = None  # api_config(settings); None: the image's default command
    # The credentials tier's `orchestrator-api` Secret (config with accounts, keys, Mesos/Marathon credentials);
    # None: authentication is off and the config is a ConfigMap of this tier, with no account.
    api_secret: pulumi.Input[str] | None = None
    zk_tls: ClientTls = NO_TLS  # zookeeper.tls_secret: the CA the API verifies ZooKeeper with


class OrchestratorService(pulumi.ComponentResource):
    url: pulumi.Output[str]
    canary_url: pulumi.Output[str]
    probe_url: pulumi.Output[str]  # the headless Service: resolves to every replica
    api_url: pulumi.Output[str]
    ui_url: pulumi.Output[str]
    rollout_name: pulumi.Output[str]

    def __init__(self, name: str, args: OrchestratorServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:orchestrator_service:OrchestratorService", name, None, opts)
        svc = args.service
        t = kx.TierContext.of(self, TIER, name, args.platform)
        ns, labels, selector, child = t.namespace, t.labels, t.selector, t.opts
        ports = [kx.service_port("http", svc.port)]
        gates = analysis_queries(svc.canary, args.scrape_interval)

        # Argo Rollouts adds `rollouts-pod-template-hash` to these selectors at run time, pointing each
        # Service at its ReplicaSet; without a traffic router the canary weight is the replica ratio.
        self.stable_service = t.cluster_service(ports)
        self.canary_service = t.cluster_service(ports, suffix="-canary")
        # Not managed by Argo Rollouts: it selects stable and canary pods alike, and the probes resolve it to
        # every pod IP, so every replica (the canary's included) holds the whole topology (docs/api.md).
        self.headless_service = t.headless_service(ports)
        self.pdb = t.disruption_budget()
        self.peer = Peer.of(t, {"http": svc.port})
        self.flows = [
            Flow(InNamespace(args.rollouts_namespace), tiers.PROMETHEUS, "http",
                 "Argo Rollouts runs the canary analysis"),
            # Not open to any pod: people come through `kubectl port-forward` (not filtered by NetworkPolicies)
            # or the ingress controller (below); the probes' flow is declared by the probe tier.
            Flow(CLIENTS, TIER, "http", "pods of security.client_namespaces call the API (scripts, API tokens)"),
            Flow(tiers.PROMETHEUS, TIER, "http", "scrape the orchestrator service"),
            Flow(TIER, tiers.ZOOKEEPER, args.zk_tls.port,
                 "the API reads each server's mode (srvr, mntr) and the scaler's policy znodes"),
            Flow(TIER, tiers.MESOS_MASTER, "http", "the API reads the leading master's state"),
            Flow(TIER, tiers.MARATHON, "http", "the API lists, scales and restarts Marathon apps"),
            Flow(TIER, tiers.PROMETHEUS, "http", "the API reads the canary gates' values"),
            Flow(TIER, tiers.ZK_SYNC, "metrics", "the API shows the sync engine's lag (when zk-sync runs)"),
        ]
        if svc.api.ingress is not None:
            self.flows.append(Flow(InNamespace(svc.api.ingress.controller_namespace), TIER, "http",
                                   "users reach the API and UI through the ingress controller (service.api.ingress)"))

        templates = [
            k8s.apiextensions.CustomResource(
                template_name(name, gate), api_version=ARGO_ROLLOUTS_API, kind="AnalysisTemplate",
                metadata=kx.metadata(template_name(name, gate), ns, labels, dict(SKIP_AWAIT)),
                spec=pulumi.Output.from_input(args.prometheus_url).apply(
                    functools.partial(analysis_template_spec, svc.canary, gate)),
                opts=child)
            for gate in gates]

        volumes: list[dict[str, Any]] = [{"name": "tmp", "empty_dir": {}}]
        mounts: list[dict[str, Any]] = [{"name": "tmp", "mount_path": "/tmp"}]
        tls_volumes, tls_mounts = args.zk_tls.volumes()
        volumes += tls_volumes
        mounts += tls_mounts
        template_annotations = {**kx.scrape_annotations(svc.port, METRICS_PATH), **args.zk_tls.annotations()}
        command: dict[str, Any] = {}
        if args.api_secret is not None:
            # Mounted whole (no subPath): Kubernetes swaps the files on a Secret update and the API re-reads
            # them within a second (revocations, accounts, key rotation need no restart).
            zk_key = (API_ZK_KEY,) if (args.api_config or {}).get("autoscaler", {}).get("credentials_file") else ()
            volume, mount = kx.secret_volume("api", args.api_secret, (API_CONFIG_KEY, API_KEYS_KEY, API_MESOS_KEY,
                                                                      API_MARATHON_KEY, *zk_key), API_CONFIG_DIR)
            volumes.append(volume)
            mounts.append(mount)
            command = {"command": ["orchestrator"], "args": serve_args(svc.port)}
        elif args.api_config is not None:
            text = json.dumps(args.api_config, indent=2, sort_keys=True) + "\n"
            config = k8s.core.v1.ConfigMap(f"{name}-config", metadata=t.metadata(f"{name}-config"),
                                           data={API_CONFIG_KEY: text}, opts=child)
            volumes += [{"name": "api", "config_map": {"name": config.metadata["name"]}},
                        {"name": "keys", "empty_dir": {"medium": "Memory", "size_limit": "1Mi"}}]
            mounts += [{"name": "api", "mount_path": API_CONFIG_DIR, "read_only": True},
                       {"name": "keys", "mount_path": EPHEMERAL_KEY_DIR}]
            command = {"command": ["sh", "-c", f"{KEYGEN} && exec orchestrator {' '.join(serve_args(svc.port))}"]}
            template_annotations["orchestrator.io/config-sha"] = kx.content_hash(text)
        container = kx.container({
            "name": "service",
            "image": svc.image,
            **command,
            "ports": [{"name": "http", "container_port": svc.port}],
            # /healthz: the process answers; /readyz: its config and signing key are loaded.
            "liveness_probe": kx.http_probe(LIVENESS_PATH, "http", initial_delay=10),
            "readiness_probe": kx.http_probe(READINESS_PATH, "http", initial_delay=5, period=5),
            "volume_mounts": mounts,
        }, svc.resources)
        self.rollout = k8s.apiextensions.CustomResource(
            name, api_version=ARGO_ROLLOUTS_API, kind="Rollout",
            # skipAwait: a canary runs for half an hour of pauses and analyses; Argo Rollouts, not Pulumi,
            # owns its progress (docs/delivery.md). Without it Pulumi could wait on it until it times out.
            metadata=kx.metadata(name, ns, labels, dict(SKIP_AWAIT)),
            spec={
                "replicas": svc.replicas,
                "revisionHistoryLimit": 3,
                "selector": {"matchLabels": selector},
                # A canary that never becomes ready aborts too, instead of hanging at its first step.
                "progressDeadlineSeconds": 600,
                "progressDeadlineAbort": True,
                "template": {
                    "metadata": {"labels": labels, "annotations": template_annotations},
                    # No account of its own (the namespace default, without a token); spread softly even
                    # in production: a canary may briefly run two pods on one node.
                    "spec": _camel(t.pod_spec(None, [container], uid=UID, spread=False,
                                              volumes=volumes))},
                "strategy": {"canary": {
                    "stableService": self.stable_service.metadata["name"],
                    "canaryService": self.canary_service.metadata["name"],
                    "maxSurge": 1,
                    "maxUnavailable": 0,
                    "steps": canary_steps(gates, svc.canary, name, ns)}},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=templates))

        ingress = svc.api.ingress
        if ingress is not None:
            # Only when configured (settings require security.allow_ingress), always with TLS for its host.
            spec: dict[str, Any] = {
                "tls": [{"hosts": [ingress.host], "secret_name": ingress.tls_secret}],
                "rules": [{"host": ingress.host, "http": {"paths": [{
                    "path": "/", "path_type": "Prefix", "backend": {"service": {
                        "name": self.stable_service.metadata["name"], "port": {"name": "http"}}}}]}}]}
            if ingress.class_name:
                spec["ingress_class_name"] = ingress.class_name
            k8s.networking.v1.Ingress(name, metadata=t.metadata(), spec=spec, opts=child)

        self.url = t.url(self.stable_service, svc.port)
        self.canary_url = t.url(self.canary_service, svc.port)
        self.probe_url = t.url(self.headless_service, svc.port)
        self.api_url = self.url.apply(lambda u: u + API_PREFIX)
        self.ui_url = pulumi.Output.from_input(f"https://{ingress.host}/") if ingress else self.url.apply(
            lambda u: u + "/")
        self.rollout_name = self.rollout.metadata["name"]
        self.register_outputs({"url": self.url, "canary_url": self.canary_url, "probe_url": self.probe_url,
                               "api_url": self.api_url, "ui_url": self.ui_url, "rollout_name": self.rollout_name})


def _camel(value: Any) -> Any:
    """Custom resources are sent as given (no snake_case translation): camelCase the shared builders'
    dicts, keeping map keys (labels, annotations) as they are."""
    if isinstance(value, dict):
        return {(_camel_key(k) if "/" not in k and "." not in k else k): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _camel_key(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)
