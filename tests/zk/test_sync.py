"""Continuous sync (SyncEngine) on real ensembles: creates, changes, deletes, ephemeral policy, metrics."""
from __future__ import annotations

import os
import re
import urllib.request

import pytest
from kazoo.security import READ_ACL_UNSAFE

from orchestrator.services.zk.tree import delete_tree
from orchestrator.services.zk.verify import verify
from tests.zk.helpers import (
    ORCH_ACL,
    bulk_create,
    converged,
    ephemeral_owners,
    start_engine,
    wait_until,
    wide_tree,
)

# Every behaviour with both ways of following the source: persistent recursive watches (ZooKeeper 3.6+) and a
# watch per node (older sources; forced here).
MODES = pytest.mark.parametrize("mode", ["auto", "per-node"])

CONTRACT = ["orchestrator_zk_sync_lag_seconds", "orchestrator_zk_sync_propagation_seconds_bucket",
            "orchestrator_zk_sync_znodes_synced_total", "orchestrator_zk_sync_errors_total",
            "orchestrator_zk_sync_resyncs_total", "orchestrator_zk_sync_znodes", "orchestrator_zk_sync_up"]


def scrape(engine) -> dict[str, float]:
    server, _ = engine.metrics.serve("127.0.0.1", 0)
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5).read().decode()
    finally:
        server.shutdown()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


@MODES
def test_sync_follows_creates_changes_and_deletes(zk, mode):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 3, 4))
    engine = start_engine(zk, [r], watch_mode=mode)
    converged(zk, [r])
    a = zk.ca
    a.create(f"{r}/new", b"fresh")
    a.create(f"{r}/new/deep/er/still", b"\x00\xff" * 50, makepath=True)
    a.create(f"{r}/guarded", b"g", acl=ORCH_ACL)
    a.create(f"{r}/frozen", b"f", acl=READ_ACL_UNSAFE)
    a.create(f"{r}/nämé-ünïcødé", "ü".encode())
    a.set(f"{r}/b000/n0000", b"changed once")
    a.set(f"{r}/b000/n0000", b"changed twice")
    a.delete(f"{r}/b001", recursive=True)
    a.delete(f"{r}/b002/n0003")
    converged(zk, [r])
    assert zk.cb.get(f"{r}/b000/n0000")[0] == b"changed twice"
    assert zk.cb.exists(f"{r}/b001") is None
    assert zk.cb.get_acls(f"{r}/frozen")[0] == READ_ACL_UNSAFE

    metrics = scrape(engine)
    for name in CONTRACT:
        assert any(k == name or k.startswith(name + "{") for k in metrics), name
    assert metrics["orchestrator_zk_sync_up"] == 1
    assert metrics["orchestrator_zk_sync_propagation_seconds_count"] >= 8
    assert metrics["orchestrator_zk_sync_znodes_synced_total"] >= metrics["orchestrator_zk_sync_propagation_seconds_count"]
    assert metrics["orchestrator_zk_sync_errors_total"] == 0
    assert 0 < metrics["orchestrator_zk_sync_lag_seconds"] < 30
    source_count = verify(zk.A, zk.B, [r]).source_count
    assert metrics['orchestrator_zk_sync_znodes{side="source"}'] == source_count


@MODES
def test_sync_deletes_whole_subtrees_and_recreated_roots(zk, mode):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 10, 100))
    start_engine(zk, [r], watch_mode=mode)
    converged(zk, [r])
    delete_tree(zk.A, f"{r}/b003")
    delete_tree(zk.A, f"{r}/b007")
    converged(zk, [r])
    assert zk.cb.exists(f"{r}/b003") is None and zk.cb.exists(f"{r}/b002/n0099")
    # The root itself goes and comes back with other content.
    delete_tree(zk.A, r)
    wait_until(lambda: zk.cb.exists(r) is None, what="root deleted on the target")
    bulk_create(zk.ca, [(r, b"again"), (f"{r}/x", b"x")])
    report = converged(zk, [r])
    assert report.target_count == 2


def test_sync_carries_nodes_near_the_size_limit(zk):
    r = zk.root
    zk.ca.create(r, b"")
    start_engine(zk, [r])
    big = os.urandom(1024 * 1024 - 200)
    zk.ca.create(f"{r}/big", big)
    wait_until(lambda: zk.cb.exists(f"{r}/big"), what="big node created")
    zk.ca.set(f"{r}/big", big[::-1])
    converged(zk, [r])
    zk.cb.sync(f"{r}/big")  # verify read another B server; this session's may be a follower still applying 1 MB
    assert zk.cb.get(f"{r}/big")[0] == big[::-1]


@MODES
def test_ephemeral_nodes_are_mirrored_as_ephemeral_and_follow_their_owner(zk, mode):
    r = zk.root
    zk.ca.create(r, b"")
    owner = zk.client("a")
    owner.create(f"{r}/before", b"leader-1", ephemeral=True)
    engine = start_engine(zk, [r], watch_mode=mode)
    owner.create(f"{r}/after", b"leader-2", ephemeral=True)
    converged(zk, [r])
    mirrors = [f"{r}/before", f"{r}/after"]
    assert ephemeral_owners(zk.cb, mirrors) == {engine.target.session_id}
    owner.stop()  # the owning session ends on A: its nodes must go from B too
    wait_until(lambda: not any(zk.cb.exists(p) for p in mirrors), what="mirrors removed")
    converged(zk, [r])


def test_skip_policy_leaves_ephemeral_nodes_out(zk):
    r = zk.root
    zk.ca.create(r, b"")
    owner = zk.client("a")
    owner.create(f"{r}/eph", b"e", ephemeral=True)
    start_engine(zk, [r], ephemeral="skip")
    zk.ca.create(f"{r}/persistent", b"p")
    owner.create(f"{r}/eph2", b"e", ephemeral=True)
    converged(zk, [r], ignore_ephemeral=True)
    assert zk.cb.exists(f"{r}/eph") is None and zk.cb.exists(f"{r}/eph2") is None


@MODES
def test_sequence_numbers_on_the_target_continue_after_mirrored_ones(zk, mode):
    """A contender registering on B must not get a lower sequence number than the mirrored leader."""
    r = zk.root
    zk.ca.create(r, b"")
    owner = zk.client("a")
    for _ in range(7):  # history: cversion on A grows past anything created on B so far
        owner.delete(owner.create(f"{r}/member_", b"old", sequence=True))
    leader = owner.create(f"{r}/member_", b"leader", ephemeral=True, sequence=True)
    start_engine(zk, [r], watch_mode=mode)
    converged(zk, [r])
    late = owner.create(f"{r}/member_", b"standby", ephemeral=True, sequence=True)
    converged(zk, [r])
    contender = zk.cb.create(f"{r}/member_", b"on B", ephemeral=True, sequence=True)
    seq = lambda p: int(re.search(r"(\d{10})$", p).group(1))  # noqa: E731
    assert seq(contender) > max(seq(leader), seq(late))
    assert sorted(zk.cb.get_children(r))[0] == leader.rsplit("/", 1)[1]
