"""Resource-level diff of two renders, with the changes Kubernetes cannot apply in place flagged.

Pure: takes two `{tier: [manifest, ...]}` maps (what `render_stack(...).manifests_by_tier` returns)
and classifies every object as added, removed, updated in place or REPLACE(d), and marks removals and
replacements of stateful objects as DATA-LOSS RISK. Formatting as text or as a PR comment (markdown)
lives here too; running git and the renders is `orchestrator.toolchain.diff_cli`.

Which fields force a replacement follows the Kubernetes API's immutability rules, as encoded by the
pulumi-kubernetes provider (`provider/pkg/provider/forcenew.go`): `pulumi up` deletes and re-creates
the object when one of them changes.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml

ADDED, REMOVED, UPDATED, REPLACED = "add", "remove", "update", "replace"
SYMBOL = {ADDED: "+", REMOVED: "-", UPDATED: "~", REPLACED: "+-"}
WORD = {ADDED: "added", REMOVED: "removed", UPDATED: "update", REPLACED: "REPLACE"}
REPLACE_FLAG, DATA_LOSS_FLAG = "REPLACE", "DATA-LOSS RISK"

# Exit codes of `orchestrator diff` (1 is an error, 2 a usage error from argparse).
EXIT_NO_CHANGES, EXIT_ERROR, EXIT_CHANGES, EXIT_DANGEROUS = 0, 1, 3, 4

# Objects whose deletion deletes data: the claims themselves, the StatefulSets that own claim
# templates (and whose pods hold the data), and namespaces (deleting one deletes its claims).
STATEFUL_KINDS = {"StatefulSet", "PersistentVolumeClaim"}
DATA_LOSS_ON_REMOVE = STATEFUL_KINDS | {"Namespace"}

# StatefulSet: the API server rejects updates to any spec field but these.
STATEFULSET_MUTABLE_SPEC = {"replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                            "persistentVolumeClaimRetentionPolicy", "minReadySeconds"}
# kind → field paths (dotted, from the object root) whose change forces a replacement.
IMMUTABLE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec.selector",),
    "DaemonSet": ("spec.selector",),
    "ReplicaSet": ("spec.selector",),
    "Job": ("spec.selector", "spec.template", "spec.completions"),
    "Service": ("spec.type", "spec.clusterIP", "spec.clusterIPs"),
    "PersistentVolumeClaim": ("spec.storageClassName", "spec.accessModes", "spec.volumeMode",
                              "spec.volumeName", "spec.selector", "spec.dataSource", "spec.dataSourceRef"),
    "RoleBinding": ("roleRef",),
    "ClusterRoleBinding": ("roleRef",),
    "Secret": ("type",),
    "StorageClass": ("provisioner", "parameters"),
}


# --- field-level comparison ---------------------------------------------------------------------
def changed_paths(before: Any, after: Any, path: str = "") -> list[str]:
    """Dotted paths (`spec.template.spec.containers[0].image`) where two plain documents differ.
    Lists of different length differ as a whole."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                out.append(sub)
            else:
                out += changed_paths(before[key], after[key], sub)
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        out = []
        for i, (b, a) in enumerate(zip(before, after, strict=True)):  # equal lengths, checked above
            out += changed_paths(b, a, f"{path}[{i}]")
        return out
    return [] if before == after else [path]


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".") or path.startswith(prefix + "[")


def _get(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX: dict[str, Decimal] = {
    "": Decimal(1), "m": Decimal("0.001"), **{s: Decimal(10) ** (3 * i) for i, s in enumerate("kMGTPE", 1)},
    **{s + "i": Decimal(2) ** (10 * i) for i, s in enumerate("KMGTPE", 1)}}


def quantity(value: Any) -> Decimal | None:
    """A Kubernetes quantity ('10Gi', '500M', 3) as a number, or None when it is not one."""
    match = _QUANTITY.match(str(value))
    if not match or match.group(2) not in _SUFFIX:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except InvalidOperation:
        return None


def replace_reasons(kind: str, before: dict[str, Any], after: dict[str, Any], paths: list[str]) -> list[str]:
    """Why Kubernetes cannot apply this change in place (empty: it can)."""
    reasons: list[str] = []
    if kind == "StatefulSet":
        fields = sorted({p.split(".")[1].split("[")[0] for p in paths if p.startswith("spec.") and p.count(".") >= 1}
                        - STATEFULSET_MUTABLE_SPEC)
        reasons += [f"spec.{f} of a StatefulSet is immutable" for f in fields]
    for prefix in IMMUTABLE_PATHS.get(kind, ()):
        if any(_under(p, prefix) for p in paths):
            reasons.append(f"{prefix} of a {kind} is immutable")
    if kind == "PersistentVolumeClaim":
        old, new = (quantity(_get(d, "spec.resources.requests.storage")) for d in (before, after))
        if old is not None and new is not None and new < old:
            reasons.append("spec.resources.requests.storage shrinks: a claim can grow but never shrink")
    if kind in ("ConfigMap", "Secret") and before.get("immutable") is True and any(
            _under(p, k) for p in paths for k in ("data", "binaryData", "stringData")):
        reasons.append(f"data of an immutable {kind} cannot change")
    return reasons


# --- object-level comparison --------------------------------------------------------------------
@dataclass(frozen=True, order=True)
class ObjectKey:
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace + '/' if self.namespace else ''}{self.name}"


