"""Checks of the Argo custom resources in a render (Rollout, AnalysisTemplate, Application, AppProject).

- Schemas: kubernetes-validate has no schema for CRDs, so these objects go to `argo_validate.mjs`, which
  runs the independent @kubernetes-models/argo-rollouts and @kubernetes-models/argo-cd validators and
  also reports keys their models do not declare (they let unknown keys through).
- References no schema can see: each Rollout's canary/stable Services exist and select its pods, every
  analysis step names AnalysisTemplates that exist and passes exactly the arguments they declare, and
  every `{{args.*}}` a template uses is declared; each Application's project exists.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from orchestrator.toolchain.check_base import CheckError
from orchestrator.toolchain.check_base import ref as _ref
from orchestrator.toolchain.check_base import subset as _subset

SCRIPT = Path(__file__).with_name("argo_validate.mjs")
PROJECT_DIR = SCRIPT.parents[2]
ARGO_GROUP = "argoproj.io/"
_ARG_USE = re.compile(r"\{\{\s*args\.([A-Za-z0-9_.\-]+)\s*\}\}")


class ArgoValidatorUnavailable(CheckError):
    """node or the npm packages are missing: the Argo objects cannot be checked."""


def is_argo(doc: dict[str, Any]) -> bool:
    return str(doc.get("apiVersion", "")).startswith(ARGO_GROUP)


def node_problem() -> str | None:
    """Why the validator cannot run here, or None."""
    if not shutil.which("node"):
        return "node is not installed (apt-get install nodejs)"
    if not (PROJECT_DIR / "node_modules" / "@kubernetes-models" / "argo-rollouts").is_dir():
        return f"the npm packages are not installed (run `npm ci` in {PROJECT_DIR})"
    return None


def schema_problems(manifests: Iterable[dict[str, Any]]) -> list[str]:
    """Validate the Argo objects among `manifests` (others are ignored) with the npm models."""
    docs = [d for d in manifests if is_argo(d)]
    if not docs:
        return []
    reason = node_problem()
    if reason:
        raise ArgoValidatorUnavailable(reason)
    proc = subprocess.run(["node", str(SCRIPT)], input=json.dumps(docs), capture_output=True, text=True,
                          cwd=PROJECT_DIR, timeout=120)
    if proc.returncode != 0:
        raise ArgoValidatorUnavailable(f"argo_validate.mjs failed: {proc.stderr.strip()}")
    return [f"{f['ref']} (argo): {f['path'] or '/'}: {f['message']}" for f in json.loads(proc.stdout)]


def reference_problems(manifests: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    index = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in manifests}
    for rollout in (d for d in manifests if d["kind"] == "Rollout"):
        ns, spec = rollout["metadata"].get("namespace"), rollout["spec"]
        pod_labels = spec["template"]["metadata"].get("labels", {})
        if not _subset(spec["selector"]["matchLabels"], pod_labels):
            problems.append(f"{_ref(rollout)}: selector does not match its pod template labels")
        canary = spec.get("strategy", {}).get("canary")
        if canary is None:
            continue
        for role in ("canaryService", "stableService"):
            name = canary.get(role)
            svc = index.get(("Service", ns, name))
            if name is None or svc is None:
                problems.append(f"{_ref(rollout)}: {role} {name} is not a rendered Service")
            elif not svc["spec"].get("selector") or not _subset(svc["spec"]["selector"], pod_labels):
                problems.append(f"{_ref(rollout)}: {role} {name} does not select the Rollout's pods")
        if canary.get("canaryService") and canary.get("canaryService") == canary.get("stableService"):
            problems.append(f"{_ref(rollout)}: canaryService and stableService must differ")
        steps = canary.get("steps", [])
        for i, step in enumerate(steps):
            analysis = step.get("analysis")
            if analysis is None:
                continue
            passed = {a["name"] for a in analysis.get("args", [])}
            for ref in analysis.get("templates", []):
                kind = "ClusterAnalysisTemplate" if ref.get("clusterScope") else "AnalysisTemplate"
                template = index.get((kind, None if ref.get("clusterScope") else ns, ref["templateName"]))
                where = f"{_ref(rollout)}: steps[{i}]"
                if template is None:
                    problems.append(f"{where}: {kind} {ref['templateName']} is not rendered")
                    continue
                declared_args = {a["name"]: a for a in template["spec"].get("args", [])}
                for name in sorted(passed - set(declared_args)):
                    problems.append(f"{where}: argument {name} is not declared by {ref['templateName']}")
                for name, arg in sorted(declared_args.items()):
                    if name not in passed and "value" not in arg and "valueFrom" not in arg:
                        problems.append(f"{where}: {ref['templateName']} needs argument {name}, not passed")
    for template in (d for d in manifests if d["kind"] in ("AnalysisTemplate", "ClusterAnalysisTemplate")):
        declared = {a["name"] for a in template["spec"].get("args", [])}
        used = set(_ARG_USE.findall(json.dumps(template["spec"].get("metrics", []))))
        for name in sorted(used - declared):
            problems.append(f"{_ref(template)}: uses {{{{args.{name}}}}} but does not declare it")
        names = [m["name"] for m in template["spec"].get("metrics", [])]
        if len(names) != len(set(names)):
            problems.append(f"{_ref(template)}: duplicate metric names {names}")
    projects = {(d["metadata"].get("namespace"), d["metadata"]["name"]) for d in manifests if d["kind"] == "AppProject"}
    for app in (d for d in manifests if d["kind"] == "Application"):
        if (app["metadata"].get("namespace"), app["spec"].get("project")) not in projects:
            problems.append(f"{_ref(app)}: AppProject {app['spec'].get('project')} is not rendered")
    return problems
