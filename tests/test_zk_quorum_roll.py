"""Quorum changes and rolling upgrades of the ZooKeeper tier, on real ZooKeeper (Debian's 3.8) under load.

The StatefulSet's behaviour is replayed by tests/support/statefulset_roll.py (Parallel pods, rolling
update highest ordinal first, one pod at a time, readiness-gated, PDB respected), with the component's
own zoo.cfg, start script and readiness probe. What is proven:

- the naive change (a rolled static server list, the previous release) elects two leaders: the danger
  `orchestrator diff` flags as QUORUM CHANGE, observed here, driven step by step (no timing race);
- growing 3→5 and shrinking 5→3 the program's way (apply, then `orchestrator zk reconfig` one server at
  a time; to shrink, reconfig first) never shows two leaders and loses no acknowledged write;
- a rolling configuration change keeps quorum and loses no acknowledged write.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from kazoo.client import KazooClient

from components.settings import ZooKeeperSettings
from orchestrator.cli import main
from orchestrator.errors import ExitCode
from orchestrator.services.zk.reconfig import parse_config
from tests.support.statefulset_roll import LeaderWatch, LoopbackStatefulSet, Writer, read_all

PASSWORD = "roll-test-superuser"
# The component's settings with a short tick, so elections take a second, not several.
ZK = ZooKeeperSettings(tick_time_ms=500)


def members(connect: str) -> dict[int, str]:
    client = KazooClient(hosts=connect, timeout=10.0)
    client.start(timeout=30)
    try:
        client.sync("/zookeeper/config")
        found, _ = parse_config(client.get("/zookeeper/config")[0].decode())
        return {i: m.role for i, m in found.items()}
    finally:
        client.stop()
        client.close()


def reconfig(sts: LoopbackStatefulSet, secret: Path, *change: str) -> int:
    return main(["zk", "reconfig", "--connect", sts.connect_string(sorted(p.ordinal for p in sts.running())),
                 "--superuser-file", str(secret), "--timeout", "20", *change])


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    """Three pods applied from the component's config, with the superuser digest from the Secret's file."""
    work = tmp_path_factory.mktemp("sts")
    sts = LoopbackStatefulSet(work, superuser_password=PASSWORD)
    secret = work / "superuser-password"
    secret.write_text(PASSWORD + "\n")
    try:
        sts.apply(ZK, 3)
        yield sts, secret
    finally:
        sts.stop()


def test_naive_roll_of_a_static_server_list_elects_two_leaders(tmp_path):
    """3→5 as a plain rolling update of the previous release's static list (reconfigEnabled=false)."""
    sts = LoopbackStatefulSet(tmp_path, naive=True)
    old = sts.rendered(ZK, 3).replace("reconfigEnabled=true", "reconfigEnabled=false")
    new = sts.rendered(ZK, 5).replace("reconfigEnabled=true", "reconfigEnabled=false")
    try:
        # Server 2 (highest ordinal: the roll restarts it first) is the leader: start it with 1 first.
        sts.create(1, old)
        sts.create(2, old)
        sts.wait_ready([1, 2])
        sts.create(0, old)
        sts.wait_ready([0])
        assert {i: sts.mode(i) for i in range(3)} == {0: "follower", 1: "follower", 2: "leader"}
        # The StatefulSet scales up (Parallel: pods 3 and 4 at once, new list), then rolls pod 2.
        sts.create(3, new)
        sts.create(4, new)
        sts.wait_ready([3, 4])
        sts.delete(2)
        sts.create(2, new)
        sts.wait_ready([0, 1, 2, 3, 4])  # every pod Ready: the controller would go on with pod 1
        modes = {i: sts.mode(i) for i in range(5)}
        leaders = sorted(i for i, m in modes.items() if m == "leader")
        # Servers 0-1 (old list: 2 of 3) and servers 2-4 (new list: 3 of 5) each have a majority.
        assert len(leaders) == 2, modes
        assert leaders[0] in (0, 1) and leaders[1] in (2, 3, 4), modes
        # Both sides acknowledge writes the other never sees: the data diverges.
        a, b = (KazooClient(hosts=sts.connect_string(side), timeout=10.0) for side in ([0, 1], [2, 3, 4]))
        for client in (a, b):
            client.start(timeout=30)
        try:
            a.create("/split-a", b"written through servers 0-1")
            b.create("/split-b", b"written through servers 2-4")
            a.sync("/")
            b.sync("/")
            assert a.exists("/split-b") is None and b.exists("/split-a") is None
        finally:
            for client in (a, b):
                client.stop()
                client.close()
    finally:
        sts.stop()


