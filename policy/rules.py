"""The policy pack's rules, as plain objects (importable without starting the analyzer).

They read resource properties as the engine sends them: camelCase keys, numbers possibly as floats.
Configuration (`pulumi preview --policy-pack policy --policy-pack-config policy/<stack>.json`; every stack
has its file, and `orchestrator check` refuses a stack without one or one that disagrees with the stack):
  ha-replicas-and-budgets:             {"production": true}
  no-load-balancer:                    {"allow": false}      (= security.allow_load_balancer)
  ingress-only-with-tls:               {"allow": false}      (= security.allow_ingress)
  privileged-only-in-agent-namespaces: {"namespaces": ["orchestrator-agents"]}
                                       (exactly the namespaces the tier registry marks privileged)
  host-paths-in-allow-list:            {"allowed": ["/var/lib/mesos", ...]}
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

HERE = Path(__file__).parent
# Kinds with a pod template at spec.template (the HA rule counts their replicas).
WORKLOADS = {
    "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:DaemonSet",
    "kubernetes:argoproj.io/v1alpha1:Rollout", "kubernetes:batch/v1:Job", "kubernetes:apps/v1:ReplicaSet",
}
# Every kind that carries pods, by where its pod spec is (any API group or version of the kind).
POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "Rollout": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
RECOMMENDED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                      "app.kubernetes.io/part-of", "app.kubernetes.io/managed-by")
# From the tier registry (orchestrator/contracts/tiers.py): the pack runs in a virtualenv of its own,
# without the orchestrator package, so it reads the data generated from the registry
# (`python -m orchestrator.contracts.tiers > policy/tiers.json`; tests/test_architecture.py keeps them equal).
TIER_DATA: dict[str, Any] = json.loads((HERE / "tiers.json").read_text())
# Tiers that hold a quorum (by app.kubernetes.io/component): minimum replicas in production.
HA_TIERS: dict[str, int] = TIER_DATA["ha_minimums"]
# The suffix of the namespace the registry gives host-privileged tiers; the rule itself compares exact
# names (config `namespaces`), which `orchestrator check` derives from the registry for each stack.
AGENT_NAMESPACE_SUFFIX: str = TIER_DATA["privileged_namespace_suffixes"][0]
# The reviewed checkov skips: `{"<Kind>/<name>": {"CKV_...": "reason"}}`. A skip annotation on a resource
# for a check not listed for it is a violation (a skip is never self-service).
CHECKOV_SKIPS: dict[str, dict[str, str]] = json.loads((HERE / "checkov-skips.json").read_text())
# Host paths a pod may mount (or anything below them): the agents' work directories, the cgroup tree
# (read by the agents and the probe) and the container runtime's socket (the Docker containerizer).
DEFAULT_HOST_PATHS = ["/var/lib/mesos", "/sys/fs/cgroup", "/var/run/docker.sock"]
# Built-in roles that grant (nearly) everything in their scope, and subjects that are everyone.
BROAD_ROLES = {"cluster-admin", "admin", "edit"}
EVERYONE = {"system:masters", "system:authenticated", "system:unauthenticated", "system:anonymous",
            "system:serviceaccounts"}
ESCALATION_VERBS = {"escalate", "bind", "impersonate"}
PSA_LABELS = ("pod-security.kubernetes.io/enforce", "pod-security.kubernetes.io/audit",
              "pod-security.kubernetes.io/warn")

SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE_KEY|API_KEY|DIGEST", re.I)
# A credential given inline: `name=value` / `name: value` where the name says secret, in an argument or an
# option string (JAVA_OPTS `-D...Password=x`, `--zk_password=x`, `ZK_DIGEST=super:x`). A value that is a
# path (`/etc/...`, `file:...`) or a `$(VAR)` reference names where the secret is, which is fine.
# A heuristic, tuned on this platform's own scripts (tests/test_policy.py holds both kinds of case).
INLINE_SECRET = re.compile(r"(?i)(?:password|passwd|secret|token|credentials?|digest|api[_-]?key|private[_-]?key)"
                           r"[\w.\-]*\s*[=:]\s*(?P<value>[^\s\"',;]+)")
SECRET_FLAG = re.compile(r"(?i)^-{1,2}[\w.\-]*(?:password|passwd|secret|token|credentials?|digest|api[_-]?key)"
                         r"[\w.\-]*$")
# Credentials inside a URL: `scheme://user:password@host` anywhere, and `http(s)://token@host` (a
# token as the user name, e.g. a git host's access token). `ssh://git@host` names a user, not a secret.
URL_WITH_PASSWORD = re.compile(r"[a-zA-Z][\w+.\-]*://[^/\s:@]+:[^/\s@]+@")
URL_WITH_USER = re.compile(r"https?://[^/\s:@]+@")


def _config(args: ResourceValidationArgs | StackValidationArgs) -> Mapping[str, Any]:
    return args.get_config() or {}  # the engine always passes one (schema defaults); tests may not


def _kind(resource_type: str) -> str:
    return resource_type.rsplit(":", 1)[-1]


def _dig(value: Any, path: Iterable[str]) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _find_pod_specs(value: Any, depth: int = 0) -> Iterator[Mapping[str, Any]]:
    """Pod specs anywhere in an object of a kind we do not know (a patch, a custom resource)."""
    if depth > 12:
        return
    if isinstance(value, Mapping):
        if isinstance(value.get("containers"), list):
            yield value
            return
        for v in value.values():
            yield from _find_pod_specs(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            yield from _find_pod_specs(v, depth + 1)


def _pod_specs(args: ResourceValidationArgs) -> list[Mapping[str, Any]]:
    if not args.resource_type.startswith("kubernetes:"):
        return []
    path = POD_SPEC_PATHS.get(_kind(args.resource_type))
    if path is not None:
        pod = _dig(args.props, path)
        return [pod] if isinstance(pod, Mapping) else []
    return list(_find_pod_specs(args.props))


def _pod_spec(args: ResourceValidationArgs) -> Mapping[str, Any] | None:
    pods = _pod_specs(args)
    return pods[0] if pods else None


def _namespace(args: ResourceValidationArgs) -> str:
    return str((args.props.get("metadata") or {}).get("namespace") or "")


def _containers(pod: Mapping[str, Any], init: bool = True) -> list[Mapping[str, Any]]:
    return (list(pod.get("containers") or []) + (list(pod.get("initContainers") or []) if init else [])
            + (list(pod.get("ephemeralContainers") or []) if init else []))


PodCheck = Callable[[ResourceValidationArgs, Mapping[str, Any]], Iterable[str]]
Validate = Callable[[ResourceValidationArgs, ReportViolation], None]


def _pod_rule(check: PodCheck) -> Validate:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for pod in _pod_specs(args):
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
    if _kind(args.resource_type) in ("Job", "CronJob"):
        return  # runs to completion: nothing to be live or ready for
    for c in _containers(pod, init=False):
        missing = [p for p in ("livenessProbe", "readinessProbe") if not c.get(p)]
        if missing:
            yield f"container {c.get('name')}: no {' and no '.join(missing)}"


def _inline_secret(text: str) -> bool:
    for match in INLINE_SECRET.finditer(text):
        value = match.group("value")
        # Not a literal: a path or file URL, a variable or command substitution, a printf format, a
        # shell default (`${X_SECRET_FILE:-}`), a flag, or a boolean.
        if not (value.startswith(("/", "file:", "$", "%", "-", "{", "}", "(", "<")) or
                value.lower() in ("true", "false")):
            return True
    return bool(URL_WITH_PASSWORD.search(text) or URL_WITH_USER.search(text))


def _secrets_not_in_env(args: ResourceValidationArgs, pod: Mapping[str, Any]) -> Iterator[str]:
    for c in _containers(pod):
        for env in c.get("env") or []:
            value = env.get("value")
            if value is None or value == "":
                continue
            if SECRET_NAME.search(env.get("name", "")) or _inline_secret(str(value)):
                yield (f"container {c.get('name')}: env {env.get('name')} holds a secret in plain text; "
                       "use valueFrom.secretKeyRef or a mounted file")
        argv = [str(a) for a in list(c.get("command") or []) + list(c.get("args") or [])]
        for i, arg in enumerate(argv):
            following = argv[i + 1] if i + 1 < len(argv) else "/"
            if _inline_secret(arg) or (SECRET_FLAG.match(arg) and not following.startswith(("/", "$(", "-"))):
                yield (f"container {c.get('name')}: command-line argument {i + 1} carries a secret (the process "
                       "list and the pod spec show it); pass a file path instead")
                break


def _labels(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not args.resource_type.startswith("kubernetes:") or args.resource_type.startswith("kubernetes:core/v1:Namespace"):
        return
    labels = (args.props.get("metadata") or {}).get("labels") or {}
    missing = [label for label in RECOMMENDED_LABELS if label not in labels]
    if missing:
        report_violation(f"missing recommended labels: {', '.join(missing)}", None)
    if args.resource_type in WORKLOADS:
        tmpl = ((args.props.get("spec") or {}).get("template") or {}).get("metadata") or {}
        missing = [label for label in RECOMMENDED_LABELS if label not in (tmpl.get("labels") or {})]
        if missing:
            report_violation(f"pod template misses recommended labels: {', '.join(missing)}", None)


def _no_load_balancer(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if _kind(args.resource_type) != "Service" or not args.resource_type.startswith("kubernetes:core/"):
        return
    if (args.props.get("spec") or {}).get("type") == "LoadBalancer" and not _config(args).get("allow", False):
        report_violation("LoadBalancer Services expose the platform outside the cluster; set "
                         "orchestrator:security.allow_load_balancer and this policy's `allow` to permit it", None)


def _no_node_port(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if _kind(args.resource_type) != "Service" or not args.resource_type.startswith("kubernetes:core/"):
        return
    spec = args.props.get("spec") or {}
    if spec.get("type") == "NodePort":
        report_violation("NodePort Services open a port on every node, outside the network policies; use a "
                         "ClusterIP Service (and an Ingress or LoadBalancer through their settings)", None)
    elif spec.get("type") != "LoadBalancer" and any("nodePort" in p for p in spec.get("ports") or []):
        report_violation("a Service port sets nodePort", None)


def _no_external_ips(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if _kind(args.resource_type) != "Service" or not args.resource_type.startswith("kubernetes:core/"):
        return
    if (args.props.get("spec") or {}).get("externalIPs"):
        report_violation("Service externalIPs let the Service capture traffic to any address (CVE-2020-8554); "
                         "not allowed", None)


def _ingress_only_with_tls(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if _kind(args.resource_type) != "Ingress":
        return
    if not _config(args).get("allow", False):
        report_violation("Ingresses expose the platform outside the cluster; set orchestrator:security.allow_ingress "
                         "and this policy's `allow` to permit them (with TLS)", None)
        return
    spec = args.props.get("spec") or {}
    covered = {h for t in spec.get("tls") or [] for h in t.get("hosts") or []}
    rules = spec.get("rules") or []
    if not rules or not spec.get("tls"):
        report_violation("an allowed Ingress needs TLS (spec.tls) and host rules", None)
        return
    for rule in rules:
        if not rule.get("host"):
            report_violation("an Ingress rule without a host answers for every name: set its host", None)
        elif rule["host"] not in covered:
            report_violation(f"Ingress host {rule['host']} is not covered by spec.tls", None)


def _no_broad_rbac(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    kind = _kind(args.resource_type)
    if not args.resource_type.startswith("kubernetes:rbac.authorization.k8s.io/"):
        return
    if kind in ("RoleBinding", "ClusterRoleBinding"):
        ref = args.props.get("roleRef") or {}
        if ref.get("name") in BROAD_ROLES:
            report_violation(f"{kind} to the built-in role {ref.get('name')}: grant a role of its own with the "
                             "verbs and resources the workload needs", None)
        for subject in args.props.get("subjects") or []:
            if subject.get("name") in EVERYONE:
                report_violation(f"{kind} to {subject.get('kind')} {subject.get('name')}: that is everyone", None)
    if kind in ("Role", "ClusterRole"):
        for rule in args.props.get("rules") or []:
            for field in ("verbs", "resources", "apiGroups", "nonResourceURLs"):
                if "*" in (rule.get(field) or []):
                    report_violation(f"{kind} rule with '*' in {field}: list what the workload needs", None)
            risky = ESCALATION_VERBS & set(rule.get("verbs") or [])
            if risky:
                report_violation(f"{kind} grants {', '.join(sorted(risky))}: privilege escalation", None)
        if args.props.get("aggregationRule"):
            report_violation(f"{kind} aggregates other roles: its rights are not reviewable here", None)


def _is_privileged(pod: Mapping[str, Any]) -> list[str]:
    reasons = [f"{k}: true" for k in ("hostNetwork", "hostPID", "hostIPC") if pod.get(k)]
    pod_sc = pod.get("securityContext") or {}
    for c in _containers(pod):
        sc = c.get("securityContext") or {}
        name = c.get("name")
        if sc.get("privileged"):
            reasons.append(f"container {name} privileged")
        if sc.get("allowPrivilegeEscalation", True) and not sc.get("privileged"):
            reasons.append(f"container {name} allows privilege escalation")
        if (sc.get("capabilities") or {}).get("add"):
            reasons.append(f"container {name} adds capabilities")
        user = sc.get("runAsUser", pod_sc.get("runAsUser"))
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if user is not None and int(user) == 0:
            reasons.append(f"container {name} runs as root (runAsUser 0)")
        elif non_root is not True:
            reasons.append(f"container {name} may run as root (runAsNonRoot not true)")
        if any("hostPort" in p for p in c.get("ports") or []):
            reasons.append(f"container {name} binds a hostPort")
    if any("hostPath" in v for v in pod.get("volumes") or []):
        reasons.append("hostPath volume")
    return reasons


def _privileged_only_in_agent_namespaces(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    allowed = set(_config(args).get("namespaces") or [])
    if _kind(args.resource_type) == "Namespace" and args.resource_type.startswith("kubernetes:core/"):
        meta = args.props.get("metadata") or {}
        name, labels = meta.get("name", ""), meta.get("labels") or {}
        if name in allowed:
            if not labels.get(PSA_LABELS[0]):
                report_violation(f"namespace {name}: no Pod Security enforce label", None)
            return
        lowered = [f"{k}={labels.get(k)}" for k in PSA_LABELS if labels.get(k) != "restricted"]
        if lowered:
            report_violation(f"namespace {name} is not one the tier registry marks privileged ({sorted(allowed)}): "
                             f"it must enforce Pod Security 'restricted' ({', '.join(lowered)})", None)
        return
    for pod in _pod_specs(args):
        namespace = _namespace(args)
        reasons = _is_privileged(pod)
        if reasons and namespace not in allowed:
            report_violation(f"host privileges outside the privileged namespaces {sorted(allowed)} (namespace "
                             f"{namespace or 'unset'}): {'; '.join(reasons)}", None)


def _host_paths_in_allow_list(args: ResourceValidationArgs, pod: Mapping[str, Any]) -> Iterator[str]:
    allowed = [p.rstrip("/") for p in (_config(args).get("allowed") or DEFAULT_HOST_PATHS)]
    for v in pod.get("volumes") or []:
        if "hostPath" not in v:
            continue
        path = str((v.get("hostPath") or {}).get("path") or "")
        normal = "/" + "/".join(p for p in path.split("/") if p and p != ".")
        if ".." in path.split("/") or not any(normal == a or normal.startswith(a + "/") for a in allowed if a):
            yield f"volume {v.get('name')}: host path {path!r} is not in the allow-list {allowed}"


def _strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


def _no_credentials_in_urls(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not args.resource_type.startswith("kubernetes:"):
        return
    # A Secret is where credentials belong (and its values are secret outputs the engine never shows).
    props = {k: v for k, v in args.props.items() if not (_kind(args.resource_type) == "Secret"
                                                          and k in ("data", "stringData"))}
    for path, text in _strings(props):
        if URL_WITH_PASSWORD.search(text) or URL_WITH_USER.search(text):
            report_violation(f"{path}: a URL carries credentials (user:password@ or token@); give them through "
                             "a Secret or the tool's credential store", None)


def _checkov_skips_reviewed(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if not args.resource_type.startswith("kubernetes:"):
        return
    meta = args.props.get("metadata") or {}
    key = f"{_kind(args.resource_type)}/{meta.get('name')}"
    reviewed = CHECKOV_SKIPS.get(key, {})
    for annotation, value in (meta.get("annotations") or {}).items():
        if not annotation.startswith("checkov.io/skip"):
            continue
        check = str(value).split("=", 1)[0].strip()
        if check not in reviewed:
            report_violation(f"checkov skip {check} on {key} is not in policy/checkov-skips.json: add it there "
                             "with its reason in a reviewed change, or fix the finding", None)


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


_ALLOW = {"allow": {"type": "boolean", "default": False}}
_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

POLICIES = [
    _resource("pinned-images", "Every container image is pinned to a version (no missing tag, no 'latest').",
              _pod_rule(_pinned_images)),
    _resource("resources-set", "Every container sets CPU and memory requests and a memory limit.",
              _pod_rule(_resources)),
    _resource("probes-set", "Every long-running container has liveness and readiness probes.",
              _pod_rule(_probes)),
    _resource("no-secret-in-plain-env", "No secret values in plain env values, options (JAVA_OPTS) or command lines.",
              _pod_rule(_secrets_not_in_env)),
    _resource("recommended-labels", "Objects and pod templates carry the app.kubernetes.io/* labels.", _labels),
    _resource("no-load-balancer", "No LoadBalancer Services unless explicitly allowed.", _no_load_balancer, _ALLOW),
    _resource("no-node-port", "No NodePort Services.", _no_node_port),
    _resource("no-external-ips", "No Service externalIPs.", _no_external_ips),
    _resource("ingress-only-with-tls", "No Ingress unless explicitly allowed, and then only with TLS for every host.",
              _ingress_only_with_tls, _ALLOW),
    _resource("no-broad-rbac", "No bindings to cluster-admin/admin/edit or to everyone; no wildcard or "
              "escalating roles.", _no_broad_rbac),
    _resource("privileged-only-in-agent-namespaces",
              "Host privileges (privileged, escalation, capabilities, host namespaces, hostPath, hostPort, root) "
              "only in the namespaces the tier registry marks privileged; every other namespace enforces Pod "
              "Security 'restricted'.",
              _privileged_only_in_agent_namespaces, {"namespaces": _STRINGS}),
    _resource("host-paths-in-allow-list", "hostPath volumes only at or below the allowed host paths.",
              _pod_rule(_host_paths_in_allow_list), {"allowed": {**_STRINGS, "default": DEFAULT_HOST_PATHS}}),
    _resource("no-credentials-in-urls", "No credentials in URLs anywhere in an object (a Secret's data excepted).",
              _no_credentials_in_urls),
    _resource("checkov-skips-reviewed", "A checkov skip annotation only for a check listed for that object in "
              "policy/checkov-skips.json.", _checkov_skips_reviewed),
    StackValidationPolicy(
        name="ha-replicas-and-budgets",
        description="In production, quorum tiers run enough replicas and a PodDisruptionBudget covers each.",
        validate=_ha, enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=PolicyConfigSchema(properties={"production": {"type": "boolean", "default": False}})),
]
