"""The one fake Mesos: masters and agents as loopback HTTP servers that behave as the Mesos docs say.

- every master answers `/master/health` (200, empty) and its own `/metrics/snapshot` (`master/elected` 1 on
  the leader, 0 on standbys);
- `/master/redirect` answers 307 `Location: //host:port` (protocol-relative, no path) to the leader, even on
  the leader, and 503 when no leader is elected;
- `/master/state` (aliases `/state`, `/state.json`) answers on the leader; a standby answers 307 to the
  leader keeping path and query; 503 without a leader;
- agents answer `/state` (and `/slave(1)/state`), `/health`, `/metrics/snapshot` and `/monitor/statistics`;
- with `credentials`, every endpoint but health and redirect requires HTTP Basic (401 otherwise);
- `legacy=True` serves the pre-1.0 shapes: no `leader_info`, no `connected`, top-level task counters.

Failover is a method call (`elect`, `no_leader`, `stop_master`), a stopped master refuses connections, and
every request is counted per server and path (`requests`), so tests can assert "one /master/state per 30 s".
`clock` (seconds, default `time.time`) drives uptimes and timestamps so tests can simulate time.
"""
from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from orchestrator.clients.mesos import Credentials

TERMINAL = {"TASK_FINISHED": "finished", "TASK_FAILED": "failed", "TASK_KILLED": "killed",
            "TASK_LOST": "lost", "TASK_ERROR": "error", "TASK_DROPPED": "dropped", "TASK_GONE": "gone"}
ACTIVE = {"TASK_STAGING": "staging", "TASK_STARTING": "starting", "TASK_RUNNING": "running",
          "TASK_KILLING": "killing", "TASK_UNREACHABLE": "unreachable"}
UNAUTHENTICATED = {"/health", "/master/health", "/master/redirect", "/redirect", "/slave(1)/health"}


@dataclass
class FakeTask:
    id: str
    name: str
    framework_id: str
    agent_id: str
    state: str = "TASK_RUNNING"
    cpus: float = 0.1
    mem: float = 32.0
    container_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    # Statistics the agent reports for the task's executor (/monitor/statistics).
    cpu_seconds: float = 0.0
    rss_bytes: float = 0.0


@dataclass
class FakeFramework:
    id: str
    name: str
    active: bool = True
    connected: bool = True


