"""The FastAPI application: routes of contracts/api.py ROUTES, authorization from that table, audit, metrics.

Three rules are enforced in one place each, so no handler can forget them:
- **Authorization** (`_authorize`, a dependency of every `/api/v1` route) looks the matched route up in
  `ROUTES` and checks its access level; a route missing from the table is refused at startup.
- **Audit and metrics** (`_Observe`, an ASGI middleware) write one audit line per call of a mutating route
  and per failed authentication, and record every HTTP request in the canary's metric contract by route
  template — WebSocket connections are counted apart, never in the latency histogram.
- **Errors** (exception handlers) answer `{"detail", "request_id"}`: never a stack trace, never a 500 for
  bad input.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request, WebSocket
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from orchestrator.contracts import api as contract
from orchestrator.contracts.api import (
    API_PREFIX,
    GROUP_BY,
    AuditPage,
    Conflict,
    ErrorBody,
    LoginRequest,
    LogoutRequest,
    MarathonApp,
    NodeDetails,
    OperationResult,
    PolicyEdit,
    ProbeInfo,
    RefreshRequest,
    RestartRequest,
    Role,
    ScaleRequest,
    TokenResponse,
    TopologyView,
    View,
    ViewSummary,
    WhoAmI,
)
from orchestrator.contracts.report import (
    MAX_BODY_BYTES,
    MAX_DECOMPRESSED_BYTES,
    ReportAck,
    ReportError,
    parse_report_json,
)
from orchestrator.contracts.search import SearchError, parse
from orchestrator.contracts.service_metrics import LIVENESS_PATH, METRICS_PATH, READINESS_PATH, ServiceMetrics
from orchestrator.services.api.audit import AuditLog
from orchestrator.services.api.auth import (
    LoginLimiter,
    Principal,
    TokenError,
    check_login,
    issue,
    verify,
)
from orchestrator.services.api.config import ApiConfig, Reloading, SigningKeys
from orchestrator.services.api.hub import Hub
from orchestrator.services.api.marathon_ops import (
    MemoryPolicyStore,
    PolicyError,
    PolicyStore,
    PolicyUnavailable,
    app_summary,
)
from orchestrator.services.api.status import StatusService
from orchestrator.services.api.topology import DeltaBaseMismatch, Topology
from orchestrator.services.api.views import ViewCache

# What each mutating route is called in the audit log.
ACTIONS = {
    f"{API_PREFIX}/login": "login",
    f"{API_PREFIX}/refresh": "token.refresh",
    f"{API_PREFIX}/logout": "logout",
    f"{API_PREFIX}/marathon/apps/{{app_id}}/scale": "marathon.scale",
    f"{API_PREFIX}/marathon/apps/{{app_id}}/restart": "marathon.restart",
    f"{API_PREFIX}/marathon/apps/{{app_id}}/policy": "marathon.policy",
}
AppIdParam = Annotated[str, PathParam(min_length=1, max_length=512, description="Marathon app id: group/app")]
_BEARER = HTTPBearer(auto_error=False, description="An access token (login) or an API token")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in (
        (400, "Bad request"), (401, "Missing, invalid, expired or revoked token"),
        (403, "The token's role or scope may not call this route"), (404, "Not found"),
        (422, "Invalid request"), (429, "Too many attempts"), (502, "A platform service answered badly"),
        (503, "A platform service is unreachable or not configured"))
}


@dataclass
class ApiState:
    config: Reloading[ApiConfig]
    keys: Reloading[SigningKeys]
    topology: Topology = field(default_factory=Topology)
    audit: AuditLog = field(default_factory=lambda: AuditLog(contract.AUDIT_WINDOW))
    limiter: LoginLimiter = field(default_factory=lambda: LoginLimiter(5, 20, 300.0))
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    marathon: Any | None = None            # orchestrator.clients.marathon.MarathonClient
    policies: PolicyStore = field(default_factory=MemoryPolicyStore)
    status: StatusService | None = None
    revoked: set[str] = field(default_factory=set)   # logged-out refresh/access token ids (this replica)
    hub: Hub | None = None
    ready: bool = False
    extra_background: list[Callable[[], Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        r = self.metrics.registry
        self.reports = Counter("orchestrator_reports", "Probe reports received, by outcome", ["outcome"],
                               registry=r)
        self.report_bytes = Counter("orchestrator_report_bytes", "Bytes of probe reports received (on the wire)",
                                    registry=r)
        self.ws_connections = Counter("orchestrator_websocket_connections",
                                      "WebSocket upgrades accepted (not requests: not in the latency histogram)",
                                      registry=r)
        self.ws_subscribers = Gauge("orchestrator_websocket_subscribers", "Live topology subscriptions",
                                    registry=r)
        self.renders = Counter("orchestrator_topology_renders", "View renders for WebSocket subscribers",
                               ["view"], registry=r)
        self.audit_lines = Counter("orchestrator_audit_entries", "Audit lines written", ["outcome"], registry=r)
        r.register(_ProbeCollector(self.topology))
        self.views = ViewCache(self.topology)
        self.hub = Hub(self.topology, on_render=lambda view: self.renders.labels(view).inc(), views=self.views)
        self.views.on_stale = self.hub.notify


class _ProbeCollector(Collector):
    """`orchestrator_probe_last_report_timestamp_seconds{probe}` for every probe this replica has heard from
    (kept after it goes silent, so the ProbeOffline alert keeps firing), and probes by state."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology

    def collect(self) -> Any:
        last = GaugeMetricFamily("orchestrator_probe_last_report_timestamp_seconds",
                                 "When this API replica last received a report from the probe (unix seconds)",
                                 labels=["probe"])
        states = GaugeMetricFamily("orchestrator_probes", "Probes known to this replica, by state", labels=["state"])
        counts = {"ok": 0, "stale": 0, "offline": 0}
        now = time.time()
        for p in list(self.topology.probes.values()):
            last.add_metric([p.probe_id], p.received)
            counts[p.state(now)] += 1
        for state, n in counts.items():
            states.add_metric([state], n)
        yield last
        yield states


