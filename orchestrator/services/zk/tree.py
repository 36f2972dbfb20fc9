"""ZooKeeper trees read in bulk, compared and written back: the core shared by copy, sync, verify and restore.

Kazoo spends about 0.2 ms of Python CPU per request, so everything here is pipelined (many requests in
flight, results collected in order) and writes go out in `multi` batches, which cost a tenth of that
per operation and let the server commit many creates in one proposal.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import (
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    RolledBackError,
)
from kazoo.retry import KazooRetry
from kazoo.security import ACL, OPEN_ACL_UNSAFE, Id

from orchestrator.errors import InputError
from orchestrator.services.zk.tls import ZkTls, kazoo_kwargs

log = logging.getLogger(__name__)

# ZooKeeper's own subtree (quotas, dynamic config) is never copied.
RESERVED = "/zookeeper"
# Child created and deleted at once to advance a parent's sequence counter (see align_sequences).
PAD_NAME = "orchestrator-zk-sync-pad"
# Ephemeral znodes of the ensemble-identity probe (identity.py); never copied, compared or mirrored.
PROBE_PREFIX = "orchestrator-identity-probe-"
SEQUENTIAL = re.compile(r"\d{10}$")
# Stay well under jute.maxbuffer (1 MiB by default) for one multi request.
MULTI_MAX_BYTES = 512 * 1024
MULTI_MAX_OPS = 200
# Batches in flight: enough to keep the ensemble busy, few enough that a stopped engine leaves little queued.
MAX_INFLIGHT = 8
# Requests in flight per read window; bounds memory on very large trees.
READ_WINDOW = 4000

CONTAINER_OWNER = -0x8000000000000000  # EphemeralType.CONTAINER_EPHEMERAL_OWNER (Long.MIN_VALUE)


class ZkInputError(InputError, ValueError):
    """Bad command input: reported to the user before anything is changed (exit 2)."""


class ZkAccessError(ZkInputError):
    """The session's credentials do not allow reading a node (missing --auth): bad input, nothing changed."""

    def __init__(self, path: str) -> None:
        super().__init__(f"no permission to read {path}")
        self.path = path


def kind_of(ephemeral_owner: int) -> str:
    if ephemeral_owner == 0:
        return "persistent"
    if ephemeral_owner == CONTAINER_OWNER:
        return "container"
    if (ephemeral_owner >> 56) & 0xFF == 0xFF:
        return "ttl"
    return "ephemeral"


def acl_key(acl: Iterable[ACL]) -> tuple[tuple[str, str, int], ...]:
    """ACL in a canonical, order-independent form."""
    return tuple(sorted((a.id.scheme, a.id.id, a.perms) for a in acl))


def acl_text(key: Iterable[Iterable]) -> str:
    return ",".join(f"{s}:{i}:{p}" for s, i, p in key)


def acl_from_key(key: Iterable[Iterable]) -> list[ACL]:
    return [ACL(int(p), Id(s, i)) for s, i, p in key]


@dataclass
class Node:
    data: bytes
    acl: tuple[tuple[str, str, int], ...]
    kind: str
    owner: int = 0
    mtime: int = 0
    cversion: int = 0
    children: list[str] = field(default_factory=list)
    # The zxids of the last data change and of the last child change seen: the sync engine ignores an
    # answer older than what it already applied (reads are sent as events arrive, answered in any batch).
    mzxid: int = 0
    pzxid: int = 0


Tree = dict[str, Node]


def join(parent: str, child: str) -> str:
    return ("" if parent == "/" else parent) + "/" + child


def parent_of(path: str) -> str:
    head = path.rsplit("/", 1)[0]
    return head or "/"


def depth(path: str) -> int:
    return 0 if path == "/" else path.count("/")


def under(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root + "/")


def validate_paths(paths: list[str]) -> list[str]:
    """Normalised subtree roots, or ZkInputError for anything ambiguous."""
    if not paths:
        raise ZkInputError("at least one --path is required")
    out: list[str] = []
    for p in paths:
        if not p.startswith("/") or (p != "/" and (p.endswith("/") or "//" in p)):
            raise ZkInputError(f"invalid znode path {p!r}: absolute, no trailing or double slash")
        if any(part in (".", "..") for part in p.split("/")):
            raise ZkInputError(f"invalid znode path {p!r}: '.' and '..' are not allowed")
        if under(p, RESERVED):
            raise ZkInputError(f"{p!r} is ZooKeeper's own subtree and is never copied")
        out.append(p)
    for a in out:
        for b in out:
            if a != b and under(b, a):
                raise ZkInputError(f"--path {b} is inside --path {a}; give each subtree once")
    if len(set(out)) != len(out):
        raise ZkInputError("the same --path was given twice")
    return out


