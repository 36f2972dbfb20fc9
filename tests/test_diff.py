"""`orchestrator diff` on real git history: a temporary repository holding the real program and stacks,
one commit as the base, edits in the working tree (stack config and program code), and the real
render of both sides. Each test asserts the classification and the exit code."""
from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.toolchain.diff import (
    ADDED,
    DATA_LOSS_FLAG,
    EXIT_CHANGES,
    EXIT_DANGEROUS,
    EXIT_ERROR,
    EXIT_NO_CHANGES,
    REMOVED,
    REPLACE_FLAG,
    REPLACED,
    UPDATED,
    compare,
    format_markdown,
    format_text,
    quantity,
)
from orchestrator.toolchain.diff_cli import diff_stack
from orchestrator.toolchain.render import PROJECT_DIR

PROGRAM_FILES = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "__main__.py")

# A StatefulSet that only the base commit's program creates, from a module only the base has: if the
# base side were rendered with the working tree's `components`, the import would fail.
EXTRA_MODULE = textwrap.dedent('''\
    import pulumi_kubernetes as k8s

    def legacy_cache(namespace):
        labels = {"app.kubernetes.io/name": "legacy-cache"}
        return k8s.apps.v1.StatefulSet(
            "legacy-cache",
            metadata={"name": "legacy-cache", "namespace": namespace, "labels": labels},
            spec={"service_name": "legacy-cache", "replicas": 1, "selector": {"match_labels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "cache", "image": "redis:7.4.1"}]}},
                  "volume_claim_templates": [{"metadata": {"name": "data"}, "spec": {
                      "access_modes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]})
    ''')
EXTRA_MAIN = "\nfrom components.legacy_cache import legacy_cache\nlegacy_cache('orchestrator-dev')\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository (branch main) whose first commit is the real program and stacks."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in PROGRAM_FILES:
        shutil.copy(PROJECT_DIR / name, root / name)
    shutil.copytree(PROJECT_DIR / "components", root / "components",
                    ignore=shutil.ignore_patterns("__pycache__"))
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "test@example.invalid")
    git(root, "config", "user.name", "test")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    return root


def edit_stack(repo: Path, stack: str, tier: str, key: str, value) -> None:
    path = repo / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"].setdefault(f"orchestrator:{tier}", {})[key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def run_diff(repo: Path, capsys, *extra: str) -> tuple[int, str]:
    code = main(["diff", "--stack", "dev", "--project-dir", str(repo), *extra])
    return code, capsys.readouterr().out


def by_kind_name(diff):
    return {(c.key.kind, c.key.name): c for c in diff.changes}


def test_no_change(repo, capsys):
    code, out = run_diff(repo, capsys)
    assert code == EXIT_NO_CHANGES
    assert "no changes" in out
    assert "merge-base(main)@" in out


def test_replica_count_is_an_update(repo, capsys):
    edit_stack(repo, "dev", "marathon", "replicas", 2)
    diff = diff_stack("dev", repo)
    changes = by_kind_name(diff)
    assert set(changes) == {("Deployment", "marathon")}
    change = changes[("Deployment", "marathon")]
    assert change.action == UPDATED and change.flags == []
    assert change.paths == ["spec.replicas"]
    assert diff.exit_code == EXIT_CHANGES
    out = format_text(diff)
    assert "~  Deployment orchestrator-dev/marathon  (marathon)" in out
    assert "-  replicas: 1" in out and "+  replicas: 2" in out
    assert "stack dev: merge-base(main)@" in out and "1 to update in place" in out
    assert f"[{REPLACE_FLAG}]" not in out and f"[{DATA_LOSS_FLAG}]" not in out


