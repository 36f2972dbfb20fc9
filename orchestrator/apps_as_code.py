"""Marathon apps as code: definitions declared in the repository, validated, rendered into a ConfigMap.

Where they live: a directory of YAML/JSON files (default `deploy/marathon-apps/`, one app per file or
`{"apps": [...]}`), named by the stack setting `marathonScaler.appsDir`. Validation covers what breaks at
deploy time in Marathon or silently later: ids (Marathon's rule, unique across files), resources, a command or
container, health checks (protocol, path, timings), constraints (field, operator, value) and string labels/env.
Unknown fields pass through untouched (Marathon has many; newer versions add more). Errors name the file and
the field: `deploy/marathon-apps/web.yaml: apps[0].healthChecks[1].path: must start with '/'`.

Shared by the render (components/marathon_scaler.py validates the declared apps and renders the ConfigMap) and
the scaler (orchestrator/services/marathon/: reconcile reads the ConfigMap back); the rules themselves are the
contract orchestrator/contracts/marathon_apps.py.

`configmap_data` produces the ConfigMap's data (`apps.json`: the sorted list, pretty-printed so the PR diff
shows one line per changed field); `orchestrator marathon reconcile --apps-file` reads it back in the cluster.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.contracts import marathon_apps as contract
from orchestrator.contracts.marathon_apps import CONFIGMAP_KEY, AppSpec  # noqa: F401 - re-exported
from orchestrator.errors import InputError


def validate_app(raw: Any, file: str, prefix: str = "") -> dict[str, Any]:
    """The app as Marathon will receive it, or InputError `<file>: <prefix><field>: <message>`."""
    try:
        return contract.validate_app(raw)
    except contract.AppDefinitionError as exc:
        where = ".".join(x for x in (prefix, exc.field) if x) or "app"
        raise InputError(f"{file}: {where}: {exc.message}") from None


def load_apps(directory: str | Path) -> list[dict[str, Any]]:
    """Every app under `directory` (*.yaml, *.yml, *.json), sorted by id; InputError names file and field."""
    from orchestrator import strict_yaml

    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"Marathon apps directory {root}: not a directory")
    apps: dict[str, tuple[dict[str, Any], str]] = {}
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file()):
        doc = strict_yaml.load_file(path)  # strict: no duplicate keys, no alias bombs, bounded size
        items = doc.get("apps") if isinstance(doc, dict) and "apps" in doc else [doc]
        prefix = "apps" if isinstance(doc, dict) and "apps" in doc else ""
        if not isinstance(items, list):
            raise InputError(f"{path}: 'apps' must be a list")
        for i, raw in enumerate(items):
            app = validate_app(raw, str(path), f"{prefix}[{i}]" if prefix else "")
            if app["id"] in apps:
                raise InputError(f"{path}: app {app['id']} is already declared in {apps[app['id']][1]}")
            apps[app["id"]] = (app, str(path))
    return [apps[k][0] for k in sorted(apps)]


def configmap_data(apps: list[dict[str, Any]]) -> dict[str, str]:
    try:
        return contract.configmap_data(apps)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def read_apps_file(path: str | Path) -> list[dict[str, Any]]:
    """The mounted ConfigMap key back into definitions (validated again: the file may be edited by hand)."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: cannot read app definitions ({exc})") from None
    if not isinstance(data, list):
        raise InputError(f"{p}: expected a JSON list of app definitions")
    return [validate_app(a, str(p), f"[{i}]") for i, a in enumerate(data)]
