"""The live topology in memory: probe state from reports, the six views, search, grouping, details.

Everything here runs on the API's event-loop thread (ingest, renders, WebSocket ticks), so nothing locks.
Views are rendered as plain dicts (the `Node`/`Edge` shapes of contracts/api.py) rather than pydantic
objects, each with its JSON text built once: a host's, container's and process's nodes are cached per probe
until that probe's next report, so a render of 10,000 containers re-serialises only the hosts that reported
since the last render, and responses and WebSocket deltas are joined from the cached texts.

History: each host and container keeps its last hour of 15 s samples (cpu, memory, connections) in a fixed
ring of compact arrays (`Series`). Processes keep none: a few hundred per host would multiply the memory by
twenty for a graph people look at on the container or the host.
"""
from __future__ import annotations

import json
import time
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.contracts.api import GROUP_BY, SAMPLE_INTERVAL_SECONDS, SAMPLE_WINDOW_SECONDS, VIEWS
from orchestrator.contracts.report import (
    OFFLINE_AFTER_SECONDS,
    STALE_AFTER_SECONDS,
    Connection,
    Container,
    DeltaReport,
    FullReport,
    Host,
    ProbeCost,
    Process,
    connection_key,
)
from orchestrator.contracts.search import Query

SAMPLES = SAMPLE_WINDOW_SECONDS // SAMPLE_INTERVAL_SECONDS   # 240
MAX_PROBES = 10_000        # bounded: a flood of probe ids cannot grow memory without limit
SERVICE_LABELS = ("app.kubernetes.io/name", "app", "k8s-app")

NodeDict = dict[str, Any]
EdgeDict = dict[str, Any]
Rendered = tuple[NodeDict, str]          # a node and its JSON text


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


@dataclass
class Render:
    nodes: list[NodeDict]
    texts: list[str]                     # JSON of each node, same order
    edges: list[EdgeDict]
    total: int                           # nodes before the search
    edges_text: str | None = None        # JSON of `edges` when cached (the unfiltered view)

    def edges_json(self) -> str:
        if self.edges_text is None:
            self.edges_text = dumps(self.edges)
        return self.edges_text

    def body(self, **fields: Any) -> str:
        """A JSON object with `fields`, then "nodes" and "edges" joined from the cached texts."""
        head = dumps(fields)[:-1]
        sep = "," if fields else ""
        return f'{head}{sep}"nodes":[{",".join(self.texts)}],"edges":{self.edges_json()}}}'


class Series:
    """The last SAMPLES samples of one node, oldest overwritten first (~4.8 KB per node)."""

    __slots__ = ("t", "cpu", "mem", "conns", "head", "size")

    def __init__(self) -> None:
        self.t = array("d", bytes(8 * SAMPLES))
        self.cpu = array("f", bytes(4 * SAMPLES))
        self.mem = array("f", bytes(4 * SAMPLES))
        self.conns = array("f", bytes(4 * SAMPLES))
        self.head = 0
        self.size = 0

    def add(self, t: float, cpu: float, mem: float, conns: float) -> None:
        i = self.head
        self.t[i], self.cpu[i], self.mem[i], self.conns[i] = t, cpu, mem, conns
        self.head = (i + 1) % SAMPLES
        self.size = min(self.size + 1, SAMPLES)

    def samples(self, since: float) -> list[dict[str, float]]:
        start = (self.head - self.size) % SAMPLES
        out = []
        for k in range(self.size):
            i = (start + k) % SAMPLES
            if self.t[i] >= since:
                out.append({"t": self.t[i], "cpu": round(self.cpu[i], 3), "memory": float(self.mem[i]),
                            "connections": float(self.conns[i])})
        return out


