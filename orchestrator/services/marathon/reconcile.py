"""`orchestrator marathon reconcile`: make Marathon match the declared apps, in the cluster.

Why in the cluster and not in `pulumi up`: `pulumi up` usually runs in CI, outside the cluster, where Marathon is
not reachable, and the GitOps delivery mode applies the rendered tree with Argo CD (no Pulumi at all); a Pulumi
dynamic provider would need Marathon reachable from the runner and pickles its provider (with credentials) into
state. The rendered ConfigMap is an ordinary Kubernetes object: schema checks, Argo CD and `orchestrator diff`
handle it, and the PR diff shows app changes.

How a pass works:

- Apps we manage carry two labels: `orchestrator.managed-by=orchestrator` and `orchestrator.spec-hash` (a hash
  of the declared definition, like kubectl's last-applied annotation): a changed declaration (a field added *or
  removed*) changes the hash. Marathon fills in defaults (resources, backoff, upgradeStrategy, health-check
  timings, service ports...), so the live definition is compared only on the fields we declared ("subset
  match"; a declared service port 0 matches any assigned port; labels and env compared exactly): a difference
  there with an unchanged hash is **drift** (someone changed the app in Marathon) — reported and put back.
- Updates are full replacements (`partialUpdate=false`): the repository is the truth, so a removed field goes.
- **The autoscaler owns `instances`** of every app with an autoscaling policy: it is excluded from the hash and
  the comparison, and an update sends the live count (the HPA rule "remove spec.replicas when an HPA exists",
  kubernetes #25238). A new autoscaled app starts at its declared count clamped to the policy's bounds.
- Deletes only with `allow_delete` and only of apps carrying our managed label; otherwise they are reported
  (`skip-delete`) and the command exits 6. A locked app (409) is skipped this pass, never forced.
- A second pass makes 0 changes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from orchestrator.clients.marathon import DeploymentLocked, MarathonClient, MarathonError
from orchestrator.services.marathon.policy import LABEL_PREFIX, AutoscalePolicy

MANAGED_LABEL, MANAGED_VALUE = "orchestrator.managed-by", "orchestrator"
HASH_LABEL = "orchestrator.spec-hash"
EXACT_MAPS = {"labels", "env"}


def spec_hash(definition: dict[str, Any], autoscaled: bool) -> str:
    body = {k: v for k, v in definition.items() if not (autoscaled and k == "instances")}
    labels = {k: v for k, v in (body.get("labels") or {}).items() if k not in (MANAGED_LABEL, HASH_LABEL)}
    body["labels"] = labels
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def desired_definition(declared: dict[str, Any], autoscaled: bool) -> dict[str, Any]:
    out = json.loads(json.dumps(declared))
    out["labels"] = {**(out.get("labels") or {}), MANAGED_LABEL: MANAGED_VALUE,
                     HASH_LABEL: spec_hash(declared, autoscaled)}
    return out


def differences(want: Any, have: Any, path: str = "") -> list[str]:
    """Paths where `have` (live, defaults filled in) does not match `want` (declared)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return [path or "."]
        out: list[str] = []
        for key, value in want.items():
            out += differences(value, have.get(key), f"{path}.{key}" if path else key)
        if path in EXACT_MAPS:
            out += [f"{path}.{k}" for k in have if k not in want]
        return out
    if isinstance(want, list):
        if not isinstance(have, list) or len(want) != len(have):
            return [path]
        out = []
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            out += differences(w, h, f"{path}[{i}]")
        return out
    if path.startswith("portDefinitions[") and path.endswith(".port") and want == 0:
        return []  # 0 = "assign me a service port": any assigned port matches
    if isinstance(want, bool) or isinstance(have, bool):
        return [] if want is have else [path]
    if isinstance(want, int | float) and isinstance(have, int | float):
        return [] if float(want) == float(have) else [path]
    return [] if want == have else [path]


@dataclass
class Change:
    app: str
    action: str  # create | update | delete | skip-delete | locked | error
    reason: str = ""
    fields: list[str] = field(default_factory=list)
    deployment: str = ""


@dataclass
class Plan:
    changes: list[Change]
    unchanged: list[str]

    @property
    def drift(self) -> int:
        return sum(1 for c in self.changes if c.reason == "drift")


class Reconciler:
    def __init__(self, client: MarathonClient, policies: dict[str, AutoscalePolicy] | None = None) -> None:
        self.client = client
        self.policies = policies or {}

    def _autoscaled(self, app_id: str, live_labels: dict[str, str]) -> bool:
        return app_id in self.policies or any(k.startswith(LABEL_PREFIX) and k != LABEL_PREFIX + "heal"
                                              for k in live_labels)

    def plan(self, declared: list[dict[str, Any]]) -> tuple[Plan, dict[str, dict[str, Any]], dict[str, Any]]:
        live = {str(a["id"]): a for a in self.client.list_apps_raw()}
        changes, unchanged, bodies = [], [], {}
        for app in declared:
            app_id = app["id"]
            current = live.get(app_id)
            labels = {**(app.get("labels") or {}), **((current or {}).get("labels") or {})}
            autoscaled = self._autoscaled(app_id, labels)
            want = desired_definition(app, autoscaled)
            if current is None:
                if autoscaled and app_id in self.policies:
                    p = self.policies[app_id]
                    want["instances"] = min(max(int(app.get("instances", 1)), p.min_instances), p.max_instances)
                bodies[app_id] = want
                changes.append(Change(app_id, "create", "declared"))
                continue
            compare = {k: v for k, v in want.items() if not (autoscaled and k == "instances")}
            diff = differences(compare, current)
            if not diff:
                unchanged.append(app_id)
                continue
            live_hash = (current.get("labels") or {}).get(HASH_LABEL)
            reason = "drift" if live_hash == want["labels"][HASH_LABEL] else "spec-changed"
            if autoscaled:
                want["instances"] = int(current.get("instances", want.get("instances", 1)))
            bodies[app_id] = want
            changes.append(Change(app_id, "update", reason, diff[:20]))
        declared_ids = {a["id"] for a in declared}
        for app_id, current in sorted(live.items()):
            if app_id not in declared_ids and (current.get("labels") or {}).get(MANAGED_LABEL) == MANAGED_VALUE:
                changes.append(Change(app_id, "delete", "no longer declared"))
        return Plan(changes, unchanged), bodies, live

    def apply(self, declared: list[dict[str, Any]], *, allow_delete: bool = False, dry_run: bool = False) -> Plan:
        plan, bodies, _ = self.plan(declared)
        for change in plan.changes:
            if change.action == "delete" and not allow_delete:
                change.action = "skip-delete"
                continue
            if dry_run:
                continue
            try:
                if change.action == "delete":
                    change.deployment = self.client.delete_app(change.app)
                else:
                    change.deployment = self.client.put_app(bodies[change.app], partial=False)
            except DeploymentLocked:
                change.action, change.reason = "locked", "a deployment is running; next pass"
            except MarathonError as exc:
                change.action, change.reason = "error", str(exc)
        return plan
