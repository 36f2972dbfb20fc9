"""ZooKeeper TLS (issue 14): with `zookeeper.tls_secret`, the members talk to each other over mutual TLS and
serve a secure client port; the plain client port stays for Mesos and Marathon. On real ZooKeeper 3.8,
from the component's own zoo.cfg and start script, with a Secret's files as cert-manager issues them."""
from __future__ import annotations

import socket
import ssl
import time

import pytest
from kazoo.client import KazooClient
from kazoo.handlers.threading import KazooTimeoutError

from components import zookeeper as zkc
from components.k8s import PlatformContext
from components.settings import ZooKeeperSettings
from tests.support.harness import one, resolve, settings
from tests.support.statefulset_roll import LeaderWatch, LoopbackStatefulSet, Writer, read_all, write_tls_secret

ZK = ZooKeeperSettings(tick_time_ms=500, tls_secret="zookeeper-tls")


@pytest.fixture(scope="module")
def tls_ensemble(tmp_path_factory):
    work = tmp_path_factory.mktemp("zk-tls")
    sts = LoopbackStatefulSet(work, max_replicas=3, tls_dir=write_tls_secret(work / "secret"))
    try:
        sts.apply(ZK, 3)
        yield sts
    finally:
        sts.stop()


def tls_client(sts: LoopbackStatefulSet, ca: str) -> KazooClient:
    secure = ",".join(f"127.0.0.1:{sts.secure_ports[i]}" for i in range(3))
    return KazooClient(hosts=secure, use_ssl=True, ca=ca, verify_certs=True, timeout=10.0)


def test_kazoo_over_tls_on_the_secure_port(tls_ensemble):
    sts = tls_ensemble
    client = tls_client(sts, str(sts.tls_dir / "ca.crt"))
    client.start(timeout=30)
    try:
        client.create("/tls-check", b"over TLS")
        assert client.get("/tls-check")[0] == b"over TLS"
    finally:
        client.stop()
        client.close()
    # The plain port still serves (Mesos and Marathon cannot speak TLS) and sees the same data.
    plain = KazooClient(hosts=sts.connect_string([0]), timeout=10.0)
    plain.start(timeout=30)
    try:
        plain.sync("/tls-check")
        assert plain.get("/tls-check")[0] == b"over TLS"
    finally:
        plain.stop()
        plain.close()


def test_a_client_that_does_not_trust_the_ca_is_refused(tls_ensemble, tmp_path):
    other = write_tls_secret(tmp_path / "other")  # another CA
    client = tls_client(tls_ensemble, str(other / "ca.crt"))
    with pytest.raises(KazooTimeoutError):
        client.start(timeout=5)
    client.close()


def secure_connect(sts: LoopbackStatefulSet, chroot: str = "") -> str:
    return ",".join(f"127.0.0.1:{sts.secure_ports[i]}" for i in range(3)) + chroot


def test_our_services_speak_tls_through_the_one_helper(tls_ensemble):
    """The sessions of the sync engine, the scaler and the API (open_client), the engine's bulk reader and the
    API's four-letter-word status: all over the secure port with the mounted Secret's ca.crt."""
    import asyncio

    from orchestrator.services.api.status import zookeeper_status
    from orchestrator.services.zk.session import close_client, open_client
    from orchestrator.services.zk.tls import ZkTls
    from orchestrator.services.zk.wire import leader_first, server_mode

    sts = tls_ensemble
    tls = ZkTls.from_dir(str(sts.tls_dir), "--target-tls")
    # The sync engine's sessions ask `srvr` over the secure port which server leads, and connect to it.
    ordered = leader_first(secure_connect(sts), tls)
    assert ordered is not None
    leader_port = int(ordered.split(",")[0].rsplit(":", 1)[1])
    assert server_mode(("127.0.0.1", leader_port), 5.0, tls) == "leader"
    side = open_client(secure_connect(sts), tls=tls, label="target", prefer_leader=True)
    try:
        assert side.client.use_ssl and side.client.check_hostname
        assert side.client._connection._socket.getpeername()[1] == leader_port
        side.client.ensure_path("/svc-tls/a")
        side.client.set("/svc-tls/a", b"bulk over TLS")
        tree = side.read(["/svc-tls"])  # BulkReader: our own socket, wrapped with the same policy
        assert tree["/svc-tls/a"].data == b"bulk over TLS" and tree["/svc-tls"].children == ["a"]
    finally:
        close_client(side)
    loop = asyncio.new_event_loop()  # not asyncio.run: it leaves no current loop for the Pulumi mocks after us
    try:
        status = loop.run_until_complete(zookeeper_status(
            [f"127.0.0.1:{sts.secure_ports[i]}" for i in range(3)], 5.0, str(sts.tls_dir)))
    finally:
        loop.close()
    assert status["quorum"] and status["health"] == "healthy", status
    assert {s["mode"] for s in status["servers"]} == {"leader", "follower"}
    # The API's session for the scaler's policy store connects in the background, with the same TLS.
    from orchestrator.services.api.marathon_ops import connect_in_background

    store = connect_in_background(secure_connect(sts), None, tls)
    try:
        assert store.use_ssl
        deadline = time.monotonic() + 30
        while not store.connected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.get("/svc-tls/a")[0] == b"bulk over TLS"
    finally:
        store.stop()
        store.close()


