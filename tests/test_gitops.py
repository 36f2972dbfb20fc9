"""GitOps delivery: the app-of-apps points at directories a fresh `orchestrator render` writes, the
projects allow exactly what the tiers deploy, the sync waves order the tiers, and `pulumi up` applies
every tier (direct) or only the Argo CD objects (gitops) with the same stack outputs either way."""
from pathlib import Path

import pulumi
import pytest
import yaml

from components.platform import ARGOCD_APPS_TIER, ARGOCD_TIER, Platform, PlatformArgs
from components.settings import settings_from_config, settings_from_pulumi
from orchestrator.cli import main
from orchestrator.toolchain.render import (
    PLATFORM_TIER,
    UNWRITTEN_TIERS,
    build_manifests,
    load_stack_config,
    plain,
    run_program,
)
from tests.support.harness import objects, one, resolve, settings, stack

STACKS = ["dev", "prod"]
SYNC_WAVE = "argocd.argoproj.io/sync-wave"
FINALIZER = "resources-finalizer.argocd.argoproj.io"


def apps(result):
    return {a["metadata"]["name"]: a for a in objects(result, "Application")}


def root_of(result):
    ns = result.stack_outputs["namespace"]
    return apps(result)[ns]


def children_of(result):
    ns = result.stack_outputs["namespace"]
    return {n: a for n, a in apps(result).items() if n != ns}


@pytest.fixture(scope="module")
def rendered_repo(tmp_path_factory):
    """A repository checkout as Argo CD sees it after `orchestrator render` (gitops.path = rendered)."""
    repo = tmp_path_factory.mktemp("repo")
    assert main(["render", "--stack", "dev", "--stack", "prod", "--out", str(repo / "rendered")]) == 0
    return repo


@pytest.mark.parametrize("name", STACKS)
def test_every_application_path_exists_in_a_fresh_render(rendered_repo, name):
    result = stack(name)
    all_apps = apps(result)
    assert len(all_apps) == 1 + len(children_of(result)) >= 7
    for app in all_apps.values():
        path = app["spec"]["source"]["path"]
        assert path.startswith(f"rendered/{name}/")
        docs = list(yaml.safe_load_all((rendered_repo / path / "manifests.yaml").read_text()))
        assert docs, f"{app['metadata']['name']}: {path} is empty"
    assert root_of(result)["spec"]["source"]["path"] == f"rendered/{name}/{ARGOCD_APPS_TIER}"
    # The root syncs exactly the child Applications; each child exactly one tier directory.
    root_dir = yaml.safe_load_all((rendered_repo / f"rendered/{name}/{ARGOCD_APPS_TIER}/manifests.yaml").read_text())
    assert {d["metadata"]["name"] for d in root_dir} == set(children_of(result))


@pytest.mark.parametrize("name", STACKS)
def test_every_tier_is_applied_by_exactly_one_of_argocd_and_pulumi(rendered_repo, name):
    """In GitOps delivery each tier directory is synced by one child Application, or applied by
    `pulumi up` (the namespaces, and what must never go to git), never both, never neither."""
    tier_dirs = {p.name for p in (rendered_repo / "rendered" / name).iterdir() if p.is_dir()}
    synced = [a["spec"]["source"]["path"].rsplit("/", 1)[1] for a in children_of(stack(name)).values()]
    assert len(synced) == len(set(synced))
    by_pulumi = set(deploy(name, "gitops")[0].manifests_by_tier) - {ARGOCD_TIER}
    assert PLATFORM_TIER in by_pulumi
    assert not by_pulumi & set(synced)
    # The credentials tier is Pulumi's and never written to the tree (its values are placeholders there).
    assert set(synced) | (by_pulumi - UNWRITTEN_TIERS) == tier_dirs - {ARGOCD_TIER, ARGOCD_APPS_TIER}
    assert not UNWRITTEN_TIERS & (tier_dirs | set(synced))
    assert {"zookeeper", "mesos-master", "mesos-agent", "marathon", "prometheus", "orchestrator-service"} <= set(synced)


