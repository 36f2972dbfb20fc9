"""Typed per-stack settings: the only way configuration enters the program.

Values come from the stack's `orchestrator:*` config keys (structured values as JSON, exactly as the
Pulumi CLI hands them to the program). Everything derivable — quorum, server lists, connect strings,
namespaces of dependent tiers — is computed here and never configured twice.
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.contracts.marathon_apps import normalize_app_id
from orchestrator.contracts.marathon_scaler import METRICS_PORT as SCALER_METRICS_PORT
from orchestrator.contracts.marathon_scaler import AutoscalePolicy, HealPolicy

CONFIG_NAMESPACE = "orchestrator"

_CPU = re.compile(r"^(\d+m|\d+(\.\d{1,3})?)$")
_BYTES = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
_IMAGE = re.compile(r"^(?P<repo>[a-z0-9][a-z0-9._\-/:]*?)(:(?P<tag>[\w][\w.\-]{0,127}))?(@sha256:[0-9a-f]{64})?$")


def _cpu(value: str) -> str:
    if not _CPU.match(value) or value in ("0", "0m"):
        raise ValueError(f"{value!r} is not a CPU quantity (e.g. '500m' or '2')")
    return value


def _bytes(value: str) -> str:
    if not _BYTES.match(value) or float(re.sub(r"[A-Za-z]+$", "", value)) == 0:
        raise ValueError(f"{value!r} is not a memory/storage quantity (e.g. '512Mi' or '10Gi')")
    return value


def _image(value: str) -> str:
    match = _IMAGE.match(value)
    if not match:
        raise ValueError(f"{value!r} is not an image reference (repository:tag)")
    tag, digest = match.group("tag"), "@sha256:" in value
    if not tag and not digest:
        raise ValueError(f"image {value!r} has no tag: pin a version (repository:tag)")
    if tag == "latest":
        raise ValueError(f"image {value!r} uses 'latest': pin a version so deploys are reproducible")
    return value


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a DNS-1123 label (lowercase letters, digits, '-', ≤63 chars)")
    return value


def _duration(value: str) -> str:
    if not _DURATION.match(value):
        raise ValueError(f"{value!r} is not a Prometheus duration (e.g. '30s', '15d')")
    return value


_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def duration_seconds(value: str) -> float:
    """A Prometheus duration ('1m30s') in seconds."""
    return sum(int(n) * _UNIT_SECONDS[u] for n, u in re.findall(r"(\d+)(ms|s|m|h|d|w|y)", value))


_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def quantity_bytes(value: str) -> float:
    """A memory quantity ('512Mi', '1G', '1048576') in bytes (validated by `_bytes` first)."""
    number, unit = re.match(r"^([\d.]+)([A-Za-z]*)$", value).groups()  # type: ignore[union-attr]
    return float(number) * (_BINARY.get(unit) or _DECIMAL.get(unit) or 1)


def cpu_millis(value: str) -> float:
    """A CPU quantity ('500m', '2') in millicores."""
    return float(value[:-1]) if value.endswith("m") else float(value) * 1000


Cpu = Annotated[str, AfterValidator(_cpu)]
Quantity = Annotated[str, AfterValidator(_bytes)]
Image = Annotated[str, AfterValidator(_image)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Duration = Annotated[str, AfterValidator(_duration)]
Port = Annotated[int, Field(ge=1, le=65535)]


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class Resources(_Settings):
    """Container requests and limits. No CPU limit by default: CPU throttling hurts JVM latency."""

    cpu_request: Cpu = "250m"
    memory_request: Quantity = "512Mi"
    cpu_limit: Cpu | None = None
    memory_limit: Quantity = "1Gi"


# Upper bounds on every count (issue 15): a typo such as `replicas: 100000000000000000001` is an error
# naming the key, not a render that builds a list of that many servers until memory runs out.
MAX_ZOOKEEPER_SERVERS = 9    # voting members; more slows every write (each needs a majority)
MAX_MESOS_MASTERS = 7        # Mesos recommends 3 or 5; the replicated log needs a majority
MAX_REPLICAS = 100           # stateless Deployments/Rollouts (Marathon, the service)
MAX_HEAP_MB = 65536
MAX_LIST = 64                # CIDR lists, namespaces, paths, selectors, canary steps


class ZooKeeperSettings(_Settings):
    replicas: int = Field(3, ge=1, le=MAX_ZOOKEEPER_SERVERS)
    image: Image = "zookeeper:3.9.5"
    storage: Quantity = "10Gi"
    storage_class: str | None = None
    heap_mb: int = Field(512, ge=64, le=MAX_HEAP_MB)
    resources: Resources = Resources(memory_request="768Mi", memory_limit="1Gi")
    client_port: Port = 2181
    peer_port: Port = 2888
    election_port: Port = 3888
    metrics_port: Port = 7000
    tick_time_ms: int = Field(2000, ge=100, le=60_000)
    init_limit: int = Field(10, ge=1, le=1000)
    sync_limit: int = Field(5, ge=1, le=1000)
    max_client_cnxns: int = Field(60, ge=0, le=100_000)  # 0: unlimited (ZooKeeper's meaning)
    autopurge_snap_retain_count: int = Field(3, ge=3, le=1000)
    autopurge_purge_interval_hours: int = Field(1, ge=1, le=8760)
    # TLS (docs/zookeeper-tls.md): a Secret of type kubernetes.io/tls with tls.crt, tls.key and ca.crt (what
    # cert-manager issues), for quorum TLS and a secure client port. The plain client_port stays for Mesos
    # and Marathon, whose ZooKeeper clients cannot speak TLS. None: no TLS.
    tls_secret: DnsLabel | None = None
    secure_client_port: Port = 2281
    # Quorum TLS on a running plain ensemble takes three rolling changes, never one (a TLS member cannot
    # join plain ones, its pod never gets Ready and the roll stalls): "accept" (plain, and TLS accepted),
    # then "prefer" (TLS, and plain accepted), then "require" (docs/zookeeper-tls.md). New ensembles: require.
    tls_quorum: Literal["accept", "prefer", "require"] = "require"
    # Who issues `tls_secret`: "external" (cert-manager or your CA; the render only references it) or
    # "generate": the program issues a CA and the member certificate once and keeps them in Pulumi's state
    # (components/zk_certs.py), re-issuing the member certificate under the same CA when the names or
    # `tls_cert_days` change or it is within 30 days of expiry.
    tls_certificates: Literal["external", "generate"] = "external"
    tls_cert_days: int = Field(365, ge=30, le=3650)

    @model_validator(mode="after")
    def _generate_needs_a_secret_name(self) -> ZooKeeperSettings:
        if self.tls_certificates == "generate" and self.tls_secret is None:
            raise ValueError("tls_certificates: 'generate' needs tls_secret, the name of the Secret to write "
                             "the certificates into (e.g. zookeeper-tls)")
        return self


class MesosMasterSettings(_Settings):
    replicas: int = Field(3, ge=1, le=MAX_MESOS_MASTERS)
    image: Image = "mesosphere/mesos-master:1.7.1"
    port: Port = 5050
    storage: Quantity = "10Gi"
    storage_class: str | None = None
    resources: Resources = Resources(cpu_request="500m", memory_request="1Gi", memory_limit="2Gi")
    cluster_name: str = "orchestrator"
    zk_path: str = Field("/mesos", pattern=r"^/[A-Za-z0-9_\-/]*[A-Za-z0-9_\-]$")
    # --quorum other than the majority, only for the two-step change of the number of masters
    # (docs/quorum-changes.md): majority ≤ quorum_override ≤ replicas (checked below).
    quorum_override: int | None = Field(None, ge=1, le=MAX_MESOS_MASTERS)

    @property
    def quorum(self) -> int:
        # Mesos: "quorum > (number of masters)/2".
        return self.quorum_override or self.replicas // 2 + 1


Containerizer = Literal["docker", "mesos"]
# Host directories never mounted as the agent's work dir or Docker socket: the root, the system trees and
# their parents (a mount of /var exposes /var/run/docker.sock and every other service's state).
HOST_SYSTEM_TREES = ("/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/usr", "/bin", "/sbin", "/lib",
                     "/lib64", "/home", "/var/lib/kubelet", "/var/lib/containerd", "/run/containerd")
HOST_SYSTEM_DIRS = {"/", "/var", "/var/lib", "/run", "/var/run", "/opt", "/srv", "/tmp", "/mnt", *HOST_SYSTEM_TREES}


class MesosAgentSettings(_Settings):
    image: Image = "mesosphere/mesos-slave:1.7.1"
    port: Port = 5051
    # The seed runs docker,mesos; the docker containerizer needs the node's Docker socket, which
    # containerd-only nodes do not have: use ["mesos"] there.
    containerizers: list[Containerizer] = Field(default_factory=lambda: list[Containerizer](["docker", "mesos"]),
                                                min_length=1, max_length=2)
    work_dir: str = Field("/var/lib/mesos/agent", pattern=r"^/[^\s]*$")
    docker_socket: str = "/var/run/docker.sock"
    resources: Resources = Resources(cpu_request="500m", memory_request="512Mi", memory_limit="1Gi")
    node_selector: dict[str, str] = Field(default_factory=dict, max_length=MAX_LIST)

    @field_validator("work_dir", "docker_socket")
    @classmethod
    def _not_a_system_path(cls, value: str) -> str:
        # Both are hostPath mounts into a privileged pod: a system directory would hand the node to it.
        if ".." in value.split("/"):
            raise ValueError(f"{value!r}: no '..' in a host path")
        norm = "/" + "/".join(p for p in value.split("/") if p)
        if norm in HOST_SYSTEM_DIRS or any(norm.startswith(d + "/") for d in HOST_SYSTEM_TREES):
            raise ValueError(f"{value!r} is a system directory of the node: mounted into the privileged agent, "
                             "it would expose the node (use a directory of its own, e.g. /var/lib/mesos/agent)")
        return value

    @model_validator(mode="after")
    def _unique_containerizers(self) -> MesosAgentSettings:
        if len(set(self.containerizers)) != len(self.containerizers):
            raise ValueError("containerizers: each containerizer may appear once")
        return self


class MarathonSettings(_Settings):
    replicas: int = Field(3, ge=1, le=MAX_REPLICAS)
    image: Image = "mesosphere/marathon:v1.11.24"
    port: Port = 8080
    # Fixed port of Marathon's scheduler driver (libprocess), which the masters call back.
    libprocess_port: Port = 9000
    heap_mb: int = Field(768, ge=128, le=MAX_HEAP_MB)
    resources: Resources = Resources(cpu_request="500m", memory_request="1Gi", memory_limit="1536Mi")
    zk_path: str = Field("/marathon", pattern=r"^/[A-Za-z0-9_\-/]*[A-Za-z0-9_\-]$")


class ExportersSettings(_Settings):
    """`orchestrator exporter mesos|marathon` as one Deployment scraping over the network (docs/exporters.md).
    Its own image setting: a services release does not have to roll the exporters, nor the masters."""

    image: Image = "ghcr.io/orchestrator/orchestrator-services:0.1.0"
    # /master/state at most this often (it is expensive on big clusters); snapshots are read every scrape.
    state_interval_seconds: float = Field(30.0, ge=1, le=3600)
    resources: Resources = Resources(cpu_request="50m", memory_request="96Mi", memory_limit="192Mi")


class ProbeSettings(_Settings):
    """`orchestrator probe` on every node (docs/probe.md). Off by default: it reports to the API with a
    report:write token, the secret config `probe_token`, which the credentials tier (authentication on)
    turns into the probes' Secret."""

    enabled: bool = False
    # The API's address; its host should resolve to every replica (a headless Service). None: the
    # orchestrator service's Service.
    api_url: str | None = Field(None, pattern=r"^https?://\S+$")
    interval_seconds: float = Field(15.0, ge=1, le=300)
    full_every: int = Field(4, ge=1, le=100)
    metrics_port: Port = 9110
    # Pod names, namespaces and labels from a watch of the node's pods (a ClusterRole: get/list/watch pods).
    kubernetes: bool = True
    priority_class: str | None = None
    resources: Resources = Resources(cpu_request="50m", memory_request="64Mi", memory_limit="128Mi")


