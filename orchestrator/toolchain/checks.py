"""Checks of a render by real, independent tools, plus cross-object invariants no schema can see.

- kubernetes-validate (official OpenAPI schemas, strict) for the oldest and newest supported versions;
- promtool (`check config`, `check rules`) on the Prometheus config and rules exactly as rendered,
  except that each `kubernetes_sd_configs` block is swapped for a `static_configs` block (Debian's
  promtool is built without Kubernetes discovery); those blocks' own fields are checked here;
- references between objects: selectors, Service ports, ConfigMaps, claims, accounts, images.
"""
from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from orchestrator.contracts.annotations import EXTERNAL_SECRETS
from orchestrator.toolchain.check_base import CheckError
from orchestrator.toolchain.check_base import ref as _ref
from orchestrator.toolchain.check_base import subset as _subset

# Oldest and newest Kubernetes minor versions we support (README "Supported Kubernetes").
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")
# Kinds with a pod template at spec.template (an Argo Rollout is shaped like a Deployment).
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Rollout")
# Argo CD keeps Applications and AppProjects in its own namespace, installed outside this program.
ARGOCD_KINDS = ("Application", "AppProject")
SD_PLACEHOLDER_TARGET = "kubernetes-sd.invalid:80"

_SD_KEYS = {"api_server", "role", "kubeconfig_file", "basic_auth", "authorization", "oauth2", "proxy_url",
            "no_proxy", "proxy_from_environment", "proxy_connect_header", "tls_config", "follow_redirects",
            "enable_http2", "namespaces", "selectors", "attach_metadata"}
_SD_ROLES = {"endpoints", "endpointslice", "service", "pod", "node", "ingress"}
_POD_META = {"namespace", "pod_name", "pod_ip", "pod_container_init", "pod_container_name", "pod_container_id",
             "pod_container_image", "pod_container_port_name", "pod_container_port_number",
             "pod_container_port_protocol", "pod_ready", "pod_phase", "pod_node_name", "pod_host_ip", "pod_uid",
             "pod_controller_kind", "pod_controller_name"}
_POD_META_PREFIXES = ("pod_label_", "pod_labelpresent_", "pod_annotation_", "pod_annotationpresent_")


# --- Kubernetes schemas -------------------------------------------------------------------------
def kubernetes_schema_problems(manifests: Iterable[dict[str, Any]],
                               versions: Iterable[str] = KUBERNETES_VERSIONS) -> list[str]:
    import kubernetes_validate

    from orchestrator.toolchain import argo_validate

    manifests = list(manifests)
    # CRDs have no kubernetes-validate schema: Argo objects go to the Argo models (argo_validate.mjs).
    problems = argo_validate.schema_problems(manifests)
    for doc in manifests:
        if argo_validate.is_argo(doc):
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(str(p) for p in exc.path)
                problems.append(f"{_ref(doc)} (k8s {version}): {path}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{_ref(doc)} (k8s {version}): no schema for {doc['apiVersion']}/{doc['kind']}")
    return problems


# --- Prometheus ---------------------------------------------------------------------------------
def prometheus_files(manifests: Iterable[dict[str, Any]]) -> dict[str, str]:
    """The ConfigMap that holds prometheus.yml and its rule files, as rendered."""
    for doc in manifests:
        if doc["kind"] == "ConfigMap" and "prometheus.yml" in doc.get("data", {}):
            return dict(doc["data"])
    raise CheckError("no ConfigMap with prometheus.yml in the render")


def without_kubernetes_sd(config: dict[str, Any]) -> dict[str, Any]:
    """A copy where each kubernetes_sd_configs block becomes a static_configs block; all else as is."""
    swapped = copy.deepcopy(config)
    for job in swapped.get("scrape_configs", []):
        if "kubernetes_sd_configs" in job:
            del job["kubernetes_sd_configs"]
            job.setdefault("static_configs", []).append({"targets": [SD_PLACEHOLDER_TARGET]})
    return swapped


