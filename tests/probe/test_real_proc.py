"""The collector on this machine's real /proc: a known process tree and real loopback TCP connections."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from orchestrator.services.probe.collector import Collector, edges

CLIENTS = 3
SERVER = f"""
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
held = [s.accept()[0] for _ in range({CLIENTS})]
print("accepted", flush=True)
sys.stdin.read()
"""
CLIENT = """
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(c.getsockname()[1], flush=True)
sys.stdin.read()
"""
PARENT = """
import subprocess, sys
kids = [subprocess.Popen(["sleep", "120"]) for _ in range(2)]
print(" ".join(str(k.pid) for k in kids), flush=True)
sys.stdin.read()
for k in kids:
    k.kill(); k.wait()
"""


def _start(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


@pytest.fixture
def topology() -> Iterator[dict]:
    started: list[subprocess.Popen[str]] = []
    try:
        parent = _start(PARENT)
        started.append(parent)
        kids = [int(p) for p in parent.stdout.readline().split()]  # type: ignore[union-attr]
        server = _start(SERVER)
        started.append(server)
        port = int(server.stdout.readline())  # type: ignore[union-attr]
        clients = []
        for _ in range(CLIENTS):
            client = _start(CLIENT, str(port))
            started.append(client)
            clients.append((client.pid, int(client.stdout.readline())))  # type: ignore[union-attr]
        assert server.stdout.readline().strip() == "accepted"  # type: ignore[union-attr]
        yield {"parent": parent.pid, "kids": kids, "server": server.pid, "port": port, "clients": clients}
    finally:
        for proc in reversed(started):
            proc.stdin.close()  # type: ignore[union-attr]
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, 9)
                proc.wait(timeout=10)


def test_processes_and_exact_edges(topology: dict) -> None:
    report = Collector("test-node", "/proc", "/sys/fs/cgroup").collect(0).report
    procs = {p.pid: p for p in report.processes}
    assert procs[topology["parent"]].ppid == os.getpid()
    for kid in topology["kids"]:
        assert procs[kid].ppid == topology["parent"] and procs[kid].name == "sleep"
        assert procs[kid].cmdline == "sleep 120"
    assert procs[topology["server"]].fds >= CLIENTS + 1

    port, server = topology["port"], topology["server"]
    # The server's one listening socket (other jobs on this machine may listen on the same port number of
    # another address, e.g. [::1]: they are not ours).
    assert [(c.local_ip, c.local_port) for c in report.connections if c.state == "listen" and c.pid == server] \
        == [("127.0.0.1", port)]
    assert [c.pid for c in report.connections
            if c.state == "listen" and (c.local_ip, c.local_port) == ("127.0.0.1", port)] == [server]
    client_pids = {pid for pid, _ in topology["clients"]}
    ours = {e for e in edges(report.connections) if e[1] == server or e[0] in client_pids}
    assert ours == {(pid, server, port) for pid in client_pids}
    # Both ends of every connection are in the report with their owner.
    ends = {(c.local_port, c.remote_port): c.pid for c in report.connections if c.state == "established"}
    for pid, client_port in topology["clients"]:
        assert ends[(client_port, port)] == pid and ends[(port, client_port)] == server
