"""The CrossGuard policy pack, in process (constructing PolicyPack would start a server and block):
each rule on compliant, non-compliant and missing-property input, then every rule over the rendered
stacks with the engine's wire-form properties (camelCase, floats)."""
import copy

import pytest
from pulumi_policy import PolicyResource, PolicyResourceOptions, ResourceValidationArgs, StackValidationArgs

from policy.rules import POLICIES
from tests.support.harness import stack

BY_NAME = {p.name: p for p in POLICIES}
# The engine passes no custom timeouts for these resources; the SDK's annotation does not allow None.
OPTS = PolicyResourceOptions(False, [], None, [], None, [])  # type: ignore[arg-type]


def violations(policy_name, resource_type, props, config=None):
    found = []
    args = ResourceValidationArgs(resource_type, props, f"urn:x::{resource_type}::r", "r", OPTS, None,
                                  config=config or {})
    BY_NAME[policy_name].validate(args, lambda message, urn=None: found.append(message))
    return found


def stack_violations(policy_name, resources, config):
    found = []
    policy_resources = [PolicyResource(t, props, f"urn:x::{t}::{n}", n, OPTS, None, None, [], {})
                        for t, n, props in resources]
    BY_NAME[policy_name].validate(StackValidationArgs(policy_resources, config=config),
                                  lambda message, urn=None: found.append(message))
    return found


LABELS = {k: "x" for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                           "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by")}
GOOD_CONTAINER = {
    "name": "app", "image": "example/app:1.2.3",
    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
    "livenessProbe": {"httpGet": {"path": "/", "port": 80.0}}, "readinessProbe": {"httpGet": {"path": "/", "port": 80.0}},
    "securityContext": {"allowPrivilegeEscalation": False},
    "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
}
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def deployment(container=None, namespace="app", **pod):
    return {"metadata": {"name": "d", "namespace": namespace, "labels": LABELS},
            "spec": {"replicas": 3.0, "template": {"metadata": {"labels": LABELS},
                                                   "spec": {"containers": [container or GOOD_CONTAINER], **pod}}}}


def with_container(**changes):
    c = copy.deepcopy(GOOD_CONTAINER)
    for key, value in changes.items():
        if value is None:
            c.pop(key, None)
        else:
            c[key] = value
    return deployment(c)


def test_a_compliant_workload_passes_every_resource_rule():
    for policy in POLICIES:
        if hasattr(policy, "validate") and policy.name != "ha-replicas-and-budgets":
            assert violations(policy.name, DEPLOYMENT, deployment()) == [], policy.name


@pytest.mark.parametrize("rule,props,words", [
    ("pinned-images", with_container(image="example/app"), "not pinned"),
    ("pinned-images", with_container(image="example/app:latest"), "not pinned"),
    ("pinned-images", with_container(image="registry:5000/app"), "not pinned"),  # a port is not a tag
    ("resources-set", with_container(resources=None), "requests.cpu, requests.memory, limits.memory"),
    ("resources-set", with_container(resources={"requests": {"cpu": "1"}}), "requests.memory, limits.memory"),
    ("probes-set", with_container(readinessProbe=None), "no readinessProbe"),
    ("probes-set", with_container(livenessProbe=None, readinessProbe=None), "no livenessProbe and no readinessProbe"),
    ("no-secret-in-plain-env", with_container(env=[{"name": "DB_PASSWORD", "value": "hunter2"}]), "DB_PASSWORD"),
    ("no-secret-in-plain-env", with_container(env=[{"name": "ZK", "value": "zk://u:p@zk:2181/x"}]), "ZK"),
    ("no-secret-in-plain-env", with_container(args=["--zk=zk://mesos:pw@zk:2181/mesos"]), "command-line"),
    ("privileged-only-in-agent-namespaces", with_container(securityContext={"privileged": True}), "privileged"),
    ("privileged-only-in-agent-namespaces", deployment(hostNetwork=True), "hostNetwork"),
    ("privileged-only-in-agent-namespaces", with_container(securityContext=None), "privilege escalation"),
])
def test_non_compliant_workloads_are_reported(rule, props, words):
    found = violations(rule, DEPLOYMENT, props)
    assert len(found) == 1 and words in found[0], found


