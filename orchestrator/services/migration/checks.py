"""Checks of the live system that the migration gates are made of.

Each check returns a Check (ok + a one-line reason). They only read: ZooKeeper through the 4-letter
commands, Mesos masters (/master/health, /master/state, /metrics/snapshot) and Marathon (/v2/leader)
through the project's one client of each (orchestrator/clients), the sync engine through its /metrics.
"""
from __future__ import annotations

import contextlib
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from orchestrator.clients.marathon import MarathonClient
from orchestrator.clients.mesos import MasterState, MesosClient
from orchestrator.errors import OrchestratorError

HTTP_TIMEOUT = 5.0
# Task states that count as still running on an agent being drained.
LIVE_TASK_STATES = {"TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_UNREACHABLE"}
FAILURE_METRICS = ("master/tasks_failed", "master/tasks_lost", "master/tasks_error")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


# -- ZooKeeper ---------------------------------------------------------------------------------------------

def servers(connect: str) -> list[tuple[str, int]]:
    hosts = connect.split("/", 1)[0]
    out = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        out.append((host or item.strip(), int(port) if port else 2181))
    return out


def four_letter(host: str, port: int, cmd: str, timeout: float = 2.0) -> str:
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(cmd.encode())
        chunks = []
        while data := s.recv(4096):
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def zk_mode(host: str, port: int) -> str | None:
    try:
        out = four_letter(host, port, "srvr")
    except OSError:
        return None
    for line in out.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None  # e.g. "This ZooKeeper instance is not currently serving requests"


def zk_quorum(name: str, connect: str) -> Check:
    """Every listed server answers `srvr`, exactly one leads (or a lone standalone server)."""
    listed = servers(connect)
    modes = {f"{h}:{p}": zk_mode(h, p) for h, p in listed}
    desc = ", ".join(f"{k}={v or 'down'}" for k, v in modes.items())
    values = list(modes.values())
    if len(listed) == 1 and values == ["standalone"]:
        return Check(f"zookeeper {name} quorum", True, desc)
    ok = values.count("leader") == 1 and all(v in ("leader", "follower", "observer") for v in values)
    return Check(f"zookeeper {name} quorum", ok, desc)


# -- Mesos and Marathon, through the one client of each (orchestrator/clients) -------------------------------

def leader_state(master_urls: list[str]) -> tuple[MasterState | None, str]:
    """The leading master's /master/state (the client asks /master/redirect and follows one 307 hop from a
    standby), or None and why not."""
    try:
        with MesosClient(master_urls, timeout=HTTP_TIMEOUT) as client:
            return client.master_state(), ""
    except OrchestratorError as exc:
        return None, str(exc)


def _address(pid_or_url: str) -> str:
    """host:port of 'master@10.0.0.1:5050' or 'http://host:5050'."""
    text = pid_or_url.split("@", 1)[-1]
    parsed = urllib.parse.urlsplit(text if "//" in text else f"//{text}")
    return f"{parsed.hostname}:{parsed.port}"


def _leader_addresses(state: MasterState) -> set[str]:
    out = {_address(state.leader)} if state.leader else set()
    info = state.leader_info
    if info is not None and info.hostname and info.port:
        out.add(f"{info.hostname}:{info.port}")
    return out


def _healthy(urls: list[str]) -> dict[str, bool]:
    """Whether each master answers /master/health with 200 (every running master does, leader or not)."""
    with MesosClient(urls, timeout=HTTP_TIMEOUT) as client:
        return {url: client.master_healthy(url) for url in urls}


def masters_healthy(name: str, urls: list[str]) -> Check:
    bad = [url for url, ok in _healthy(urls).items() if not ok]
    return Check(f"mesos masters {name} healthy", not bad and bool(urls),
                 f"not answering /master/health: {', '.join(bad)}" if bad else f"{len(urls)} answer /master/health")


def masters_stopped(name: str, urls: list[str]) -> Check:
    running = [url for url, ok in _healthy(urls).items() if ok]
    return Check(f"mesos masters {name} stopped", not running,
                 f"still answering: {', '.join(running)}" if running else f"none of {len(urls)} answers")


def mesos_leader_in(name: str, urls: list[str], state: MasterState | None, error: str) -> Check:
    label = f"mesos leader among masters {name}"
    if state is None:
        return Check(label, False, f"no master state: {error}")
    leader = _leader_addresses(state)
    ours = {_address(u) for u in urls}
    return Check(label, bool(leader & ours), f"leader {state.leader or '?'}")


def frameworks_registered(names: list[str], state: MasterState | None, error: str) -> Check:
    if state is None:
        return Check("frameworks registered", False, f"no master state: {error}")
    active = {f.name for f in state.frameworks if f.active}
    missing = [n for n in names if n not in active]
    return Check("frameworks registered", not missing,
                 f"missing: {', '.join(missing)}" if missing else f"active: {', '.join(sorted(n for n in active if n))}")


