"""What rendered NetworkPolicies allow, by the Kubernetes semantics (networking.k8s.io/v1).

No offline tool evaluates NetworkPolicies, so this answers "may pod A open a TCP connection to port P
of pod B?" over the rendered objects: a connection needs both A's egress and B's ingress to allow it.
Policies select pods; a pod no policy selects (for a direction) is unrestricted in that direction;
host-network pods are never selected and show up as their node's address.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    namespace: str
    labels: dict[str, str]
    ip: str
    ports: dict[str, int] = field(default_factory=dict)  # named container ports (for named policy ports)
    host_network: bool = False
    name: str = ""


def _matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector; an empty selector matches everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        value, op, values = labels.get(expr["key"]), expr["operator"], expr.get("values", [])
        if (op == "In" and value not in values) or (op == "NotIn" and value in values) or \
                (op == "Exists" and value is None) or (op == "DoesNotExist" and value is not None):
            return False
    return True


def _peer_matches(peer: dict[str, Any], policy_ns: str, other: Endpoint,
                  ns_labels: dict[str, dict[str, str]]) -> bool:
    if "ipBlock" in peer:
        block = peer["ipBlock"]
        ip = ipaddress.ip_address(other.ip)
        return ip in ipaddress.ip_network(block["cidr"]) and \
            not any(ip in ipaddress.ip_network(e) for e in block.get("except", []))
    if other.host_network:
        return False  # node traffic is not a pod: only ipBlocks match it
    if "namespaceSelector" in peer:
        if not _matches(peer["namespaceSelector"], ns_labels.get(other.namespace, {})):
            return False
    elif other.namespace != policy_ns:
        return False
    return _matches(peer.get("podSelector"), other.labels)


def _port_matches(rule_ports: list[dict[str, Any]] | None, port: int, target: Endpoint) -> bool:
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != "TCP":
            continue
        wanted = p.get("port")
        if wanted is None or wanted == port or (isinstance(wanted, str) and target.ports.get(wanted) == port):
            return True
        if isinstance(wanted, int) and p.get("endPort") and wanted <= port <= p["endPort"]:
            return True
    return False


def _direction_allows(policies: list[dict[str, Any]], direction: str, subject: Endpoint, other: Endpoint,
                      port: int, target: Endpoint, ns_labels: dict[str, dict[str, str]]) -> bool:
    if subject.host_network:
        return True
    kind = direction.capitalize()
    selecting = [p for p in policies if p["metadata"].get("namespace") == subject.namespace
                 and kind in p["spec"].get("policyTypes", ["Ingress"])
                 and _matches(p["spec"].get("podSelector"), subject.labels)]
    if not selecting:
        return True
    key = "from" if direction == "ingress" else "to"
    for policy in selecting:
        for rule in policy["spec"].get(direction, []) or []:
            peers = rule.get(key)
            peer_ok = not peers or any(_peer_matches(pe, subject.namespace, other, ns_labels) for pe in peers)
            if peer_ok and _port_matches(rule.get("ports"), port, target):
                return True
    return False


def allowed(manifests: list[dict[str, Any]], source: Endpoint, dest: Endpoint, port: int) -> bool:
    policies = [m for m in manifests if m["kind"] == "NetworkPolicy"]
    ns_labels = {m["metadata"]["name"]: {**m["metadata"].get("labels", {}),
                                         "kubernetes.io/metadata.name": m["metadata"]["name"]}
                 for m in manifests if m["kind"] == "Namespace"}
    for ns in (source.namespace, dest.namespace):
        ns_labels.setdefault(ns, {"kubernetes.io/metadata.name": ns})
    return (_direction_allows(policies, "egress", source, dest, port, dest, ns_labels)
            and _direction_allows(policies, "ingress", dest, source, port, dest, ns_labels))


def workload_endpoints(manifests: list[dict[str, Any]], node_ip: str, pod_net: str) -> list[Endpoint]:
    """One endpoint per rendered workload, with an address: host-network pods get `node_ip`, the
    others consecutive addresses of `pod_net`."""
    pod_ips = ipaddress.ip_network(pod_net).hosts()
    endpoints = []
    for m in manifests:
        if m["kind"] not in ("Deployment", "StatefulSet", "DaemonSet", "Rollout", "CronJob"):
            continue
        template = m["spec"]["jobTemplate"]["spec"]["template"] if m["kind"] == "CronJob" else m["spec"]["template"]
        spec = template["spec"]
        host = bool(spec.get("hostNetwork"))
        ports = {p["name"]: p["containerPort"] for c in spec["containers"] for p in c.get("ports", []) if "name" in p}
        endpoints.append(Endpoint(m["metadata"]["namespace"], dict(template["metadata"]["labels"]),
                                  node_ip if host else str(next(pod_ips)), ports, host, m["metadata"]["name"]))
    return endpoints