def parse_auth(items: list[str] | None) -> list[tuple[str, str]]:
    out = []
    for item in items or []:
        scheme, sep, cred = item.partition(":")
        if not sep or not scheme or not cred:
            raise ZkInputError(f"--auth {item!r}: expected SCHEME:CREDENTIAL, e.g. digest:user:password")
        out.append((scheme, cred))
    return out


@dataclass
class Ensemble:
    """One side of a copy: its kazoo session (writes, watches) and how to open bulk readers."""

    hosts: str
    auth: list[tuple[str, str]]
    client: KazooClient
    timeout: float = 10.0
    tls: ZkTls | None = None

    def reader(self):
        from orchestrator.services.zk.wire import BulkReader
        return BulkReader(self.hosts, self.auth, self.timeout, self.tls)

    def read(self, roots: Iterable[str]) -> Tree:
        with self.reader() as r:
            return read_tree(r, roots)

    @property
    def session_id(self) -> int:
        return self.client.client_id[0]

    def close(self) -> None:
        try:
            self.client.stop()
        finally:
            self.client.close()


def connect(hosts: str, auth: list[tuple[str, str]] | None = None, timeout: float = 10.0,
            session_timeout: float = 10.0, tls: ZkTls | None = None, prefer_leader: bool = False) -> Ensemble:
    """A started session that keeps reconnecting forever (the sync engine resynchronises after each);
    over TLS when `tls` is given (the secure client port). `prefer_leader`: try the server that leads (by
    `srvr`) first, at start and after every lost connection, instead of a random one (wire.leader_first)."""
    from orchestrator.services.zk.wire import leader_first
    if not hosts or not hosts.strip():
        raise ZkInputError("empty ZooKeeper connect string")
    try:
        ordered = leader_first(hosts, tls) if prefer_leader else None
        client = KazooClient(hosts=ordered or hosts, timeout=session_timeout, auth_data=auth or None,
                             connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=2.0),
                             randomize_hosts=ordered is None, **kazoo_kwargs(tls))
    except ValueError as exc:
        raise ZkInputError(f"bad connect string {hosts!r}: {exc}") from None
    try:
        client.start(timeout=timeout)
    except Exception:
        client.stop()
        client.close()
        raise
    return Ensemble(hosts, list(auth or []), client, timeout, tls)


def ignored_name(name: str) -> bool:
    """Children that are the tool's own bookkeeping, never part of a copied tree."""
    return name == PAD_NAME or name.startswith(PROBE_PREFIX)


def skipped_path(path: str) -> bool:
    """The reserved /zookeeper tree and the tool's own bookkeeping nodes: never read, copied or followed."""
    return path == RESERVED or path.startswith(RESERVED + "/") or ignored_name(path.rsplit("/", 1)[-1])


def node_from_replies(got_data, got_acl) -> tuple[Node, int] | None:
    if isinstance(got_data, NoNodeError) or isinstance(got_acl, NoNodeError):
        return None
    for got in (got_data, got_acl):
        if isinstance(got, Exception):
            raise got
    data, stat = got_data
    return Node(data or b"", acl_key(got_acl[0]), kind_of(stat.ephemeralOwner), stat.ephemeralOwner,
                stat.mtime, stat.cversion, mzxid=stat.mzxid, pzxid=stat.pzxid), stat.numChildren


