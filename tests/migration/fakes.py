"""Small local stand-ins for Mesos masters and Marathon that answer with the documented response shapes
(Mesos /master/state, /master/health, /metrics/snapshot, the standby's 307 redirect; Marathon /v2/leader)."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server:
    def __init__(self, handle) -> None:
        outer = self
        self.running = False

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                status, headers, body = handle(self.path)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        outer.running = True

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()  # the port refuses connections from now on
            self.running = False


def _json(status: int, doc) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(doc).encode()


@dataclass
class MesosCluster:
    """Masters sharing one view: who leads, the frameworks (with their tasks) and the agents."""

    masters: list[FakeMaster] = field(default_factory=list)
    leader: FakeMaster | None = None
    frameworks: list[dict] = field(default_factory=list)
    slaves: list[dict] = field(default_factory=list)
    failed_tasks: int = 0

    def add_master(self) -> FakeMaster:
        m = FakeMaster(self)
        self.masters.append(m)
        return m

    def add_agent(self, hostname: str) -> str:
        agent_id = f"20150101-000000-16777343-5050-1234-S{len(self.slaves)}"
        self.slaves.append({"id": agent_id, "hostname": hostname, "pid": "slave(1)@127.0.0.1:5051",
                            "active": True, "resources": {"cpus": 4.0, "mem": 7000.0, "disk": 10000.0,
                                                          "ports": "[31000-32000]"}})
        return agent_id

    def run_task(self, agent_id: str, state: str = "TASK_RUNNING") -> dict:
        task = {"id": f"app.instance-{len(self.tasks())}._app.1", "name": "app", "slave_id": agent_id,
                "framework_id": self.frameworks[0]["id"], "state": state, "resources": {"cpus": 0.1}}
        self.frameworks[0]["tasks"].append(task)
        return task

    def tasks(self) -> list[dict]:
        return [t for f in self.frameworks for t in f["tasks"]]


class FakeMaster:
    def __init__(self, cluster: MesosCluster) -> None:
        self.cluster = cluster
        self.server = _Server(self._handle)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.pid = f"master@127.0.0.1:{self.server.port}"

    def stop(self) -> None:
        if self.cluster.leader is self:
            self.cluster.leader = None
        self.server.stop()

    def _handle(self, path: str):
        c = self.cluster
        route = path.split("?", 1)[0]
        if route in ("/master/health", "/health"):
            return 200, {}, b""
        if route in ("/master/state", "/state", "/state.json"):
            if c.leader is None:
                return 503, {}, b"No leader elected"
            if c.leader is not self:  # a standby redirects, protocol-relative
                return 307, {"Location": f"//127.0.0.1:{c.leader.server.port}{path}"}, b""
            lead = c.leader
            state = {"version": "1.11.0", "pid": self.pid, "leader": lead.pid, "hostname": "127.0.0.1",
                     "elected_time": 1700000000.0, "activated_slaves": len(c.slaves),
                     "leader_info": {"id": "m1", "pid": lead.pid, "hostname": "127.0.0.1", "ip": 16777343,
                                     "port": lead.server.port},
                     "frameworks": c.frameworks, "slaves": c.slaves}
            return _json(200, state)
        if route == "/metrics/snapshot":
            return _json(200, {"master/elected": 1.0 if c.leader is self else 0.0, "master/uptime_secs": 100.0,
                               "master/tasks_failed": float(c.failed_tasks), "master/tasks_lost": 0.0,
                               "master/tasks_error": 0, "master/slaves_active": float(len(c.slaves))})
        return 404, {}, b""


class FakeMarathon:
    def __init__(self) -> None:
        self.leader: str | None = "127.0.0.1:8080"
        self.server = _Server(self._handle)
        self.url = f"http://127.0.0.1:{self.server.port}"

    def _handle(self, path: str):
        if path.split("?", 1)[0] == "/v2/leader":
            if self.leader is None:
                return _json(404, {"message": "There is no leader"})
            return _json(200, {"leader": self.leader})
        return 404, {}, b""

    def stop(self) -> None:
        self.server.stop()


class StaticHttp:
    """Serves fixed text at every path (e.g. a /metrics page)."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.server = _Server(lambda path: (200, {"Content-Type": "text/plain"}, self.text.encode()))
        self.url = f"http://127.0.0.1:{self.server.port}/metrics"

    def stop(self) -> None:
        self.server.stop()
