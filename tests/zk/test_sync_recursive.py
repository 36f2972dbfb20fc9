"""Persistent recursive watches (ZooKeeper 3.6+ addWatch, which kazoo does not expose): the event hook, the
engine's choice and its fallback on a source that refuses them, and the order rules of the batches they feed.
On real ensembles (Debian's ZooKeeper 3.8); stale answers are produced for real, as in test_sync_order."""
from __future__ import annotations

import time

import pytest
from kazoo.protocol.states import EventType

from orchestrator.services.zk import wire
from orchestrator.services.zk.engine import SyncEngine, bootstrap
from orchestrator.services.zk.tree import read_tree
from tests.zk.helpers import converged, side, wait_until
from tests.zk.test_sync_order import b_data, b_exists


def test_recursive_watches_report_every_change_under_the_roots_by_its_own_path(zk):
    r = zk.root
    zk.ca.create(r, b"", makepath=True)
    seen: list[tuple[int, str]] = []
    client = zk.client("a")
    watches = wire.RecursiveWatches(client, [r], lambda kind, path: seen.append((kind, path)))
    watches.add()
    zk.ca.create(f"{r}/a/b", b"1", makepath=True)
    zk.ca.set(f"{r}/a/b", b"2")
    zk.ca.delete(f"{r}/a/b")
    zk.ca.create(f"{r}-sibling", b"")  # shares the prefix, not under the root
    zk.ca.create(f"{r}/done", b"")
    wait_until(lambda: (1, f"{r}/done") in seen, what="events delivered")
    assert seen == [(1, f"{r}/a"), (1, f"{r}/a/b"), (3, f"{r}/a/b"), (2, f"{r}/a/b"), (1, f"{r}/done")]
    # Still armed after firing (persistent), and gone once closed.
    zk.ca.set(f"{r}/done", b"x")
    wait_until(lambda: (3, f"{r}/done") in seen, what="a second event on the same node")
    watches.close()
    zk.ca.set(f"{r}/done", b"y")
    zk.ca.delete(f"{r}-sibling")
    client.sync(r)
    time.sleep(0.3)
    assert seen[-1] == (3, f"{r}/done") and len(seen) == 6


def test_auto_falls_back_to_a_watch_per_node_on_a_source_that_refuses_addwatch(zk, monkeypatch, caplog):
    """A source older than 3.6 answers addWatch with Unimplemented and closes the connection: an unknown
    request type gets the same answer from this server, so the refusal is the real server's."""
    monkeypatch.setattr(wire.AddWatch, "type", 199)
    r = zk.root
    zk.ca.create(f"{r}/x", b"v1", makepath=True)
    source, target = side(zk.a.connect_string), side(zk.b.connect_string)
    engine = SyncEngine(source, target, [r], resync_interval=0).start()
    zk.engines.append(engine)
    assert engine.bootstrapped.wait(60)
    assert not engine.recursive
    assert "does not support persistent recursive watches" in caplog.text
    zk.ca.set(f"{r}/x", b"v2")
    zk.ca.create(f"{r}/y/z", b"new", makepath=True)
    converged(zk, [r])
    assert b_data(zk, f"{r}/x") == b"v2"
    # The question was asked on a short-lived session: the engine's own connection was never cut (a cut
    # connection costs a resync), and the changes above came through per-node watches.
    assert engine.metrics.resyncs._value.get() == 0


def test_recursive_mode_asked_for_explicitly_says_why_it_cannot_run(zk, monkeypatch):
    monkeypatch.setattr(wire.AddWatch, "type", 199)
    engine = SyncEngine(side(zk.a.connect_string), side(zk.b.connect_string), [zk.root], watch_mode="recursive")
    zk.engines.append(engine)
    with pytest.raises(RuntimeError, match="older than 3.6.*--watch-mode"):
        engine._arm_recursive()


