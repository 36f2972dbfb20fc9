"""The rendered stacks pass real validators, and each check provably fails on a broken render."""
import copy

import pytest
import yaml

from orchestrator.toolchain import checks
from tests.support.harness import stack
from tests.support.tools import require_tool

STACKS = ["dev", "prod"]


def manifests(name):
    return copy.deepcopy(stack(name).manifests)


def find(docs, kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


@pytest.mark.parametrize("name", STACKS)
def test_rendered_stack_passes_every_check(name, tmp_path):
    require_tool("promtool", hint="apt-get install prometheus")
    docs = manifests(name)
    assert len(docs) >= 20
    assert checks.check_all(docs) == []


@pytest.mark.parametrize("version", checks.KUBERNETES_VERSIONS)
def test_kubernetes_validate_rejects_unknown_and_mistyped_fields(version):
    docs = manifests("dev")
    sts = find(docs, "StatefulSet", "zookeeper")
    sts["spec"]["replica"] = 3  # typo: strict mode rejects unknown fields
    find(docs, "Service", "marathon")["spec"]["ports"][0]["port"] = "eighty"
    problems = checks.kubernetes_schema_problems(docs, [version])
    assert any("StatefulSet orchestrator-dev/zookeeper" in p and "replica" in p for p in problems), problems
    assert any("Service orchestrator-dev/marathon" in p for p in problems), problems
    assert len(problems) == 2


def test_reference_checks_catch_broken_wiring():
    docs = manifests("prod")
    assert checks.reference_problems(docs) == []
    find(docs, "Service", "zookeeper-client")["spec"]["selector"]["app.kubernetes.io/name"] = "zk"
    find(docs, "StatefulSet", "mesos-master")["spec"]["serviceName"] = "nowhere"
    aff = find(docs, "StatefulSet", "zookeeper")["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    aff["requiredDuringSchedulingIgnoredDuringExecution"][0]["labelSelector"]["matchLabels"] = {"app": "zk"}
    find(docs, "Deployment", "marathon")["spec"]["template"]["spec"]["containers"][0]["image"] = "marathon:latest"
    find(docs, "Service", "marathon")["spec"]["ports"][0]["targetPort"] = "web"
    find(docs, "PodDisruptionBudget", "mesos-master-pdb")["spec"]["selector"]["matchLabels"] = {"x": "y"}
    problems = checks.reference_problems(docs)
    expected = ["zookeeper-client: selector matches no rendered pods",
                "mesos-master: serviceName nowhere is not a rendered headless Service",
                "zookeeper: anti-affinity selector never matches its own pods",
                "image marathon:latest is not pinned",
                "marathon: targetPort web is not a container port",
                "mesos-master-pdb: selector matches no rendered pods"]
    for text in expected:
        assert any(text in p for p in problems), (text, problems)
    assert len(problems) == len(expected)


def test_every_scrape_job_finds_the_pods_it_is_meant_for():
    docs = manifests("prod")
    config = yaml.safe_load(checks.prometheus_files(docs)["prometheus.yml"])
    targets = checks.discovered_targets(config, docs)
    assert [t.split(":", 1)[0] for t in targets["zookeeper"]] == ["StatefulSet orchestrator/zookeeper"]
    assert targets["zookeeper"][0].endswith(":metrics")
    assert targets["mesos-master"] == ["Deployment orchestrator/exporters:mesos:mesos-metrics"]
    assert targets["marathon-exporter"] == ["Deployment orchestrator/exporters:marathon:marathon-metrics"]
    assert targets["marathon"] == ["Deployment orchestrator/marathon:marathon:http"]
    # A relabel rule that no longer matches the pods' labels is caught.
    broken = copy.deepcopy(config)
    broken["scrape_configs"][1]["relabel_configs"][0]["regex"] = "zk"
    assert checks.discovered_targets(broken, docs)["zookeeper"] == []


def test_kubernetes_sd_blocks_are_checked_field_by_field():
    config = yaml.safe_load(checks.prometheus_files(manifests("dev"))["prometheus.yml"])
    assert checks.kubernetes_sd_problems(config) == []
    job = config["scrape_configs"][1]
    job["kubernetes_sd_configs"][0]["role"] = "pods"
    job["kubernetes_sd_configs"][0]["namespace"] = ["x"]
    job["relabel_configs"][0]["source_labels"] = ["__meta_kubernetes_service_name"]
    problems = checks.kubernetes_sd_problems(config)
    assert len(problems) == 2 and any("'pods'" in p for p in problems) and any("namespace" in p for p in problems)
    job["kubernetes_sd_configs"][0] = {"role": "pod"}
    problems = checks.kubernetes_sd_problems(config)
    assert problems == ["job zookeeper: __meta_kubernetes_service_name is not a pod-role discovery label"]


def test_promtool_sees_the_rendered_config_with_only_sd_swapped(tmp_path):
    require_tool("promtool", hint="apt-get install prometheus")
    files = checks.prometheus_files(manifests("dev"))
    assert checks.promtool_problems(files, tmp_path) == []
    swapped = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    original = yaml.safe_load(files["prometheus.yml"])
    for before, after in zip(original["scrape_configs"], swapped["scrape_configs"], strict=True):
        assert before.get("relabel_configs") == after.get("relabel_configs")
        assert "kubernetes_sd_configs" not in after
    # promtool really judges the relabelling and the rules: break each and it says so.
    bad = dict(files)
    cfg = yaml.safe_load(bad["prometheus.yml"])
    cfg["scrape_configs"][1]["relabel_configs"][0]["action"] = "keepx"
    bad["prometheus.yml"] = yaml.safe_dump(cfg)
    problems = checks.promtool_problems(bad, tmp_path)
    assert len(problems) == 1 and "check config" in problems[0] and "keepx" in problems[0]
    bad = dict(files)
    bad["alerts.yml"] = files["alerts.yml"].replace("vector(0)) < 1", "vector(0)) <<< 1")
    problems = checks.promtool_problems(bad, tmp_path)
    assert any("check rules" in p for p in problems), problems