def test_zk_commands_cross_from_plain_to_tls(tls_ensemble, tmp_path):
    """`zk copy` from the plain port into the secure one (chroots: the identity check's twin session must
    use TLS too), then `zk verify` reading both sides; exit 0 each."""
    from tests.zk.helpers import orchestrator

    sts = tls_ensemble
    plain = KazooClient(hosts=sts.connect_string([0]), timeout=10.0)
    plain.start(timeout=30)
    try:
        plain.create("/cross/src/app", b"payload", makepath=True)
        plain.ensure_path("/cross/dst")
    finally:
        plain.stop()
        plain.close()
    ca_only = tmp_path / "ca-only"  # what the pods mount: ca.crt alone
    ca_only.mkdir()
    (ca_only / "ca.crt").write_bytes((sts.tls_dir / "ca.crt").read_bytes())
    got = orchestrator("zk", "copy", "--source", sts.connect_string([0]) + "/cross/src",
                       "--target", secure_connect(sts, "/cross/dst"), "--target-tls", str(ca_only), "--path", "/")
    assert got.returncode == 0, got.stderr
    got = orchestrator("zk", "verify", "--source", secure_connect(sts, "/cross/src"), "--source-tls", str(ca_only),
                       "--target", sts.connect_string([1]) + "/cross/dst", "--path", "/")
    assert got.returncode == 0, got.stdout + got.stderr


def test_a_service_without_the_ca_gets_one_clear_line(tls_ensemble, tmp_path):
    """An untrusted server certificate is 'unreachable' (exit 5) with the TLS reason, no traceback; a TLS
    directory without ca.crt is bad input (exit 2) before anything connects."""
    from tests.zk.helpers import orchestrator

    sts = tls_ensemble
    other = write_tls_secret(tmp_path / "other")
    got = orchestrator("zk", "verify", "--source", secure_connect(sts), "--source-tls", str(other),
                       "--target", sts.connect_string([0]), "--path", "/", "--connect-timeout", "3")
    assert got.returncode == 5, got.stderr
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1 and "certificate verify failed" in lines[0] and "source" in lines[0], got.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    got = orchestrator("marathon", "run", "--marathon", "http://127.0.0.1:1", "--prometheus", "http://127.0.0.1:1",
                       "--zk", secure_connect(sts), "--zk-tls", str(empty), "--once")
    assert got.returncode == 2, got.stderr
    assert got.stderr.strip().splitlines() == [
        f"orchestrator marathon: --zk-tls {empty}: no readable ca.crt (the CA that signed ZooKeeper's certificate)"]