def test_volume_claim_template_size_is_replace_with_data_loss_risk(repo, capsys):
    edit_stack(repo, "dev", "zookeeper", "storage", "2Gi")
    diff = diff_stack("dev", repo)
    sts = by_kind_name(diff)[("StatefulSet", "zookeeper")]
    assert sts.action == REPLACED
    assert sts.flags == [REPLACE_FLAG, DATA_LOSS_FLAG]
    assert "spec.volumeClaimTemplates[0].spec.resources.requests.storage" in sts.paths
    assert sts.reasons == ["spec.volumeClaimTemplates of a StatefulSet is immutable"]
    assert [c.key.name for c in diff.changes if c.dangerous] == ["zookeeper"]
    assert diff.exit_code == EXIT_DANGEROUS
    out = format_text(diff)
    assert "StatefulSet orchestrator-dev/zookeeper  (zookeeper)  [REPLACE]  [DATA-LOSS RISK]" in out
    assert "replace: spec.volumeClaimTemplates of a StatefulSet is immutable" in out

    code, md = run_diff(repo, capsys, "--format", "markdown")
    assert code == EXIT_DANGEROUS
    assert md.startswith("<!-- orchestrator-diff stack=dev -->\n")
    table = md.index("| | Object |")
    details = md.index("<details>")
    assert table < details, "summary table comes before the details"
    assert "| `+-` | StatefulSet `orchestrator-dev/zookeeper` | zookeeper | **REPLACE**, **DATA-LOSS RISK** |" in md
    assert "```diff\n" in md and "-          storage: 1Gi" in md and "+          storage: 2Gi" in md


def test_removed_statefulset_is_data_loss_risk(repo, capsys):
    # Base: the program plus a StatefulSet from a module of its own; the working tree removes both.
    (repo / "components" / "legacy_cache.py").write_text(EXTRA_MODULE)
    with (repo / "__main__.py").open("a") as f:
        f.write(EXTRA_MAIN)
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "add legacy cache")
    git(repo, "rm", "-q", "components/legacy_cache.py")
    shutil.copy(PROJECT_DIR / "__main__.py", repo / "__main__.py")

    diff = diff_stack("dev", repo, "HEAD")
    assert [(c.key.kind, c.key.name, c.action) for c in diff.changes] == [("StatefulSet", "legacy-cache", REMOVED)]
    assert diff.changes[0].flags == [DATA_LOSS_FLAG]
    assert diff.exit_code == EXIT_DANGEROUS
    assert "-  StatefulSet orchestrator-dev/legacy-cache  (namespaces)  [DATA-LOSS RISK]" in format_text(diff)


def test_new_resource_is_added(repo, capsys):
    (repo / "components" / "legacy_cache.py").write_text(EXTRA_MODULE)
    with (repo / "__main__.py").open("a") as f:
        f.write(EXTRA_MAIN)
    diff = diff_stack("dev", repo)
    assert [(c.key.kind, c.key.name, c.action, c.flags) for c in diff.changes] == [
        ("StatefulSet", "legacy-cache", ADDED, [])]
    assert diff.exit_code == EXIT_CHANGES
    assert "+  StatefulSet orchestrator-dev/legacy-cache" in format_text(diff)


def test_base_ref_is_a_branch_point_not_the_main_tip(repo, capsys):
    """Default base = merge base with main: commits on main after the branch point do not show up."""
    git(repo, "checkout", "-q", "-b", "feature")
    edit_stack(repo, "dev", "marathon", "replicas", 2)
    git(repo, "commit", "-q", "-am", "feature: two marathons")
    git(repo, "checkout", "-q", "main")
    edit_stack(repo, "dev", "zookeeper", "storage", "5Gi")
    git(repo, "commit", "-q", "-am", "main: bigger zk disks")
    git(repo, "checkout", "-q", "feature")
    diff = diff_stack("dev", repo)
    assert [(c.key.name, c.action) for c in diff.changes] == [("marathon", UPDATED)]
    assert diff.exit_code == EXIT_CHANGES


