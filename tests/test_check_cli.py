"""`orchestrator check`, the main job: every validator over a stack, and nothing written on a finding."""
import json
import shutil

from orchestrator.cli import main
from orchestrator.toolchain.render import PROJECT_DIR
from tests.support.tools import require_checkov, require_tool


def test_check_passes_on_dev_and_writes_the_render(tmp_path, capsys):
    require_tool("promtool", hint="apt-get install prometheus")
    require_checkov()
    assert main(["check", "--stack", "dev", "--out", str(tmp_path / "dev")]) == 0
    out = capsys.readouterr().out
    assert "policy pack (dev.json); checkov" in out
    assert (tmp_path / "dev" / "zookeeper" / "manifests.yaml").is_file()


def test_a_policy_finding_fails_the_check_and_writes_nothing(tmp_path, capsys, monkeypatch):
    require_tool("promtool", hint="apt-get install prometheus")
    require_checkov()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    shutil.copytree(PROJECT_DIR / "policy", tmp_path / "policy")
    shutil.copytree(PROJECT_DIR / "deploy" / "marathon-apps", tmp_path / "deploy" / "marathon-apps")  # dev's apps_dir
    # The dev stack judged by production's rules: single replicas and no HA.
    (tmp_path / "policy" / "dev.json").write_text(json.dumps({"ha-replicas-and-budgets": {"production": True}}))
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--stack", "dev"]) == 1
    err = capsys.readouterr().err
    assert "policy ha-replicas-and-budgets: zookeeper zookeeper: 1 replicas" in err
    assert not (tmp_path / "rendered").exists()
