"""The one Mesos HTTP client (masters and agents), with tolerant models of what they return.

Behaviour it relies on (Mesos operator docs, see docs/probe.md):
- every master answers `/master/health` and its own `/metrics/snapshot` (never redirected);
- `/master/redirect` answers 307 with a protocol-relative `Location: //host:port` to the leader, 503 if none;
- a standby answers `/master/state` (and the other leader-only endpoints) with 307 to the leader, 503 if no
  leader is known; we follow at most one hop (the docs' rule) and remember the leader;
- HTTP Basic auth when `--authenticate_http_readonly` is on: 401 without or with bad credentials.

The models accept every Mesos version we know (0.19 to 1.x): unknown fields are ignored, missing or null
fields take their defaults, numbers may come as strings. Nothing here raises a pydantic error at a caller:
a body that is not a JSON object becomes a `MesosProtocolError`.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from orchestrator.errors import ExitCode, InputError, OrchestratorError, UnreachableError

DEFAULT_TIMEOUT_SECONDS = 5.0
USER_AGENT = "orchestrator-mesos-client"


class MesosError(OrchestratorError):
    """Mesos answered, but not with what we asked for (unexpected status, body that is not a JSON object)."""


class MesosProtocolError(MesosError):
    pass


class MesosNoLeader(UnreachableError):
    """Masters answer but none is elected (503 from /master/redirect or a leader-only endpoint)."""


class MesosAuthError(InputError):
    """401/403: the credentials file is missing, wrong, or its principal may not read this endpoint."""


# ---------------------------------------------------------------------------------------------- models

class _Tolerant(BaseModel):
    """Unknown fields ignored; a null field takes its default (old Mesos versions send null for absent)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {k: v for k, v in data.items() if v is not None}
        return data


class Resources(_Tolerant):
    cpus: float = 0.0
    mem: float = 0.0   # MB
    disk: float = 0.0  # MB
    gpus: float = 0.0
    ports: str | None = None  # a range string such as "[31000-32000]"


class TaskStatus(_Tolerant):
    state: str = ""
    timestamp: float = 0.0
    container_id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _container(cls, data: Any) -> Any:
        # 1.x: container_status.container_id.value (the containerizer's id, also the cgroup path's leaf).
        if isinstance(data, Mapping) and "container_id" not in data:
            status = data.get("container_status")
            if isinstance(status, Mapping):
                cid = status.get("container_id")
                if isinstance(cid, Mapping) and isinstance(cid.get("value"), str):
                    data = {**data, "container_id": cid["value"]}
        return data


class Task(_Tolerant):
    id: str = ""
    name: str = ""
    framework_id: str = ""
    executor_id: str = ""
    slave_id: str = ""
    state: str = ""
    resources: Resources = Field(default_factory=Resources)
    statuses: list[TaskStatus] = Field(default_factory=list)

    @property
    def container_id(self) -> str | None:
        for status in reversed(self.statuses):
            if status.container_id:
                return status.container_id
        return None


class Framework(_Tolerant):
    id: str = ""
    name: str = ""
    hostname: str = ""
    active: bool = True
    connected: bool = True  # Mesos >= 1.0; older masters list only connected frameworks as active
    role: str = ""
    tasks: list[Task] = Field(default_factory=list)
    unreachable_tasks: list[Task] = Field(default_factory=list)
    completed_tasks: list[Task] = Field(default_factory=list)
    resources: Resources = Field(default_factory=Resources)
    used_resources: Resources = Field(default_factory=Resources)


class Agent(_Tolerant):
    id: str = ""
    pid: str = ""
    hostname: str = ""
    active: bool = True
    version: str = ""
    registered_time: float = 0.0
    resources: Resources = Field(default_factory=Resources)
    used_resources: Resources = Field(default_factory=Resources)


class MasterInfo(_Tolerant):
    id: str = ""
    pid: str = ""
    hostname: str = ""
    port: int = 0
    version: str = ""


class MasterState(_Tolerant):
    id: str = ""
    pid: str = ""
    hostname: str = ""
    version: str = ""
    cluster: str = ""
    leader: str = ""  # deprecated by leader_info in 1.x; still sent
    leader_info: MasterInfo | None = None
    elected_time: float | None = None
    start_time: float = 0.0
    activated_slaves: float = 0.0
    deactivated_slaves: float = 0.0
    slaves: list[Agent] = Field(default_factory=list)
    frameworks: list[Framework] = Field(default_factory=list)
    completed_frameworks: list[Framework] = Field(default_factory=list)

    @property
    def is_leader(self) -> bool:
        leader_pid = self.leader_info.pid if self.leader_info and self.leader_info.pid else self.leader
        return bool(leader_pid) and leader_pid == self.pid

    @property
    def agents(self) -> list[Agent]:
        return self.slaves


class Executor(_Tolerant):
    id: str = ""
    name: str = ""
    source: str = ""
    container: str = ""  # the containerizer's container id: the leaf of /mesos/<id> cgroups
    directory: str = ""
    framework_id: str = ""
    resources: Resources = Field(default_factory=Resources)
    tasks: list[Task] = Field(default_factory=list)
    queued_tasks: list[Task] = Field(default_factory=list)
    completed_tasks: list[Task] = Field(default_factory=list)


