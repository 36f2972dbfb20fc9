"""Resource-level diff of two renders, with the changes Kubernetes cannot apply in place flagged.

Pure: takes two `{tier: [manifest, ...]}` maps (what `render_stack(...).manifests_by_tier` returns)
and classifies every object as added, removed, updated in place or REPLACE(d), and marks the changes
this domain cannot take in place:

- DATA-LOSS RISK: removals and replacements of stateful objects; a workload pointed at another
  ZooKeeper path (`zk_path`), another Mesos work dir or another host path; a namespace or
  cluster-domain change (read from the stack outputs contract, so it is seen in both delivery modes);
- QUORUM CHANGE: a different number of ZooKeeper servers or Mesos masters. A StatefulSet rolls the
  new member list one pod at a time, so old and new majorities coexist and can each elect a leader
  (two leaders, diverging data); the text prints the safe procedure (docs/quorum-changes.md).

Formatting as text or as a PR comment (markdown) lives here too; running git and the renders is
`orchestrator.toolchain.diff_cli`.

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

from orchestrator.contracts import tiers

ADDED, REMOVED, UPDATED, REPLACED = "add", "remove", "update", "replace"
SYMBOL = {ADDED: "+", REMOVED: "-", UPDATED: "~", REPLACED: "+-"}
WORD = {ADDED: "added", REMOVED: "removed", UPDATED: "update", REPLACED: "REPLACE"}
REPLACE_FLAG, DATA_LOSS_FLAG, QUORUM_FLAG = "REPLACE", "DATA-LOSS RISK", "QUORUM CHANGE"

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


# --- this domain's dangers: quorum, ZooKeeper paths, work dirs, host paths -----------------------
# Tiers whose member count is a quorum, with what a member is called in the output.
QUORUM_TIERS = {tiers.ZOOKEEPER.id: "ZooKeeper servers", tiers.MESOS_MASTER.id: "Mesos masters"}
DOCS = "docs/quorum-changes.md"
# The safe procedure per quorum tier, printed with the change (the why is in DOCS).
PROCEDURES: dict[str, tuple[str, ...]] = {
    tiers.ZOOKEEPER.id: (
        "ZooKeeper: change membership through dynamic reconfiguration, one server at a time, never by "
        "rolling a new static server list:",
        "growing: apply this change (the new pods start as non-voting members, the old ones keep their "
        "view), wait until every pod is Ready, then add each new server, one per run, lowest id first: "
        "`orchestrator zk reconfig --connect <ensemble> --superuser-file <file> --add 'server.<id>=…'` "
        "(its line of the rendered zoo.cfg);",
        "shrinking: BEFORE applying this change remove the highest servers one per run "
        "(`orchestrator zk reconfig ... --remove <id>`), check `orchestrator zk reconfig --show`, then apply.",
        f"With GitOps, 'apply' is Argo CD's sync of the zookeeper Application ({DOCS}).",
    ),
    tiers.MESOS_MASTER.id: (
        "Mesos masters: the replicated log must never see more masters than its --quorum allows "
        "(Mesos operational guide, 'Changing the master quorum'):",
        "growing 3→5: change 1 sets `mesos_master.quorum_override: 3` with 3 replicas (the running masters "
        "restart one at a time with --quorum=3); once all are Ready, change 2 sets `replicas: 5` and removes "
        "the override;",
        "shrinking 5→3: change 1 sets `replicas: 3` with `quorum_override: 3` (the 2 highest masters stop, "
        "the others keep --quorum=3); change 2 removes the override (--quorum=2, one restart at a time).",
        f"Never change the number of masters and --quorum in the same roll ({DOCS}).",
    ),
}
_ZK_URL = re.compile(r"zk://(?:[^@/\s]*@)?[^/\s]+(/[^\s,]*)?")
_WORK_DIR = re.compile(r"^--work_dir=(.*)$")
_QUORUM_ARG = re.compile(r"^--quorum=(\d+)$")


def pod_spec_of(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec of any pod-bearing kind (Pod, the workload kinds, CronJob, Argo Rollout)."""
    kind = doc.get("kind")
    spec = _get(doc, "spec.jobTemplate.spec.template.spec") if kind == "CronJob" else (
        doc.get("spec") if kind == "Pod" else _get(doc, "spec.template.spec"))
    return spec if isinstance(spec, dict) else None


