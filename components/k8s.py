"""The component kit: what every tier repeats, decided in one place.

- `PlatformContext`: the little a tier may know about the platform besides its own settings section
  (namespaces, cluster domain, production, authentication). Components take it plus their section.
- `TierContext`: one tier instance's identity (registry entry, resource name, namespace, labels,
  selector, child options) and the objects built from it: service account, Services, PDB, pod spec
  (account, token automount, anti-affinity, restricted security context), URLs.
- Plain builders: labels, metadata, probes, containers, secret volumes (one file-mode policy), claims.

Values are plain dicts with snake_case keys (pulumi-kubernetes translates them).
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.settings import PlatformSettings, Resources
from orchestrator.contracts.annotations import EXTERNAL_SECRETS
from orchestrator.contracts.tiers import TierSpec

__all__ = ["EXTERNAL_SECRETS"]  # for the tiers: `kx.EXTERNAL_SECRETS`

PART_OF = "orchestrator"
MANAGED_BY = "pulumi"


def labels(name: str, component: str, instance: str) -> dict[str, str]:
    """The recommended `app.kubernetes.io/*` labels of every object of a tier."""
    return {**selector_labels(name, component, instance),
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": MANAGED_BY}


def selector_labels(name: str, component: str, instance: str) -> dict[str, str]:
    """The immutable subset used in selectors; a subset of `labels()` by construction."""
    return {"app.kubernetes.io/name": name,
            "app.kubernetes.io/instance": instance,
            "app.kubernetes.io/component": component}


def metadata(name: str, namespace: pulumi.Input[str] | None, labels_: dict[str, str],
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": labels_}
    if namespace is not None:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return meta


def resources(res: Resources) -> dict[str, Any]:
    limits = {"memory": res.memory_limit}
    if res.cpu_limit:
        limits["cpu"] = res.cpu_limit
    return {"requests": {"cpu": res.cpu_request, "memory": res.memory_request}, "limits": limits}


def restricted_container_security(read_only_root: bool = True) -> dict[str, Any]:
    """Pod Security 'restricted' container context: non-root, no escalation, no capabilities."""
    return {"run_as_non_root": True,
            "allow_privilege_escalation": False,
            "read_only_root_filesystem": read_only_root,
            "capabilities": {"drop": ["ALL"]},
            "seccomp_profile": {"type": "RuntimeDefault"}}


def container(spec: dict[str, Any], res: Resources, restricted: bool = True) -> dict[str, Any]:
    """A container with the platform's defaults: resources from settings, the image pulled on every
    start (pinned tags; the registry still checks the pull credentials), and the restricted security
    context unless the caller brings its own (the Mesos agent)."""
    defaults: dict[str, Any] = {"image_pull_policy": "Always", "resources": resources(res)}
    if restricted:
        defaults["security_context"] = restricted_container_security()
    return {**spec, **defaults}


def restricted_pod_security(uid: int) -> dict[str, Any]:
    return {"run_as_non_root": True, "run_as_user": uid, "run_as_group": uid, "fs_group": uid,
            "fs_group_change_policy": "OnRootMismatch", "seccomp_profile": {"type": "RuntimeDefault"}}


def http_probe(path: str, port: int | str, *, initial_delay: int = 10, period: int = 10,
               timeout: int = 5, failures: int = 3) -> dict[str, Any]:
    return {"http_get": {"path": path, "port": port}, "initial_delay_seconds": initial_delay,
            "period_seconds": period, "timeout_seconds": timeout, "failure_threshold": failures}


def tcp_probe(port: int | str, *, initial_delay: int = 10, period: int = 10, timeout: int = 5,
              failures: int = 3) -> dict[str, Any]:
    return {"tcp_socket": {"port": port}, "initial_delay_seconds": initial_delay,
            "period_seconds": period, "timeout_seconds": timeout, "failure_threshold": failures}


def exec_probe(script: str, *, initial_delay: int = 10, period: int = 10, timeout: int = 5,
               failures: int = 3, shell: str = "sh") -> dict[str, Any]:
    return {"exec": {"command": [shell, "-c", script]}, "initial_delay_seconds": initial_delay,
            "period_seconds": period, "timeout_seconds": timeout, "failure_threshold": failures}


def pod_anti_affinity(selector: dict[str, str], required: bool) -> dict[str, Any]:
    """Spread replicas over nodes: hard in production (a node loss costs one replica), soft in dev."""
    term = {"label_selector": {"match_labels": dict(selector)}, "topology_key": "kubernetes.io/hostname"}
    if required:
        return {"pod_anti_affinity": {"required_during_scheduling_ignored_during_execution": [term]}}
    return {"pod_anti_affinity": {"preferred_during_scheduling_ignored_during_execution": [
        {"weight": 100, "pod_affinity_term": term}]}}


def service_account(resource_name: str, name: str, namespace: pulumi.Input[str], labels_: dict[str, str],
                    opts: pulumi.ResourceOptions, automount: bool = False) -> k8s.core.v1.ServiceAccount:
    """One account per workload; no API token unless the workload talks to the Kubernetes API."""
    return k8s.core.v1.ServiceAccount(resource_name, metadata=metadata(name, namespace, labels_),
                                      automount_service_account_token=automount, opts=opts)


def field_env(name: str, field_path: str) -> dict[str, Any]:
    return {"name": name, "value_from": {"field_ref": {"field_path": field_path}}}


def headless_service(resource_name: str, name: str, namespace: pulumi.Input[str], labels_: dict[str, str],
                     selector: dict[str, str], ports: list[dict[str, Any]],
                     opts: pulumi.ResourceOptions) -> k8s.core.v1.Service:
    """Stable per-pod DNS (`<pod>.<name>.<ns>.svc`) for peers; not-ready pods are published so that
    members can find each other while forming a quorum."""
    return k8s.core.v1.Service(
        resource_name,
        metadata=metadata(name, namespace, labels_),
        spec={"cluster_ip": "None", "publish_not_ready_addresses": True, "selector": selector, "ports": ports},
        opts=opts)


def cluster_service(resource_name: str, name: str, namespace: pulumi.Input[str], labels_: dict[str, str],
                    selector: dict[str, str], ports: list[dict[str, Any]],
                    opts: pulumi.ResourceOptions) -> k8s.core.v1.Service:
    return k8s.core.v1.Service(
        resource_name,
        metadata=metadata(name, namespace, labels_),
        spec={"type": "ClusterIP", "selector": selector, "ports": ports},
        opts=opts)


def service_port(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "port": port, "target_port": name, "protocol": "TCP"}


def disruption_budget(resource_name: str, name: str, namespace: pulumi.Input[str], labels_: dict[str, str],
                      selector: dict[str, str], opts: pulumi.ResourceOptions) -> k8s.policy.v1.PodDisruptionBudget:
    """At most one replica voluntarily down at a time: keeps ZooKeeper/Mesos/Marathon quorums."""
    return k8s.policy.v1.PodDisruptionBudget(
        resource_name,
        metadata=metadata(name, namespace, labels_),
        spec={"max_unavailable": 1, "selector": {"match_labels": selector}},
        opts=opts)


def volume_claim(name: str, size: str, storage_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"access_modes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storage_class_name"] = storage_class
    return {"metadata": {"name": name}, "spec": spec}


# Findings of checkov's Kubernetes checks that every workload here accepts by design.
DIGEST_SKIP = {"CKV_K8S_43": "images are pinned by tag per stack (policy pinned-images); set repository@sha256 "
                             "in the stack's settings to pin by digest"}
CPU_LIMIT_SKIP = {"CKV_K8S_11": "no CPU limit by design: CFS throttling stalls JVM/Go runtimes; the request "
                                "reserves CPU (set resources.cpu_limit to add one)"}


def checkov_skips(res: Resources | None, **skips: str) -> dict[str, str]:
    """checkov's in-resource skip annotations, each with its reason, next to the resource they excuse."""
    reasons = {**DIGEST_SKIP, **(CPU_LIMIT_SKIP if res is not None and not res.cpu_limit else {}), **skips}
    return {f"checkov.io/skip{i}": f"{check}={reason}" for i, (check, reason) in enumerate(sorted(reasons.items()), 1)}


