"""One collection: host, processes, containers and TCP connections of this node as a full report.

Sources, each optional and failure-tolerant (a source that fails leaves its fields empty and is counted):
- the proc tree (`--proc-root`): processes, their cgroup membership, sockets per network namespace;
- the cgroup tree (`--cgroup-root`): per-container CPU and memory;
- the local Mesos agent's `/state`: Mesos container id -> task id -> Marathon app id;
- pod metadata (name, namespace, labels) by pod UID, from an injectable source (the Kubernetes watch in
  production, a dict in tests; none by default).
"""
from __future__ import annotations

import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from orchestrator.clients.mesos import MesosClient, marathon_app_id
from orchestrator.contracts.report import (
    MAX_CONNECTIONS,
    MAX_CONTAINERS,
    MAX_PROCESSES,
    SCHEMA_VERSION,
    Connection,
    Container,
    FullReport,
    Host,
    ProbeCost,
    Process,
)
from orchestrator.errors import OrchestratorError
from orchestrator.services.probe.cgroups import CgroupIdentity, CgroupStats
from orchestrator.services.probe.procfs import (
    CLK_TCK,
    ProcessWalker,
    ProcSample,
    Socket,
    read_host,
    read_sockets,
    user_name,
)

log = logging.getLogger("orchestrator.probe")


@dataclass(frozen=True)
class PodMeta:
    name: str
    namespace: str
    labels: dict[str, str] = field(default_factory=dict)


class PodSource(Protocol):
    def lookup(self, pod_uid: str) -> PodMeta | None: ...


class StaticPods:
    """Pod metadata from a fixed mapping (tests, and `--once` without a Kubernetes API)."""

    def __init__(self, pods: dict[str, PodMeta] | None = None) -> None:
        self.pods = dict(pods or {})

    def lookup(self, pod_uid: str) -> PodMeta | None:
        return self.pods.get(pod_uid)


@dataclass(frozen=True)
class MesosTask:
    task_id: str
    app_id: str | None


class MesosTasks:
    """Mesos container id -> task, from the local agent's /state (executor.container is the cgroup leaf)."""

    def __init__(self, client: MesosClient | None, agent_url: str | None) -> None:
        self.client, self.agent_url = client, agent_url
        self.errors = 0

    def fetch(self) -> dict[str, MesosTask]:
        if not self.client or not self.agent_url:
            return {}
        try:
            state = self.client.agent_state(self.agent_url)
        except OrchestratorError as exc:
            self.errors += 1
            log.warning("mesos agent state unavailable: %s", exc)
            return {}
        out: dict[str, MesosTask] = {}
        for _framework, executor in state.executors():
            tasks = executor.tasks or executor.queued_tasks
            task_id = tasks[0].id if tasks else executor.id
            containers = {executor.container} | {t.container_id for t in tasks if t.container_id}
            for container in containers:
                if container:
                    out[container] = MesosTask(task_id, marathon_app_id(task_id))
        return out


@dataclass
class Previous:
    wall: float = 0.0
    ticks: dict[int, int] = field(default_factory=dict)
    container_cpu: dict[str, float] = field(default_factory=dict)
    host_busy: float = 0.0
    host_total: float = 0.0


ConnKey = tuple[Literal["listen", "established"], str, int, str | None, int | None]  # = report.connection_key


@dataclass
class Collection:
    """One interval. `head` is the report without its connections; `connections` maps each socket's key to
    its owning pid. At 20,000 sockets a pydantic model per connection cost ~1 KB each (20 MB per report):
    the publisher writes connections to JSON straight from this map, and `report` builds the models only
    when asked (tests, `--once`)."""

    head: FullReport
    connections: dict[ConnKey, int | None]
    sockets: list[Socket]
    namespaces_read: int
    skipped: int
    seconds: float

    @property
    def report(self) -> FullReport:
        return self.head.model_copy(update={"connections": connection_models(self.connections)})


def connection_models(connections: dict[ConnKey, int | None]) -> list[Connection]:
    return [Connection(state=k[0], local_ip=k[1], local_port=k[2], remote_ip=k[3], remote_port=k[4], pid=pid)
            for k, pid in connections.items()]


