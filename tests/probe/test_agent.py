"""The probe as a command and a loop: --once output, bad input, /metrics, and the pod watch."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.contracts import probe as names
from orchestrator.contracts.report import FullReport, parse_report
from orchestrator.services.probe.agent import ProbeMetrics, run, serve_metrics
from orchestrator.services.probe.collector import Collector
from orchestrator.services.probe.kube import PodWatcher
from orchestrator.services.probe.publisher import Publisher
from tests.probe.proctree import add_process, write_host_files, write_net
from tests.probe.receiver import Receiver
from tests.support.tools import require_tool

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "orchestrator.cli"]


def small_tree(root: Path) -> Path:
    proc = root / "proc"
    proc.mkdir()
    write_host_files(proc)
    init = add_process(proc, 1, 0, "init", ["/sbin/init"])
    write_net(init, [("0.0.0.0", 22, "0.0.0.0", 0, "0A", 9)])
    add_process(proc, 2, 1, "sshd", ["sshd"], sockets=[9],
                cgroup="0::/kubepods/besteffort/pod11111111-2222-3333-4444-555555555555/" + "ab" * 32 + "\n")
    return proc


def test_once_prints_one_valid_full_report(tmp_path) -> None:
    proc = small_tree(tmp_path)
    out = subprocess.run(CLI + ["probe", "--once", "--output", "-", "--proc-root", str(proc), "--cgroup-root",
                                str(tmp_path), "--sample-seconds", "0", "--probe-id", "node-x"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr
    report = parse_report(json.loads(out.stdout))
    assert isinstance(report, FullReport) and report.probe_id == "node-x" and report.seq == 1
    assert [p.pid for p in report.processes] == [1, 2]
    assert [(c.id, c.runtime, c.pod_uid) for c in report.containers] == [
        ("ab" * 32, "containerd", "11111111-2222-3333-4444-555555555555")]
    assert [(c.local_port, c.pid) for c in report.connections] == [(22, 2)]


@pytest.mark.parametrize(("args", "message"), [
    (["--once", "--proc-root", "/does/not/exist"], "--proc-root /does/not/exist: not a directory"),
    ([], "--api is required"),
    (["--api", "http://x", "--token-file", "/does/not/exist"], "--token-file /does/not/exist"),
    (["--once", "--interval", "0"], "--interval must be > 0"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    out = subprocess.run(CLI + ["probe", *args, "--metrics-port", "0", "--metrics-address", "127.0.0.1"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and message in out.stderr and "Traceback" not in out.stderr


def test_loop_publishes_and_exposes_its_cost(tmp_path) -> None:
    proc = small_tree(tmp_path)
    receiver = Receiver()
    metrics = ProbeMetrics()
    server = serve_metrics(metrics, "127.0.0.1", 0, max_age=60)
    port = server.server_address[1]
    try:
        publisher = Publisher(f"http://127.0.0.1:{receiver.port}", full_every=2,
                              resolver=lambda h, p: ["127.0.0.1"])
        collector = Collector("node-y", proc, tmp_path)
        done = run(collector, publisher, metrics, 0.01, threading.Event(), max_iterations=3)
        publisher.close()
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        health = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).status
    finally:
        server.shutdown()
        server.server_close()
        receiver.close()
    assert done == 3 and receiver.received == [("full", 0), ("delta", 1), ("full", 2)]
    assert health == 200
    assert f'{names.PROBE_REPORTS}{{result="ok"}} 3.0' in text
    assert f"{names.PROBE_COLLECT_SECONDS}_count 3.0" in text
    assert f'{names.PROBE_OBJECTS}{{kind="process"}} 2.0' in text
    assert f'{names.PROBE_REPORT_BYTES}{{kind="delta"}}' in text
    cpu = next(float(line.split()[1]) for line in text.splitlines() if line.startswith(names.PROBE_CPU_SECONDS))
    assert cpu > 0
    promtool = require_tool("promtool", hint="scripts/install-system-tools.sh installs Debian's prometheus")
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


class FakeKubernetes:
    """Serves list + watch of pods for one node, as the API server does (newline-delimited watch events)."""

    def __init__(self) -> None:
        self.lists = 0
        self.watch_events: list[list[dict[str, Any]]] = []  # one list of events per watch request
        self.selectors: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                from urllib.parse import parse_qs, urlsplit
                query = parse_qs(urlsplit(self.path).query)
                fake.selectors.append(query.get("fieldSelector", [""])[0])
                if "watch" not in query:
                    fake.lists += 1
                    body = json.dumps({"metadata": {"resourceVersion": "10"}, "items": [pod("a", "uid-a")]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                events = fake.watch_events.pop(0) if fake.watch_events else []
                body = b"".join(json.dumps(e).encode() + b"\n" for e in events)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if not events:
                    time.sleep(0.2)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def pod(name: str, uid: str, rv: str = "11") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop", "uid": uid, "resourceVersion": rv,
                         "labels": {"app": name}}}


def test_pod_watch_lists_watches_and_relists_on_410() -> None:
    kube = FakeKubernetes()
    kube.watch_events = [
        [{"type": "ADDED", "object": pod("b", "uid-b", "12")}, {"type": "BOOKMARK", "object": {"metadata": {
            "resourceVersion": "13"}}}, {"type": "DELETED", "object": pod("a", "uid-a", "14")}],
        [{"type": "ERROR", "object": {"code": 410, "message": "too old resource version"}}],
    ]
    watcher = PodWatcher(kube.url, "node-1")
    try:
        version = watcher.list_once()
        assert version == "10" and watcher.lookup("uid-a").name == "a"  # type: ignore[union-attr]
        assert watcher.watch_once(version) == "14"
        assert watcher.lookup("uid-a") is None and watcher.lookup("uid-b").labels == {"app": "b"}  # type: ignore[union-attr]
        assert watcher.watch_once("14") is None          # 410: the caller relists
        watcher.start()                                  # the loop: list (a is back), then watch
        deadline = time.monotonic() + 10
        while kube.lists < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kube.lists >= 2 and watcher.lookup("uid-a") is not None
    finally:
        watcher.stop()
        kube.close()
    assert set(kube.selectors) == {"spec.nodeName=node-1"}