def read_tree(reader, roots: Iterable[str]) -> Tree:
    """Every znode under `roots` with data, ACL, kind and children, read level by level through a
    BulkReader. Nodes that vanish mid-walk are left out."""
    tree: Tree = {}
    level = list(roots)
    while level:
        nxt: list[str] = []
        for start in range(0, len(level), READ_WINDOW):
            chunk = level[start:start + READ_WINDOW]
            got = reader.get(chunk)
            parents = []
            for i, p in enumerate(chunk):
                if isinstance(got[2 * i], NoAuthError) or isinstance(got[2 * i + 1], NoAuthError):
                    raise ZkAccessError(p)
                found = node_from_replies(got[2 * i], got[2 * i + 1])
                if found is not None:
                    tree[p] = found[0]
                    if found[1]:
                        parents.append(p)
            for p, kids in zip(parents, reader.children(parents), strict=True):
                if isinstance(kids, NoNodeError):
                    tree.pop(p, None)
                    continue
                if isinstance(kids, NoAuthError):
                    raise ZkAccessError(p)
                if isinstance(kids, Exception):
                    raise kids
                tree[p].children = sorted(c for c in kids if not skipped_path(join(p, c)))
                nxt.extend(join(p, c) for c in tree[p].children)
        level = nxt
    return tree


def read_node_async(client: KazooClient, path: str, watcher: Callable) -> tuple:
    """The three pipelined requests watch_tree reads a node with (data and children leave watches)."""
    return (client.get_async(path, watch=watcher), client.get_acls_async(path),
            client.get_children_async(path, watch=watcher))


def watch_tree(client: KazooClient, roots: Iterable[str], watcher: Callable,
               sent: dict[str, tuple] | None = None) -> Tree:
    """Like read_tree but through the kazoo session, leaving a data and a child watch on every node.
    For the small subtrees that appear during continuous sync. `sent`: read_node_async requests already
    sent for some of the roots (they are used instead of asking again)."""
    tree: Tree = {}
    level = list(roots)
    sent = sent or {}
    while level:
        pending = [(p, *(sent.get(p) or read_node_async(client, p, watcher))) for p in level]
        sent = {}
        level = []
        for p, r_data, r_acl, r_kids in pending:
            try:
                data, stat = r_data.get()
                acl, _ = r_acl.get()
                kids = r_kids.get()
            except NoNodeError:
                continue
            node = Node(data or b"", acl_key(acl), kind_of(stat.ephemeralOwner), stat.ephemeralOwner,
                        stat.mtime, stat.cversion, sorted(c for c in kids if not skipped_path(join(p, c))),
                        stat.mzxid, stat.pzxid)
            tree[p] = node
            level.extend(join(p, c) for c in node.children)
    return tree


def subtree(tree: Tree, root: str) -> list[str]:
    """Paths of `tree` under `root` (root included), parents before children."""
    out, stack = [], [root]
    while stack:
        p = stack.pop()
        if p in tree:
            out.append(p)
            stack.extend(join(p, c) for c in reversed(tree[p].children))
    return out


# ---------------------------------------------------------------------------------------------------
# Plans: the writes that turn a target tree into the desired one.

@dataclass
class Op:
    kind: str  # create | set | delete | acl
    path: str
    data: bytes = b""
    acl: tuple = ()
    ephemeral: bool = False
    origin: float = 0.0  # when the change happened on the source (unix s); 0 = not a live change

    def size(self) -> int:
        return len(self.data) + len(self.path) + 64


