"""A fake Marathon on loopback that behaves as Marathon is documented to (the one fake of the project).

It ships in the package because `orchestrator api serve --demo-topology` runs with a built-in Marathon;
tests get it through the `fake_marathon` fixture of `tests/support/marathon.py`.

Usage::

    from orchestrator.fakes.marathon import FakeMarathon, SimClock

    clock = SimClock()                                   # or clock=None: real time (the API's demo mode)
    with FakeMarathon(instances=3, clock=clock, step_seconds=2) as fake:
        fake.add_app({"id": "/shop/web", "instances": 3, "healthChecks": [{"protocol": "HTTP"}]})
        client = MarathonClient(fake.urls)               # any instance: standbys proxy to the leader
        deployment = client.scale("/shop/web", 5)
        fake.advance(10)                                 # simulated clock: deployments progress step by step
        fake.fail_over(to=1)                             # leader moves; fake.fail_over(None) = no leader
        fake.overload(60)                                # every health check fails for 60 s
        fake.stop_instance(0)                            # connection refused on that URL

What it models (learned from the Marathon docs and recorded responses, written from scratch):

- **Several instances, one shared state.** Each instance is a real HTTP server on 127.0.0.1 (port 0). The
  leader answers; a standby forwards every request to the leader over HTTP and adds `X-Marathon-Via`; with no
  leader a standby answers 502 "Could not determine the current leader" and `/v2/leader` answers 404
  `{"message": "There is no leader"}`. `/v2/events` on a standby is a 307 to the leader. The leader adds
  `X-Marathon-Leader` to every response.
- **Deployments take time.** `PUT /v2/apps/{id}` (create, scale, update), `POST .../restart` and `DELETE`
  create a deployment that moves one task per `step_seconds`: a scale starts or kills (youngest first) one task
  per step and finishes when the count is reached and, with health checks, every task is healthy; a restart or
  config change starts a new-version task, then kills an old one once enough new ones are healthy (old and new
  versions run side by side meanwhile, as in Marathon). One deployment per app: another change gets the real
  409 body with `deployments[].id` unless `?force=true`, which cancels the running one.
- **Health.** A new task turns healthy `health_delay` seconds after it started; `set_app_health(app, False)`
  and `overload(seconds)` (the host is overloaded: every check fails) make results fail, with
  `consecutiveFailures` counting intervals. The fake never kills on failed checks itself (Marathon would after
  `maxConsecutiveFailures`): tests of our healer count only our kills. `mark_unreachable(task)` sets
  TASK_UNREACHABLE. A task killed with `scale=false` is relaunched after one step (Marathon's launch queue).
- **Defaults filled in.** Marathon's defaults (resources, backoff, upgradeStrategy, health-check timings,
  service ports ...) are added to stored definitions, as Marathon does; the table below is kept separate from
  the reconciler's normaliser on purpose, so a reconcile test against the fake is not a tautology.
- **Clock.** `SimClock` (tests run an hour of scenario in well under a second: nothing sleeps, time moves only
  by `advance`) or real time (`clock=None`). `requests` logs every call (method, path, query, body) for
  assertions such as "force=true was never sent".
- `pause_writes()` / `resume_writes()`: writes are logged, then held (fault tests kill the caller meanwhile).
- `/ping`, `/v2/info`, `/v2/leader` (GET, DELETE = abdicate), `/v2/apps` (GET with embed/label/id filters,
  POST), `/v2/apps/{id}` (GET, PUT, PATCH, DELETE), `/v2/apps/{id}/restart`, `/v2/apps/{id}/tasks` (GET,
  DELETE one with `scale=`), `/v2/tasks`, `/v2/deployments` (GET, DELETE), `/v2/events` (SSE),
  `/metrics/prometheus`. Optional HTTP Basic auth (`credentials=("user", "password")`): 401 from "Jetty".
"""
from __future__ import annotations