def _container_strings(pod: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
        out += [str(a) for a in (c.get("command") or []) + (c.get("args") or [])]
        out += [str(e["value"]) for e in c.get("env") or [] if isinstance(e, dict) and "value" in e]
    return out


def zk_paths(doc: dict[str, Any]) -> set[str]:
    """The ZooKeeper chroots (`/marathon`, `/mesos`) a workload's containers are pointed at."""
    pod = pod_spec_of(doc)
    return {m.group(1) or "/" for s in _container_strings(pod) for m in _ZK_URL.finditer(s)} if pod else set()


def work_dirs(doc: dict[str, Any]) -> set[str]:
    pod = pod_spec_of(doc)
    return {m.group(1) for s in _container_strings(pod) if (m := _WORK_DIR.match(s))} if pod else set()


def host_paths(doc: dict[str, Any]) -> dict[str, str]:
    """Volume name → hostPath path of a workload's pods."""
    pod = pod_spec_of(doc)
    return {str(v.get("name")): str(_get(v, "hostPath.path")) for v in (pod or {}).get("volumes") or []
            if isinstance(v, dict) and isinstance(v.get("hostPath"), dict)}


def _sorted(values: set[str]) -> str:
    return ", ".join(sorted(values)) or "(none)"


def domain_risks(kind: str, before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Why an in-place update of this object still loses data (empty: it does not)."""
    risks: list[str] = []
    old, new = zk_paths(before), zk_paths(after)
    if old and old != new:
        risks.append(f"ZooKeeper path {_sorted(old)} → {_sorted(new)}: the {kind} starts on another subtree; "
                     "what the old one holds (Marathon's apps, the Mesos registry and leader election) is "
                     "orphaned. Copy it first (`orchestrator zk copy`), then switch")
    old, new = work_dirs(before), work_dirs(after)
    if old and old != new:
        risks.append(f"Mesos work dir {_sorted(old)} → {_sorted(new)}: each restarted process starts without "
                     "its state (an agent's checkpoints and sandboxes: its tasks are lost; a master's "
                     "replicated log: the registry)")
    old_hp, new_hp = host_paths(before), host_paths(after)
    for name in sorted(set(old_hp) | set(new_hp)):
        b, a = old_hp.get(name), new_hp.get(name)
        if b == a:
            continue
        if b is None:
            risks.append(f"new host path {a} (volume {name!r}): the pods read and write that directory "
                         "of every node")
        elif a is None:
            risks.append(f"host path {b} (volume {name!r}) no longer mounted: what the pods kept there stays "
                         "behind on each node")
        else:
            risks.append(f"host path of volume {name!r} {b} → {a}: the pods see another directory of every "
                         "node; what the old one holds stays behind (and the new one is exposed to the pods)")
    return risks


def quorum_change(tier: str, kind: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    """Why this is a quorum change (empty: it is not)."""
    if kind != "StatefulSet" or tier not in QUORUM_TIERS:
        return ""
    old, new = _get(before, "spec.replicas"), _get(after, "spec.replicas")
    q_old, q_new = (_quorum_flag(d) for d in (before, after))
    members = ""
    if isinstance(old, int) and isinstance(new, int) and old != new:
        members = (f"{QUORUM_TIERS[tier]} {old} → {new} (majority {old // 2 + 1} → {new // 2 + 1}): a rolling "
                   "update runs old and new member lists side by side, and each side can elect its own leader")
    if q_old is not None and q_new is not None and q_old != q_new:
        flag = f"--quorum {q_old} → {q_new}"
        if members:
            return f"{members}; and {flag} in the same roll: masters with either quorum run together"
        return f"{flag} with {new} masters: each master restarts with it, one at a time"
    if members and q_old is not None and q_old == q_new:
        members += (f" (--quorum stays {q_old}: safe only when the --quorum change rolls out as its own "
                    "change, before this one when growing, after it when shrinking)")
    return members


def _quorum_flag(doc: dict[str, Any]) -> int | None:
    pod = pod_spec_of(doc)
    found = [int(m.group(1)) for s in _container_strings(pod) if (m := _QUORUM_ARG.match(s))] if pod else []
    return found[0] if found else None


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
    quorum: str = ""  # why QUORUM CHANGE, empty when none

    @property
    def flags(self) -> list[str]:
        return ([REPLACE_FLAG] if self.action == REPLACED else []) + ([DATA_LOSS_FLAG] if self.data_loss else []) \
            + ([QUORUM_FLAG] if self.quorum else [])

    @property
    def dangerous(self) -> bool:
        return bool(self.flags)


@dataclass(frozen=True)
class StackRisk:
    """A danger of the stack as a whole (not of one object), read from the stack outputs contract."""

    flag: str
    subject: str
    reason: str


@dataclass
class Diff:
    stack: str
    base_label: str
    head_label: str
    changes: list[Change]
    outputs: list[tuple[str, Any, Any]] = field(default_factory=list)  # (key, before, after) of stack outputs
    risks: list[StackRisk] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def data_loss(self) -> int:
        return sum(1 for c in self.changes if c.data_loss)

    @property
    def quorum_tiers(self) -> list[str]:
        """Tiers with a quorum change, in the order of QUORUM_TIERS."""
        changed = {c.tier for c in self.changes if c.quorum}
        return [t for t in QUORUM_TIERS if t in changed]

    @property
    def dangerous(self) -> bool:
        return bool(self.risks) or any(c.dangerous for c in self.changes)

    @property
    def exit_code(self) -> int:
        if self.dangerous:
            return EXIT_DANGEROUS
        return EXIT_CHANGES if self.changes or self.outputs else EXIT_NO_CHANGES


def _domain_of(fqdn_port: Any) -> str | None:
    """`zookeeper-client.<ns>.svc.<domain>:2181` → `<domain>`."""
    host = str(fqdn_port).rsplit(":", 1)[0]
    return host.split(".svc.", 1)[1] if ".svc." in host else None


def _zk_path_of(url: Any) -> str | None:
    match = _ZK_URL.match(str(url))
    return (match.group(1) or "/") if match else None


def stack_risks(base: dict[str, Any], head: dict[str, Any]) -> list[StackRisk]:
    """Namespace, cluster-domain and ZooKeeper-path changes, from the outputs contract of both sides (the
    contract holds them in both delivery modes, and with authentication on the zk URLs of the pods are in
    Secrets the render does not show)."""
    if not base or not head:
        return []  # a new stack: nothing to lose
    risks: list[StackRisk] = []
    for key in ("namespace", "agents_namespace"):
        if key in base and key in head and base[key] != head[key]:
            risks.append(StackRisk(DATA_LOSS_FLAG, f"{key} {base[key]} → {head[key]}",
                                   "every object is deleted from the old namespace and created in the new one; "
                                   "the old namespace's claims (ZooKeeper's data, the Mesos registry, Prometheus) "
                                   "go with it and the new ensemble starts empty"))
    old_d, new_d = _domain_of(base.get("zookeeper_client_service")), _domain_of(head.get("zookeeper_client_service"))
    if old_d and new_d and old_d != new_d:
        risks.append(StackRisk(DATA_LOSS_FLAG, f"cluster domain {old_d} → {new_d}",
                               "every FQDN changes at once: ZooKeeper's server list (rolled one pod at a time, "
                               "like a quorum change), the connect strings and the masters' hostnames; names "
                               "under a domain the cluster does not serve resolve nowhere and the ensemble "
                               "loses quorum"))
    for key, who in (("mesos_zk_url", "Mesos (registry, leader election)"), ("marathon_zk_url", "Marathon (apps)")):
        old_p, new_p = _zk_path_of(base.get(key, "")), _zk_path_of(head.get(key, ""))
        if old_p and new_p and old_p != new_p:
            risks.append(StackRisk(DATA_LOSS_FLAG, f"{key} path {old_p} → {new_p}",
                                   f"{who} starts on an empty subtree; the state under {old_p} is orphaned. "
                                   "Copy it first (`orchestrator zk copy`), then switch"))
    return risks


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
        losses = []
        if action == REPLACED and key.kind == "StatefulSet":
            policy = _get(before, "spec.persistentVolumeClaimRetentionPolicy.whenDeleted") or "Retain"
            losses.append("the StatefulSet is deleted and re-created: every pod stops at once, and " +
                          ("its claims are deleted with it (whenDeleted: Delete)" if policy == "Delete" else
                           "its claims outlive it (whenDeleted: Retain) but keep their old spec"))
        elif action == REPLACED and key.kind == "PersistentVolumeClaim":
            losses.append("the claim is deleted and re-created: its volume is released (or deleted, per reclaim "
                          "policy)")
        losses += domain_risks(key.kind, before, after)
        changes.append(Change(key, action, tier, before, after, paths, reasons, "; ".join(losses),
                              quorum_change(tier, key.kind, before, after)))
    outputs = []
    b_out, h_out = base_outputs or {}, head_outputs or {}
    for k in sorted(set(b_out) | set(h_out)):
        if b_out.get(k) != h_out.get(k):
            outputs.append((k, b_out.get(k), h_out.get(k)))
    return Diff(stack, base_label, head_label, changes, outputs, stack_risks(b_out, h_out))


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
    if diff.quorum_tiers:
        text += f"; QUORUM CHANGE of {' and '.join(QUORUM_TIERS[t] for t in diff.quorum_tiers)}"
    if diff.data_loss:
        text += f"; {diff.data_loss} with DATA-LOSS RISK"
    if diff.risks:
        text += f"; {len(diff.risks)} stack-wide risk(s)"
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


def procedure_lines(diff: Diff) -> list[str]:
    """The safe procedure of each quorum change, in order."""
    return [line for t in diff.quorum_tiers for line in PROCEDURES[t]]


def format_text(diff: Diff) -> str:
    lines = [f"stack {diff.stack}: {diff.base_label} → {diff.head_label}: {headline(diff)}"]
    for r in diff.risks:
        lines.append(f"  !  [{r.flag}] {r.subject}: {r.reason}")
    for c in diff.changes:
        flags = "".join(f"  [{f}]" for f in c.flags)
        lines.append(f"  {SYMBOL[c.action]:<2} {c.key}  ({c.tier}){flags}")
        for reason in c.reasons:
            lines.append(f"       replace: {reason}")
        if c.data_loss:
            lines.append(f"       data-loss risk: {c.data_loss}")
        if c.quorum:
            lines.append(f"       quorum change: {c.quorum}")
        if c.action in (UPDATED, REPLACED):
            lines += ["       " + line for line in unified(c, diff.base_label, diff.head_label)]
    for key, before, after in diff.outputs:
        lines.append(f"  ~  stack output {key}: {before!r} → {after!r}")
    if diff.quorum_tiers:
        lines += ["", f"QUORUM CHANGE: do not apply as a plain rolling update. Safe procedure ({DOCS}):"]
        lines += [f"  - {line}" for line in procedure_lines(diff)]
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
    verdict = ("🛑 **Dangerous changes**: quorum changes, replacements or data at risk" if diff.dangerous
               else "✅ Changes apply in place")
    head += [f"{verdict} — {headline(diff)}.", ""]
    head += [f"- **{r.flag}** — {_cell(r.subject)}: {_cell(r.reason)}" for r in diff.risks]
    if diff.quorum_tiers:
        head += [f"- **{QUORUM_FLAG}** — {_cell(c.quorum)}" for c in diff.changes if c.quorum]
        head += ["", f"**Safe procedure** ([{DOCS}]({DOCS})):", *[f"1. {_cell(line)}" for line in procedure_lines(diff)]]
    if diff.risks or diff.quorum_tiers:
        head.append("")
    head += ["| | Object | Tier | Flags | What changes |", "|---|---|---|---|---|"]
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
        if c.quorum:
            block.append(f"- quorum change: {c.quorum}")
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
