"""Marathon app definitions as code: the id rule, what a declared app must satisfy, and the ConfigMap form.

Pure pydantic (errors are ValueError): the render (components/marathon_scaler.py) validates the declared apps
with it, the scaler's reconcile reads the ConfigMap back with it, and the Marathon client checks ids with it.
"""
from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# One path segment of an app or group id (Marathon's PathId rule): lowercase letters, digits, dashes and dots.
SEGMENT = re.compile(r"^(([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])\.)*([a-z0-9]|[a-z0-9][a-z0-9\-]*[a-z0-9])$")


def normalize_app_id(app_id: str) -> str:
    """`shop/web/` → `/shop/web`, each segment checked against Marathon's id rule (ValueError otherwise)."""
    segments = [s for s in str(app_id).strip().split("/") if s]
    if not segments:
        raise ValueError(f"Marathon app id {app_id!r} is empty")
    for segment in segments:
        if not SEGMENT.match(segment):
            raise ValueError(f"Marathon app id {app_id!r}: segment {segment!r} must be lowercase letters, digits, "
                             "'-' and '.', starting and ending with a letter or digit")
    return "/" + "/".join(segments)


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
        return normalize_app_id(value)

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


class AppDefinitionError(ValueError):
    """A declared app is invalid at `field` (dotted path, e.g. `healthChecks[0].path`; "" = the whole app)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field or 'app'}: {message}")
        self.field = field
        self.message = message


def validate_app(raw: Any) -> dict[str, Any]:
    """The app as Marathon will receive it (id normalised, unknown fields kept), or AppDefinitionError."""
    from pydantic import ValidationError

    if not isinstance(raw, dict):
        raise AppDefinitionError("", "an app definition must be a mapping")
    try:
        spec = AppSpec.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        raise AppDefinitionError(field, str(err["msg"]).removeprefix("Value error, ")) from None
    out = dict(raw)
    out["id"] = spec.id
    return out


def configmap_data(apps: list[dict[str, Any]]) -> dict[str, str]:
    text = json.dumps(sorted(apps, key=lambda a: a["id"]), indent=2, sort_keys=True) + "\n"
    if len(text.encode()) > CONFIGMAP_LIMIT_BYTES:
        raise ValueError(f"Marathon app definitions are {len(text.encode())} bytes: over the ConfigMap limit "
                         f"({CONFIGMAP_LIMIT_BYTES}); split them or trim them")
    return {CONFIGMAP_KEY: text}
