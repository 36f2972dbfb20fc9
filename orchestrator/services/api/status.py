"""Platform status, one part at a time: ZooKeeper (4-letter words), Mesos (the master's HTTP API),
Marathon (the one client), the sync engine (its /metrics) and the canary gates (Prometheus queries).

Each part is cached for `status_cache_seconds` so that many browsers do not multiply the load on the
platform (Mesos's /master/state is expensive; DC/OS's UI learnt that the hard way). A part that cannot be
reached is reported as such (`critical` or `unknown` with the reason), never as an API error.
"""
from __future__ import annotations

import asyncio
import math
import re
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
import httpx
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.contracts.api import STATUS_PARTS
from orchestrator.errors import OrchestratorError
from orchestrator.services.api.config import ApiConfig
from orchestrator.services.zk.tls import ZkTls

PartFn = Callable[[], Awaitable[dict[str, Any]]]
ZK_SYNC_LAG_LIMIT_SECONDS = 0.5   # the ZooKeeperSyncLagHigh alert's bound
_THRESHOLD = re.compile(r"^\s*(<=|>=|<|>|==)\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*$")


def _part(part: str, health: str, summary: str, **fields: Any) -> dict[str, Any]:
    return {"part": part, "health": health, "summary": summary, "checked_at": time.time(), **fields}


# ---------------------------------------------------------------------------------------------- ZooKeeper
async def four_letter(address: str, word: str, timeout: float, tls: ssl.SSLContext | None = None) -> str:
    """A four-letter word's reply; over TLS on the secure client port (ZooKeeper answers them there too)."""
    host, _, port = address.rpartition(":")
    host = host or address
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        host, int(port or 2181), ssl=tls, server_hostname=host if tls else None), timeout)
    try:
        writer.write(word.encode())
        await writer.drain()
        return (await asyncio.wait_for(reader.read(1 << 20), timeout)).decode(errors="replace")
    finally:
        writer.close()