def test_resize_3_5_3_by_reconfig_keeps_one_leader_and_every_write(ensemble):
    sts, secret = ensemble
    with LeaderWatch(sts) as watch, Writer(sts.connect_string()) as writer:
        # Grow: apply replicas 5 (pods 3-4 join as non-voting members; 0-2 roll and keep their view) ...
        sts.apply(ZK, 5)
        watch.mark()
        assert members(sts.connect_string()) == {1: "participant", 2: "participant", 3: "participant"}
        # ... then add the new servers one per run, lowest first.
        assert reconfig(sts, secret, "--add", sts.server_line(3)) == 0
        assert reconfig(sts, secret, "--add", sts.server_line(4)) == 0
        watch.mark()
        assert members(sts.connect_string()) == {i: "participant" for i in range(1, 6)}
        grown = len(writer.acked)
        # Shrink: reconfig first, highest first, then apply replicas 3.
        assert reconfig(sts, secret, "--remove", "5") == 0
        assert reconfig(sts, secret, "--remove", "4") == 0
        watch.mark()
        sts.apply(ZK, 3)
        assert members(sts.connect_string([0, 1, 2])) == {1: "participant", 2: "participant", 3: "participant"}
        assert len(writer.acked) > grown, "writes went on while shrinking"
    assert watch.sampled_every_phase() and watch.max_leaders == 1, (watch.marks, watch.samples, watch.split[:3])
    assert len(writer.acked) > 200
    for ordinal in range(3):
        assert read_all(sts.connect_string([ordinal]), writer.acked) == [], f"server {ordinal} lost writes"


def test_rolling_config_change_keeps_quorum_and_every_write(ensemble):
    sts, _ = ensemble
    changed = ZK.model_copy(update={"sync_limit": 6, "max_client_cnxns": 120, "autopurge_snap_retain_count": 4})
    progress: list[int] = []

    def before_update(ordinal: int) -> None:
        # The PDB held: every other pod is Ready, so a majority serves while this one restarts.
        serving = [o for o in range(3) if o != ordinal and sts.mode(o) in ("leader", "follower")]
        assert len(serving) >= 2, {o: sts.mode(o) for o in range(3)}
        progress.append(len(writer.acked))

    with LeaderWatch(sts) as watch, Writer(sts.connect_string([0, 1, 2])) as writer:
        sts.apply(changed, 3, before_each_update=before_update)
        progress.append(len(writer.acked))
    assert [e.split()[:2] for e in sts.events[-6:]] == [
        ["delete", "2"], ["create", "2"], ["delete", "1"], ["create", "1"], ["delete", "0"], ["create", "0"]]
    assert progress == sorted(progress) and progress[-1] > progress[0], f"writes stalled: {progress}"
    assert watch.sampled_every_phase() and watch.max_leaders == 1, watch.split[:3]
    assert "syncLimit=6" in (sts.pods[0].volume / "data" / "conf" / "zoo.cfg").read_text()
    for ordinal in range(3):
        assert read_all(sts.connect_string([ordinal]), writer.acked) == [], f"server {ordinal} lost writes"


def test_reconfig_tool_refuses_what_would_break_the_quorum(ensemble, tmp_path, capsys):
    sts, secret = ensemble
    # A server that is not running: its vote would be counted while missing.
    assert reconfig(sts, secret, "--add", sts.server_line(4)) == ExitCode.REFUSED
    assert "server.5 at 127.0.0.1" in capsys.readouterr().err
    # The wrong superuser password: ZooKeeper says NoAuth.
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    assert reconfig(sts, wrong, "--remove", "3") == ExitCode.REFUSED
    assert "NoAuth" in capsys.readouterr().err
    # Removing a member while a majority of the rest would not serve.
    sts.delete(1)
    try:
        assert reconfig(sts, secret, "--remove", "3") == ExitCode.REFUSED
        assert "only 1 of 2 remaining members are serving" in capsys.readouterr().err
    finally:
        sts.create(1, sts.rendered(ZK, 3))
        sts.wait_ready([0, 1, 2])
    # Bad input: one line, exit 2, nothing asked of ZooKeeper.
    assert main(["zk", "reconfig", "--connect", "127.0.0.1:1", "--add", "server.x=oops"]) == ExitCode.INPUT
    assert main(["zk", "reconfig", "--connect", "127.0.0.1:1", "--remove", "2"]) == ExitCode.INPUT
    assert "--superuser-file: required" in capsys.readouterr().err
    assert members(sts.connect_string([0, 1, 2])) == {1: "participant", 2: "participant", 3: "participant"}
    # --show needs no superuser: the membership and the majority, as ZooKeeper has them.
    assert main(["zk", "reconfig", "--connect", sts.connect_string([0, 1, 2]), "--show"]) == 0
    shown = capsys.readouterr().out
    assert "3 voting member(s), a majority is 2" in shown and sts.server_line(2) in shown
