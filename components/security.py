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
from components.settings import (
    API_ZK_PASSWORD_KEY,
    BACKUP_S3_KEYS,
    CONFIG_NAMESPACE,
    PROBE_TOKEN_KEY,
    SCALER_ZK_PASSWORD_KEY,
    SECRET_KEYS,
    ZK_SUPERUSER_PASSWORD_KEY,
    PlatformSettings,
    SecuritySettings,
    monitoring_secret_keys,
)
from orchestrator.contracts import tiers
from orchestrator.contracts.tiers import TierSpec

# Principals and users the platform's components authenticate as.
ZK_MESOS_USER, ZK_MARATHON_USER = "mesos", "marathon"
ZK_SCALER_USER = "marathon-scaler"  # the Marathon scaler's own digest user: it owns its state znodes (ALL)
# The API's own digest user on the scaler's znodes: READ on `state` (the policies it shows), READ|WRITE on
# `overrides` (operators' bounds and pause), nothing else; the scaler grants it by its digest (a hash).
ZK_API_USER = "orchestrator-api"
MARATHON_PRINCIPAL, AGENT_PRINCIPAL, HTTP_ADMIN = "marathon", "agent", "admin"
# Where Mesos masters and agents read their credential files (mounted from their Secrets).
MESOS_AUTH_DIR = "/etc/mesos/auth"
# ZooKeeper's superuser (reconfig): the servers read the digest, the operator's tool the password.
ZK_SUPERUSER, ZK_SUPERUSER_SECRET = "super", "zookeeper-superuser"
# The API's Secret and its files (mounted by the orchestrator service at API_CONFIG_DIR).
API_SECRET = "orchestrator-api"
API_CONFIG_KEY, API_KEYS_KEY = "api.yaml", "signing-keys"
API_MESOS_KEY, API_MARATHON_KEY = "mesos-credentials", "marathon-credentials"
API_ZK_KEY = "zookeeper-credentials"  # the API's ZooKeeper identity (with marathon_scaler.enabled)
# In the scaler's Secret: the API's digest ACL id (`orchestrator-api:<base64 sha1>`), not its password.
SCALER_API_ACL_KEY = "api-acl-id"
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
    api_signing_key: pulumi.Output[str]
    api_admin_password_hash: pulumi.Output[str]
    probe_token: pulumi.Output[str] | None = None  # with probe.enabled
    zookeeper_scaler_password: pulumi.Output[str] | None = None  # with marathon_scaler.enabled
    zookeeper_api_password: pulumi.Output[str] | None = None  # with marathon_scaler.enabled
    zookeeper_superuser_password: pulumi.Output[str] | None = None  # when set: reconfig is possible
    backup_s3: tuple[pulumi.Output[str], pulumi.Output[str]] | None = None  # zk_backup's static S3 keys
    # The grafana and alertmanager tiers' (settings.monitoring_secret_keys: required when needed).
    grafana_admin_password: pulumi.Output[str] | None = None
    alertmanager_slack_api_url: pulumi.Output[str] | None = None
    alertmanager_smtp_password: pulumi.Output[str] | None = None


def read_credentials(settings: PlatformSettings) -> Credentials | None:
    """The credentials when authentication is on (settings validation guarantees they are set)."""
    if not settings.auth_enabled:
        return None
    config = pulumi.Config(CONFIG_NAMESPACE)
    probe_token = config.require_secret(PROBE_TOKEN_KEY) if settings.probe.enabled else None
    scaler = config.require_secret(SCALER_ZK_PASSWORD_KEY) if settings.marathon_scaler.enabled else None
    api_zk = config.require_secret(API_ZK_PASSWORD_KEY) if settings.marathon_scaler.enabled else None
    return Credentials(**{key: config.require_secret(key) for key in SECRET_KEYS}, probe_token=probe_token,
                       zookeeper_scaler_password=scaler, zookeeper_api_password=api_zk,
                       zookeeper_superuser_password=config.get_secret(ZK_SUPERUSER_PASSWORD_KEY),
                       backup_s3=_pair(config.get_secret(BACKUP_S3_KEYS[0]), config.get_secret(BACKUP_S3_KEYS[1])),
                       **{key: config.require_secret(key) for key in monitoring_secret_keys(settings)})


