"""The whole program per stack, exactly as `orchestrator render` runs it (`__main__.py` under mocks)."""
import importlib
import inspect
import re

import pulumi
import pytest

from components.platform import OUTPUTS_CONTRACT_VERSION
from orchestrator.contracts import tiers
from orchestrator.toolchain.render import REDACTED, plain
from tests.support.harness import objects, one, stack, stack_settings

STACKS = ["dev", "prod"]

# The stack-outputs contract other teams consume (README "Stack outputs"). Changing a key or its
# meaning is a breaking change: bump OUTPUTS_CONTRACT_VERSION and update the README with it.
CONTRACT_V2 = {
    "contract_version", "namespace", "agents_namespace", "zookeeper_connect", "zookeeper_client_service",
    "mesos_zk_url", "mesos_master_url", "marathon_url", "marathon_zk_url", "prometheus_url",
    # added with GitOps delivery and the canary (backward-compatible additions)
    "delivery", "service_url", "service_canary_url", "service_rollout",
    # version 2: the orchestrator service is the API (docs/api.md)
    "api_url", "api_probe_url", "ui_url",
}


@pytest.mark.parametrize("name", STACKS)
def test_every_resource_is_parented_and_unique(name):
    result = stack(name)
    by_urn = {r.urn: r for r in result.registrations}
    roots = [r for r in result.registrations if r.parent not in by_urn]
    assert [r.type for r in roots] == ["orchestrator:platform:Platform"]
    custom = [r for r in result.registrations if r.custom]
    assert len(custom) == len(result.manifests) >= 20
    pairs = [(r.type, r.name) for r in result.registrations]
    assert len(pairs) == len(set(pairs))
    for r in custom:
        assert not by_urn[r.parent].custom, f"{r.name} is parented to a custom resource"


@pytest.mark.parametrize("name", STACKS)
def test_every_component_registers_outputs_and_has_a_module_token(name):
    result = stack(name)
    components = [r for r in result.registrations if not r.custom]
    # The Platform and one component per tier of the registry enabled for the stack (the render declares
    # the whole tree): prod adds the credentials' Secrets (authentication on).
    enabled = tiers.enabled_tiers(stack_settings(name))
    assert len(components) == 1 + len(enabled)
    assert {c.name for c in components} == {"orchestrator"} | {t.id for t in enabled}
    for comp in components:
        assert comp.urn in result.outputs_registered, f"{comp.type} never called register_outputs"
        _, module, type_name = comp.type.split(":")
        cls = getattr(importlib.import_module(f"components.{module}"), type_name)
        assert issubclass(cls, pulumi.ComponentResource)
        assert "register_outputs" in inspect.getsource(cls.__init__)


@pytest.mark.parametrize("name", STACKS)
def test_outputs_contract(name):
    outputs = stack(name).stack_outputs
    assert set(outputs) == CONTRACT_V2
    assert outputs["contract_version"] == OUTPUTS_CONTRACT_VERSION == "2"
    ns = outputs["namespace"]
    assert re.fullmatch(rf"(zookeeper-\d\.zookeeper-headless\.{ns}\.svc\.cluster\.local:2181,?)+",
                        outputs["zookeeper_connect"])
    assert outputs["mesos_zk_url"] == f"zk://{outputs['zookeeper_connect']}/mesos"
    assert outputs["marathon_zk_url"] == f"zk://{outputs['zookeeper_connect']}/marathon"
    assert outputs["mesos_master_url"] == f"http://mesos-master.{ns}.svc.cluster.local:5050"
    assert outputs["marathon_url"] == f"http://marathon.{ns}.svc.cluster.local:8080"
    assert outputs["prometheus_url"] == f"http://prometheus.{ns}.svc.cluster.local:9090"
    assert outputs["service_url"] == f"http://orchestrator-service.{ns}.svc.cluster.local:8080"
    assert outputs["service_canary_url"] == f"http://orchestrator-service-canary.{ns}.svc.cluster.local:8080"
    assert outputs["service_rollout"] == "orchestrator-service"
    assert outputs["api_url"] == f"http://orchestrator-service.{ns}.svc.cluster.local:8080/api/v1"
    assert outputs["api_probe_url"] == f"http://orchestrator-service-headless.{ns}.svc.cluster.local:8080"
    assert outputs["ui_url"] == f"http://orchestrator-service.{ns}.svc.cluster.local:8080/"
    assert outputs["delivery"] == {"dev": "direct", "prod": "gitops"}[name]


@pytest.mark.parametrize("name", STACKS)
def test_tiers_are_wired_through_outputs(name):
    result = stack(name)
    zk = stack(name).stack_outputs["zookeeper_connect"]
    masters = one(result, "StatefulSet", "mesos-master")["spec"]["template"]["spec"]["containers"][0]
    agents = one(result, "DaemonSet", "mesos-agent")["spec"]["template"]["spec"]["containers"][0]
    marathon = one(result, "Deployment", "marathon")["spec"]["template"]["spec"]["containers"][0]
    if name == "prod":  # authentication on: the URL with credentials comes from the auth Secret
        assert "--zk=file:///etc/mesos/auth/zk" in masters["args"]
        secret_zk = plain(next(r for r in result.registrations if r.name == "mesos-master-auth").inputs,
                          redact=False)["stringData"]["zk"]
        assert secret_zk == f"zk://mesos:{REDACTED}@{zk}/mesos"
    else:
        assert f"--zk=zk://{zk}/mesos" in masters["args"]
    assert f"--master=zk://{zk}/mesos" in agents["args"]
    if name == "dev":
        assert marathon["args"][marathon["args"].index("--zk") + 1] == f"zk://{zk}/marathon"
    assert zk.count(",") + 1 == one(result, "StatefulSet", "zookeeper")["spec"]["replicas"]


def test_prod_is_fully_ha_and_dev_is_small():
    prod, dev = stack("prod"), stack("dev")
    for tier, kind in (("zookeeper", "StatefulSet"), ("mesos-master", "StatefulSet"), ("marathon", "Deployment")):
        p = one(prod, kind, tier)
        assert p["spec"]["replicas"] == 3
        aff = p["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert "requiredDuringSchedulingIgnoredDuringExecution" in aff
        assert any(b["metadata"]["name"] == f"{tier}-pdb" for b in objects(prod, "PodDisruptionBudget"))
        d = one(dev, kind, tier)
        assert d["spec"]["replicas"] == 1
        assert "preferredDuringSchedulingIgnoredDuringExecution" in d["spec"]["template"]["spec"]["affinity"][
            "podAntiAffinity"]


@pytest.mark.parametrize("name", STACKS)
def test_namespaces_pod_security(name):
    result = stack(name)
    levels = {n["metadata"]["name"]: n["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
              for n in objects(result, "Namespace")}
    outputs = result.stack_outputs
    assert levels == {outputs["namespace"]: "restricted", outputs["agents_namespace"]: "privileged"}
    privileged = [m["metadata"]["name"] for m in result.manifests if m["kind"] in ("DaemonSet", "StatefulSet", "Deployment")
                  for c in m["spec"]["template"]["spec"]["containers"]
                  if c.get("securityContext", {}).get("privileged")]
    assert privileged == ["mesos-agent"]
    assert one(result, "DaemonSet")["metadata"]["namespace"] == outputs["agents_namespace"]
