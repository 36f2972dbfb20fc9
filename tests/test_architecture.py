"""The architecture as rules (docs/architecture.md): the tier registry is the one list of tiers (the
Platform, the Argo CD Applications, the policy pack and the settings agree with it), and the import
layers hold: services never import Pulumi, the platform or the toolchain; contracts import nothing of
ours; no cycles. Each rule is also shown to fail on a planted violation."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.settings import PlatformSettings, SettingsError, settings_from_config
from orchestrator.contracts import tiers
from orchestrator.toolchain.render import PROJECT_DIR
from tests.support.harness import objects, stack, stack_settings
from tests.support.import_layers import FIRST_PARTY, problems

STACKS = ["dev", "prod"]


def test_policy_pack_data_is_generated_from_the_registry():
    on_disk = json.loads((PROJECT_DIR / "policy" / "tiers.json").read_text())
    assert on_disk == tiers.policy_data(), \
        "policy/tiers.json is stale: python -m orchestrator.contracts.tiers > policy/tiers.json"
    from policy import rules
    assert rules.HA_TIERS == {"zookeeper": 3, "mesos-master": 3, "marathon": 2, "alertmanager": 2}
    assert rules.AGENT_NAMESPACE_SUFFIX == tiers.AGENTS_NAMESPACE_SUFFIX


@pytest.mark.parametrize("name", STACKS)
def test_render_directories_and_applications_come_from_the_registry(name):
    result, settings = stack(name), stack_settings(name)
    assert set(result.manifests_by_tier) == {tiers.NAMESPACES_DIR} | {t.id for t in tiers.enabled_tiers(settings)}
    ns = settings.namespace
    children = {a["metadata"]["name"]: a for a in objects(result, "Application") if a["metadata"]["name"] != ns}
    expected = tiers.argocd_tiers(settings)
    assert set(children) == {f"{ns}-{t.id}" for t in expected}
    for t in expected:
        app = children[f"{ns}-{t.id}"]
        assert app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == str(t.wave)
        assert app["spec"]["destination"]["namespace"] == t.namespace_of(ns)
        assert app["spec"]["source"]["path"].endswith(f"/{name}/{t.id}")


@pytest.mark.parametrize("name", STACKS)
def test_every_tier_labels_its_objects_with_its_registry_identity(name):
    result = stack(name)
    for tier_id, docs in result.manifests_by_tier.items():
        if tier_id == tiers.NAMESPACES_DIR:
            continue
        spec = tiers.BY_ID[tier_id]
        for doc in docs:
            labels = doc["metadata"]["labels"]
            assert labels["app.kubernetes.io/instance"] == tier_id, doc["metadata"]["name"]
            assert labels["app.kubernetes.io/component"] == spec.component_label, doc["metadata"]["name"]
            assert labels["app.kubernetes.io/name"] == spec.app_label or spec.app is None, doc["metadata"]["name"]


@pytest.mark.parametrize("spec", [t for t in tiers.TIERS if t.ha_min is not None], ids=lambda t: t.id)
def test_settings_refuse_fewer_replicas_than_the_registry_minimum_in_production(spec):
    below = spec.ha_min - 1 if spec.ha_min % 2 == 0 else spec.ha_min - 2  # odd quorums stay odd
    # An optional tier (`<section>.enabled`) is checked when it is on.
    switch = {"enabled": True} if spec.enabled_when == f"{spec.section}.enabled" else {}
    config = {"orchestrator:production": "true", "orchestrator:security": '{"auth": false}',
              f"orchestrator:{spec.section}": json.dumps({"replicas": below, **switch})}
    with pytest.raises(SettingsError) as err:
        settings_from_config(config, "Pulumi.x.yaml")
    assert f"orchestrator:{spec.section}.replicas" in str(err.value)
    # ... and accept exactly the minimum.
    ok = {**config, f"orchestrator:{spec.section}": json.dumps({"replicas": spec.ha_min, **switch})}
    assert getattr(settings_from_config(ok, "Pulumi.x.yaml"), spec.section).replicas == spec.ha_min


def test_every_registry_section_is_a_settings_section():
    fields = set(PlatformSettings.model_fields)
    assert {t.section for t in tiers.TIERS} <= fields


def test_privileged_tiers_live_only_in_the_privileged_namespace():
    s = PlatformSettings.model_validate({"namespace": "p"})
    privileged = [t for t in tiers.TIERS if t.privileged]
    assert [t.id for t in privileged] == ["mesos-agent", "probe"]  # the probe reads the node: docs/probe.md
    assert {t.namespace_of(s.namespace) for t in privileged} == {s.agents_namespace}


def test_enabled_predicates_follow_the_settings():
    off = PlatformSettings.model_validate({})
    on = PlatformSettings.model_validate({"zk_sync": {"enabled": True, "source": "old:2181"},
                                          "security": {"auth": True}})
    assert tiers.ZK_SYNC not in tiers.enabled_tiers(off) and tiers.AUTH not in tiers.enabled_tiers(off)
    assert tiers.ZK_SYNC in tiers.enabled_tiers(on) and tiers.AUTH in tiers.enabled_tiers(on)
    assert tiers.ZK_SYNC in tiers.argocd_tiers(on) and tiers.AUTH not in tiers.argocd_tiers(on)


def test_registry_refuses_a_privileged_tier_outside_the_agents_namespace(monkeypatch):
    bad = tiers.TierSpec("debug-shell", "service", privileged=True)
    monkeypatch.setattr(tiers, "TIERS", (*tiers.TIERS, bad))
    with pytest.raises(ValueError, match="debug-shell"):
        tiers._check_registry()
    monkeypatch.setattr(tiers, "TIERS", (*tiers.TIERS, tiers.ZOOKEEPER))
    with pytest.raises(ValueError, match="unique"):
        tiers._check_registry()


def test_policy_data_file_is_next_to_the_rules():
    assert (Path(__file__).resolve().parents[1] / "policy" / "tiers.json").is_file()


# --- import layers ------------------------------------------------------------------------------
def test_the_import_layers_hold():
    assert problems(PROJECT_DIR) == []


def _copy_packages(tmp_path):
    for top in FIRST_PARTY:
        shutil.copytree(PROJECT_DIR / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__", "node_modules"))
    return tmp_path


def test_the_layer_check_catches_planted_violations(tmp_path):
    root = _copy_packages(tmp_path)
    before = problems(root)
    (root / "orchestrator/services/planted.py").write_text("def f():\n    import pulumi_kubernetes\n")
    (root / "orchestrator/services/planted_rel.py").write_text("from ..toolchain import render\n")
    (root / "orchestrator/contracts/planted.py").write_text("from components.settings import PlatformSettings\n")
    (root / "orchestrator/contracts/planted_dep.py").write_text("import httpx\n")
    (root / "components/planted.py").write_text("from orchestrator.services.zk import cli\n")
    (root / "orchestrator/toolchain/cyc_a.py").write_text("from orchestrator.toolchain import cyc_b\n")
    (root / "orchestrator/toolchain/cyc_b.py").write_text("def f():\n    from orchestrator.toolchain.cyc_a import x\n")
    (root / "orchestrator/toolchain/typed_a.py").write_text("from orchestrator.toolchain import typed_b\n")
    (root / "orchestrator/toolchain/typed_b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from orchestrator.toolchain.typed_a import X\n")
    (root / "orchestrator/services/typed.py").write_text(
        "import typing\nif typing.TYPE_CHECKING:\n    import pulumi\n")
    new = set(problems(root)) - set(before)
    assert {p.split(":")[0] for p in new if not p.startswith("import cycle")} == {
        "orchestrator/services/planted.py", "orchestrator/services/planted_rel.py",
        "orchestrator/contracts/planted.py", "orchestrator/contracts/planted_dep.py", "components/planted.py",
        "orchestrator/services/typed.py"}  # a type-only import still breaks the layer rule
    assert not any("typed_a" in p for p in new)  # ... but makes no runtime cycle
    assert "import cycle: orchestrator.toolchain.cyc_a -> orchestrator.toolchain.cyc_b -> orchestrator.toolchain.cyc_a" \
        in new
    assert any("planted_rel" in p and "orchestrator.toolchain.render" in p for p in new)


# Imports of pulumi, the platform or the toolchain fail in this interpreter; then every services,
# clients, fakes and contracts module is imported.
_BLOCKED_IMPORT = r'''
import importlib, pkgutil, sys
BLOCKED = ("pulumi", "pulumi_kubernetes", "pulumi_policy", "components", "orchestrator.toolchain",
           "orchestrator.pulumi_adapter")

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"blocked import of {name}")
        return None

sys.meta_path.insert(0, Blocker())
import orchestrator
count = 0
for pkg in ("orchestrator.contracts", "orchestrator.services", "orchestrator.clients", "orchestrator.fakes"):
    try:
        module = importlib.import_module(pkg)
    except ModuleNotFoundError:
        continue
    importlib.import_module(pkg); count += 1
    for info in pkgutil.walk_packages(module.__path__, pkg + "."):
        importlib.import_module(info.name); count += 1
assert not [m for m in sys.modules if m.split(".")[0] in ("pulumi", "pulumi_kubernetes", "components")]
print(count)
'''


def test_every_service_module_imports_with_pulumi_blocked():
    proc = subprocess.run([sys.executable, "-c", _BLOCKED_IMPORT], cwd=PROJECT_DIR, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(proc.stdout) >= 10  # the walk really imported the packages


def test_the_blocker_does_block(tmp_path):
    planted = tmp_path / "orchestrator"
    shutil.copytree(PROJECT_DIR / "orchestrator", planted, ignore=shutil.ignore_patterns("__pycache__"))
    (planted / "services" / "planted.py").write_text("import pulumi\n")
    proc = subprocess.run([sys.executable, "-c", _BLOCKED_IMPORT], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert proc.returncode != 0 and "blocked import of pulumi" in proc.stderr


def test_a_services_only_install_says_render_needs_the_platform_extra(tmp_path):
    """Without the platform extra the toolchain fails with one line naming the extra (exit 2), not a
    traceback: here the SDK is made unfindable with the same meta_path blocker."""
    program = _BLOCKED_IMPORT.split("import orchestrator\n")[0] + (
        "from orchestrator.cli import main\n"
        f"sys.exit(main(['render', '--stack', 'dev', '--out', {str(tmp_path / 'out')!r}]))\n")
    program = program.replace('"components", "orchestrator.toolchain",\n           "orchestrator.pulumi_adapter"', "")
    proc = subprocess.run([sys.executable, "-c", program], cwd=PROJECT_DIR, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'orchestrator[platform]'" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", STACKS)
def test_policy_config_of_each_stack_agrees_with_the_registry_and_settings(name):
    config = json.loads((PROJECT_DIR / "policy" / f"{name}.json").read_text())
    settings = stack_settings(name)
    # Exactly the namespaces the registry's privileged tiers run in, for this stack's namespace.
    assert config["privileged-only-in-agent-namespaces"]["namespaces"] == sorted(
        {t.namespace_of(settings.namespace) for t in tiers.enabled_tiers(settings) if t.privileged})
    assert config["ha-replicas-and-budgets"]["production"] is settings.production
    assert settings.agents_namespace == settings.namespace + tiers.AGENTS_NAMESPACE_SUFFIX
