"""A real ZooKeeper ensemble on 127.0.0.1 (Debian's `zookeeper` package), started and stopped by PID.

Used by the zoo.cfg test (config text from the component's generator, remapped to loopback) and by the
sync-engine tests (two ensembles). Ports are picked free at start so parallel test runs do not collide.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.tools import require_tool

ZK_JAR = "/usr/share/java/zookeeper.jar"
# Standalone-friendly defaults for loopback tests; callers may pass their own zoo.cfg text instead.
DEFAULT_CFG = """tickTime=500
initLimit=10
syncLimit=5
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr,stat
"""


def free_ports(count: int) -> list[int]:
    socks, ports = [], []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def four_letter(port: int, cmd: str, timeout: float = 2.0) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(cmd.encode())
        chunks = []
        while True:
            data = s.recv(4096)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


@dataclass
class Node:
    node_id: int
    client_port: int
    peer_port: int
    election_port: int
    conf: Path
    proc: subprocess.Popen | None = None


@dataclass
class LocalEnsemble:
    """`size` ZooKeeper servers on loopback. `base_cfg` is zoo.cfg text without server/port/dir lines."""

    workdir: Path
    size: int = 3
    base_cfg: str = DEFAULT_CFG
    heap_mb: int = 256
    nodes: list[Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        require_tool("java", hint="install a JRE (default-jre-headless)")
        require_tool("zookeeper", path=ZK_JAR, hint="apt-get install zookeeper")
        ports = free_ports(3 * self.size)
        for i in range(self.size):
            nid = i + 1
            node_dir = self.workdir / f"zk{nid}"
            (node_dir / "data").mkdir(parents=True, exist_ok=True)
            (node_dir / "data" / "myid").write_text(f"{nid}\n")
            self.nodes.append(Node(nid, ports[3 * i], ports[3 * i + 1], ports[3 * i + 2], node_dir / "zoo.cfg"))
        for node in self.nodes:
            node.conf.write_text(self.config_for(node))

    def config_for(self, node: Node) -> str:
        lines = [self.base_cfg.rstrip("\n"),
                 f"dataDir={node.conf.parent / 'data'}",
                 f"clientPort={node.client_port}",
                 "clientPortAddress=127.0.0.1"]
        if self.size > 1:
            lines += [f"server.{n.node_id}=127.0.0.1:{n.peer_port}:{n.election_port}" for n in self.nodes]
        return "\n".join(lines) + "\n"

    @property
    def connect_string(self) -> str:
        return ",".join(f"127.0.0.1:{n.client_port}" for n in self.nodes)

    def start(self, which: Callable[[Node], bool] = lambda n: True) -> LocalEnsemble:
        for node in self.nodes:
            if which(node) and node.proc is None:
                with open(node.conf.parent / "server.log", "ab") as log:  # the child keeps its own copy
                    node.proc = subprocess.Popen(
                        ["java", f"-Xmx{self.heap_mb}m", "-Dzookeeper.admin.enableServer=false",
                         "-cp", ZK_JAR, "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(node.conf)],
                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop_node(self, node: Node, sig: int = signal.SIGTERM) -> None:
        if node.proc is not None:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.killpg(node.proc.pid, sig)
            try:
                node.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(node.proc.pid, signal.SIGKILL)
                node.proc.wait(timeout=10)
            node.proc = None

    def stop(self) -> None:
        for node in self.nodes:
            self.stop_node(node)

    def mode(self, node: Node) -> str | None:
        """'leader', 'follower' or 'standalone' from the `srvr` 4-letter command; None if not serving."""
        try:
            out = four_letter(node.client_port, "srvr", timeout=1.0)
        except OSError:
            return None
        for line in out.splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return None

    def leader(self) -> Node | None:
        for node in self.nodes:
            if node.proc is not None and self.mode(node) == "leader":
                return node
        return None

    def wait_quorum(self, timeout: float = 30.0) -> dict[int, str]:
        deadline = time.monotonic() + timeout
        modes: dict[int, str | None] = {}
        while time.monotonic() < deadline:
            running = [n for n in self.nodes if n.proc is not None]
            modes = {n.node_id: self.mode(n) for n in running}
            if self.size == 1 and modes.get(1) == "standalone":
                return modes  # type: ignore[return-value]
            if list(modes.values()).count("leader") == 1 and all(modes.values()):
                return modes  # type: ignore[return-value]
            time.sleep(0.1)
        logs = {n.node_id: (n.conf.parent / "server.log").read_text(errors="replace")[-2000:] for n in self.nodes}
        raise TimeoutError(f"no quorum after {timeout}s: modes={modes} logs={logs}")

    def __enter__(self) -> LocalEnsemble:
        self.start()
        try:
            self.wait_quorum()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
