"""`orchestrator render`: deterministic output, stack files read as the CLI presents them, and bad
input that exits non-zero, names the file and the key, and writes nothing."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import main
from orchestrator.contracts.tiers import NAMESPACES_DIR, enabled_tiers
from orchestrator.errors import ExitCode
from orchestrator.toolchain.render import PROJECT_DIR, REDACTED, load_stack_config
from tests.support.harness import stack_settings


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path):
    """A project directory with the real program and stacks, where tests may add stack files."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "__main__.py"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    shutil.copytree(PROJECT_DIR / "deploy" / "marathon-apps", tmp_path / "deploy" / "marathon-apps")  # dev's apps_dir
    return tmp_path


def test_render_is_deterministic_and_complete(tmp_path, capsys):
    assert main(["render", "--stack", "dev", "--stack", "prod", "--out", str(tmp_path / "a")]) == 0
    assert main(["render", "--stack", "dev", "--stack", "prod", "--out", str(tmp_path / "b")]) == 0
    first, second = tree(tmp_path / "a"), tree(tmp_path / "b")
    assert first == second
    # One directory per tier of the registry enabled for the stack, and the namespaces.
    for name, extra in (("dev", set()), ("prod", {"auth"})):  # prod authenticates: credentials' Secrets
        expected = {NAMESPACES_DIR} | {t.id for t in enabled_tiers(stack_settings(name))}
        assert {"zookeeper", "mesos-master", "mesos-agent", "marathon", "argocd"} | extra <= expected
        # The credentials tier is rendered and checked but never written (Pulumi applies it; F16).
        written = {p.split("/")[1] for p in first if p.startswith(f"{name}/") and p.count("/") == 2}
        assert written == expected - {"auth"}
        assert f"{name}/stack-outputs.json" in first
    out = capsys.readouterr().out
    assert "stack dev:" in out and "stack prod:" in out and "zookeeper" in out


def test_render_has_ints_not_floats(tmp_path):
    assert main(["render", "--stack", "prod", "--out", str(tmp_path)]) == 0
    seen = []

    def walk(v):
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        else:
            seen.append(v)
    for f in tmp_path.rglob("manifests.yaml"):
        for doc in yaml.safe_load_all(f.read_text()):
            walk(doc)
    assert 3 in seen and 2181 in seen
    assert not [v for v in seen if isinstance(v, float)]


BAD_STACKS = {
    "unknown-key": ("  orchestrator:zookeeper:\n    replicas: 3\n    snapshots: 5\n", "orchestrator:zookeeper.snapshots"),
    "unknown-top": ("  orchestrator:zookeepr:\n    replicas: 3\n", "orchestrator:zookeepr"),
    "zk-even": ("  orchestrator:production: true\n  orchestrator:zookeeper:\n    replicas: 2\n",
                "orchestrator:zookeeper.replicas"),
    "zk-small-prod": ("  orchestrator:production: true\n  orchestrator:zookeeper:\n    replicas: 1\n",
                      "orchestrator:zookeeper.replicas"),
    "masters-even": ("  orchestrator:mesos_master:\n    replicas: 4\n", "orchestrator:mesos_master.replicas"),
    "marathon-prod": ("  orchestrator:production: true\n  orchestrator:marathon:\n    replicas: 1\n",
                      "orchestrator:marathon.replicas"),
    "no-tag": ("  orchestrator:zookeeper:\n    image: zookeeper\n", "orchestrator:zookeeper.image"),
    "latest": ("  orchestrator:monitoring:\n    image: prom/prometheus:latest\n", "orchestrator:monitoring.image"),
    "cpu": ("  orchestrator:marathon:\n    resources:\n      cpu_request: 1.5cores\n",
            "orchestrator:marathon.resources.cpu_request"),
    "memory": ("  orchestrator:zookeeper:\n    resources:\n      memory_limit: 1 GB\n",
               "orchestrator:zookeeper.resources.memory_limit"),
    "storage": ("  orchestrator:mesos_master:\n    storage: lots\n", "orchestrator:mesos_master.storage"),
    "port": ("  orchestrator:marathon:\n    port: 80800\n", "orchestrator:marathon.port"),
}


@pytest.mark.parametrize("case", sorted(BAD_STACKS))
def test_bad_config_exits_non_zero_names_the_key_and_writes_nothing(case, project, capsys, monkeypatch):
    body, key = BAD_STACKS[case]
    (project / "Pulumi.bad.yaml").write_text("config:\n" + body)
    monkeypatch.chdir(project)
    out = project / "rendered" / "bad"
    assert main(["render", "--stack", "bad"]) == ExitCode.INPUT
    err = capsys.readouterr().err
    assert f"Pulumi.bad.yaml: {key}:" in err
    assert "nothing was rendered" in err
    assert not out.exists() and not (project / "rendered").exists()


def test_failed_render_leaves_the_previous_render_untouched(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    assert main(["render", "--stack", "dev", "--out", "out"]) == 0
    before = tree(project / "out")
    # The same stack name now fails: the previous output must survive byte for byte.
    (project / "Pulumi.dev.yaml").write_text("config:\n  orchestrator:marathon:\n    port: 0\n")
    assert main(["render", "--stack", "dev", "--out", "out"]) == ExitCode.INPUT
    assert tree(project / "out") == before
    assert not [p for p in project.iterdir() if p.name.startswith(".out")]


def test_unknown_stack_is_a_clear_error(project, capsys, monkeypatch):
    monkeypatch.chdir(project)
    assert main(["render", "--stack", "staging"]) == ExitCode.INPUT
    err = capsys.readouterr().err
    assert "Pulumi.staging.yaml: no such stack file (stacks: dev, prod)" in err


def test_stack_file_is_read_as_the_cli_presents_it(project):
    (project / "Pulumi.s.yaml").write_text(
        "config:\n  namespace: short-key\n  orchestrator:production: true\n"
        "  orchestrator:zookeeper:\n    replicas: 5\n"
        "  orchestrator:token:\n    secure: AAABAKs8bG9uZ2NpcGhlcnRleHQ=\n  kubernetes:context: kind-dev\n")
    config, secret_keys, source = load_stack_config("s", project)
    assert source == "Pulumi.s.yaml"
    assert config["orchestrator:namespace"] == "short-key"  # bare keys belong to the project namespace
    assert config["orchestrator:production"] == "true"
    assert json.loads(config["orchestrator:zookeeper"]) == {"replicas": 5}
    assert config["orchestrator:token"] == REDACTED and secret_keys == ["orchestrator:token"]
    assert config["kubernetes:context"] == "kind-dev"


def test_console_script_end_to_end(tmp_path):
    """The installed entry point, as a user runs it: a separate process with its own exit code."""
    exe = Path(sys.executable).with_name("orchestrator")
    proc = subprocess.run([str(exe), "render", "--stack", "dev", "--out", str(tmp_path / "dev")],
                          capture_output=True, text=True, cwd=PROJECT_DIR)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "dev" / "zookeeper" / "manifests.yaml").is_file()
    outputs = json.loads((tmp_path / "dev" / "stack-outputs.json").read_text())
    assert outputs["namespace"] == "orchestrator-dev"