def _pair(a: pulumi.Output[str] | None, b: pulumi.Output[str] | None) -> tuple[pulumi.Output[str], pulumi.Output[str]] | None:
    return (a, b) if a is not None and b is not None else None


def zookeeper_digest(user: str, password: str) -> str:
    """ZooKeeper's digest form of a credential, `user:base64(sha1(user:password))`: what a server may hold."""
    import base64
    import hashlib

    return f"{user}:{base64.b64encode(hashlib.sha1(f'{user}:{password}'.encode()).digest()).decode()}"


def secret(resource_name: str, name: str, namespace: str, labels: dict[str, str],
           data: dict[str, pulumi.Input[str]], opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret:
    """A Kubernetes Secret whose values stay Pulumi secrets (redacted in previews, state and render)."""
    return k8s.core.v1.Secret(
        resource_name, metadata=kx.metadata(name, namespace, labels), type="Opaque",
        string_data={k: pulumi.Output.secret(v) for k, v in data.items()}, opts=opts)


# --- credentials as Kubernetes Secrets ------------------------------------------------------------
def api_signing_keys(value: str) -> str:
    """The API's key file from the secret `api_signing_key`: one key gets an id derived from it (not secret:
    8 hex digits of its SHA-256); a value of `<key-id> <secret>` lines is the file itself (a rotation: the
    new key first, the old one until its tokens expire; docs/api.md)."""
    import hashlib

    value = value.strip()
    if any(c.isspace() for c in value):
        return value + "\n"
    return f"k-{hashlib.sha256(value.encode()).hexdigest()[:8]} {value}\n"


def api_config_file(base: dict[str, Any], admin: str, admin_hash: str) -> str:
    """The API's config file (JSON, which YAML reads): the settings-derived `base` and the first admin."""
    return json.dumps({**base, "accounts": [{"name": admin, "role": "admin", "password_hash": admin_hash}]},
                      indent=2, sort_keys=True) + "\n"


def secret_files(platform: kx.PlatformContext, mesos_zk_path: str, marathon_zk_path: str,
                 zk_connect: pulumi.Input[str], creds: Credentials, api_config: dict[str, Any] | None = None,
                 api_admin: str = "admin") -> dict[str, dict[str, Any]]:
    """Per Secret, its files in the formats the components read. ZooKeeper URLs gain digest
    credentials (`zk://user:password@...`): Mesos and Marathon then create their znodes readable by
    all and writable only by themselves."""
    def zk_url(user: str, password: pulumi.Output[str], path: str) -> pulumi.Output[str]:
        return pulumi.Output.all(zk_connect, password).apply(lambda v: f"zk://{user}:{v[1]}@{v[0]}{path}")

    def principals(**secrets: pulumi.Output[str]) -> pulumi.Output[str]:
        return pulumi.Output.all(**secrets).apply(lambda v: json.dumps(
            {"credentials": [{"principal": p, "secret": v[p]} for p in sorted(v)]}))

    files: dict[str, dict[str, Any]] = {
        "mesos-master-auth": {
            "namespace": platform.namespace,
            "zk": zk_url(ZK_MESOS_USER, creds.zookeeper_mesos_password, mesos_zk_path),
            "credentials": principals(**{MARATHON_PRINCIPAL: creds.mesos_marathon_secret,
                                         AGENT_PRINCIPAL: creds.mesos_agent_secret}),
            "http-credentials": principals(**{HTTP_ADMIN: creds.mesos_http_password}),
            "http-password": creds.mesos_http_password,
        },
        "mesos-agent-auth": {
            "namespace": platform.agents_namespace,
            "credential": creds.mesos_agent_secret.apply(
                lambda pw: json.dumps({"principal": AGENT_PRINCIPAL, "secret": pw})),
        },
        "marathon-auth": {
            "namespace": platform.namespace,
            "zk": zk_url(ZK_MARATHON_USER, creds.zookeeper_marathon_password, marathon_zk_path),
            "http-credentials": creds.marathon_http_password.apply(lambda pw: f"{HTTP_ADMIN}:{pw}"),
            "mesos-secret": creds.mesos_marathon_secret,
        },
        "prometheus-scrape-auth": {
            "namespace": platform.namespace,
            "marathon-password": creds.marathon_http_password,
        },
        # The sync engine acts as both digest users so it can write the znodes their ACLs protect.
        "zk-sync-auth": {
            "namespace": platform.namespace,
            "auth": pulumi.Output.all(creds.zookeeper_mesos_password, creds.zookeeper_marathon_password).apply(
                lambda v: f"digest:{ZK_MESOS_USER}:{v[0]}\ndigest:{ZK_MARATHON_USER}:{v[1]}"),
        },
        **({ZK_SUPERUSER_SECRET: {
            "namespace": platform.namespace,
            # The servers' file holds only the digest; `password` is for the operator's reconfig tool
            # (read with kubectl by whoever may change the ensemble's membership).
            "super-digest": creds.zookeeper_superuser_password.apply(lambda pw: zookeeper_digest(ZK_SUPERUSER, pw)),
            "password": creds.zookeeper_superuser_password,
        }} if creds.zookeeper_superuser_password is not None else {}),
        # The backups' static S3 keys (when no workload identity is used), as the AWS SDK's shared credentials
        # file, which the pod mounts (never environment variables).
        **({"zk-backup-s3": {"namespace": platform.namespace, "credentials": pulumi.Output.all(*creds.backup_s3).apply(
            lambda v: f"[default]\naws_access_key_id = {v[0]}\naws_secret_access_key = {v[1]}\n")}}
           if creds.backup_s3 is not None else {}),
    }
    if creds.grafana_admin_password is not None:
        # Grafana reads it from a file (GF_SECURITY_ADMIN_PASSWORD__FILE) at its first start.
        files["grafana-auth"] = {"namespace": platform.namespace, "admin-password": creds.grafana_admin_password}
    receivers = {"slack-api-url": creds.alertmanager_slack_api_url, "smtp-password": creds.alertmanager_smtp_password}
    if any(v is not None for v in receivers.values()):
        # Alertmanager's receivers read them as files (api_url_file, auth_password_file).
        files["alertmanager-auth"] = {"namespace": platform.namespace,
                                      **{k: v for k, v in receivers.items() if v is not None}}
    if api_config is not None:
        # The API (orchestrator-service): its config with the accounts, its signing keys, and the HTTP
        # credentials it forwards to Mesos and Marathon ("principal:secret", what both clients read).
        files[API_SECRET] = {
            "namespace": platform.namespace,
            API_CONFIG_KEY: creds.api_admin_password_hash.apply(lambda h: api_config_file(api_config, api_admin, h)),
            API_KEYS_KEY: creds.api_signing_key.apply(api_signing_keys),
            API_MESOS_KEY: creds.mesos_http_password.apply(lambda pw: f"{HTTP_ADMIN}:{pw}"),
            API_MARATHON_KEY: creds.marathon_http_password.apply(lambda pw: f"{HTTP_ADMIN}:{pw}"),
        }
        if creds.zookeeper_api_password is not None:
            # Its own ZooKeeper identity on the scaler's znodes (a file: autoscaler.credentials_file).
            files[API_SECRET][API_ZK_KEY] = creds.zookeeper_api_password.apply(
                lambda pw: f"digest:{ZK_API_USER}:{pw}\n")
    if creds.probe_token is not None:
        # The probes' API token (report:write), next to them in the agents namespace.
        files["probe-token"] = {"namespace": platform.agents_namespace, "token": creds.probe_token}
    if creds.zookeeper_scaler_password is not None:
        # The scaler's ZooKeeper identity (ORCHESTRATOR_ZK_AUTH format) and Marathon's HTTP credentials.
        files["marathon-scaler-auth"] = {
            "namespace": platform.namespace,
            "zk-auth": creds.zookeeper_scaler_password.apply(lambda pw: f"digest:{ZK_SCALER_USER}:{pw}"),
            "http-credentials": creds.marathon_http_password.apply(lambda pw: f"{HTTP_ADMIN}:{pw}"),
            # Whom it lets read its state and write overrides: the API's digest only, never its password.
            **({SCALER_API_ACL_KEY: creds.zookeeper_api_password.apply(lambda pw: zookeeper_digest(ZK_API_USER, pw))}
               if creds.zookeeper_api_password is not None else {}),
        }
    return files


@dataclass(frozen=True)
class PlatformSecretsArgs:
    platform: kx.PlatformContext
    credentials: Credentials
    zk_connect: pulumi.Input[str]
    mesos_zk_path: str  # mesos_master.zk_path
    marathon_zk_path: str  # marathon.zk_path
    api_config: dict[str, Any] | None = None  # the API's config without accounts (orchestrator_service.api_config)
    api_admin: str = "admin"  # service.api.admin_account


class PlatformSecrets(pulumi.ComponentResource):
    """The Kubernetes Secrets of the authenticated components, one per consumer, in its namespace.
    `names[<secret>]` is the Output the workloads reference (so they depend on it)."""

    names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: PlatformSecretsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:security:PlatformSecrets", name, None, opts)
        t = kx.TierContext.of(self, tiers.AUTH, name, args.platform)
        self.names = {}
        for secret_name, files in secret_files(args.platform, args.mesos_zk_path, args.marathon_zk_path,
                                               args.zk_connect, args.credentials, args.api_config,
                                               args.api_admin).items():
            data = {k: v for k, v in files.items() if k != "namespace"}
            self.names[secret_name] = secret(secret_name, secret_name, files["namespace"], t.labels, data,
                                             t.opts).metadata["name"]
        self.register_outputs({"names": self.names})


# --- network flows ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Peer:
    """A tier's pods as the network sees them: where they are, how to select them, what they serve."""

    tier: TierSpec
    name: str  # the component's resource name (the tier id in the Platform): names its policies
    namespace: str
    selector: dict[str, str]
    ports: dict[str, int]
    host_network: bool = False

    @classmethod
    def of(cls, t: kx.TierContext, ports: dict[str, int], host_network: bool = False) -> Peer:
        return cls(t.tier, t.name, t.namespace, t.selector, ports, host_network)


@dataclass(frozen=True)
class External:
    """Addresses outside the cluster's pods (e.g. an old ZooKeeper ensemble being migrated from)."""

    name: str
    cidrs: tuple[str, ...]
    ports: dict[str, int]


@dataclass(frozen=True)
class Clients:
    """Any pod of the namespaces in `security.client_namespaces` (users' and automation's pods)."""


@dataclass(frozen=True)
class Anywhere:
    """Any source at all (e.g. the ingress controller in front of a public service)."""


@dataclass(frozen=True)
class InNamespace:
    """Any pod of one namespace (e.g. a controller's)."""

    name: str


@dataclass(frozen=True)
class ApiServer:
    """The Kubernetes API server (`security.api_server_cidrs`, ports 443 and 6443)."""


CLIENTS, ANYWHERE, API_SERVER = Clients(), Anywhere(), ApiServer()
Source = TierSpec | Clients | Anywhere | InNamespace
Dest = TierSpec | External | ApiServer


@dataclass(frozen=True)
class Flow:
    """One allowed connection. Tier endpoints are registry entries, resolved to the Platform's peers.

    A flow is declared once, by the tier whose wiring makes it necessary: a tier declares who calls
    it (next to its own peer), and a tier that may be absent (zk-sync) declares its own calls too."""

    source: Source
    dest: Dest
    port: str  # a named port of dest (for the API server: "https")
    why: str
    protocols: tuple[str, ...] = ("TCP",)


API_SERVER_PORTS = (443, 6443)


def _port_rule(port: int, protocol: str = "TCP") -> dict[str, Any]:
    return {"port": port, "protocol": protocol}


def _peer_term(peer: Peer, policy_ns: str, sec: SecuritySettings) -> list[dict[str, Any]]:
    if peer.host_network:
        return [{"ip_block": {"cidr": cidr}} for cidr in sec.node_cidrs]
    term: dict[str, Any] = {"pod_selector": {"match_labels": dict(peer.selector)}}
    if peer.namespace != policy_ns:
        term["namespace_selector"] = {"match_labels": {"kubernetes.io/metadata.name": peer.namespace}}
    return [term]


def _namespace_term(namespace: str) -> dict[str, Any]:
    return {"namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": namespace}}}