def idle_recursive_engine(zk, root: str) -> SyncEngine:
    """An engine in recursive mode whose worker is not started: the test feeds its batches. Its model, its
    read zxid and the target are as after a resync."""
    engine = SyncEngine(side(zk.a.connect_string), side(zk.b.connect_string), [root], watch_mode="recursive")
    zk.engines.append(engine)
    engine._use_recursive = True
    with engine.source.reader() as reader:
        reader.sync()
        engine._read_zxid = reader.zxid()
        engine.model = read_tree(reader, [root])
    bootstrap(engine.source, engine.target, [root], source_tree=engine.model)
    return engine


def created(zk, path: str) -> tuple:
    """The reads the engine sends for a create event, answered now."""
    reads = (zk.ca.get_async(path), zk.ca.get_acls_async(path), None)
    for r in reads[:2]:
        r.wait(10)
    return reads


def test_a_create_whose_delete_is_in_the_same_batch_is_not_applied(zk):
    r = zk.root
    zk.ca.create(r, b"", makepath=True)
    engine = idle_recursive_engine(zk, r)
    zk.ca.create(f"{r}/x", b"brief")
    reads = created(zk, f"{r}/x")  # answered while x still exists
    zk.ca.delete(f"{r}/x")
    now = time.time()
    engine._apply_events([(EventType.CREATED, f"{r}/x", now, reads), (EventType.DELETED, f"{r}/x", now, None)])
    engine._settle()
    assert b_exists(zk, f"{r}/x") is None and f"{r}/x" not in engine.model


def test_a_node_deleted_and_created_again_in_one_batch_is_replaced(zk):
    r = zk.root
    zk.ca.create(f"{r}/x/old-child", b"", makepath=True)
    zk.ca.set(f"{r}/x", b"old")
    engine = idle_recursive_engine(zk, r)
    zk.ca.delete(f"{r}/x", recursive=True)
    zk.ca.create(f"{r}/x", b"new")
    now = time.time()
    engine._apply_events([(EventType.DELETED, f"{r}/x/old-child", now, None), (EventType.DELETED, f"{r}/x", now, None),
                          (EventType.CREATED, f"{r}/x", now, created(zk, f"{r}/x"))])
    engine._settle()
    assert b_data(zk, f"{r}/x") == b"new" and b_exists(zk, f"{r}/x/old-child") is None
    assert engine.model[f"{r}/x"].children == [] and engine.model[r].children == ["x"]


def test_a_create_older_than_the_resyncs_read_of_a_node_it_did_not_find_is_ignored(zk):
    """The create's event was queued before a resync whose read came after the node's delete: the node must
    not come back on the target (the delete's event was covered by that read, not replayed)."""
    r = zk.root
    zk.ca.create(r, b"", makepath=True)
    zk.ca.create(f"{r}/x", b"gone")
    reads = created(zk, f"{r}/x")
    zk.ca.delete(f"{r}/x")
    engine = idle_recursive_engine(zk, r)  # the resync: it reads the source after the delete
    engine._apply_events([(EventType.CREATED, f"{r}/x", time.time(), reads)])
    engine._settle()
    assert b_exists(zk, f"{r}/x") is None and f"{r}/x" not in engine.model

    zk.ca.create(f"{r}/x", b"back")  # a create after that read goes through
    engine._apply_events([(EventType.CREATED, f"{r}/x", time.time(), created(zk, f"{r}/x"))])
    engine._settle()
    assert b_data(zk, f"{r}/x") == b"back" and engine.model[r].children == ["x"]


def test_a_data_answer_older_than_the_model_is_ignored_with_recursive_watches(zk):
    r = zk.root
    zk.ca.create(f"{r}/x", b"v1", makepath=True)
    old = zk.ca.get_async(f"{r}/x")
    old.wait(10)
    zk.ca.set(f"{r}/x", b"v2")
    engine = idle_recursive_engine(zk, r)
    engine._apply_events([(EventType.CHANGED, f"{r}/x", time.time(), old)])
    engine._settle()
    assert b_data(zk, f"{r}/x") == b"v2"
    zk.ca.set(f"{r}/x", b"v3")
    engine._apply_events([(EventType.CHANGED, f"{r}/x", time.time(), zk.ca.get_async(f"{r}/x"))])
    engine._settle()
    assert b_data(zk, f"{r}/x") == b"v3"