@pytest.mark.parametrize("name", STACKS)
def test_children_sync_policy(name):
    children = children_of(stack(name))
    assert children
    for app in children.values():
        assert app["metadata"]["finalizers"] == [FINALIZER]
        policy = app["spec"]["syncPolicy"]
        assert policy["automated"] == {"prune": True, "selfHeal": True}
        assert policy["retry"] == {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
        assert policy["syncOptions"] == ["CreateNamespace=true", "PruneLast=true"]
        src = app["spec"]["source"]
        # dev follows main; prod follows the release branch only the approved deploy job moves (F5).
        assert (src["repoURL"], src["targetRevision"]) == (
            "https://github.com/orchestrator/orchestrator.git", {"dev": "main", "prod": "release"}[name])


@pytest.mark.parametrize("name", STACKS)
def test_sync_waves_order_the_tiers(name):
    ns = stack(name).stack_outputs["namespace"]
    wave = {n[len(ns) + 1:]: int(a["metadata"]["annotations"][SYNC_WAVE]) for n, a in children_of(stack(name)).items()}
    assert wave["prometheus"] <= wave["zookeeper"] == min(w for t, w in wave.items() if t != "network-policy")
    assert wave["zookeeper"] < wave["mesos-master"] < wave["mesos-agent"] < wave["orchestrator-service"]
    assert wave["mesos-agent"] == wave["marathon"]
    assert wave["orchestrator-service"] == max(wave.values())


@pytest.mark.parametrize("name", STACKS)
def test_projects_allow_exactly_what_the_tiers_deploy(name):
    result = stack(name)
    ns, agents_ns = result.stack_outputs["namespace"], result.stack_outputs["agents_namespace"]
    platform = one(result, "AppProject", ns)["spec"]
    root = one(result, "AppProject", f"{ns}-root")["spec"]
    repo = "https://github.com/orchestrator/orchestrator.git"
    assert platform["sourceRepos"] == root["sourceRepos"] == [repo]
    assert {d["namespace"] for d in platform["destinations"]} == {ns, agents_ns}
    assert root["destinations"] == [{"server": "https://kubernetes.default.svc", "namespace": "argocd"}]
    assert root["clusterResourceWhitelist"] == []
    assert root["namespaceResourceWhitelist"] == [{"group": "argoproj.io", "kind": "Application"}]
    # Every object a child deploys fits the platform project; the cluster-wide list has nothing unused.
    synced = [m for a in children_of(result).values() for m in result.manifests_by_tier[a["spec"]["source"]["path"]
                                                                                       .rsplit("/", 1)[1]]]
    assert len(synced) >= 30
    allowed_ns = {d["namespace"] for d in platform["destinations"]}
    cluster_kinds = set()
    for m in synced:
        if "namespace" in m["metadata"]:
            assert m["metadata"]["namespace"] in allowed_ns, m["metadata"]
        else:
            cluster_kinds.add((m["apiVersion"].rpartition("/")[0], m["kind"]))
    assert {(c["group"], c["kind"]) for c in platform["clusterResourceWhitelist"]} == cluster_kinds
    for app in children_of(result).values():
        assert app["spec"]["project"] == ns
        assert app["spec"]["destination"]["namespace"] in allowed_ns
    assert root_of(result)["spec"]["project"] == f"{ns}-root"


@pytest.mark.parametrize("name", STACKS)
def test_what_pulumi_applies_is_not_awaited_and_the_root_does_not_cascade(name):
    result = stack(name)
    argocd = result.manifests_by_tier[ARGOCD_TIER]
    assert sorted(d["kind"] for d in argocd) == ["AppProject", "AppProject", "Application"]
    for doc in argocd:
        assert doc["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"
        assert doc["metadata"]["namespace"] == "argocd"
    assert "finalizers" not in root_of(result)["metadata"]


# --- delivery modes: what `pulumi up` applies ------------------------------------------------------
def deploy(name, delivery):
    """What `pulumi up` registers for the stack with this delivery (its real config, default scope)."""
    config, secret_keys, _ = load_stack_config(name)
    config = dict(config, **{"orchestrator:delivery": delivery})
    values = {}

    def program():
        platform = Platform("orchestrator", PlatformArgs(settings_from_pulumi()))
        pulumi.Output.all(**platform.outputs).apply(values.update)
    result = build_manifests(run_program(name, config, secret_keys, program))
    assert result.registrations and values, "nothing ran"
    return result, plain(values)


@pytest.mark.parametrize("name", STACKS)
def test_gitops_delivery_applies_the_argocd_objects_and_no_workload(name):
    result, outputs = deploy(name, "gitops")
    assert sorted(m["kind"] for m in result.manifests_by_tier[ARGOCD_TIER]) == ["AppProject", "AppProject", "Application"]
    assert {m["kind"] for m in result.manifests} <= {"Namespace", "Secret", "AppProject", "Application"}
    assert len([m for m in result.manifests if m["kind"] == "Namespace"]) == 2
    assert outputs["delivery"] == "gitops"


@pytest.mark.parametrize("name", STACKS)
def test_direct_delivery_applies_every_tier_and_no_argocd_object(name):
    result, outputs = deploy(name, "direct")
    assert not [m for m in result.manifests if m["apiVersion"].startswith("argoproj.io/") and
                m["kind"] in ("Application", "AppProject")]
    assert ARGOCD_TIER not in result.manifests_by_tier and ARGOCD_APPS_TIER not in result.manifests_by_tier
    tiers = set(stack(name).manifests_by_tier) - {ARGOCD_TIER, ARGOCD_APPS_TIER}
    assert set(result.manifests_by_tier) == tiers
    assert outputs["delivery"] == "direct"


@pytest.mark.parametrize("name", STACKS)
def test_stack_outputs_are_the_same_in_both_delivery_modes(name):
    _, gitops = deploy(name, "gitops")
    _, direct = deploy(name, "direct")
    assert len(direct) >= 14
    assert {k: v for k, v in gitops.items() if k != "delivery"} == {k: v for k, v in direct.items() if k != "delivery"}


def test_repository_revision_and_path_come_from_settings():
    s = settings(namespace="ns", gitops={"repo_url": "ssh://git@example.com/platform/infra.git",
                                         "revision": "release-1", "path": "deploy/trees", "argocd_namespace": "gitops"})
    result, out = resolve(lambda: {"ok": Platform("orchestrator", PlatformArgs(s, scope="tree")).outputs["namespace"]})
    for app in objects(result, "Application"):
        src = app["spec"]["source"]
        assert src["repoURL"] == "ssh://git@example.com/platform/infra.git"
        assert src["targetRevision"] == "release-1"
        assert src["path"].startswith("deploy/trees/unit/")  # the harness runs as stack "unit"
        assert app["metadata"]["namespace"] == "gitops"
    assert all(p["spec"]["sourceRepos"] == ["ssh://git@example.com/platform/infra.git"]
               for p in objects(result, "AppProject"))
    assert len(objects(result, "Application")) >= 7 and out["ok"]


def test_bad_gitops_settings_name_the_key():
    from components.settings import SettingsError
    with pytest.raises(SettingsError) as err:
        settings_from_config({"orchestrator:delivery": "argo", "orchestrator:gitops": '{"repo_url": "github.com/x"}'},
                             "Pulumi.x.yaml")
    assert "Pulumi.x.yaml: orchestrator:delivery" in str(err.value)
    assert "Pulumi.x.yaml: orchestrator:gitops.repo_url" in str(err.value)


def test_render_scope_does_not_leak_into_the_environment():
    import os
    stack("dev")
    assert "ORCHESTRATOR_SCOPE" not in os.environ
    assert Path("__main__.py").read_text().count("Platform(") == 1