def kubernetes_sd_problems(config: dict[str, Any]) -> list[str]:
    """Fields of the kubernetes_sd_configs blocks and the `__meta_kubernetes_*` labels their relabel
    rules read, for the role in use (promtool cannot see these)."""
    problems = []
    for job in config.get("scrape_configs", []):
        name = job.get("job_name")
        for block in job.get("kubernetes_sd_configs", []):
            unknown = set(block) - _SD_KEYS
            if unknown:
                problems.append(f"job {name}: unknown kubernetes_sd_configs keys {sorted(unknown)}")
            role = block.get("role")
            if role not in _SD_ROLES:
                problems.append(f"job {name}: kubernetes_sd_configs role {role!r} is not one of {sorted(_SD_ROLES)}")
            names = (block.get("namespaces") or {}).get("names", [])
            if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
                problems.append(f"job {name}: namespaces.names must be a list of namespace names")
            if role == "pod":
                for rule in job.get("relabel_configs", []):
                    for label in rule.get("source_labels", []):
                        if label.startswith("__meta_kubernetes_"):
                            meta = label[len("__meta_kubernetes_"):]
                            if meta not in _POD_META and not meta.startswith(_POD_META_PREFIXES):
                                problems.append(f"job {name}: {label} is not a pod-role discovery label")
    return problems


def _k8s_label_name(label: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


def discovered_targets(config: dict[str, Any], manifests: list[dict[str, Any]]) -> dict[str, list[str]]:
    """For each pod-role job, which rendered containers' ports survive its keep/drop rules.

    Evaluates only the filtering actions over the discovery labels the pods of this render would
    carry; it answers "does this job scrape anything we deploy?", not what Prometheus would label."""
    pods = [(doc, tmpl) for doc in manifests if doc["kind"] in WORKLOAD_KINDS
            for tmpl in [doc["spec"]["template"]]]
    result: dict[str, list[str]] = {}
    for job in config.get("scrape_configs", []):
        blocks = [b for b in job.get("kubernetes_sd_configs", []) if b.get("role") == "pod"]
        if not blocks:
            continue
        namespaces = {n for b in blocks for n in (b.get("namespaces") or {}).get("names", [])}
        found = []
        for doc, tmpl in pods:
            ns = doc["metadata"].get("namespace")
            if namespaces and ns not in namespaces:
                continue
            meta_labels = {"__meta_kubernetes_namespace": ns}
            for k, v in tmpl["metadata"].get("labels", {}).items():
                meta_labels[f"__meta_kubernetes_pod_label_{_k8s_label_name(k)}"] = v
            for k, v in tmpl["metadata"].get("annotations", {}).items():
                meta_labels[f"__meta_kubernetes_pod_annotation_{_k8s_label_name(k)}"] = v
            for c in tmpl["spec"]["containers"]:
                for port in c.get("ports", []):
                    labels = dict(meta_labels, __meta_kubernetes_pod_container_name=c["name"],
                                  __meta_kubernetes_pod_container_port_name=port.get("name", ""),
                                  __meta_kubernetes_pod_container_port_number=str(port["containerPort"]))
                    if _survives(job.get("relabel_configs", []), labels):
                        found.append(f"{_ref(doc)}:{c['name']}:{port.get('name', port['containerPort'])}")
        result[job["job_name"]] = found
    return result


def _survives(rules: list[dict[str, Any]], labels: dict[str, str]) -> bool:
    for rule in rules:
        action = rule.get("action", "replace")
        if action not in ("keep", "drop"):
            continue
        value = rule.get("separator", ";").join(labels.get(s, "") for s in rule.get("source_labels", []))
        matched = re.fullmatch(rule.get("regex", "(.*)"), value) is not None
        if (action == "keep" and not matched) or (action == "drop" and matched):
            return False
    return True


def promtool_problems(files: dict[str, str], workdir: Path) -> list[str]:
    promtool = shutil.which("promtool")
    if not promtool:
        raise CheckError("promtool is not installed (apt-get install prometheus)")
    config = yaml.safe_load(files["prometheus.yml"])
    problems = kubernetes_sd_problems(config)
    for name, text in files.items():
        (workdir / name).write_text(text)
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(without_kubernetes_sd(config), sort_keys=False))
    rule_files = [f for f in config.get("rule_files", [])]
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", *rule_files]):
        proc = subprocess.run([promtool, *args], cwd=workdir, capture_output=True, text=True)
        if proc.returncode != 0:
            problems.append(f"promtool {' '.join(args)}: {(proc.stdout + proc.stderr).strip()}")
    return problems