class Collector:
    def __init__(self, probe_id: str, proc_root: str | Path = "/proc", cgroup_root: str | Path = "/sys/fs/cgroup",
                 pods: PodSource | None = None, mesos: MesosTasks | None = None,
                 hostname: str | None = None, interval: float = 15.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.probe_id, self.proc_root, self.hostname = probe_id, Path(proc_root), hostname
        self.cgroups = CgroupStats(cgroup_root)
        self.walker = ProcessWalker(proc_root)
        self.pods = pods or StaticPods()
        self.mesos = mesos or MesosTasks(None, None)
        self.interval, self.clock = interval, clock
        self.prev = Previous()
        self._last_container_cpu: dict[str, float] = {}

    def collect(self, seq: int, cost: ProbeCost | None = None) -> Collection:
        started, wall = time.perf_counter(), self.clock()
        walk = self.walker.walk()
        sockets, namespaces = read_sockets(self.proc_root, walk.processes)
        host_sample = read_host(self.proc_root, self.hostname)
        elapsed = wall - self.prev.wall if self.prev.wall else 0.0

        processes = self._processes(walk.processes, elapsed)
        containers = self._containers(walk.processes, elapsed)
        connections = self._connections(sockets, walk.processes)

        host_cpu = 0.0
        d_total = host_sample.cpu_total - self.prev.host_total
        if self.prev.host_total and d_total > 0:
            host_cpu = max(0.0, min(100.0, 100.0 * (host_sample.cpu_busy - self.prev.host_busy) / d_total))
        host = Host(hostname=host_sample.hostname[:256] or self.probe_id, kernel=host_sample.kernel[:256],
                    addresses=host_sample.addresses, cpus=host_sample.cpus, cpu_percent=round(host_cpu, 1),
                    memory_total_bytes=host_sample.memory_total_bytes,
                    memory_used_bytes=host_sample.memory_used_bytes, load1=host_sample.load[0],
                    load5=host_sample.load[1], load15=host_sample.load[2],
                    uptime_seconds=host_sample.uptime_seconds)

        self.prev = Previous(wall, {p.pid: p.cpu_ticks for p in walk.processes.values()},
                             dict(self._last_container_cpu),
                             host_sample.cpu_busy, host_sample.cpu_total)
        seconds = time.perf_counter() - started
        usage = resource.getrusage(resource.RUSAGE_SELF)
        base_cost = cost or ProbeCost()
        report_cost = base_cost.model_copy(update={
            "cpu_seconds": usage.ru_utime + usage.ru_stime, "rss_bytes": float(_self_rss()),
            "collect_seconds": round(seconds, 4), "skipped_processes": walk.skipped})
        head = FullReport(schema_version=SCHEMA_VERSION, probe_id=self.probe_id, seq=seq, timestamp=wall,
                          interval_seconds=self.interval, host=host, cost=report_cost,
                          processes=processes[:MAX_PROCESSES], containers=containers[:MAX_CONTAINERS])
        return Collection(head, connections, sockets, namespaces, walk.skipped, seconds)

    # -- parts ----------------------------------------------------------------------------------------
    def _processes(self, samples: dict[int, ProcSample], elapsed: float) -> list[Process]:
        out = []
        for pid in sorted(samples):
            p = samples[pid]
            cpu = 0.0
            before = self.prev.ticks.get(pid)
            if before is not None and elapsed > 0:
                cpu = max(0.0, (p.cpu_ticks - before) / CLK_TCK / elapsed * 100.0)
            out.append(Process(pid=pid, ppid=p.ppid, name=p.name[:256] or "?", cmdline=p.cmdline,
                               user=user_name(p.uid), cpu_percent=round(cpu, 1),
                               # RSS in 64 KiB steps: a page here or there is not a change worth a delta.
                               rss_bytes=float(p.rss_bytes // 65536 * 65536), threads=p.threads, fds=p.fds,
                               container_id=p.container.container_id if p.container else None))
        return out

    def _containers(self, samples: dict[int, ProcSample], elapsed: float) -> list[Container]:
        identities: dict[str, CgroupIdentity] = {}
        for p in samples.values():
            if p.container and p.container.container_id not in identities:
                identities[p.container.container_id] = p.container
        tasks = self.mesos.fetch() if any(i.runtime == "mesos" for i in identities.values()) else {}
        self._last_container_cpu = {}
        out = []
        for cid in sorted(identities):
            ident = identities[cid]
            cpu_seconds = self.cgroups.cpu_seconds(ident.path)
            memory = self.cgroups.memory_bytes(ident.path)
            cpu = 0.0
            if cpu_seconds is not None:
                self._last_container_cpu[cid] = cpu_seconds
                before = self.prev.container_cpu.get(cid)
                if before is not None and elapsed > 0:
                    cpu = max(0.0, (cpu_seconds - before) / elapsed * 100.0)
            pod = self.pods.lookup(ident.pod_uid) if ident.pod_uid else None
            task = tasks.get(cid)
            out.append(Container(id=cid, runtime=ident.runtime,  # type: ignore[arg-type]
                                 pod_uid=ident.pod_uid, pod_name=pod.name if pod else None,
                                 namespace=pod.namespace if pod else None,
                                 labels=dict(list(pod.labels.items())[:64]) if pod else {},
                                 mesos_task_id=task.task_id if task else None,
                                 marathon_app_id=task.app_id if task else None,
                                 cpu_percent=round(cpu, 1),
                                 memory_bytes=float(memory // 65536 * 65536) if memory is not None else 0.0))
        return out

    @staticmethod
    def _connections(sockets: list[Socket], samples: dict[int, ProcSample]) -> dict[ConnKey, int | None]:
        owner: dict[int, int] = {}
        for pid, p in samples.items():
            for inode in p.socket_inodes:
                owner.setdefault(inode, pid)
        out: dict[ConnKey, int | None] = {}
        for s in sockets:
            key = (s.state, s.local_ip, s.local_port, s.remote_ip, s.remote_port)
            # SO_REUSEPORT listeners and dual rows: one socket per key, the first owner found.
            if key not in out or out[key] is None:
                out[key] = owner.get(s.inode) if s.inode else None
            if len(out) >= MAX_CONNECTIONS:
                break
        return out


def _self_rss() -> int:
    """This process's resident set (the real /proc/self, whatever --proc-root says)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def edges(connections: list[Connection]) -> set[tuple[int, int, int]]:
    """Process -> process edges implied by one host's sockets: (client pid, server pid, server port).

    An established socket whose remote end is another established socket of this host, and whose local
    port is not a listening port while the peer's is, is the client side. Sockets without a known owner
    are left out (no guessing).
    """
    listening = {(c.local_ip, c.local_port) for c in connections if c.state == "listen"}
    listen_ports = {port for _ip, port in listening}
    by_local = {(c.local_ip, c.local_port, c.remote_ip, c.remote_port): c
                for c in connections if c.state == "established"}
    out: set[tuple[int, int, int]] = set()
    for c in by_local.values():
        peer = by_local.get((c.remote_ip or "", c.remote_port or 0, c.local_ip, c.local_port))
        if peer is None or c.pid is None or peer.pid is None:
            continue
        if peer.local_port in listen_ports and c.local_port not in listen_ports:
            out.add((c.pid, peer.pid, peer.local_port))
    return out
