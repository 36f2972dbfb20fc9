"""The collector on proc and cgroup trees the test builds: attribution, sockets, skips, CPU, deltas."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from orchestrator.clients.mesos import MesosClient
from orchestrator.contracts.report import DeltaReport, FullReport, parse_report
from orchestrator.fakes.mesos import FakeMesos
from orchestrator.services.probe.collector import Collector, MesosTasks, PodMeta, StaticPods, edges
from orchestrator.services.probe.procfs import walk_processes
from orchestrator.services.probe.publisher import make_delta
from tests.probe.proctree import HOST_NETNS, add_process, write_host_files, write_net
from tests.probe.receiver import apply

DOCKER = "4f1c8a3e" * 8
POD_CONTAINER = "0123abcd" * 8
POD_UID = "7d0c4c1e-2b8a-4f7e-9d55-1a2b3c4d5e6f"
POD_SLICE = f"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice"
LISTEN, ESTABLISHED = "0A", "01"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mesos():
    with FakeMesos(masters=1, agents=1) as fake:
        yield fake


def build(root: Path, cgroups: Path, mesos_container: str, second: bool = False) -> None:
    """The node: systemd, sshd + a client on the host network, a Docker container with its own netns,
    a Kubernetes pod (containerd, systemd driver), a Mesos container, and three broken entries."""
    proc = root
    write_host_files(proc)
    host = add_process(proc, 1, 0, "systemd", ["/sbin/init"])
    write_net(host, [
        ("0.0.0.0", 22, "0.0.0.0", 0, LISTEN, 7001),
        ("127.0.0.1", 22, "127.0.0.1", 50000, ESTABLISHED, 7003),
    ] + ([] if second else [("127.0.0.1", 50000, "127.0.0.1", 22, ESTABLISHED, 7002)]),
        [("::1", 8080, "::", 0, LISTEN, 7004)])
    with open(host / "net" / "tcp", "a") as fh:
        fh.write("   9: this row is garbage\n")
    add_process(proc, 500, 1, "sshd", ["/usr/sbin/sshd", "-D"], sockets=[7001, 7003, 7004], other_fds=2)
    if not second:
        add_process(proc, 501, 1, "ssh", ["ssh", "localhost"], sockets=[7002])
    web = add_process(proc, 100, 1, "nginx", ["nginx", "-g", "daemon off;"],
                      cgroup=f"0::/system.slice/docker-{DOCKER}.scope\n", netns="net:[111]",
                      sockets=[5001, 5002], ticks=(100, 100) if second else (0, 0))
    write_net(web, [("0.0.0.0", 80, "0.0.0.0", 0, LISTEN, 5001),
                    ("10.0.0.5", 80, "10.0.0.9", 40000, ESTABLISHED, 5002)])
    add_process(proc, 101, 100, "nginx", ["nginx: worker process"],
                cgroup=f"0::/system.slice/docker-{DOCKER}.scope\n", netns="net:[111]")
    pod = add_process(proc, 200, 1, "java", ["java", "-jar", "app.jar"],
                      cgroup=f"0::{POD_SLICE}/cri-containerd-{POD_CONTAINER}.scope\n", netns="net:[222]")
    write_net(pod, [])
    add_process(proc, 300, 1, "python3", ["python3", "-m", "http.server"], cgroup=f"0::/mesos/{mesos_container}\n")
    (proc / "400").mkdir()                                          # exited between listdir and read
    add_process(proc, 401, 1, "defunct", state="Z")                 # zombie: not reported, not an error
    (proc / "402").mkdir()
    (proc / "402" / "stat").write_text("402 garbage\n")             # malformed
    (proc / "self").mkdir()                                         # non-numeric entries are ignored

    (cgroups / "cgroup.controllers").write_text("cpu memory\n")
    for path, usage, memory in ((f"system.slice/docker-{DOCKER}.scope", 5_000_000 if second else 0, 50 << 20),
                                (f"{POD_SLICE.lstrip('/')}/cri-containerd-{POD_CONTAINER}.scope", 0, 200 << 20),
                                (f"mesos/{mesos_container}", 0, 30 << 20)):
        (cgroups / path).mkdir(parents=True, exist_ok=True)
        (cgroups / path / "cpu.stat").write_text(f"usage_usec {usage}\n")
        (cgroups / path / "memory.current").write_text(f"{memory}\n")


def test_full_report_from_a_built_tree(tmp_path, mesos: FakeMesos) -> None:
    task = mesos.add_marathon_task("/shop/api")
    proc, cg = tmp_path / "proc", tmp_path / "cgroup"
    proc.mkdir()
    cg.mkdir()
    build(proc, cg, task.container_id)
    pods = StaticPods({POD_UID: PodMeta("web-0", "shop", {"app": "web"})})
    clock = Clock()
    with MesosClient(mesos.master_urls) as client:
        collector = Collector("node-a", proc, cg, pods=pods, mesos=MesosTasks(client, mesos.agent_urls[0]),
                              clock=clock)
        first = collector.collect(0)
    report = parse_report(first.report.model_dump(mode="json"))  # what the API will accept
    assert isinstance(report, FullReport)

    assert {p.pid: (p.ppid, p.name) for p in report.processes} == {
        1: (0, "systemd"), 100: (1, "nginx"), 101: (100, "nginx"), 200: (1, "java"), 300: (1, "python3"),
        500: (1, "sshd"), 501: (1, "ssh")}
    assert first.skipped == 2 and report.cost.skipped_processes == 2
    procs = {p.pid: p for p in report.processes}
    assert procs[100].cmdline == "nginx -g daemon off;" and procs[500].fds == 5 and procs[100].user == "root"
    assert procs[101].container_id == DOCKER and procs[1].container_id is None

    containers = {c.id: c for c in report.containers}
    assert set(containers) == {DOCKER, POD_CONTAINER, task.container_id}
    assert (containers[DOCKER].runtime, containers[DOCKER].pod_uid, containers[DOCKER].memory_bytes) == \
        ("docker", None, 50 << 20)
    pod = containers[POD_CONTAINER]
    assert (pod.runtime, pod.pod_uid, pod.pod_name, pod.namespace, pod.labels) == \
        ("containerd", POD_UID, "web-0", "shop", {"app": "web"})
    mesos_c = containers[task.container_id]
    assert (mesos_c.runtime, mesos_c.mesos_task_id, mesos_c.marathon_app_id) == ("mesos", task.id, "/shop/api")

    # One read per network namespace (host, 111, 222); the garbage row is skipped.
    assert first.namespaces_read == 3
    conns = {(c.state, c.local_ip, c.local_port, c.remote_ip, c.remote_port): c.pid for c in report.connections}
    assert conns == {
        ("listen", "0.0.0.0", 22, None, None): 500,
        ("established", "127.0.0.1", 22, "127.0.0.1", 50000): 500,
        ("established", "127.0.0.1", 50000, "127.0.0.1", 22): 501,
        ("listen", "::1", 8080, None, None): 500,
        ("listen", "0.0.0.0", 80, None, None): 100,
        ("established", "10.0.0.5", 80, "10.0.0.9", 40000): 100,
    }
    assert edges(report.connections) == {(501, 500, 22)}

    assert (report.host.hostname, report.host.kernel, report.host.cpus) == ("node-a", "6.1.0-test", 2)
    assert report.host.memory_used_bytes == 600 * 1024 and report.host.load1 == 0.5

    # Ten seconds later: nginx used 2 s of CPU (200 ticks), its container 5 s; ssh exited.
    shutil.rmtree(proc)
    shutil.rmtree(cg)
    proc.mkdir()
    cg.mkdir()
    build(proc, cg, task.container_id, second=True)
    clock.now += 10
    with MesosClient(mesos.master_urls) as client:
        collector.mesos = MesosTasks(client, mesos.agent_urls[0])
        second = collector.collect(1).report
    assert {p.pid: p.cpu_percent for p in second.processes}[100] == pytest.approx(200 / os.sysconf("SC_CLK_TCK") * 10)
    assert {c.id: c.cpu_percent for c in second.containers}[DOCKER] == pytest.approx(50.0)

    delta = make_delta(report, second)
    parsed = parse_report(delta.model_dump(mode="json"))
    assert isinstance(parsed, DeltaReport) and parsed.base_seq == 0 and parsed.seq == 1
    assert [p.pid for p in delta.processes] == [100] and delta.removed_processes == [501]
    assert [c.id for c in delta.containers] == [DOCKER] and delta.removed_containers == []
    assert [(c.local_port, c.remote_port) for c in delta.connections_removed] == [(50000, 22)]
    assert delta.connections_added == []
    assert apply(report, delta) == second


def test_mesos_agent_down_is_counted_not_fatal(tmp_path) -> None:
    fake = FakeMesos(masters=1, agents=1)
    agent_url = fake.agent_urls[0]
    fake.close()
    proc, cg = tmp_path / "proc", tmp_path / "cgroup"
    proc.mkdir()
    cg.mkdir()
    build(proc, cg, "f67a5e0b-91f9-474a-94a0-e2c6a3b28ea4")
    with MesosClient(agent_url, timeout=1) as client:
        tasks = MesosTasks(client, agent_url)
        report = Collector("n", proc, cg, mesos=tasks).collect(0).report
    assert tasks.errors == 1
    mesos_c = next(c for c in report.containers if c.runtime == "mesos")
    assert mesos_c.mesos_task_id is None and mesos_c.marathon_app_id is None


def test_permission_denied_fd_tables_are_counted() -> None:
    """A real permission error: the walk runs as an unprivileged user over a root-only fd directory."""
    if os.geteuid() != 0:
        pytest.skip("needs root to create a directory another user cannot read")
    # Not pytest's tmp_path: its parent is private to root, and the unprivileged walker must traverse.
    with tempfile.TemporaryDirectory(prefix="probe-perm-") as tmp:
        _permission_case(Path(tmp))


def _permission_case(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    add_process(proc, 10, 1, "mine", sockets=[1], uid=65534)
    secret = add_process(proc, 11, 1, "root-owned", sockets=[2])
    os.chmod(secret / "fd", 0o700)
    for d in (tmp_path, proc, proc / "10", proc / "11"):
        os.chmod(d, 0o755)
    # Import first: after setuid the interpreter's own files (under /root) are no longer readable.
    code = ("import os\n"
            "from orchestrator.services.probe.procfs import walk_processes\n"
            "os.setgid(65534); os.setuid(65534)\n"
            f"r = walk_processes({str(proc)!r})\n"
            "print(sorted(r.processes), r.denied_fds, r.processes[10].fds, r.processes[11].fds)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[2], check=True).stdout.split()
    # Both processes are reported; the unreadable fd table is counted, not fatal.
    assert out == ["[10,", "11]", "1", "1", "0"]
    assert walk_processes(proc).denied_fds == 0  # root reads both


def test_empty_or_missing_proc_root(tmp_path) -> None:
    assert walk_processes(tmp_path / "nope").processes == {}
    report = Collector("n", tmp_path, tmp_path / "nocg", hostname="h").collect(0).report
    assert report.processes == [] and report.connections == [] and report.host.hostname == "h"
    assert HOST_NETNS.startswith("net:[")
