"""View documents for `GET /api/v1/topology/{view}`: one render per view, search and grouping per tick,
kept ready so that a GET sends bytes and never waits for a render.

- The hub refreshes a view document right after the tick that changed the topology when it was read
  again after its last render and asked for in the last HOT_SECONDS (a page that polls, not a one-off
  search), so the next GET finds it rendered.
- A GET that finds its document older than a tick serves it while it is younger than two ticks (its
  refresh is due at this tick: the hub is told); an older or missing document is rendered for that GET.
- Only the node selection runs on the event loop (it reads the live store; per-probe caches make it
  cheap). Joining the cached texts, encoding and gzip run in a worker thread (zlib releases the GIL), so
  other requests are served meanwhile. Large documents are gzipped once per render, for every client.
- Concurrent GETs of a document being rendered wait for that one render.
"""
from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from orchestrator.contracts.search import parse
from orchestrator.contracts.ws import TICK_SECONDS
from orchestrator.services.api.topology import Render, Topology

GZIP_ABOVE_BYTES = 64 * 1024   # smaller documents are sent as they are
HOT_SECONDS = 30.0             # a document nobody asked for in this long is no longer refreshed
MAX_DOCUMENTS = 256            # distinct (view, search, group_by) kept; a flood of searches cannot grow memory
Key = tuple[str, str, str | None]


@dataclass
class Document:
    version: int
    rendered: float            # monotonic
    text: bytes
    gzipped: bytes | None      # None when below GZIP_ABOVE_BYTES
    served: bool = False       # read by a GET after its render: worth refreshing


class ViewCache:
    def __init__(self, topology: Topology, *, tick: float = TICK_SECONDS,
                 on_stale: Callable[[], None] | None = None) -> None:
        self.topology = topology
        self.tick = tick
        self.on_stale = on_stale or (lambda: None)
        self.documents: dict[Key, Document] = {}
        self.requested: dict[Key, float] = {}
        self._pending: dict[Key, asyncio.Future[Document]] = {}

    async def get(self, view: str, search: str, group_by: str | None) -> Document:
        """The view's document (the search must already be valid)."""
        key: Key = (view, search, group_by)
        now = time.monotonic()
        if len(self.requested) >= MAX_DOCUMENTS and key not in self.requested:
            for old in sorted(self.requested, key=self.requested.__getitem__)[: MAX_DOCUMENTS // 2]:
                del self.requested[old]
                self.documents.pop(old, None)
        self.requested[key] = now
        doc = self.documents.get(key)
        if doc is not None:
            age = now - doc.rendered
            if doc.version == self.topology.version or age < self.tick:
                doc.served = True
                return doc
            if age < 2 * self.tick:
                doc.served = True
                self.on_stale()   # its refresh is due at this tick: the hub renders it
                return doc
        return await self._render(key)

    async def refresh(self) -> int:
        """Re-render the documents requested lately whose topology changed; forget the others."""
        now = time.monotonic()
        renders = 0
        for key, asked in list(self.requested.items()):
            if now - asked > HOT_SECONDS:
                del self.requested[key]
                self.documents.pop(key, None)
                continue
            doc = self.documents.get(key)
            if doc is not None and doc.served and doc.version != self.topology.version:
                await self._render(key)
                renders += 1
        return renders

    async def _render(self, key: Key) -> Document:
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Document] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            view, search, group_by = key
            version = self.topology.version
            result = self.topology.render(view, parse(search), group_by)   # on the loop: reads the store
            fields = {"view": view, "generated_at": time.time(), "search": search, "group_by": group_by,
                      "total_nodes": result.total}
            text, gzipped = await anyio.to_thread.run_sync(_encode, result, fields)
            doc = Document(version, time.monotonic(), text, gzipped)
            if len(self.documents) >= MAX_DOCUMENTS and key not in self.documents:
                self.documents.clear()
            self.documents[key] = doc
            future.set_result(doc)
            return doc
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()   # retrieved: no "never retrieved" warning when nobody else waited
            raise
        finally:
            del self._pending[key]


def _encode(result: Render, fields: dict[str, Any]) -> tuple[bytes, bytes | None]:
    text = result.body(**fields).encode()
    # Level 1: 7.5 MiB of JSON (10,000 containers) in ~50 ms to about a quarter; higher levels cost 3-5x more.
    return text, gzip.compress(text, compresslevel=1) if len(text) > GZIP_ABOVE_BYTES else None
