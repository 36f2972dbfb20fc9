"""Marathon apps as code: definitions declared in the repository, validated, rendered into a ConfigMap.

Where they live: a directory of YAML/JSON files (default `deploy/marathon-apps/`, one app per file or
`{"apps": [...]}`), named by the stack setting `marathonScaler.appsDir`. Validation covers what breaks at
deploy time in Marathon or silently later: ids (Marathon's rule, unique across files), resources, a command or
container, health checks (protocol, path, timings), constraints (field, operator, value) and string labels/env.
Unknown fields pass through untouched (Marathon has many; newer versions add more). Errors name the file and
the field: `deploy/marathon-apps/web.yaml: apps[0].healthChecks[1].path: must start with '/'`.

`configmap_data` produces the ConfigMap's data (`apps.json`: the sorted list, pretty-printed so the PR diff
shows one line per changed field); `orchestrator marathon reconcile --apps-file` reads it back in the cluster.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.clients.marathon import normalize_app_id
from orchestrator.errors import InputError

CONFIGMAP_KEY = "apps.json"
CONFIGMAP_LIMIT_BYTES = 1_000_000  # Kubernetes caps a ConfigMap at 1 MiB; keep a margin for metadata
CONSTRAINT_OPERATORS = {"UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"}


class HealthCheckSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    protocol: Literal["HTTP", "HTTPS", "TCP", "COMMAND", "MESOS_HTTP", "MESOS_HTTPS", "MESOS_TCP"] = "HTTP"
    path: str | None = None
    portIndex: int | None = Field(default=None, ge=0)
    gracePeriodSeconds: int | None = Field(default=None, ge=0)
    intervalSeconds: int | None = Field(default=None, gt=0)
    timeoutSeconds: int | None = Field(default=None, gt=0)
    maxConsecutiveFailures: int | None = Field(default=None, ge=0)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> HealthCheckSpec:
        if self.timeoutSeconds and self.intervalSeconds and self.timeoutSeconds >= self.intervalSeconds:
            raise ValueError("timeoutSeconds must be smaller than intervalSeconds")
        if self.protocol == "COMMAND" and not (self.model_extra or {}).get("command"):
            raise ValueError("a COMMAND health check needs 'command'")
        return self


class AppSpec(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    instances: int = Field(default=1, ge=0)
    cpus: float = Field(default=1.0, gt=0)
    mem: float = Field(default=128.0, ge=32)
    disk: float = Field(default=0.0, ge=0)
    cmd: str | None = None
    args: list[str] | None = None
    container: dict[str, Any] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str | dict[str, str]] = Field(default_factory=dict)
    constraints: list[list[str]] = Field(default_factory=list)
    healthChecks: list[HealthCheckSpec] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        try:
            return normalize_app_id(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("constraints")
    @classmethod
    def _constraints(cls, value: list[list[str]]) -> list[list[str]]:
        for i, c in enumerate(value):
            if len(c) not in (2, 3) or c[1] not in CONSTRAINT_OPERATORS:
                raise ValueError(f"[{i}] must be [field, operator(, value)] with operator one of "
                                 f"{', '.join(sorted(CONSTRAINT_OPERATORS))}")
            if c[1] in ("LIKE", "UNLIKE", "MAX_PER", "IS") and len(c) != 3:
                raise ValueError(f"[{i}] operator {c[1]} needs a value")
        return value

    @model_validator(mode="after")
    def _runs_something(self) -> AppSpec:
        if not self.cmd and not self.args and not self.container:
            raise ValueError("an app needs 'cmd', 'args' or 'container'")
        if self.cmd and self.args:
            raise ValueError("'cmd' and 'args' are exclusive")
        return self


def validate_app(raw: Any, file: str, prefix: str = "") -> dict[str, Any]:
    """The app as Marathon will receive it (id normalised, unknown fields kept), or InputError
    `<file>: <prefix><field>: <message>`."""
    if not isinstance(raw, dict):
        raise InputError(f"{file}: {prefix or 'app'}: an app definition must be a mapping")
    try:
        spec = AppSpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        where = ".".join(x for x in (prefix, field) if x) or "app"
        message = str(err["msg"]).removeprefix("Value error, ")
        raise InputError(f"{file}: {where}: {message}") from None
    out = dict(raw)
    out["id"] = spec.id
    return out


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
    text = json.dumps(sorted(apps, key=lambda a: a["id"]), indent=2, sort_keys=True) + "\n"
    if len(text.encode()) > CONFIGMAP_LIMIT_BYTES:
        raise InputError(f"Marathon app definitions are {len(text.encode())} bytes: over the ConfigMap limit "
                         f"({CONFIGMAP_LIMIT_BYTES}); split them or trim them")
    return {CONFIGMAP_KEY: text}


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
