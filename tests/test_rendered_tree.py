"""The committed rendered tree (what Argo CD syncs in GitOps delivery) is exactly what the code renders."""
import pytest

from orchestrator.toolchain.render import PROJECT_DIR, write_render
from tests.support.harness import stack


def files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_committed_tree_matches_a_fresh_render(name, tmp_path):
    write_render(stack(name), tmp_path / name)
    fresh, committed = files(tmp_path / name), files(PROJECT_DIR / "rendered" / name)
    assert len(fresh) > 8
    stale = sorted(set(fresh) ^ set(committed) | {p for p in fresh.keys() & committed.keys()
                                                    if fresh[p] != committed[p]})
    assert not stale, (f"rendered/{name} is stale in {stale}: run `make render STACK={name}` "
                       "and commit the result with your change")