def test_the_quorum_port_speaks_mutual_tls(tls_ensemble):
    sts = tls_ensemble
    leader = next(p for p in sts.running() if sts.mode(p.ordinal) == "leader")
    ctx = ssl.create_default_context(cafile=str(sts.tls_dir / "ca.crt"))
    ctx.load_cert_chain(str(sts.tls_dir / "tls.crt"), str(sts.tls_dir / "tls.key"))
    with socket.create_connection(("127.0.0.1", leader.peer_port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.getpeercert()["subject"] == ((("commonName", "zookeeper"),),)
    # Without a client certificate the handshake (or the first read) is refused: the quorum is mutual TLS.
    anonymous = ssl.create_default_context(cafile=str(sts.tls_dir / "ca.crt"))
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):  # refused at the handshake or the first read
        anonymous_handshake(leader.peer_port, anonymous)


def anonymous_handshake(port: int, ctx: ssl.SSLContext) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.sendall(b"\0" * 32)
        if not tls.recv(1):
            raise ConnectionError("closed by the server")


def test_the_component_mounts_the_secret_and_serves_both_ports():
    s = settings(namespace="ns", zookeeper={"tls_secret": "zookeeper-tls"})
    result, _ = resolve(lambda: {"c": zkc.ZooKeeperEnsemble(
        "zk", zkc.ZooKeeperEnsembleArgs(PlatformContext.of(s), s.zookeeper)).connect_string})
    cfg = one(result, "ConfigMap")["data"]["zoo.cfg"]
    assert "sslQuorum=true" in cfg and "secureClientPort=2281" in cfg and "ssl.clientAuth=none" in cfg
    assert f"ssl.quorum.trustStore.location={zkc.TLS_DIR}/ca.crt" in cfg and "keyStore.password" not in cfg
    sts = one(result, "StatefulSet", "zk")
    pod = sts["spec"]["template"]["spec"]
    secret = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert secret["secret"]["secretName"] == "zookeeper-tls"
    assert next(v for v in pod["volumes"] if v["name"] == "tls-work")["emptyDir"]["medium"] == "Memory"
    ports = {p["name"]: p["port"] for p in one(result, "Service", "zk-client")["spec"]["ports"]}
    assert ports == {"client": 2181, "client-tls": 2281}
    # Without the setting nothing of this is there.
    plain = settings(namespace="ns")
    result, _ = resolve(lambda: {"c": zkc.ZooKeeperEnsemble(
        "zk", zkc.ZooKeeperEnsembleArgs(PlatformContext.of(plain), plain.zookeeper)).connect_string})
    assert "sslQuorum" not in one(result, "ConfigMap")["data"]["zoo.cfg"]


def test_plain_port_stays_for_mesos_and_marathon_only():
    """With TLS on, the plain client port is still open to the tiers that cannot speak TLS and to no outsider."""
    from components.platform import Platform, PlatformArgs
    from tests.support.harness import run
    from tests.support.netpol import Endpoint, allowed, workload_endpoints

    s = settings(namespace="p", zookeeper={"tls_secret": "zookeeper-tls"})
    docs = run(lambda: Platform("orchestrator", PlatformArgs(s))).manifests
    eps = {e.name: e for e in workload_endpoints(docs, "10.1.2.3", "100.64.0.0/24")}
    zk = eps["zookeeper"]
    assert zk.ports["client-tls"] == 2281
    for tier in ("mesos-master", "marathon", "mesos-agent"):
        assert allowed(docs, eps[tier], zk, 2181), tier
    outsider = Endpoint("default", {"app": "curious"}, "100.64.9.9")
    for port in (2181, 2281):
        assert not allowed(docs, outsider, zk, port)
        assert not allowed(docs, eps["prometheus"], zk, port)


def test_enabling_quorum_tls_on_a_running_ensemble_in_three_rolls(tmp_path):
    """accept -> prefer -> require (port unification), each a rolling update under writes: quorum kept,
    one leader, every acknowledged write kept; afterwards the quorum port speaks TLS."""
    sts = LoopbackStatefulSet(tmp_path / "sts", max_replicas=3, tls_dir=write_tls_secret(tmp_path / "secret"))
    plain = ZooKeeperSettings(tick_time_ms=500)
    try:
        sts.apply(plain, 3)
        with LeaderWatch(sts) as watch, Writer(sts.connect_string()) as writer:
            for stage in ("accept", "prefer", "require"):
                if stage != "accept":
                    watch.mark()  # a boundary between rolls (after the last one nothing is left to sample)
                sts.apply(plain.model_copy(update={"tls_secret": "zookeeper-tls", "tls_quorum": stage}), 3)
        assert watch.sampled_every_phase() and watch.max_leaders == 1, watch.split[:3]
        assert len(writer.acked) > 100
        for ordinal in range(3):
            assert read_all(sts.connect_string([ordinal]), writer.acked) == [], ordinal
        live = (sts.pods[0].volume / "data" / "conf" / "zoo.cfg").read_text()
        assert "sslQuorum=true" in live and "portUnification=false" in live
        leader = next(p for p in sts.running() if sts.mode(p.ordinal) == "leader")
        anonymous = ssl.create_default_context(cafile=str(sts.tls_dir / "ca.crt"))
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            anonymous_handshake(leader.peer_port, anonymous)
    finally:
        sts.stop()


def test_requiring_quorum_tls_in_one_roll_stalls_it(tmp_path):
    """The danger the stages avoid: the first member rolled to TLS-only cannot join the plain ones, never
    gets Ready, and the StatefulSet's roll waits for it forever (the others keep serving)."""
    sts = LoopbackStatefulSet(tmp_path / "sts", max_replicas=3, tls_dir=write_tls_secret(tmp_path / "secret"))
    plain = ZooKeeperSettings(tick_time_ms=500)
    try:
        sts.apply(plain, 3)
        with pytest.raises(TimeoutError, match=r"pods \[2\] not Ready"):
            sts.apply(plain.model_copy(update={"tls_secret": "zookeeper-tls"}), 3, ready_timeout=20)
        assert {sts.mode(0), sts.mode(1)} == {"leader", "follower"}
    finally:
        sts.stop()


def test_tls_capable_tiers_use_the_secure_port_and_only_it():
    """With `tls_secret`, the sync engine, the scaler, the backup and the API connect to the secure client port
    with TLS on, mount the Secret's ca.crt alone, and the NetworkPolicies let them reach 2281 and not 2181."""
    import json

    from components.orchestrator_service import API_CONFIG_KEY
    from components.platform import Platform, PlatformArgs
    from tests.support.harness import run
    from tests.support.netpol import allowed, workload_endpoints

    s = settings(namespace="p", zookeeper={"tls_secret": "zookeeper-tls"},
                 zk_sync={"enabled": True, "source": "old-zk.example:2181", "source_cidrs": ["203.0.113.0/24"]},
                 marathon_scaler={"enabled": True}, zk_backup={"enabled": True, "s3": "s3://backups/zk"})
    docs = run(lambda: Platform("orchestrator", PlatformArgs(s))).manifests
    secure = ",".join(f"zookeeper-{i}.zookeeper-headless.p.svc.cluster.local:2281" for i in range(3))

    def pod_of(kind: str, name: str) -> dict:
        doc = next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
        spec = doc["spec"]["jobTemplate"]["spec"] if kind == "CronJob" else doc["spec"]
        return spec["template"]

    for kind, name, option, connect_option in (("Deployment", "zk-sync", "--target-tls", "--target"),
                                               ("Deployment", "marathon-scaler", "--zk-tls", "--zk"),
                                               ("CronJob", "zk-backup", "--source-tls", "--source")):
        template = pod_of(kind, name)
        container = template["spec"]["containers"][0]
        args = container["args"]
        assert args[args.index(connect_option) + 1] == secure, name
        assert args[args.index(option) + 1] == zkc.CLIENT_TLS_DIR, name
        volume = next(v for v in template["spec"]["volumes"] if v["name"] == "zookeeper-ca")
        assert volume["secret"]["secretName"] == "zookeeper-tls", name
        assert [i["key"] for i in volume["secret"]["items"]] == ["ca.crt"], f"{name}: the CA only, never the key"
        assert {"name": "zookeeper-ca", "mountPath": zkc.CLIENT_TLS_DIR, "readOnly": True} in \
            container["volumeMounts"], name
        assert template["metadata"]["annotations"][zkc.kx.EXTERNAL_SECRETS] == "zookeeper-tls", name

    api = pod_of("Rollout", "orchestrator-service")
    assert {"name": "zookeeper-ca", "mountPath": zkc.CLIENT_TLS_DIR, "readOnly": True} in \
        api["spec"]["containers"][0]["volumeMounts"]
    config = json.loads(next(d for d in docs if d["kind"] == "ConfigMap"
                             and d["metadata"]["name"] == "orchestrator-service-config")["data"][API_CONFIG_KEY])
    assert config["zookeeper"] == {"servers": secure.split(","), "tls_dir": zkc.CLIENT_TLS_DIR}

    eps = {e.name: e for e in workload_endpoints(docs, "10.1.2.3", "100.64.0.0/24")}
    zk = eps["zookeeper"]
    for tier in ("zk-sync", "marathon-scaler", "zk-backup", "orchestrator-service"):
        assert allowed(docs, eps[tier], zk, 2281), tier
        assert not allowed(docs, eps[tier], zk, 2181), f"{tier} still reaches the plain port"
    for tier in ("mesos-master", "marathon", "mesos-agent"):  # cannot speak TLS: the plain port stays
        assert allowed(docs, eps[tier], zk, 2181), tier
