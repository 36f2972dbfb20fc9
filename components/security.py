"""Security tier: credentials from Pulumi secret config, and default-deny networking with exactly the
flows the platform needs, derived from the tiers' endpoints (their selectors and named ports).

NetworkPolicies do not apply to host-network pods (the Mesos agents) and traffic from them arrives
from node addresses: flows from/to agents are expressed with `security.node_cidrs` ipBlocks.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import k8s as kx
from components.settings import CONFIG_NAMESPACE, SECRET_KEYS, PlatformSettings

COMPONENT = "security"
# Principals and users the platform's components authenticate as.
ZK_MESOS_USER, ZK_MARATHON_USER = "mesos", "marathon"
MARATHON_PRINCIPAL, AGENT_PRINCIPAL, HTTP_ADMIN = "marathon", "agent", "admin"
KUBE_DNS = {"namespace": "kube-system", "selector": {"k8s-app": "kube-dns"}, "port": 53}


@dataclass(frozen=True)
class Credentials:
    """Secret Outputs read from the stack's secret config; never plain strings in the program."""

    zookeeper_mesos_password: pulumi.Output[str]
    zookeeper_marathon_password: pulumi.Output[str]
    mesos_marathon_secret: pulumi.Output[str]
    mesos_agent_secret: pulumi.Output[str]
    mesos_http_password: pulumi.Output[str]
    marathon_http_password: pulumi.Output[str]


def read_credentials(settings: PlatformSettings) -> Credentials | None:
    """The credentials when authentication is on (settings validation guarantees they are set)."""
    if not settings.auth_enabled:
        return None
    config = pulumi.Config(CONFIG_NAMESPACE)
    return Credentials(**{key: config.require_secret(key) for key in SECRET_KEYS})