class MonitoringSettings(_Settings):
    image: Image = "prom/prometheus:v2.53.5"
    port: Port = 9090
    retention: Duration = "15d"
    storage: Quantity = "20Gi"
    storage_class: str | None = None
    scrape_interval: Duration = "30s"
    evaluation_interval: Duration = "30s"
    resources: Resources = Resources(cpu_request="250m", memory_request="1Gi", memory_limit="2Gi")


# --- alerting and dashboards: the alertmanager and grafana tiers (docs/monitoring.md) ----------------
Severity = Literal["critical", "warning"]


def _all_severities() -> list[Severity]:
    return ["critical", "warning"]


class AlertReceiver(_Settings):
    """Where alerts of some severities go. Credentials are never settings: the Slack API URL and the SMTP
    password are secret config keys, mounted into Alertmanager as files."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    # Alerts of these severities go here (the rules use critical and warning).
    severities: list[Severity] = Field(default_factory=_all_severities, min_length=1)
    slack_channel: str | None = Field(None, pattern=r"^[#@][\w.-]+$")  # the API URL is the secret
    email_to: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")
    # Alertmanager 0.25 reads no webhook URL from a file: put no credential in it (checked below).
    webhook_url: str | None = Field(None, pattern=r"^https?://\S+$")

    @model_validator(mode="after")
    def _one_target(self) -> AlertReceiver:
        if not (self.slack_channel or self.email_to or self.webhook_url):
            raise ValueError(f"receiver {self.name}: set slack_channel, email_to or webhook_url")
        if self.webhook_url and (urlsplit(self.webhook_url).username or urlsplit(self.webhook_url).password):
            raise ValueError(f"receiver {self.name}: webhook_url carries credentials; they would be written in "
                             "clear into the rendered config")
        return self


class AlertSmtp(_Settings):
    smarthost: str = Field(pattern=r"^[\w.-]+:\d+$")
    sender: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    username: str


class AlertmanagerSettings(_Settings):
    """Alertmanager: routes the monitoring tier's alerts by severity to `receivers`; with none, alerts stay
    visible in its UI and API and notify nobody (never a default address)."""

    enabled: bool = False
    # The version of Debian's amtool that checks the generated config (tests/test_alertmanager.py).
    image: Image = "prom/alertmanager:v0.25.0"
    # Replicas gossip silences and notification log (no page twice, none lost to a node); two in production.
    replicas: int = Field(1, ge=1, le=5)
    port: Port = 9093
    cluster_port: Port = 9094
    storage: Quantity = "1Gi"  # silences and the notification log, per replica
    storage_class: str | None = None
    receivers: list[AlertReceiver] = Field(default_factory=list, max_length=MAX_LIST)
    smtp: AlertSmtp | None = None
    # Where the receivers are (Slack, the SMTP relay, webhooks), for the egress NetworkPolicy.
    receiver_cidrs: list[Cidr] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1, max_length=MAX_LIST)
    group_wait: Duration = "30s"
    repeat_interval: Duration = "4h"
    resources: Resources = Resources(cpu_request="50m", memory_request="64Mi", memory_limit="128Mi")

    @model_validator(mode="after")
    def _receivers_make_sense(self) -> AlertmanagerSettings:
        names = [r.name for r in self.receivers]
        if len(set(names)) != len(names) or "nobody" in names:
            raise ValueError(f"receivers: names must be unique and not 'nobody' (got {names})")
        if any(r.email_to for r in self.receivers) and self.smtp is None:
            raise ValueError("smtp: an email receiver needs the smtp settings (smarthost, sender, username)")
        return self


class GrafanaIngress(_Settings):
    """An Ingress in front of Grafana (needs security.allow_ingress; TLS always). Without it Grafana is
    reached with `kubectl port-forward` only."""

    host: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    tls_secret: DnsLabel  # a kubernetes.io/tls Secret in the platform namespace (e.g. issued by cert-manager)
    class_name: str | None = None
    # The ingress controller's namespace: the only source allowed to reach Grafana's port.
    controller_namespace: DnsLabel = "ingress-nginx"


class GrafanaSettings(_Settings):
    """Grafana with the Prometheus datasource and the dashboards of components/dashboards.py. Its admin
    password is the secret config key `grafana_admin_password` (the credentials tier, authentication on)."""

    enabled: bool = False
    image: Image = "grafana/grafana:13.2.0"  # ../shared/pins.md: grafana/grafana-oss stopped at 12.4
    port: Port = 3000
    ingress: GrafanaIngress | None = None
    resources: Resources = Resources(cpu_request="100m", memory_request="128Mi", memory_limit="256Mi")


# --- delivery: GitOps (Argo CD) and the orchestrator service's canary (Argo Rollouts) ---------------
Delivery = Literal["direct", "gitops"]


class GitOpsSettings(_Settings):
    """Where Argo CD finds the rendered tree: `<repo_url>@<revision>:<path>/<stack>/<tier>`."""

    repo_url: str = Field("https://github.com/orchestrator/orchestrator.git", pattern=r"^(https://|ssh://|git@)\S+$")
    # Branch, tag or commit Argo CD follows. Production follows a release ref that only the approved
    # deploy job moves (docs/change-workflow.md), never main.
    revision: str = Field("main", min_length=1)
    # Repository directory holding one `<stack>/<tier>/manifests.yaml` tree per stack (`orchestrator render`).
    path: str = Field("rendered", pattern=r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")
    argocd_namespace: DnsLabel = "argocd"
    destination_server: str = Field("https://kubernetes.default.svc", pattern=r"^https://\S+$")

    @field_validator("repo_url")
    @classmethod
    def _no_credentials_in_url(cls, value: str) -> str:
        # The URL is written into every Application and AppProject of the rendered tree (committed to git)
        # and into Pulumi's state. Argo CD takes repository credentials from a repository Secret of its
        # own. The message never repeats the value: it holds the token.
        try:
            parts = urlsplit(value) if "://" in value else None
        except ValueError:
            raise ValueError("is not a URL Argo CD can read") from None
        if parts is not None and (parts.password is not None or (parts.username and parts.scheme != "ssh")):
            raise ValueError("carries credentials (user:token@ or token@): it would be written in clear into the "
                             "rendered tree; give Argo CD a repository credential instead (docs/change-workflow.md)")
        return value


_STEP = re.compile(r"^(?P<weight>\d{1,3})%$|^pause(?: (?P<pause>\S+))?$|^(?P<analysis>analysis)$")


def _canary_step(value: str) -> str:
    """`"10%"` sets the canary weight, `"pause 5m"` waits (`"pause"` alone waits for a manual promote),
    `"analysis"` runs the gates."""
    match = _STEP.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a canary step ('10%', 'pause 5m', 'pause' or 'analysis')")
    if match.group("weight") and not 1 <= int(match.group("weight")) <= 100:
        raise ValueError(f"{value!r}: a weight is 1..100 %")
    if match.group("pause"):
        _duration(match.group("pause"))
    return value


CanaryStep = Annotated[str, AfterValidator(_canary_step)]
DEFAULT_CANARY_STEPS = ("10%", "pause 5m", "analysis", "25%", "pause 5m", "50%", "pause 10m", "analysis",
                        "75%", "pause 5m", "100%")


class CanarySettings(_Settings):
    """Argo Rollouts canary of the orchestrator service: steps and the analysis gates (docs/delivery.md)."""

    steps: list[CanaryStep] = Field(default_factory=lambda: list(DEFAULT_CANARY_STEPS), min_length=1,
                                    max_length=MAX_LIST)
    success_rate_min: float = Field(0.95, gt=0, le=1)
    error_rate_max: float = Field(0.05, ge=0, lt=1)
    p95_latency_max_ms: int = Field(1000, ge=1, le=3_600_000)
    p99_latency_max_ms: int = Field(2000, ge=1, le=3_600_000)
    # One measurement per interval, `count` of them per analysis step; more than `failure_limit` failed
    # measurements abort the rollout. The interval must cover at least two scrapes (checked below).
    analysis_interval: Duration = "1m"
    analysis_count: int = Field(5, ge=1, le=100)
    failure_limit: int = Field(1, ge=0, le=100)

    @model_validator(mode="after")
    def _steps_make_sense(self) -> CanarySettings:
        weights = [int(s[:-1]) for s in self.steps if s.endswith("%")]
        if not weights:
            raise ValueError("steps: set at least one canary weight (e.g. '10%')")
        if weights != sorted(set(weights)):
            raise ValueError(f"steps: weights must strictly increase (got {weights})")
        if "analysis" not in self.steps:
            raise ValueError("steps: at least one 'analysis' step is required: the gates are the point of the canary")
        if self.failure_limit >= self.analysis_count:
            raise ValueError(f"failure_limit ({self.failure_limit}) must be below analysis_count "
                             f"({self.analysis_count}), or the analysis can never fail")
        return self


# The API's account names as stack config declares them (a subset of what the API accepts).
API_ACCOUNT = r"^[a-z][a-z0-9_-]{0,31}$"
# Token ids the API issues (`api-<hex>`, access/refresh ids): what a revocation list may name.
API_TOKEN_ID = r"^[A-Za-z0-9_-]{1,128}$"
# The API's memory floor: 74 MiB RSS for the interpreter and its libraries alone, plus render caches and HTTP
# buffers (docs/api.md, "Why there is no database"): a smaller limit is an OOM kill at the first big view.
API_MIN_MEMORY_LIMIT = "256Mi"


class ApiIngressSettings(_Settings):
    """An Ingress in front of the API and UI: only when explicitly configured, only with TLS."""

    host: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$")
    tls_secret: DnsLabel  # a kubernetes.io/tls Secret in the platform namespace (e.g. from cert-manager)
    class_name: str | None = None
    # The ingress controller's namespace: with the Ingress, its pods may reach the API's port.
    controller_namespace: DnsLabel = "ingress-nginx"


class ApiSettings(_Settings):
    """What the API (`orchestrator api serve`, docs/api.md) takes from stack config. Its secrets: the signing
    key `api_signing_key` and the first admin's argon2id hash `api_admin_password_hash` (credentials tier)."""

    # The first admin's account name; its password hash is the secret api_admin_password_hash (no default
    # credential: without authentication on the API runs with no account at all).
    admin_account: str = Field("admin", pattern=API_ACCOUNT)
    # Token ids (jti) denied by every replica within a second of the Secret's update.
    revoked_tokens: list[Annotated[str, Field(pattern=API_TOKEN_ID)]] = Field(default_factory=list, max_length=10_000)
    # None: reach the API with `kubectl port-forward` (docs/api.md "How people reach it").
    ingress: ApiIngressSettings | None = None


