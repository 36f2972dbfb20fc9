"""The one Marathon client of the platform (httpx, synchronous).

Used by the Marathon scaler (`orchestrator marathon ...`), the API (status and app operations), the Marathon
exporter and the probe. What it does, and why:

- **Any instance, then the next.** Marathon standbys proxy every request to the leader (`X-Marathon-Via`),
  so requests go to the first URL of the list that answers; on a connection error, a 502/503 (a standby that
  cannot find the leader during an election) or a timeout it moves on to the next URL, at most `retries`
  rounds over the list with a short backoff. `leader()` asks `GET /v2/leader` (404 = no leader).
- **Retries only where safe.** A connection that failed before the request was sent, or a 502/503 proxy error
  (the leader never saw it), is retried for every method; a read timeout is retried only for GET: a PUT that
  timed out may have created a deployment.
- **Scaling is `PUT /v2/apps/{id}` with `{"instances": N}`** (Marathon has no scale endpoint); it returns the
  deployment id. Marathon allows one deployment per app: a 409 becomes `DeploymentLocked` carrying the
  blocking deployment ids; with `wait_locked=S` the client waits (bounded) for them to finish and tries once
  more. `force=true` (which CANCELS the running deployment) is sent only when the caller passes `force=True`.
- **App ids with groups.** `/shop/web`, `shop/web` and `/shop/web/` are the same app; each path segment is
  validated (Marathon's id rule) and URL-quoted, slashes kept.
- **Credentials** come from a file (a mounted Secret) holding `user:password` — Marathon's own
  `--http_credentials` format — read by `load_basic_auth`; never from argv, never logged.
- **Tolerant models.** Every model accepts unknown fields (kept, and round-tripped by `model_dump`) and
  missing ones (defaults): Marathon 0.x-1.10 added and renamed fields (`healthCheckResults[].taskId` became
  `instanceId` in 1.4; old versions sent numbers as strings), and clients with strict models broke on each.

Example::

    client = MarathonClient(["http://marathon-0:8080", "http://marathon-1:8080"],
                            auth=load_basic_auth("/var/run/secrets/marathon/credentials"))
    deployment_id = client.scale("/shop/web", 7)          # DeploymentLocked if another deployment runs
    client.wait_for_deployment(deployment_id, timeout=120)
"""
from __future__ import annotations

import json
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.contracts.marathon_apps import normalize_app_id as _contract_app_id
from orchestrator.errors import ExitCode, InputError, OrchestratorError, UnreachableError

# Proxy errors of a standby during a leader election (502 since 1.5, 503 in 1.4): the leader never saw the call.
_RETRY_STATUS = {502, 503}


# ---------------------------------------------------------------------------------------------- errors
class MarathonError(OrchestratorError):
    """Marathon answered with an error. `status` is the HTTP status, `message` Marathon's own message."""

    def __init__(self, message: str, status: int = 0, exit_code: ExitCode | None = None) -> None:
        super().__init__(message, exit_code)
        self.status = status


class MarathonUnreachable(UnreachableError):
    """No instance of the list answered (after the bounded retries)."""


class AppNotFound(MarathonError):
    def __init__(self, app_id: str) -> None:
        super().__init__(f"Marathon app {app_id} does not exist", 404, ExitCode.FAILED)
        self.app_id = app_id


class DeploymentLocked(MarathonError):
    """409: the app is locked by running deployments (Marathon allows one per app). Never forced by default."""

    def __init__(self, app_id: str, deployment_ids: list[str], message: str = "") -> None:
        ids = ", ".join(deployment_ids) or "unknown"
        super().__init__(f"Marathon app {app_id} is locked by deployment(s) {ids}; not forcing "
                         f"(force cancels the running deployment)", 409, ExitCode.REFUSED)
        self.app_id = app_id
        self.deployment_ids = deployment_ids
        self.marathon_message = message