def secret(resource_name: str, name: str, namespace: str, labels: dict[str, str],
           data: dict[str, pulumi.Input[str]], opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret:
    """A Kubernetes Secret whose values stay Pulumi secrets (redacted in previews, state and render)."""
    return k8s.core.v1.Secret(
        resource_name, metadata=kx.metadata(name, namespace, labels), type="Opaque",
        string_data={k: pulumi.Output.secret(v) for k, v in data.items()}, opts=opts)


def secret_env(name: str, secret_name: pulumi.Input[str], key: str) -> dict[str, Any]:
    return {"name": name, "value_from": {"secret_key_ref": {"name": secret_name, "key": key}}}


# --- credentials as Kubernetes Secrets ------------------------------------------------------------
def secret_files(s: PlatformSettings, zk_connect: pulumi.Input[str], creds: Credentials) -> dict[str, dict[str, Any]]:
    """Per Secret, its files in the formats the components read. ZooKeeper URLs gain digest
    credentials (`zk://user:password@...`): Mesos and Marathon then create their znodes readable by
    all and writable only by themselves."""
    def zk_url(user: str, password: pulumi.Output[str], path: str) -> pulumi.Output[str]:
        return pulumi.Output.all(zk_connect, password).apply(lambda v: f"zk://{user}:{v[1]}@{v[0]}{path}")

    def principals(**secrets: pulumi.Output[str]) -> pulumi.Output[str]:
        return pulumi.Output.all(**secrets).apply(lambda v: json.dumps(
            {"credentials": [{"principal": p, "secret": v[p]} for p in sorted(v)]}))

    return {
        "mesos-master-auth": {
            "namespace": s.namespace,
            "zk": zk_url(ZK_MESOS_USER, creds.zookeeper_mesos_password, s.mesos_master.zk_path),
            "credentials": principals(**{MARATHON_PRINCIPAL: creds.mesos_marathon_secret,
                                         AGENT_PRINCIPAL: creds.mesos_agent_secret}),
            "http-credentials": principals(**{HTTP_ADMIN: creds.mesos_http_password}),
            "http-password": creds.mesos_http_password,
        },
        "mesos-agent-auth": {
            "namespace": s.agents_namespace,
            "credential": creds.mesos_agent_secret.apply(
                lambda pw: json.dumps({"principal": AGENT_PRINCIPAL, "secret": pw})),
        },
        "marathon-auth": {
            "namespace": s.namespace,
            "zk": zk_url(ZK_MARATHON_USER, creds.zookeeper_marathon_password, s.marathon.zk_path),
            "http-credentials": creds.marathon_http_password.apply(lambda pw: f"{HTTP_ADMIN}:{pw}"),
            "mesos-secret": creds.mesos_marathon_secret,
        },
        "prometheus-scrape-auth": {
            "namespace": s.namespace,
            "marathon-password": creds.marathon_http_password,
        },
        # The sync engine acts as both digest users so it can write the znodes their ACLs protect.
        "zk-sync-auth": {
            "namespace": s.namespace,
            "auth": pulumi.Output.all(creds.zookeeper_mesos_password, creds.zookeeper_marathon_password).apply(
                lambda v: f"digest:{ZK_MESOS_USER}:{v[0]}\ndigest:{ZK_MARATHON_USER}:{v[1]}"),
        },
    }


@dataclass(frozen=True)
class PlatformSecretsArgs:
    settings: PlatformSettings
    credentials: Credentials
    zk_connect: pulumi.Input[str]


class PlatformSecrets(pulumi.ComponentResource):
    """The Kubernetes Secrets of the authenticated components, one per consumer, in its namespace.
    `names[<secret>]` is the Output the workloads reference (so they depend on it)."""

    names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: PlatformSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:security:PlatformSecrets", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = kx.labels(name, COMPONENT, name)
        self.names = {}
        for secret_name, files in secret_files(args.settings, args.zk_connect, args.credentials).items():
            data = {k: v for k, v in files.items() if k != "namespace"}
            self.names[secret_name] = secret(secret_name, secret_name, files["namespace"], labels, data,
                                             child).metadata["name"]
        self.register_outputs({"names": self.names})


# --- network flows ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Peer:
    """A tier's pods as the network sees them: where they are, how to select them, what they serve."""

    tier: str
    namespace: str
    selector: dict[str, str]
    ports: dict[str, int]
    host_network: bool = False


@dataclass(frozen=True)
class External:
    """Addresses outside the cluster's pods (e.g. an old ZooKeeper ensemble being migrated from)."""

    name: str
    cidrs: tuple[str, ...]
    ports: dict[str, int]


@dataclass(frozen=True)
class Flow:
    # a Peer; "clients" (pods of security.client_namespaces); "namespace:<name>" (any pod there); "anywhere"
    source: Peer | str
    dest: Peer | External | str  # a Peer, an External, or "kube-apiserver"
    port: str           # a named port of dest (for "kube-apiserver": "https")
    why: str


API_SERVER_PORTS = (443, 6443)


def platform_flows(zookeeper: Peer, masters: Peer, agents: Peer, marathon: Peer, prometheus: Peer,
                   service: Peer, rollouts_namespace: str) -> list[Flow]:
    """Every flow the platform needs, from the tiers' wiring (who gets whose address)."""
    flows = [
        Flow(zookeeper, zookeeper, "peer", "ZooKeeper followers sync with the leader"),
        Flow(zookeeper, zookeeper, "election", "ZooKeeper leader election"),
    ]
    # Everyone handed the ZooKeeper connect string talks to the client port.
    flows += [Flow(p, zookeeper, "client", f"{p.tier} uses ZooKeeper") for p in (masters, agents, marathon)]
    flows += [
        Flow(masters, masters, "http", "masters replicate the registry log and elect through each other"),
        Flow(agents, masters, "http", "agents register with the leading master"),
        Flow(masters, agents, "http", "the master launches tasks and pings agents"),
        Flow(marathon, masters, "http", "Marathon's scheduler driver talks to the leading master"),
        Flow(masters, marathon, "libprocess", "the master sends offers and status updates to Marathon"),
        Flow(marathon, marathon, "http", "standby Marathon instances proxy API calls to the leader"),
        Flow(prometheus, zookeeper, "metrics", "scrape ZooKeeper"),
        Flow(prometheus, masters, "metrics", "scrape the Mesos exporter"),
        Flow(prometheus, marathon, "http", "scrape Marathon's /metrics/prometheus"),
        Flow(prometheus, "kube-apiserver", "https", "Kubernetes service discovery"),
        Flow("clients", marathon, "http", "users and automation call Marathon's API"),
        Flow("clients", masters, "http", "users and automation call the Mesos API and UI"),
        Flow("clients", prometheus, "http", "dashboards and users query Prometheus"),
        Flow(f"namespace:{rollouts_namespace}", prometheus, "http", "Argo Rollouts runs the canary analysis"),
        Flow("anywhere", service, "http", "the orchestrator service is the platform's public API"),
        Flow(prometheus, service, "http", "scrape the orchestrator service"),
    ]
    return flows


def zk_sync_flows(sync: Peer, zookeeper: Peer, prometheus: Peer, source: External) -> list[Flow]:
    return [Flow(sync, zookeeper, "client", "the sync engine writes into this platform's ensemble"),
            Flow(sync, source, "client", "the sync engine reads the old ensemble"),
            Flow(prometheus, sync, "metrics", "scrape the sync engine (lag alert)")]


def _port_rule(port: int) -> dict[str, Any]:
    return {"port": port, "protocol": "TCP"}


def _peer_term(peer: Peer, policy_ns: str, s: PlatformSettings) -> list[dict[str, Any]]:
    if peer.host_network:
        return [{"ip_block": {"cidr": cidr}} for cidr in s.security.node_cidrs]
    term: dict[str, Any] = {"pod_selector": {"match_labels": dict(peer.selector)}}
    if peer.namespace != policy_ns:
        term["namespace_selector"] = {"match_labels": {"kubernetes.io/metadata.name": peer.namespace}}
    return [term]


def _clients_terms(s: PlatformSettings) -> list[dict[str, Any]]:
    return [{"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": ns}}}
            for ns in s.security.client_namespaces]