def _srvr_fields(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


async def zookeeper_status(servers: list[str], timeout: float, tls_dir: str | None = None) -> dict[str, Any]:
    if not servers:
        return _part("zookeeper", "unknown", "not configured", servers=[], leader=None, quorum=False)
    try:
        # Loaded per refresh: a renewed CA bundle in the mounted Secret is picked up without a restart.
        context = ZkTls.from_dir(tls_dir, "zookeeper.tls_dir").context() if tls_dir is not None else None
    except OrchestratorError as exc:
        return _part("zookeeper", "unknown", str(exc)[:200], servers=[],
                     leader=None, quorum=False)

    async def one(address: str) -> dict[str, Any]:
        try:
            srvr = _srvr_fields(await four_letter(address, "srvr", timeout, context))
        except (OSError, TimeoutError, ValueError) as exc:
            return {"address": address, "reachable": False, "error": f"{type(exc).__name__}: {exc}"[:200]}
        if "Mode" not in srvr:   # "This ZooKeeper instance is not currently serving requests"
            return {"address": address, "reachable": True, "mode": None, "error": "not serving requests"}
        latency = srvr.get("Latency min/avg/max", "").split("/")
        server: dict[str, Any] = {"address": address, "reachable": True, "mode": srvr["Mode"]}
        try:
            server["latency_avg_ms"] = float(latency[1]) if len(latency) == 3 else None
            server["znode_count"] = int(srvr["Node count"]) if "Node count" in srvr else None
            server["outstanding_requests"] = int(srvr["Outstanding"]) if "Outstanding" in srvr else None
        except ValueError:
            pass
        return server

    results = await asyncio.gather(*(one(s) for s in servers))
    leaders = [s["address"] for s in results if s.get("mode") in ("leader", "standalone")]
    serving = [s for s in results if s.get("mode") in ("leader", "follower", "standalone")]
    voters = len(servers)
    quorum = bool(leaders) and len(serving) > voters // 2
    down = [s["address"] for s in results if not s.get("mode")]
    if not quorum:
        health, summary = "critical", f"no quorum: {len(serving)} of {voters} servers serving"
    elif down:
        health, summary = "warning", f"quorum held; not serving: {', '.join(down)}"
    else:
        health, summary = "healthy", f"quorum of {voters}, leader {leaders[0]}"
    return _part("zookeeper", health, summary, servers=list(results), leader=leaders[0] if leaders else None,
                 quorum=quorum)


def zk_tls(config: ApiConfig) -> ZkTls | None:
    """The API's TLS to ZooKeeper (`zookeeper.tls_dir`: a mounted Secret directory with ca.crt), or None."""
    d = config.zookeeper.tls_dir
    return None if d is None else ZkTls.from_dir(d, "zookeeper.tls_dir")


# ---------------------------------------------------------------------------------------------- Mesos
async def mesos_status(config: ApiConfig) -> dict[str, Any]:
    if not config.mesos.masters:
        return _part("mesos", "unknown", "not configured", leader=None)
    import anyio.to_thread

    from orchestrator.clients.mesos import MasterState, MesosClient, load_credentials
    from orchestrator.errors import OrchestratorError

    credentials = load_credentials(config.mesos.credentials_file) if config.mesos.credentials_file else None

    def read_state() -> MasterState:
        # The one (synchronous) Mesos client, in a worker thread like the Marathon calls: the loop keeps serving.
        with MesosClient(config.mesos.masters, credentials, timeout=3.0) as client:
            return client.master_state()

    try:
        state = await anyio.to_thread.run_sync(read_state)
    except OrchestratorError as exc:
        return _part("mesos", "critical", f"no leading master: {exc}"[:300], leader=None)
    active = sum(1 for a in state.agents if a.active)
    tasks: dict[str, int] = {}
    for fw in state.frameworks:
        for t in fw.tasks:
            tasks[t.state or "UNKNOWN"] = tasks.get(t.state or "UNKNOWN", 0) + 1
    inactive = len(state.agents) - active
    leader = state.leader_info.hostname if state.leader_info and state.leader_info.hostname else state.leader
    health = "warning" if inactive or not active else "healthy"
    return _part("mesos", health, f"leader {leader}, {active} agents active, {inactive} inactive",
                 leader=leader, agents_active=active, agents_inactive=inactive,
                 frameworks=sorted(fw.name for fw in state.frameworks), tasks=tasks)


# ---------------------------------------------------------------------------------------------- Marathon
def marathon_status_sync(client: Any) -> dict[str, Any]:
    from orchestrator.errors import OrchestratorError

    try:
        leader = client.leader()
        apps = client.list_apps(embed_tasks=False)
        deployments = client.deployments()
    except OrchestratorError as exc:
        return _part("marathon", "critical", f"unreachable: {exc}"[:300], leader=None)
    if leader is None:
        return _part("marathon", "critical", "no leader elected", leader=None, apps=len(apps))
    deps = [{"id": d.id, "apps": d.affectedApps, "current_step": d.currentStep, "total_steps": d.totalSteps}
            for d in deployments]
    return _part("marathon", "healthy", f"leader {leader}, {len(apps)} apps, {len(deps)} deployments in flight",
                 leader=leader, apps=len(apps), deployments=deps)


# ---------------------------------------------------------------------------------------------- zk sync
async def zk_sync_status(url: str | None) -> dict[str, Any]:
    if not url:
        return _part("zk-sync", "unknown", "not configured")
    try:
        async with httpx.AsyncClient(timeout=3.0) as http:
            response = await http.get(url)
        response.raise_for_status()
        values: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                if sample.name.startswith("orchestrator_zk_sync_") and not sample.labels:
                    values[sample.name] = float(sample.value)
    except (httpx.HTTPError, ValueError) as exc:
        return _part("zk-sync", "critical", f"metrics unreachable: {type(exc).__name__}"[:300])
    lag = values.get("orchestrator_zk_sync_lag_seconds")
    up = values.get("orchestrator_zk_sync_up")
    if up == 0:
        health, summary = "critical", "not syncing (a session is down)"
    elif lag is None:
        health, summary = "unknown", "no lag reported yet"
    elif lag > ZK_SYNC_LAG_LIMIT_SECONDS:
        health, summary = "critical", f"lag {lag * 1000:.0f} ms above {ZK_SYNC_LAG_LIMIT_SECONDS * 1000:.0f} ms"
    else:
        health, summary = "healthy", f"lag {lag * 1000:.1f} ms"
    return _part("zk-sync", health, summary, lag_seconds=lag, metrics=values)


# ---------------------------------------------------------------------------------------------- canary
def gate_ok(value: float | None, threshold: str) -> bool | None:
    m = _THRESHOLD.match(threshold)
    if value is None or m is None or math.isnan(value):
        return None
    op, bound = m.group(1), float(m.group(2))
    return {"<": value < bound, "<=": value <= bound, ">": value > bound, ">=": value >= bound,
            "==": value == bound}[op]


async def canary_status(config: ApiConfig) -> dict[str, Any]:
    prom = config.prometheus
    if not prom.url or not prom.canary_gates:
        return _part("canary", "unknown", "not configured", gates=[])
    gates = []
    async with httpx.AsyncClient(timeout=3.0) as http:
        for gate in prom.canary_gates:
            value: float | None = None
            try:
                response = await http.get(prom.url.rstrip("/") + "/api/v1/query", params={"query": gate.query})
                result = response.json().get("data", {}).get("result", [])
                if result:
                    value = float(result[0]["value"][1])
            except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError, AttributeError):
                value = None
            gates.append({"name": gate.name, "query": gate.query, "value": value, "threshold": gate.threshold,
                          "ok": gate_ok(value, gate.threshold)})
    failing = [str(g["name"]) for g in gates if g["ok"] is False]
    if failing:
        return _part("canary", "critical", f"failing: {', '.join(failing)}", gates=gates)
    if any(g["ok"] is None for g in gates):
        return _part("canary", "unknown", "no data for some gates (no canary running?)", gates=gates)
    return _part("canary", "healthy", "every gate passes", gates=gates)