class DeploymentTimeout(MarathonError):
    def __init__(self, deployment_ids: list[str], timeout: float) -> None:
        super().__init__(f"Marathon deployment(s) {', '.join(deployment_ids)} still running after {timeout:g} s",
                         0, ExitCode.FAILED)
        self.deployment_ids = deployment_ids


# ---------------------------------------------------------------------------------------------- models
class _Tolerant(BaseModel):
    # Unknown fields are kept (round-trip), missing ones defaulted, "2" accepted for 2 (old Marathon).
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class DeploymentRef(_Tolerant):
    id: str = ""


class HealthCheckResult(_Tolerant):
    alive: bool = False
    consecutiveFailures: int = 0
    taskId: str | None = None       # before Marathon 1.4
    instanceId: str | None = None   # 1.4 and later
    firstSuccess: str | None = None
    lastFailure: str | None = None
    lastSuccess: str | None = None


class Task(_Tolerant):
    id: str = ""
    appId: str = ""
    host: str = ""
    state: str = "TASK_RUNNING"  # absent before Marathon 1.x: a listed task was a running one
    version: str = ""
    startedAt: str | None = None
    stagedAt: str | None = None
    slaveId: str | None = None
    ports: list[int] = Field(default_factory=list)
    healthCheckResults: list[HealthCheckResult] = Field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """Every health check result alive (a task of an app without health checks counts as healthy)."""
        return all(r.alive for r in self.healthCheckResults)


class HealthCheck(_Tolerant):
    protocol: str = "HTTP"
    path: str | None = None
    portIndex: int | None = None
    gracePeriodSeconds: int = 300
    intervalSeconds: int = 60
    timeoutSeconds: int = 20
    maxConsecutiveFailures: int = 3


class App(_Tolerant):
    id: str
    instances: int = 1
    cpus: float = 1.0
    mem: float = 128.0
    disk: float = 0.0
    cmd: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    healthChecks: list[HealthCheck] = Field(default_factory=list)
    version: str = ""
    tasksStaged: int = 0
    tasksRunning: int = 0
    tasksHealthy: int = 0
    tasksUnhealthy: int = 0
    deployments: list[DeploymentRef] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list)

    @property
    def deploying(self) -> bool:
        return bool(self.deployments)

    def current_tasks(self) -> list[Task]:
        """Running tasks of the app's current version (during a restart old and new versions both run)."""
        config_version = str((self.model_extra or {}).get("versionInfo", {}).get("lastConfigChangeAt") or "")
        return [t for t in self.tasks if t.state == "TASK_RUNNING"
                and (not config_version or not t.version or t.version >= config_version)]

    def task_ready(self, task: Task) -> bool:
        """Running and, when the app has health checks, with results that are all alive (none yet = not ready)."""
        if task.state != "TASK_RUNNING":
            return False
        return not self.healthChecks or (bool(task.healthCheckResults) and task.healthy)

    def ready_count(self) -> int:
        """Running, healthy tasks of the current version: what an autoscaler may count as capacity."""
        return sum(1 for t in self.current_tasks() if self.task_ready(t))


class DeploymentAction(_Tolerant):
    action: str = ""
    app: str | None = None


class Deployment(_Tolerant):
    id: str
    version: str = ""
    affectedApps: list[str] = Field(default_factory=list)
    currentStep: int = 0
    totalSteps: int = 0
    currentActions: list[DeploymentAction] = Field(default_factory=list)


class DeploymentResult(_Tolerant):
    deploymentId: str = ""
    version: str = ""


# ---------------------------------------------------------------------------------------------- helpers
def normalize_app_id(app_id: str) -> str:
    """`shop/web/` → `/shop/web`, each segment checked against Marathon's id rule (InputError otherwise)."""
    try:
        return _contract_app_id(app_id)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def app_path(app_id: str) -> str:
    """URL path of an app: `/v2/apps/shop/web` (segments quoted, slashes kept)."""
    return "/v2/apps" + "".join("/" + urllib.parse.quote(s, safe="") for s in normalize_app_id(app_id).split("/")[1:])


