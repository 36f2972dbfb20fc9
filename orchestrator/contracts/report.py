"""The probe report: what `orchestrator probe` sends to `POST /api/v1/reports` (docs/api.md "Report schema").

One report describes one node (host) as its probe saw it in one interval. A **full** report carries every
process, container and connection; a **delta** report carries what changed since the report numbered
`base_seq` from the same probe (upserts by key and removed keys). The API applies a delta only on top of
exactly that base; otherwise it answers 409 and the probe sends a full report next (it also does after any
failure).

Compatibility rule (a probe DaemonSet rolls node by node, so two probe versions report at once):
- `schema_version` is an integer. The API accepts `SCHEMA_VERSION` and `SCHEMA_VERSION - 1`
  (`ACCEPTED_SCHEMA_VERSIONS`); anything else is a 422 naming the field.
- Inside one version only optional fields are added; receivers ignore fields they do not know, so a newer
  probe of the same version never breaks an older API.
- A breaking change bumps the version and adds `UPGRADES[old]`, a pure function from the previous
  version's JSON to the new one's (renames, unit changes, defaults for new required fields). The API runs
  it before validation, so the rest of the API only ever sees the current model. The upgrader of the
  version before the previous one is deleted in the same change: two versions, never more.
- Version 1 is the first: there is no previous version yet, so `UPGRADES` is empty and
  `ACCEPTED_SCHEMA_VERSIONS == (1,)` until version 2 exists.

Compactness: 10,000 containers over 1,000 hosts is ~10 containers and a few hundred processes per report;
fields are flat, metrics are plain numbers, and the probe gzips the body (`Content-Encoding: gzip`).
The limits below bound what one report may cost the API.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SCHEMA_VERSION = 1
ACCEPTED_SCHEMA_VERSIONS: tuple[int, ...] = (SCHEMA_VERSION,)
# previous version -> function upgrading its JSON to the next version's (see the module docstring).
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}

REPORT_INTERVAL_SECONDS = 15.0
# A probe that missed three reports is stale; after five minutes of silence it is offline (and alerted).
STALE_AFTER_SECONDS = 3 * REPORT_INTERVAL_SECONDS
OFFLINE_AFTER_SECONDS = 300.0

# Limits of one report. The body limit applies to the bytes on the wire and, separately, to the
# decompressed JSON (a gzip bomb is refused after MAX_DECOMPRESSED_BYTES, not after it filled memory).
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_DECOMPRESSED_BYTES = 32 * 1024 * 1024
MAX_PROCESSES = 20_000
MAX_CONTAINERS = 2_000
MAX_CONNECTIONS = 50_000
MAX_LABELS = 64
MAX_ADDRESSES = 64
MAX_ID_CHARS = 256
MAX_CMDLINE_CHARS = 512   # the probe truncates longer command lines
MAX_LABEL_VALUE_CHARS = 1024

REPORT_CONTENT_TYPE = "application/json"
REPORT_SCOPE = "report:write"

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
NonNegative = Annotated[float, Field(ge=0)]
Port = Annotated[int, Field(ge=0, le=65535)]
Runtime = Literal["docker", "containerd", "cri-o", "mesos", "unknown"]


class _Part(BaseModel):
    # Unknown fields are ignored: a newer probe of the same version may add optional fields.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Host(_Part):
    hostname: Id
    kernel: str = Field("", max_length=MAX_ID_CHARS)
    addresses: list[Id] = Field(default_factory=list, max_length=MAX_ADDRESSES)
    cpus: int = Field(1, ge=1)
    cpu_percent: NonNegative = 0.0          # of the whole host (0..100)
    memory_total_bytes: NonNegative = 0.0
    memory_used_bytes: NonNegative = 0.0
    load1: NonNegative = 0.0
    load5: NonNegative = 0.0
    load15: NonNegative = 0.0
    uptime_seconds: NonNegative = 0.0


class Process(_Part):
    pid: int = Field(ge=1)
    ppid: int = Field(0, ge=0)
    name: str = Field(max_length=MAX_ID_CHARS)
    cmdline: str = Field("", max_length=MAX_CMDLINE_CHARS)
    user: str = Field("", max_length=MAX_ID_CHARS)
    cpu_percent: NonNegative = 0.0          # of one core (may exceed 100 for multi-threaded processes)
    rss_bytes: NonNegative = 0.0
    threads: int = Field(1, ge=0)
    fds: int = Field(0, ge=0)
    container_id: Id | None = None          # the container whose cgroup holds this process


class Container(_Part):
    id: Id                                  # the runtime's container id (Mesos: the containerizer's id)
    runtime: Runtime = "unknown"
    name: str = Field("", max_length=MAX_ID_CHARS)
    image: str = Field("", max_length=MAX_ID_CHARS)
    pod_uid: Id | None = None               # from the kubepods cgroup path
    pod_name: Id | None = None              # from the Kubernetes API (this node's pods)
    namespace: Id | None = None
    labels: dict[str, Annotated[str, Field(max_length=MAX_LABEL_VALUE_CHARS)]] = Field(
        default_factory=dict, max_length=MAX_LABELS)
    mesos_task_id: Id | None = None
    marathon_app_id: Id | None = None       # from the local Mesos agent's /state
    cpu_percent: NonNegative = 0.0          # of one core
    memory_bytes: NonNegative = 0.0


class Connection(_Part):
    """One TCP socket of this host. `listen` sockets have no remote end; the API joins an `established`
    socket's remote address to a listener anywhere in the topology to draw an edge between hosts."""

    state: Literal["listen", "established"]
    local_ip: Id
    local_port: Port
    remote_ip: Id | None = None
    remote_port: Port | None = None
    pid: int | None = Field(None, ge=1)     # the owning process when the probe could map the socket inode
    nat: bool = False                       # remote end rewritten from conntrack