def content_hash(text: str) -> str:
    """Short digest for a pod-template annotation: a config change then rolls the pods."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def scrape_annotations(port: int, path: str) -> dict[str, str]:
    """Opt a pod into the monitoring tier's `annotated-pods` scrape job (the project's own services)."""
    return {"prometheus.io/scrape": "true", "prometheus.io/port": str(port), "prometheus.io/path": path}


# --- secret files -------------------------------------------------------------------------------
# One mode for every mounted secret file: readable by the file's owner (root) and the pod's group (the
# fsGroup of the restricted pods, so their non-root user can read it), by nobody else.
SECRET_FILE_MODE = 0o440


def secret_volume(volume: str, secret_name: pulumi.Input[str], keys: Sequence[str],
                  mount_path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A Secret's `keys` as read-only files under `mount_path`: (volume, volume mount)."""
    return ({"name": volume, "secret": {"secret_name": secret_name, "default_mode": SECRET_FILE_MODE,
                                        "items": [{"key": k, "path": k} for k in keys]}},
            {"name": volume, "mount_path": mount_path, "read_only": True})


def secret_env(name: str, secret_name: pulumi.Input[str], key: str) -> dict[str, Any]:
    """An environment variable from a Secret's key (never a plain value in the pod spec)."""
    return {"name": name, "value_from": {"secret_key_ref": {"name": secret_name, "key": key}}}


# --- platform and tier contexts -----------------------------------------------------------------
@dataclass(frozen=True)
class PlatformContext:
    """What a tier may know about the platform besides its own settings section."""

    namespace: str
    agents_namespace: str
    cluster_domain: str
    production: bool
    auth_enabled: bool

    @classmethod
    def of(cls, s: PlatformSettings) -> PlatformContext:
        return cls(s.namespace, s.agents_namespace, s.cluster_domain, s.production, s.auth_enabled)

    def service_fqdn(self, service: str, namespace: str | None = None) -> str:
        return f"{service}.{namespace or self.namespace}.svc.{self.cluster_domain}"

    def http_url(self, service: str, port: int) -> str:
        return f"http://{self.service_fqdn(service)}:{port}"