def test_missing_properties_are_violations_not_crashes():
    bare = {"metadata": {"name": "d"}, "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}}}
    assert violations("pinned-images", DEPLOYMENT, bare)
    assert violations("resources-set", DEPLOYMENT, bare)
    assert violations("probes-set", DEPLOYMENT, bare)
    assert len(violations("recommended-labels", DEPLOYMENT, bare)) == 2  # object and pod template
    assert violations("no-secret-in-plain-env", DEPLOYMENT, bare) == []
    assert violations("pinned-images", DEPLOYMENT, {}) == []  # no pod template at all: nothing to judge


def test_privileges_are_allowed_in_the_agent_namespace_only():
    privileged = deployment(hostNetwork=True, namespace="orchestrator-agents")
    assert violations("privileged-only-in-agent-namespaces", "kubernetes:apps/v1:DaemonSet", privileged) == []
    assert violations("privileged-only-in-agent-namespaces", "kubernetes:apps/v1:DaemonSet", privileged,
                      {"agent_namespace_suffix": "-mesos"})


def test_load_balancers_need_an_explicit_allowance():
    svc = {"metadata": {"name": "s", "labels": LABELS}, "spec": {"type": "LoadBalancer"}}
    assert violations("no-load-balancer", "kubernetes:core/v1:Service", svc)
    assert violations("no-load-balancer", "kubernetes:core/v1:Service", svc, {"allow": True}) == []
    assert violations("no-load-balancer", "kubernetes:core/v1:Service", {"spec": {"type": "ClusterIP"}}) == []
    assert violations("no-load-balancer", "kubernetes:core/v1:Service", {}) == []


def test_production_needs_replicas_and_budgets():
    sts = "kubernetes:apps/v1:StatefulSet"
    zk = {"metadata": {"namespace": "p", "labels": {"app.kubernetes.io/component": "zookeeper"}},
          "spec": {"replicas": 1.0, "template": {"metadata": {"labels": {"app": "zk"}}}}}
    pdb = ("kubernetes:policy/v1:PodDisruptionBudget", "pdb",
           {"metadata": {"namespace": "p"}, "spec": {"selector": {"matchLabels": {"app": "zk"}}}})
    found = stack_violations("ha-replicas-and-budgets", [(sts, "zk", zk)], {"production": True})
    assert len(found) == 2 and "1 replicas" in found[0] and "no PodDisruptionBudget" in found[1]
    zk["spec"]["replicas"] = 3.0
    assert stack_violations("ha-replicas-and-budgets", [(sts, "zk", zk), pdb], {"production": True}) == []
    zk["spec"]["replicas"] = 1.0
    assert stack_violations("ha-replicas-and-budgets", [(sts, "zk", zk)], {"production": False}) == []


def stack_resources(name):
    result = stack(name)
    return [(r.type, r.name, r.inputs) for r in result.registrations if r.custom and r.type.startswith("kubernetes:")]


@pytest.mark.parametrize("name,production", [("dev", False), ("prod", True)])
def test_rendered_stacks_pass_the_whole_pack(name, production):
    resources = stack_resources(name)
    assert len(resources) >= 40
    checked = 0
    for policy in POLICIES:
        if policy.name == "ha-replicas-and-budgets":
            assert stack_violations(policy.name, resources, {"production": production}) == []
            checked += 1
            continue
        for resource_type, _, props in resources:
            assert violations(policy.name, resource_type, props) == [], (policy.name, resource_type, props["metadata"])
            checked += 1
    assert checked > 300


def test_the_pack_catches_a_regression_in_a_rendered_stack():
    resources = copy.deepcopy(stack_resources("prod"))
    sts = next(p for t, n, p in resources if t == "kubernetes:apps/v1:StatefulSet" and n == "zookeeper")
    sts["spec"]["replicas"] = 1.0
    sts["spec"]["template"]["spec"]["containers"][0]["image"] = "zookeeper"
    assert violations("pinned-images", "kubernetes:apps/v1:StatefulSet", sts)
    assert stack_violations("ha-replicas-and-budgets", resources, {"production": True})


@pytest.mark.parametrize("name,production", [("dev", False), ("prod", True)])
def test_stack_policy_config_files_match_the_stacks(name, production):
    import json
    from pathlib import Path
    config = json.loads((Path(__file__).resolve().parents[1] / "policy" / f"{name}.json").read_text())
    assert set(config) <= set(BY_NAME)
    assert config["ha-replicas-and-budgets"]["production"] is production