class ProbeCost(_Part):
    cpu_seconds: NonNegative = 0.0          # cumulative CPU of the probe process
    rss_bytes: NonNegative = 0.0
    collect_seconds: NonNegative = 0.0      # wall time of this interval's collection
    report_bytes: int = Field(0, ge=0)      # gzipped size of the previous report
    dropped_reports: int = Field(0, ge=0)   # cumulative, dropped from the bounded buffer
    skipped_processes: int = Field(0, ge=0)  # exited mid-walk or access denied, this interval


class _ReportBase(_Part):
    schema_version: int
    probe_id: Id                            # stable per node (the node name)
    seq: int = Field(ge=0)                  # increases by one per report from this probe
    timestamp: float = Field(gt=0)          # unix seconds at the end of collection
    interval_seconds: float = Field(REPORT_INTERVAL_SECONDS, gt=0, le=3600)
    host: Host                              # always complete: a few numbers
    cost: ProbeCost = Field(default_factory=ProbeCost)


class FullReport(_ReportBase):
    kind: Literal["full"] = "full"
    processes: list[Process] = Field(default_factory=list, max_length=MAX_PROCESSES)
    containers: list[Container] = Field(default_factory=list, max_length=MAX_CONTAINERS)
    connections: list[Connection] = Field(default_factory=list, max_length=MAX_CONNECTIONS)


class DeltaReport(_ReportBase):
    kind: Literal["delta"]
    base_seq: int = Field(ge=0)             # the report this delta applies to
    processes: list[Process] = Field(default_factory=list, max_length=MAX_PROCESSES)   # new or changed
    removed_processes: list[int] = Field(default_factory=list, max_length=MAX_PROCESSES)  # pids
    containers: list[Container] = Field(default_factory=list, max_length=MAX_CONTAINERS)
    removed_containers: list[Id] = Field(default_factory=list, max_length=MAX_CONTAINERS)
    connections_added: list[Connection] = Field(default_factory=list, max_length=MAX_CONNECTIONS)
    connections_removed: list[Connection] = Field(default_factory=list, max_length=MAX_CONNECTIONS)


Report = Annotated[FullReport | DeltaReport, Field(discriminator="kind")]


class ReportAck(BaseModel):
    """The API's answer to an accepted report."""

    probe_id: str
    seq: int
    # "full" tells the probe to send a full report next (the delta's base was unknown).
    next: Literal["delta", "full"] = "delta"


class ReportError(ValueError):
    """A report that cannot be accepted; the message names the field."""


def connection_key(c: Connection) -> tuple[str, str, int, str | None, int | None]:
    """The identity of a socket in deltas."""
    return (c.state, c.local_ip, c.local_port, c.remote_ip, c.remote_port)


def parse_report(raw: object) -> FullReport | DeltaReport:
    """Validate decoded JSON as a report of an accepted version, upgrading the previous version first."""
    if not isinstance(raw, dict):
        raise ReportError("report: the body must be a JSON object")
    version = raw.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version not in ACCEPTED_SCHEMA_VERSIONS:
        raise ReportError(f"schema_version: {version!r} is not accepted (accepted: "
                          f"{', '.join(map(str, ACCEPTED_SCHEMA_VERSIONS))})")
    while version < SCHEMA_VERSION:
        raw = UPGRADES[version](raw)
        version += 1
        raw["schema_version"] = version
    kind = raw.get("kind", "full")
    model: type[FullReport] | type[DeltaReport] = DeltaReport if kind == "delta" else FullReport
    if kind not in ("full", "delta"):
        raise ReportError(f"kind: {kind!r} is not 'full' or 'delta'")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "report"
        raise ReportError(f"{where}: {first['msg']}") from None


_REPORT_ADAPTER: TypeAdapter[FullReport | DeltaReport] = TypeAdapter(Report)


def parse_report_json(body: bytes) -> FullReport | DeltaReport:
    """`parse_report` for raw JSON bytes: the current version is validated straight from the bytes (the
    fast path at ~67 reports/s); anything else goes through `parse_report` for upgrades and error messages."""
    try:
        parsed = _REPORT_ADAPTER.validate_json(body)
    except ValidationError:
        parsed = None
    if parsed is not None and parsed.schema_version == SCHEMA_VERSION:
        return parsed
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ReportError(f"report: not valid JSON ({exc})") from None
    return parse_report(raw)
