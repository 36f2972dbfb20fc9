"""`orchestrator diff-trees`: the PR comment's diff of the base's render against the PR's rendered tree
(pr-comment.yml). The PR's tree is untrusted data: anything that is not a render is refused, exit 2."""
from __future__ import annotations

import os
import shutil

import pytest

from orchestrator.cli import main
from orchestrator.toolchain.render import write_render
from tests.support.harness import stack


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("trees") / "base"
    write_render(stack("prod"), out)
    return out


@pytest.fixture()
def head(base, tmp_path):
    copy = tmp_path / "head"
    shutil.copytree(base, copy)
    return copy


def run(capsys, *argv):
    code = main(["diff-trees", "--stack", "prod", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_identical_trees_have_no_changes(base, head, capsys):
    code, out, _ = run(capsys, "--base", str(base), "--head", str(head))
    assert code == 0 and "no changes" in out.lower()


def test_a_changed_object_is_an_update_and_a_removed_claim_owner_is_dangerous(base, head, capsys):
    path = head / "prometheus" / "manifests.yaml"
    path.write_text(path.read_text().replace("retention.time=30d", "retention.time=31d"))
    code, out, _ = run(capsys, "--base", str(base), "--head", str(head), "--format", "markdown")
    assert code == 3 and out.startswith("<!-- orchestrator-diff stack=prod -->") and "prometheus" in out
    shutil.rmtree(head / "zookeeper")  # the PR deletes the ensemble: its StatefulSet holds the data
    code, out, _ = run(capsys, "--base", str(base), "--head", str(head))
    assert code == 4 and "DATA-LOSS RISK" in out


def test_without_a_base_every_object_is_new(head, capsys):
    code, out, _ = run(capsys, "--head", str(head), "--base-label", "main@abc")
    assert code == 3 and "main@abc (no such stack)" in out


@pytest.mark.parametrize("plant,words", [
    (lambda d: os.symlink("/etc/passwd", d / "zookeeper" / "manifests.yaml.link"), "symbolic link"),
    (lambda d: (d / "notes.txt").write_text("x"), "unexpected file notes.txt"),
    (lambda d: (d / "zookeeper" / "manifests.yaml").write_text("- a list\n"), "not a Kubernetes object"),
    (lambda d: (d / "zookeeper" / "manifests.yaml").write_text("a: &a [1]\n" + "b: [*a,*a,*a,*a,*a,*a,*a,*a,*a,"
                                                               "*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"), "alias"),
    (lambda d: (d / "stack-outputs.json").write_text("[]"), "must be a JSON object"),
    (lambda d: (d / "Bad_Tier").mkdir(), "unexpected directory"),
])
def test_anything_but_a_render_is_refused_with_one_line(head, base, capsys, plant, words):
    plant(head)
    code, out, err = run(capsys, "--base", str(base), "--head", str(head))
    assert code == 2 and out == ""
    assert words in err and len(err.strip().splitlines()) == 1, err