def load_basic_auth(path: str | Path) -> tuple[str, str]:
    """Read `user:password` (Marathon's --http_credentials format) from a mounted Secret file."""
    p = Path(path)
    try:
        text = p.read_text().strip()
    except OSError as exc:
        raise InputError(f"Marathon credentials file {p}: cannot read it ({exc.strerror})") from None
    user, sep, password = text.partition(":")
    if not sep or not user or not password or "\n" in text:
        # Never echo the content: it is a secret.
        raise InputError(f"Marathon credentials file {p}: expected one line 'user:password'")
    return user, password


# ---------------------------------------------------------------------------------------------- client
class MarathonClient:
    """Synchronous client over a list of Marathon instances (any may be a standby). Thread-safe per httpx."""

    def __init__(self, urls: Sequence[str] | str, *, auth: tuple[str, str] | None = None, timeout: float = 5.0,
                 retries: int = 2, backoff: float = 0.25, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        url_list = [urls] if isinstance(urls, str) else list(urls)
        if not url_list:
            raise InputError("Marathon: no URL given")
        self.urls = [u.rstrip("/") for u in url_list]
        self.retries = max(0, retries)
        self.backoff = backoff
        self._sleep = sleep
        self._clock = clock
        self._preferred = 0  # index of the instance that answered last: stick to it
        self._http = httpx.Client(auth=auth, timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
                                  transport=transport, follow_redirects=False,
                                  headers={"Accept": "application/json", "User-Agent": "orchestrator"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MarathonClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------------------------
    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                body: Any = None) -> httpx.Response:
        """One call with failover across instances and bounded retries. Returns any response < 500 but 502/503."""
        last_error = ""
        attempts = (self.retries + 1) * len(self.urls)
        for attempt in range(attempts):
            index = (self._preferred + attempt) % len(self.urls)
            base = self.urls[index]
            if attempt and attempt % len(self.urls) == 0:
                self._sleep(self.backoff * (2 ** (attempt // len(self.urls) - 1)))
            try:
                response = self._http.request(method, base + path, params=params,
                                              content=None if body is None else json.dumps(body),
                                              headers={"Content-Type": "application/json"} if body is not None else None)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                last_error = f"{base}: {type(exc).__name__}"
                continue
            except httpx.TimeoutException as exc:
                if method != "GET":
                    # The instance may have acted on it: do not send a second deployment.
                    raise MarathonUnreachable(f"Marathon {method} {path} on {base} timed out ({type(exc).__name__});"
                                              " it may have been applied, check /v2/deployments") from None
                last_error = f"{base}: {type(exc).__name__}"
                continue
            if response.status_code in _RETRY_STATUS:
                last_error = f"{base}: HTTP {response.status_code} {_message(response)}"
                continue
            self._preferred = index
            return response
        raise MarathonUnreachable(f"Marathon unreachable ({len(self.urls)} instance(s), {self.retries + 1} "
                                  f"round(s)); last: {last_error}")

    def _json(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None,
              app_id: str | None = None) -> Any:
        response = self.request(method, path, params=params, body=body)
        if response.status_code < 300:
            return response.json() if response.content else None
        if response.status_code == 404 and app_id is not None:
            raise AppNotFound(app_id)
        if response.status_code == 409:
            data = _safe_json(response)
            ids = [str(d.get("id")) for d in data.get("deployments", []) if isinstance(d, dict)] \
                if isinstance(data, dict) else []
            raise DeploymentLocked(app_id or path, ids, _message(response))
        if response.status_code in (401, 403):
            raise MarathonError(f"Marathon refused the credentials (HTTP {response.status_code}) for {method} {path}",
                                response.status_code, ExitCode.INPUT)
        raise MarathonError(f"Marathon {method} {path}: HTTP {response.status_code} {_message(response)}",
                            response.status_code)

    # -- cluster --------------------------------------------------------------------------------------------
    def ping(self) -> bool:
        try:
            return self.request("GET", "/ping").status_code < 300
        except MarathonUnreachable:
            return False

    def leader(self) -> str | None:
        """`host:port` of the elected leader, or None while there is none (404)."""
        response = self.request("GET", "/v2/leader")
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise MarathonError(f"Marathon GET /v2/leader: HTTP {response.status_code}", response.status_code)
        return str(_safe_json(response).get("leader") or "") or None

    def info(self) -> dict[str, Any]:
        return dict(self._json("GET", "/v2/info") or {})

    # -- apps -----------------------------------------------------------------------------------------------
    def list_apps(self, *, embed_tasks: bool = True, label: str | None = None,
                  id_filter: str | None = None) -> list[App]:
        """All apps (Marathon has no pagination). Counts and deployments are always embedded."""
        params: dict[str, Any] = {}
        if embed_tasks:
            params["embed"] = ["apps.tasks", "apps.counts", "apps.deployments"]
        if label:
            params["label"] = label
        if id_filter:
            params["id"] = id_filter
        data = self._json("GET", "/v2/apps", params=params) or {}
        return [App.model_validate(a) for a in data.get("apps", [])]

    def list_apps_raw(self) -> list[dict[str, Any]]:
        """App definitions exactly as Marathon returns them (no model defaults added): for reconcile."""
        data = self._json("GET", "/v2/apps") or {}
        return [dict(a) for a in data.get("apps", []) if isinstance(a, dict)]

    def get_app(self, app_id: str) -> App:
        data = self._json("GET", app_path(app_id), app_id=normalize_app_id(app_id)) or {}
        return App.model_validate(data.get("app", data))

    def get_app_raw(self, app_id: str) -> dict[str, Any] | None:
        """The app definition as Marathon returns it, or None when it does not exist (for reconcile)."""
        try:
            data = self._json("GET", app_path(app_id), app_id=normalize_app_id(app_id)) or {}
        except AppNotFound:
            return None
        return dict(data.get("app", data))

    def put_app(self, definition: dict[str, Any], *, force: bool = False, partial: bool = True,
                wait_locked: float = 0.0) -> str:
        """Create or update an app (`PUT /v2/apps/{id}`); returns the deployment id."""
        app_id = normalize_app_id(str(definition.get("id", "")))
        body = {**definition, "id": app_id}
        params = {"force": "true"} if force else {}
        if not partial:
            params["partialUpdate"] = "false"
        return self._deployable("PUT", app_path(app_id), app_id, params=params, body=body, wait_locked=wait_locked)

    def scale(self, app_id: str, instances: int, *, force: bool = False, wait_locked: float = 0.0) -> str:
        """Set the instance count; returns the deployment id. Raises DeploymentLocked unless it ends within
        `wait_locked` seconds. Never forces unless `force=True`."""
        if instances < 0:
            raise InputError(f"instances for {app_id} must be >= 0, got {instances}")
        app_id = normalize_app_id(app_id)
        return self._deployable("PUT", app_path(app_id), app_id, params={"force": "true"} if force else {},
                                body={"instances": int(instances)}, wait_locked=wait_locked)

    def restart(self, app_id: str, *, force: bool = False, wait_locked: float = 0.0) -> str:
        app_id = normalize_app_id(app_id)
        return self._deployable("POST", app_path(app_id) + "/restart", app_id,
                                params={"force": "true"} if force else {}, body={}, wait_locked=wait_locked)

    def delete_app(self, app_id: str, *, force: bool = False, wait_locked: float = 0.0) -> str:
        app_id = normalize_app_id(app_id)
        return self._deployable("DELETE", app_path(app_id), app_id, params={"force": "true"} if force else {},
                                wait_locked=wait_locked)

    def kill_task(self, app_id: str, task_id: str, *, scale: bool = False) -> str | None:
        """Kill one task. scale=False: Marathon replaces it (returns None); scale=True: instances - 1 (deployment id)."""
        app_id = normalize_app_id(app_id)
        path = f"{app_path(app_id)}/tasks/{urllib.parse.quote(task_id, safe='')}"
        data = self._json("DELETE", path, params={"scale": "true" if scale else "false"}, app_id=app_id) or {}
        return str(data["deploymentId"]) if scale and "deploymentId" in data else None

    def _deployable(self, method: str, path: str, app_id: str, *, params: dict[str, Any], body: Any = None,
                    wait_locked: float) -> str:
        try:
            data = self._json(method, path, params=params, body=body, app_id=app_id)
        except DeploymentLocked as locked:
            if wait_locked <= 0:
                raise
            self.wait_for_deployment(locked.deployment_ids, timeout=wait_locked)
            data = self._json(method, path, params=params, body=body, app_id=app_id)  # once more, then raise
        return DeploymentResult.model_validate(data or {}).deploymentId

    # -- deployments ----------------------------------------------------------------------------------------
    def deployments(self) -> list[Deployment]:
        return [Deployment.model_validate(d) for d in (self._json("GET", "/v2/deployments") or [])]

    def wait_for_deployment(self, deployment_ids: str | Sequence[str], *, timeout: float,
                            poll: float = 1.0) -> None:
        """Wait until none of the deployments is listed any more (bounded by `timeout`)."""
        wanted = {deployment_ids} if isinstance(deployment_ids, str) else set(deployment_ids)
        wanted.discard("")
        deadline = self._clock() + timeout
        while wanted:
            running = {d.id for d in self.deployments()}
            wanted &= running
            if not wanted:
                return
            if self._clock() >= deadline:
                raise DeploymentTimeout(sorted(wanted), timeout)
            self._sleep(poll)

    # -- events ---------------------------------------------------------------------------------------------
    def events(self, *, event_types: Sequence[str] = (), max_events: int | None = None,
               read_timeout: float = 60.0) -> Iterator[dict[str, Any]]:
        """Stream `/v2/events` (SSE) from the first instance that answers; standbys redirect it to the leader."""
        params = {"event_type": list(event_types)} if event_types else None
        last_error = ""
        for base in self.urls:
            try:
                with self._http.stream("GET", base + "/v2/events", params=params, follow_redirects=True,
                                       headers={"Accept": "text/event-stream"},
                                       timeout=httpx.Timeout(5.0, read=read_timeout)) as response:
                    if response.status_code >= 300:
                        last_error = f"{base}: HTTP {response.status_code}"
                        continue
                    yield from _parse_sse(response.iter_lines(), max_events, set(event_types))
                    return
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                last_error = f"{base}: {type(exc).__name__}"
        raise MarathonUnreachable(f"Marathon /v2/events unreachable; last: {last_error}")


def _parse_sse(lines: Iterator[str], max_events: int | None, wanted: set[str]) -> Iterator[dict[str, Any]]:
    count = 0
    event_type, data_lines = "", []
    for line in lines:
        if line.startswith("event:"):
            event_type = line[6:].strip()
        elif line.startswith("data:"):
            data_lines.append(line[5:].strip())
        elif not line and data_lines:
            try:
                payload = json.loads("\n".join(data_lines))
            except ValueError:
                payload = {"raw": "\n".join(data_lines)}
            if isinstance(payload, dict) and (not wanted or payload.get("eventType", event_type) in wanted):
                payload.setdefault("eventType", event_type)
                yield payload
                count += 1
            event_type, data_lines = "", []
            if max_events is not None and count >= max_events:
                return


def _safe_json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {}


def _message(response: httpx.Response) -> str:
    data = _safe_json(response)
    if isinstance(data, dict) and data.get("message"):
        return str(data["message"])[:200]
    return response.reason_phrase or ""