def resolve_flows(flows: list[Flow], peers: list[Peer], disabled: frozenset[TierSpec]) -> list[Flow]:
    """Keep the flows between tiers that exist for the stack; a flow naming a tier that is neither
    built nor disabled is a wiring mistake."""
    have = {p.tier for p in peers}
    kept = []
    for flow in flows:
        ends = [e for e in (flow.source, flow.dest) if isinstance(e, TierSpec)]
        missing = [t for t in ends if t not in have]
        if any(t not in disabled for t in missing):
            raise ValueError(f"flow {flow.why!r} names tier(s) {[t.id for t in missing]} that have no peer")
        if not missing:
            kept.append(flow)
    return kept


def policy_specs(flows: list[Flow], peers: list[Peer], sec: SecuritySettings) -> list[dict[str, Any]]:
    """NetworkPolicy objects (name, namespace, spec) for a default-deny platform plus `flows`."""
    by_tier = {p.tier: p for p in peers}
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
            if flow.dest is not peer.tier:
                continue
            rule_ports = [_port_rule(peer.ports[flow.port], p) for p in flow.protocols]
            match flow.source:
                case Anywhere():
                    ingress.append({"ports": rule_ports})
                    continue
                case Clients():
                    sources = [_namespace_term(ns) for ns in sec.client_namespaces]
                case InNamespace(name=namespace):
                    sources = [_namespace_term(namespace)]
                case TierSpec():
                    sources = _peer_term(by_tier[flow.source], peer.namespace, sec)
            if sources:
                ingress.append({"from": sources, "ports": rule_ports})
        egress = []
        for flow in flows:
            if flow.source is not peer.tier:
                continue
            match flow.dest:
                case ApiServer():
                    egress.append({"to": [{"ip_block": {"cidr": c}} for c in sec.api_server_cidrs],
                                   "ports": [_port_rule(p) for p in API_SERVER_PORTS]})
                case External(cidrs=cidrs, ports=ports):
                    egress.append({"to": [{"ip_block": {"cidr": c}} for c in cidrs],
                                   "ports": [_port_rule(ports[flow.port])]})
                case TierSpec():
                    dest = by_tier[flow.dest]
                    egress.append({"to": _peer_term(dest, peer.namespace, sec),
                                   "ports": [_port_rule(dest.ports[flow.port], p) for p in flow.protocols]})
        for direction, rules in (("ingress", ingress), ("egress", egress)):
            if rules:
                policies.append({"name": f"{peer.name}-{direction}", "namespace": peer.namespace, "spec": {
                    "pod_selector": {"match_labels": dict(peer.selector)},
                    "policy_types": [direction.capitalize()], direction: rules}})
    return policies


@dataclass(frozen=True)
class NetworkSecurityArgs:
    security: SecuritySettings
    peers: list[Peer]
    flows: list[Flow]
    # Tiers the stack does not run (registry predicates): flows naming them are dropped.
    disabled: frozenset[TierSpec] = frozenset()


class NetworkSecurity(pulumi.ComponentResource):
    """Default-deny NetworkPolicies in every platform namespace, then one allow policy per direction
    per tier, generated from the flows."""

    policy_names: pulumi.Output[list[str]]

    def __init__(self, name: str, args: NetworkSecurityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("orchestrator:security:NetworkSecurity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        labels = kx.labels(tiers.NETWORK_POLICY.app_label, tiers.NETWORK_POLICY.component_label, name)
        created = []
        flows = resolve_flows(args.flows, args.peers, args.disabled)
        for spec in policy_specs(flows, args.peers, args.security):
            created.append(k8s.networking.v1.NetworkPolicy(
                f"{spec['namespace']}-{spec['name']}",
                metadata=kx.metadata(spec["name"], spec["namespace"], labels), spec=spec["spec"], opts=child))
        self.policy_names = pulumi.Output.all(*[p.metadata["name"] for p in created])
        self.register_outputs({"policy_names": self.policy_names})