MARATHON_REFRESH_SECONDS = 15.0


async def _refresh_marathon_apps(state: ApiState) -> None:
    """Marathon's apps (instances, running, healthy) for the marathon-apps view, every 15 s: apps without a
    running task still appear, and each node shows what Marathon wants next to what the probes see."""
    from orchestrator.errors import OrchestratorError

    client = state.marathon
    assert client is not None

    def fetch() -> dict[str, dict[str, Any]]:
        return {a.id: {"instances": a.instances, "running": a.tasksRunning, "healthy": a.tasksHealthy}
                for a in client.list_apps(embed_tasks=False)}

    while True:
        # On an error the status route reports Marathon's trouble; the view keeps the last known apps.
        with contextlib.suppress(OrchestratorError):
            apps = await anyio.to_thread.run_sync(fetch)
            if apps != state.topology.marathon_apps:
                state.topology.set_marathon_apps(apps)
        await asyncio.sleep(MARATHON_REFRESH_SECONDS)


def _request_id(scope: Scope) -> str:
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        state["request_id"] = uuid.uuid4().hex[:16]
    return str(state["request_id"])


def _source(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class _Observe:
    """Metrics, request ids and the audit log, for every request (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp, state: ApiState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            self.state.ws_connections.inc()
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500
        observed = False

        def template() -> str:
            marked = scope.get("state", {}).get("route_template")
            if marked:
                return str(marked)
            route = scope.get("route")
            # Unknown paths share one label (the label's values stay few); "" is the static UI mount.
            return "unmatched" if route is None else template_of(route) or "/{ui}"

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                self.state.metrics.observe(scope["method"], template(), status, time.perf_counter() - started)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                # Written before the client can see the answer: whoever reads the log after a response
                # finds its line.
                self._audit(scope, template(), status, request_id)
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                observe()
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            # A bug: the outer error middleware answers 500; record it here, where the route is known.
            if not observed:
                self._audit(scope, template(), 500, request_id)
            raise
        finally:
            observe()

    def _audit(self, scope: Scope, template: str, status: int, request_id: str) -> None:
        st = scope.get("state", {})
        action = ACTIONS.get(template) if scope["method"] != "GET" else None
        if action is None and status != 401:
            return
        principal: Principal | None = st.get("principal")
        info: dict[str, Any] = st.get("audit", {})
        outcome = ("ok" if status < 400 else "denied" if status in (401, 403, 429) else "conflict"
                   if status == 409 else "failed" if status >= 500 else "invalid")
        entry = self.state.audit.record(
            actor=info.get("actor") or (principal.account if principal else "anonymous"),
            role=(principal.role.value if principal and principal.role else
                  principal.scope if principal else info.get("role")),
            action=action or f"auth {scope['method']} {template}",
            target=info.get("target") or (scope.get("path_params") or {}).get("app_id"),
            outcome=outcome, request_id=request_id, source=_source(scope),
            detail=info.get("detail") or (f"HTTP {status}" if status >= 400 else None))
        self.state.audit_lines.labels(entry.outcome).inc()


def _error(status: int, detail: str, request: Request, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "request_id": _request_id(request.scope)}, status_code=status,
                        headers=headers)


def create_app(state: ApiState, *, ui_dir: str | None = None) -> FastAPI:
    async def _authorize(request: Request,
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        entry = _ROUTE_TABLE.get((request.method, template_of(request.scope.get("route"))))
        if entry is None:   # not reachable: startup checks that every route has an entry
            raise HTTPException(403, "route without an access rule")
        if entry.access == "public":
            return
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        try:
            principal = verify(credentials.credentials, state.keys.get(), state.config.get(),
                               kinds=("access", "api"), revoked=state.revoked)
        except TokenError as exc:
            request.state.audit = {"detail": str(exc)}
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
        request.state.principal = principal
        if entry.access in contract.SCOPES:
            if principal.scope != entry.access:
                raise HTTPException(403, f"this route needs a token with scope {entry.access}")
            return
        if principal.scope is not None:
            raise HTTPException(403, f"a token with scope {principal.scope} may only call its scope's routes")
        if principal.role is None or not principal.role.allows(Role(entry.access)):
            raise HTTPException(403, f"this route needs the {entry.access} role")

    def principal_of(request: Request) -> Principal:
        p: Principal = request.state.principal
        return p

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert state.hub is not None
        state.hub.start()
        tasks = [anyio_task for start in state.extra_background if (anyio_task := start()) is not None]
        if state.marathon is not None:
            tasks.append(asyncio.get_running_loop().create_task(_refresh_marathon_apps(state)))
        state.ready = True
        try:
            yield
        finally:
            state.ready = False
            for t in tasks:
                t.cancel()
            await state.hub.stop()

    app = FastAPI(title="orchestrator API", version="1", lifespan=lifespan,
                  description="The platform's control plane. Routes, roles and payloads: docs/api.md.")
    app.add_middleware(_Observe, state=state)  # type: ignore[arg-type]

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.detail, dict):
            return JSONResponse({**exc.detail, "request_id": _request_id(request.scope)},
                                status_code=exc.status_code, headers=exc.headers)
        return _error(exc.status_code, str(exc.detail), request, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        err = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        request.scope.setdefault("state", {}).setdefault("audit", {"detail": f"{where}: {err.get('msg')}"})
        return _error(422, f"{where}: {err.get('msg')}" if where else str(err.get("msg")), request)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> Response:
        print(f"orchestrator api: internal error on {request.method} {request.url.path}: "
              f"{type(exc).__name__}: {exc} (request {_request_id(request.scope)})", file=sys.stderr, flush=True)
        return _error(500, "internal error; the request id is in the server's log", request)

    router = _Routes(app, Depends(_authorize))

    # ---------------------------------------------------------------------------------------- accounts
    def _tokens(account: str, role: Role, with_refresh: bool) -> TokenResponse:
        keys = state.keys.get()
        access, _, _ = issue(keys, account=account, kind="access", role=role, ttl=contract.ACCESS_TOKEN_TTL_SECONDS)
        refresh = None
        if with_refresh:
            refresh, _, _ = issue(keys, account=account, kind="refresh", role=role,
                                  ttl=contract.REFRESH_TOKEN_TTL_SECONDS)
        return TokenResponse(access_token=access, expires_in=contract.ACCESS_TOKEN_TTL_SECONDS,
                             refresh_token=refresh,
                             refresh_expires_in=contract.REFRESH_TOKEN_TTL_SECONDS if refresh else None,
                             account=account, role=role)

    @router.post("/login", response_model=TokenResponse, summary=contract.route("POST", f"{API_PREFIX}/login").summary)
    async def login(body: LoginRequest, request: Request) -> Any:
        source = request.client.host if request.client else "unknown"
        request.state.audit = {"actor": body.account, "target": body.account}
        wait = state.limiter.retry_after(body.account, source)
        if wait > 0:
            request.state.audit["detail"] = "rate limited"
            raise HTTPException(429, "too many failed logins; try again later",
                                headers={"Retry-After": str(int(wait) + 1)})
        config = state.config.get()
        role = await anyio.to_thread.run_sync(check_login, config, body.account, body.password)
        if role is None:
            state.limiter.failed(body.account, source)
            request.state.audit["detail"] = "wrong account or password"
            raise HTTPException(401, "wrong account or password")
        state.limiter.succeeded(body.account)
        request.state.audit["role"] = role.value
        return _tokens(body.account, role, with_refresh=True)

    @router.post("/refresh", response_model=TokenResponse,
                 summary=contract.route("POST", f"{API_PREFIX}/refresh").summary)
    async def refresh(body: RefreshRequest, request: Request) -> Any:
        try:
            p = verify(body.refresh_token, state.keys.get(), state.config.get(), kinds=("refresh",),
                       revoked=state.revoked)
        except TokenError as exc:
            request.state.audit = {"detail": str(exc)}
            raise HTTPException(401, str(exc)) from None
        assert p.role is not None
        request.state.audit = {"actor": p.account, "role": p.role.value}
        return _tokens(p.account, p.role, with_refresh=False)

    @router.post("/logout", status_code=204, response_class=Response,
                 summary=contract.route("POST", f"{API_PREFIX}/logout").summary)
    async def logout(request: Request, body: Annotated[LogoutRequest | None, Body()] = None) -> Response:
        p = principal_of(request)
        state.revoked.add(p.token_id)
        if body is not None and body.refresh_token is not None:
            try:
                r = verify(body.refresh_token, state.keys.get(), state.config.get(), kinds=("refresh",))
                if r.account == p.account:
                    state.revoked.add(r.token_id)
            except TokenError:
                pass   # already invalid: nothing to revoke
        return Response(status_code=204)

    @router.get("/whoami", response_model=WhoAmI)
    async def whoami(request: Request) -> Any:
        p = principal_of(request)
        return WhoAmI(account=p.account, role=p.role, scope=p.scope, token_id=p.token_id, expires_at=p.expires_at)

    # ---------------------------------------------------------------------------------------- ingest
    report_schema = {"oneOf": [{"$ref": "#/components/schemas/FullReport"},
                               {"$ref": "#/components/schemas/DeltaReport"}]}

    @router.post("/reports", response_model=ReportAck,
                 responses={409: {"model": ReportAck, "description": "Delta base unknown: send a full report"},
                            413: {"model": ErrorBody, "description": "Body too large"},
                            415: {"model": ErrorBody, "description": "Not application/json"}},
                 openapi_extra={"requestBody": {"required": True,
                                                "content": {"application/json": {"schema": report_schema}}}})
    async def ingest(request: Request) -> Any:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            state.reports.labels("rejected").inc()
            raise HTTPException(415, "reports are application/json (optionally Content-Encoding: gzip)")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            state.reports.labels("too_large").inc()
            raise HTTPException(413, f"a report body is at most {MAX_BODY_BYTES} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                state.reports.labels("too_large").inc()
                raise HTTPException(413, f"a report body is at most {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
        state.report_bytes.inc(size)
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding == "gzip":
            inflater = zlib.decompressobj(wbits=31)
            try:
                body = inflater.decompress(body, MAX_DECOMPRESSED_BYTES + 1)
            except zlib.error:
                state.reports.labels("rejected").inc()
                raise HTTPException(422, "body: not valid gzip") from None
            if len(body) > MAX_DECOMPRESSED_BYTES or inflater.unconsumed_tail:
                state.reports.labels("too_large").inc()
                raise HTTPException(413, f"a report is at most {MAX_DECOMPRESSED_BYTES} bytes decompressed")
        elif encoding not in ("identity", ""):
            state.reports.labels("rejected").inc()
            raise HTTPException(415, f"Content-Encoding {encoding!r} is not supported (gzip or none)")
        try:
            report = parse_report_json(body)
        except ReportError as exc:
            state.reports.labels("rejected").inc()
            raise HTTPException(422, str(exc)) from None
        try:
            state.topology.ingest(report)
        except DeltaBaseMismatch:
            state.reports.labels("resync").inc()
            return JSONResponse(ReportAck(probe_id=report.probe_id, seq=report.seq, next="full").model_dump(),
                                status_code=409)
        state.reports.labels("accepted").inc()
        assert state.hub is not None
        state.hub.notify()
        return ReportAck(probe_id=report.probe_id, seq=report.seq)

    # ---------------------------------------------------------------------------------------- topology
    @router.get("/probes", response_model=list[ProbeInfo])
    async def probes() -> Any:
        return JSONResponse(state.topology.probe_infos())

    @router.get("/topology", response_model=list[ViewSummary])
    async def views() -> Any:
        return JSONResponse(state.topology.summary())

    @router.get("/topology/{view}", response_model=TopologyView)
    async def topology_view(request: Request, view: View,
                            search: Annotated[str, Query(max_length=contract.MAX_SEARCH_CHARS,
                                                         description="Search grammar: docs/api.md")] = "",
                            group_by: Annotated[str | None, Query(max_length=64)] = None) -> Any:
        if group_by is not None and group_by not in GROUP_BY[view]:
            raise HTTPException(400, f"group_by: {view} can be grouped by "
                                     f"{', '.join(GROUP_BY[view]) or 'nothing'}")
        try:
            parse(search)
        except SearchError as exc:
            raise HTTPException(400, f"search: {exc}") from None
        # One render per view, search and grouping per tick, kept ready by the hub (views.py).
        doc = await state.views.get(view, search, group_by)
        if doc.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            return Response(doc.gzipped, media_type="application/json",
                            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"})
        return Response(doc.text, media_type="application/json", headers={"Vary": "Accept-Encoding"})

    @router.get("/topology/{view}/nodes/{node_id:path}", response_model=NodeDetails)
    async def node_details(view: View, node_id: Annotated[str, PathParam(min_length=1, max_length=600)]) -> Any:
        details = state.topology.details(view, node_id)
        if details is None:
            raise HTTPException(404, f"no node {node_id!r} in the {view} view")
        return JSONResponse(details)

    # ---------------------------------------------------------------------------------------- status
    def _status() -> StatusService:
        if state.status is None:
            raise HTTPException(503, "status is not configured")
        return state.status

    @router.get("/status", response_model=contract.PlatformStatus)
    async def status_all() -> Any:
        return JSONResponse(await _status().all())

    part_models = {"zookeeper": contract.ZooKeeperStatus, "mesos": contract.MesosStatus,
                   "marathon": contract.MarathonStatus, "zk-sync": contract.SyncStatus,
                   "canary": contract.CanaryStatus}
    for part_name in contract.STATUS_PARTS:
        def _make(name: str) -> Callable[[], Any]:
            async def status_part() -> Any:
                return JSONResponse(await _status().part(name))
            status_part.__name__ = f"status_{name.replace('-', '_')}"
            return status_part
        router.add_api_route(f"/status/{part_name}", _make(part_name), methods=["GET"],
                             response_model=part_models[part_name], summary=f"Platform status: {part_name}")

    # ---------------------------------------------------------------------------------------- Marathon
    def _client() -> Any:
        if state.marathon is None:
            raise HTTPException(503, "Marathon is not configured")
        return state.marathon

    def _marathon_call(fn: Callable[[], Any], request: Request, app_id: str | None = None) -> Any:
        from orchestrator.clients.marathon import AppNotFound, DeploymentLocked, MarathonError
        from orchestrator.errors import InputError, UnreachableError

        try:
            return fn()
        except PolicyUnavailable as exc:
            raise HTTPException(503, f"autoscaling policies unavailable: {exc}") from None
        except AppNotFound:
            raise HTTPException(404, f"no Marathon app {app_id!r}") from None
        except DeploymentLocked as exc:
            request.state.audit = {**getattr(request.state, "audit", {}), "detail": "locked by a deployment"}
            raise HTTPException(409, {"detail": f"{app_id} is locked by a deployment in flight; it was not "
                                                "forced (pass force: true to cancel that deployment)",
                                      "deployments": exc.deployment_ids}) from None
        except InputError as exc:
            raise HTTPException(400, str(exc)) from None
        except UnreachableError as exc:
            raise HTTPException(503, f"Marathon unreachable: {exc}") from None
        except MarathonError as exc:
            raise HTTPException(502, f"Marathon answered: {exc}") from None

    @router.get("/marathon/apps", response_model=list[MarathonApp])
    async def marathon_apps(request: Request) -> Any:
        client = _client()

        def work() -> Any:
            policies = state.policies.policies()
            apps = client.list_apps(embed_tasks=False)
            return [app_summary(a, policies.get(a.id)) for a in apps]

        return JSONResponse(await anyio.to_thread.run_sync(lambda: _marathon_call(work, request)))

    def _normalized(app_id: str) -> str:
        from orchestrator.clients.marathon import normalize_app_id
        from orchestrator.errors import InputError

        try:
            return normalize_app_id(app_id)
        except InputError as exc:
            raise HTTPException(404, f"no Marathon app {app_id!r}: {exc}") from None

    @router.post("/marathon/apps/{app_id:path}/scale", response_model=OperationResult,
                 responses={409: {"model": Conflict, "description": "Deployment in flight, or autoscaled app"}})
    async def scale(app_id: AppIdParam, body: ScaleRequest, request: Request) -> Any:
        request.state.audit = {"target": app_id, "detail": f"instances={body.instances} force={body.force}"}
        client = _client()
        norm = _normalized(app_id)
        request.state.audit["target"] = norm

        def work() -> Any:
            if norm in state.policies.policies():
                raise HTTPException(409, {"detail": f"{norm} is autoscaled: edit its policy's bounds or pause it "
                                                    "instead of scaling it", "deployments": []})
            return client.scale(norm, body.instances, force=body.force)

        deployment = await anyio.to_thread.run_sync(lambda: _marathon_call(work, request, norm))
        return OperationResult(app_id=norm, deployment_id=deployment or None)

    @router.post("/marathon/apps/{app_id:path}/restart", response_model=OperationResult,
                 responses={409: {"model": Conflict, "description": "Deployment in flight"}})
    async def restart(app_id: AppIdParam, request: Request,
                      body: Annotated[RestartRequest | None, Body()] = None) -> Any:
        force = bool(body and body.force)
        request.state.audit = {"target": app_id, "detail": f"force={force}"}
        client = _client()
        norm = _normalized(app_id)
        request.state.audit["target"] = norm
        deployment = await anyio.to_thread.run_sync(
            lambda: _marathon_call(lambda: client.restart(norm, force=force), request, norm))
        return OperationResult(app_id=norm, deployment_id=deployment or None)

    @router.patch("/marathon/apps/{app_id:path}/policy", response_model=contract.AutoscalePolicy)
    async def edit_policy(app_id: AppIdParam, body: PolicyEdit, request: Request) -> Any:
        request.state.audit = {"target": app_id, "detail": json.dumps(body.model_dump(exclude_none=True))}
        norm = _normalized(app_id)
        request.state.audit["target"] = norm

        def work() -> Any:
            try:
                return state.policies.edit(norm, body)
            except PolicyError as exc:
                raise HTTPException(400, str(exc)) from None
            except PolicyUnavailable as exc:
                raise HTTPException(503, f"autoscaling policies unavailable: {exc}") from None

        updated = await anyio.to_thread.run_sync(work)
        if updated is None:
            raise HTTPException(404, f"{norm} has no autoscaling policy")
        return updated

    # ---------------------------------------------------------------------------------------- audit
    @router.get("/audit", response_model=AuditPage)
    async def audit(limit: Annotated[int, Query(ge=1, le=contract.AUDIT_WINDOW)] = 1000) -> Any:
        return AuditPage(entries=state.audit.entries(limit), window=state.audit.window)

    # ---------------------------------------------------------------------------------------- websocket
    from orchestrator.services.api.live import websocket_endpoint

    @app.websocket(contract.API_PREFIX + "/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket_endpoint(websocket, state)

    # ---------------------------------------------------------------------------------------- operations
    @app.get(LIVENESS_PATH, include_in_schema=True, summary="Liveness", response_class=Response)
    async def healthz() -> Response:
        return Response("ok\n", media_type="text/plain")

    @app.get(READINESS_PATH, summary="Readiness: config and signing key loaded", response_class=Response,
             responses={503: {"description": "Not ready"}})
    async def readyz() -> Response:
        ok = state.ready and state.config.value is not None and bool(state.keys.value.keys)
        return Response("ready\n" if ok else "not ready\n", status_code=200 if ok else 503, media_type="text/plain")

    @app.get(METRICS_PATH, summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        state.ws_subscribers.set(state.hub.subscriber_count if state.hub else 0)
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    if ui_dir and Path(ui_dir).is_dir():
        from starlette.staticfiles import StaticFiles

        static = StaticFiles(directory=ui_dir, html=True)

        async def ui(scope: Scope, receive: Receive, send: Send) -> None:
            # The metrics label of every UI file (the router does not report mounts as routes).
            scope.setdefault("state", {})["route_template"] = "/{ui}"
            await static(scope, receive, send)

        app.mount("/", ui, name="ui")

    _check_route_table(app)
    return app


class _Routes:
    """Registers `/api/v1` routes on the app itself with the authorization dependency and the error
    responses (FastAPI 0.165 resolves included routers lazily and reports the route without its prefix)."""

    def __init__(self, app: FastAPI, authorize: Any) -> None:
        self.app, self.authorize = app, authorize

    def _kw(self, kw: dict[str, Any]) -> dict[str, Any]:
        return {**kw, "dependencies": [self.authorize], "responses": {**_ERRORS, **kw.get("responses", {})}}

    def get(self, path: str, **kw: Any) -> Callable[[Any], Any]:
        return self.app.get(API_PREFIX + path, **self._kw(kw))

    def post(self, path: str, **kw: Any) -> Callable[[Any], Any]:
        return self.app.post(API_PREFIX + path, **self._kw(kw))

    def patch(self, path: str, **kw: Any) -> Callable[[Any], Any]:
        return self.app.patch(API_PREFIX + path, **self._kw(kw))

    def add_api_route(self, path: str, endpoint: Any, **kw: Any) -> None:
        self.app.add_api_route(API_PREFIX + path, endpoint, **self._kw(kw))


_ROUTE_TABLE: dict[tuple[str, str], contract.Route] = {(r.method, r.path): r for r in contract.ROUTES}


def template_of(route: Any) -> str:
    """The route's template as the contract writes it (`{app_id}`, not Starlette's `{app_id:path}`)."""
    return str(getattr(route, "path", "")).replace(":path}", "}")


def _check_route_table(app: FastAPI) -> None:
    """Every /api/v1 route must be in the contract's table, and every table entry must be served."""
    served = set()
    for route in app.routes:
        path = getattr(route, "path", "")
        if not path.startswith(API_PREFIX):
            continue
        methods = getattr(route, "methods", None) or {"WEBSOCKET"}
        for method in methods:
            served.add((method, template_of(route)))
    table = set(_ROUTE_TABLE)
    if served != table:
        raise RuntimeError(f"routes without a table entry: {sorted(served - table)}; "
                           f"table entries not served: {sorted(table - served)}")
