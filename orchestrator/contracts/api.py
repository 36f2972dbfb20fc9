"""The orchestrator API's contract: routes, roles, scopes and payloads (docs/api.md).

The route table `ROUTES` is the single source of truth: the API registers exactly these routes and checks
each one's `access` before its handler runs, the authorization-matrix test is generated from it, and the UI
and the probe read the paths from docs/api.md, which lists the same table. Payload models are plain
pydantic so that the UI, the probe and scripts can share them without FastAPI.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

API_PREFIX = "/api/v1"


class Role(StrEnum):
    """Account roles, each including the ones before it."""

    VIEWER = "viewer"       # read topology, status, apps
    OPERATOR = "operator"   # + Marathon operations and autoscaling policy edits
    ADMIN = "admin"         # + audit log

    @property
    def rank(self) -> int:
        return ROLE_ORDER.index(self)

    def allows(self, required: Role) -> bool:
        return self.rank >= required.rank


ROLE_ORDER = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)

# API-token scopes. A token with a scope can call only routes that require that scope; a token without a
# scope acts with its account's role. Probes get `report:write` and nothing else.
SCOPE_REPORT_WRITE = "report:write"
SCOPES = (SCOPE_REPORT_WRITE,)

# Access levels of a route: "public" (no token), a Role, or a scope.
Access = Literal["public", "viewer", "operator", "admin", "report:write"]

# Token lifetimes (the bounds): access ≤ 15 min, refresh ≤ 12 h.
ACCESS_TOKEN_TTL_SECONDS = 15 * 60
REFRESH_TOKEN_TTL_SECONDS = 12 * 3600
MAX_API_TOKEN_TTL_SECONDS = 366 * 24 * 3600

VIEWS = ("hosts", "containers", "processes", "pods", "services", "marathon-apps")
View = Literal["hosts", "containers", "processes", "pods", "services", "marathon-apps"]
# What each view may be grouped by (a compound node per distinct value, with counts).
GROUP_BY: dict[str, tuple[str, ...]] = {
    "hosts": (),
    "containers": ("host", "namespace", "marathon_app", "runtime"),
    "processes": ("host", "container"),
    "pods": ("host", "namespace"),
    "services": ("namespace",),
    "marathon-apps": ("group",),
}
STATUS_PARTS = ("zookeeper", "mesos", "marathon", "zk-sync", "canary")
SAMPLE_INTERVAL_SECONDS = 15
SAMPLE_WINDOW_SECONDS = 3600
MAX_SEARCH_CHARS = 512
AUDIT_WINDOW = 10_000       # entries kept in memory per replica for GET /audit


@dataclass(frozen=True)
class Route:
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "WEBSOCKET"]
    path: str               # template, as exported in metrics' `route` label
    access: Access
    mutating: bool          # writes one audit line per call
    summary: str


def _r(method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "WEBSOCKET"], path: str, access: Access,
       summary: str, mutating: bool = False) -> Route:
    return Route(method, API_PREFIX + path, access, mutating, summary)


ROUTES: tuple[Route, ...] = (
    _r("POST", "/login", "public", "Exchange account name and password for an access and a refresh token",
       mutating=True),
    _r("POST", "/refresh", "public", "Exchange a refresh token for a new access token", mutating=True),
    _r("POST", "/logout", "viewer", "Revoke the caller's refresh token", mutating=True),
    _r("GET", "/whoami", "viewer", "The caller's account, role and token expiry"),
    _r("POST", "/reports", "report:write", "Ingest one probe report (gzip accepted)"),
    _r("GET", "/probes", "viewer", "Probes with their last report and state (ok, stale, offline)"),
    _r("GET", "/topology", "viewer", "The views with their node counts"),
    _r("GET", "/topology/{view}", "viewer", "Nodes and edges of a view, filtered by `search`, grouped by `group_by`"),
    _r("GET", "/topology/{view}/nodes/{node_id}", "viewer", "One node's details and its last hour of 15 s samples"),
    _r("GET", "/status", "viewer", "Platform status: every part in one document"),
    *(_r("GET", f"/status/{part}", "viewer", f"Platform status: {part}") for part in STATUS_PARTS),
    _r("GET", "/marathon/apps", "viewer", "Marathon apps with instance counts, deployments and policies"),
    _r("POST", "/marathon/apps/{app_id}/scale", "operator",
       "Scale an app not under an autoscaling policy (409 while a deployment is in flight)", mutating=True),
    _r("POST", "/marathon/apps/{app_id}/restart", "operator", "Restart an app (rolling)", mutating=True),
    _r("PATCH", "/marathon/apps/{app_id}/policy", "operator",
       "Edit an autoscaled app's policy: bounds or pause", mutating=True),
    _r("GET", "/audit", "admin", "The last audit entries kept by this replica"),
    _r("WEBSOCKET", "/ws", "public", "Live topology: authenticate in the first message, then subscribe"),
)


def route(method: str, path: str) -> Route:
    for r in ROUTES:
        if r.method == method and r.path == path:
            return r
    raise KeyError(f"{method} {path} is not in the route table")


# ---------------------------------------------------------------------------------------------- payloads
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


Name = Annotated[str, Field(min_length=1, max_length=128)]


class ErrorBody(BaseModel):
    """Every 4xx/5xx: one sentence, no stack trace."""

    detail: str
    request_id: str | None = None


class LoginRequest(_Model):
    account: Name
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class RefreshRequest(_Model):
    refresh_token: Annotated[str, Field(min_length=1, max_length=4096)]


class LogoutRequest(_Model):
    """The refresh token to revoke with the access token (optional: `{}` revokes the access token only)."""

    refresh_token: Annotated[str, Field(min_length=1, max_length=4096)] | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int                 # seconds
    refresh_token: str | None = None
    refresh_expires_in: int | None = None
    account: str
    role: Role


class WhoAmI(BaseModel):
    account: str
    role: Role | None               # None for a scoped token
    scope: str | None
    token_id: str
    expires_at: float


class Node(BaseModel):
    id: str                         # unique within a view, stable across reports
    label: str
    kind: str                       # host, container, process, pod, service, marathon-app, group
    parent: str | None = None       # id of its group node when grouped
    metadata: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)   # cpu (%), memory (bytes), connections
    status: Literal["ok", "stale", "offline"] = "ok"
    count: int | None = None        # group nodes: number of members


class Edge(BaseModel):
    source: str
    target: str
    connections: int = 1


class TopologyView(BaseModel):
    view: View
    generated_at: float
    search: str = ""
    group_by: str | None = None
    nodes: list[Node]
    edges: list[Edge]
    total_nodes: int                # before the search filter


class ViewSummary(BaseModel):
    view: View
    nodes: int
    group_by: list[str]


class Sample(BaseModel):
    t: float
    cpu: float | None = None            # percent
    memory: float | None = None         # bytes
    connections: float | None = None


class NodeDetails(BaseModel):
    node: Node
    interval_seconds: int = SAMPLE_INTERVAL_SECONDS
    samples: list[Sample]               # oldest first, at most an hour
    neighbours: list[Node] = Field(default_factory=list)


class ProbeInfo(BaseModel):
    probe_id: str
    hostname: str
    last_report: float
    state: Literal["ok", "stale", "offline"]
    schema_version: int
    cost: dict[str, float] = Field(default_factory=dict)


Health = Literal["healthy", "warning", "critical", "unknown"]


class PartStatus(BaseModel):
    part: str
    health: Health
    summary: str                        # one line for a person
    checked_at: float


class ZooKeeperServer(BaseModel):
    address: str
    reachable: bool
    mode: str | None = None             # leader, follower, observer, standalone
    latency_avg_ms: float | None = None
    znode_count: int | None = None
    outstanding_requests: int | None = None
    error: str | None = None


class ZooKeeperStatus(PartStatus):
    servers: list[ZooKeeperServer]
    leader: str | None
    quorum: bool


class MesosStatus(PartStatus):
    leader: str | None
    agents_active: int = 0
    agents_inactive: int = 0
    frameworks: list[str] = Field(default_factory=list)
    tasks: dict[str, int] = Field(default_factory=dict)   # state -> count


class MarathonDeployment(BaseModel):
    id: str
    apps: list[str]
    current_step: int | None = None
    total_steps: int | None = None


class MarathonStatus(PartStatus):
    leader: str | None
    apps: int = 0
    deployments: list[MarathonDeployment] = Field(default_factory=list)


class SyncStatus(PartStatus):
    lag_seconds: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)


class CanaryGate(BaseModel):
    name: str
    query: str
    value: float | None
    threshold: str
    ok: bool | None


class CanaryStatus(PartStatus):
    gates: list[CanaryGate] = Field(default_factory=list)


class PlatformStatus(BaseModel):
    zookeeper: ZooKeeperStatus
    mesos: MesosStatus
    marathon: MarathonStatus
    zk_sync: SyncStatus
    canary: CanaryStatus


class AutoscalePolicy(BaseModel):
    min_instances: int
    max_instances: int
    paused: bool = False
    metric: str | None = None
    target: float | None = None


class MarathonApp(BaseModel):
    id: str                             # with groups: /group/app
    instances: int
    running: int = 0
    staged: int = 0
    healthy: int = 0
    unhealthy: int = 0
    deployments: list[str] = Field(default_factory=list)
    policy: AutoscalePolicy | None = None   # present: the autoscaler owns `instances`


class ScaleRequest(_Model):
    instances: int = Field(ge=0, le=10_000)
    # Off by default: a deployment in flight is shown (409), never cancelled unless asked for explicitly.
    force: bool = False


class RestartRequest(_Model):
    force: bool = False


class PolicyEdit(_Model):
    """Operators edit an autoscaled app's bounds or pause it instead of scaling it."""

    min_instances: int | None = Field(None, ge=0, le=10_000)
    max_instances: int | None = Field(None, ge=0, le=10_000)
    paused: bool | None = None


class OperationResult(BaseModel):
    app_id: str
    deployment_id: str | None
    version: str | None = None


class Conflict(BaseModel):
    """409: the app is locked by deployments in flight (or an autoscaler owns its instance count)."""

    detail: str
    deployments: list[str] = Field(default_factory=list)
    request_id: str | None = None


class AuditEntry(BaseModel):
    time: float
    actor: str                          # account name, token id or "anonymous"
    role: str | None
    action: str                         # e.g. "marathon.scale", "login"
    target: str | None
    outcome: Literal["ok", "denied", "failed", "conflict", "invalid"]
    request_id: str
    source: str                         # client address
    detail: str | None = None


class AuditPage(BaseModel):
    entries: list[AuditEntry]           # newest last
    window: int = AUDIT_WINDOW
