"""The architecture as rules: the tier registry is the one list of tiers (the Platform, the Argo CD
Applications, the policy pack and the settings agree with it)."""
import json
from pathlib import Path

import pytest

from components.settings import PlatformSettings, SettingsError, settings_from_config
from orchestrator.contracts import tiers
from orchestrator.toolchain.render import PROJECT_DIR
from tests.support.harness import objects, stack, stack_settings

STACKS = ["dev", "prod"]


def test_policy_pack_data_is_generated_from_the_registry():
    on_disk = json.loads((PROJECT_DIR / "policy" / "tiers.json").read_text())
    assert on_disk == tiers.policy_data(), \
        "policy/tiers.json is stale: python -m orchestrator.contracts.tiers > policy/tiers.json"
    from policy import rules
    assert rules.HA_TIERS == {"zookeeper": 3, "mesos-master": 3, "marathon": 2}
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
    config = {"orchestrator:production": "true", "orchestrator:security": '{"auth": false}',
              f"orchestrator:{spec.section}": json.dumps({"replicas": below})}
    with pytest.raises(SettingsError) as err:
        settings_from_config(config, "Pulumi.x.yaml")
    assert f"orchestrator:{spec.section}.replicas" in str(err.value)
    # ... and accept exactly the minimum.
    ok = {**config, f"orchestrator:{spec.section}": json.dumps({"replicas": spec.ha_min})}
    assert getattr(settings_from_config(ok, "Pulumi.x.yaml"), spec.section).replicas == spec.ha_min


def test_every_registry_section_is_a_settings_section():
    fields = set(PlatformSettings.model_fields)
    assert {t.section for t in tiers.TIERS} <= fields


def test_privileged_tiers_live_only_in_the_privileged_namespace():
    s = PlatformSettings.model_validate({"namespace": "p"})
    privileged = [t for t in tiers.TIERS if t.privileged]
    assert [t.id for t in privileged] == ["mesos-agent"]
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
