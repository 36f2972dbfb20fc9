"""Digest two ZooKeeper trees and report exactly where they differ."""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field

from orchestrator.services.zk.tree import Ensemble, Tree, ZkInputError, acl_text, node_from_replies, under

KINDS_OF_DIFFERENCE = ("missing", "extra", "kind", "data", "acl")


@dataclass(frozen=True)
class Difference:
    kind: str  # one of KINDS_OF_DIFFERENCE
    path: str
    source: str = ""
    target: str = ""

    def __str__(self) -> str:
        detail = f"  source={self.source} target={self.target}" if self.source or self.target else ""
        return f"{self.kind:<8} {self.path}{detail}"


def data_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _describe_data(data: bytes) -> str:
    return f"sha256:{data_digest(data)[:16]}({len(data)}B)"


def tree_digest(tree: Tree) -> str:
    """One hash over (path, data hash, ACL, kind) of every node: equal trees give equal digests."""
    h = hashlib.sha256()
    for path in sorted(tree):
        n = tree[path]
        h.update(f"{path}\0{data_digest(n.data)}\0{acl_text(n.acl)}\0{n.kind}\n".encode())
    return h.hexdigest()


def compare(source: Tree, target: Tree, paths: set[str] | None = None) -> list[Difference]:
    diffs: list[Difference] = []
    for path in sorted(paths if paths is not None else set(source) | set(target)):
        s, t = source.get(path), target.get(path)
        if s is None and t is None:
            continue
        if t is None:
            diffs.append(Difference("missing", path))
        elif s is None:
            diffs.append(Difference("extra", path))
        elif s.kind != t.kind:
            diffs.append(Difference("kind", path, s.kind, t.kind))
        else:
            if s.data != t.data:
                diffs.append(Difference("data", path, _describe_data(s.data), _describe_data(t.data)))
            if s.acl != t.acl:
                diffs.append(Difference("acl", path, acl_text(s.acl), acl_text(t.acl)))
    return diffs


def read_nodes(side: Ensemble, paths: list[str]) -> Tree:
    """Just these nodes (no children)."""
    with side.reader() as reader:
        got = reader.get(paths)
    out: Tree = {}
    for i, p in enumerate(paths):
        found = node_from_replies(got[2 * i], got[2 * i + 1])
        if found is not None:
            out[p] = found[0]
    return out


def _drop_ephemeral(tree: Tree) -> Tree:
    return {p: n for p, n in tree.items() if n.kind != "ephemeral"}


@dataclass
class Report:
    source_count: int
    target_count: int
    source_digest: str
    target_digest: str
    differences: list[Difference]
    # root -> (znodes on the source, znodes on the target) under it: what was compared
    roots: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        return not self.differences

    def lines(self) -> list[str]:
        out = [str(d) for d in self.differences]
        out += [f"compared {root}: {s} znodes on the source, {t} on the target" for root, (s, t) in self.roots.items()]
        out.append(f"source: {self.source_count} znodes, digest {self.source_digest}")
        out.append(f"target: {self.target_count} znodes, digest {self.target_digest}")
        out.append("identical" if self.identical else f"{len(self.differences)} differences")
        return out

    def as_dict(self) -> dict:
        return {"identical": self.identical,
                "roots": {root: {"source": s, "target": t} for root, (s, t) in self.roots.items()},
                "source": {"znodes": self.source_count, "digest": self.source_digest},
                "target": {"znodes": self.target_count, "digest": self.target_digest},
                "differences": [d.__dict__ for d in self.differences]}


def verify(source: Ensemble, target: Ensemble, roots: list[str], ignore_ephemeral: bool = False,
           rechecks: int = 0, recheck_delay: float = 0.5) -> Report:
    """Compare the subtrees. On a live system, differing paths are re-read up to `rechecks` times
    (after `recheck_delay`) so that changes still in flight are not reported as differences.

    A root present on neither side is bad input (ZkInputError), never "identical": an empty comparison
    proves nothing, and a mistyped path must not pass a migration gate."""
    src, dst = source.read(roots), target.read(roots)
    if ignore_ephemeral:
        src, dst = _drop_ephemeral(src), _drop_ephemeral(dst)
    absent = [r for r in roots if r not in src and r not in dst]
    if absent:
        raise ZkInputError(f"--path {absent[0]} exists on neither the source nor the target: nothing to compare "
                           "(a mistyped path or chroot?)")
    diffs = compare(src, dst)
    for _ in range(rechecks):
        if not diffs:
            break
        time.sleep(recheck_delay)
        paths = sorted({d.path for d in diffs})
        s2, t2 = read_nodes(source, paths), read_nodes(target, paths)
        if ignore_ephemeral:
            s2, t2 = _drop_ephemeral(s2), _drop_ephemeral(t2)
        for p in paths:  # keep the full trees current for the digests
            for tree, fresh in ((src, s2), (dst, t2)):
                if p in fresh:
                    tree[p] = fresh[p]
                else:
                    tree.pop(p, None)
        diffs = compare(src, dst, set(paths))
    counts = {r: (sum(1 for p in src if under(p, r)), sum(1 for p in dst if under(p, r))) for r in roots}
    return Report(len(src), len(dst), tree_digest(src), tree_digest(dst), diffs, counts)
