"""`--demo-topology HOSTS[:CONTAINERS_PER_HOST]`: a synthetic, changing platform for the UI, tests and
benchmarks, with a built-in fake Marathon and logins that are random per run (never a default credential).

The topology is deterministic for a seed: hosts `node-0000`…, containers split between Kubernetes pods
(namespaces prod/staging/platform, `app.kubernetes.io/name` labels) and Marathon tasks (runtime `mesos`),
one listening process per container and connections from each container to two others on other hosts.
Each host reports every 15 s (staggered: HOSTS/15 reports a second), as a delta with moving CPU and memory;
now and then a container is replaced, so views see additions and removals.
"""
from __future__ import annotations

import asyncio
import random
import secrets
import time
from typing import Any

from orchestrator.contracts.api import AutoscalePolicy, Role
from orchestrator.contracts.report import (
    SCHEMA_VERSION,
    Connection,
    Container,
    DeltaReport,
    FullReport,
    Host,
    ProbeCost,
    Process,
)
from orchestrator.errors import InputError

MARATHON_APPS = ("/shop/web", "/shop/api", "/shop/worker", "/data/etl", "/data/ingest", "/platform/metrics")
NAMESPACES = ("prod", "staging", "platform")
K8S_APPS = ("frontend", "checkout", "cart", "search", "auth", "catalog", "payments", "redis")
HOST_PROCESSES = (("systemd", "root"), ("kubelet", "root"), ("containerd", "root"), ("mesos-agent", "root"),
                  ("orchestrator-probe", "probe"), ("sshd", "root"))


def parse_demo(value: str) -> tuple[int, int]:
    hosts, _, per_host = value.partition(":")
    try:
        h, c = int(hosts), int(per_host or 10)
    except ValueError:
        raise InputError(f"--demo-topology {value!r}: expected HOSTS[:CONTAINERS_PER_HOST], e.g. 50:10") from None
    if not 1 <= h <= 5000 or not 0 <= c <= 200:
        raise InputError(f"--demo-topology {value!r}: 1..5000 hosts and 0..200 containers per host")
    return h, c


