"""The sync engine under faults on real ensembles. After each fault, verify must report zero
differences (node kinds included) and every mirrored ephemeral node must belong to the live engine."""
from __future__ import annotations

import re
import signal

import pytest

from orchestrator.services.zk.verify import verify
from tests.zk.helpers import (
    AUTH,
    Cli,
    Writer,
    bulk_create,
    converged,
    ephemeral_owners,
    expire_session,
    start_engine,
    wait_until,
    wide_tree,
)


def ephemerals(client, root: str) -> list[str]:
    return [f"{root}/{c}" for c in client.get_children(root) if client.exists(f"{root}/{c}").ephemeralOwner]


def assert_mirrors_owned_by(zk, engine, root: str) -> None:
    on_a, on_b = ephemerals(zk.ca, root), ephemerals(zk.cb, root)
    assert sorted(p for p in on_a) == sorted(on_b)
    if on_b:
        assert ephemeral_owners(zk.cb, on_b) == {engine.target.session_id}


@pytest.mark.parametrize("side, role", [("a", "follower"), ("a", "leader"), ("b", "follower"), ("b", "leader")])
def test_sync_survives_losing_a_server(zk, side, role):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 5, 20))
    engine = start_engine(zk, [r])
    writer = Writer(zk.a.connect_string, r).start()
    ens = zk.a if side == "a" else zk.b
    try:
        wait_until(lambda: writer.writes > 50, what="writes before the fault")
        victim = ens.leader() if role == "leader" else next(
            n for n in ens.nodes if n.proc is not None and ens.mode(n) == "follower")
        ens.stop_node(victim, signal.SIGKILL)
        ens.wait_quorum()  # the two survivors elect a leader if needed
        before = writer.writes
        wait_until(lambda: writer.writes > before + 50, what="writes after the fault")
        ens.start()
        ens.wait_quorum()
    finally:
        writer.stop()
    report = converged(zk, [r])
    assert report.source_count > 100
    assert_mirrors_owned_by(zk, engine, r)
    if role == "leader":  # every session was moved to another server: the engine had to resynchronise
        assert engine.metrics.resyncs._value.get() >= 1


@pytest.mark.parametrize("which", ["source", "target"])
def test_sync_recovers_from_session_expiry(zk, which):
    r = zk.root
    bulk_create(zk.ca, wide_tree(r, 3, 10))
    engine = start_engine(zk, [r])
    writer = Writer(zk.a.connect_string, r).start()
    try:
        wait_until(lambda: writer.writes > 30)
        converged(zk, [r])
        old_target_session = engine.target.session_id
        side = getattr(engine, which)
        expire_session(side.client, side.hosts)
        wait_until(lambda: engine.metrics.resyncs._value.get() >= 1, what="a resync after the expiry")
        before = writer.writes
        wait_until(lambda: writer.writes > before + 30)
    finally:
        writer.stop()
    converged(zk, [r])
    assert_mirrors_owned_by(zk, engine, r)
    if which == "target":
        assert engine.target.session_id != old_target_session


def test_sync_cli_killed_mid_bootstrap_then_restarted(zk):
    """SIGKILL of `orchestrator zk sync` while it writes 10,000 znodes, restart, then SIGTERM."""
    r = zk.root
    bulk_create(zk.ca, [(r, b"")])
    holder = zk.client("a")
    leaders = [holder.create(f"{r}/a-leader-{i}", b"x", ephemeral=True) for i in range(3)]
    bulk_create(zk.ca, wide_tree(r + "/big", 100, 100, size=256)[0:])  # 10,101 more znodes
    total = 1 + 3 + 10_101
    args = ["zk", "sync", "--source", zk.a.connect_string, "--target", zk.b.connect_string, "--auth", AUTH,
            "--path", r, "--metrics-port", "0", "--metrics-address", "127.0.0.1", "--session-timeout", "4"]
    first = Cli(*args)
    try:
        wait_until(lambda: zk.cb.exists(r), timeout=60, interval=0.005, what="first writes on the target")
        first.kill(signal.SIGKILL)
    finally:
        first.close()
    partial = verify(zk.A, zk.B, [r])
    assert partial.target_count < total, "bootstrap finished before it could be killed"

    second = Cli(*args)
    try:
        second.wait_line("bootstrapped", timeout=120)
        converged(zk, [r])
        # Mirrors written by the killed run belong to its dead session: they must have been re-created.
        assert ephemeral_owners(zk.cb, leaders) == {next(iter(ephemeral_owners(zk.cb, leaders[:1])))}
        zk.ca.set(f"{r}/big/b042/n0042", b"after restart")
        holder.delete(leaders[0])
        converged(zk, [r])
        assert second.kill(signal.SIGTERM) == 0
        second.wait_line("stopped", timeout=10)
    finally:
        second.close()
    # The engine's session is gone, and with it the mirrored ephemeral nodes; persistent data stays.
    wait_until(lambda: not any(zk.cb.exists(p) for p in leaders[1:]), what="mirrors gone after stop")
    assert zk.cb.get(f"{r}/big/b042/n0042")[0] == b"after restart"
    assert re.search(r"metrics: http://127.0.0.1:\d+/metrics", "\n".join(second.lines))
