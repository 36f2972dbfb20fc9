"""`orchestrator exporter mesos`: Mesos masters and agents as Prometheus metrics, built fresh at every scrape.

- Every master's own `/metrics/snapshot` at each scrape (cheap; never redirected): elected, uptime, and on
  the leader agents, frameworks and tasks by state and resources. Names and labels are those the alert
  rules use (components/monitoring.py; mesos_exporter's names, docs/exporters.md has the map).
- The leader's `/master/state` (expensive on big clusters: mesos_exporter #74) at most once per
  `state_interval` (30 s) whatever the scrape rate: per-agent activity and agent discovery.
- Each agent's `/metrics/snapshot` and `/monitor/statistics` (in parallel, bounded): registered, tasks, and
  executors' CPU and memory summed per (framework, Marathon app) - never per task id (no churn).
- A custom collector: every family is rebuilt per scrape, so a vanished app, agent or framework has no
  series at the next scrape (mesos_exporter #25 leaked them).

Agents register as `slave(1)@ip:port`; state's agent states are 1.x `active` flags.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orchestrator.clients.mesos import ExecutorStatistics, MasterState, MesosClient, marathon_app_id
from orchestrator.errors import OrchestratorError
from orchestrator.services.exporters.common import TargetHealth, Throttled

ACTIVE_STATES = ("staging", "starting", "running", "killing", "unreachable")
# /metrics/snapshot key suffix -> the `state` label of mesos_master_task_states_exit_total.
EXIT_STATES = {"finished": "finished", "failed": "failed", "killed": "killed", "lost": "lost", "error": "errored",
               "dropped": "dropped", "gone": "gone"}
MB = 1024 * 1024


def _target(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")


def agent_url(pid: str, scheme: str = "http") -> str | None:
    """`slave(1)@10.0.0.5:5051` -> `http://10.0.0.5:5051`."""
    _, at, address = pid.partition("@")
    return f"{scheme}://{address}" if at and address else None


def connection_states(connected: float, disconnected: float, active: float) -> dict[str, float]:
    """Mesos deactivates an agent or framework when it disconnects, so active implies connected; the
    snapshot's four counts then give the three populated combinations exactly."""
    return {"connected_active": active, "connected_inactive": max(connected - active, 0.0),
            "disconnected_inactive": disconnected, "disconnected_active": 0.0}


@dataclass
class AgentSample:
    url: str
    snapshot: dict[str, float] | None
    statistics: list[ExecutorStatistics] | None