class AgentFramework(_Tolerant):
    id: str = ""
    name: str = ""
    role: str = ""
    executors: list[Executor] = Field(default_factory=list)
    completed_executors: list[Executor] = Field(default_factory=list)


class AgentState(_Tolerant):
    id: str = ""
    pid: str = ""
    hostname: str = ""
    version: str = ""
    master_hostname: str = ""
    frameworks: list[AgentFramework] = Field(default_factory=list)

    def executors(self) -> Iterator[tuple[AgentFramework, Executor]]:
        for framework in self.frameworks:
            for executor in framework.executors:
                yield framework, executor


class ExecutorStatistics(_Tolerant):
    """One entry of an agent's /monitor/statistics."""

    executor_id: str = ""
    executor_name: str = ""
    framework_id: str = ""
    source: str = ""
    statistics: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _numbers_only(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("statistics"), Mapping):
            data = {**data, "statistics": _numeric(data["statistics"])}
        return data


def _numeric(values: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, int | float):  # bool is an int: True -> 1.0
            out[key] = float(value)
        elif isinstance(value, str):
            try:
                out[key] = float(value)
            except ValueError:
                continue
    return out


def parse_metrics_snapshot(body: Any) -> dict[str, float]:
    """/metrics/snapshot: a flat object of name -> number. Non-numeric values are dropped, never fatal."""
    if not isinstance(body, Mapping):
        raise MesosProtocolError("/metrics/snapshot is not a JSON object")
    return _numeric(body)