def key_of(doc: dict[str, Any]) -> ObjectKey:
    meta = doc.get("metadata") or {}
    return ObjectKey(doc["kind"], meta.get("namespace") or "", meta["name"])


@dataclass
class Change:
    key: ObjectKey
    action: str
    tier: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    paths: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why REPLACE
    data_loss: str = ""  # why DATA-LOSS RISK, empty when none

    @property
    def flags(self) -> list[str]:
        return ([REPLACE_FLAG] if self.action == REPLACED else []) + ([DATA_LOSS_FLAG] if self.data_loss else [])

    @property
    def dangerous(self) -> bool:
        return bool(self.flags)


@dataclass
class Diff:
    stack: str
    base_label: str
    head_label: str
    changes: list[Change]
    outputs: list[tuple[str, Any, Any]] = field(default_factory=list)  # (key, before, after) of stack outputs

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def data_loss(self) -> int:
        return sum(1 for c in self.changes if c.data_loss)

    @property
    def dangerous(self) -> bool:
        return any(c.dangerous for c in self.changes)

    @property
    def exit_code(self) -> int:
        if self.dangerous:
            return EXIT_DANGEROUS
        return EXIT_CHANGES if self.changes or self.outputs else EXIT_NO_CHANGES


def _index(manifests_by_tier: dict[str, list[dict[str, Any]]]) -> dict[ObjectKey, tuple[str, dict[str, Any]]]:
    return {key_of(doc): (tier, doc) for tier, docs in manifests_by_tier.items() for doc in docs}


def compare(stack: str, base: dict[str, list[dict[str, Any]]], head: dict[str, list[dict[str, Any]]],
            base_label: str = "base", head_label: str = "working tree",
            base_outputs: dict[str, Any] | None = None, head_outputs: dict[str, Any] | None = None) -> Diff:
    old, new = _index(base), _index(head)
    changes: list[Change] = []
    for key in sorted(set(old) | set(new)):
        if key not in old:
            changes.append(Change(key, ADDED, new[key][0], after=new[key][1]))
            continue
        tier, before = old[key]
        if key not in new:
            loss = (f"deleting a {key.kind} deletes the data it holds" if key.kind in DATA_LOSS_ON_REMOVE else "")
            if key.kind == "Namespace":
                loss = "deleting a Namespace deletes every object in it, claims included"
            changes.append(Change(key, REMOVED, tier, before=before, data_loss=loss))
            continue
        tier, after = new[key]
        paths = changed_paths(before, after)
        if not paths:
            continue
        reasons = replace_reasons(key.kind, before, after, paths)
        action = REPLACED if reasons else UPDATED
        loss = ""
        if action == REPLACED and key.kind == "StatefulSet":
            policy = _get(before, "spec.persistentVolumeClaimRetentionPolicy.whenDeleted") or "Retain"
            loss = ("the StatefulSet is deleted and re-created: every pod stops at once, and " +
                    ("its claims are deleted with it (whenDeleted: Delete)" if policy == "Delete" else
                     "its claims outlive it (whenDeleted: Retain) but keep their old spec"))
        elif action == REPLACED and key.kind == "PersistentVolumeClaim":
            loss = "the claim is deleted and re-created: its volume is released (or deleted, per reclaim policy)"
        changes.append(Change(key, action, tier, before, after, paths, reasons, loss))
    outputs = []
    b_out, h_out = base_outputs or {}, head_outputs or {}
    for k in sorted(set(b_out) | set(h_out)):
        if b_out.get(k) != h_out.get(k):
            outputs.append((k, b_out.get(k), h_out.get(k)))
    return Diff(stack, base_label, head_label, changes, outputs)