def test_bad_input_is_a_clear_error(repo, capsys):
    assert main(["diff", "--stack", "dev", "--project-dir", str(repo), "--base", "no-such-ref"]) == EXIT_ERROR
    assert "--base 'no-such-ref' is not a commit" in capsys.readouterr().err
    assert main(["diff", "--stack", "staging", "--project-dir", str(repo)]) == EXIT_ERROR
    assert "Pulumi.staging.yaml: no such stack file" in capsys.readouterr().err
    edit_stack(repo, "dev", "zookeeper", "replicas", 2)  # even: rejected by the settings
    assert main(["diff", "--stack", "dev", "--project-dir", str(repo)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "does not render at the working tree" in err and "orchestrator:zookeeper.replicas" in err
    assert git(repo, "status", "--porcelain") == " M Pulumi.dev.yaml\n", "the diff changes nothing"


# --- classification rules, without git ----------------------------------------------------------
def _obj(kind: str, spec: dict, name: str = "x", **top) -> dict:
    return {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": "ns"}, "spec": spec, **top}


def _one(before: dict | None, after: dict | None):
    diff = compare("t", {"t": [before]} if before else {}, {"t": [after]} if after else {})
    assert len(diff.changes) == 1
    return diff.changes[0]


@pytest.mark.parametrize("kind,before,after,replace", [
    ("StatefulSet", {"serviceName": "a", "replicas": 1}, {"serviceName": "b", "replicas": 1}, True),
    ("StatefulSet", {"podManagementPolicy": "OrderedReady"}, {"podManagementPolicy": "Parallel"}, True),
    ("StatefulSet", {"selector": {"matchLabels": {"a": "1"}}}, {"selector": {"matchLabels": {"a": "2"}}}, True),
    ("StatefulSet", {"replicas": 1, "template": {"x": 1}}, {"replicas": 3, "template": {"x": 2}}, False),
    ("Deployment", {"selector": {"matchLabels": {"a": "1"}}}, {"selector": {"matchLabels": {"a": "2"}}}, True),
    ("DaemonSet", {"selector": {"matchLabels": {"a": "1"}}}, {"selector": {"matchLabels": {"a": "2"}}}, True),
    ("Deployment", {"replicas": 1}, {"replicas": 2}, False),
    ("Service", {"type": "ClusterIP"}, {"type": "NodePort"}, True),
    ("Service", {"clusterIP": "None"}, {}, True),
    ("Service", {"ports": [{"port": 80}]}, {"ports": [{"port": 81}]}, False),
    ("PersistentVolumeClaim", {"storageClassName": "a"}, {"storageClassName": "b"}, True),
    ("PersistentVolumeClaim", {"accessModes": ["ReadWriteOnce"]}, {"accessModes": ["ReadWriteMany"]}, True),
    ("PersistentVolumeClaim", {"resources": {"requests": {"storage": "10Gi"}}},
     {"resources": {"requests": {"storage": "5Gi"}}}, True),
    ("PersistentVolumeClaim", {"resources": {"requests": {"storage": "1Gi"}}},
     {"resources": {"requests": {"storage": "2000Mi"}}}, False),
    ("Job", {"template": {"spec": {"x": 1}}}, {"template": {"spec": {"x": 2}}}, True),
])
def test_replace_rules(kind, before, after, replace):
    change = _one(_obj(kind, before), _obj(kind, after))
    assert change.action == (REPLACED if replace else UPDATED)
    stateful = kind in ("StatefulSet", "PersistentVolumeClaim")
    assert (DATA_LOSS_FLAG in change.flags) == (replace and stateful)


def test_removals_of_stateful_objects_and_namespaces_risk_data():
    assert _one(_obj("PersistentVolumeClaim", {}), None).flags == [DATA_LOSS_FLAG]
    assert _one({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}}, None).flags == [DATA_LOSS_FLAG]
    assert _one(_obj("Deployment", {}), None).flags == []
    assert _one(_obj("ConfigMap", {}, immutable=True), _obj("ConfigMap", {}, immutable=True, data={"a": "b"})
                ).action == REPLACED


def test_quantities():
    assert quantity("1Gi") == 2**30 and quantity("500M") == 500 * 10**6 and quantity("250m") * 4 == 1
    assert quantity("lots") is None


def test_markdown_stays_within_a_comment():
    big = [_obj("ConfigMap", {}, name=f"cm{i}", data={"k": "x" * 2000}) for i in range(60)]
    changed = [_obj("ConfigMap", {}, name=f"cm{i}", data={"k": "y" * 2000}) for i in range(60)]
    md = format_markdown(compare("dev", {"t": big}, {"t": changed}))
    assert len(md) < 65_536
    assert "diff(s) left out to fit a comment" in md
    assert md.count("| `~` | ConfigMap") == 60, "the table lists every change even when details are cut"
