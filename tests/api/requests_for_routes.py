"""One valid request per route of the contract's table, for the authorization matrix and the audit tests."""
from __future__ import annotations

import json
import time
from typing import Any

from orchestrator.contracts.api import Route
from orchestrator.contracts.report import SCHEMA_VERSION

PATH_VALUES = {"{view}": "hosts", "{node_id}": "host:node-1", "{app_id}": "shop/web"}


def full_report(probe: str = "node-1", seq: int = 1, **extra: Any) -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "kind": "full", "probe_id": probe, "seq": seq,
            "timestamp": time.time(), "host": {"hostname": probe, "addresses": ["10.0.0.1"], "cpu_percent": 12.5},
            **extra}


def request_for(route: Route, api: Any, passwords: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    """(method, path, httpx keyword arguments) of a request the route accepts when the caller may call it."""
    path = route.path
    for key, value in PATH_VALUES.items():
        path = path.replace(key, value)
    tail = route.path.rsplit("/", 1)[-1]
    kwargs: dict[str, Any] = {}
    if tail == "login":
        kwargs["json"] = {"account": "vera", "password": passwords["vera"]}
    elif tail == "refresh":
        kwargs["json"] = {"refresh_token": api.token("viewer", kind="refresh")}
    elif tail == "reports":
        kwargs["content"] = json.dumps(full_report()).encode()
        kwargs["headers"] = {"Content-Type": "application/json"}
    elif tail == "scale":
        kwargs["json"] = {"instances": 3}
    elif tail == "restart":
        kwargs["json"] = {}
    elif tail == "policy":
        kwargs["json"] = {"paused": True}
    return route.method, path, kwargs