class ServiceSettings(_Settings):
    """The orchestrator's own HTTP service (one image for the project's services), run as an Argo Rollout:
    the API, `orchestrator api serve` (docs/api.md)."""

    image: Image = "ghcr.io/orchestrator/orchestrator-services:0.1.0"
    replicas: int = Field(2, ge=1, le=MAX_REPLICAS)
    port: Port = 8080
    # Measured (docs/api.md): 204 MiB RSS at 1,000 hosts / 10,000 containers with an hour of samples, 434 MiB
    # after heavy use (render caches); ingest at that size takes 12 % of a core.
    resources: Resources = Resources(cpu_request="250m", memory_request="512Mi", memory_limit="1Gi")
    canary: CanarySettings = CanarySettings()
    api: ApiSettings = ApiSettings()

    @model_validator(mode="after")
    def _api_memory_floor(self) -> ServiceSettings:
        if quantity_bytes(self.resources.memory_limit) < quantity_bytes(API_MIN_MEMORY_LIMIT):
            raise _KeyError("service.resources.memory_limit",
                            f"{self.resources.memory_limit} is below {API_MIN_MEMORY_LIMIT}: the API needs 74 MiB "
                            "for the interpreter alone and about 200 MiB at 1,000 hosts (docs/api.md)")
        return self