def agents_registered(hosts: list[str], state: MasterState | None, error: str) -> Check:
    if state is None:
        return Check("agents registered", False, f"no master state: {error}")
    active = {a.hostname for a in state.agents if a.active}
    missing = [h for h in hosts if h not in active]
    return Check("agents registered", not missing,
                 f"missing: {', '.join(missing)}" if missing else f"{len(hosts)} agents active")


def agents_drained(hosts: list[str], state: MasterState | None, error: str) -> Check:
    if state is None:
        return Check("agents drained", False, f"no master state: {error}")
    ids = {a.id: a.hostname for a in state.agents if a.hostname in hosts}
    found = sorted({h for h in ids.values() if h})
    if not found:  # a mistyped host name must not pass as "drained"
        return Check("agents drained", False, f"none of the {len(hosts)} agents ({', '.join(hosts)}) is known "
                                              "to the leader: nothing to check")
    live: dict[str, int] = {}
    for fw in state.frameworks:
        for task in fw.tasks + fw.unreachable_tasks:
            if task.slave_id in ids and task.state in LIVE_TASK_STATES:
                live[ids[task.slave_id]] = live.get(ids[task.slave_id], 0) + 1
    unknown = [h for h in hosts if h not in found]
    note = f" ({', '.join(unknown)} unknown to the leader)" if unknown else ""
    return Check("agents drained", not live,
                 (", ".join(f"{h}: {n} live tasks" for h, n in sorted(live.items())) if live
                  else f"no live tasks on {len(found)} of {len(hosts)} agents") + note)


def task_failures(master_urls: list[str], state: MasterState | None) -> int | None:
    """Failed + lost + errored tasks according to the leader's /metrics/snapshot."""
    if state is None or not _leader_addresses(state):
        return None
    leader = sorted(_leader_addresses(state))[0]
    scheme = urllib.parse.urlsplit(master_urls[0]).scheme if master_urls else "http"
    try:
        with MesosClient(master_urls, timeout=HTTP_TIMEOUT) as client:
            metrics = client.master_snapshot(f"{scheme}://{leader}")
    except OrchestratorError:
        return None
    return int(sum(metrics.get(k, 0) for k in FAILURE_METRICS))


def no_new_task_failures(baseline: int | None, now: int | None) -> Check:
    if baseline is None or now is None:
        return Check("no task failures", False, f"cannot read the counters (baseline {baseline}, now {now})")
    return Check("no task failures", now <= baseline, f"{now - baseline} failed/lost since the migration began")


def marathon_leader(urls: list[str]) -> Check:
    try:
        with MarathonClient(urls, timeout=HTTP_TIMEOUT, retries=0) as client:
            leader = client.leader()
    except OrchestratorError as exc:
        return Check("marathon leader", False, str(exc))
    if leader is None:
        return Check("marathon leader", False, "no leader elected (/v2/leader answered 404)")
    return Check("marathon leader", True, leader)


# -- HTTP (the sync engine's /metrics) ---------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def http_get(url: str) -> tuple[int, dict, bytes]:
    """(status, headers, body); redirects are returned, not followed. Raises OSError when unreachable."""
    try:
        with _opener.open(url, timeout=HTTP_TIMEOUT) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers or {}), err.read() or b""


# -- the sync engine ---------------------------------------------------------------------------------------

def parse_metrics(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            with contextlib.suppress(ValueError):  # a line that is not a sample
                out[name] = float(value)
    return out


def _label(series: str, label: str) -> str:
    marker = f'{label}="'
    start = series.index(marker) + len(marker)
    return series[start:series.index('"', start)]


def same_ensemble(a: str, b: str) -> bool:
    return sorted(servers(a)) == sorted(servers(b))


def sync_healthy(metrics_url: str, source: str, target: str, max_lag: float) -> Check:
    label = "sync engine"
    try:
        status, _, body = http_get(metrics_url)
        if status != 200:
            raise OSError(f"HTTP {status}")
    except OSError as exc:
        return Check(label, False, f"{metrics_url} unreachable: {exc}")
    m = parse_metrics(body.decode(errors="replace"))
    infos = [k for k in m if k.startswith("orchestrator_zk_sync_info{")]
    direction = [(_label(k, "source"), _label(k, "target")) for k in infos]
    if not any(same_ensemble(s, source) and same_ensemble(t, target) for s, t in direction):
        return Check(label, False, f"not syncing {source} -> {target} (it syncs {direction or 'nothing'})")
    up, lag = m.get("orchestrator_zk_sync_up", 0), m.get("orchestrator_zk_sync_lag_seconds", float("inf"))
    ok = up == 1 and lag <= max_lag
    return Check(label, ok, f"up={up:g} lag={lag * 1000:.1f}ms (max {max_lag * 1000:.0f}ms) "
                            f"errors={m.get('orchestrator_zk_sync_errors_total', 0):g}")


def sync_stopped(metrics_url: str) -> Check:
    try:
        status, _, body = http_get(metrics_url)
    except OSError:
        return Check("sync engine stopped", True, f"{metrics_url} does not answer")
    up = parse_metrics(body.decode(errors="replace")).get("orchestrator_zk_sync_up", 0)
    return Check("sync engine stopped", status != 200 or up == 0, f"{metrics_url} answers, up={up:g}")