@dataclass
class Plan:
    deletes: list[Op] = field(default_factory=list)
    upserts: list[Op] = field(default_factory=list)  # creates and sets, parents first
    acls: list[Op] = field(default_factory=list)
    # parent path -> the cversion its sequence counter must reach on the target
    sequences: dict[str, int] = field(default_factory=dict)
    # persistent target nodes replaced by mirrored ephemeral ones: gone once the engine's session ends
    ephemeralized: set[str] = field(default_factory=set)

    @property
    def ops(self) -> list[Op]:
        return self.deletes + self.upserts + self.acls

    def __len__(self) -> int:
        return len(self.deletes) + len(self.upserts) + len(self.acls)

    def removals(self) -> list[str]:
        """Target nodes the plan deletes for good: a delete not followed by a create of the same path, or a
        persistent node replaced by an ephemeral one (it vanishes with the engine's session)."""
        created = {op.path for op in self.upserts if op.kind == "create"}
        return [op.path for op in self.deletes if op.path not in created or op.path in self.ephemeralized]

    def counts(self) -> dict[str, int]:
        """creates (new paths), sets, deletes (for good), replaced (deleted and created again: kind or owner
        changes), acls."""
        removed = set(self.removals())
        replaced = sum(1 for op in self.deletes if op.path not in removed)
        return {"creates": sum(1 for op in self.upserts if op.kind == "create") - replaced,
                "sets": sum(1 for op in self.upserts if op.kind == "set"),
                "deletes": len(removed), "replaced": replaced, "acls": len(self.acls)}

    def summary(self) -> str:
        c = self.counts()
        return (f"{c['creates']} creates, {c['sets']} sets, {c['deletes']} deletes, {c['replaced']} replaced, "
                f"{c['acls']} ACL changes")

    def describe(self, shown: int = 10) -> list[str]:
        """The first `shown` paths of each kind of write, deletes first (they are what an operator checks)."""
        removed = self.removals()
        gone = set(removed)
        replaced = [op.path for op in self.deletes if op.path not in gone]
        recreated = set(replaced)
        groups = [("delete", removed), ("replace", replaced),
                  ("create", [op.path for op in self.upserts if op.kind == "create" and op.path not in recreated]),
                  ("set", [op.path for op in self.upserts if op.kind == "set"]),
                  ("acl", [op.path for op in self.acls])]
        out = []
        for kind, paths in groups:
            out += [f"  {kind} {p}" for p in paths[:shown]]
            if len(paths) > shown:
                out.append(f"  … and {len(paths) - shown} more {kind}s")
        return out


def wanted(node: Node, ephemeral: str) -> bool:
    """Whether a source node belongs on the target under the ephemeral policy ('mirror' or 'skip')."""
    return node.kind != "ephemeral" or ephemeral == "mirror"


def plan_reconcile(desired: Tree, target: Tree, roots: Iterable[str], ephemeral: str = "mirror",
                   my_session: int | None = None) -> Plan:
    """Writes that make `target` equal to `desired` under `roots` (source wins).

    Target ephemeral nodes that have no desired counterpart and belong to another session are left
    alone: they are live sessions on the target (e.g. a master on B taking part in an election).
    A mirrored ephemeral held by another session (a previous run of the engine) is re-created under ours,
    otherwise it would vanish when that old session expires.
    """
    plan = Plan()
    want = {p: n for p, n in desired.items() if wanted(n, ephemeral)}
    doomed: set[str] = set()
    for root in roots:
        for p in reversed(subtree(target, root)):  # children first
            t = target[p]
            d = want.get(p)
            if d is None:
                if t.kind == "ephemeral" and t.owner != my_session:
                    continue
                doomed.add(p)
            elif d.kind != t.kind or (t.kind == "ephemeral" and t.owner != my_session):
                doomed.update(subtree(target, p))
                if t.kind != "ephemeral" and d.kind == "ephemeral":
                    plan.ephemeralized.add(p)
    for p in sorted(doomed, key=lambda x: (-depth(x), x)):
        plan.deletes.append(Op("delete", p))
    for root in roots:
        for p in subtree(want, root):
            if p not in want:
                continue
            d = want[p]
            existing = None if p in doomed else target.get(p)
            if existing is None:
                plan.upserts.append(Op("create", p, d.data, d.acl, d.kind == "ephemeral"))
            else:
                if existing.data != d.data:
                    plan.upserts.append(Op("set", p, d.data))
                if existing.acl != d.acl:
                    plan.acls.append(Op("acl", p, acl=d.acl))
            if any(SEQUENTIAL.search(c) for c in d.children):
                plan.sequences[p] = d.cversion
    return plan


# ---------------------------------------------------------------------------------------------------
# Applying plans.

@dataclass
class ApplyResult:
    applied: list[tuple[Op, float]] = field(default_factory=list)  # (op, wall time of the ack)
    errors: list[tuple[Op, Exception]] = field(default_factory=list)
    stopped: bool = False  # the stop event ended it early: the target is partial


def units(ops: list[Op]) -> Iterable[list[Op]]:
    """Consecutive small ops grouped into multi batches; an op too big for a multi travels alone."""
    batch: list[Op] = []
    size = 0
    for op in ops:
        big = op.size() > MULTI_MAX_BYTES
        if batch and (big or len(batch) >= MULTI_MAX_OPS or size + op.size() > MULTI_MAX_BYTES):
            yield batch
            batch, size = [], 0
        if big:
            yield [op]
            continue
        batch.append(op)
        size += op.size()
    if batch:
        yield batch


