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
import zlib
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, Id, Permissions, make_digest_acl_credential

from orchestrator.contracts.api import PolicyEdit
from orchestrator.errors import RefusedError
from orchestrator.fakes.marathon import FakeMarathon
from orchestrator.services.api.marathon_ops import PolicyUnavailable, ScalerPolicyStore
from orchestrator.services.marathon.store import OVERRIDES, STATE, PolicyStore, ZkStore
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


def _run(ensemble: LocalEnsemble, fake: FakeMarathon, prom: PrometheusStub, name: str, path: str = "/t3/scaler",
         **env_extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "orchestrator.cli", "marathon", "run", "--zk", ensemble.connect_string,
           "--zk-path", path, "--prometheus", prom.url, "--interval", "0.2", "--marathon", fake.urls[0]]
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "HOSTNAME": name, "ORCHESTRATOR_ZK_AUTH": "digest:scaler:pw",
           **env_extra}
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


# --------------------------------------------------------------------------- the API's own identity (issue 10)
SCALER_AUTH, API_AUTH, OUTSIDER_AUTH = "marathon-scaler:s3cret", "orchestrator-api:ap1-pw", "mesos:other"
API_ACL_ID = make_digest_acl_credential("orchestrator-api", "ap1-pw")


@pytest.fixture
def identities(ensemble: LocalEnsemble) -> Iterator[dict[str, KazooClient]]:
    clients = {"scaler": client(ensemble, SCALER_AUTH), "api": client(ensemble, API_AUTH),
               "outsider": client(ensemble, OUTSIDER_AUTH), "anonymous": client(ensemble)}
    clients["scaler"].default_acl = CREATOR_ALL_ACL  # as `orchestrator marathon run` sets it with auth
    try:
        yield clients
    finally:
        for zk in clients.values():
            zk.stop()
            zk.close()


def test_the_scaler_grants_the_api_read_on_state_and_write_on_overrides_only(identities):
    zk = identities
    ZkStore(zk["scaler"], "/t4/scaler", api_acl_id=API_ACL_ID)  # the scaler's start creates both documents
    api_store = ZkStore(zk["api"], "/t4/scaler", owner=False)
    assert api_store.read(STATE) == ({}, 0)  # the API reads the state ...
    PolicyStore(api_store).update_override("/shop/web", max_instances=6, paused=True)  # ... and writes overrides
    assert PolicyStore(ZkStore(zk["scaler"], "/t4/scaler", api_acl_id=API_ACL_ID)).overrides()["/shop/web"].paused
    with pytest.raises(NoAuthError):
        api_store.write(STATE, {"apps": {}}, 0)  # never the scaler's state
    with pytest.raises(NoAuthError):
        zk["api"].set_acls("/t4/scaler/overrides", OPEN_ACL_UNSAFE)  # nor the ACLs (no ADMIN)
    with pytest.raises(NoAuthError):
        zk["api"].delete("/t4/scaler/overrides")  # nor remove a document (no DELETE on the scaler's node)
    for outsider in (zk["outsider"], zk["anonymous"]):
        for doc in (STATE, OVERRIDES):
            with pytest.raises(NoAuthError):
                outsider.get(f"/t4/scaler/{doc}")
            with pytest.raises(NoAuthError):
                outsider.set(f"/t4/scaler/{doc}", b"")


def test_an_older_creator_only_document_is_fixed_at_the_scalers_start(identities):
    zk = identities
    old = ZkStore(zk["scaler"], "/t5/scaler")  # an older scaler: no API identity, creator-only documents
    old.write(STATE, {"policies": {"/shop/web": {"min_instances": 2, "max_instances": 8}}}, 0)
    api_store = ZkStore(zk["api"], "/t5/scaler", owner=False)
    with pytest.raises(NoAuthError):
        api_store.read(STATE)
    ZkStore(zk["scaler"], "/t5/scaler", api_acl_id=API_ACL_ID)  # this version's start
    assert api_store.read(STATE)[0]["policies"]["/shop/web"]["max_instances"] == 8  # kept, now readable
    PolicyStore(api_store).update_override("/shop/web", min_instances=3)


def test_the_api_never_creates_the_scalers_documents(identities):
    zk = identities
    # An older scaler that wrote its state but never an `overrides` document, readable by the API.
    zk["scaler"].create("/t6/scaler/state", zlib.compress(json.dumps(
        {"policies": {"/shop/web": {"min_instances": 2, "max_instances": 8}}}).encode()),
        acl=[*CREATOR_ALL_ACL, ACL(Permissions.READ, Id("digest", API_ACL_ID))], makepath=True)
    policies = ScalerPolicyStore(PolicyStore(ZkStore(zk["api"], "/t6/scaler", owner=False)))
    assert policies.policies()["/shop/web"].max_instances == 8
    with pytest.raises(PolicyUnavailable, match="the scaler has not started yet"):
        policies.edit("/shop/web", PolicyEdit(paused=True))
    assert zk["scaler"].exists("/t6/scaler/overrides") is None
    assert ZkStore(zk["api"], "/t7/scaler", owner=False) and zk["scaler"].exists("/t7") is None  # no path either