def _cidr(value: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR block ({exc})") from None
    return value


Cidr = Annotated[str, AfterValidator(_cidr)]

# Secret config keys (set with `pulumi config set --secret <key> <value>`); required when auth is on.
SECRET_KEYS = {
    "zookeeper_mesos_password": "ZooKeeper digest password of the `mesos` user (Mesos masters' znodes)",
    "zookeeper_marathon_password": "ZooKeeper digest password of the `marathon` user (Marathon's znodes)",
    "mesos_marathon_secret": "CRAM-MD5 secret of the `marathon` framework principal",
    "mesos_agent_secret": "CRAM-MD5 secret of the `agent` principal the agents register with",
    "mesos_http_password": "HTTP basic-auth password of the `admin` principal on the masters' API",
    "marathon_http_password": "HTTP basic-auth password of the `admin` user on Marathon's API",
    "api_signing_key": "the API's token signing key (HS256, at least 32 characters; docs/api.md)",
    "api_admin_password_hash": "argon2id hash of the API's first admin (`orchestrator api hash-password`), "
                               "account service.api.admin_account",
}
# Secret config keys of optional tiers: required only when their tier is on.
PROBE_TOKEN_KEY = "probe_token"
SCALER_ZK_PASSWORD_KEY = "zookeeper_scaler_password"
API_ZK_PASSWORD_KEY = "zookeeper_api_password"
ZK_SUPERUSER_PASSWORD_KEY = "zookeeper_superuser_password"
BACKUP_S3_KEYS = ("zk_backup_access_key_id", "zk_backup_secret_access_key")
GRAFANA_ADMIN_PASSWORD_KEY = "grafana_admin_password"
ALERTMANAGER_SLACK_URL_KEY = "alertmanager_slack_api_url"
ALERTMANAGER_SMTP_PASSWORD_KEY = "alertmanager_smtp_password"
OPTIONAL_SECRET_KEYS = {
    GRAFANA_ADMIN_PASSWORD_KEY: "password of Grafana's `admin` user; required with grafana.enabled",
    ALERTMANAGER_SLACK_URL_KEY: "Slack incoming-webhook URL of Alertmanager's Slack receivers; required when a "
                                "receiver sets slack_channel",
    ALERTMANAGER_SMTP_PASSWORD_KEY: "password of alertmanager.smtp.username on the SMTP relay; required when a "
                                    "receiver sets email_to",
    BACKUP_S3_KEYS[0]: "S3 access key id of the ZooKeeper backups (zk_backup); both or neither, used when "
                       "authentication is on; without them the pod's identity (service_account_annotations)",
    BACKUP_S3_KEYS[1]: "S3 secret access key of the ZooKeeper backups (zk_backup)",
    ZK_SUPERUSER_PASSWORD_KEY: "password of ZooKeeper's superuser, which `orchestrator zk reconfig` (membership "
                               "changes, docs/quorum-changes.md) needs; the servers get only its digest; used when "
                               "authentication is on",
    PROBE_TOKEN_KEY: "the API token (scope report:write) the probes publish with; required with probe.enabled",
    SCALER_ZK_PASSWORD_KEY: "ZooKeeper digest password of the `marathon-scaler` user (the scaler's state znodes); "
                            "required with marathon_scaler.enabled when authentication is on",
    API_ZK_PASSWORD_KEY: "ZooKeeper digest password of the API's `orchestrator-api` user (reads the scaler's state, "
                         "writes its overrides); required with marathon_scaler.enabled when authentication is on",
}


class ZkSyncSettings(_Settings):
    """The ZooKeeper sync engine (`orchestrator zk sync`) run in the platform during a migration:
    it replicates `paths` from the old ensemble (`source`) into this platform's ensemble."""

    enabled: bool = False
    source: str = Field("", pattern=r"^$|^[A-Za-z0-9.\-]+:\d+(,[A-Za-z0-9.\-]+:\d+)*(/\S*)?$")
    # Where the source ensemble is, for the engine's egress NetworkPolicy (client port only).
    source_cidrs: list[Cidr] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1, max_length=MAX_LIST)
    source_port: Port = 2181
    paths: list[str] = Field(default_factory=lambda: ["/mesos", "/marathon"], min_length=1, max_length=MAX_LIST)
    metrics_port: Port = 9143
    resources: Resources = Resources(cpu_request="100m", memory_request="256Mi", memory_limit="512Mi")

    @model_validator(mode="after")
    def _source_when_enabled(self) -> ZkSyncSettings:
        if self.enabled and not self.source:
            raise ValueError("source: the old ensemble's connect string is required when enabled")
        for path in self.paths:
            if not path.startswith("/") or path != "/" and path.endswith("/"):
                raise ValueError(f"paths: {path!r} is not an absolute znode path")
        return self