def send_unit(client: KazooClient, unit: list[Op]):
    if len(unit) == 1 and unit[0].size() > MULTI_MAX_BYTES:
        op = unit[0]
        if op.kind == "create":
            return client.create_async(op.path, op.data, acl_from_key(op.acl), ephemeral=op.ephemeral)
        if op.kind == "set":
            return client.set_async(op.path, op.data)
        return client.delete_async(op.path)
    tx = client.transaction()
    for op in unit:
        if op.kind == "create":
            tx.create(op.path, op.data, acl_from_key(op.acl), ephemeral=op.ephemeral)
        elif op.kind == "set":
            tx.set_data(op.path, op.data)
        else:
            tx.delete(op.path)
    return tx.commit_async()


# How long the main thread blocks at a time while waiting for ZooKeeper: a signal the kernel delivers to
# another thread (kazoo's) runs its Python handler only when the main thread executes bytecode again, so an
# untimed wait would leave Ctrl-C/SIGTERM unanswered until ZooKeeper replies (or the connection times out).
SIGNAL_POLL = 0.2


def await_result(async_result: Any) -> Any:
    """`async_result.get()`, waiting in SIGNAL_POLL slices so that signals are acted on promptly."""
    settled(async_result)
    return async_result.get()


def settled(async_result: Any, stop: threading.Event | None = None) -> bool:
    """Wait until the result is in (True), or until `stop` is set (False)."""
    while not async_result.wait(SIGNAL_POLL):
        if stop is not None and stop.is_set():
            return False
    return True


def succeeded(async_result: Any) -> bool:
    try:
        outcome = await_result(async_result)
    except Exception as exc:
        if is_connection_error(exc):
            raise
        return False
    return not (isinstance(outcome, list) and any(isinstance(x, Exception) for x in outcome))


def apply_plan(client: KazooClient, plan: Plan, stop: threading.Event | None = None) -> ApplyResult:
    """Send the plan pipelined, in multi batches; a batch that fails is retried op by op, repairing
    what it can (existing node → made to match, missing parent → created, non-empty → subtree removed).
    Each path occurs at most once per plan, so retrying a batch late cannot reorder writes to a path.
    When `stop` is set, nothing more is sent nor awaited (result.stopped): the target is partial. Commands
    set it from their signal handlers, which only set the event: an exception raised by a handler inside
    kazoo's request path would be swallowed there."""
    result = ApplyResult()
    inflight: deque = deque()
    failed: list[list[Op]] = []

    def settle_one() -> bool:
        unit, r = inflight[0]
        if not settled(r, stop):
            return False
        inflight.popleft()
        if succeeded(r):
            now = time.time()
            result.applied.extend((op, now) for op in unit)
        else:
            failed.append(unit)
        return True

    for unit in units(plan.deletes + plan.upserts):
        if stop is not None and stop.is_set():
            break
        if len(inflight) >= MAX_INFLIGHT and not settle_one():
            break
        inflight.append((unit, send_unit(client, unit)))
    while inflight and settle_one():
        pass
    if stop is not None and stop.is_set():
        result.stopped = True
        return result
    for unit in failed:
        for op in unit:
            apply_one(client, op, result)
    for op in plan.acls:
        apply_one(client, op, result)
    if plan.sequences:
        align_sequences(client, plan.sequences)
    return result


def apply_one(client: KazooClient, op: Op, result: ApplyResult) -> None:
    """One write, the careful way: an existing node is made to match, a missing parent created, a non-empty
    node removed with its subtree. Errors other than connection loss land in result.errors."""
    try:
        if op.kind == "create":
            acl = acl_from_key(op.acl)
            try:
                client.create(op.path, op.data, acl, ephemeral=op.ephemeral)
            except NoNodeError:
                client.ensure_path(parent_of(op.path))
                client.create(op.path, op.data, acl, ephemeral=op.ephemeral)
            except NodeExistsError:
                _replace_existing(client, op)
        elif op.kind == "set":
            try:
                client.set(op.path, op.data)
            except NoNodeError:
                client.ensure_path(parent_of(op.path))
                client.create(op.path, op.data, acl_from_key(op.acl) if op.acl else OPEN_ACL_UNSAFE)
        elif op.kind == "delete":
            try:
                client.delete(op.path)
            except NoNodeError:
                pass
            except NotEmptyError:
                client.delete(op.path, recursive=True)
        elif op.kind == "acl":
            client.set_acls(op.path, acl_from_key(op.acl))
        result.applied.append((op, time.time()))
    except (NoNodeError, NodeExistsError, NotEmptyError, RolledBackError) as exc:
        log.warning("could not apply %s %s: %r", op.kind, op.path, exc)
        result.errors.append((op, exc))
    except Exception as exc:
        if is_connection_error(exc):
            raise
        log.warning("could not apply %s %s: %r", op.kind, op.path, exc)
        result.errors.append((op, exc))