@dataclass
class ProbeState:
    probe_id: str
    schema_version: int
    seq: int
    timestamp: float            # the report's own timestamp
    received: float             # wall clock when the API received it
    host: Host
    cost: ProbeCost
    processes: dict[int, Process] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    connections: dict[tuple[Any, ...], Connection] = field(default_factory=dict)
    host_series: Series = field(default_factory=Series)
    container_series: dict[str, Series] = field(default_factory=dict)
    version: int = 0
    listeners: list[tuple[tuple[str, str, int], int | None]] = field(default_factory=list)
    outgoing: list[tuple[tuple[str, str, int], int | None]] = field(default_factory=list)
    pid_nodes: dict[int, tuple[str, str | None, str | None, str | None]] = field(default_factory=dict)
    # view -> ((version, status), [(node, its JSON text)])
    cache: dict[str, tuple[tuple[int, str], list[Rendered]]] = field(default_factory=dict)
    # This probe's established sockets resolved to listeners: (listener generation, (source, target) -> n)
    resolved: tuple[int, Counter[tuple[tuple[str, int | None], tuple[str, int | None]]]] | None = None
    # view -> ((version, listener generation), edges whose source is one of this probe's nodes, their JSON)
    edge_cache: dict[str, tuple[tuple[int, int], list[EdgeDict], list[str]]] = field(default_factory=dict)

    def state(self, now: float) -> str:
        age = now - self.received
        return "ok" if age <= STALE_AFTER_SECONDS else "stale" if age < OFFLINE_AFTER_SECONDS else "offline"


class DeltaBaseMismatch(Exception):
    """A delta whose base is not the report this replica holds: the probe must send a full report."""


def _is_loopback(ip: str) -> bool:
    # A prefix test, not ipaddress.ip_address(): this runs for every socket of every report.
    return ip.startswith(("127.", "::ffff:127.")) or ip == "::1"


def _endpoints(state: ProbeState) -> None:
    """The probe's sockets as edge endpoints, computed once per report: listeners by the address peers dial,
    established sockets by the address they dialled. Loopback addresses are scoped to their host."""
    listeners: list[tuple[tuple[str, str, int], int | None]] = []
    outgoing: list[tuple[tuple[str, str, int], int | None]] = []
    probe = state.probe_id
    for conn in state.connections.values():
        if conn.state == "listen":
            if conn.local_ip in ("0.0.0.0", "::"):
                # A wildcard listener answers on every address of its host, loopback included.
                for address in state.host.addresses:
                    listeners.append((("", address, conn.local_port), conn.pid))
                listeners.append(((probe, "127.0.0.1", conn.local_port), conn.pid))
            else:
                scope = probe if _is_loopback(conn.local_ip) else ""
                listeners.append(((scope, conn.local_ip, conn.local_port), conn.pid))
        elif conn.remote_ip is not None and conn.remote_port is not None:
            scope = probe if _is_loopback(conn.remote_ip) else ""
            outgoing.append(((scope, conn.remote_ip, conn.remote_port), conn.pid))
    state.listeners, state.outgoing = listeners, outgoing
    # The view nodes each containerised process belongs to: container, pod, service, Marathon app.
    pid_nodes: dict[int, tuple[str, str | None, str | None, str | None]] = {}
    for proc in state.processes.values():
        c = state.containers.get(proc.container_id) if proc.container_id else None
        if c is not None:
            service = _service_of(c)
            pid_nodes[proc.pid] = (f"container:{c.id}", f"pod:{c.pod_uid}" if c.pod_uid else None,
                                   service[0] if service else None,
                                   f"marathon-app:{c.marathon_app_id}" if c.marathon_app_id else None)
    state.pid_nodes = pid_nodes


# Views whose every edge starts at a node of one probe (its host, process, container, pod): their edges are
# cached per probe and concatenated. Services and Marathon apps span hosts, so their edges are merged.
_PER_PROBE_EDGES = ("hosts", "processes", "containers", "pods")
_OWNER_MAPPED = ("containers", "pods")      # mapped through the target probe's pid table