@dataclass
class FakeAgent:
    id: str
    index: int
    active: bool = True
    connected: bool = True
    hostname: str = "127.0.0.1"  # what the masters report; tests of many "hosts" give each its own name


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, fake: FakeMesos, role: str, index: int) -> None:
        self.fake, self.role, self.index = fake, role, index
        self.stopped = False
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                       name=f"fake-mesos-{role}-{index}", daemon=True)
        self.thread.start()

    @property
    def hostport(self) -> str:
        host, port = self.server_address[:2]
        return f"{host!s}:{port}"

    def stop(self) -> None:
        self.stopped = True  # kept-alive connections are dropped too: a stopped master answers nothing
        self.shutdown()
        self.server_close()
        self.thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        fake, srv = self.server.fake, self.server
        if srv.stopped:
            self.close_connection = True
            return
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        with fake.lock:
            fake.requests[(srv.role, srv.index, path)] += 1
        if fake.credentials and path not in UNAUTHENTICATED and not self._authorised(fake.credentials):
            self._send(401, b"", extra={"WWW-Authenticate": f'Basic realm="mesos-{srv.role}-readonly"'})
            return
        if srv.role == "master":
            self._master(fake, srv.index, path, parts.query)
        else:
            self._agent(fake, srv.index, path)

    def _authorised(self, creds: Credentials) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == creds.principal and secret == creds.secret

    def _master(self, fake: FakeMesos, index: int, path: str, query: str) -> None:
        leader = fake.leader
        if path in ("/master/health", "/health"):
            self._send(200, b"")
        elif path in ("/master/redirect", "/redirect"):
            if leader is None:
                self._send(503, b"")
            else:
                self._send(307, b"", extra={"Location": f"//{fake.masters[leader].hostport}"})
        elif path == "/metrics/snapshot":
            self._json(fake.master_snapshot(index))
        elif path in ("/master/state", "/state", "/state.json", "/master/state.json"):
            if leader is None:
                self._send(503, b"")
            elif leader != index:
                location = f"//{fake.masters[leader].hostport}{path}" + (f"?{query}" if query else "")
                self._send(307, b"", extra={"Location": location})
            else:
                self._json(fake.master_state(index))
        else:
            self._send(404, b"")

    def _agent(self, fake: FakeMesos, index: int, path: str) -> None:
        if path in ("/health", "/slave(1)/health"):
            self._send(200, b"")
        elif path in ("/state", "/slave(1)/state", "/state.json"):
            self._json(fake.agent_state(index))
        elif path == "/metrics/snapshot":
            self._json(fake.agent_snapshot(index))
        elif path == "/monitor/statistics":
            self._json(fake.agent_statistics(index))
        else:
            self._send(404, b"")

    def _json(self, body: Any) -> None:
        self._send(200, json.dumps(body).encode(), content_type="application/json")

    def _send(self, code: int, body: bytes, content_type: str = "text/plain",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


class FakeMesos:
    """`masters` master servers (master 0 elected) and `agents` agent servers on 127.0.0.1, ephemeral ports."""

    def __init__(self, masters: int = 3, agents: int = 1, credentials: Credentials | None = None,
                 legacy: bool = False, clock: Callable[[], float] = time.time, version: str = "1.7.1") -> None:
        self.lock = threading.RLock()
        self.clock, self.legacy, self.version, self.credentials = clock, legacy, version, credentials
        self.requests: Counter[tuple[str, int, str]] = Counter()
        self.started_at = clock()
        self.elected_at: float | None = self.started_at
        self.leader: int | None = 0
        self.frameworks: dict[str, FakeFramework] = {}
        self.tasks: dict[str, FakeTask] = {}
        self.completed: list[FakeTask] = []
        self.exits: Counter[str] = Counter()  # terminal state -> count, for the leader's counters
        self.agents_meta: list[FakeAgent] = []
        self.masters: list[_Server] = [_Server(self, "master", i) for i in range(masters)]
        self.agents: list[_Server] = []
        for _ in range(agents):
            self.add_agent()

    # -- lifecycle ----------------------------------------------------------------------------------
    def __enter__(self) -> FakeMesos:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for server in self.masters + self.agents:
            if server.thread.is_alive():
                server.stop()

    @property
    def master_urls(self) -> list[str]:
        return [f"http://{m.hostport}" for m in self.masters]

    @property
    def agent_urls(self) -> list[str]:
        return [f"http://{a.hostport}" for a in self.agents]

    def master_pid(self, index: int) -> str:
        return f"master@{self.masters[index].hostport}"

    def state_requests(self) -> int:
        """How many /master/state (or alias) requests the masters received in total."""
        with self.lock:
            return sum(n for (role, _i, path), n in self.requests.items()
                       if role == "master" and path in ("/master/state", "/state", "/state.json"))

    # -- failover -----------------------------------------------------------------------------------
    def elect(self, index: int) -> None:
        with self.lock:
            self.leader, self.elected_at = index, self.clock()

    def no_leader(self) -> None:
        with self.lock:
            self.leader, self.elected_at = None, None

    def stop_master(self, index: int) -> None:
        """Stop a master's server (connections refused). If it led, nobody leads until `elect`."""
        self.masters[index].stop()
        with self.lock:
            if self.leader == index:
                self.leader, self.elected_at = None, None

    # -- cluster content ----------------------------------------------------------------------------
    def add_agent(self, hostname: str = "127.0.0.1") -> str:
        with self.lock:
            index = len(self.agents)
            agent_id = f"fake-agent-S{index}"
            self.agents_meta.append(FakeAgent(agent_id, index, hostname=hostname))
            self.agents.append(_Server(self, "agent", index))
            return agent_id

    def set_agent(self, index: int, active: bool, connected: bool) -> None:
        with self.lock:
            self.agents_meta[index].active, self.agents_meta[index].connected = active, connected

    def add_framework(self, name: str, framework_id: str | None = None, active: bool = True,
                      connected: bool = True) -> str:
        with self.lock:
            fid = framework_id or f"fake-framework-{len(self.frameworks):04d}"
            self.frameworks[fid] = FakeFramework(fid, name, active, connected)
            return fid

    def marathon_framework(self) -> str:
        with self.lock:
            for fid, framework in self.frameworks.items():
                if framework.name == "marathon":
                    return fid
            return self.add_framework("marathon")

    def add_task(self, task_id: str, framework_id: str, agent: int = 0, state: str = "TASK_RUNNING",
                 name: str = "", cpus: float = 0.1, mem: float = 32.0, container_id: str | None = None) -> FakeTask:
        with self.lock:
            task = FakeTask(task_id, name or task_id.split(".")[0], framework_id, self.agents_meta[agent].id,
                            state, cpus, mem)
            if container_id:
                task.container_id = container_id
            self.tasks[task_id] = task
            return task

    def add_marathon_task(self, app_id: str, agent: int = 0, state: str = "TASK_RUNNING",
                          cpus: float = 0.1, mem: float = 32.0) -> FakeTask:
        """A task named the way Marathon >= 1.9 names them: `<app with / as _>.instance-<uuid>._app.1`."""
        safe = app_id.strip("/").replace("/", "_")
        task_id = f"{safe}.instance-{uuid.uuid4()}._app.1"
        return self.add_task(task_id, self.marathon_framework(), agent, state, safe, cpus, mem)

    def finish_task(self, task_id: str, state: str = "TASK_FINISHED") -> None:
        """Move a task to a terminal state: it leaves the live list and counts in the exit counters."""
        with self.lock:
            task = self.tasks.pop(task_id)
            task.state = state
            self.completed.append(task)
            self.exits[TERMINAL[state]] += 1

    def remove_task(self, task_id: str) -> None:
        with self.lock:
            self.tasks.pop(task_id, None)

    # -- response bodies ----------------------------------------------------------------------------
    def _task_json(self, task: FakeTask) -> dict[str, Any]:
        status: dict[str, Any] = {"state": task.state, "timestamp": self.clock()}
        if not self.legacy:
            status["container_status"] = {"container_id": {"value": task.container_id}}
        return {"id": task.id, "name": task.name, "framework_id": task.framework_id, "executor_id": "",
                "slave_id": task.agent_id, "state": task.state, "statuses": [status],
                "resources": {"cpus": task.cpus, "mem": task.mem, "disk": 0, "ports": None}}

    def master_state(self, index: int) -> dict[str, Any]:
        with self.lock:
            leader_pid = self.master_pid(self.leader) if self.leader is not None else ""
            slaves = [{"id": a.id, "pid": f"slave(1)@{self.agents[a.index].hostport}",
                       "hostname": a.hostname, "active": a.active, "registered_time": self.started_at,
                       "resources": {"cpus": 4, "mem": 8192, "disk": 10240, "ports": "[31000-32000]"}}
                      for a in self.agents_meta]
            frameworks = []
            for fw in self.frameworks.values():
                body: dict[str, Any] = {"id": fw.id, "name": fw.name, "active": fw.active, "role": "*",
                                        "hostname": "127.0.0.1",
                                        "tasks": [self._task_json(t) for t in self.tasks.values()
                                                  if t.framework_id == fw.id],
                                        "completed_tasks": [self._task_json(t) for t in self.completed
                                                            if t.framework_id == fw.id]}
                if not self.legacy:
                    body["connected"] = fw.connected
                frameworks.append(body)
            state: dict[str, Any] = {
                "version": self.version, "id": f"fake-master-{index}", "pid": self.master_pid(index),
                "hostname": "127.0.0.1", "leader": leader_pid, "start_time": self.started_at,
                "elected_time": self.elected_at, "cluster": "fake",
                "activated_slaves": sum(1 for a in self.agents_meta if a.active),
                "deactivated_slaves": sum(1 for a in self.agents_meta if not a.active),
                "slaves": slaves, "frameworks": frameworks, "completed_frameworks": [],
            }
            if self.legacy:
                for terminal, key in (("failed", "failed_tasks"), ("finished", "finished_tasks"),
                                      ("killed", "killed_tasks"), ("lost", "lost_tasks")):
                    state[key] = self.exits[terminal]
            elif self.leader is not None:
                host, port = self.masters[self.leader].server_address[:2]
                state["leader_info"] = {"id": f"fake-master-{self.leader}", "pid": leader_pid,
                                        "hostname": str(host), "port": port}
            return state

    def master_snapshot(self, index: int) -> dict[str, float]:
        with self.lock:
            now = self.clock()
            snap: dict[str, float] = {"master/uptime_secs": round(now - self.started_at, 3),
                                      "master/elected": 1.0 if self.leader == index else 0.0,
                                      "system/cpus_total": 2.0}
            if self.leader != index:
                return snap  # a standby knows no agents, frameworks or tasks
            agents = self.agents_meta
            snap.update({
                "master/slaves_active": sum(1 for a in agents if a.active),
                "master/slaves_inactive": sum(1 for a in agents if not a.active),
                "master/slaves_connected": sum(1 for a in agents if a.connected),
                "master/slaves_disconnected": sum(1 for a in agents if not a.connected),
                "master/frameworks_active": sum(1 for f in self.frameworks.values() if f.active),
                "master/frameworks_inactive": sum(1 for f in self.frameworks.values() if not f.active),
                "master/frameworks_connected": sum(1 for f in self.frameworks.values() if f.connected),
                "master/frameworks_disconnected": sum(1 for f in self.frameworks.values() if not f.connected),
                "master/cpus_total": 4.0 * len(agents), "master/mem_total": 8192.0 * len(agents),
                "master/cpus_used": sum(t.cpus for t in self.tasks.values()),
                "master/mem_used": sum(t.mem for t in self.tasks.values()),
            })
            for state, short in ACTIVE.items():
                snap[f"master/tasks_{short}"] = sum(1 for t in self.tasks.values() if t.state == state)
            for short in TERMINAL.values():
                snap[f"master/tasks_{short}"] = float(self.exits[short])
            return snap

    def agent_state(self, index: int) -> dict[str, Any]:
        with self.lock:
            meta = self.agents_meta[index]
            by_framework: dict[str, list[dict[str, Any]]] = {}
            for task in self.tasks.values():
                if task.agent_id != meta.id:
                    continue
                # Command executor: one executor per task, its id the task id, its container the task's.
                by_framework.setdefault(task.framework_id, []).append({
                    "id": task.id, "name": f"Command Executor (Task: {task.id})", "source": task.id,
                    "container": task.container_id, "framework_id": task.framework_id,
                    "directory": f"/var/lib/mesos/slaves/{meta.id}/frameworks/{task.framework_id}"
                                 f"/executors/{task.id}/runs/{task.container_id}",
                    "resources": {"cpus": task.cpus + 0.1, "mem": task.mem + 32},
                    "tasks": [self._task_json(task)], "queued_tasks": [], "completed_tasks": []})
            frameworks = [{"id": fid, "name": self.frameworks[fid].name, "executors": executors,
                           "completed_executors": []} for fid, executors in by_framework.items()]
            return {"version": self.version, "id": meta.id, "pid": f"slave(1)@{self.agents[index].hostport}",
                    "hostname": meta.hostname, "frameworks": frameworks, "completed_frameworks": []}

    def agent_snapshot(self, index: int) -> dict[str, float]:
        with self.lock:
            meta = self.agents_meta[index]
            mine = [t for t in self.tasks.values() if t.agent_id == meta.id]
            return {"slave/registered": 1.0 if meta.connected else 0.0,
                    "slave/uptime_secs": round(self.clock() - self.started_at, 3),
                    "slave/tasks_running": sum(1 for t in mine if t.state == "TASK_RUNNING"),
                    "slave/executors_running": float(len(mine)),
                    "slave/cpus_total": 4.0, "slave/cpus_used": sum(t.cpus for t in mine),
                    "slave/mem_total": 8192.0, "slave/mem_used": sum(t.mem for t in mine)}

    def agent_statistics(self, index: int) -> list[dict[str, Any]]:
        with self.lock:
            meta = self.agents_meta[index]
            return [{"executor_id": t.id, "executor_name": f"Command Executor (Task: {t.id})",
                     "framework_id": t.framework_id, "source": t.id,
                     "statistics": {"timestamp": self.clock(), "cpus_limit": t.cpus + 0.1,
                                    "cpus_user_time_secs": t.cpu_seconds * 0.8,
                                    "cpus_system_time_secs": t.cpu_seconds * 0.2,
                                    "mem_limit_bytes": (t.mem + 32) * 2**20, "mem_rss_bytes": t.rss_bytes}}
                    for t in self.tasks.values() if t.agent_id == meta.id]