def _replace_existing(client: KazooClient, op: Op) -> None:
    """A create met an existing node: make it match (kind, owner, data, ACL)."""
    data, stat = client.get(op.path)
    acl, _ = client.get_acls(op.path)
    same_kind = (stat.ephemeralOwner != 0) == op.ephemeral
    if op.ephemeral and stat.ephemeralOwner != client.client_id[0]:
        same_kind = False
    if not same_kind:
        client.delete(op.path, recursive=True)
        client.create(op.path, op.data, acl_from_key(op.acl), ephemeral=op.ephemeral)
        return
    if data != op.data:
        client.set(op.path, op.data)
    if acl_key(acl) != op.acl:
        client.set_acls(op.path, acl_from_key(op.acl))


def is_connection_error(exc: Exception) -> bool:
    from kazoo.exceptions import ConnectionClosedError, ConnectionLoss, SessionExpiredError
    from kazoo.handlers.threading import KazooTimeoutError
    return isinstance(exc, (ConnectionLoss, SessionExpiredError, ConnectionClosedError, KazooTimeoutError))


def align_sequences(client: KazooClient, targets: dict[str, int]) -> None:
    """Advance each parent's child counter on the target to at least the source's.

    ZooKeeper numbers a sequential child with its parent's cversion. Mirrored sequential nodes keep
    their source names, so without this a contender that registers directly on the target (a Mesos
    master on B) could get a lower number than the mirrored leader and wrongly believe it leads.
    Each create+delete of a pad child adds 2 to the cversion.
    """
    for parent, wanted_cversion in targets.items():
        try:
            stat = client.exists(parent)
        except NoNodeError:
            continue
        if stat is None or stat.cversion >= wanted_cversion:
            continue
        pad = join(parent, PAD_NAME)
        pairs = (wanted_cversion - stat.cversion + 1) // 2
        sent = []
        for start in range(0, pairs, MULTI_MAX_OPS // 2):
            tx = client.transaction()
            for _ in range(min(MULTI_MAX_OPS // 2, pairs - start)):
                tx.create(pad, b"")
                tx.delete(pad)
            sent.append(tx.commit_async())
        for r in sent:
            await_result(r)


def plan_copy(desired: Tree, target: Ensemble, roots: list[str], ephemeral: str = "mirror") -> Plan:
    """The writes that would make the target's subtrees equal to `desired`; reads only."""
    return plan_reconcile(desired, target.read(roots), roots, ephemeral, target.session_id)


def apply_copy(desired: Tree, target: Ensemble, roots: list[str], plan: Plan,
               stop: threading.Event | None = None) -> ApplyResult:
    """Write a plan from plan_copy, creating the roots' missing parents first."""
    for root in roots:
        if root in desired and parent_of(root) != "/":
            target.client.ensure_path(parent_of(root))
    return apply_plan(target.client, plan, stop)


def reconcile(desired: Tree, target: Ensemble, roots: list[str], ephemeral: str = "mirror"
              ) -> tuple[Plan, ApplyResult]:
    """Make the target's subtrees equal to `desired` (read from the source, or from a snapshot)."""
    plan = plan_copy(desired, target, roots, ephemeral)
    return plan, apply_copy(desired, target, roots, plan)


def delete_tree(target: Ensemble, root: str) -> None:
    """Remove a subtree in pipelined batches (kazoo's recursive delete is one round trip per node)."""
    tree = target.read([root])
    apply_plan(target.client, Plan(deletes=[Op("delete", p) for p in sorted(tree, key=lambda x: (-depth(x), x))]))
