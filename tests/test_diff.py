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
    QUORUM_FLAG,
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
STACK_INPUTS = ("deploy",)

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
    (root / "policy").mkdir()
    for policy in (PROJECT_DIR / "policy").glob("*.json"):  # every stack has one (the diff requires it)
        shutil.copy(policy, root / "policy" / policy.name)
    for extra in STACK_INPUTS:  # files a stack's settings read (app definitions)
        if (PROJECT_DIR / extra).is_dir():
            shutil.copytree(PROJECT_DIR / extra, root / extra)
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


# --- this domain's dangers (issue 14: quorum; issue 16 item 4: data loss the objects do not show) ---
def test_quorum_change_of_zookeeper_and_masters_prints_the_procedure(repo, capsys):
    edit_stack(repo, "dev", "zookeeper", "replicas", 3)
    edit_stack(repo, "dev", "mesos_master", "replicas", 3)
    diff = diff_stack("dev", repo)
    changes = by_kind_name(diff)
    zk, masters = changes[("StatefulSet", "zookeeper")], changes[("StatefulSet", "mesos-master")]
    assert zk.flags == [QUORUM_FLAG] and zk.action == UPDATED, "in place for Kubernetes, but not safe"
    assert "ZooKeeper servers 1 → 3 (majority 1 → 2)" in zk.quorum
    assert QUORUM_FLAG in masters.flags
    assert "Mesos masters 1 → 3" in masters.quorum and "--quorum 1 → 2 in the same roll" in masters.quorum
    assert diff.quorum_tiers == ["zookeeper", "mesos-master"]
    assert diff.exit_code == EXIT_DANGEROUS
    code, out = run_diff(repo, capsys)
    assert code == EXIT_DANGEROUS
    assert "QUORUM CHANGE of ZooKeeper servers and Mesos masters" in out.splitlines()[0]
    assert "StatefulSet orchestrator-dev/zookeeper  (zookeeper)  [QUORUM CHANGE]" in out
    procedure = out[out.index("Safe procedure"):]
    assert "orchestrator zk reconfig" in procedure and "--add" in procedure and "--remove" in procedure
    assert "quorum_override" in procedure and "docs/quorum-changes.md" in procedure
    code, md = run_diff(repo, capsys, "--format", "markdown")
    assert code == EXIT_DANGEROUS and "**Safe procedure**" in md and "**QUORUM CHANGE**" in md


def test_marathon_replicas_are_no_quorum(repo):
    edit_stack(repo, "dev", "marathon", "replicas", 3)  # leader election through ZooKeeper, no vote of its own
    assert diff_stack("dev", repo).quorum_tiers == []


def test_zk_path_and_agent_work_dir_are_data_loss(repo, capsys):
    edit_stack(repo, "dev", "marathon", "zk_path", "/marathon2")
    edit_stack(repo, "dev", "mesos_agent", "work_dir", "/var/lib/mesos/agent-b")  # ("/" is refused by the settings)
    diff = diff_stack("dev", repo)
    changes = by_kind_name(diff)
    marathon, agents = changes[("Deployment", "marathon")], changes[("DaemonSet", "mesos-agent")]
    assert marathon.action == UPDATED and marathon.flags == [DATA_LOSS_FLAG]
    assert "ZooKeeper path /marathon, /mesos → /marathon2, /mesos" in marathon.data_loss
    assert agents.flags == [DATA_LOSS_FLAG]
    assert "Mesos work dir /var/lib/mesos/agent → /var/lib/mesos/agent-b" in agents.data_loss
    assert "host path of volume 'work' /var/lib/mesos/agent → /var/lib/mesos/agent-b" in agents.data_loss
    # The outputs contract says it too (with authentication on, the pods' zk URLs are in Secrets).
    assert [r.subject for r in diff.risks] == ["marathon_zk_url path /marathon → /marathon2"]
    assert diff.exit_code == EXIT_DANGEROUS
    code, out = run_diff(repo, capsys)
    assert code == EXIT_DANGEROUS
    assert "!  [DATA-LOSS RISK] marathon_zk_url path /marathon → /marathon2" in out
    assert "orchestrator zk copy" in out