# ---------------------------------------------------------------------------------------------- service
class StatusService:
    """The five parts with a per-part cache; `parts` may be replaced (the demo supplies its own)."""

    def __init__(self, config: ApiConfig, marathon_client: Any | None, cache_seconds: float) -> None:
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._locks = {p: asyncio.Lock() for p in STATUS_PARTS}

        async def marathon() -> dict[str, Any]:
            if marathon_client is None:
                return _part("marathon", "unknown", "not configured", leader=None)
            return await anyio.to_thread.run_sync(marathon_status_sync, marathon_client)

        self.parts: dict[str, PartFn] = {
            "zookeeper": lambda: zookeeper_status(config.zookeeper.servers, config.zookeeper.timeout_seconds,
                                                  config.zookeeper.tls_dir),
            "mesos": lambda: mesos_status(config),
            "marathon": marathon,
            "zk-sync": lambda: zk_sync_status(config.zk_sync_metrics_url),
            "canary": lambda: canary_status(config),
        }

    async def part(self, name: str) -> dict[str, Any]:
        async with self._locks[name]:   # one refresh at a time; concurrent callers share it
            cached = self._cache.get(name)
            if cached and time.monotonic() - cached[0] < self.cache_seconds:
                return cached[1]
            value = await self.parts[name]()
            self._cache[name] = (time.monotonic(), value)
            return value

    async def all(self) -> dict[str, Any]:
        values = await asyncio.gather(*(self.part(p) for p in STATUS_PARTS))
        return {p.replace("-", "_"): v for p, v in zip(STATUS_PARTS, values, strict=True)}