_CRON = re.compile(r"^(@(hourly|daily|weekly|monthly)|(\S+\s+){4}\S+)$")


class ZkBackupSettings(_Settings):
    """Scheduled ZooKeeper snapshots to S3: a CronJob running `orchestrator zk snapshot` (docs/backups.md)."""

    enabled: bool = False
    schedule: str = Field("17 * * * *", pattern=_CRON.pattern)  # Kubernetes cron syntax (UTC by default)
    s3: str = Field("", pattern=r"^$|^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[\w./\-]*)?$")
    paths: list[str] = Field(default_factory=lambda: ["/mesos", "/marathon"], min_length=1, max_length=MAX_LIST)
    # The bucket expires snapshots under the prefix after this long (the snapshot command sets it) ...
    retention_hours: int = Field(72, ge=1, le=24 * 3650)
    # ... or only checks it, when the bucket's lifecycle is managed elsewhere (no PutLifecycle permission).
    check_lifecycle_only: bool = False
    endpoint_url: str | None = Field(None, pattern=r"^https://\S+$")  # S3-compatible stores
    region: str = Field("us-east-1", pattern=r"^[a-z0-9-]{2,32}$")
    # Where S3 is, for the egress NetworkPolicy (port 443 only).
    s3_cidrs: list[Cidr] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1, max_length=MAX_LIST)
    # E.g. {"eks.amazonaws.com/role-arn": "..."}: S3 access from the pod's identity, no static keys.
    service_account_annotations: dict[str, str] = Field(default_factory=dict, max_length=MAX_LIST)
    timeout_seconds: int = Field(1800, ge=60, le=86400)  # a run that takes longer is stopped
    # A CPU limit: a batch job loses only time to throttling, and nothing else on the node does.
    resources: Resources = Resources(cpu_request="50m", cpu_limit="500m", memory_request="128Mi",
                                     memory_limit="256Mi")

    @model_validator(mode="after")
    def _target_when_enabled(self) -> ZkBackupSettings:
        if self.enabled and not self.s3:
            raise ValueError("s3: the snapshot destination (s3://bucket/prefix) is required when enabled")
        for path in self.paths:
            if not path.startswith("/") or path != "/" and path.endswith("/"):
                raise ValueError(f"paths: {path!r} is not an absolute znode path")
        return self