def test_mesos_zk_path_flags_every_workload_that_follows_it(repo):
    edit_stack(repo, "dev", "mesos_master", "zk_path", "/mesos-b")
    diff = diff_stack("dev", repo)
    flagged = sorted(c.key.name for c in diff.changes if c.data_loss)
    assert flagged == ["marathon", "mesos-agent", "mesos-master"]
    assert [r.subject for r in diff.risks] == ["mesos_zk_url path /mesos → /mesos-b"]


def test_namespace_and_cluster_domain_are_data_loss(repo, capsys):
    path = repo / "Pulumi.dev.yaml"
    doc = yaml.safe_load(path.read_text())
    doc["config"]["orchestrator:namespace"] = "orchestrator-next"
    doc["config"]["orchestrator:cluster_domain"] = "corp.internal"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    diff = diff_stack("dev", repo)
    subjects = [r.subject for r in diff.risks]
    assert subjects == ["namespace orchestrator-dev → orchestrator-next",
                        "agents_namespace orchestrator-dev-agents → orchestrator-next-agents",
                        "cluster domain cluster.local → corp.internal"]
    assert all(r.flag == DATA_LOSS_FLAG for r in diff.risks)
    assert diff.exit_code == EXIT_DANGEROUS
    code, out = run_diff(repo, capsys)
    assert code == EXIT_DANGEROUS and "stack-wide risk" in out.splitlines()[0]
    assert "claims (ZooKeeper's data" in out and "loses quorum" in out


def test_a_stack_without_its_policy_file_is_an_error(repo, capsys):
    shutil.copy(repo / "Pulumi.prod.yaml", repo / "Pulumi.staging.yaml")
    assert main(["diff", "--stack", "staging", "--project-dir", str(repo)]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert "policy/staging.json: stack 'staging' has no policy file" in err
    assert main(["diff", "--stack", "dev", "--project-dir", str(repo)]) == EXIT_NO_CHANGES, \
        "a stack with its policy file is unaffected"


def test_host_path_and_quorum_flag_rules():
    def daemonset(volumes, args=()):
        return _obj("DaemonSet", {"template": {"spec": {"containers": [{"name": "c", "args": list(args)}],
                                                        "volumes": volumes}}}, name="agent")
    cgroup = {"name": "cgroup", "hostPath": {"path": "/sys/fs/cgroup"}}
    added = _one(daemonset([cgroup]), daemonset([cgroup, {"name": "root", "hostPath": {"path": "/"}}]))
    assert added.flags == [DATA_LOSS_FLAG] and "new host path / (volume 'root')" in added.data_loss
    assert _one(daemonset([cgroup], ["--port=1"]), daemonset([cgroup], ["--port=2"])).flags == []
    # A CronJob's pods count as well.
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c", "namespace": "ns"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [
                {"name": "c", "args": ["zk://zk:2181/a"]}]}}}}}}
    moved = yaml.safe_load(yaml.safe_dump(cron).replace("2181/a", "2181/b"))
    assert "ZooKeeper path /a → /b" in _one(cron, moved).data_loss

    def masters(replicas, quorum):
        return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "m", "namespace": "ns"},
                "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                    {"name": "m", "args": [f"--quorum={quorum}"]}]}}}}
    step1 = compare("s", {"mesos-master": [masters(3, 2)]}, {"mesos-master": [masters(3, 3)]}).changes[0]
    assert step1.flags == [QUORUM_FLAG] and step1.quorum.startswith("--quorum 2 → 3 with 3 masters")
    step2 = compare("s", {"mesos-master": [masters(3, 3)]}, {"mesos-master": [masters(5, 3)]}).changes[0]
    assert "--quorum stays 3: safe only when the --quorum change rolls out as its own change" in step2.quorum
    other_tier = compare("s", {"cache": [masters(3, 2)]}, {"cache": [masters(5, 3)]}).changes[0]
    assert other_tier.flags == [], "a StatefulSet of another tier holds no quorum of ours"