# --- references between objects -----------------------------------------------------------------
def reference_problems(manifests: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    by_kind: dict[str, dict[tuple[str | None, str], dict[str, Any]]] = {}
    for doc in manifests:
        by_kind.setdefault(doc["kind"], {})[(doc["metadata"].get("namespace"), doc["metadata"]["name"])] = doc
    workloads = [d for k in WORKLOAD_KINDS for d in by_kind.get(k, {}).values()]
    namespaces = {name for (_, name) in by_kind.get("Namespace", {})}

    def pods_in(ns: str | None) -> list[dict[str, Any]]:
        return [w for w in workloads if w["metadata"].get("namespace") == ns]

    for doc in manifests:
        ns = doc["metadata"].get("namespace")
        if ns is not None and ns not in namespaces and doc["kind"] not in ARGOCD_KINDS:
            problems.append(f"{_ref(doc)}: namespace {ns} is not part of the render")
    for w in workloads:
        ns, spec = w["metadata"].get("namespace"), w["spec"]
        tmpl_labels = spec["template"]["metadata"].get("labels", {})
        if not _subset(spec["selector"]["matchLabels"], tmpl_labels):
            problems.append(f"{_ref(w)}: selector does not match its pod template labels")
        pod = spec["template"]["spec"]
        for kind in ("podAntiAffinity",):
            aff = pod.get("affinity", {}).get(kind, {})
            terms = aff.get("requiredDuringSchedulingIgnoredDuringExecution", []) + [
                t["podAffinityTerm"] for t in aff.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
            for term in terms:
                if not _subset(term["labelSelector"]["matchLabels"], tmpl_labels):
                    problems.append(f"{_ref(w)}: anti-affinity selector never matches its own pods")
        for c in pod["containers"] + pod.get("initContainers", []):
            image = c["image"]
            if ":" not in image.rsplit("/", 1)[-1] and "@" not in image or image.endswith(":latest"):
                problems.append(f"{_ref(w)}: container {c['name']} image {image} is not pinned")
        for vol in pod.get("volumes", []):
            if "configMap" in vol and (ns, vol["configMap"]["name"]) not in by_kind.get("ConfigMap", {}):
                problems.append(f"{_ref(w)}: ConfigMap {vol['configMap']['name']} is not rendered")
            claim = vol.get("persistentVolumeClaim", {}).get("claimName")
            if claim and (ns, claim) not in by_kind.get("PersistentVolumeClaim", {}):
                problems.append(f"{_ref(w)}: PersistentVolumeClaim {claim} is not rendered")
        account = pod.get("serviceAccountName")
        if account and (ns, account) not in by_kind.get("ServiceAccount", {}):
            problems.append(f"{_ref(w)}: ServiceAccount {account} is not rendered")
        problems += _secret_reference_problems(w, ns, pod, by_kind.get("Secret", {}))
        if w["kind"] == "StatefulSet":
            svc = by_kind.get("Service", {}).get((ns, spec["serviceName"]))
            if svc is None or svc["spec"].get("clusterIP") != "None":
                problems.append(f"{_ref(w)}: serviceName {spec['serviceName']} is not a rendered headless Service")
    for svc in by_kind.get("Service", {}).values():
        ns, selector = svc["metadata"].get("namespace"), svc["spec"].get("selector", {})
        targets = [w for w in pods_in(ns) if _subset(selector, w["spec"]["template"]["metadata"].get("labels", {}))]
        if not targets:
            problems.append(f"{_ref(svc)}: selector matches no rendered pods")
            continue
        port_names = {p.get("name") for w in targets for c in w["spec"]["template"]["spec"]["containers"]
                      for p in c.get("ports", [])}
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort")
            if isinstance(target, str) and target not in port_names:
                problems.append(f"{_ref(svc)}: targetPort {target} is not a container port of its pods")
    for pdb in by_kind.get("PodDisruptionBudget", {}).values():
        ns, selector = pdb["metadata"].get("namespace"), pdb["spec"]["selector"]["matchLabels"]
        if not any(_subset(selector, w["spec"]["template"]["metadata"].get("labels", {})) for w in pods_in(ns)):
            problems.append(f"{_ref(pdb)}: selector matches no rendered pods")
    for binding in by_kind.get("RoleBinding", {}).values():
        ns, ref = binding["metadata"].get("namespace"), binding["roleRef"]
        if ref["kind"] == "Role" and (ns, ref["name"]) not in by_kind.get("Role", {}):
            problems.append(f"{_ref(binding)}: Role {ref['name']} is not rendered")
        for subject in binding.get("subjects", []):
            if subject["kind"] == "ServiceAccount" and \
                    (subject["namespace"], subject["name"]) not in by_kind.get("ServiceAccount", {}):
                problems.append(f"{_ref(binding)}: ServiceAccount {subject['name']} is not rendered")
    return problems


def _secret_reference_problems(w: dict[str, Any], ns: str | None, pod: dict[str, Any],
                               secrets: dict[tuple[str | None, str], dict[str, Any]]) -> list[str]:
    """Every Secret a pod mounts or reads exists in the render, with the keys it asks for."""
    problems = []
    wanted: list[tuple[str, str | None]] = []
    for vol in pod.get("volumes", []):
        if "secret" in vol:
            items = vol["secret"].get("items") or [{"key": None}]
            wanted += [(vol["secret"]["secretName"], item["key"]) for item in items]
    for c in pod["containers"] + pod.get("initContainers", []):
        for env in c.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                wanted.append((ref["name"], ref["key"]))
    # Secrets the workload declares as issued outside the program (e.g. cert-manager's), by name only.
    template = w["spec"]["jobTemplate"]["spec"]["template"] if w["kind"] == "CronJob" else w["spec"].get("template", {})
    external = {n.strip() for n in (template.get("metadata", {}).get("annotations", {})
                                    .get(EXTERNAL_SECRETS, "")).split(",") if n.strip()}
    for name, key in wanted:
        secret = secrets.get((ns, name))
        if secret is None and name in external:
            continue
        if secret is None:
            problems.append(f"{_ref(w)}: Secret {name} is not rendered")
        elif key is not None and key not in {**secret.get("data", {}), **secret.get("stringData", {})}:
            problems.append(f"{_ref(w)}: Secret {name} has no key {key}")
    return problems


# --- everything ---------------------------------------------------------------------------------
def check_all(manifests: list[dict[str, Any]]) -> list[str]:
    from orchestrator.toolchain import argo_validate

    problems = reference_problems(manifests) + argo_validate.reference_problems(manifests)
    problems += kubernetes_schema_problems(manifests)
    files = prometheus_files(manifests)
    config = yaml.safe_load(files["prometheus.yml"])
    for job, targets in discovered_targets(config, manifests).items():
        if not targets and job != "annotated-pods":
            problems.append(f"prometheus job {job}: its relabel rules keep none of the rendered pods")
    with tempfile.TemporaryDirectory() as tmp:
        problems += promtool_problems(files, Path(tmp))
    return problems


# --- policy pack and checkov (the main job runs them too) -----------------------------------------
def load_rules(project_dir: Path) -> Any:
    """policy/rules.py of `project_dir`, as a module (the pack's own data files next to it)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("orchestrator_policy_rules", project_dir / "policy" / "rules.py")
    if spec is None or spec.loader is None:
        raise CheckError(f"no policy pack at {project_dir / 'policy'}")
    rules = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rules)
    return rules


def policy_problems(registrations: list[Any], config: dict[str, Any], project_dir: Path) -> list[str]:
    """The CrossGuard rules of policy/ over the engine-form properties of every Kubernetes resource,
    with the stack's policy config (policy/<stack>.json), as `pulumi preview --policy-pack` would."""
    from pulumi_policy import PolicyResource, PolicyResourceOptions, ResourceValidationArgs, StackValidationArgs

    rules = load_rules(project_dir)
    opts = PolicyResourceOptions(False, [], None, [], None, [])  # type: ignore[arg-type]
    resources = [r for r in registrations if r.custom and r.type.startswith("kubernetes:")]
    problems: list[str] = []
    for policy in rules.POLICIES:
        conf = config.get(policy.name, {})
        if hasattr(policy, "validate") and type(policy).__name__ == "StackValidationPolicy":
            stack_args = StackValidationArgs([PolicyResource(r.type, r.inputs, r.urn, r.name, opts, None, None, [], {})
                                              for r in resources], config=conf)
            policy.validate(stack_args, lambda message, urn=None, p=policy.name: problems.append(f"policy {p}: {message}"))
            continue
        for r in resources:
            args = ResourceValidationArgs(r.type, r.inputs, r.urn, r.name, opts, None, config=conf)
            policy.validate(args, lambda message, urn=None, p=policy.name, n=r.name:
                            problems.append(f"policy {p}: {n}: {message}"))
    return problems


def expected_policy_config(settings: Any) -> dict[str, dict[str, Any]]:
    """What policy/<stack>.json must say for a stack (settings: its PlatformSettings): the policy pack
    runs without this package, so its per-stack facts are written down once and checked here."""
    from orchestrator.contracts import tiers

    privileged = {t.namespace_of(settings.namespace) for t in tiers.enabled_tiers(settings) if t.privileged}
    return {
        "ha-replicas-and-budgets": {"production": settings.production},
        "no-load-balancer": {"allow": settings.security.allow_load_balancer},
        "ingress-only-with-tls": {"allow": settings.security.allow_ingress},
        "privileged-only-in-agent-namespaces": {"namespaces": sorted(privileged)},
    }


def policy_config_problems(config: dict[str, Any], settings: Any, source: str, policy_names: set[str]) -> list[str]:
    """policy/<stack>.json against the stack: the same facts (production, exposure allowances, exactly the
    namespaces the tier registry marks privileged), only known policies, a host-path allow-list."""
    problems = [f"{source}: {name}: no such policy in policy/rules.py" for name in sorted(set(config) - policy_names)]
    for name, wanted in expected_policy_config(settings).items():
        for key, value in wanted.items():
            got = (config.get(name) or {}).get(key)
            if isinstance(got, list):
                got = sorted(got)
            if got != value:
                problems.append(f"{source}: {name}.{key} is {json.dumps(got)}, the stack says {json.dumps(value)}")
    allowed = (config.get("host-paths-in-allow-list") or {}).get("allowed")
    if not isinstance(allowed, list) or not allowed or not all(
            isinstance(p, str) and p.startswith("/") and p.strip("/") and ".." not in p.split("/") for p in allowed):
        problems.append(f"{source}: host-paths-in-allow-list.allowed must list absolute host paths (never '/')")
    return problems


def checkov_problems(rendered_dir: Path, checkov: Path) -> list[str]:
    """checkov's Kubernetes checks over a written render: every failed check is a problem."""
    if not checkov.exists():
        raise CheckError(f"checkov is not installed at {checkov} (make setup)")
    proc = subprocess.run([str(checkov), "-d", str(rendered_dir), "--framework", "kubernetes", "--quiet",
                           "--skip-download", "-o", "json"], capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return [f"checkov failed: {(proc.stderr or proc.stdout).strip()[-500:]}"]
    reports = report if isinstance(report, list) else [report]
    return [f"checkov {c['check_id']} ({c['check_name']}): {c['resource']}"
            for r in reports for c in r.get("results", {}).get("failed_checks", [])]
