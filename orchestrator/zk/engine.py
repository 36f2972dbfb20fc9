"""The ZooKeeper sync engine: bootstrap copy and continuous, watch-driven replication (source wins)."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from orchestrator.zk.tree import Ensemble, Op, Tree, reconcile

log = logging.getLogger(__name__)


@dataclass
class CopyStats:
    source_nodes: int = 0
    skipped_ephemeral: int = 0
    counts: Counter = field(default_factory=Counter)
    errors: list[tuple[Op, Exception]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.counts[k]} {k}s" for k in ("create", "set", "delete", "acl")]
        return ", ".join(parts) + f", {len(self.errors)} errors"


def bootstrap(source: Ensemble, target: Ensemble, roots: list[str], ephemeral: str = "skip",
              source_tree: Tree | None = None) -> CopyStats:
    """One reconciliation pass: read the source, compare with the target, write the differences."""
    tree = source_tree if source_tree is not None else source.read(roots)
    _, result = reconcile(tree, target, roots, ephemeral)
    stats = CopyStats(source_nodes=len(tree), errors=result.errors)
    if ephemeral == "skip":
        stats.skipped_ephemeral = sum(1 for n in tree.values() if n.kind == "ephemeral")
    stats.counts.update(op.kind for op, _ in result.applied)
    return stats
