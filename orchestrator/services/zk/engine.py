"""The ZooKeeper sync engine: bootstrap copy and continuous, watch-driven replication (source wins)."""
from __future__ import annotations

import bisect
import functools
import logging
import queue
import signal
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kazoo.exceptions import NoNodeError

from orchestrator.services.zk.tree import (
    MAX_INFLIGHT,
    SEQUENTIAL,
    SIGNAL_POLL,
    ApplyResult,
    Ensemble,
    Op,
    Plan,
    Tree,
    align_sequences,
    apply_copy,
    apply_one,
    depth,
    ignored_name,
    join,
    kind_of,
    node_from_replies,
    parent_of,
    plan_copy,
    read_node_async,
    read_tree,
    send_unit,
    skipped_path,
    subtree,
    succeeded,
    under,
    units,
    wanted,
    watch_tree,
)
from orchestrator.services.zk.wire import RecursiveWatches, arm_watches

log = logging.getLogger(__name__)

SWITCH_INTERVAL = 0.0005  # seconds; see run_sync
# How the engine learns of changes on the source: "recursive" = one persistent recursive watch per root
# (ZooKeeper 3.6+); "per-node" = a data and a child watch on every node, set again after each event (any
# version); "auto" = recursive when the source supports it, per-node otherwise.
WATCH_MODES = ("auto", "recursive", "per-node")


@dataclass
class CopyStats:
    source_nodes: int = 0
    skipped_ephemeral: int = 0
    counts: Counter = field(default_factory=Counter)
    errors: list[tuple[Op, Exception]] = field(default_factory=list)
    stopped: bool = False  # ended early by the stop event: the target is partial

    def summary(self) -> str:
        parts = [f"{self.counts[k]} {k}s" for k in ("create", "set", "delete", "acl")]
        return ", ".join(parts) + f", {len(self.errors)} errors"


def bootstrap(source: Ensemble, target: Ensemble, roots: list[str], ephemeral: str = "skip",
              source_tree: Tree | None = None, plan: Plan | None = None,
              stop: threading.Event | None = None) -> CopyStats:
    """One reconciliation pass: read the source, compare with the target, write the differences.
    `plan`: the writes already planned (plan_copy) against `source_tree`, e.g. after a dry run's checks.
    `stop`: once set, no more writes are sent (the target is then partial)."""
    tree = source_tree if source_tree is not None else source.read(roots)
    if plan is None:
        plan = plan_copy(tree, target, roots, ephemeral)
    result = apply_copy(tree, target, roots, plan, stop)
    stats = CopyStats(source_nodes=len(tree), errors=result.errors, stopped=result.stopped)
    if ephemeral == "skip":
        stats.skipped_ephemeral = sum(1 for n in tree.values() if n.kind == "ephemeral")
    stats.counts.update(op.kind for op, _ in result.applied)
    return stats


# ---------------------------------------------------------------------------------------------------
# Continuous sync.

_RESYNC = "resync"
_STOP = "stop"
_REPAIR = "repair"  # a batch the target refused: its paths are rewritten one by one (the item carries the ops)


