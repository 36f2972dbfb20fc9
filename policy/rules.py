"""The policy pack's rules, as plain objects (importable without starting the analyzer).

They read resource properties as the engine sends them: camelCase keys, numbers possibly as floats.
Configuration (`pulumi preview --policy-pack policy --policy-pack-config policy/<stack>.json`):
  ha-replicas-and-budgets: {"production": true}
  no-load-balancer:        {"allow": false}
  privileged-only-in-agent-namespaces: {"agent_namespace_suffix": "-agents"}
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

WORKLOADS = {
    "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet",
    "kubernetes:argoproj.io/v1alpha1:Rollout", "kubernetes:batch/v1:Job",
}
RECOMMENDED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                      "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by")
# From the tier registry (orchestrator/contracts/tiers.py): the pack runs in a virtualenv of its own,
# without the orchestrator package, so it reads the data generated from the registry
# (`python -m orchestrator.contracts.tiers > policy/tiers.json`; tests/test_architecture.py keeps them equal).
TIER_DATA: dict[str, Any] = json.loads((Path(__file__).parent / "tiers.json").read_text())
# Tiers that hold a quorum (by app.kubernetes.io/component): minimum replicas in production.
HA_TIERS: dict[str, int] = TIER_DATA["ha_minimums"]
# Namespaces (by suffix of the platform namespace) where the registry puts host-privileged tiers.
AGENT_NAMESPACE_SUFFIX: str = TIER_DATA["privileged_namespace_suffixes"][0]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY", re.I)
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:[^/\s@]+@")


def _config(args: ResourceValidationArgs | StackValidationArgs) -> Mapping[str, Any]:
    return args.get_config() or {}  # the engine always passes one (schema defaults); tests may not


def _pod_spec(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
    if args.resource_type == "kubernetes:core/v1:Pod":
        return args.props.get("spec")
    if args.resource_type in WORKLOADS:
        return ((args.props.get("spec") or {}).get("template") or {}).get("spec")
    return None


def _containers(pod: Mapping[str, Any], init: bool = True) -> list[Mapping[str, Any]]:
    return list(pod.get("containers") or []) + (list(pod.get("initContainers") or []) if init else [])


PodCheck = Callable[[ResourceValidationArgs, Mapping[str, Any]], Iterable[str]]
Validate = Callable[[ResourceValidationArgs, ReportViolation], None]


def _pod_rule(check: PodCheck) -> Validate:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        pod = _pod_spec(args)
        if pod is not None:
            for message in check(args, pod):
                report_violation(message, None)
    return validate


def _pinned_images(args: ResourceValidationArgs, pod: Mapping[str, Any]) -> Iterator[str]:
    for c in _containers(pod):
        image = c.get("image", "")
        last = image.rsplit("/", 1)[-1]
        if "@sha256:" not in image and (":" not in last or last.endswith(":latest")):
            yield f"container {c.get('name')}: image {image!r} is not pinned to a version (no tag or 'latest')"


def _resources(args: ResourceValidationArgs, pod: Mapping[str, Any]) -> Iterator[str]:
    for c in _containers(pod):
        res = c.get("resources") or {}
        requests, limits = res.get("requests") or {}, res.get("limits") or {}
        missing = [f"requests.{k}" for k in ("cpu", "memory") if k not in requests]
        missing += ["limits.memory"] if "memory" not in limits else []
        if missing:
            yield f"container {c.get('name')}: resources not set: {', '.join(missing)}"


def _probes(args: ResourceValidationArgs, pod: Mapping[str, Any]) -> Iterator[str]:
    for c in _containers(pod, init=False):
        missing = [p for p in ("livenessProbe", "readinessProbe") if not c.get(p)]
        if missing:
            yield f"container {c.get('name')}: no {' and no '.join(missing)}"


def _secrets_not_in_env(args: ResourceValidationArgs, pod: Mapping[str, Any]) -> Iterator[str]:
    for c in _containers(pod):
        for env in c.get("env") or []:
            value = env.get("value")
            if value is None:
                continue
            if SECRET_NAME.search(env.get("name", "")) or URL_WITH_PASSWORD.search(str(value)):
                yield (f"container {c.get('name')}: env {env.get('name')} holds a secret in plain text; "
                       "use valueFrom.secretKeyRef")
        for arg in list(c.get("args") or []) + list(c.get("command") or []):
            if URL_WITH_PASSWORD.search(str(arg)):
                yield f"container {c.get('name')}: a command-line argument carries a password"


def _labels(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not args.resource_type.startswith("kubernetes:") or args.resource_type.startswith("kubernetes:core/v1:Namespace"):
        return
    labels = (args.props.get("metadata") or {}).get("labels") or {}
    missing = [label for label in RECOMMENDED_LABELS if label not in labels]
    if missing:
        report_violation(f"missing recommended labels: {', '.join(missing)}", None)
    pod = _pod_spec(args)
    if pod is not None:
        tmpl = ((args.props.get("spec") or {}).get("template") or {}).get("metadata") or {}
        missing = [label for label in RECOMMENDED_LABELS if label not in (tmpl.get("labels") or {})]
        if missing:
            report_violation(f"pod template misses recommended labels: {', '.join(missing)}", None)


def _no_load_balancer(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != "kubernetes:core/v1:Service":
        return
    if (args.props.get("spec") or {}).get("type") == "LoadBalancer" and not _config(args).get("allow", False):
        report_violation("LoadBalancer Services expose the platform outside the cluster; set "
                         "orchestrator:security.allow_load_balancer and this policy's `allow` to permit it", None)


def _is_privileged(pod: Mapping[str, Any]) -> list[str]:
    reasons = [f"{k}: true" for k in ("hostNetwork", "hostPID", "hostIPC") if pod.get(k)]
    for c in _containers(pod):
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            reasons.append(f"container {c.get('name')} privileged")
        if sc.get("allowPrivilegeEscalation", True) and not sc.get("privileged"):
            reasons.append(f"container {c.get('name')} allows privilege escalation")
        if (sc.get("capabilities") or {}).get("add"):
            reasons.append(f"container {c.get('name')} adds capabilities")
    if any("hostPath" in v for v in pod.get("volumes") or []):
        reasons.append("hostPath volume")
    return reasons


def _privileged_only_in_agent_namespaces(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    pod = _pod_spec(args)
    if pod is None:
        return
    namespace = (args.props.get("metadata") or {}).get("namespace", "")
    suffix = _config(args).get("agent_namespace_suffix", AGENT_NAMESPACE_SUFFIX)
    reasons = _is_privileged(pod)
    if reasons and not namespace.endswith(suffix):
        report_violation(f"privileged pod outside the agent namespace (*{suffix}): {'; '.join(reasons)}", None)


def _ha(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    if not _config(args).get("production", False):
        return
    budgets = [r for r in args.resources if r.resource_type == "kubernetes:policy/v1:PodDisruptionBudget"]
    for r in args.resources:
        if r.resource_type not in WORKLOADS:
            continue
        labels = ((r.props.get("metadata") or {}).get("labels") or {})
        tier = labels.get("app.kubernetes.io/component")
        if tier not in HA_TIERS:
            continue
        replicas = int((r.props.get("spec") or {}).get("replicas") or 1)
        if replicas < HA_TIERS[tier]:
            report_violation(f"{tier} {r.name}: {replicas} replicas; production needs at least {HA_TIERS[tier]}",
                             r.urn)
        pod_labels = (((r.props.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
        covered = any(all(pod_labels.get(k) == v for k, v in
                          (((b.props.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}).items())
                      and (b.props.get("metadata") or {}).get("namespace") == (r.props.get("metadata") or {}).get("namespace")
                      for b in budgets)
        if not covered:
            report_violation(f"{tier} {r.name}: no PodDisruptionBudget selects its pods", r.urn)


def _resource(name: str, description: str, validate: Validate,
              schema: dict[str, Any] | None = None) -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=PolicyConfigSchema(properties=schema) if schema else None)


POLICIES = [
    _resource("pinned-images", "Every container image is pinned to a version (no missing tag, no 'latest').",
              _pod_rule(_pinned_images)),
    _resource("resources-set", "Every container sets CPU and memory requests and a memory limit.",
              _pod_rule(_resources)),
    _resource("probes-set", "Every long-running container has liveness and readiness probes.",
              _pod_rule(_probes)),
    _resource("no-secret-in-plain-env", "No secret values in plain env values or command lines.",
              _pod_rule(_secrets_not_in_env)),
    _resource("recommended-labels", "Objects and pod templates carry the app.kubernetes.io/* labels.", _labels),
    _resource("no-load-balancer", "No LoadBalancer Services unless explicitly allowed.", _no_load_balancer,
              {"allow": {"type": "boolean", "default": False}}),
    _resource("privileged-only-in-agent-namespaces",
              "Privileged pods, host namespaces and hostPath volumes only in the Mesos agent namespace.",
              _privileged_only_in_agent_namespaces,
              {"agent_namespace_suffix": {"type": "string", "default": AGENT_NAMESPACE_SUFFIX}}),
    StackValidationPolicy(
        name="ha-replicas-and-budgets",
        description="In production, quorum tiers run enough replicas and a PodDisruptionBudget covers each.",
        validate=_ha, enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=PolicyConfigSchema(properties={"production": {"type": "boolean", "default": False}})),
]