# Marathon task ids: `<app path with / as _>.<uuid>`, `.marathon-<uuid>`, `.instance-<uuid>[._app.<n>]`.
# App ids may contain dots, so we anchor on the UUID instead of splitting on "." (fixtures README).
_MARATHON_TASK_ID = re.compile(
    r"^(?P<app>.+?)\.(?:marathon-|instance-)?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"(?:\._app\.\d+)?$")


def marathon_app_id(task_id: str) -> str | None:
    """The Marathon app id (`/group/app`) a Mesos task id belongs to, or None if it is not Marathon's."""
    match = _MARATHON_TASK_ID.match(task_id)
    if not match:
        return None
    # Marathon path segments cannot contain "_", so "_" is always the path separator.
    return "/" + match.group("app").replace("_", "/")


# ---------------------------------------------------------------------------------------------- auth

@dataclass(frozen=True)
class Credentials:
    principal: str
    secret: str

    def __repr__(self) -> str:  # never print the secret
        return f"Credentials(principal={self.principal!r}, secret=***)"

    def auth(self) -> httpx.BasicAuth:
        return httpx.BasicAuth(self.principal, self.secret)


def load_credentials(path: str | Path, principal: str | None = None) -> Credentials:
    """Read HTTP credentials from a mounted file.

    Accepted forms: a Mesos `--http_credentials` JSON file (`{"credentials": [{"principal", "secret"}]}`,
    the first entry, or the one named `principal`), a `principal:secret` line, or - with `principal`
    given - a file holding only the secret (how a Kubernetes Secret key is mounted).
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise InputError(f"{file}: cannot read the Mesos credentials file: {exc.strerror or exc}") from exc
    if not text:
        raise InputError(f"{file}: the Mesos credentials file is empty")
    if text.startswith("{"):
        try:
            entries = json.loads(text).get("credentials") or []
        except (ValueError, AttributeError) as exc:
            raise InputError(f"{file}: not a Mesos credentials JSON document") from exc
        for entry in entries:
            if (isinstance(entry, Mapping) and (principal is None or entry.get("principal") == principal)
                    and entry.get("principal") and entry.get("secret")):
                return Credentials(str(entry["principal"]), str(entry["secret"]))
        raise InputError(f"{file}: no credentials entry{' for ' + principal if principal else ''}")
    if principal is not None:
        return Credentials(principal, text)
    user, sep, secret = text.partition(":")
    if not sep or not user or not secret:
        raise InputError(f"{file}: expected 'principal:secret' (or pass the principal and mount only the secret)")
    return Credentials(user, secret)


# ---------------------------------------------------------------------------------------------- transport

def _normalise(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url


def _leader_from_location(location: str, scheme: str) -> str:
    """`//host:port/path?query` (protocol-relative, as Mesos sends it) -> `scheme://host:port`."""
    if location.startswith("//"):
        location = f"{scheme}:{location}"
    parts = urlsplit(location)
    if not parts.netloc:
        raise MesosProtocolError(f"redirect without a host: {location!r}")
    return f"{parts.scheme or scheme}://{parts.netloc}"


def _check(response: httpx.Response, what: str) -> Any:
    if response.status_code in (401, 403):
        raise MesosAuthError(f"{what}: HTTP {response.status_code} from Mesos; check the credentials file "
                             "(--mesos-credentials) and the principal's permissions")
    if response.status_code == 503:
        raise MesosNoLeader(f"{what}: Mesos answered 503 (no elected leader, or still recovering)")
    if response.status_code != 200:
        raise MesosError(f"{what}: unexpected HTTP {response.status_code} from Mesos", ExitCode.FAILED)
    try:
        return response.json()
    except ValueError as exc:
        raise MesosProtocolError(f"{what}: Mesos answered with a body that is not JSON") from exc


def _model(model: type[BaseModel], body: Any, what: str) -> Any:
    if not isinstance(body, Mapping):
        raise MesosProtocolError(f"{what}: expected a JSON object")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise MesosProtocolError(f"{what}: field {where!r}: {first.get('msg')}") from exc


class MesosClient:
    """Client of a Mesos master set (and its agents). Use as a context manager or call close().

    Synchronous only: asyncio code (the API) calls it in a worker thread, as it does the Marathon client.
    """

    def __init__(self, masters: list[str] | str, credentials: Credentials | None = None,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, transport: httpx.BaseTransport | None = None) -> None:
        urls = [masters] if isinstance(masters, str) else list(masters)
        if not urls:
            raise InputError("no Mesos master URL given")
        self.masters = [_normalise(u) for u in urls]
        self.credentials = credentials
        self.timeout = timeout
        self.leader: str | None = None  # cached; reset on a connection error or a redirect
        self._http = httpx.Client(transport=transport, **self._client_kwargs())

    def _client_kwargs(self) -> dict[str, Any]:
        return {"timeout": httpx.Timeout(self.timeout), "follow_redirects": False,
                "auth": self.credentials.auth() if self.credentials else None,
                "headers": {"User-Agent": USER_AGENT, "Accept": "application/json"}}


    def __enter__(self) -> MesosClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _get(self, url: str) -> httpx.Response:
        try:
            return self._http.get(url)
        except httpx.TransportError as exc:
            raise UnreachableError(f"Mesos at {url}: {type(exc).__name__}: {exc or 'no answer'}") from exc

    # -- leader -------------------------------------------------------------------------------------
    def find_leader(self) -> str:
        """Ask the masters' /master/redirect in turn; the first 307 names the leader."""
        errors: list[str] = []
        no_leader = False
        for master in self.masters:
            try:
                response = self._get(f"{master}/master/redirect")
            except UnreachableError as exc:
                errors.append(str(exc))
                continue
            if response.status_code in (301, 302, 307) and response.headers.get("location"):
                self.leader = _leader_from_location(response.headers["location"], urlsplit(master).scheme)
                return self.leader
            if response.status_code == 503:
                no_leader = True
                continue
            errors.append(f"{master}/master/redirect: HTTP {response.status_code}")
        if no_leader:
            raise MesosNoLeader("Mesos masters answer but none is elected (503 from /master/redirect)")
        raise UnreachableError("no Mesos master answered: " + "; ".join(errors))

    def _leader_get(self, path: str) -> Any:
        """GET a leader-only endpoint: cached leader first, re-resolved once on failure, one redirect hop."""
        for attempt in range(2):
            leader = self.leader or self.find_leader()
            try:
                response = self._get(leader + path)
            except UnreachableError:
                self.leader = None
                if attempt:
                    raise
                continue
            if response.status_code == 307 and response.headers.get("location"):
                # We asked a standby (leadership moved): follow exactly one hop, then trust the answer.
                self.leader = _leader_from_location(response.headers["location"], urlsplit(leader).scheme)
                response = self._get(self.leader + path)
                if response.status_code == 307:
                    raise MesosError(f"{path}: redirected twice (leadership is changing); try again")
            return _check(response, f"{self.leader}{path}")
        raise AssertionError("unreachable")

    # -- master endpoints ---------------------------------------------------------------------------
    def master_state(self) -> MasterState:
        state: MasterState = _model(MasterState, self._leader_get("/master/state"), "/master/state")
        return state

    def master_snapshot(self, master: str) -> dict[str, float]:
        """One master's own /metrics/snapshot (every master answers for itself; not redirected)."""
        url = _normalise(master)
        return parse_metrics_snapshot(_check(self._get(f"{url}/metrics/snapshot"), f"{url}/metrics/snapshot"))

    def master_healthy(self, master: str) -> bool:
        try:
            return self._get(f"{_normalise(master)}/master/health").status_code == 200
        except UnreachableError:
            return False

    # -- agent endpoints ----------------------------------------------------------------------------
    def agent_state(self, agent: str) -> AgentState:
        url = _normalise(agent)
        state: AgentState = _model(AgentState, _check(self._get(f"{url}/state"), f"{url}/state"), f"{url}/state")
        return state

    def agent_snapshot(self, agent: str) -> dict[str, float]:
        url = _normalise(agent)
        return parse_metrics_snapshot(_check(self._get(f"{url}/metrics/snapshot"), f"{url}/metrics/snapshot"))

    def agent_statistics(self, agent: str) -> list[ExecutorStatistics]:
        url = _normalise(agent)
        body = _check(self._get(f"{url}/monitor/statistics"), f"{url}/monitor/statistics")
        if not isinstance(body, list):
            raise MesosProtocolError(f"{url}/monitor/statistics: expected a JSON array")
        return [ExecutorStatistics.model_validate(e) for e in body if isinstance(e, Mapping)]

