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
    "securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True},
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
    # F6: root and hostPort in a restricted namespace (checkov skips no longer hide them).
    ("privileged-only-in-agent-namespaces",
     with_container(securityContext={"allowPrivilegeEscalation": False, "runAsUser": 0.0}), "runs as root"),
    ("privileged-only-in-agent-namespaces",
     with_container(securityContext={"allowPrivilegeEscalation": False}), "may run as root"),
    ("privileged-only-in-agent-namespaces", with_container(ports=[{"containerPort": 80.0, "hostPort": 80.0}]),
     "hostPort"),
    # F6: secrets in arguments and JAVA_OPTS-style options, not only in env names and URLs.
    ("no-secret-in-plain-env", with_container(args=["--zk_password=hunter2"]), "argument 1"),
    ("no-secret-in-plain-env", with_container(args=["--zk_password", "hunter2"]), "argument 1"),
    ("no-secret-in-plain-env", with_container(command=["java", "-Djavax.net.ssl.keyStorePassword=changeit"]),
     "argument 2"),
    ("no-secret-in-plain-env", with_container(env=[{"name": "JAVA_OPTS", "value": "-Xmx1g "
                                                    "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:x1"}]),
     "JAVA_OPTS"),
    ("no-secret-in-plain-env", with_container(env=[{"name": "ZK_DIGEST", "value": "super:abc"}]), "ZK_DIGEST"),
    ("no-secret-in-plain-env", with_container(env=[{"name": "REPO", "value": "https://ghp_x@github.com/o/r"}]),
     "REPO"),
    ("host-paths-in-allow-list", deployment(volumes=[{"name": "root", "hostPath": {"path": "/"}}]), "'/'"),
    ("host-paths-in-allow-list", deployment(volumes=[{"name": "etc", "hostPath": {"path": "/etc"}}]), "/etc"),
    ("host-paths-in-allow-list",
     deployment(volumes=[{"name": "up", "hostPath": {"path": "/var/lib/mesos/../../../etc"}}]), "allow-list"),
    ("host-paths-in-allow-list", deployment(volumes=[{"name": "m", "hostPath": {"path": "/var/lib/mesosx"}}]),
     "allow-list"),
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


AGENTS = {"namespaces": ["orchestrator-agents"]}


def test_privileges_are_allowed_in_the_registry_s_privileged_namespaces_only():
    privileged = deployment(hostNetwork=True, namespace="orchestrator-agents")
    assert violations("privileged-only-in-agent-namespaces", "kubernetes:apps/v1:DaemonSet", privileged, AGENTS) == []
    assert violations("privileged-only-in-agent-namespaces", "kubernetes:apps/v1:DaemonSet", privileged)
    # F6: a namespace whose name merely ends in -agents is not privileged: the names are compared exactly.
    for namespace in ("ops-agents", "orchestrator-agents-x", "x-orchestrator-agents", "kube-system"):
        found = violations("privileged-only-in-agent-namespaces", "kubernetes:apps/v1:DaemonSet",
                           deployment(hostNetwork=True, namespace=namespace), AGENTS)
        assert len(found) == 1 and f"namespace {namespace}" in found[0], (namespace, found)


@pytest.mark.parametrize("kind,path", [
    ("kubernetes:core/v1:Pod", ("spec",)),
    ("kubernetes:apps/v1:ReplicaSet", ("spec", "template", "spec")),
    ("kubernetes:core/v1:ReplicationController", ("spec", "template", "spec")),
    ("kubernetes:batch/v1:Job", ("spec", "template", "spec")),
    ("kubernetes:batch/v1:CronJob", ("spec", "jobTemplate", "spec", "template", "spec")),
    ("kubernetes:argoproj.io/v1alpha1:Rollout", ("spec", "template", "spec")),
    ("kubernetes:apps/v1:DaemonSet", ("spec", "template", "spec")),
    ("kubernetes:apps/v1:StatefulSet", ("spec", "template", "spec")),
    ("kubernetes:core/v1:PodTemplate", ("template", "spec")),
    ("kubernetes:apps/v1:DeploymentPatch", ("spec", "template", "spec")),  # any kind: found by shape
    ("kubernetes:example.com/v1:Runner", ("spec", "worker", "podSpec")),
])
def test_every_pod_bearing_kind_is_judged(kind, path):
    pod = {"hostPID": True, "containers": [dict(GOOD_CONTAINER, securityContext={"privileged": True},
                                                image="busybox")]}
    props: dict = {"metadata": {"name": "x", "namespace": "kube-system"}}
    node = props
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = pod
    assert violations("privileged-only-in-agent-namespaces", kind, props, AGENTS)
    assert violations("pinned-images", kind, props)