# --- formatting ---------------------------------------------------------------------------------
class _ReadableDumper(yaml.SafeDumper):
    """Multi-line strings (config files in ConfigMaps) as `|` blocks, so their diff reads line by line."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_ReadableDumper.add_representer(str, _str)


def _yaml_lines(doc: dict[str, Any] | None) -> list[str]:
    if doc is None:
        return []
    return yaml.dump(doc, Dumper=_ReadableDumper, sort_keys=False, default_flow_style=False,
                     width=120).splitlines()


def unified(change: Change, base_label: str, head_label: str, context: int = 3) -> list[str]:
    return list(difflib.unified_diff(_yaml_lines(change.before), _yaml_lines(change.after),
                                     f"{base_label}: {change.key}", f"{head_label}: {change.key}",
                                     n=context, lineterm=""))


def headline(diff: Diff) -> str:
    if not diff.changes and not diff.outputs:
        return "no changes"
    counts = [(diff.count(ADDED), "to add"), (diff.count(UPDATED), "to update in place"),
              (diff.count(REPLACED), "to REPLACE"), (diff.count(REMOVED), "to delete")]
    text = ", ".join(f"{n} {what}" for n, what in counts if n) or "no object changes"
    if diff.data_loss:
        text += f"; {diff.data_loss} with DATA-LOSS RISK"
    if diff.outputs:
        text += f"; {len(diff.outputs)} stack output(s) changed"
    return text


def _what(change: Change, limit: int = 4) -> str:
    if change.action == ADDED:
        return "new object"
    if change.action == REMOVED:
        return "deleted"
    shown = change.paths[:limit]
    more = len(change.paths) - len(shown)
    return ", ".join(shown) + (f" (+{more} more)" if more else "")


def format_text(diff: Diff) -> str:
    lines = [f"stack {diff.stack}: {diff.base_label} → {diff.head_label}: {headline(diff)}"]
    for c in diff.changes:
        flags = "".join(f"  [{f}]" for f in c.flags)
        lines.append(f"  {SYMBOL[c.action]:<2} {c.key}  ({c.tier}){flags}")
        for reason in c.reasons:
            lines.append(f"       replace: {reason}")
        if c.data_loss:
            lines.append(f"       data-loss risk: {c.data_loss}")
        if c.action in (UPDATED, REPLACED):
            lines += ["       " + line for line in unified(c, diff.base_label, diff.head_label)]
    for key, before, after in diff.outputs:
        lines.append(f"  ~  stack output {key}: {before!r} → {after!r}")
    return "\n".join(lines) + "\n"


COMMENT_MARKER = "<!-- orchestrator-diff stack={stack} -->"
# GitHub rejects comments over 65,536 characters; keep room for the summary.
MARKDOWN_BUDGET = 60_000


def _fence(text: str, lang: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def format_markdown(diff: Diff) -> str:
    """A PR comment: marker (to update it in place), summary, table, then collapsible details."""
    head = [COMMENT_MARKER.format(stack=diff.stack),
            f"### `orchestrator diff` — stack `{diff.stack}`",
            f"Base `{diff.base_label}` → `{diff.head_label}`. Rendered offline from the program; "
            "secrets are redacted.", ""]
    if not diff.changes and not diff.outputs:
        return "\n".join(head + ["**No changes** to the Kubernetes objects or stack outputs.", ""])
    verdict = ("🛑 **Dangerous changes**: objects will be replaced or deleted with data" if diff.dangerous
               else "✅ Changes apply in place")
    head += [f"{verdict} — {headline(diff)}.", "",
             "| | Object | Tier | Flags | What changes |", "|---|---|---|---|---|"]
    for c in diff.changes:
        flags = ", ".join(f"**{f}**" for f in c.flags)
        head.append(f"| `{SYMBOL[c.action]}` | {c.key.kind} `{c.key.namespace + '/' if c.key.namespace else ''}"
                    f"{c.key.name}` | {c.tier} | {flags} | {_cell(_what(c))} |")
    for key, _, _ in diff.outputs:
        head.append(f"| `~` | stack output `{key}` | | | value |")
    head.append("")
    body: list[str] = []
    used = sum(len(line) + 1 for line in head)
    truncated = 0
    for c in diff.changes:
        if c.action == ADDED:
            continue
        summary = f"{SYMBOL[c.action]} {c.key}" + "".join(f" — {f}" for f in c.flags)
        block = [f"<details><summary>{summary}</summary>", ""]
        block += [f"- replace: {r}" for r in c.reasons]
        if c.data_loss:
            block.append(f"- data-loss risk: {c.data_loss}")
        if c.action in (UPDATED, REPLACED):
            block += ["", _fence("\n".join(unified(c, diff.base_label, diff.head_label)), "diff")]
        block += ["", "</details>", ""]
        size = sum(len(line) + 1 for line in block)
        if used + size > MARKDOWN_BUDGET:
            truncated += 1
            continue
        used += size
        body += block
    if diff.outputs:
        rows = "\n".join(f"{k}: {b!r} → {a!r}" for k, b, a in diff.outputs)
        body += ["<details><summary>~ stack outputs</summary>", "", _fence(rows), "", "</details>", ""]
    if truncated:
        body.append(f"_{truncated} diff(s) left out to fit a comment: run "
                    f"`orchestrator diff --stack {diff.stack}` locally for all of them._")
    return "\n".join(head + body) + "\n"