class MarathonScalerSettings(_Settings):
    """The Marathon scaler (`orchestrator marathon run`: autoscale, heal, reconcile; docs/marathon-scaler.md).
    One active instance through a ZooKeeper lock; its state (stabilization history, scale intents, heal budgets,
    operators' overrides) in znodes of its own under `zk_path`, as the digest user `marathon-scaler` when
    authentication is on."""

    enabled: bool = False
    # Directory of Marathon app definitions in the repository (relative to the project), rendered into the
    # scaler's ConfigMap and reconciled in the cluster; None: the scaler does not reconcile apps.
    apps_dir: str | None = None
    # Delete managed apps that are no longer declared (otherwise they are only reported).
    allow_delete: bool = False
    # Autoscaling and healing policies per app id; they win over the apps' `orchestrator.autoscale.*` labels.
    policies: dict[str, AutoscalePolicy] = Field(default_factory=dict, max_length=2000)
    heal: dict[str, HealPolicy] = Field(default_factory=dict, max_length=2000)
    sync_seconds: float = Field(15.0, gt=0, le=600)
    reconcile_seconds: float = Field(60.0, gt=0, le=3600)
    metrics_port: Port = SCALER_METRICS_PORT
    zk_path: str = Field("/orchestrator/marathon-scaler", pattern=r"^(/[A-Za-z0-9._-]+)+$")
    resources: Resources = Resources(cpu_request="50m", memory_request="128Mi", memory_limit="256Mi")

    @field_validator("policies", "heal", mode="before")
    @classmethod
    def _app_ids(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {normalize_app_id(str(k)): v for k, v in value.items()}
        return value

    @field_validator("apps_dir")
    @classmethod
    def _apps_load(cls, value: str | None) -> str | None:
        if value is not None:
            from orchestrator.apps_as_code import load_apps
            from orchestrator.errors import InputError

            try:
                load_apps(value)  # every definition checked at render time; the message names file and field
            except InputError as exc:
                raise ValueError(str(exc)) from None
        return value


class SecuritySettings(_Settings):
    # Authentication of ZooKeeper clients, Mesos frameworks/agents/HTTP and Marathon's API.
    # Unset means: on in production, off elsewhere.
    auth: bool | None = None
    # Where host-network pods (the Mesos agents) come from, as seen by NetworkPolicies: the nodes.
    node_cidrs: list[Cidr] = Field(default_factory=lambda: ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
                                   min_length=1, max_length=MAX_LIST)
    # Where the Kubernetes API server is, for Prometheus' service discovery (ports 443/6443 only).
    api_server_cidrs: list[Cidr] = Field(default_factory=lambda: ["0.0.0.0/0"], min_length=1, max_length=MAX_LIST)
    # Namespaces whose pods may call the Marathon and Mesos APIs and ZooKeeper (besides the platform's).
    client_namespaces: list[DnsLabel] = Field(default_factory=list, max_length=MAX_LIST)
    # Where the Argo Rollouts controller runs: it queries Prometheus for the canary analysis.
    rollouts_namespace: DnsLabel = "argo-rollouts"
    # LoadBalancer Services expose the platform outside the cluster: refused by the policy pack unless set.
    allow_load_balancer: bool = False
    # Ingresses expose the platform outside the cluster: refused by the policy pack unless set, and then
    # only with TLS for every host (policy ingress-only-with-tls).
    allow_ingress: bool = False


class PlatformSettings(_Settings):
    production: bool = False
    namespace: DnsLabel = "orchestrator"
    cluster_domain: str = Field("cluster.local", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    zookeeper: ZooKeeperSettings = ZooKeeperSettings()
    mesos_master: MesosMasterSettings = MesosMasterSettings()
    mesos_agent: MesosAgentSettings = MesosAgentSettings()
    marathon: MarathonSettings = MarathonSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    grafana: GrafanaSettings = GrafanaSettings()
    security: SecuritySettings = SecuritySettings()
    zk_sync: ZkSyncSettings = ZkSyncSettings()
    exporters: ExportersSettings = ExportersSettings()
    probe: ProbeSettings = ProbeSettings()
    marathon_scaler: MarathonScalerSettings = MarathonScalerSettings()
    zk_backup: ZkBackupSettings = ZkBackupSettings()
    # direct: `pulumi up` applies every tier; gitops: it applies only the Argo CD project and root
    # Application, and Argo CD syncs the rendered tree from the repository (docs/delivery.md).
    delivery: Delivery = "direct"
    gitops: GitOpsSettings = GitOpsSettings()
    service: ServiceSettings = ServiceSettings()

    @model_validator(mode="after")
    def _production_follows_a_release_ref(self) -> PlatformSettings:
        if self.production and self.delivery == "gitops" and self.gitops.revision in MOVING_REFS:
            raise _KeyError("gitops.revision", f"{self.gitops.revision!r} moves with every merge: a production "
                            "stack follows a release ref that only the approved deploy job moves (e.g. 'release'; "
                            "docs/change-workflow.md)")
        return self

    @model_validator(mode="after")
    def _high_availability(self) -> PlatformSettings:
        zk = self.zookeeper.replicas
        if zk % 2 == 0:
            raise _KeyError("zookeeper.replicas",
                            f"must be odd ({zk} tolerates no more failures than {zk - 1})")
        if self.production and zk < 3:
            raise _KeyError("zookeeper.replicas", f"must be at least 3 in production (got {zk})")
        if self.mesos_master.replicas % 2 == 0:
            raise _KeyError("mesos_master.replicas",
                            f"must be odd: the replicated log needs a majority quorum (got {self.mesos_master.replicas})")
        if self.production and self.mesos_master.replicas < 3:
            raise _KeyError("mesos_master.replicas", f"must be at least 3 in production (got {self.mesos_master.replicas})")
        if self.production and self.marathon.replicas < 2:
            raise _KeyError("marathon.replicas", f"must be at least 2 in production (got {self.marathon.replicas})")
        if self.production and self.alertmanager.enabled and self.alertmanager.replicas < 2:
            raise _KeyError("alertmanager.replicas", f"must be at least 2 in production (got "
                            f"{self.alertmanager.replicas}): one node loss would drop or repeat pages")
        if self.grafana.ingress is not None and not self.security.allow_ingress:
            raise _KeyError("grafana.ingress", "needs security.allow_ingress: an Ingress exposes Grafana outside "
                            "the cluster (without it, use kubectl port-forward)")
        return self

    @model_validator(mode="after")
    def _cross_field(self) -> PlatformSettings:
        """Rules the API server or a runtime would otherwise enforce later, mid-deploy (issue 14)."""
        problems = [*_resource_problems(self), *_heap_problems(self), *_port_problems(self)]
        m = self.mesos_master
        if m.quorum_override is not None and not m.replicas // 2 + 1 <= m.quorum_override <= m.replicas:
            problems.append(_KeyError("mesos_master.quorum_override",
                                      f"{m.quorum_override} with {CONFIG_NAMESPACE}:mesos_master.replicas "
                                      f"{m.replicas}: must be between the majority ({m.replicas // 2 + 1}) and "
                                      "the number of masters"))
        if self.zk_sync.enabled:
            ports = {int(p) for p in re.findall(r":(\d+)", self.zk_sync.source.split("/", 1)[0])}
            if ports - {self.zk_sync.source_port}:
                problems.append(_KeyError("zk_sync.source",
                                          f"ports {sorted(ports)} differ from {CONFIG_NAMESPACE}:zk_sync.source_port "
                                          f"{self.zk_sync.source_port}: the egress NetworkPolicy opens only "
                                          "source_port, so the engine could not connect"))
        if problems:
            raise _KeyErrors(problems)
        return self

    @model_validator(mode="after")
    def _api_ingress_is_allowed(self) -> PlatformSettings:
        if self.service.api.ingress is not None and not self.security.allow_ingress:
            raise _KeyError("service.api.ingress", f"needs {CONFIG_NAMESPACE}:security.allow_ingress: true (an "
                            "Ingress exposes the API outside the cluster; the default way in is a port-forward)")
        return self

    @model_validator(mode="after")
    def _analysis_sees_fresh_samples(self) -> PlatformSettings:
        interval, scrape = duration_seconds(self.service.canary.analysis_interval), \
            duration_seconds(self.monitoring.scrape_interval)
        if interval < 2 * scrape:
            raise _KeyError("service.canary.analysis_interval",
                            f"must cover at least two scrapes (monitoring.scrape_interval "
                            f"{self.monitoring.scrape_interval}): each measurement needs new samples")
        return self

    # --- derived values -------------------------------------------------------------------------
    @property
    def auth_enabled(self) -> bool:
        return self.security.auth if self.security.auth is not None else self.production

    @property
    def agents_namespace(self) -> str:
        # Agents need host privileges: a namespace of their own keeps the rest of the platform restricted.
        return f"{self.namespace}-agents"

    def service_fqdn(self, service: str, namespace: str | None = None) -> str:
        return f"{service}.{namespace or self.namespace}.svc.{self.cluster_domain}"


# Branch names that move with every merge: a production stack that Argo CD syncs from one of them is
# deployed by merging, without the approved deploy job.
MOVING_REFS = ("main", "master", "HEAD")


class _KeyError(ValueError):
    """A cross-field rule broken at `key` (dotted path under the `orchestrator:` namespace)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class _KeyErrors(ValueError):
    """Several cross-field rules broken at once: each is reported on its own line."""

    def __init__(self, errors: list[_KeyError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


# JVM memory beyond the heap (metaspace, code cache, thread stacks, GC structures, direct buffers):
# a container whose limit leaves less is OOM-killed under load. At least a quarter of the limit and at
# least 256 MiB: Marathon alone (Scala, Akka, Jetty: ~150 threads, ~100 MiB of metaspace) needs about
# that beyond its heap at idle.
JVM_HEADROOM_FRACTION = 0.25
JVM_HEADROOM_MIN_MB = 256
# `*_port` fields that are not ports of the section's own pod.
REMOTE_PORT_FIELDS = {"source_port"}


def _sections(model: BaseModel, path: str = "") -> list[tuple[str, BaseModel]]:
    """Every settings section (dotted path, model), nested ones included, in declaration order."""
    out: list[tuple[str, BaseModel]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, _Settings):
            sub = f"{path}.{name}" if path else name
            out += [(sub, value), *_sections(value, sub)]
    return out


def _resource_problems(s: PlatformSettings) -> list[_KeyError]:
    """requests ≤ limits for every Resources block: the API server rejects a pod otherwise."""
    problems = []
    for path, res in _sections(s):
        if not isinstance(res, Resources):
            continue
        if quantity_bytes(res.memory_request) > quantity_bytes(res.memory_limit):
            problems.append(_KeyError(f"{path}.memory_request",
                                      f"{res.memory_request} is above {CONFIG_NAMESPACE}:{path}.memory_limit "
                                      f"{res.memory_limit}: the API server rejects a request above its limit"))
        if res.cpu_limit is not None and cpu_millis(res.cpu_request) > cpu_millis(res.cpu_limit):
            problems.append(_KeyError(f"{path}.cpu_request",
                                      f"{res.cpu_request} is above {CONFIG_NAMESPACE}:{path}.cpu_limit "
                                      f"{res.cpu_limit}: the API server rejects a request above its limit"))
    return problems


def _heap_problems(s: PlatformSettings) -> list[_KeyError]:
    problems = []
    for section, heap_mb, limit in (("zookeeper", s.zookeeper.heap_mb, s.zookeeper.resources.memory_limit),
                                    ("marathon", s.marathon.heap_mb, s.marathon.resources.memory_limit)):
        limit_mb = quantity_bytes(limit) / 2**20
        headroom = max(JVM_HEADROOM_FRACTION * limit_mb, JVM_HEADROOM_MIN_MB)
        if heap_mb + headroom > limit_mb:
            problems.append(_KeyError(
                f"{section}.heap_mb",
                f"{heap_mb} MiB leaves {max(limit_mb - heap_mb, 0):.0f} MiB of {CONFIG_NAMESPACE}:{section}."
                f"resources.memory_limit {limit}; the JVM needs at least {headroom:.0f} MiB beyond its heap (a "
                f"quarter of the limit, at least {JVM_HEADROOM_MIN_MB} MiB: metaspace, thread stacks, code "
                f"cache, GC): lower heap_mb to {max(int(limit_mb - headroom), 0)} or raise memory_limit to "
                f"{_limit_for(heap_mb)}Mi"))
    return problems


def _limit_for(heap_mb: int) -> int:
    """The smallest memory limit (MiB) that leaves the JVM its headroom above `heap_mb`."""
    return int(max(heap_mb / (1 - JVM_HEADROOM_FRACTION), heap_mb + JVM_HEADROOM_MIN_MB) + 0.999)


def _port_problems(s: PlatformSettings) -> list[_KeyError]:
    """The ports of one section are the ports of one pod and of its Services: each must be distinct
    (the API server rejects two Service ports with one number; two containers cannot bind one port)."""
    problems = []
    for path, section in _sections(s):
        seen: dict[int, str] = {}
        for name in type(section).model_fields:
            value = getattr(section, name)
            if not (name == "port" or name.endswith("_port")) or name in REMOTE_PORT_FIELDS \
                    or not isinstance(value, int):
                continue
            if value in seen:
                problems.append(_KeyError(f"{path}.{name}",
                                          f"{value} is also {CONFIG_NAMESPACE}:{path}.{seen[value]}: the ports of "
                                          "one pod and of its Services must be distinct"))
            else:
                seen[value] = name
    return problems


class SettingsError(Exception):
    """Bad stack configuration; the message names the stack file and every offending key."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def _key(loc: tuple[Any, ...]) -> str:
    head, *rest = [str(p) for p in loc] or ["?"]
    return f"{CONFIG_NAMESPACE}:{head}" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in rest)


def settings_from_config(config: Mapping[str, str], source: str,
                         secret_keys: frozenset[str] | set[str] = frozenset()) -> PlatformSettings:
    """Build settings from raw Pulumi config (`{"orchestrator:zookeeper": "<json>", ...}`).

    Keys of other namespaces (`kubernetes:context`, ...) belong to providers and are ignored.
    Secret keys (SECRET_KEYS) never enter the settings: only their presence is checked here, and the
    program reads them as Pulumi secrets.
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    present_secrets: set[str] = set()
    prefix = CONFIG_NAMESPACE + ":"
    for full_key, raw in sorted(config.items()):
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        if key in SECRET_KEYS or key in OPTIONAL_SECRET_KEYS:
            if full_key not in secret_keys:
                problems.append(f"{full_key}: must be a secret: `pulumi config set --secret {key} <value>`")
            present_secrets.add(key)
            continue
        try:
            values[key] = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            values[key] = raw  # plain strings such as a namespace name
    try:
        settings = PlatformSettings.model_validate(values)
    except ValidationError as exc:
        for err in exc.errors():
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, _KeyError):
                problems.append(f"{CONFIG_NAMESPACE}:{ctx_error}")
            elif isinstance(ctx_error, _KeyErrors):
                problems += [f"{CONFIG_NAMESPACE}:{e}" for e in ctx_error.errors]
            elif err["type"] == "extra_forbidden":
                problems.append(f"{_key(err['loc'])}: unknown key (not a setting of this program)")
            else:
                problems.append(f"{_key(err['loc'])}: {err['msg']}")
        raise SettingsError(source, problems) from None
    if settings.auth_enabled:
        for key in sorted(set(SECRET_KEYS) - present_secrets):
            problems.append(f"{prefix}{key}: required when authentication is on (security.auth, default in "
                            f"production): `pulumi config set --secret {key} <value>` ({SECRET_KEYS[key]})")
    if settings.probe.enabled:
        if not settings.auth_enabled:
            problems.append(f"{prefix}probe.enabled: needs authentication on (security.auth): the probes' "
                            "token is a credential of the credentials tier")
        if PROBE_TOKEN_KEY not in present_secrets:
            problems.append(f"{prefix}{PROBE_TOKEN_KEY}: required with probe.enabled: `pulumi config set --secret "
                            f"{PROBE_TOKEN_KEY} <value>` ({OPTIONAL_SECRET_KEYS[PROBE_TOKEN_KEY]})")
    problems += _monitoring_secret_problems(settings, present_secrets)
    if settings.marathon_scaler.enabled and settings.auth_enabled and SCALER_ZK_PASSWORD_KEY not in present_secrets:
        problems.append(f"{prefix}{SCALER_ZK_PASSWORD_KEY}: required with marathon_scaler.enabled when "
                        f"authentication is on: `pulumi config set --secret {SCALER_ZK_PASSWORD_KEY} <value>` "
                        f"({OPTIONAL_SECRET_KEYS[SCALER_ZK_PASSWORD_KEY]})")
    if settings.marathon_scaler.enabled and settings.auth_enabled and API_ZK_PASSWORD_KEY not in present_secrets:
        problems.append(f"{prefix}{API_ZK_PASSWORD_KEY}: required with marathon_scaler.enabled when "
                        f"authentication is on: `pulumi config set --secret {API_ZK_PASSWORD_KEY} <value>` "
                        f"({OPTIONAL_SECRET_KEYS[API_ZK_PASSWORD_KEY]})")
    if problems:
        raise SettingsError(source, problems)
    return settings


def monitoring_secret_keys(s: PlatformSettings) -> list[str]:
    """The secret config keys the grafana and alertmanager tiers need for these settings."""
    keys = [GRAFANA_ADMIN_PASSWORD_KEY] if s.grafana.enabled else []
    if s.alertmanager.enabled and any(r.slack_channel for r in s.alertmanager.receivers):
        keys.append(ALERTMANAGER_SLACK_URL_KEY)
    if s.alertmanager.enabled and any(r.email_to for r in s.alertmanager.receivers):
        keys.append(ALERTMANAGER_SMTP_PASSWORD_KEY)
    return keys


def _monitoring_secret_problems(s: PlatformSettings, present: set[str]) -> list[str]:
    """Grafana's admin password and the receivers' credentials become Secrets of the credentials tier (on with
    authentication): each needed key must be set, as a secret, and never has a default."""
    prefix, problems = CONFIG_NAMESPACE + ":", []
    needed = monitoring_secret_keys(s)
    if needed and not s.auth_enabled:
        problems.append(f"{prefix}{'grafana.enabled' if s.grafana.enabled else 'alertmanager.receivers'}: needs "
                        f"authentication on (security.auth): {', '.join(needed)} reach the pods only as Secrets of "
                        "the credentials tier")
    for key in needed:
        if key not in present:
            problems.append(f"{prefix}{key}: required ({OPTIONAL_SECRET_KEYS[key]}): "
                            f"`pulumi config set --secret {key} <value>`")
    return problems


def settings_from_pulumi() -> PlatformSettings:
    """Settings of the running program's stack, from the config the Pulumi engine (or the offline
    render) handed over."""
    import pulumi

    from orchestrator import pulumi_adapter

    raw, secret = pulumi_adapter.program_config()
    return settings_from_config(raw, f"Pulumi.{pulumi.get_stack()}.yaml", secret)
