"""The generated zoo.cfg runs a real three-node ensemble (Debian's ZooKeeper 3.8 on 127.0.0.1), and the
probe and myid scripts of the StatefulSet work against real servers."""
import re
import subprocess

import pytest
from kazoo.client import KazooClient

from components import zookeeper as zkc
from components.k8s import PlatformContext
from components.settings import PlatformSettings
from tests.support.zk_ensemble import LocalEnsemble

# Lines the loopback ensemble must set per node (its own ports and directories), the metrics
# provider (Debian's ZooKeeper build does not ship its jar) and quorumListenOnAllIPs (tests listen on
# 127.0.0.1 only). Everything else is used verbatim.
REMAPPED = re.compile(r"^(server\.\d+|dataDir|metricsProvider\.[\w.]+|quorumListenOnAllIPs)=")


def generated_cfg():
    s = PlatformSettings.model_validate({"production": True, "namespace": "orchestrator"})
    hosts = zkc.server_hosts(PlatformContext.of(s), s.zookeeper.replicas, "zookeeper", "zookeeper-headless")
    return zkc.zoo_cfg(s.zookeeper, hosts)


def loopback_base(cfg: str) -> tuple[str, list[str]]:
    kept: list[str] = []
    remapped: list[str] = []
    for line in cfg.splitlines():
        (remapped if REMAPPED.match(line) else kept).append(line)
    return "\n".join(kept) + "\n", remapped


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    base, remapped = loopback_base(generated_cfg())
    # Exactly the node-specific lines were remapped: three servers, ports, dataDir, metrics provider.
    assert sorted(line.split("=")[0] for line in remapped) == [
        "dataDir", "metricsProvider.className", "metricsProvider.exportJvmInfo",
        "metricsProvider.httpPort", "quorumListenOnAllIPs", "server.1", "server.2", "server.3"]
    with LocalEnsemble(tmp_path_factory.mktemp("zk"), size=3, base_cfg=base) as ens:
        yield ens


def test_generated_config_elects_a_leader_and_replicates(ensemble):
    modes = ensemble.wait_quorum()
    assert sorted(modes.values()) == ["follower", "follower", "leader"]
    first, last = ensemble.nodes[0], ensemble.nodes[-1]
    writer = KazooClient(hosts=f"127.0.0.1:{first.client_port}")
    reader = KazooClient(hosts=f"127.0.0.1:{last.client_port}")
    writer.start(timeout=15)
    reader.start(timeout=15)
    try:
        writer.ensure_path("/mesos")
        writer.create("/mesos/leader-check", b"written-through-node-1")
        reader.sync("/mesos/leader-check")
        data, _ = reader.get("/mesos/leader-check")
        assert data == b"written-through-node-1"
    finally:
        writer.stop()
        reader.stop()


def run_probe(script: str, port: int) -> int:
    # The probes run under bash in the pod (they use /dev/tcp); run them the same way here.
    return subprocess.run(["bash", "-c", script.format(port=port)], capture_output=True, timeout=10).returncode


def test_probe_scripts_against_real_servers(ensemble):
    node = ensemble.nodes[1]
    assert run_probe(zkc.RUOK_SCRIPT, node.client_port) == 0
    assert run_probe(zkc.SRVR_SCRIPT, node.client_port) == 0
    # A port where nothing listens: both probes must fail.
    assert run_probe(zkc.RUOK_SCRIPT, 1) != 0
    assert run_probe(zkc.SRVR_SCRIPT, 1) != 0


def test_readiness_fails_on_a_server_without_quorum(tmp_path):
    """A lone member of a three-node ensemble answers ruok (alive) but is not ready (no quorum)."""
    base, _ = loopback_base(generated_cfg())
    ens = LocalEnsemble(tmp_path, size=3, base_cfg=base)
    try:
        ens.start(lambda n: n.node_id == 1)
        node = ens.nodes[0]
        deadline_ok = False
        for _ in range(100):
            if run_probe(zkc.RUOK_SCRIPT, node.client_port) == 0:
                deadline_ok = True
                break
            subprocess.run(["sleep", "0.1"])
        assert deadline_ok, "the lone server never answered ruok"
        assert run_probe(zkc.SRVR_SCRIPT, node.client_port) != 0
    finally:
        ens.stop()


@pytest.mark.parametrize("hostname,myid", [("zookeeper-0", "1"), ("zookeeper-2", "3"), ("zk-prod-10", "11")])
def test_myid_is_ordinal_plus_one(tmp_path, hostname, myid):
    subprocess.run(["sh", "-c", zkc.MYID_SCRIPT], check=True,
                   env={"HOSTNAME": hostname, "ZOO_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert (tmp_path / "myid").read_text().strip() == myid
