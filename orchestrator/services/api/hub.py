"""Live topology over WebSockets: at most one render per (view, filter, group_by) per tick, shared by
every subscriber of it (contracts/ws.py). A delta is serialised once and the same text goes to every subscriber.

Each connection has a small outgoing queue; a subscriber that falls `MAX_QUEUED` messages behind is closed
(it reconnects and gets a fresh snapshot) so one slow browser never delays the others.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.contracts.search import parse
from orchestrator.contracts.ws import TICK_SECONDS
from orchestrator.services.api.topology import Render, Topology, dumps
from orchestrator.services.api.views import ViewCache

MAX_QUEUED = 32
Key = tuple[str, str, str | None]


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(MAX_QUEUED + 1))
    key: Key | None = None
    overflowed: bool = False

    def offer(self, text: str) -> None:
        if self.queue.qsize() >= MAX_QUEUED:
            self.overflowed = True
            self.queue.put_nowait(None)   # the writer sees None and closes the connection
            return
        self.queue.put_nowait(text)


@dataclass
class Channel:
    key: Key
    subscribers: set[Subscriber] = field(default_factory=set)
    nodes: dict[str, str] = field(default_factory=dict)                  # id -> JSON text
    edges: dict[tuple[str, str], int] = field(default_factory=dict)      # (source, target) -> connections
    render: Render | None = None                                         # the last render (snapshots)
    total: int = 0
    seq: int = 0
    version: int = -1
    generated_at: float = 0.0


def _edge(key: tuple[str, str], connections: int) -> str:
    return dumps({"source": key[0], "target": key[1], "connections": connections})


class Hub:
    def __init__(self, topology: Topology, *, tick: float = TICK_SECONDS,
                 on_render: Callable[[str], None] | None = None, views: ViewCache | None = None) -> None:
        self.topology = topology
        self.views = views      # GET documents, refreshed after the channels at each tick
        self.tick = tick
        self.channels: dict[Key, Channel] = {}
        self.on_render = on_render or (lambda view: None)
        self._task: asyncio.Task[None] | None = None
        self._changed: asyncio.Event | None = None

    # -- subscriptions ----------------------------------------------------------------------------------
    def subscribe(self, sub: Subscriber, view: str, filter_text: str, group_by: str | None) -> str:
        """Subscribe (replacing any previous subscription) and return the snapshot message's text.
        Raises SearchError for a bad filter."""
        query = parse(filter_text)  # validate before touching the old subscription
        self.unsubscribe(sub)
        key: Key = (view, filter_text, group_by)
        channel = self.channels.get(key)
        if channel is None:
            channel = self.channels[key] = Channel(key)
            self._render(channel, query)
        channel.subscribers.add(sub)
        sub.key = key
        head = dumps({"type": "snapshot", "seq": channel.seq, "view": view, "filter": filter_text,
                      "group_by": group_by, "generated_at": channel.generated_at, "total_nodes": channel.total})
        edges = channel.render.edges_json() if channel.render is not None else "[]"
        return f'{head[:-1]},"nodes":[{",".join(channel.nodes.values())}],"edges":{edges}}}'


    def unsubscribe(self, sub: Subscriber) -> None:
        if sub.key is None:
            return
        channel = self.channels.get(sub.key)
        sub.key = None
        if channel is not None:
            channel.subscribers.discard(sub)
            if not channel.subscribers:
                del self.channels[channel.key]

    @property
    def subscriber_count(self) -> int:
        return sum(len(c.subscribers) for c in self.channels.values())

    # -- rendering --------------------------------------------------------------------------------------
    def _render(self, channel: Channel, query: Any) -> str | None:
        """Render the channel's view; returns the delta's fields as JSON text (no braces), or None."""
        view, _, group_by = channel.key
        result = self.topology.render(view, query, group_by)
        self.on_render(view)
        # Nodes and edges are compared by their JSON text: cached per probe, so unchanged ones are equal.
        new_nodes = {n["id"]: t for n, t in zip(result.nodes, result.texts, strict=True)}
        # Edges by their connection count: only the changed ones are serialised (20,000 edges at 1,000 hosts).
        new_edges = {(e["source"], e["target"]): e["connections"] for e in result.edges}
        old_nodes, old_edges = channel.nodes, channel.edges
        add = [t for i, t in new_nodes.items() if i not in old_nodes]
        update = [t for i, t in new_nodes.items() if i in old_nodes and old_nodes[i] != t]
        remove = [i for i in old_nodes if i not in new_nodes]
        # An edge whose connection count changed is re-sent in edges_add (it replaces the old one).
        edges_add = [_edge(k, n) for k, n in new_edges.items() if old_edges.get(k) != n]
        edges_remove = [_edge(k, n) for k, n in old_edges.items() if k not in new_edges]
        channel.nodes, channel.edges, channel.total, channel.render = new_nodes, new_edges, result.total, result
        channel.version = self.topology.version
        channel.generated_at = time.time()
        if not (add or update or remove or edges_add or edges_remove):
            return None
        return (f'"add":[{",".join(add)}],"update":[{",".join(update)}],"remove":{dumps(remove)},'
                f'"edges_add":[{",".join(edges_add)}],"edges_remove":[{",".join(edges_remove)}]')

    def tick_once(self) -> int:
        """Render every channel whose data changed and queue its delta; returns the number of renders."""
        renders = 0
        for channel in list(self.channels.values()):
            if channel.version == self.topology.version or not channel.subscribers:
                continue
            delta = self._render(channel, parse(channel.key[1]))
            renders += 1
            if delta is None:
                continue
            channel.seq += 1
            head = dumps({"type": "delta", "seq": channel.seq, "generated_at": channel.generated_at,
                          "total_nodes": channel.total})
            text = f"{head[:-1]},{delta}}}"
            for sub in list(channel.subscribers):
                sub.offer(text)
        return renders

    def notify(self) -> None:
        """The topology changed (a report was ingested)."""
        if self._changed is not None:
            self._changed.set()

    async def run(self) -> None:
        # Leading-edge throttle: a change after a quiet second is rendered at once (a delta reaches browsers
        # milliseconds after the report); under continuous ingest renders happen once per tick.
        assert self._changed is not None
        last = 0.0
        while True:
            await self._changed.wait()
            wait = last + self.tick - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._changed.clear()
            last = time.monotonic()
            self.tick_once()
            if self.views is not None:
                # The subscribers' writers send this tick's deltas before a GET document's render takes
                # the loop (a containers document at 1,000 hosts: tens of ms).
                await asyncio.sleep(0.01)
                await self.views.refresh()

    def start(self) -> None:
        if self._task is None:
            self._changed = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self.run(), name="topology-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
