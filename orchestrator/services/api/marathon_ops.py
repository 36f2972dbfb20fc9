"""Marathon operations for the API, and the autoscaling policies operators edit instead of scaling.

The scaler (orchestrator marathon autoscale) owns the instance count of an app with a policy; the API never
scales such an app directly (409) — the operator edits the policy's bounds or pauses it. Where policies
live: the scaler publishes its effective policies as JSON at `{znode}/policies` and reads operators'
overrides from `{znode}/overrides` (both `{app_id: {...}}`), a ZooKeeper subtree the platform already keeps
reliably. Without a configured znode no app is autoscaled as far as the API knows. The demo keeps them in
memory.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Protocol

from orchestrator.contracts.api import AutoscalePolicy, PolicyEdit


class PolicyError(ValueError):
    """An edit that would make an invalid policy (the message says why)."""


class PolicyStore(Protocol):
    def policies(self) -> dict[str, AutoscalePolicy]: ...

    def edit(self, app_id: str, change: PolicyEdit) -> AutoscalePolicy | None: ...


def apply_edit(policy: AutoscalePolicy, change: PolicyEdit) -> AutoscalePolicy:
    updated = policy.model_copy(update=change.model_dump(exclude_none=True))
    if updated.min_instances > updated.max_instances:
        raise PolicyError(f"min_instances ({updated.min_instances}) is above max_instances "
                          f"({updated.max_instances})")
    return updated


class MemoryPolicyStore:
    def __init__(self, policies: dict[str, AutoscalePolicy] | None = None) -> None:
        self._policies = dict(policies or {})
        self._lock = threading.Lock()

    def policies(self) -> dict[str, AutoscalePolicy]:
        with self._lock:
            return dict(self._policies)

    def edit(self, app_id: str, change: PolicyEdit) -> AutoscalePolicy | None:
        with self._lock:
            policy = self._policies.get(app_id)
            if policy is None:
                return None
            self._policies[app_id] = updated = apply_edit(policy, change)
            return updated


class ZooKeeperPolicyStore:
    """Policies read from `{znode}/policies`; edits merged into `{znode}/overrides` with a version check
    (two operators editing at once: one retries, none is lost)."""

    def __init__(self, client: Any, znode: str) -> None:
        self._zk = client
        self._policies_path = znode.rstrip("/") + "/policies"
        self._overrides_path = znode.rstrip("/") + "/overrides"

    def _read(self, path: str) -> tuple[dict[str, Any], int | None]:
        from kazoo.exceptions import NoNodeError

        try:
            data, stat = self._zk.get(path)
        except NoNodeError:
            return {}, None
        try:
            value = json.loads(data or b"{}")
        except ValueError:
            value = {}
        return (value if isinstance(value, dict) else {}), stat.version

    def policies(self) -> dict[str, AutoscalePolicy]:
        published, _ = self._read(self._policies_path)
        overrides, _ = self._read(self._overrides_path)
        out: dict[str, AutoscalePolicy] = {}
        for app_id, raw in published.items():
            try:
                policy = AutoscalePolicy.model_validate(raw)
                if isinstance(overrides.get(app_id), dict):
                    policy = policy.model_copy(update={k: v for k, v in overrides[app_id].items()
                                                       if k in ("min_instances", "max_instances", "paused")})
                out[app_id] = policy
            except ValueError:
                continue
        return out

    def edit(self, app_id: str, change: PolicyEdit) -> AutoscalePolicy | None:
        from kazoo.exceptions import BadVersionError, NodeExistsError

        for _ in range(5):
            policy = self.policies().get(app_id)
            if policy is None:
                return None
            updated = apply_edit(policy, change)
            overrides, version = self._read(self._overrides_path)
            overrides[app_id] = {**overrides.get(app_id, {}), **change.model_dump(exclude_none=True)}
            data = json.dumps(overrides, sort_keys=True).encode()
            try:
                if version is None:
                    self._zk.create(self._overrides_path, data, makepath=True)
                else:
                    self._zk.set(self._overrides_path, data, version=version)
                return updated
            except (BadVersionError, NodeExistsError):
                continue
        raise PolicyError("the policy changed concurrently five times; try again")


def app_summary(app: Any, policy: AutoscalePolicy | None) -> dict[str, Any]:
    return {"id": app.id, "instances": app.instances, "running": app.tasksRunning, "staged": app.tasksStaged,
            "healthy": app.tasksHealthy, "unhealthy": app.tasksUnhealthy,
            "deployments": [d.id for d in app.deployments],
            "policy": policy.model_dump() if policy else None}
