"""Typed per-stack settings: the only way configuration enters the program.

Values come from the stack's `orchestrator:*` config keys (structured values as JSON, exactly as the
Pulumi CLI hands them to the program). Everything derivable — quorum, server lists, connect strings,
namespaces of dependent tiers — is computed here and never configured twice.
"""
from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Mapping

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

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


class ZooKeeperSettings(_Settings):
    replicas: int = Field(3, ge=1)
    image: Image = "zookeeper:3.9.3"
    storage: Quantity = "10Gi"
    storage_class: str | None = None
    heap_mb: int = Field(512, ge=64)
    resources: Resources = Resources(memory_request="768Mi", memory_limit="1Gi")
    client_port: Port = 2181
    peer_port: Port = 2888
    election_port: Port = 3888
    metrics_port: Port = 7000
    tick_time_ms: int = Field(2000, ge=100)
    init_limit: int = Field(10, ge=1)
    sync_limit: int = Field(5, ge=1)
    max_client_cnxns: int = Field(60, ge=0)
    autopurge_snap_retain_count: int = Field(3, ge=3)
    autopurge_purge_interval_hours: int = Field(1, ge=1)


class MesosMasterSettings(_Settings):
    replicas: int = Field(3, ge=1)
    image: Image = "mesosphere/mesos-master:1.7.1"
    port: Port = 5050
    storage: Quantity = "10Gi"
    storage_class: str | None = None
    resources: Resources = Resources(cpu_request="500m", memory_request="1Gi", memory_limit="2Gi")
    cluster_name: str = "orchestrator"
    zk_path: str = Field("/mesos", pattern=r"^/[A-Za-z0-9_\-/]*[A-Za-z0-9_\-]$")
    # Sidecar translating /metrics/snapshot to Prometheus (github.com/mesos/mesos_exporter, v1.1.2).
    exporter_image: Image = "mesos/mesos-exporter:v1.1.2"
    exporter_resources: Resources = Resources(cpu_request="50m", memory_request="32Mi", memory_limit="64Mi")

    @property
    def quorum(self) -> int:
        # Mesos: "quorum > (number of masters)/2".
        return self.replicas // 2 + 1


Containerizer = Literal["docker", "mesos"]


class MesosAgentSettings(_Settings):
    image: Image = "mesosphere/mesos-slave:1.7.1"
    port: Port = 5051
    # The seed runs docker,mesos; the docker containerizer needs the node's Docker socket, which
    # containerd-only nodes do not have: use ["mesos"] there.
    containerizers: list[Containerizer] = Field(default_factory=lambda: ["docker", "mesos"], min_length=1)
    work_dir: str = Field("/var/lib/mesos/agent", pattern=r"^/[^\s]*$")
    docker_socket: str = "/var/run/docker.sock"
    resources: Resources = Resources(cpu_request="500m", memory_request="512Mi", memory_limit="1Gi")
    node_selector: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_containerizers(self) -> "MesosAgentSettings":
        if len(set(self.containerizers)) != len(self.containerizers):
            raise ValueError("containerizers: each containerizer may appear once")
        return self


class MarathonSettings(_Settings):
    replicas: int = Field(3, ge=1)
    image: Image = "mesosphere/marathon:v1.11.24"
    port: Port = 8080
    heap_mb: int = Field(768, ge=128)
    resources: Resources = Resources(cpu_request="500m", memory_request="1Gi", memory_limit="1536Mi")
    zk_path: str = Field("/marathon", pattern=r"^/[A-Za-z0-9_\-/]*[A-Za-z0-9_\-]$")


class MonitoringSettings(_Settings):
    image: Image = "prom/prometheus:v2.53.2"
    port: Port = 9090
    retention: Duration = "15d"
    storage: Quantity = "20Gi"
    storage_class: str | None = None
    scrape_interval: Duration = "30s"
    evaluation_interval: Duration = "30s"
    resources: Resources = Resources(cpu_request="250m", memory_request="1Gi", memory_limit="2Gi")


class PlatformSettings(_Settings):
    production: bool = False
    namespace: DnsLabel = "orchestrator"
    cluster_domain: str = Field("cluster.local", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    zookeeper: ZooKeeperSettings = ZooKeeperSettings()
    mesos_master: MesosMasterSettings = MesosMasterSettings()
    mesos_agent: MesosAgentSettings = MesosAgentSettings()
    marathon: MarathonSettings = MarathonSettings()
    monitoring: MonitoringSettings = MonitoringSettings()

    @model_validator(mode="after")
    def _high_availability(self) -> "PlatformSettings":
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
        return self

    # --- derived values -------------------------------------------------------------------------
    @property
    def agents_namespace(self) -> str:
        # Agents need host privileges: a namespace of their own keeps the rest of the platform restricted.
        return f"{self.namespace}-agents"

    def service_fqdn(self, service: str, namespace: str | None = None) -> str:
        return f"{service}.{namespace or self.namespace}.svc.{self.cluster_domain}"


class _KeyError(ValueError):
    """A cross-field rule broken at `key` (dotted path under the `orchestrator:` namespace)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


class SettingsError(Exception):
    """Bad stack configuration; the message names the stack file and every offending key."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


def _key(loc: tuple[Any, ...]) -> str:
    head, *rest = [str(p) for p in loc] or ["?"]
    return f"{CONFIG_NAMESPACE}:{head}" + "".join(f"[{p}]" if p.isdigit() else f".{p}" for p in rest)


def settings_from_config(config: Mapping[str, str], source: str) -> PlatformSettings:
    """Build settings from raw Pulumi config (`{"orchestrator:zookeeper": "<json>", ...}`).

    Keys of other namespaces (`kubernetes:context`, ...) belong to providers and are ignored.
    """
    values: dict[str, Any] = {}
    problems: list[str] = []
    prefix = CONFIG_NAMESPACE + ":"
    for full_key, raw in sorted(config.items()):
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        try:
            values[key] = json.loads(raw) if isinstance(raw, str) else raw
        except json.JSONDecodeError:
            values[key] = raw  # plain strings such as a namespace name
    try:
        return PlatformSettings.model_validate(values)
    except ValidationError as exc:
        for err in exc.errors():
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, _KeyError):
                problems.append(f"{CONFIG_NAMESPACE}:{ctx_error}")
            elif err["type"] == "extra_forbidden":
                problems.append(f"{_key(err['loc'])}: unknown key (not a setting of this program)")
            else:
                problems.append(f"{_key(err['loc'])}: {err['msg']}")
        raise SettingsError(source, problems) from None


def settings_from_pulumi() -> PlatformSettings:
    """Settings of the running program's stack, from the config the Pulumi engine (or the offline
    render) handed over."""
    import pulumi
    from pulumi.runtime import config as runtime_config

    raw = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return settings_from_config(raw, f"Pulumi.{pulumi.get_stack()}.yaml")
