"""The sync engine reads a node back as soon as its watch event arrives, so an answer may reach the worker
after the engine already applied newer state (a resync, or a read sent later). Such stale answers must be
ignored, or the target would go back in time. Driven on real ensembles with real, deliberately old answers."""
from __future__ import annotations

import time

from kazoo.protocol.states import EventType

from orchestrator.services.zk.engine import SyncEngine, bootstrap
from tests.zk.helpers import side


def b_data(zk, path: str) -> bytes:
    zk.cb.sync(path)  # the engine wrote through another B server, maybe ahead of this session's
    return zk.cb.get(path)[0]


def b_exists(zk, path: str):
    zk.cb.sync(path)
    return zk.cb.exists(path)


def caught_up(engine: SyncEngine, path: str) -> None:
    """The test writes through its own A session; the engine's session may sit on another A server that has
    not applied those writes yet (ZooKeeper orders reads per session): sync it before the engine reads."""
    engine.source.client.sync(path)


def idle_engine(zk, root: str) -> SyncEngine:
    """An engine whose worker is not started: the test feeds its batches itself. Its model and the target
    are brought up to date with the source, as after a resync."""
    engine = SyncEngine(side(zk.a.connect_string), side(zk.b.connect_string), [root])
    zk.engines.append(engine)
    caught_up(engine, root)
    engine.model = engine.source.read([root])
    bootstrap(engine.source, engine.target, [root], source_tree=engine.model)
    return engine


def test_a_data_answer_older_than_the_model_is_ignored(zk):
    r = zk.root
    zk.ca.create(f"{r}/x", b"v1", makepath=True)
    old = zk.ca.get_async(f"{r}/x")
    old.get(timeout=10)
    zk.ca.set(f"{r}/x", b"v2")
    engine = idle_engine(zk, r)
    assert b_data(zk, f"{r}/x") == b"v2"

    engine._apply_events([(EventType.CHANGED, f"{r}/x", time.time(), old)])
    engine._settle()
    assert b_data(zk, f"{r}/x") == b"v2"  # not set back to v1

    new = zk.ca.get_async(f"{r}/x")  # a newer answer still goes through
    zk.ca.set(f"{r}/x", b"v3")
    newer = zk.ca.get_async(f"{r}/x")
    engine._apply_events([(EventType.CHANGED, f"{r}/x", time.time(), new),
                          (EventType.CHANGED, f"{r}/x", time.time(), newer)])
    engine._settle()
    assert b_data(zk, f"{r}/x") == b"v3"


def test_a_children_answer_older_than_the_model_deletes_nothing(zk):
    r = zk.root
    zk.ca.create(f"{r}/x", b"", makepath=True)
    old = zk.ca.get_children_async(r, include_data=True)
    old.get(timeout=10)
    zk.ca.create(f"{r}/y", b"later")
    engine = idle_engine(zk, r)
    assert b_exists(zk, f"{r}/y") is not None

    engine._apply_events([(EventType.CHILD, r, time.time(), old)])
    engine._settle()
    assert b_exists(zk, f"{r}/y") is not None  # the old list lacks y: applying it would delete y on B
    assert sorted(engine.model[r].children) == ["x", "y"]

    zk.ca.delete(f"{r}/x")  # a newer list is applied
    engine._apply_events([(EventType.CHILD, r, time.time(), zk.ca.get_children_async(r, include_data=True))])
    engine._settle()
    assert b_exists(zk, f"{r}/x") is None


def test_a_new_childs_reads_sent_for_its_list_serve_that_list_only(zk):
    """_read_new_children sends a new child's reads as soon as its parent's list arrives; the worker uses them
    for that list, and never for another one (they would be older than that list)."""
    r = zk.root
    zk.ca.create(r, b"", makepath=True)
    engine = idle_engine(zk, r)
    zk.ca.create(f"{r}/x", b"v1")
    listing = zk.ca.get_children_async(r, include_data=True)
    listing.get(timeout=10)
    caught_up(engine, r)
    engine._read_new_children(r, listing)  # as kazoo's completion thread does
    assert f"{r}/x" in engine._new_reads
    engine._new_reads[f"{r}/x"][1][0].get(timeout=10)  # answered with v1
    zk.ca.set(f"{r}/x", b"v2")
    engine._apply_events([(EventType.CHILD, r, time.time(), listing)])
    engine._settle()
    assert b_data(zk, f"{r}/x") == b"v1"  # the read sent with the list was used (a new one would give v2)
    assert not engine._new_reads

    zk.ca.create(f"{r}/y", b"old")
    stale = zk.ca.get_children_async(r, include_data=True)
    stale.get(timeout=10)
    caught_up(engine, r)
    engine._read_new_children(r, stale)
    engine._new_reads[f"{r}/y"][1][0].get(timeout=10)
    zk.ca.set(f"{r}/y", b"new")
    current = zk.ca.get_children_async(r, include_data=True)
    caught_up(engine, r)
    engine._apply_events([(EventType.CHILD, r, time.time(), current)])
    engine._settle()
    assert b_data(zk, f"{r}/y") == b"new"  # read again for this list, not taken from the older one's
    assert not engine._new_reads