class DemoTopology:
    def __init__(self, hosts: int, per_host: int, seed: int = 1) -> None:
        self.hosts, self.per_host = hosts, per_host
        self.rng = random.Random(seed)
        self.seq = [0] * hosts
        self.containers: list[list[Container]] = [[self._container(i, j) for j in range(per_host)]
                                                  for i in range(hosts)]
        self.host_cpu = [self.rng.uniform(5, 60) for _ in range(hosts)]

    @staticmethod
    def probe_id(i: int) -> str:
        return f"node-{i:04d}"

    @staticmethod
    def address(i: int) -> str:
        return f"10.{(i // 250) % 250}.{i % 250}.10"

    def _container(self, i: int, j: int) -> Container:
        cid = f"{self.rng.getrandbits(256):064x}"
        if j % 3 == 2:
            app = MARATHON_APPS[(i + j) % len(MARATHON_APPS)]
            return Container(id=cid, runtime="mesos", name=f"{app.rsplit('/', 1)[1]}.{cid[:8]}",
                             image=f"registry.example/{app.rsplit('/', 1)[1]}:1.{j % 4}",
                             mesos_task_id=f"{app.strip('/').replace('/', '_')}.instance-{cid[:8]}._app.1",
                             marathon_app_id=app, cpu_percent=self.rng.uniform(1, 90),
                             memory_bytes=self.rng.uniform(64, 1024) * 2**20)
        name = K8S_APPS[(i * 7 + j) % len(K8S_APPS)]
        namespace = NAMESPACES[(i + j) % len(NAMESPACES)]
        pod_uid = "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}".format(*tuple(self.rng.getrandbits(b) for b in (32, 16, 16, 16, 48)))
        return Container(id=cid, runtime="containerd", name=name, image=f"registry.example/{name}:2.{j % 5}",
                         pod_uid=pod_uid, pod_name=f"{name}-{pod_uid[:5]}", namespace=namespace,
                         labels={"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "shop"},
                         cpu_percent=self.rng.uniform(1, 90), memory_bytes=self.rng.uniform(32, 2048) * 2**20)

    def _host(self, i: int) -> Host:
        self.host_cpu[i] = min(100.0, max(0.0, self.host_cpu[i] + self.rng.uniform(-5, 5)))
        return Host(hostname=self.probe_id(i), kernel="6.1.0-28-amd64", addresses=[self.address(i)], cpus=8,
                    cpu_percent=round(self.host_cpu[i], 2), memory_total_bytes=32 * 2**30,
                    memory_used_bytes=sum(c.memory_bytes for c in self.containers[i]) + 2 * 2**30,
                    load1=round(self.host_cpu[i] / 12.5, 2), uptime_seconds=86_400.0 * (1 + i % 30))

    def _processes(self, i: int) -> list[Process]:
        procs = [Process(pid=1 + k * 100, ppid=0 if k == 0 else 1, name=name, cmdline=f"/usr/bin/{name}", user=user,
                         cpu_percent=1.0, rss_bytes=64 * 2**20) for k, (name, user) in enumerate(HOST_PROCESSES)]
        procs.extend(self._container_process(j, c) for j, c in enumerate(self.containers[i]))
        return procs

    @staticmethod
    def _container_process(j: int, c: Container) -> Process:
        return Process(pid=10_000 + j, ppid=201, name=c.name.split(".")[0], cmdline=f"/app/{c.name.split('.')[0]} "
                       f"--port {8000 + j}", user="app", cpu_percent=c.cpu_percent, rss_bytes=c.memory_bytes,
                       threads=8, fds=40, container_id=c.id)

    def _connections(self, i: int) -> list[Connection]:
        conns = [Connection(state="listen", local_ip="0.0.0.0", local_port=22, pid=501)]
        for j in range(len(self.containers[i])):
            conns.append(Connection(state="listen", local_ip=self.address(i), local_port=8000 + j, pid=10_000 + j))
            if self.hosts > 1 and self.per_host:
                for k in (1, 2):
                    peer = (i + k * 37 + j) % self.hosts
                    if peer == i:
                        continue
                    slot = (j + k) % self.per_host
                    conns.append(Connection(state="established", local_ip=self.address(i),
                                            local_port=40_000 + j * 4 + k, remote_ip=self.address(peer),
                                            remote_port=8000 + slot, pid=10_000 + j))
        return conns

    def full_report(self, i: int, now: float | None = None) -> FullReport:
        self.seq[i] += 1
        return FullReport(schema_version=SCHEMA_VERSION, probe_id=self.probe_id(i), seq=self.seq[i],
                          timestamp=now or time.time(), host=self._host(i), processes=self._processes(i),
                          containers=list(self.containers[i]), connections=self._connections(i),
                          cost=ProbeCost(cpu_seconds=12.5, rss_bytes=40 * 2**20, collect_seconds=0.08,
                                         report_bytes=9000))

    def delta_report(self, i: int, now: float | None = None, churn: float = 0.02) -> DeltaReport:
        """Moving metrics on every container; with probability `churn` one container is replaced."""
        base = self.seq[i]
        self.seq[i] += 1
        removed: list[str] = []
        changed: list[Container] = []
        procs: list[Process] = []
        conns_removed: list[Connection] = []
        conns_added: list[Connection] = []
        if self.containers[i] and self.rng.random() < churn:
            j = self.rng.randrange(len(self.containers[i]))
            before = self._connections(i)
            removed.append(self.containers[i][j].id)
            self.containers[i][j] = self._container(i, j)
            after = self._connections(i)
            conns_removed = [c for c in before if c not in after]
            conns_added = [c for c in after if c not in before]
        for j, c in enumerate(self.containers[i]):
            cpu = min(400.0, max(0.0, c.cpu_percent + self.rng.uniform(-8, 8)))
            mem = max(16 * 2**20, c.memory_bytes * self.rng.uniform(0.97, 1.03))
            c = self.containers[i][j] = c.model_copy(update={"cpu_percent": round(cpu, 2), "memory_bytes": mem})
            changed.append(c)
            procs.append(self._container_process(j, c))
        return DeltaReport(schema_version=SCHEMA_VERSION, kind="delta", probe_id=self.probe_id(i), seq=self.seq[i],
                           base_seq=base, timestamp=now or time.time(), host=self._host(i), processes=procs,
                           containers=changed, removed_containers=removed, connections_added=conns_added,
                           connections_removed=conns_removed)

    def marathon_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for host in self.containers:
            for c in host:
                if c.marathon_app_id:
                    counts[c.marathon_app_id] = counts.get(c.marathon_app_id, 0) + 1
        return counts


def demo_accounts() -> tuple[list[dict[str, Any]], list[str]]:
    """One account per role with a random password; returns (config accounts, banner lines)."""
    from orchestrator.services.api.auth import hash_password

    accounts, lines = [], []
    for role in Role:
        password = secrets.token_urlsafe(12)
        accounts.append({"name": f"demo-{role.value}", "role": role.value, "password_hash": hash_password(password)})
        lines.append(f"demo login ({role.value}): demo-{role.value} / {password}")
    return accounts, lines


def _part(part: str, health: str, summary: str, **fields: Any) -> dict[str, Any]:
    return {"part": part, "health": health, "summary": f"{summary} (demo)", "checked_at": time.time(), **fields}


def demo_state(hosts: int, per_host: int, seed: int, ui_dir: str | None = None) -> tuple[Any, list[str], Any]:
    """(ApiState, banner lines, the fake Marathon to stop at exit)."""
    from orchestrator.clients.marathon import MarathonClient
    from orchestrator.fakes.marathon import FakeMarathon
    from orchestrator.services.api.app import ApiState
    from orchestrator.services.api.config import ApiConfig, Reloading, random_keys
    from orchestrator.services.api.marathon_ops import MemoryPolicyStore
    from orchestrator.services.api.status import StatusService, marathon_status_sync

    accounts, banner = demo_accounts()
    config = ApiConfig.model_validate({"signing_key_file": "(demo: in memory)", "accounts": accounts,
                                       "ui_dir": ui_dir})
    demo = DemoTopology(hosts, per_host, seed)
    fake = FakeMarathon(instances=2, step_seconds=2.0, health_delay=2.0).start()
    counts = demo.marathon_counts()
    for app_id in MARATHON_APPS:
        fake.add_app({"id": app_id, "instances": max(1, min(counts.get(app_id, 1), 20)), "cpus": 0.5, "mem": 256,
                      "cmd": f"/app/{app_id.rsplit('/', 1)[1]}", "healthChecks": [{"protocol": "HTTP", "path": "/ping"}]})
    marathon = MarathonClient(fake.urls, timeout=3.0, retries=1)
    policies = MemoryPolicyStore({"/shop/web": AutoscalePolicy(min_instances=2, max_instances=40, metric="cpu",
                                                               target=60.0)})
    state = ApiState(config=Reloading(None, lambda p: config, initial=config),
                     keys=Reloading(None, lambda p: random_keys(), initial=random_keys()),
                     marathon=marathon, policies=policies)
    status = StatusService(config, marathon, cache_seconds=2.0)
    rng = random.Random(seed)

    async def zookeeper() -> dict[str, Any]:
        servers = [{"address": f"zookeeper-{k}.zookeeper:2181", "reachable": True,
                    "mode": "leader" if k == 1 else "follower", "latency_avg_ms": round(rng.uniform(0.1, 2), 2),
                    "znode_count": 4200, "outstanding_requests": 0} for k in range(3)]
        return _part("zookeeper", "healthy", "quorum of 3, leader zookeeper-1", servers=servers,
                     leader=servers[1]["address"], quorum=True)

    async def mesos() -> dict[str, Any]:
        running = sum(counts.values())
        return _part("mesos", "healthy", f"leader mesos-master-0, {hosts} agents active", leader="mesos-master-0",
                     agents_active=hosts, agents_inactive=0, frameworks=["marathon"], tasks={"TASK_RUNNING": running})

    async def marathon_part() -> dict[str, Any]:
        import anyio.to_thread

        return dict(await anyio.to_thread.run_sync(marathon_status_sync, marathon), summary="from the demo's fake "
                    "Marathon")

    async def zk_sync() -> dict[str, Any]:
        lag = round(rng.uniform(0.002, 0.02), 4)
        return _part("zk-sync", "healthy", f"lag {lag * 1000:.1f} ms", lag_seconds=lag,
                     metrics={"orchestrator_zk_sync_lag_seconds": lag, "orchestrator_zk_sync_up": 1.0})

    async def canary() -> dict[str, Any]:
        gates = [{"name": "error-rate", "query": "(demo)", "value": 0.001, "threshold": "< 0.01", "ok": True},
                 {"name": "p99-latency", "query": "(demo)", "value": 0.05, "threshold": "< 2", "ok": True}]
        return _part("canary", "healthy", "every gate passes", gates=gates)

    status.parts.update({"zookeeper": zookeeper, "mesos": mesos, "marathon": marathon_part, "zk-sync": zk_sync,
                         "canary": canary})
    state.status = status
    now = time.time()
    for i in range(hosts):
        state.topology.ingest(demo.full_report(i, now))

    async def publish() -> None:
        tick = 0
        while True:
            await asyncio.sleep(1.0)
            tick += 1
            for i in range(tick % 15, hosts, 15):
                state.topology.ingest(demo.delta_report(i))
            if state.hub is not None:
                state.hub.notify()

    def start() -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(publish(), name="demo-publisher")

    state.extra_background.append(start)
    return state, banner, fake