class Topology:
    def __init__(self, clock: Any = time.time) -> None:
        self.probes: dict[str, ProbeState] = {}
        self.version = 0
        self._clock = clock
        self.marathon_apps: dict[str, dict[str, Any]] = {}   # from Marathon, merged into marathon-apps
        self._aggregates: dict[str, tuple[tuple[int, int], list[Rendered]]] = {}
        self._view_edges: dict[str, tuple[int, list[EdgeDict], str | None]] = {}
        # Every probe's listeners, kept up to date at ingest (not rebuilt per render). The generation moves
        # only when some probe's listeners change, which invalidates every probe's resolved sockets; a
        # report that changes only established sockets re-resolves that probe alone.
        self._listeners: dict[tuple[str, str, int], tuple[str, int | None]] = {}
        self._listeners_gen = 0
        # probe -> the probes whose cached container/pod edges end at one of its processes: a change of its
        # pid -> container/pod table drops those caches (instead of checking every edge at every render).
        self._dependents: dict[str, set[str]] = {}

    # ------------------------------------------------------------------------------------------ ingest
    def ingest(self, report: FullReport | DeltaReport) -> ProbeState:
        now = self._clock()
        state = self.probes.get(report.probe_id)
        old_listeners = state.listeners if state is not None else []
        old_owners = state.pid_nodes if state is not None else {}
        if isinstance(report, DeltaReport):
            if state is None or state.seq != report.base_seq:
                raise DeltaBaseMismatch(report.probe_id)
            for pid in report.removed_processes:
                state.processes.pop(pid, None)
            for p in report.processes:
                state.processes[p.pid] = p
            for cid in report.removed_containers:
                state.containers.pop(cid, None)
                state.container_series.pop(cid, None)
            for c in report.containers:
                state.containers[c.id] = c
            for conn in report.connections_removed:
                state.connections.pop(connection_key(conn), None)
            for conn in report.connections_added:
                state.connections[connection_key(conn)] = conn
            state.seq, state.timestamp, state.received = report.seq, report.timestamp, now
            state.host, state.cost, state.schema_version = report.host, report.cost, report.schema_version
        else:
            if state is None and len(self.probes) >= MAX_PROBES:
                self._forget_oldest()
            old = state
            state = ProbeState(
                probe_id=report.probe_id, schema_version=report.schema_version, seq=report.seq,
                timestamp=report.timestamp, received=now, host=report.host, cost=report.cost,
                processes={p.pid: p for p in report.processes},
                containers={c.id: c for c in report.containers},
                connections={connection_key(c): c for c in report.connections})
            if old is not None:   # keep the history across full reports
                state.host_series = old.host_series
                state.container_series = {cid: s for cid, s in old.container_series.items()
                                           if cid in state.containers}
            self.probes[report.probe_id] = state
        self._sample(state)
        _endpoints(state)
        if state.listeners != old_listeners:
            self._unindex(report.probe_id, old_listeners)
            owner = report.probe_id
            for endpoint, listener_pid in state.listeners:
                self._listeners[endpoint] = (owner, listener_pid)
            self._listeners_gen += 1
        if state.pid_nodes != old_owners:
            self._owners_changed(report.probe_id)
        self.version += 1
        state.version = self.version
        state.cache.clear()
        state.resolved = None
        state.edge_cache.clear()
        return state

    def _unindex(self, probe_id: str, listeners: list[tuple[tuple[str, str, int], int | None]]) -> None:
        for key, _ in listeners:
            held = self._listeners.get(key)
            if held is not None and held[0] == probe_id:
                del self._listeners[key]

    def _drop(self, probe_id: str) -> bool:
        state = self.probes.pop(probe_id, None)
        if state is None:
            return False
        self._unindex(probe_id, state.listeners)
        self._listeners_gen += 1
        self._dependents.pop(probe_id, None)
        return True

    def _owners_changed(self, probe_id: str) -> None:
        for source in self._dependents.pop(probe_id, ()):
            state = self.probes.get(source)
            if state is not None:
                for view in _OWNER_MAPPED:
                    state.edge_cache.pop(view, None)

    def _forget_oldest(self) -> None:
        oldest = min(self.probes.values(), key=lambda p: p.received)
        self._drop(oldest.probe_id)

    def _sample(self, state: ProbeState) -> None:
        established = [c for c in state.connections.values() if c.state == "established"]
        host = state.host
        state.host_series.add(state.timestamp, host.cpu_percent, host.memory_used_bytes, len(established))
        per_container = self._container_connections(state, established)
        for cid, c in state.containers.items():
            series = state.container_series.get(cid)
            if series is None:
                series = state.container_series[cid] = Series()
            series.add(state.timestamp, c.cpu_percent, c.memory_bytes, per_container.get(cid, 0))

    @staticmethod
    def _container_connections(state: ProbeState, established: Iterable[Connection]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for conn in established:
            proc = state.processes.get(conn.pid) if conn.pid is not None else None
            if proc is not None and proc.container_id:
                counts[proc.container_id] += 1
        return counts

    def set_marathon_apps(self, apps: dict[str, dict[str, Any]]) -> None:
        self.marathon_apps = apps
        self.version += 1

    def remove_probe(self, probe_id: str) -> None:
        if self._drop(probe_id):
            self.version += 1

    # ------------------------------------------------------------------------------------------- edges
    def _resolved(self, state: ProbeState) -> Counter[tuple[tuple[str, int | None], tuple[str, int | None]]]:
        """(probe, pid) → (probe, pid) for this probe's established sockets whose remote end is a known
        listener; loopback addresses only join sockets of the same host. Cached until this probe reports
        again or some probe's listeners change."""
        if state.resolved is not None and state.resolved[0] == self._listeners_gen:
            return state.resolved[1]
        listeners = self._listeners
        edges: Counter[tuple[tuple[str, int | None], tuple[str, int | None]]] = Counter()
        probe = state.probe_id
        for key, pid in state.outgoing:
            target = listeners.get(key)
            source = (probe, pid)
            if target is not None and target != source:
                edges[(source, target)] += 1
        state.resolved = (self._listeners_gen, edges)
        return edges

    def process_edges(self) -> Counter[tuple[tuple[str, int | None], tuple[str, int | None]]]:
        """Every probe's resolved sockets, merged."""
        edges: Counter[tuple[tuple[str, int | None], tuple[str, int | None]]] = Counter()
        for state in self.probes.values():
            edges.update(self._resolved(state))
        return edges

    # ------------------------------------------------------------------------------------------- views
    def summary(self) -> list[dict[str, Any]]:
        counts = {v: len(self._nodes(v, self._clock())) for v in VIEWS}
        return [{"view": v, "nodes": counts[v], "group_by": list(GROUP_BY[v])} for v in VIEWS]

    def render(self, view: str, query: Query, group_by: str | None) -> Render:
        now = self._clock()
        members = self._nodes(view, now)
        total = len(members)
        if query.terms:
            members = [m for m in members if query.matches(m[0])]
        ids = {n["id"] for n, _ in members}
        every_edge = self._edges(view)
        edges = [e for e in every_edge if e["source"] in ids and e["target"] in ids]
        # All edges kept (no search, no offline endpoint): their JSON is the view's cached text.
        edges_text = self._edges_text(view) if len(edges) == len(every_edge) else None
        if not group_by:
            return Render([n for n, _ in members], [t for _, t in members], edges, total, edges_text)
        groups: dict[str, NodeDict] = {}
        nodes, texts = [], []
        for n, text in members:
            value = n["metadata"].get(group_by) or "(none)"
            gid = f"group:{group_by}:{value}"
            g = groups.get(gid)
            if g is None:
                g = groups[gid] = {"id": gid, "label": value, "kind": "group", "parent": None,
                                   "metadata": {group_by: value}, "metrics": {"cpu": 0.0, "memory": 0.0},
                                   "status": "ok", "count": 0}
            g["count"] += 1
            g["metrics"]["cpu"] += n["metrics"].get("cpu", 0.0)
            g["metrics"]["memory"] += n["metrics"].get("memory", 0.0)
            nodes.append({**n, "parent": gid})
            # Every cached text has "parent":null right after its label and kind (the dict's key order).
            texts.append(text.replace('"parent":null', f'"parent":{dumps(gid)}', 1))
        for g in groups.values():
            g["metrics"] = {k: round(v, 2) for k, v in g["metrics"].items()}
        return Render(list(groups.values()) + nodes, [dumps(g) for g in groups.values()] + texts, edges, total,
                      edges_text)

    def node(self, view: str, node_id: str) -> NodeDict | None:
        return next((n for n, _ in self._nodes(view, self._clock()) if n["id"] == node_id), None)

    def details(self, view: str, node_id: str) -> dict[str, Any] | None:
        node = self.node(view, node_id)
        if node is None:
            return None
        since = self._clock() - SAMPLE_WINDOW_SECONDS
        samples: list[dict[str, float]] = []
        kind, _, rest = node_id.partition(":")
        if kind == "host" and rest in self.probes:
            samples = self.probes[rest].host_series.samples(since)
        elif kind == "container":
            for state in self.probes.values():
                series = state.container_series.get(rest)
                if series is not None:
                    samples = series.samples(since)
                    break
        neighbour_ids = set()
        for e in self._edges(view):
            if e["source"] == node_id:
                neighbour_ids.add(e["target"])
            elif e["target"] == node_id:
                neighbour_ids.add(e["source"])
        neighbours = [n for n, _ in self._nodes(view, self._clock()) if n["id"] in neighbour_ids][:200]
        return {"node": node, "interval_seconds": SAMPLE_INTERVAL_SECONDS, "samples": samples,
                "neighbours": neighbours}

    def probe_infos(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [{"probe_id": p.probe_id, "hostname": p.host.hostname, "last_report": p.received,
                 "state": p.state(now), "schema_version": p.schema_version, "cost": p.cost.model_dump()}
                for p in sorted(self.probes.values(), key=lambda p: p.probe_id)]

    # --------------------------------------------------------------------------------- view internals
    def _visible(self, now: float) -> Iterable[tuple[ProbeState, str]]:
        for p in self.probes.values():
            yield p, p.state(now)

    def _containers(self, now: float) -> Iterable[tuple[ProbeState, str, Container]]:
        for p, status in self._visible(now):
            if status == "offline":
                continue   # an offline host's containers are unknown; the host node shows it offline
            for c in p.containers.values():
                yield p, status, c

    def _per_probe(self, view: str, p: ProbeState, status: str) -> list[Rendered]:
        key = (p.version, status)
        cached = p.cache.get(view)
        if cached is not None and cached[0] == key:
            return cached[1]
        if view == "hosts":
            nodes = [self._host_node(p, status)]
        elif status == "offline":
            nodes = []   # an offline host's containers and processes are unknown; its host node shows it
        elif view == "containers":
            nodes = [self._container_node(p, status, c) for c in p.containers.values()]
        else:
            nodes = [self._process_node(p, status, proc) for proc in p.processes.values()]
        rendered = [(n, dumps(n)) for n in nodes]
        p.cache[view] = (key, rendered)
        return rendered

    def _nodes(self, view: str, now: float) -> list[Rendered]:
        if view in ("hosts", "containers", "processes"):
            out: list[Rendered] = []
            for p, status in self._visible(now):
                out.extend(self._per_probe(view, p, status))
            return out
        key = (self.version, int(now // 15))
        cached = self._aggregates.get(view)
        if cached is not None and cached[0] == key:
            return cached[1]
        nodes = self._aggregate_view(view, now)
        rendered = [(n, dumps(n)) for n in nodes]
        self._aggregates[view] = (key, rendered)
        return rendered

    def _aggregate_view(self, view: str, now: float) -> list[NodeDict]:
        if view == "pods":
            return self._aggregate(now, lambda c: (f"pod:{c.pod_uid}", c.pod_name or c.pod_uid or "")
                                   if c.pod_uid else None, "pod")
        if view == "services":
            return self._aggregate(now, _service_of, "service")
        if view == "marathon-apps":
            nodes = self._aggregate(now, lambda c: (f"marathon-app:{c.marathon_app_id}", c.marathon_app_id)
                                    if c.marathon_app_id else None, "marathon-app")
            seen = {n["id"] for n in nodes}
            for app_id in self.marathon_apps:
                nid = f"marathon-app:{app_id}"
                if nid not in seen:
                    nodes.append({"id": nid, "label": app_id, "kind": "marathon-app", "parent": None,
                                  "metadata": {"group": app_id.rsplit("/", 1)[0] or "/"},
                                  "metrics": {"cpu": 0.0, "memory": 0.0, "containers": 0.0}, "status": "ok",
                                  "count": None})
            by_id = {n["id"]: n for n in nodes}
            for app_id, app in self.marathon_apps.items():
                n = by_id[f"marathon-app:{app_id}"]
                n["metrics"].update({k: float(v) for k, v in app.items() if isinstance(v, int | float)})
            return nodes
        raise KeyError(view)

    @staticmethod
    def _host_node(p: ProbeState, status: str) -> NodeDict:
        h = p.host
        established = sum(1 for c in p.connections.values() if c.state == "established")
        return {"id": f"host:{p.probe_id}", "label": h.hostname, "kind": "host", "parent": None,
                "metadata": {"host": h.hostname, "kernel": h.kernel, "addresses": ",".join(h.addresses),
                             "probe": p.probe_id},
                "metrics": {"cpu": round(h.cpu_percent, 2), "memory": float(round(h.memory_used_bytes)),
                            "memory_total": float(round(h.memory_total_bytes)), "load1": round(h.load1, 2), "processes": float(len(p.processes)),
                            "containers": float(len(p.containers)), "connections": float(established)},
                "status": status, "count": None}

    @staticmethod
    def _container_node(p: ProbeState, status: str, c: Container) -> NodeDict:
        # Labels, then the fields the views group and search by (the full container id is the node id).
        metadata = dict(c.labels)
        metadata.update({"host": p.host.hostname, "runtime": c.runtime, "image": c.image})
        for key, value in (("namespace", c.namespace), ("pod", c.pod_name), ("marathon_app", c.marathon_app_id)):
            if value:
                metadata[key] = value
        series = p.container_series.get(c.id)
        conns = float(series.conns[(series.head - 1) % SAMPLES]) if series and series.size else 0.0
        return {"id": f"container:{c.id}", "label": c.name or c.pod_name or c.id[:12], "kind": "container",
                "parent": None, "metadata": metadata,
                "metrics": {"cpu": round(c.cpu_percent, 2), "memory": float(round(c.memory_bytes)),
                            "connections": conns},
                "status": status, "count": None}

    @staticmethod
    def _process_node(p: ProbeState, status: str, proc: Process) -> NodeDict:
        metadata = {"host": p.host.hostname, "user": proc.user, "cmdline": proc.cmdline, "pid": str(proc.pid),
                    "ppid": str(proc.ppid)}
        if proc.container_id:
            metadata["container"] = proc.container_id
        return {"id": f"process:{p.probe_id}:{proc.pid}", "label": proc.name, "kind": "process", "parent": None,
                "metadata": metadata,
                "metrics": {"cpu": round(proc.cpu_percent, 2), "memory": float(round(proc.rss_bytes)),
                            "threads": float(proc.threads),
                            "fds": float(proc.fds)},
                "status": status, "count": None}

    def _aggregate(self, now: float, key: Any, kind: str) -> list[NodeDict]:
        nodes: dict[str, NodeDict] = {}
        for p, status, c in self._containers(now):
            k = key(c)
            if k is None:
                continue
            nid, label = k
            n = nodes.get(nid)
            if n is None:
                metadata = {"namespace": c.namespace or "", "host": p.host.hostname}
                if kind == "marathon-app":
                    metadata = {"group": (c.marathon_app_id or "").rsplit("/", 1)[0] or "/"}
                n = nodes[nid] = {"id": nid, "label": label, "kind": kind, "parent": None, "metadata": metadata,
                                  "metrics": {"cpu": 0.0, "memory": 0.0, "containers": 0.0}, "status": status,
                                  "count": None}
            elif n["metadata"].get("host") not in (None, p.host.hostname):
                n["metadata"]["host"] = "(several)"
            m = n["metrics"]
            m["cpu"] += c.cpu_percent
            m["memory"] += c.memory_bytes
            m["containers"] += 1
        return list(nodes.values())

    def _edges(self, view: str) -> list[EdgeDict]:
        cached = self._view_edges.get(view)
        if cached is not None and cached[0] == self.version:
            return cached[1]
        if view in _PER_PROBE_EDGES:
            edges = []
            for state in self.probes.values():
                edges.extend(self._probe_edges(view, state)[1])
        else:
            edges = self._merged_edges(view)
        self._view_edges[view] = (self.version, edges, None)
        return edges

    def _edges_text(self, view: str) -> str:
        """The JSON array of the view's edges, built once per version (joined from per-probe texts)."""
        edges = self._edges(view)
        cached = self._view_edges[view]
        if cached[2] is not None:
            return cached[2]
        if view in _PER_PROBE_EDGES:
            text = "[" + ",".join(t for state in self.probes.values() for t in self._probe_edges(view, state)[2]) + "]"
        else:
            text = dumps(edges)
        self._view_edges[view] = (cached[0], edges, text)
        return text

    def _probe_edges(self, view: str, state: ProbeState) -> tuple[tuple[int, int], list[EdgeDict], list[str]]:
        """The view's edges that start at one of this probe's nodes, and their JSON texts."""
        key = (state.version, self._listeners_gen)
        cached = state.edge_cache.get(view)
        if cached is not None and cached[0] == key:
            return cached
        mapping = self._endpoint_mapper(view)
        counts: Counter[tuple[str, str]] = Counter()
        targets: set[str] = set()
        for (src, dst), n in self._resolved(state).items():
            a, b = mapping(src), mapping(dst)
            targets.add(dst[0])
            if a and b and a != b:
                counts[(a, b)] += n
        if view in _OWNER_MAPPED:
            # Containers and pods map a target through its probe's pid table: a change there drops this.
            for target in targets:
                self._dependents.setdefault(target, set()).add(state.probe_id)
        edges = [{"source": a, "target": b, "connections": n} for (a, b), n in counts.items()]
        entry = (key, edges, [dumps(e) for e in edges])
        state.edge_cache[view] = entry
        return entry

    def _merged_edges(self, view: str) -> list[EdgeDict]:
        mapping = self._endpoint_mapper(view)
        counts: Counter[tuple[str, str]] = Counter()
        for (src, dst), n in self.process_edges().items():
            a, b = mapping(src), mapping(dst)
            if a and b and a != b:
                counts[(a, b)] += n
        return [{"source": a, "target": b, "connections": n} for (a, b), n in counts.items()]

    def _endpoint_mapper(self, view: str) -> Any:
        probes = self.probes
        if view == "hosts":
            return lambda ep: f"host:{ep[0]}"
        if view == "processes":
            return lambda ep: f"process:{ep[0]}:{ep[1]}" if ep[1] is not None else None
        index = {"containers": 0, "pods": 1, "services": 2, "marathon-apps": 3}[view]

        def mapped(ep: tuple[str, int | None]) -> str | None:
            state = probes.get(ep[0])
            owner = state.pid_nodes.get(ep[1]) if state is not None and ep[1] is not None else None
            return owner[index] if owner is not None else None

        return mapped


def _service_of(c: Container) -> tuple[str, str] | None:
    """A service is the pods of one namespace sharing an app label (Kubernetes' recommended labels first)."""
    for label in SERVICE_LABELS:
        name = c.labels.get(label)
        if name:
            return f"service:{c.namespace or 'default'}/{name}", name
    return None