def policy_specs(flows: list[Flow], peers: list[Peer], s: PlatformSettings) -> list[dict[str, Any]]:
    """NetworkPolicy objects (name, namespace, spec) for a default-deny platform plus `flows`."""
    policies: list[dict[str, Any]] = []
    for ns in sorted({p.namespace for p in peers}):
        policies.append({"name": "default-deny", "namespace": ns,
                         "spec": {"pod_selector": {}, "policy_types": ["Ingress", "Egress"]}})
        policies.append({"name": "allow-dns", "namespace": ns, "spec": {
            "pod_selector": {}, "policy_types": ["Egress"],
            "egress": [{"to": [{"namespace_selector": {"match_labels": {
                "kubernetes.io/metadata.name": KUBE_DNS["namespace"]}},
                "pod_selector": {"match_labels": KUBE_DNS["selector"]}}],
                "ports": [{"port": KUBE_DNS["port"], "protocol": "UDP"},
                          {"port": KUBE_DNS["port"], "protocol": "TCP"}]}]}})
    for peer in peers:
        if peer.host_network:
            continue  # NetworkPolicies do not select host-network pods
        ingress = []
        for flow in flows:
            if flow.dest is not peer:
                continue
            if flow.source == "anywhere":  # e.g. the ingress controller in front of a public service
                ingress.append({"ports": [_port_rule(peer.ports[flow.port])]})
                continue
            if flow.source == "clients":
                sources = _clients_terms(s)
            elif isinstance(flow.source, str) and flow.source.startswith("namespace:"):
                sources = [{"namespace_selector": {"match_labels": {
                    "kubernetes.io/metadata.name": flow.source.split(":", 1)[1]}}}]
            else:
                sources = _peer_term(flow.source, peer.namespace, s)  # type: ignore[arg-type]
            if sources:
                ingress.append({"from": sources, "ports": [_port_rule(peer.ports[flow.port])]})
        egress = []
        for flow in flows:
            if flow.source is not peer:
                continue
            if flow.dest == "kube-apiserver":
                egress.append({"to": [{"ip_block": {"cidr": c}} for c in s.security.api_server_cidrs],
                               "ports": [_port_rule(p) for p in API_SERVER_PORTS]})
            elif isinstance(flow.dest, External):
                egress.append({"to": [{"ip_block": {"cidr": c}} for c in flow.dest.cidrs],
                               "ports": [_port_rule(flow.dest.ports[flow.port])]})
            else:
                dest: Peer = flow.dest  # type: ignore[assignment]
                egress.append({"to": _peer_term(dest, peer.namespace, s),
                               "ports": [_port_rule(dest.ports[flow.port])]})
        for direction, rules in (("ingress", ingress), ("egress", egress)):
            if rules:
                policies.append({"name": f"{peer.tier}-{direction}", "namespace": peer.namespace, "spec": {
                    "pod_selector": {"match_labels": dict(peer.selector)},
                    "policy_types": [direction.capitalize()], direction: rules}})
    return policies


@dataclass(frozen=True)
class NetworkSecurityArgs:
    settings: PlatformSettings
    peers: list[Peer]
    flows: list[Flow]


class NetworkSecurity(pulumi.ComponentResource):
    """Default-deny NetworkPolicies in every platform namespace, then one allow policy per direction
    per tier, generated from the flows."""

    policy_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkSecurityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:security:NetworkSecurity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = kx.labels(name, COMPONENT, name)
        created = []
        for spec in policy_specs(args.flows, args.peers, args.settings):
            created.append(k8s.networking.v1.NetworkPolicy(
                f"{spec['namespace']}-{spec['name']}",
                metadata=kx.metadata(spec["name"], spec["namespace"], labels), spec=spec["spec"], opts=child))
        self.policy_names = pulumi.Output.all(*[p.metadata["name"] for p in created])
        self.register_outputs({"policy_names": self.policy_names})