def test_the_scaler_applies_an_override_the_api_identity_wrote(identities, fake_marathon, sim_clock, prometheus):
    from tests.marathon.test_autoscale import QUERY, scaler, web

    zk = identities
    fake_marathon.add_app(web(4))
    prometheus.values[QUERY] = 1.0  # 200 % of target: without an override, 4 -> 8
    store = ZkStore(zk["scaler"], "/t8/scaler", api_acl_id=API_ACL_ID)
    PolicyStore(ZkStore(zk["api"], "/t8/scaler", owner=False)).update_override("/shop/web", max_instances=6)
    assert [(d.desired, d.reason) for d in scaler(fake_marathon, sim_clock, prometheus, store=store).cycle()] == \
        [(6, "scale-up")]


def test_the_api_over_http_edits_policies_as_its_own_identity(identities, tmp_path, ensemble):
    """The API as deployed: autoscaler.znode and a credentials file; 503 with a reason before the scaler has
    created its documents, then the edit lands in `overrides` for the scaler."""
    import httpx

    from orchestrator.contracts.api import Role
    from orchestrator.services.api.auth import hash_password, issue
    from orchestrator.services.api.server import state_from_config
    from tests.api.conftest import start_api

    zk = identities
    zk["scaler"].create("/t9/scaler/state", zlib.compress(json.dumps(
        {"policies": {"/shop/web": {"min_instances": 2, "max_instances": 8}}}).encode()),
        acl=[*CREATOR_ALL_ACL, ACL(Permissions.READ, Id("digest", API_ACL_ID))], makepath=True)
    (tmp_path / "keys").write_text("k1 " + "k" * 48 + "\n")
    (tmp_path / "zk-auth").write_text(f"digest:{API_AUTH}\n")
    (tmp_path / "api.yaml").write_text(json.dumps({
        "signing_key_file": "keys",
        "accounts": [{"name": "otto", "role": "operator", "password_hash": hash_password("pw-otto-123")}],
        "zookeeper": {"servers": ensemble.connect_string.split(",")},
        "autoscaler": {"znode": "/t9/scaler", "credentials_file": str(tmp_path / "zk-auth")}}))
    state = state_from_config(str(tmp_path / "api.yaml"), reload_every=0)
    session = state.policies._zk  # type: ignore[attr-defined]
    running = start_api(state)
    try:
        deadline = time.monotonic() + 30  # it connects in the background (the API starts without ZooKeeper)
        while not session.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        token = issue(state.keys.get(), account="otto", kind="access", role=Role.OPERATOR, ttl=600)[0]
        http = httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        answer = http.patch("/api/v1/marathon/apps/shop/web/policy", json={"paused": True})
        assert answer.status_code == 503 and "the scaler has not started yet" in answer.json()["detail"]
        ZkStore(zk["scaler"], "/t9/scaler", api_acl_id=API_ACL_ID)  # the scaler starts
        answer = http.patch("/api/v1/marathon/apps/shop/web/policy", json={"paused": True})
        assert answer.status_code == 200 and answer.json()["paused"] is True
        assert PolicyStore(ZkStore(zk["scaler"], "/t9/scaler")).overrides()["/shop/web"].paused is True
        zk["scaler"].set_acls("/t9/scaler/overrides", CREATOR_ALL_ACL)  # e.g. an older scaler took it back
        answer = http.patch("/api/v1/marathon/apps/shop/web/policy", json={"paused": False})
        assert answer.status_code == 503 and "refused the API's identity" in answer.json()["detail"]
    finally:
        running.stop()
        session.stop()
        session.close()


def test_the_scaler_process_grants_the_api_digest_from_its_environment(ensemble, identities):
    """`orchestrator marathon run` as the platform runs it: its identity and the API's digest from the env."""
    prom = PrometheusStub()
    fake = FakeMarathon(step_seconds=0.1, health_delay=0.1).start()
    proc = _run(ensemble, fake, prom, "scaler-acl", "/t10/scaler", ORCHESTRATOR_ZK_API_ACL=API_ACL_ID)
    try:
        assert Lines(proc).until("lock-acquired", 30)  # the store is opened next: wait for its documents
        deadline = time.monotonic() + 30
        while identities["api"].exists("/t10/scaler/overrides") is None and time.monotonic() < deadline:
            time.sleep(0.1)
        api_store = ZkStore(identities["api"], "/t10/scaler", owner=False)
        api_store.read(STATE)
        PolicyStore(api_store).update_override("/shop/web", paused=True)
        with pytest.raises(NoAuthError):
            identities["outsider"].get("/t10/scaler/overrides")
    finally:
        proc.kill()
        proc.wait(timeout=10)
        fake.stop()
        prom.stop()


def test_a_malformed_api_digest_is_bad_input_naming_the_variable(ensemble):
    prom = PrometheusStub()
    fake = FakeMarathon(step_seconds=0.1, health_delay=0.1).start()
    proc = _run(ensemble, fake, prom, "scaler-bad", "/t11/scaler", ORCHESTRATOR_ZK_API_ACL="orchestrator-api:pw")
    try:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2
        assert "ORCHESTRATOR_ZK_API_ACL" in err and "not a password" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        fake.stop()
        prom.stop()