class SyncEngine:
    """Follows the source subtrees through ZooKeeper watches and applies every change to the target.

    * One worker thread applies changes in batches: everything that arrived while the previous batch was
      being written is read back (re-arming its watches), coalesced per path, and written as one plan, so
      changes to a path are applied in order and a burst costs a few round trips, not one per change.
    * State based: a change is applied by reading the node's current state on the source, never by
      replaying the event, so applying something twice is harmless. That makes recovery simple: after a
      lost connection or session (on either side), an apply error, or every `resync_interval` seconds,
      the engine re-reads both trees, writes the differences and re-arms all watches at the zxid it read
      (SetWatches), so that nothing changed meanwhile can be missed.
    * Ephemeral nodes ('mirror' policy): created on the target as ephemeral nodes of the engine's own
      session, never as persistent ones. They vanish from the target if the engine stops or loses its
      target session, and are re-created by the resync that follows a reconnection.
    * Watches (`watch_mode`): on a ZooKeeper 3.6+ source, one persistent recursive watch per root reports
      every create, change and delete by the node's own path: a change costs one read on the source, sent
      from kazoo's connection thread as the event is read. Older sources (a migration's 3.4 or 3.5) get a
      data and a child watch per node, set again with each read; a create then costs two reads (the
      parent's children, then the node).
    """

    def __init__(self, source: Ensemble, target: Ensemble, roots: list[str], ephemeral: str = "mirror",
                 metrics=None, resync_interval: float = 300.0, trace: list | None = None,
                 watch_mode: str = "auto") -> None:
        from orchestrator.services.zk.metrics import SyncMetrics
        if watch_mode not in WATCH_MODES:
            raise ValueError(f"watch_mode {watch_mode!r}: one of {', '.join(WATCH_MODES)}")
        self.source, self.target, self.roots = source, target, list(roots)
        self.watch_mode = watch_mode
        # Persistent recursive watches: decided at the first resync in "auto" mode (None until then), armed
        # again at every resync.
        self._use_recursive: bool | None = None
        self._recursive: RecursiveWatches | None = None
        # The zxid the last resync read the source at: a create answered with an older czxid, for a node that
        # read did not find, was deleted before it (the event was queued before the resync).
        self._read_zxid = 0
        self.ephemeral = ephemeral
        self.metrics = metrics or SyncMetrics()
        self.resync_interval = resync_interval
        self.model: Tree = {}
        self.queue: queue.Queue = queue.Queue()
        self.bootstrapped = threading.Event()
        self.last_stats: CopyStats | None = None
        self._stopping = threading.Event()
        self._needs_resync = True
        self._last_resync = 0.0
        self._batch_since: float | None = None
        self._thread: threading.Thread | None = None
        # Batches sent to the target and not yet acknowledged; kazoo's completion thread settles them.
        self._acks = threading.Condition()
        self._unacked = 0
        self._mirrored = 0
        # New children's reads sent by _read_new_children, per child path: (the listing answer that showed
        # the child, its read_node_async requests). Only the worker pops them, and only for that answer.
        self._new_reads: dict[str, tuple[Any, tuple, float]] = {}
        # Latency analysis (`zk sync --trace`): per replicated change, its stage timestamps (see _acked).
        self.trace = trace
        self.metrics.follow_pending(self._oldest_pending)
        self.metrics.up.set(0)
        self.metrics.info.labels(source=source.hosts, target=target.hosts, paths=",".join(self.roots)).set(1)

    # -- life cycle ---------------------------------------------------------------------------------
    def start(self) -> SyncEngine:
        self.source.client.add_listener(self._on_state)
        self.target.client.add_listener(self._on_state)
        self._thread = threading.Thread(target=self._run, name="zk-sync", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.queue.put((_STOP, "", 0.0, None))
        if self._thread is not None:
            self._thread.join(timeout=30)
        for side in (self.source, self.target):
            side.client.remove_listener(self._on_state)
        if self._recursive is not None:
            self._recursive.close()
        self.metrics.up.set(0)

    @property
    def recursive(self) -> bool:
        """Whether changes arrive through persistent recursive watches (decided at the first resync)."""
        return bool(self._use_recursive)

    # -- inputs (kazoo threads: never block) ----------------------------------------------------------
    def _on_watch(self, event) -> None:
        """Ask the source for the node's new state at once, re-arming its watch, and queue the pending
        answer with the event: the read's round trip runs while the worker is still busy with earlier
        changes, instead of after it drained the queue (a change then waits for one round trip, not two).
        Answers come back in request order, so the worker sees them in event order."""
        from kazoo.protocol.states import EventType
        when, path, kind = time.time(), event.path, event.type
        if not self._under_roots(path):
            return
        client, watch = self.source.client, self._on_watch
        try:
            if kind == EventType.CHANGED:
                read = client.get_async(path, watch=watch)
            elif kind == EventType.CHILD:
                read = client.get_children_async(path, watch=watch, include_data=True)
                read.rawlink(functools.partial(self._read_new_children, path))
            elif kind == EventType.CREATED or (kind == EventType.DELETED and path in self.roots):
                read = client.exists_async(path, watch=watch)  # a root: watched even while it is missing
            else:
                read = None  # a deleted node: nothing to read
        except Exception:  # the session is closing: the resync after reconnecting re-reads everything
            log.debug("could not read %s back after its event", path, exc_info=True)
            self.queue.put((_RESYNC, "", when, None))
            return
        self.queue.put((kind, path, when, read))

    def _on_event(self, kind: int, path: str) -> None:
        """A persistent recursive watch's event, in kazoo's connection thread as it is read: send the read
        of the node's new state at once (answered after every change reported so far) and queue it."""
        from kazoo.protocol.states import EVENT_TYPE_MAP, EventType
        when, event = time.time(), EVENT_TYPE_MAP[kind]
        if skipped_path(path):
            return
        client = self.source.client
        try:
            if event == EventType.CHANGED:
                read = client.get_async(path)
            elif event == EventType.CREATED:
                parent = parent_of(path) if SEQUENTIAL.search(path) and path not in self.roots else None
                read = (client.get_async(path), client.get_acls_async(path),
                        client.exists_async(parent) if parent else None)  # its cversion numbers the sequence
            else:
                read = None
        except Exception:  # the session is closing: the resync after reconnecting re-reads everything
            log.debug("could not read %s after its event", path, exc_info=True)
            self.queue.put((_RESYNC, "", when, None))
            return
        self.queue.put((event, path, when, read))

    def _read_new_children(self, parent: str, listing) -> None:
        """In kazoo's completion thread, as soon as a children list arrives: send the reads of the children
        the model does not know yet, so a create costs the worker no second round trip of its own. The model
        is the worker's; a child it adds or removes meanwhile only makes a read useless (the worker reads
        again what it does not find here), never wrong: the worker uses these reads for this answer only."""
        if getattr(listing, "taken", False):
            return  # the worker already has it and sends the reads itself: do not ask twice
        try:
            kids, _ = listing.get()
        except Exception:
            return  # the worker meets the same error
        node = self.model.get(parent)
        if node is None:
            return
        known = set(node.children)
        for c in kids:
            path = join(parent, c)
            if c not in known and not ignored_name(c) and path not in self.model:
                self._new_reads[path] = (listing, read_node_async(self.source.client, path, self._on_watch),
                                         time.monotonic())

    def _on_state(self, state) -> None:
        from kazoo.client import KazooState
        if state == KazooState.CONNECTED:
            # Watches live on the server connection; kazoo does not restore them, so re-read everything.
            self.queue.put((_RESYNC, "", time.time(), None))
        else:
            self.metrics.up.set(0)

    def _oldest_pending(self) -> float | None:
        with self.queue.mutex:
            head = self.queue.queue[0][2] if self.queue.queue else None
        candidates = [t for t in (self._batch_since, head) if t]
        return min(candidates) if candidates else None

    # -- worker -------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stopping.is_set():
            if self.resync_interval and time.monotonic() - self._last_resync > self.resync_interval:
                self._needs_resync = True
            if self._needs_resync:
                self._settle()  # the resync reads the target: let the writes sent so far land first
                if not (self.source.client.connected and self.target.client.connected):
                    self._stopping.wait(0.1)
                    continue
                try:
                    self._resync()
                except Exception:
                    log.exception("resynchronisation failed; retrying")
                    self.metrics.errors.inc()
                    self.metrics.up.set(0)
                    self._stopping.wait(0.5)
                continue
            batch = self._drain()
            if not batch:
                continue
            if any(item[0] in (_RESYNC, _STOP) for item in batch):
                self._needs_resync = self._needs_resync or any(item[0] == _RESYNC for item in batch)
                continue
            refused = [op for item in batch if item[0] == _REPAIR for op in item[3]]
            if refused:
                batch = [item for item in batch if item[0] != _REPAIR]
                try:
                    self._repair(refused)
                except Exception:
                    log.exception("repairing refused changes failed; resynchronising")
                    self.metrics.errors.inc()
                    self._needs_resync = True
                    continue
                if not batch:
                    continue
            self._batch_since = min(item[2] for item in batch)
            try:
                self._apply_events(batch)
            except Exception:
                log.exception("applying changes failed; resynchronising")
                self.metrics.errors.inc()
                self._needs_resync = True
            finally:
                self._batch_since = None
            self.metrics.pending.set(self.queue.qsize())

    def _drain(self, timeout: float = 0.2, limit: int = 5000) -> list:
        try:
            items = [self.queue.get(timeout=timeout)] if timeout else [self.queue.get_nowait()]
        except queue.Empty:
            return []
        while len(items) < limit:
            try:
                items.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return items

    def _resync(self) -> None:
        initial = not self.bootstrapped.is_set()
        self._new_reads.clear()
        while True:  # changes queued so far are covered by the read below
            try:
                self.queue.get_nowait()
            except queue.Empty:
                break
        recursive = self._arm_recursive()  # before the read: it reports every change the read may miss
        with self.source.reader() as reader:
            if recursive:
                reader.sync()  # the reader's server has every change made before the watches were armed
            zxid = reader.zxid()
            tree = read_tree(reader, self.roots)
        if not recursive:
            arm_watches(self.source.client, self._on_watch, zxid, data=list(tree), child=list(tree),
                        exist=[r for r in self.roots if r not in tree])
        self._read_zxid = zxid
        stats = bootstrap(self.source, self.target, self.roots, self.ephemeral, source_tree=tree,
                          stop=self._stopping)
        if self._stopping.is_set():
            return  # stopped mid-pass: the target is partial, and not bootstrapped
        self.model = tree
        self.last_stats = stats
        self._needs_resync = False
        self._last_resync = time.monotonic()
        m = self.metrics
        if not initial:
            m.resyncs.inc()
        m.synced.inc(sum(stats.counts.values()))
        m.errors.inc(len(stats.errors))
        m.last_resync.set(time.time())
        self._count_nodes(recount=True)
        m.up.set(1)
        self.bootstrapped.set()
        if self.trace is not None:
            self.trace.append({"kind": "resync", "at": time.time(), "initial": initial})
        log.info("%s: %d znodes, %s", "bootstrap" if initial else "resync", stats.source_nodes, stats.summary())

    def _arm_recursive(self) -> bool:
        """Arm the persistent recursive watches on the source's current connection (they do not survive a
        reconnection). The first time, a short-lived session asks the source whether it supports them: one
        older than 3.6 answers Unimplemented and closes that connection, never the engine's; "auto" then
        follows it with per-node watches for good, "recursive" refuses."""
        from kazoo.exceptions import UnimplementedError
        if self.watch_mode == "per-node" or self._use_recursive is False:
            return False
        if self._use_recursive is None:
            with self.source.reader() as probe:
                supported = probe.knows_add_watch(self.roots[0])
            if not supported:
                return self._without_recursive()
        if self._recursive is None:
            self._recursive = RecursiveWatches(self.source.client, self.roots, self._on_event)
        try:
            self._recursive.add()
        except UnimplementedError:  # the probe reached a newer server than the session's (a mixed ensemble)
            self._recursive.close()
            self._recursive = None
            self._without_recursive()
            raise RuntimeError("the source's server refused persistent recursive watches; resynchronising "
                               "with a watch per node") from None
        self._use_recursive = True
        return True

    def _without_recursive(self) -> bool:
        if self.watch_mode == "recursive":
            raise RuntimeError("the source ZooKeeper does not support persistent recursive watches (older "
                               "than 3.6): run with --watch-mode auto or per-node")
        self._use_recursive = False
        log.warning("the source ZooKeeper does not support persistent recursive watches (older than 3.6): "
                    "following changes with a watch per node")
        return False

    def _count_nodes(self, recount: bool = False) -> None:
        if recount:  # O(n): only after a full resync; batches keep the count up to date
            self._mirrored = sum(1 for n in self.model.values() if wanted(n, self.ephemeral))
        self.metrics.znodes.labels(side="source").set(len(self.model))
        self.metrics.znodes.labels(side="target").set(self._mirrored)

    def _under_roots(self, path: str) -> bool:
        return any(under(path, r) for r in self.roots)

    def _apply_events(self, batch: list) -> None:
        """Apply a batch of (event kind, path, time, pending read) items: reads of the same path coalesce
        (the last answer is the newest state, the first event time is the change's age)."""
        if self.recursive:
            self._apply_recursive(batch)
            return
        from kazoo.protocol.states import EventType
        client, watch = self.source.client, self._on_watch
        drained = time.time()
        deleted: dict[str, float] = {}
        changed: dict[str, tuple[float, Any]] = {}
        listed: dict[str, tuple[float, Any]] = {}
        rooted: dict[str, tuple[float, Any]] = {}  # exist watches on roots that were or are missing
        for kind, path, t, read in batch:
            if kind == EventType.DELETED:
                deleted.setdefault(path, t)
            into = {EventType.CHANGED: changed, EventType.CHILD: listed}.get(kind, rooted)
            if read is not None:
                into[path] = (into[path][0] if path in into else t, read)

        r_data = {p: r for p, (_, r) in changed.items() if p not in deleted}
        r_kids = {p: r for p, (_, r) in listed.items() if p not in deleted}
        for r in r_kids.values():
            r.taken = True  # seen by _read_new_children if the worker gets there first (an idle worker does)
        r_roots = {p: r for p, (_, r) in rooted.items()}

        plan = Plan()
        model = self.model
        event: dict[str, float] = {}  # op path -> when its watch event arrived (for the trace)
        for p in sorted(deleted, key=lambda x: (-depth(x), x)):
            self._forget(p, deleted[p], plan, event)

        new_paths: list[str] = []
        sent: dict[str, tuple] = {}  # reads of new children already sent by _read_new_children
        for p, r in r_kids.items():
            try:
                kids, stat = r.get()
            except NoNodeError:
                continue
            node = model.get(p)
            if node is None or stat.pzxid < node.pzxid:  # older than the children already applied
                continue
            kids = sorted(c for c in kids if not ignored_name(c))
            for c in set(node.children) - set(kids):  # deleted before its own event reached us
                for q in reversed(subtree(model, join(p, c))):
                    if wanted(model[q], self.ephemeral):
                        plan.deletes.append(Op("delete", q, origin=listed[p][0]))
                        event[q] = listed[p][0]
                    del model[q]
            for c in kids:
                if join(p, c) not in model:
                    new_paths.append(join(p, c))
                    event[join(p, c)] = listed[p][0]
                    sent_for = self._new_reads.pop(join(p, c), None)
                    if sent_for is not None and sent_for[0] is r:
                        sent[join(p, c)] = sent_for[1]
            node.children, node.cversion, node.pzxid = kids, stat.cversion, stat.pzxid
        for p, r in r_roots.items():
            if r.get() is not None and p not in model:
                new_paths.append(p)
                event[p] = rooted[p][0]

        for p, r in r_data.items():
            try:
                data, stat = r.get()
            except NoNodeError:
                continue
            node = model.get(p)
            if node is None or stat.mzxid <= node.mzxid:  # not newer than the data already applied
                continue
            node.mzxid = stat.mzxid
            if node.data == (data or b""):
                continue
            node.data, node.mtime = data or b"", stat.mtime
            if wanted(node, self.ephemeral):
                plan.upserts.append(Op("set", p, node.data, origin=stat.mtime / 1000.0))
                event[p] = changed[p][0]

        if self._new_reads:  # unused reads: for answers seen now, or sent after the worker was done with theirs
            done, old = set(r_kids.values()), time.monotonic() - 60
            for path, (listing, _, at) in list(self._new_reads.items()):
                if listing in done or at < old:
                    self._new_reads.pop(path, None)
        if new_paths:
            fresh = watch_tree(client, new_paths, watch, sent)
            for p in sorted(fresh, key=lambda x: (depth(x), x)):
                node = fresh[p]
                model[p] = node
                if wanted(node, self.ephemeral):
                    plan.upserts.append(Op("create", p, node.data, node.acl, node.kind == "ephemeral",
                                           origin=node.mtime / 1000.0))
                    event.setdefault(p, event.get(parent_of(p), drained))
                    parent = model.get(parent_of(p))
                    if SEQUENTIAL.search(p) and parent is not None:
                        plan.sequences[parent_of(p)] = parent.cversion

        self._finish(plan, event, drained)

    def _forget(self, path: str, when: float, plan: Plan, event: dict[str, float]) -> None:
        """A node deleted on the source: drop it and what the model has under it, deleting on the target
        what is there."""
        model = self.model
        if path not in model:
            return
        for q in reversed(subtree(model, path)):
            if wanted(model[q], self.ephemeral):
                plan.deletes.append(Op("delete", q, origin=when))
                event[q] = when
            del model[q]
        parent, name = model.get(parent_of(path)), path.rsplit("/", 1)[1]
        if parent is not None and name in parent.children:
            parent.children.remove(name)

    def _finish(self, plan: Plan, event: dict[str, float], drained: float) -> None:
        if plan:
            self._send(plan, (event, drained, time.time()))
            self._mirrored += sum(1 for op in plan.upserts if op.kind == "create") - len(plan.deletes)
        self._count_nodes()

    def _apply_recursive(self, batch: list) -> None:
        """Apply a batch of persistent recursive watch events: (event kind, node path, time, pending read).
        Per path, a delete anywhere in the batch first removes the node (and what the model has under it);
        if the path's last event is not a delete, its newest answer then creates or updates the node.
        Answers no newer than the model are ignored, so a read answered late never undoes a later change."""
        from kazoo.protocol.states import EventType
        drained = time.time()
        model = self.model
        plan = Plan()
        event: dict[str, float] = {}
        first: dict[str, float] = {}      # path -> its first event in the batch (the change's age)
        deleted: dict[str, float] = {}
        created: dict[str, tuple] = {}    # path -> the reads of its last create (data, ACL, parent's stat)
        answers: dict[str, list] = {}     # path -> data reads since its last delete, in event order
        for kind, path, t, read in batch:
            first.setdefault(path, t)
            if kind == EventType.DELETED:
                deleted.setdefault(path, t)
                created.pop(path, None)
                answers.pop(path, None)  # reads sent before the delete: of the node that is gone
            elif kind == EventType.CREATED:
                created[path] = read
                answers.setdefault(path, []).append(read[0])
            else:
                answers.setdefault(path, []).append(read)
        for p in sorted(deleted, key=lambda x: (-depth(x), x)):
            self._forget(p, deleted[p], plan, event)

        for p in sorted(answers, key=lambda x: (depth(x), x)):
            found = []
            for r in answers[p]:
                try:
                    found.append(r.get())
                except NoNodeError:
                    continue  # deleted since: its delete event follows
            if not found:
                continue
            data, stat = max(found, key=lambda answer: answer[1].mzxid)
            data = data or b""
            node = model.get(p)
            if node is None:
                if self._adopt(p, data, stat, created.get(p), plan):
                    event[p] = first[p]
                continue
            if stat.mzxid <= node.mzxid:  # not newer than the data already applied
                continue
            node.mzxid = stat.mzxid
            if node.data == data:
                continue
            node.data, node.mtime = data, stat.mtime
            if wanted(node, self.ephemeral):
                plan.upserts.append(Op("set", p, data, origin=stat.mtime / 1000.0))
                event[p] = first[p]
        self._finish(plan, event, drained)

    def _adopt(self, path: str, data: bytes, stat, reads: tuple | None, plan: Plan) -> bool:
        """A node created on the source (recursive watches): into the model, and onto the target if wanted
        (then True)."""
        if reads is None:
            return False  # a change to a node the model does not have: the resync that rebuilt the model found it gone
        try:
            got_acl = reads[1].get()
        except NoNodeError:
            return False
        if stat.czxid <= self._read_zxid:
            return False  # created before the last resync read the source, which did not find it: deleted since
        model = self.model
        parent = model.get(parent_of(path))
        if parent is None and path not in self.roots:
            return False  # its parent is not followed (bookkeeping) or was deleted since
        found = node_from_replies((data, stat), got_acl)
        if found is None:
            return False
        node = found[0]
        model[path] = node
        if parent is not None:
            name = path.rsplit("/", 1)[1]
            if name not in parent.children:
                bisect.insort(parent.children, name)
            parent_stat = reads[2].get() if reads[2] is not None else None
            if parent_stat is not None:
                parent.cversion = max(parent.cversion, parent_stat.cversion)
                plan.sequences[parent_of(path)] = parent.cversion
        if not wanted(node, self.ephemeral):
            return False
        plan.upserts.append(Op("create", path, data, node.acl, node.kind == "ephemeral", origin=stat.mtime / 1000.0))
        return True

    def _send(self, plan: Plan, stamps: tuple[dict[str, float], float, float] | None = None) -> None:
        """Send without waiting for the acknowledgements: the session applies requests in order, so the
        next events are read and sent while this batch commits. Past MAX_INFLIGHT unacknowledged batches
        the worker waits, and the events arriving meanwhile coalesce in the queue. The rare failed batch
        is repaired path by path from the model once every batch sent before it has landed (_repair)."""
        for unit in units(plan.deletes + plan.upserts):
            with self._acks:
                while self._unacked >= MAX_INFLIGHT and not self._stopping.is_set():
                    self._acks.wait(0.5)
                self._unacked += 1
            sent = (*stamps, time.time()) if stamps is not None and self.trace is not None else None
            send_unit(self.target.client, unit).rawlink(functools.partial(self._acked, unit, sent))
        if plan.sequences:
            align_sequences(self.target.client, plan.sequences)  # reads after the creates (FIFO)

    def _acked(self, unit: list[Op], sent: tuple | None, r) -> None:
        """A batch's outcome, in kazoo's completion thread (never blocks: the result is ready)."""
        when = time.time()
        if sent is not None and self.trace is not None:
            event, drained, planned, handed = sent
            self.trace.extend({"kind": op.kind, "path": op.path, "origin": op.origin,
                               "event": event.get(op.path, drained), "drained": drained, "planned": planned,
                               "sent": handed, "acked": when} for op in unit)
        lost = False
        try:
            ok = succeeded(r)
        except Exception:  # the connection: the resync after reconnecting covers it
            ok, lost = False, True
        m = self.metrics
        if ok:
            m.synced.inc(len(unit))
            for op in unit:
                if op.origin:
                    m.observe(when - op.origin)
        else:
            if self.trace is not None:
                self.trace.append({"kind": "failed", "at": when, "paths": [op.path for op in unit]})
            m.errors.inc()
            # Queued before the count drops: _settle() then sees it queued.
            self.queue.put((_RESYNC, "", when, None) if lost else (_REPAIR, "", when, unit))
        with self._acks:
            self._unacked -= 1
            self._acks.notify_all()

    def _repair(self, refused: list[Op]) -> None:
        """The target refused a batch (ZooKeeper applies a multi all or nothing): a node it should not have
        (created there by someone else), one missing (deleted there), a non-empty node to delete. Rewrite
        those paths one by one to the model's state, the careful way (apply_one), instead of re-reading both
        whole trees. The model may be newer than the refused ops: it is what later batches build on.
        Raises if a path cannot be repaired (the caller resynchronises)."""
        self._settle()  # batches sent after the refused one land first; the repair then has the last word
        client, model = self.target.client, self.model
        paths = list(dict.fromkeys(op.path for op in refused))
        gone = sorted((p for p in paths if not (p in model and wanted(model[p], self.ephemeral))),
                      key=lambda x: (-depth(x), x))
        kept = sorted((p for p in paths if p not in gone), key=lambda x: (depth(x), x))
        result = ApplyResult()
        mine = self.target.session_id
        for p in gone:
            stat = client.exists(p)
            owner = stat.ephemeralOwner if stat is not None else 0
            if owner not in (0, mine) and kind_of(owner) == "ephemeral":
                continue  # a live session's node on the target (an election on B): never ours to delete
            apply_one(client, Op("delete", p), result)
        sequences: dict[str, int] = {}
        for p in kept:
            # Missing parents come back with their own data and ACL, not as empty nodes (ensure_path).
            chain = [q for q in self._ancestors(p) if q in model and client.exists(q) is None]
            for q in [*chain, p]:
                node = model[q]
                apply_one(client, Op("create", q, node.data, node.acl, node.kind == "ephemeral"), result)
            parent = model.get(parent_of(p))
            if SEQUENTIAL.search(p) and parent is not None:
                sequences[parent_of(p)] = parent.cversion
        if result.errors:
            raise RuntimeError(f"{len(result.errors)} of {len(paths)} refused paths could not be repaired, "
                               f"e.g. {result.errors[0][0].path}: {result.errors[0][1]!r}")
        if sequences:
            align_sequences(client, sequences)
        log.warning("the target refused %d changes (a node created or deleted there?); rewrote them one by one",
                    len(paths))

    def _ancestors(self, path: str) -> list[str]:
        """The ancestors of `path` up to its root (included), outermost first."""
        out = []
        while path not in self.roots and parent_of(path) != path:
            path = parent_of(path)
            out.append(path)
        return out[::-1]

    def _settle(self) -> None:
        """Wait until every batch sent to the target is acknowledged (or failed)."""
        with self._acks:
            while self._unacked and not self._stopping.is_set():
                self._acks.wait(0.5)


def run_sync(source: Ensemble, target: Ensemble, roots: list[str], ephemeral: str = "mirror",
             metrics_port: int = 9143, metrics_address: str = "0.0.0.0", resync_interval: float = 300.0,
             metrics: Any = None, server: Any = None, trace_file: str | None = None, watch_mode: str = "auto") -> int:
    """`orchestrator zk sync`: serve /metrics (or use the `metrics` already served by `server`), bootstrap,
    follow changes until SIGTERM or SIGINT. A signal before the bootstrap completed stops its writes and
    ends in Interrupted (exit 130): the target is partial. `trace_file`: where to write, at exit, one JSON
    line of stage timestamps per replicated change (latency analysis, scripts/bench_zk_sync.py)."""
    from orchestrator.services.zk.metrics import SyncMetrics
    if metrics is None or server is None:
        metrics = SyncMetrics()
        server, _ = metrics.serve(metrics_address, metrics_port)
    print(f"metrics: http://{metrics_address}:{server.server_port}/metrics", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # The engine is a relay of threads (kazoo's reader, callback and completion threads per session, the
    # worker): each change hops between them several times, and a thread woken by its socket waits for the
    # GIL up to the switch interval (5 ms by default) while another one computes. A shorter interval bounds
    # that wait per hop; the threads do little work each, so the extra switching costs next to nothing.
    sys.setswitchinterval(SWITCH_INTERVAL)
    engine = SyncEngine(source, target, roots, ephemeral, metrics, resync_interval,
                        trace=[] if trace_file else None, watch_mode=watch_mode).start()
    try:
        while not stop.is_set():
            s = engine.last_stats if engine.bootstrapped.wait(0.2) else None
            if s is not None:
                how = "persistent recursive watches" if engine.recursive else "a watch per node"
                print(f"bootstrapped {s.source_nodes} znodes under {', '.join(roots)} ({s.summary()}); "
                      f"following changes ({how})", flush=True)
                break
        while not stop.wait(SIGNAL_POLL):  # untimed, a signal taken by another thread would go unanswered
            pass
    finally:
        # The sessions are being closed on purpose: kazoo's connection warnings from here on would bury the
        # line that says how the command ended.
        logging.getLogger("kazoo").setLevel(logging.CRITICAL)
        engine.stop()
        if trace_file and engine.trace is not None:
            _write_trace(trace_file, engine.trace)
        server.shutdown()
        source.close()
        target.close()
    if not engine.bootstrapped.is_set():
        from orchestrator.errors import Interrupted
        raise Interrupted("stopped during the initial copy: the target is partial, re-run to finish")
    print("stopped", flush=True)
    return 0


def _write_trace(path: str, records: list[dict]) -> None:
    import json
    with open(path, "w", encoding="utf-8") as out:
        out.writelines(json.dumps(r) + "\n" for r in records)