@dataclass(frozen=True)
class TierContext:
    """One tier instance: its registry entry, resource name (the tier id in the Platform), namespace,
    labels and the options its children take."""

    tier: TierSpec
    name: str
    namespace: str
    platform: PlatformContext
    opts: pulumi.ResourceOptions

    @classmethod
    def of(cls, parent: pulumi.Resource, tier: TierSpec, name: str, platform: PlatformContext) -> TierContext:
        namespace = platform.agents_namespace if tier.namespace == "agents" else platform.namespace
        return cls(tier, name, namespace, platform, pulumi.ResourceOptions(parent=parent))

    @property
    def labels(self) -> dict[str, str]:
        return labels(self.tier.app_label, self.tier.component_label, self.name)

    @property
    def selector(self) -> dict[str, str]:
        return selector_labels(self.tier.app_label, self.tier.component_label, self.name)

    def metadata(self, name: str | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
        return metadata(name or self.name, self.namespace, self.labels, annotations)

    def service_account(self, automount: bool = False) -> k8s.core.v1.ServiceAccount:
        return service_account(self.name, self.name, self.namespace, self.labels, self.opts, automount)

    def cluster_service(self, ports: list[dict[str, Any]], suffix: str = "") -> k8s.core.v1.Service:
        name = self.name + suffix
        return cluster_service(name, name, self.namespace, self.labels, self.selector, ports, self.opts)

    def headless_service(self, ports: list[dict[str, Any]]) -> k8s.core.v1.Service:
        name = f"{self.name}-headless"
        return headless_service(name, name, self.namespace, self.labels, self.selector, ports, self.opts)

    def disruption_budget(self) -> k8s.policy.v1.PodDisruptionBudget:
        name = f"{self.name}-pdb"
        return disruption_budget(name, name, self.namespace, self.labels, self.selector, self.opts)

    def pod_spec(self, account: k8s.core.v1.ServiceAccount | None, containers: list[Any], *, uid: int | None,
                 spread: bool | None, automount: bool = False, **extra: Any) -> dict[str, Any]:
        """A pod spec with the platform's defaults: the tier's own account, no API token unless the
        account mounts one (`automount`: the account's setting applies), replicas spread over nodes
        (`spread`: hard in production; None: no anti-affinity), the restricted pod security context
        (`uid`; None: the workload brings its own)."""
        spec: dict[str, Any] = {"containers": containers, **extra}
        if account is not None:
            spec["service_account_name"] = account.metadata["name"]
        if not automount:
            spec["automount_service_account_token"] = False
        if spread is not None:
            spec["affinity"] = pod_anti_affinity(self.selector, required=spread and self.platform.production)
        if uid is not None:
            spec["security_context"] = restricted_pod_security(uid)
        return spec

    def pod_template(self, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"labels": self.labels}
        if annotations:
            meta["annotations"] = annotations
        return {"metadata": meta, "spec": spec}

    def quorum_statefulset(self, headless: k8s.core.v1.Service, replicas: int, pod_spec: dict[str, Any],
                           claims: list[dict[str, Any]], annotations: dict[str, str],
                           template_annotations: dict[str, str] | None = None) -> k8s.apps.v1.StatefulSet:
        """The StatefulSet of a quorum (ZooKeeper, the Mesos masters): stable names through `headless`."""
        return k8s.apps.v1.StatefulSet(
            self.name,
            metadata=self.metadata(annotations=annotations),
            spec={
                "service_name": headless.metadata["name"],
                "replicas": replicas,
                # Members start together: with OrderedReady, pod 0 would wait (not ready) for a quorum
                # that pods 1..n, not yet created, never join.
                "pod_management_policy": "Parallel",
                "update_strategy": {"type": "RollingUpdate"},
                # The claims hold the members' state: a deleted or scaled-down set keeps them.
                "persistent_volume_claim_retention_policy": {"when_deleted": "Retain", "when_scaled": "Retain"},
                "selector": {"match_labels": self.selector},
                "template": self.pod_template(pod_spec, template_annotations),
                "volume_claim_templates": claims,
            },
            opts=self.opts)

    def deployment(self, replicas: int, strategy: dict[str, Any], pod_spec: dict[str, Any],
                   annotations: dict[str, str],
                   template_annotations: dict[str, str] | None = None) -> k8s.apps.v1.Deployment:
        return k8s.apps.v1.Deployment(
            self.name,
            metadata=self.metadata(annotations=annotations),
            spec={"replicas": replicas, "strategy": strategy, "selector": {"match_labels": self.selector},
                  "template": self.pod_template(pod_spec, template_annotations)},
            opts=self.opts)

    def url(self, service: k8s.core.v1.Service, port: int) -> pulumi.Output[str]:
        """`http://<service>.<namespace>.svc.<domain>:<port>`, depending on the Service."""
        name: pulumi.Output[str] = service.metadata["name"]
        return name.apply(lambda n: self.platform.http_url(n, port))