def test_namespace_pod_security_labels():
    def ns(name, level):
        return {"metadata": {"name": name, "labels": {f"pod-security.kubernetes.io/{m}": level
                                                      for m in ("enforce", "audit", "warn")}}}
    kind = "kubernetes:core/v1:Namespace"
    assert violations("privileged-only-in-agent-namespaces", kind, ns("orchestrator", "restricted"), AGENTS) == []
    assert violations("privileged-only-in-agent-namespaces", kind, ns("orchestrator-agents", "privileged"), AGENTS) == []
    # F6: the platform namespace lowered to privileged (or baseline, or unlabelled) is refused.
    for level in ("privileged", "baseline", None):
        found = violations("privileged-only-in-agent-namespaces", kind, ns("orchestrator", level), AGENTS)
        assert len(found) == 1 and "must enforce Pod Security 'restricted'" in found[0]
    assert violations("privileged-only-in-agent-namespaces", kind, {"metadata": {"name": "orchestrator-agents"}},
                      AGENTS)


def test_exposure_and_rbac_rules():
    svc = "kubernetes:core/v1:Service"
    assert violations("no-node-port", svc, {"spec": {"type": "NodePort"}})
    assert violations("no-node-port", svc, {"spec": {"ports": [{"port": 80.0, "nodePort": 30080.0}]}})
    assert violations("no-node-port", svc, {"spec": {"type": "ClusterIP"}}) == []
    assert violations("no-external-ips", svc, {"spec": {"externalIPs": ["203.0.113.10"]}})
    assert violations("no-external-ips", svc, {"spec": {}}) == []
    ing = "kubernetes:networking.k8s.io/v1:Ingress"
    tls = {"spec": {"tls": [{"hosts": ["ui.example.com"], "secretName": "t"}], "rules": [{"host": "ui.example.com"}]}}
    assert violations("ingress-only-with-tls", ing, tls)
    assert violations("ingress-only-with-tls", ing, tls, {"allow": True}) == []
    assert violations("ingress-only-with-tls", ing, {"spec": {"rules": [{"host": "ui.example.com"}]}}, {"allow": True})
    plain = {"spec": {"tls": [{"hosts": ["a.example.com"]}], "rules": [{"host": "b.example.com"}, {}]}}
    assert len(violations("ingress-only-with-tls", ing, plain, {"allow": True})) == 2
    crb = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
    admin = {"roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
             "subjects": [{"kind": "ServiceAccount", "name": "marathon", "namespace": "orchestrator"}]}
    assert violations("no-broad-rbac", crb, admin)
    everyone = {"roleRef": {"kind": "ClusterRole", "name": "view"}, "subjects": [{"kind": "Group",
                                                                                  "name": "system:authenticated"}]}
    assert violations("no-broad-rbac", "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", everyone)
    role = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
    assert violations("no-broad-rbac", role, {"rules": [{"apiGroups": [""], "resources": ["*"], "verbs": ["get"]}]})
    assert violations("no-broad-rbac", role, {"rules": [{"apiGroups": ["rbac.authorization.k8s.io"],
                                                         "resources": ["clusterroles"], "verbs": ["escalate"]}]})
    narrow = {"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]}
    assert violations("no-broad-rbac", role, narrow) == []


def test_credentials_in_urls_anywhere_in_an_object():
    app = {"metadata": {"name": "a"}, "spec": {"source": {"repoURL": "https://bot:ghp_x@github.com/o/r.git"}}}
    found = violations("no-credentials-in-urls", "kubernetes:argoproj.io/v1alpha1:Application", app)
    assert len(found) == 1 and found[0].startswith("spec.source.repoURL")
    cm = {"metadata": {"name": "c"}, "data": {"conf": "upstream: https://user:pw@example.com/x"}}
    assert violations("no-credentials-in-urls", "kubernetes:core/v1:ConfigMap", cm)
    fine = {"metadata": {"name": "c"}, "data": {"a": "ssh://git@github.com/o/r", "b": "zk://zk-0:2181,zk-1:2181/m"}}
    assert violations("no-credentials-in-urls", "kubernetes:core/v1:ConfigMap", fine) == []
    secret = {"metadata": {"name": "s"}, "stringData": {"url": "https://u:p@example.com"}}
    assert violations("no-credentials-in-urls", "kubernetes:core/v1:Secret", secret) == []


def test_a_checkov_skip_needs_its_entry_in_the_reviewed_list():
    def annotated(name, check):
        return {"metadata": {"name": name, "annotations": {"checkov.io/skip1": f"{check}=a reason long enough"}}}
    sts = "kubernetes:apps/v1:StatefulSet"
    assert violations("checkov-skips-reviewed", sts, annotated("zookeeper", "CKV_K8S_40")) == []
    # F6: the skip is not self-service: another check, or the same check on another object, is refused.
    assert violations("checkov-skips-reviewed", sts, annotated("zookeeper", "CKV_K8S_16"))
    assert violations("checkov-skips-reviewed", sts, annotated("marathon-extra", "CKV_K8S_40"))
    assert violations("checkov-skips-reviewed", "kubernetes:batch/v1:CronJob", annotated("zookeeper", "CKV_K8S_40"))


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
    import json
    from pathlib import Path
    config = json.loads((Path(__file__).resolve().parents[1] / "policy" / f"{name}.json").read_text())
    resources = stack_resources(name)
    assert len(resources) >= 40
    checked = 0
    for policy in POLICIES:
        if policy.name == "ha-replicas-and-budgets":
            assert stack_violations(policy.name, resources, {"production": production}) == []
            checked += 1
            continue
        for resource_type, _, props in resources:
            assert violations(policy.name, resource_type, props, config.get(policy.name)) == [], \
                (policy.name, resource_type, props["metadata"])
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


def all_tiers_resources():
    """The dev stack with every optional tier on (probe, zk-sync, authentication): their objects too."""
    import json

    from orchestrator.toolchain.render import PROJECT_DIR, SCOPE_CONFIG, build_manifests, load_stack_config, run_program

    config, secret_keys, _ = load_stack_config("dev")
    config[SCOPE_CONFIG] = "tree"
    config["orchestrator:security"] = json.dumps({"auth": True})
    config["orchestrator:probe"] = json.dumps({"enabled": True})
    config["orchestrator:zk_sync"] = json.dumps({"enabled": True, "source": "old-zk.example:2181"})
    config["orchestrator:zk_backup"] = json.dumps({"enabled": True, "s3": "s3://backups/zk"})
    from components.settings import OPTIONAL_SECRET_KEYS, SECRET_KEYS
    for key in list(SECRET_KEYS) + list(OPTIONAL_SECRET_KEYS):
        config[f"orchestrator:{key}"] = "[redacted-secret]"
        secret_keys.append(f"orchestrator:{key}")
    result = build_manifests(run_program("dev", config, secret_keys, PROJECT_DIR / "__main__.py"))
    return [(r.type, r.name, r.inputs) for r in result.registrations if r.custom and r.type.startswith("kubernetes:")]


def test_every_checkov_skip_of_every_tier_is_reviewed_and_every_entry_is_used():
    from policy.rules import CHECKOV_SKIPS
    resources = all_tiers_resources() + stack_resources("prod")
    kinds = {t for t, _, _ in resources}
    assert {"kubernetes:apps/v1:DaemonSet", "kubernetes:apps/v1:StatefulSet"} <= kinds
    used = set()
    for resource_type, _, props in resources:
        assert violations("checkov-skips-reviewed", resource_type, props) == [], props["metadata"]["name"]
        for key, value in (props["metadata"].get("annotations") or {}).items():
            if key.startswith("checkov.io/skip"):
                used.add((f"{resource_type.rsplit(':', 1)[-1]}/{props['metadata']['name']}", value.split("=", 1)[0]))
    listed = {(obj, check) for obj, checks in CHECKOV_SKIPS.items() for check in checks}
    assert listed - used == set(), "stale entries in policy/checkov-skips.json: remove them"
    assert all(len(reason) > 20 for checks in CHECKOV_SKIPS.values() for reason in checks.values())
