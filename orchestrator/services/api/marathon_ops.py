"""Marathon operations for the API, and the autoscaling policies operators edit instead of scaling.

The scaler (orchestrator marathon autoscale) owns the instance count of an app with a policy; the API never
scales such an app directly (409) — the operator edits the policy's bounds or pauses it. Policies live in the
scaler's store (a znode pair of its own, or a directory): the API reads the effective policies the scaler
publishes and writes operators' overrides there. Without a configured store no app is autoscaled as far as
the API knows. The demo keeps them in memory.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from orchestrator.contracts.api import AutoscalePolicy, PolicyEdit

if TYPE_CHECKING:
    from orchestrator.services.zk.tls import ZkTls

T = TypeVar("T")


class PolicyError(ValueError):
    """An edit that would make an invalid policy (the message says why)."""


class PolicyUnavailable(RuntimeError):
    """The scaler's store cannot be read or written now (not started yet, ZooKeeper down or refusing us):
    the API answers 503 with this reason, never a 500 nor "no policy" (which would let an app be scaled by hand)."""


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


class ScalerPolicyStore:
    """The scaler's own store (orchestrator/services/marathon/store.py): its effective policies from its
    state document, operators' edits written to its `overrides` document (the scaler applies them next cycle)."""

    def __init__(self, store: Any, zk: Any = None) -> None:
        self._store = store   # orchestrator.services.marathon.store.PolicyStore
        self._zk = zk         # its kazoo client (connecting in the background), when the store is in ZooKeeper

    def _connected(self) -> None:
        # kazoo queues a request made while (re)connecting and waits for the session: answer at once instead.
        if self._zk is not None and not self._zk.connected:
            raise PolicyUnavailable(f"the API's ZooKeeper session to the scaler's store is not connected "
                                    f"({self._zk.state})")

    def policies(self) -> dict[str, AutoscalePolicy]:
        self._connected()
        view = _unavailable_on_failure(self._store.view)
        out: dict[str, AutoscalePolicy] = {}
        for app_id, raw in view.get("policies", {}).items():
            if not isinstance(raw, dict):
                continue
            merged = {**raw, **view.get("overrides", {}).get(app_id, {})}
            try:
                out[app_id] = AutoscalePolicy(min_instances=int(merged["min_instances"]),
                                              max_instances=int(merged["max_instances"]),
                                              paused=bool(merged.get("paused", False)),
                                              metric=merged.get("metric"), target=merged.get("target"))
            except (KeyError, TypeError, ValueError):
                continue
        return out

    def edit(self, app_id: str, change: PolicyEdit) -> AutoscalePolicy | None:
        from orchestrator.errors import InputError

        policy = self.policies().get(app_id)
        if policy is None:
            return None
        updated = apply_edit(policy, change)
        # The scaler's override replaces the app's previous one: carry the fields this edit leaves alone.
        previous = _unavailable_on_failure(self._store.overrides).get(app_id)
        fields = {**(previous.model_dump(exclude_none=True) if previous else {}),
                  **change.model_dump(exclude_none=True)}
        try:
            _unavailable_on_failure(lambda: self._store.update_override(app_id, **fields), invalid_input=True)
        except InputError as exc:
            raise PolicyError(str(exc)) from None
        return updated


def connect_in_background(hosts: str, auth: list[tuple[str, str]] | None, tls: ZkTls | None = None) -> Any:
    """A kazoo client for the scaler's store that connects (and reconnects) in the background, over TLS when
    `tls` is given: the API starts and serves everything else while ZooKeeper is away; policy routes answer
    503 meanwhile."""
    from kazoo.client import KazooClient
    from kazoo.retry import KazooRetry

    from orchestrator.errors import InputError
    from orchestrator.services.zk.tls import kazoo_kwargs

    try:
        client = KazooClient(hosts=hosts, timeout=10.0, auth_data=auth or None,
                             connection_retry=KazooRetry(max_tries=-1, delay=0.5, max_delay=30.0),
                             **kazoo_kwargs(tls))
    except ValueError as exc:
        raise InputError(f"zookeeper.servers {hosts!r}: {exc}") from None
    client.start_async()
    return client


def _unavailable_on_failure(call: Callable[[], T], invalid_input: bool = False) -> T:
    """`call()`, with the store's failures as PolicyUnavailable (the reason kept, e.g. the scaler has not
    started yet, ZooKeeper refused our identity). An InputError passes through only when it is the operator's
    (`invalid_input`: a bad override); otherwise it means a corrupt document, not a bad request."""
    from kazoo.exceptions import KazooException, NoAuthError

    from orchestrator.errors import InputError, OrchestratorError

    try:
        return call()
    except InputError:
        if invalid_input:
            raise
        raise PolicyUnavailable("the scaler's store holds a document the API cannot read") from None
    except NoAuthError:
        raise PolicyUnavailable("ZooKeeper refused the API's identity on the scaler's store (its ACL grants "
                                "the API's digest user; check autoscaler.credentials_file)") from None
    except (OrchestratorError, KazooException, OSError) as exc:
        raise PolicyUnavailable(f"the scaler's store is unavailable: {exc or type(exc).__name__}") from None


def app_summary(app: Any, policy: AutoscalePolicy | None) -> dict[str, Any]:
    return {"id": app.id, "instances": app.instances, "running": app.tasksRunning, "staged": app.tasksStaged,
            "healthy": app.tasksHealthy, "unhealthy": app.tasksUnhealthy,
            "deployments": [d.id for d in app.deployments],
            "policy": policy.model_dump() if policy else None}