import base64
import contextlib
import copy
import http.client
import json
import re
import threading
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_SEGMENT = re.compile(r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$")
LOCKED_MESSAGE = ("App is locked by one or more deployments. Override with the option '?force=true'. "
                  "View details at '/v2/deployments/<DEPLOYMENT_ID>'.")

# Marathon's documented defaults (docs/docs/rest-api/public/api/v2/types/app.raml, health-checks.md).
APP_DEFAULTS: dict[str, Any] = {
    "instances": 1, "cpus": 1.0, "mem": 128.0, "disk": 0.0, "gpus": 0, "cmd": None, "args": None,
    "env": {}, "labels": {}, "constraints": [], "uris": [], "fetch": [], "storeUrls": [], "dependencies": [],
    "backoffSeconds": 1, "backoffFactor": 1.15, "maxLaunchDelaySeconds": 300, "requirePorts": False,
    "upgradeStrategy": {"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0},
    "unreachableStrategy": {"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0},
    "killSelection": "YOUNGEST_FIRST", "healthChecks": [], "executor": "", "user": None, "role": "*",
}
HEALTH_CHECK_DEFAULTS: dict[str, Any] = {
    "protocol": "HTTP", "gracePeriodSeconds": 300, "intervalSeconds": 60, "timeoutSeconds": 20,
    "maxConsecutiveFailures": 3, "delaySeconds": 15, "ignoreHttp1xx": False,
}


class SimClock:
    """Simulated seconds. Only `advance` moves it."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)

    def sleep(self, seconds: float) -> None:
        # Code under test that "sleeps" on a simulated clock moves it instead of waiting.
        self.advance(seconds)


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


Clock = SimClock | RealClock


@dataclass
class _Task:
    id: str
    app_id: str
    version: str
    host: str
    started: float
    state: str = "TASK_RUNNING"
    unhealthy: bool = False


@dataclass
class _Deployment:
    id: str
    app_id: str
    action: str  # StartApplication | ScaleApplication | RestartApplication | StopApplication
    version: str
    next_step: float
    steps: int = 0


@dataclass
class _App:
    definition: dict[str, Any]
    version: str
    config_version: str
    scaling_version: str
    tasks: list[_Task] = field(default_factory=list)
    deployment: _Deployment | None = None
    unhealthy_since: float | None = None
    next_launch: float = 0.0


class _State:
    """Cluster state shared by every instance. All mutation under one lock; time progress is lazy."""

    def __init__(self, clock: Clock, step_seconds: float, health_delay: float) -> None:
        self.clock = clock
        self.step_seconds = step_seconds
        self.health_delay = health_delay
        self.lock = threading.RLock()
        self.events_changed = threading.Condition(self.lock)
        self.apps: dict[str, _App] = {}
        self.deployments: dict[str, _Deployment] = {}
        self.events: deque[tuple[int, str, dict[str, Any]]] = deque(maxlen=10_000)
        self.event_seq = 0
        self.overloaded: tuple[float, float] | None = None
        self.next_service_port = 10_000
        self.framework_id = str(uuid.uuid4()) + "-0000"
        self._wall0 = datetime.now(UTC)
        self._last_stamp = ""
        self._iso_cache: dict[float, str] = {}
        self.stopping = False

    # -- time ---------------------------------------------------------------------------------------------
    def stamp(self) -> str:
        """An ISO-8601 version string, strictly increasing (Marathon versions order tasks vs config)."""
        when = self._wall0 + timedelta(seconds=self.clock.now())
        text = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
        while text <= self._last_stamp:
            when += timedelta(milliseconds=1)
            text = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
        self._last_stamp = text
        return text

    def iso(self, seconds: float) -> str:
        text = self._iso_cache.get(seconds)
        if text is None:  # the same instants are formatted for every task on every request: keep them
            when = self._wall0 + timedelta(seconds=seconds)
            text = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
            if len(self._iso_cache) > 50_000:
                self._iso_cache.clear()
            self._iso_cache[seconds] = text
        return text

    def emit(self, event_type: str, payload: dict[str, Any]) -> None:
        self.event_seq += 1
        self.events.append((self.event_seq, event_type,
                            {"eventType": event_type, "timestamp": self.iso(self.clock.now()), **payload}))
        self.events_changed.notify_all()

    # -- health -------------------------------------------------------------------------------------------
    def overloaded_at(self, now: float) -> bool:
        return self.overloaded is not None and self.overloaded[0] <= now < self.overloaded[1]

    def task_healthy(self, app: _App, task: _Task, now: float) -> bool:
        if task.state != "TASK_RUNNING" or now < task.started + self.health_delay:
            return False
        return not (task.unhealthy or app.unhealthy_since is not None or self.overloaded_at(now))

    def has_checks(self, app: _App) -> bool:
        return bool(app.definition.get("healthChecks"))

    def ready(self, app: _App, task: _Task, now: float) -> bool:
        return task.state == "TASK_RUNNING" and (not self.has_checks(app) or self.task_healthy(app, task, now))

    # -- progress -----------------------------------------------------------------------------------------
    def progress(self) -> None:
        now = self.clock.now()
        for app_id in list(self.apps):
            app = self.apps.get(app_id)
            if app is None:
                continue
            deployment = app.deployment
            if deployment is None:
                self._relaunch(app, now)
                continue
            while deployment.next_step <= now and app.deployment is deployment:
                self._step(app, deployment, deployment.next_step)
                deployment.next_step += self.step_seconds

    def _relaunch(self, app: _App, now: float) -> None:
        # Marathon's launch queue: tasks that died outside a deployment are replaced (one per step).
        live = [t for t in app.tasks if t.state in ("TASK_RUNNING", "TASK_STAGING")]
        while len(live) < int(app.definition["instances"]) and app.next_launch <= now:
            live.append(self._launch(app, max(app.next_launch, now - self.step_seconds)))
            app.next_launch = max(app.next_launch, now) + self.step_seconds

    def _launch(self, app: _App, at: float) -> _Task:
        name = app.definition["id"].strip("/").replace("/", "_")
        task = _Task(id=f"{name}.instance-{uuid.uuid4()}._app.1", app_id=app.definition["id"],
                     version=app.version, host=f"10.0.{len(app.tasks) % 250}.{(len(app.tasks) // 250) % 250 + 1}",
                     started=at)
        app.tasks.append(task)
        self.emit("status_update_event", {"appId": task.app_id, "taskId": task.id, "taskStatus": "TASK_RUNNING",
                                          "host": task.host, "version": task.version})
        return task

    def _kill(self, app: _App, task: _Task, reason: str = "TASK_KILLED") -> None:
        if task in app.tasks:
            app.tasks.remove(task)
        self.emit("status_update_event", {"appId": task.app_id, "taskId": task.id, "taskStatus": reason,
                                          "host": task.host, "version": task.version})

    def _step(self, app: _App, deployment: _Deployment, at: float) -> None:
        deployment.steps += 1
        target = int(app.definition["instances"])
        running = [t for t in app.tasks if t.state == "TASK_RUNNING"]
        if deployment.action == "StopApplication":
            if running:
                self._kill(app, running[-1])
                return
            self._finish(app, deployment)
            del self.apps[deployment.app_id]
            return
        if deployment.action == "RestartApplication":
            new = [t for t in running if t.version >= app.config_version]
            old = [t for t in running if t.version < app.config_version]
            if len(new) < target:
                self._launch(app, at)
                return
            healthy_new = sum(1 for t in new if self.ready(app, t, at))
            if old and healthy_new + len(old) > target:
                self._kill(app, old[0])  # replace before kill: only once a new task is ready
                return
            if not old and healthy_new >= target:
                self._finish(app, deployment)
            return
        # Start / Scale
        if len(running) < target:
            self._launch(app, at)
        elif len(running) > target:
            self._kill(app, max(running, key=lambda t: t.started))  # killSelection YOUNGEST_FIRST
        elif all(self.ready(app, t, at) for t in running):
            self._finish(app, deployment)

    def _finish(self, app: _App, deployment: _Deployment) -> None:
        app.deployment = None
        self.deployments.pop(deployment.id, None)
        self.emit("deployment_success", {"id": deployment.id, "plan": {"id": deployment.id,
                                                                      "version": deployment.version}})

    def start_deployment(self, app: _App, action: str) -> _Deployment:
        deployment = _Deployment(id=str(uuid.uuid4()), app_id=app.definition["id"], action=action,
                                 version=app.version, next_step=self.clock.now() + self.step_seconds)
        if app.deployment is not None:  # force=true: the running deployment is cancelled
            self.deployments.pop(app.deployment.id, None)
            self.emit("deployment_failed", {"id": app.deployment.id})
        app.deployment = deployment
        self.deployments[deployment.id] = deployment
        self.emit("deployment_info", {"plan": {"id": deployment.id, "version": deployment.version},
                                      "currentStep": {"actions": [{"action": action, "app": app.definition["id"]}]}})
        return deployment

    # -- views --------------------------------------------------------------------------------------------
    def task_json(self, app: _App, task: _Task, now: float, index: int = 0) -> dict[str, Any]:
        started = self.iso(task.started)
        data: dict[str, Any] = {
            "id": task.id, "appId": task.app_id, "host": task.host, "state": task.state, "version": task.version,
            "stagedAt": started, "startedAt": started,
            "slaveId": "agent-" + task.host.replace(".", "-"), "ports": [31000 + index % 1000],
            "ipAddresses": [{"ipAddress": task.host, "protocol": "IPv4"}],
        }
        checks = app.definition.get("healthChecks") or []
        if checks and now >= task.started + self.health_delay and task.state == "TASK_RUNNING":
            alive = self.task_healthy(app, task, now)
            since = [s for s in (app.unhealthy_since, self.overloaded[0] if self.overloaded_at(now) and
                                 self.overloaded else None) if s is not None]
            interval = float(checks[0].get("intervalSeconds", 60)) or 60.0
            failures = 0 if alive else int((now - max(min(since, default=now), task.started)) // interval) + 1
            data["healthCheckResults"] = [{"alive": alive, "consecutiveFailures": failures,
                                           "instanceId": task.id.split("._app")[0],
                                           "lastSuccess": self.iso(now) if alive else None,
                                           "lastFailure": None if alive else self.iso(now)}
                                          for _ in checks]
        return data

    def app_json(self, app: _App, embed_tasks: bool) -> dict[str, Any]:
        now = self.clock.now()
        running = [t for t in app.tasks if t.state == "TASK_RUNNING"]
        healthy = sum(1 for t in running if self.has_checks(app) and self.task_healthy(app, t, now))
        data = dict(app.definition)  # serialised right away: a shallow copy is enough
        data.update({
            "version": app.version,
            "versionInfo": {"lastScalingAt": app.scaling_version, "lastConfigChangeAt": app.config_version},
            "tasksStaged": 0, "tasksRunning": len(running), "tasksHealthy": healthy,
            "tasksUnhealthy": (len(running) - healthy) if self.has_checks(app) else 0,
            "deployments": [{"id": app.deployment.id}] if app.deployment else [],
        })
        if embed_tasks:
            data["tasks"] = [self.task_json(app, t, now, i) for i, t in enumerate(app.tasks)]
        return data

    def deployment_json(self, deployment: _Deployment) -> dict[str, Any]:
        action = {"action": deployment.action, "app": deployment.app_id}
        return {"id": deployment.id, "version": deployment.version, "affectedApps": [deployment.app_id],
                "affectedPods": [], "steps": [{"actions": [action]}],
                "currentActions": [{**action, "readinessCheckResults": []}], "currentStep": 1, "totalSteps": 1}


def normalize_id(raw: Any) -> str | None:
    if not isinstance(raw, str):
        return None
    segments = [s for s in raw.split("/") if s]
    if not segments or not all(_SEGMENT.match(s) for s in segments):
        return None
    return "/" + "/".join(segments)


def with_defaults(definition: dict[str, Any], state: _State) -> dict[str, Any]:
    """What Marathon stores for a submitted definition: documented defaults filled, service ports assigned."""
    data = copy.deepcopy(APP_DEFAULTS)
    data.update(copy.deepcopy(definition))
    data["healthChecks"] = [{**HEALTH_CHECK_DEFAULTS, **({"path": "/", "portIndex": 0}
                                                         if c.get("protocol", "HTTP") in ("HTTP", "HTTPS",
                                                                                           "MESOS_HTTP") else {}),
                             **c} for c in data.get("healthChecks") or []]
    ports = data.get("portDefinitions")
    if ports is None:
        ports = [{"port": 0, "protocol": "tcp"}] if "container" not in data else []
    filled = []
    for p in ports:
        p = {"protocol": "tcp", "labels": {}, **p}
        if not p.get("port"):
            p["port"] = state.next_service_port
            state.next_service_port += 1
        filled.append(p)
    data["portDefinitions"] = filled
    container = data.get("container")
    if isinstance(container, dict):
        container.setdefault("volumes", [])
        docker = container.get("docker")
        if isinstance(docker, dict):
            docker.setdefault("forcePullImage", False)
            docker.setdefault("privileged", False)
            docker.setdefault("parameters", [])
    return data


def _validate(definition: dict[str, Any]) -> list[dict[str, Any]]:
    errors = []
    for key in ("instances", "cpus", "mem", "disk"):
        value = definition.get(key)
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            errors.append({"path": f"/{key}", "errors": ["error.expected.jsnumber"]})
            continue
        if number < 0:
            errors.append({"path": f"/{key}", "errors": ["error.min"]})
        elif key == "instances":
            definition[key] = int(number)  # old Marathon accepted "2"
        else:
            definition[key] = number
    return errors


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle on, keep-alive clients wait ~40 ms per call for an ACK.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet: tests read the request log
        pass

    # -- plumbing -----------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def _send(self, status: int, body: Any, *, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str)
                                                    else json.dumps(body).encode())
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Cache-Control", "no-cache, no-store, must-revalidate")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)

    def _dispatch(self, method: str) -> None:
        fake = self.server.fake
        instance = self.server.index
        parsed = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parsed.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with fake.state.lock:
            fake.requests.append({"instance": instance, "method": method, "path": parsed.path,
                                  "query": {k: v[-1] for k, v in query.items()}, "body": raw.decode(errors="replace")})
            fake.request_count += 1
        if fake.credentials and not self._authorized(fake.credentials):
            self._send(401, "<html><body><h2>401 Unauthorized</h2></body></html>", content_type="text/html",
                       headers={"WWW-Authenticate": 'Basic realm="Mesosphere"'})
            return
        leader = fake.leader_index
        if leader != instance:
            self._as_standby(method, parsed, raw, leader)
            return
        headers = {"X-Marathon-Leader": fake.urls[instance]}
        if method != "GET":
            # Fault injection: a write that is received, logged and held (the caller may die meanwhile).
            fake.writes_open.wait(timeout=60)
        try:
            status, body, content_type = fake.handle(method, parsed.path, query, raw, self)
        except _Streamed:
            return
        # The client may have gone away (killed while waiting): Marathon applied the change all the same.
        with contextlib.suppress(OSError):
            self._send(status, body, content_type=content_type, headers=headers)

    def _authorized(self, credentials: tuple[str, str]) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return (user, password) == credentials

    def _as_standby(self, method: str, parsed: urllib.parse.SplitResult, raw: bytes, leader: int | None) -> None:
        fake = self.server.fake
        if leader is None or not fake.serving(leader):
            if parsed.path == "/v2/leader" and method == "GET":
                self._send(404, {"message": "There is no leader"})
            else:
                self._send(502, {"message": "Could not determine the current leader"})
            return
        target = fake.urls[leader]
        if parsed.path == "/v2/events":  # SSE is not proxied: a redirect to the leader
            self._send(307, b"", headers={"Location": target + self.path})
            return
        if self.headers.get("X-Marathon-Via"):
            self._send(502, {"message": "Detected proxying loop."})
            return
        host, port = urllib.parse.urlsplit(target).netloc.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            forwarded = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            forwarded["X-Marathon-Via"] = f"1.1 {fake.urls[self.server.index]}"
            conn.request(method, self.path, body=raw or None, headers=forwarded)
            response = conn.getresponse()
            body = response.read()
            keep = {k: v for k, v in response.getheaders()
                    if k.lower() in ("x-marathon-leader", "marathon-deployment-id", "location", "www-authenticate")}
            keep["X-Marathon-Via"] = forwarded["X-Marathon-Via"]
            self._send(response.status, body, content_type=response.getheader("Content-Type", "application/json"),
                       headers=keep)
        except OSError:
            self._send(502, {"message": "Connection to leader refused."})
        finally:
            conn.close()


class _Streamed(Exception):
    """The handler wrote the response itself (SSE)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeMarathon, index: int, port: int) -> None:
        self.fake = fake
        self.index = index
        super().__init__(("127.0.0.1", port), _Handler)


class FakeMarathon:
    """N Marathon instances on loopback sharing one cluster state. See the module docstring."""

    def __init__(self, instances: int = 1, *, clock: Clock | None = None, step_seconds: float = 1.0,
                 health_delay: float = 1.0, credentials: tuple[str, str] | None = None) -> None:
        self.clock: Clock = clock or RealClock()
        self.state = _State(self.clock, step_seconds, health_delay)
        self.credentials = credentials
        self.instance_count = max(1, instances)
        self.leader_index: int | None = 0
        self.urls: list[str] = []
        self.requests: deque[dict[str, Any]] = deque(maxlen=20_000)
        self.request_count = 0
        self.writes_open = threading.Event()
        self.writes_open.set()
        self._servers: list[_Server | None] = []
        self._threads: list[threading.Thread | None] = []
        self._ports: list[int] = []

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self) -> FakeMarathon:
        for index in range(self.instance_count):
            server = _Server(self, index, 0)
            self._ports.append(server.server_address[1])
            self.urls.append(f"http://127.0.0.1:{server.server_address[1]}")
            self._servers.append(server)
            self._threads.append(None)
            self._serve(index)
        return self

    def _serve(self, index: int) -> None:
        server = self._servers[index]
        assert server is not None
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name=f"fake-marathon-{index}", daemon=True)
        thread.start()
        self._threads[index] = thread

    def stop(self) -> None:
        with self.state.lock:
            self.state.stopping = True
            self.state.events_changed.notify_all()
        self.writes_open.set()
        for index in range(len(self._servers)):
            self.stop_instance(index)

    def __enter__(self) -> FakeMarathon:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serving(self, index: int) -> bool:
        return 0 <= index < len(self._servers) and self._servers[index] is not None

    def stop_instance(self, index: int) -> None:
        """The instance goes away: connections to its URL are refused. A stopped leader leaves no leader."""
        server = self._servers[index]
        if server is None:
            return
        self._servers[index] = None
        server.shutdown()
        server.server_close()
        thread = self._threads[index]
        if thread is not None:
            thread.join(timeout=5)
        if self.leader_index == index:
            self.leader_index = None

    def start_instance(self, index: int) -> None:
        if self._servers[index] is None:
            self._servers[index] = _Server(self, index, self._ports[index])
            self._serve(index)

    def fail_over(self, to: int | None) -> None:
        """Leadership moves to instance `to` (None: no leader until the next fail_over)."""
        with self.state.lock:
            self.leader_index = to
            self.state.emit("leader_elected" if to is not None else "leader_abdicated", {})

    # -- scenario controls --------------------------------------------------------------------------------
    def advance(self, seconds: float, step: float | None = None) -> None:
        """Move a SimClock forward, processing deployments at every step on the way."""
        if not isinstance(self.clock, SimClock):
            raise TypeError("advance() needs a SimClock")
        step = step or self.state.step_seconds
        remaining = seconds
        while remaining > 1e-9:
            delta = min(step, remaining)
            self.clock.advance(delta)
            remaining -= delta
            with self.state.lock:
                self.state.progress()

    def pause_writes(self) -> None:
        """Hold every non-GET request after logging it, until `resume_writes` (or 60 s)."""
        self.writes_open.clear()

    def resume_writes(self) -> None:
        self.writes_open.set()

    def add_app(self, definition: dict[str, Any], *, healthy: bool = True) -> None:
        """Seed an app already running all its instances (no deployment), healthy from the start if asked."""
        with self.state.lock:
            app_id = normalize_id(definition.get("id"))
            if app_id is None:
                raise ValueError(f"invalid app id {definition.get('id')!r}")
            stored = with_defaults({**definition, "id": app_id}, self.state)
            version = self.state.stamp()
            app = _App(definition=stored, version=version, config_version=version, scaling_version=version)
            self.state.apps[app_id] = app
            started = self.clock.now() - (self.state.health_delay if healthy else 0)
            for _ in range(int(stored["instances"])):
                self.state._launch(app, started)

    def set_app_health(self, app_id: str, healthy: bool) -> None:
        with self.state.lock:
            app = self.state.apps[normalize_id(app_id) or app_id]
            app.unhealthy_since = None if healthy else self.clock.now()

    def set_task_health(self, task_id: str, healthy: bool) -> None:
        with self.state.lock:
            for app in self.state.apps.values():
                for task in app.tasks:
                    if task.id == task_id:
                        task.unhealthy = not healthy

    def overload(self, seconds: float) -> None:
        """The host is overloaded: every health check fails from now for `seconds`."""
        with self.state.lock:
            now = self.clock.now()
            self.state.overloaded = (now, now + seconds)

    def mark_unreachable(self, task_id: str) -> None:
        with self.state.lock:
            for app in self.state.apps.values():
                for task in app.tasks:
                    if task.id == task_id:
                        task.state = "TASK_UNREACHABLE"

    def instances(self, app_id: str) -> int:
        with self.state.lock:
            return int(self.state.apps[normalize_id(app_id) or app_id].definition["instances"])

    def running(self, app_id: str) -> int:
        with self.state.lock:
            self.state.progress()
            app = self.state.apps.get(normalize_id(app_id) or app_id)
            return 0 if app is None else sum(1 for t in app.tasks if t.state == "TASK_RUNNING")

    def app_ids(self) -> list[str]:
        with self.state.lock:
            return sorted(self.state.apps)

    def kills(self) -> list[dict[str, Any]]:
        """Task kills requested through the API (DELETE .../tasks/...), from the request log."""
        return [r for r in self.requests if r["method"] == "DELETE" and "/tasks/" in r["path"]]

    # -- API ----------------------------------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict[str, list[str]], raw: bytes,
               handler: _Handler) -> tuple[int, Any, str]:
        state = self.state
        if path == "/v2/events" and method == "GET":
            self._stream_events(handler, query)
            raise _Streamed
        with state.lock:
            state.progress()
            if path == "/ping":
                return 200, "pong", "text/plain"
            if path == "/v2/leader":
                if method == "DELETE":
                    others = [i for i in range(self.instance_count) if i != self.leader_index and self.serving(i)]
                    self.leader_index = others[0] if others else None
                    return 200, {"message": "Leadership abdicated"}, "application/json"
                leader = self.urls[self.leader_index] if self.leader_index is not None else None
                if leader is None:
                    return 404, {"message": "There is no leader"}, "application/json"
                return 200, {"leader": leader.split("//", 1)[1]}, "application/json"
            if path == "/v2/info":
                leader = self.urls[self.leader_index].split("//", 1)[1] if self.leader_index is not None else None
                return 200, {"name": "marathon", "version": "1.10.17-fake", "elected": True, "leader": leader,
                             "frameworkId": state.framework_id,
                             "marathon_config": {"master": "zk://zookeeper:2181/mesos", "task_launch_timeout": 300000},
                             "http_config": {"http_port": 8080}}, "application/json"
            if path == "/metrics/prometheus":
                lines = [
                    "# TYPE marathon_apps_active gauge", f"marathon_apps_active {len(state.apps)}",
                    "# TYPE marathon_deployments_active gauge", f"marathon_deployments_active {len(state.deployments)}",
                    "# TYPE marathon_http_requests_total counter", f"marathon_http_requests_total {self.request_count}",
                ]
                return 200, "\n".join(lines) + "\n", "text/plain; version=0.0.4"
            if path == "/v2/deployments" and method == "GET":
                return 200, [state.deployment_json(d) for d in state.deployments.values()], "application/json"
            if path.startswith("/v2/deployments/") and method == "DELETE":
                deployment = state.deployments.pop(path.rsplit("/", 1)[1], None)
                if deployment is None:
                    return 404, {"message": "DeploymentPlan not found"}, "application/json"
                app = state.apps.get(deployment.app_id)
                if app is not None and app.deployment is deployment:
                    app.deployment = None
                return 202, {"deploymentId": str(uuid.uuid4()), "version": state.stamp()}, "application/json"
            if path == "/v2/tasks" and method == "GET":
                now = state.clock.now()
                return 200, {"tasks": [state.task_json(a, t, now) for a in state.apps.values() for t in a.tasks]}, \
                    "application/json"
            if path == "/v2/apps":
                if method == "GET":
                    return 200, {"apps": self._list_apps(query)}, "application/json"
                if method == "POST":
                    body = self._body(raw)
                    if body is None:
                        return 400, {"message": "Invalid JSON"}, "application/json"
                    app_id = normalize_id(body.get("id"))
                    if app_id in state.apps:
                        return 409, {"message": f"An app with id [{app_id}] already exists."}, "application/json"
                    return self._put_app(app_id, body, query, created_status=201)
            if path.startswith("/v2/apps/"):
                return self._app_route(method, path[len("/v2/apps"):], query, raw)
            return 404, {"message": f"Not found: {path}"}, "application/json"

    def _list_apps(self, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        embed = {e for value in query.get("embed", []) for e in value.split(",")}
        embed_tasks = "apps.tasks" in embed
        id_filter = (query.get("id") or [""])[-1]
        label = (query.get("label") or [""])[-1]
        out = []
        for app_id, app in sorted(self.state.apps.items()):
            if id_filter and id_filter not in app_id:
                continue
            if label:
                key, sep, value = label.partition("==")
                labels = app.definition.get("labels") or {}
                if key not in labels or (sep and labels[key] != value):
                    continue
            out.append(self.state.app_json(app, embed_tasks))
        return out

    @staticmethod
    def _body(raw: bytes) -> dict[str, Any] | None:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _app_route(self, method: str, rest: str, query: dict[str, list[str]], raw: bytes) -> tuple[int, Any, str]:
        state = self.state
        force = (query.get("force") or ["false"])[-1] == "true"
        if "/tasks/" in rest:
            app_part, task_id = rest.rsplit("/tasks/", 1)
            suffix = "task"
        elif rest.endswith("/tasks"):
            app_part, task_id, suffix = rest[: -len("/tasks")], "", "tasks"
        elif rest.endswith("/restart"):
            app_part, task_id, suffix = rest[: -len("/restart")], "", "restart"
        else:
            app_part, task_id, suffix = rest, "", ""
        app_id = normalize_id(urllib.parse.unquote(app_part))
        app = state.apps.get(app_id or "")
        if suffix == "" and method in ("PUT", "PATCH"):
            body = self._body(raw)
            if body is None:
                return 400, {"message": "Invalid JSON"}, "application/json"
            return self._put_app(app_id, body, query, created_status=201, force=force,
                                 partial=(query.get("partialUpdate") or ["true"])[-1] != "false")
        if app is None or app_id is None:
            return 404, {"message": f"App '{app_id or app_part}' does not exist"}, "application/json"
        now = state.clock.now()
        if suffix == "" and method == "GET":
            return 200, {"app": state.app_json(app, embed_tasks=True)}, "application/json"
        if suffix == "tasks" and method == "GET":
            return 200, {"tasks": [state.task_json(app, t, now) for t in app.tasks]}, "application/json"
        if suffix == "task" and method == "DELETE":
            task_id = urllib.parse.unquote(task_id)
            task = next((t for t in app.tasks if t.id == task_id), None)
            if task is None:
                return 404, {"message": f"Task '{task_id}' does not exist"}, "application/json"
            scale = (query.get("scale") or ["false"])[-1] == "true"
            if scale:
                if app.deployment is not None and not force:
                    return self._locked(app)
                state._kill(app, task)
                app.definition["instances"] = max(0, int(app.definition["instances"]) - 1)
                app.version = app.scaling_version = state.stamp()
                deployment = state.start_deployment(app, "ScaleApplication")
                return 200, {"deploymentId": deployment.id, "version": app.version}, "application/json"
            body = {"task": state.task_json(app, task, now)}
            state._kill(app, task)
            app.next_launch = now + state.step_seconds
            return 200, body, "application/json"
        if app.deployment is not None and not force and method in ("DELETE", "POST"):
            return self._locked(app)
        if suffix == "restart" and method == "POST":
            app.version = app.config_version = state.stamp()
            deployment = state.start_deployment(app, "RestartApplication")
            return 200, {"deploymentId": deployment.id, "version": app.version}, "application/json"
        if suffix == "" and method == "DELETE":
            app.definition["instances"] = 0
            deployment = state.start_deployment(app, "StopApplication")
            return 200, {"deploymentId": deployment.id, "version": state.stamp()}, "application/json"
        return 405, {"message": "Method not allowed"}, "application/json"

    def _locked(self, app: _App) -> tuple[int, Any, str]:
        assert app.deployment is not None
        return 409, {"deployments": [{"id": app.deployment.id}], "message": LOCKED_MESSAGE}, "application/json"

    def _put_app(self, app_id: str | None, body: dict[str, Any], query: dict[str, list[str]], *,
                 created_status: int, force: bool = False, partial: bool = True) -> tuple[int, Any, str]:
        state = self.state
        if app_id is None or ("id" in body and normalize_id(body["id"]) not in (None, app_id)):
            return 422, {"message": "Object is not valid",
                         "details": [{"path": "/id", "errors": ["error.path.invalid"]}]}, "application/json"
        body = {**body, "id": app_id}
        errors = _validate(body)
        if errors:
            return 422, {"message": "Object is not valid", "details": errors}, "application/json"
        app = state.apps.get(app_id)
        if app is None:
            stored = with_defaults(body, state)
            version = state.stamp()
            app = _App(definition=stored, version=version, config_version=version, scaling_version=version)
            state.apps[app_id] = app
            deployment = state.start_deployment(app, "StartApplication")
            return created_status, {"deploymentId": deployment.id, "version": version}, "application/json"
        if app.deployment is not None and not force:
            return self._locked(app)
        old = app.definition
        base = old if partial else {"id": app_id}
        merged = {**{k: v for k, v in base.items()}, **body}
        if not partial or "healthChecks" in body or "portDefinitions" in body or "container" in body:
            merged = with_defaults(merged, state)
        if not partial or any(k != "instances" for k in body if k != "id"):
            config_changed = {k: v for k, v in merged.items() if k != "instances"} != \
                {k: v for k, v in old.items() if k != "instances"}
        else:
            config_changed = False
        app.definition = merged
        app.version = state.stamp()
        if config_changed:
            app.config_version = app.version
            action = "RestartApplication"
        else:
            app.scaling_version = app.version
            action = "ScaleApplication"
        deployment = state.start_deployment(app, action)
        return 200, {"deploymentId": deployment.id, "version": app.version}, "application/json"

    def _stream_events(self, handler: _Handler, query: dict[str, list[str]]) -> None:
        wanted = set(query.get("event_type", []))
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        state = self.state
        with state.lock:
            seq = state.event_seq
        try:
            handler.wfile.write(b"event: event_stream_attached\ndata: {}\n\n")
            handler.wfile.flush()
            while True:
                with state.lock:
                    state.progress()
                    pending = [e for e in state.events if e[0] > seq]
                    if not pending:
                        if state.stopping or not self.serving(handler.server.index):
                            return
                        state.events_changed.wait(timeout=0.2)
                        continue
                for number, event_type, payload in pending:
                    seq = number
                    if wanted and event_type not in wanted:
                        continue
                    handler.wfile.write(f"event: {event_type}\ndata: {json.dumps(payload)}\n\n".encode())
                handler.wfile.flush()
        except OSError:
            return


def serve_demo(apps: list[dict[str, Any]], *, instances: int = 1, step_seconds: float = 2.0,
               health_delay: float = 3.0, on_start: Callable[[FakeMarathon], None] | None = None) -> FakeMarathon:
    """Start a real-time fake with the given apps running (the API's `--demo-topology` mode). Caller stops it."""
    fake = FakeMarathon(instances, step_seconds=step_seconds, health_delay=health_delay).start()
    for app in apps:
        fake.add_app(app)
    if on_start:
        on_start(fake)
    return fake
