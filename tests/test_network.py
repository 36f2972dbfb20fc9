"""NetworkPolicies as rendered: every flow the platform needs is allowed, every other one is denied.

The expected flows are written out here from the platform's needs (the issue's list), independently of
the code that derives the policies; `tests.support.netpol` evaluates the rendered objects."""
import copy
import itertools

import pytest

from tests.support.harness import objects, stack
from tests.support.netpol import Endpoint, allowed, workload_endpoints

NODE_IP = "10.1.2.3"          # inside the default security.node_cidrs
POD_NET = "100.64.0.0/24"     # outside them: pods are not nodes
CORE = {"zookeeper", "mesos-master", "mesos-agent", "marathon", "prometheus", "orchestrator-service", "exporters"}
# Open to any source: nothing. The API is reached by port-forward (not filtered by NetworkPolicies), from
# security.client_namespaces, or through the ingress controller when service.api.ingress is set.
PUBLIC: set[tuple[str, int]] = set()

# (source, destination, port) the platform needs.
NEEDED = {
    ("zookeeper", "zookeeper", 2888), ("zookeeper", "zookeeper", 3888),
    ("mesos-master", "zookeeper", 2181), ("mesos-agent", "zookeeper", 2181), ("marathon", "zookeeper", 2181),
    ("mesos-master", "mesos-master", 5050),
    ("mesos-agent", "mesos-master", 5050), ("mesos-master", "mesos-agent", 5051),
    ("marathon", "mesos-master", 5050), ("mesos-master", "marathon", 9000),
    ("marathon", "marathon", 8080),
    ("prometheus", "zookeeper", 7000), ("prometheus", "marathon", 8080),
    # Our exporters read the masters, agents and Marathon; Prometheus scrapes the exporters.
    ("exporters", "mesos-master", 5050), ("exporters", "mesos-agent", 5051), ("exporters", "marathon", 8080),
    ("prometheus", "exporters", 9105), ("prometheus", "exporters", 9111),
    ("prometheus", "orchestrator-service", 8080),
    # The API reads ZooKeeper (srvr, mntr), the Mesos masters and Prometheus, and operates Marathon.
    ("orchestrator-service", "zookeeper", 2181), ("orchestrator-service", "mesos-master", 5050),
    ("orchestrator-service", "marathon", 8080), ("orchestrator-service", "prometheus", 9090),
}


def endpoints(name):
    docs = stack(name).manifests
    eps = {e.name: e for e in workload_endpoints(docs, NODE_IP, POD_NET) if e.name in CORE}
    assert set(eps) == CORE
    return docs, eps


def all_ports(eps):
    return sorted({p for e in eps.values() for p in e.ports.values()} | {53, 443})


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_every_needed_flow_is_allowed(name):
    docs, eps = endpoints(name)
    for src, dst, port in sorted(NEEDED):
        assert allowed(docs, eps[src], eps[dst], port), f"{src} -> {dst}:{port} is blocked"


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_every_other_flow_between_tiers_is_denied(name):
    docs, eps = endpoints(name)
    checked = 0
    for (src, a), (dst, b) in itertools.product(eps.items(), eps.items()):
        for port in all_ports(eps):
            if (src, dst, port) in NEEDED or (dst, port) in PUBLIC:
                continue
            if src == "prometheus" and port in (443, 6443) and b.host_network:
                continue  # the API server may run on a node: security.api_server_cidrs defaults to any
            # Nothing selects host-network pods: connections to an agent are limited by the
            # sources' egress policies only, which this still checks (unless both are nodes).
            if b.host_network and a.host_network:
                continue
            assert not allowed(docs, a, b, port), f"{src} -> {dst}:{port} should be denied"
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("name", ["dev", "prod"])
def test_outsiders_cannot_reach_the_platform_and_dns_works(name):
    docs, eps = endpoints(name)
    outsider = Endpoint("default", {"app": "curious"}, "100.64.9.9")
    dns = Endpoint("kube-system", {"k8s-app": "kube-dns"}, "100.64.9.53")
    for target in eps.values():
        if target.host_network:
            continue
        for port in target.ports.values():
            assert allowed(docs, outsider, target, port) is ((target.name, port) in PUBLIC), (target.name, port)
    for source in eps.values():
        assert allowed(docs, source, dns, 53), f"{source.name} cannot resolve names"
        # Host-network pods (the agents) are outside NetworkPolicy: their egress is the node's.
        if not source.host_network:
            assert not allowed(docs, source, outsider, 8080), f"{source.name} may call arbitrary pods"
    assert allowed(docs, eps["prometheus"], Endpoint("", {}, "192.168.0.1"), 443)  # the API server
    rollouts = Endpoint("argo-rollouts", {"app.kubernetes.io/name": "argo-rollouts"}, "100.64.9.10")
    assert allowed(docs, rollouts, eps["prometheus"], 9090)  # canary analysis queries
    assert not allowed(docs, rollouts, eps["marathon"], 8080)


def test_client_namespaces_reach_the_apis_only_when_configured():
    from components.platform import Platform, PlatformArgs
    from tests.support.harness import run, settings
    s = settings(namespace="p", security={"client_namespaces": ["team-a"]})
    docs = run(lambda: Platform("orchestrator", PlatformArgs(s))).manifests
    eps = {e.name: e for e in workload_endpoints(docs, NODE_IP, POD_NET)}
    team_a = Endpoint("team-a", {"app": "ci"}, "100.64.7.7")
    team_b = Endpoint("team-b", {"app": "ci"}, "100.64.7.8")
    assert allowed(docs, team_a, eps["marathon"], 8080) and allowed(docs, team_a, eps["mesos-master"], 5050)
    assert not allowed(docs, team_b, eps["marathon"], 8080)
    assert not allowed(docs, team_a, eps["zookeeper"], 2181)


def test_a_missing_allow_rule_is_caught():
    docs, eps = endpoints("prod")
    broken = copy.deepcopy(docs)
    broken = [d for d in broken if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "zookeeper-ingress")]
    assert not allowed(broken, eps["mesos-master"], eps["zookeeper"], 2181)
    assert len(objects(stack("prod"), "NetworkPolicy")) >= 10