class MesosCollector(Collector):
    def __init__(self, client: MesosClient, masters: list[str], agents: list[str] | None = None,
                 discover_agents: bool = True, state_interval: float = 30.0, workers: int = 16,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client, self.masters = client, masters
        self.static_agents = list(agents or [])
        self.discover_agents = discover_agents
        self.state = Throttled(client.master_state, state_interval, clock)
        self.health = TargetHealth("mesos")
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="mesos-agent")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def collect(self) -> Iterator[Metric]:
        started = time.perf_counter()
        up: dict[str, bool] = {}
        elected = GaugeMetricFamily("mesos_master_elected", "1 if this master is the elected leader",
                                    labels=["master"])
        uptime = GaugeMetricFamily("mesos_master_uptime_seconds", "Seconds since this master started",
                                   labels=["master"])
        agents = GaugeMetricFamily("mesos_master_slaves_state", "Agents known to the leader by connection and "
                                   "activation state", labels=["master", "state"])
        frameworks = GaugeMetricFamily("mesos_master_frameworks_state", "Frameworks known to the leader by "
                                       "connection and activation state", labels=["master", "state"])
        current = GaugeMetricFamily("mesos_master_task_states_current", "Tasks in a non-terminal state",
                                    labels=["master", "state"])
        exits = CounterMetricFamily("mesos_master_task_states_exit", "Tasks that reached a terminal state since "
                                    "this master was elected", labels=["master", "state"])
        cpus = GaugeMetricFamily("mesos_master_cpus", "CPUs offered by the agents", labels=["master", "type"])
        mem = GaugeMetricFamily("mesos_master_mem_bytes", "Memory offered by the agents", labels=["master", "type"])
        disk = GaugeMetricFamily("mesos_master_disk_bytes", "Disk offered by the agents", labels=["master", "type"])

        for url in self.masters:
            target = _target(url)
            try:
                snap = self.client.master_snapshot(url)
            except OrchestratorError:
                up[target] = False
                continue
            up[target] = True
            is_leader = snap.get("master/elected", 0.0) >= 1.0
            elected.add_metric([target], 1.0 if is_leader else 0.0)
            if "master/uptime_secs" in snap:
                uptime.add_metric([target], snap["master/uptime_secs"])
            if not is_leader:
                continue  # a standby knows nothing of agents and tasks: no zero series to mislead sums
            s = snap.get
            for state, value in connection_states(s("master/slaves_connected", 0.0), s("master/slaves_disconnected", 0.0),
                                                  s("master/slaves_active", 0.0)).items():
                agents.add_metric([target, state], value)
            for state, value in connection_states(s("master/frameworks_connected", 0.0),
                                                  s("master/frameworks_disconnected", 0.0),
                                                  s("master/frameworks_active", 0.0)).items():
                frameworks.add_metric([target, state], value)
            for state in ACTIVE_STATES:
                if f"master/tasks_{state}" in snap:
                    current.add_metric([target, state], snap[f"master/tasks_{state}"])
            for key, state in EXIT_STATES.items():
                if f"master/tasks_{key}" in snap:
                    exits.add_metric([target, state], snap[f"master/tasks_{key}"])
            for family, prefix, scale in ((cpus, "cpus", 1.0), (mem, "mem", MB), (disk, "disk", MB)):
                for kind in ("total", "used"):
                    if f"master/{prefix}_{kind}" in snap:
                        family.add_metric([target, kind], snap[f"master/{prefix}_{kind}"] * scale)
        yield from (elected, uptime, agents, frameworks, current, exits, cpus, mem, disk)

        master_state = self.state.get()
        if self.state.error is not None:
            up["/master/state"] = False
        elif master_state is not None:
            up["/master/state"] = True
        yield from self._state_families(master_state)
        yield from self._agent_families(master_state, up)
        yield from self.health.families(up, time.perf_counter() - started)

    def _state_families(self, state: MasterState | None) -> Iterator[Metric]:
        active = GaugeMetricFamily("mesos_master_agent_active", "1 if the leader lists the agent as active",
                                   labels=["agent", "hostname"])
        framework_tasks = GaugeMetricFamily("mesos_master_framework_tasks", "Tasks per framework and state "
                                            "(from /master/state, at most 30 s old)", labels=["framework", "state"])
        age = GaugeMetricFamily("mesos_master_state_age_seconds", "Age of the cached /master/state")
        if state is not None:
            for agent in state.agents:
                active.add_metric([agent.id, agent.hostname], 1.0 if agent.active else 0.0)
            counts: dict[tuple[str, str], int] = defaultdict(int)
            for fw in state.frameworks:
                for task in fw.tasks:
                    counts[(fw.name or fw.id, task.state.removeprefix("TASK_").lower())] += 1
            for (name, task_state), n in sorted(counts.items()):
                framework_tasks.add_metric([name, task_state], float(n))
            age.add_metric([], self.state.age() or 0.0)
        yield from (active, framework_tasks, age)

    def _agent_urls(self, state: MasterState | None) -> list[str]:
        urls = list(self.static_agents)
        if self.discover_agents and state is not None:
            for agent in state.agents:
                url = agent_url(agent.pid)
                if url and url not in urls:
                    urls.append(url)
        return urls

    def _sample(self, url: str) -> AgentSample:
        try:
            snapshot = self.client.agent_snapshot(url)
        except OrchestratorError:
            return AgentSample(url, None, None)
        try:
            statistics = self.client.agent_statistics(url)
        except OrchestratorError:
            statistics = None
        return AgentSample(url, snapshot, statistics)

    def _agent_families(self, state: MasterState | None, up: dict[str, bool]) -> Iterator[Metric]:
        registered = GaugeMetricFamily("mesos_agent_registered", "1 if the agent is registered with a master",
                                       labels=["agent"])
        running = GaugeMetricFamily("mesos_agent_tasks_running", "Tasks running on the agent", labels=["agent"])
        cpus = GaugeMetricFamily("mesos_agent_cpus", "Agent CPUs", labels=["agent", "type"])
        mem = GaugeMetricFamily("mesos_agent_mem_bytes", "Agent memory", labels=["agent", "type"])
        ex_cpu = CounterMetricFamily("mesos_agent_executor_cpu_seconds", "CPU time of the executors of a "
                                     "framework's app on this agent", labels=["agent", "framework", "app"])
        ex_rss = GaugeMetricFamily("mesos_agent_executor_memory_rss_bytes", "Resident memory of the executors "
                                   "of a framework's app on this agent", labels=["agent", "framework", "app"])
        ex_cpu_limit = GaugeMetricFamily("mesos_agent_executor_cpus_limit", "CPU limit of the executors of a "
                                         "framework's app on this agent", labels=["agent", "framework", "app"])
        ex_mem_limit = GaugeMetricFamily("mesos_agent_executor_memory_limit_bytes", "Memory limit of the "
                                         "executors of a framework's app on this agent",
                                         labels=["agent", "framework", "app"])
        names = {fw.id: fw.name for fw in state.frameworks} if state else {}
        urls = self._agent_urls(state)
        for sample in self.pool.map(self._sample, urls):
            target = _target(sample.url)
            up[target] = sample.snapshot is not None and sample.statistics is not None
            if sample.snapshot is None:
                continue
            snap = sample.snapshot
            registered.add_metric([target], snap.get("slave/registered", 0.0))
            if "slave/tasks_running" in snap:
                running.add_metric([target], snap["slave/tasks_running"])
            for kind in ("total", "used"):
                if f"slave/cpus_{kind}" in snap:
                    cpus.add_metric([target, kind], snap[f"slave/cpus_{kind}"])
                if f"slave/mem_{kind}" in snap:
                    mem.add_metric([target, kind], snap[f"slave/mem_{kind}"] * MB)
            sums: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
            for executor in sample.statistics or []:
                framework = names.get(executor.framework_id, executor.framework_id)
                app = marathon_app_id(executor.source or executor.executor_id) or ""
                st = executor.statistics
                acc = sums[(framework, app)]
                acc[0] += st.get("cpus_user_time_secs", 0.0) + st.get("cpus_system_time_secs", 0.0)
                acc[1] += st.get("mem_rss_bytes", 0.0)
                acc[2] += st.get("cpus_limit", 0.0)
                acc[3] += st.get("mem_limit_bytes", 0.0)
            for (framework, app), (cpu, rss, cpu_limit, mem_limit) in sorted(sums.items()):
                labels = [target, framework, app]
                ex_cpu.add_metric(labels, cpu)
                ex_rss.add_metric(labels, rss)
                ex_cpu_limit.add_metric(labels, cpu_limit)
                ex_mem_limit.add_metric(labels, mem_limit)
        yield from (registered, running, cpus, mem, ex_cpu, ex_rss, ex_cpu_limit, ex_mem_limit)
