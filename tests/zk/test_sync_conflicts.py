"""A batch the target refuses (someone wrote on the target) is repaired path by path, not by re-reading both
whole trees: on real ensembles, with the engine running."""
from __future__ import annotations

from tests.zk.helpers import converged, start_engine, wait_until


def b_node(zk, path: str):
    zk.cb.sync(path)  # the engine wrote through another B server, maybe ahead of this session's
    stat = zk.cb.exists(path)
    return zk.cb.get(path)[0] if stat is not None else None


def test_a_refused_batch_is_rewritten_path_by_path_without_a_resync(zk):
    r = zk.root
    zk.ca.create(f"{r}/keep", b"a", makepath=True)
    zk.ca.create(f"{r}/tree/leaf", b"l", makepath=True)
    engine = start_engine(zk, [r])
    converged(zk, [r])
    samples = engine.metrics.registry.get_sample_value

    # Writes on the target that the engine does not know about:
    zk.cb.create(f"{r}/clash", b"written on B")  # the source is about to create it: NodeExistsError
    zk.cb.delete(f"{r}/keep")  # the source is about to change it: NoNodeError
    zk.cb.create(f"{r}/tree/leaf/extra", b"B only")  # the source is about to delete its parent: NotEmptyError
    zk.ca.create(f"{r}/clash", b"from A")
    zk.ca.set(f"{r}/keep", b"changed on A")
    zk.ca.delete(f"{r}/tree/leaf")

    wait_until(lambda: b_node(zk, f"{r}/clash") == b"from A" and b_node(zk, f"{r}/keep") == b"changed on A"
               and b_node(zk, f"{r}/tree/leaf") is None, what="the refused changes repaired on B")
    converged(zk, [r])
    assert samples("orchestrator_zk_sync_errors_total") >= 1  # the refusals happened and were counted
    assert samples("orchestrator_zk_sync_resyncs_total") == 0  # repaired path by path, no full resync

    zk.ca.set(f"{r}/clash", b"later")  # and the engine goes on replicating
    wait_until(lambda: b_node(zk, f"{r}/clash") == b"later", what="a later change replicated")


def test_a_repair_leaves_a_live_sessions_ephemeral_node_on_the_target(zk):
    """The repair deletes what the model no longer has, but not an ephemeral node of another session on the
    target (e.g. a master's election node on B): the same rule as every reconciliation."""
    from orchestrator.services.zk.engine import SyncEngine, bootstrap
    from orchestrator.services.zk.tree import Op
    from tests.zk.helpers import side

    r = zk.root
    zk.ca.create(f"{r}/q", b"source", makepath=True)
    engine = SyncEngine(side(zk.a.connect_string), side(zk.b.connect_string), [r])  # worker not started
    zk.engines.append(engine)
    # ZooKeeper orders reads per session: the engine's sessions sync before reading what the test's wrote.
    engine.source.client.sync(r)
    engine.model = engine.source.read([r])
    bootstrap(engine.source, engine.target, [r], source_tree=engine.model)
    zk.cb.create(f"{r}/election", b"", ephemeral=True)  # B's own session
    zk.cb.create(f"{r}/stray", b"")  # a persistent node the model does not have
    zk.cb.delete(f"{r}/q")
    engine.target.client.sync(r)

    engine._repair([Op("delete", f"{r}/election"), Op("delete", f"{r}/stray"), Op("set", f"{r}/q", b"source")])
    assert b_node(zk, f"{r}/q") == b"source"
    assert b_node(zk, f"{r}/stray") is None
    assert zk.cb.exists(f"{r}/election").ephemeralOwner == zk.cb.client_id[0]
