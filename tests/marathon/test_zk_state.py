"""The scaler's state in ZooKeeper (a real single-node ensemble on loopback): conditional writes, creator-only
ACLs for its own digest user, and one active `orchestrator marathon run` through the lock (real processes)."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import CREATOR_ALL_ACL

from orchestrator.errors import RefusedError
from orchestrator.fakes.marathon import FakeMarathon
from orchestrator.services.marathon.store import STATE, PolicyStore, ZkStore
from tests.support.prometheus import PrometheusStub
from tests.support.zk_ensemble import LocalEnsemble


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnsemble]:
    ens = LocalEnsemble(tmp_path_factory.mktemp("zk-scaler"), size=1, heap_mb=128)
    try:
        ens.start()
        ens.wait_quorum()
        yield ens
    finally:
        ens.stop()


def client(ensemble: LocalEnsemble, auth: str | None = None) -> KazooClient:
    zk = KazooClient(hosts=ensemble.connect_string, timeout=10,
                     auth_data=[("digest", auth)] if auth else None)
    zk.start(timeout=15)
    return zk


def test_state_writes_are_conditional_on_the_version_read(ensemble):
    a, b = client(ensemble), client(ensemble)
    try:
        first, second = ZkStore(a, "/t1/scaler"), ZkStore(b, "/t1/scaler")
        _, v0 = first.read(STATE)
        v1 = first.write(STATE, {"apps": {"/a": {"history": {"r": [[1.0, 3]]}}}}, v0)
        data, seen = second.read(STATE)
        assert data["apps"]["/a"]["history"]["r"] == [[1.0, 3]] and seen == v1
        second.write(STATE, {"apps": {}}, seen)  # the successor writes
        with pytest.raises(RefusedError, match="another scaler"):
            first.write(STATE, {"apps": {"/a": {}}}, v1)  # the one that lost its lock cannot overwrite it
        assert first.read(STATE)[0] == {"apps": {}}
    finally:
        for zk in (a, b):
            zk.stop()
            zk.close()


def test_overrides_and_state_are_creator_only_for_the_scalers_digest_user(ensemble):
    owner = client(ensemble, "scaler:s3cret")
    owner.default_acl = CREATOR_ALL_ACL
    other = client(ensemble)
    try:
        PolicyStore(ZkStore(owner, "/t2/scaler")).update_override("/shop/web", max_instances=6)
        assert PolicyStore(ZkStore(owner, "/t2/scaler")).overrides()["/shop/web"].max_instances == 6
        with pytest.raises(NoAuthError):
            other.get("/t2/scaler/overrides")
        with pytest.raises(NoAuthError):
            other.create("/t2/scaler/planted", b"x")
        other.create("/t2/other-service", b"")  # the shared ancestor still takes other services' subtrees
        with pytest.raises(NoAuthError):
            other.delete("/t2/scaler", recursive=False)
    finally:
        for zk in (owner, other):
            zk.stop()
            zk.close()


def _run(ensemble: LocalEnsemble, fake: FakeMarathon, prom: PrometheusStub, name: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "orchestrator.cli", "marathon", "run", "--zk", ensemble.connect_string,
           "--zk-path", "/t3/scaler", "--prometheus", prom.url, "--interval", "0.2", "--marathon", fake.urls[0]]
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "HOSTNAME": name, "ORCHESTRATOR_ZK_AUTH": "digest:scaler:pw"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


class Lines:
    """A process's stdout JSON lines, read by a thread so that waiting for one is bounded in time."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(proc,), daemon=True).start()

    def _pump(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.queue.put(line)

    def until(self, reason: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.queue.get(timeout=left)
            except queue.Empty:
                return False
            if json.loads(line).get("reason") == reason:
                return True
        return False


def test_one_active_scaler_through_the_lock(ensemble):
    prom = PrometheusStub()
    fake = FakeMarathon(step_seconds=0.1, health_delay=0.1).start()
    first = second = None
    try:
        first = _run(ensemble, fake, prom, "scaler-a")
        first_lines = Lines(first)
        assert first_lines.until("lock-acquired", 30)
        second = _run(ensemble, fake, prom, "scaler-b")
        second_lines = Lines(second)
        assert second_lines.until("waiting-for-lock", 30)
        assert not second_lines.until("lock-acquired", 2)  # the first holds it: the second keeps waiting
        first.send_signal(signal.SIGKILL)  # its session ends: the lock goes to the waiting one
        first.wait(timeout=10)
        assert second_lines.until("lock-acquired", 30)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        fake.stop()
        prom.stop()
