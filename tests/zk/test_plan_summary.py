"""What the deletes guard counts: a delete for good, versus a node deleted and created again (no ZooKeeper)."""
from __future__ import annotations

from orchestrator.services.zk.tree import Node, Tree, plan_reconcile

OPEN = (("world", "anyone", 31),)
MY_SESSION = 0x1234
OTHER_SESSION = 0x9999


def tree(spec: dict[str, tuple[bytes, str, int]]) -> Tree:
    """path -> (data, kind, owner); children derived from the paths."""
    out: Tree = {p: Node(data, OPEN, kind, owner) for p, (data, kind, owner) in spec.items()}
    for p in spec:
        parent = p.rsplit("/", 1)[0] or "/"
        if parent in out and p != parent:
            out[parent].children.append(p.rsplit("/", 1)[1])
    for n in out.values():
        n.children.sort()
    return out


def test_counts_tell_deletes_from_replacements():
    source = tree({"/r": (b"", "persistent", 0), "/r/same": (b"1", "persistent", 0),
                   "/r/changed": (b"new", "persistent", 0), "/r/kind": (b"k", "persistent", 0),
                   "/r/leader": (b"l", "ephemeral", 555), "/r/new": (b"n", "persistent", 0)})
    target = tree({"/r": (b"", "persistent", 0), "/r/same": (b"1", "persistent", 0),
                   "/r/changed": (b"old", "persistent", 0), "/r/kind": (b"k", "ephemeral", OTHER_SESSION),
                   "/r/leader": (b"l", "ephemeral", OTHER_SESSION),  # a dead engine's mirror
                   "/r/gone": (b"g", "persistent", 0), "/r/gone/kid": (b"g", "persistent", 0),
                   "/r/live": (b"v", "ephemeral", OTHER_SESSION)})  # a live session on the target: kept
    plan = plan_reconcile(source, target, ["/r"], "mirror", MY_SESSION)
    assert sorted(plan.removals()) == ["/r/gone", "/r/gone/kid"]
    assert plan.counts() == {"creates": 1, "sets": 1, "deletes": 2, "replaced": 2, "acls": 0}
    assert plan.summary() == "1 creates, 1 sets, 2 deletes, 2 replaced, 0 ACL changes"
    lines = plan.describe()
    assert lines[:2] == ["  delete /r/gone/kid", "  delete /r/gone"]
    assert {"  replace /r/kind", "  replace /r/leader", "  create /r/new", "  set /r/changed"} <= set(lines)


def test_identical_trees_plan_nothing_and_long_lists_are_cut():
    source = tree({"/r": (b"", "persistent", 0)})
    target = tree({"/r": (b"", "persistent", 0), **{f"/r/n{i:02d}": (b"", "persistent", 0) for i in range(25)}})
    assert plan_reconcile(source, source, ["/r"], "skip", MY_SESSION).counts() == {
        "creates": 0, "sets": 0, "deletes": 0, "replaced": 0, "acls": 0}
    lines = plan_reconcile(source, target, ["/r"], "skip", MY_SESSION).describe(shown=10)
    assert len(lines) == 11 and lines[-1] == "  … and 15 more deletes"


def test_a_persistent_node_turned_into_a_mirrored_ephemeral_counts_as_deleted():
    """It would vanish from the target when the engine's session ends: the guard must see a delete."""
    source = tree({"/r": (b"", "persistent", 0), "/r/registry": (b"r", "ephemeral", 555)})
    target = tree({"/r": (b"", "persistent", 0), "/r/registry": (b"r", "persistent", 0)})
    mirror = plan_reconcile(source, target, ["/r"], "mirror", MY_SESSION)
    assert mirror.removals() == ["/r/registry"] and mirror.counts()["deletes"] == 1
    assert "  delete /r/registry" in mirror.describe()
    # with ephemeral nodes skipped, the target's persistent node is simply not wanted: a delete as well
    assert plan_reconcile(source, target, ["/r"], "skip", MY_SESSION).removals() == ["/r/registry"]
