"""View documents for GETs (views.py): served from the last render within two ticks, refreshed by the hub
when someone reads them, rendered once for concurrent readers, gzipped once per render."""
from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

from orchestrator.services.api.topology import Topology
from orchestrator.services.api.views import GZIP_ABOVE_BYTES, ViewCache
from tests.api.test_topology_edges import NOW, report


class Counting(Topology):
    def __init__(self) -> None:
        super().__init__(clock=lambda: NOW)
        self.renders = 0

    def render(self, *args: Any, **kwargs: Any) -> Any:
        self.renders += 1
        return super().render(*args, **kwargs)


def hosts(doc: Any) -> set[str]:
    return {n["id"] for n in json.loads(doc.text)["nodes"]}


def test_a_document_is_served_for_two_ticks_then_refreshed_or_rendered() -> None:
    async def scenario() -> None:
        topology = Counting()
        topology.ingest(report(1))
        stale: list[int] = []
        views = ViewCache(topology, tick=1.0, on_stale=lambda: stale.append(1))
        first = await views.get("hosts", "", None)
        assert hosts(first) == {"host:node-1"} and topology.renders == 1
        topology.ingest(report(2))
        # Within a tick: the same render, even though the topology changed.
        assert await views.get("hosts", "", None) is first and topology.renders == 1
        # Between one and two ticks: still that render, and the hub is told to refresh it.
        first.rendered -= 1.5
        assert await views.get("hosts", "", None) is first and stale == [1]
        # The hub's refresh renders it (it was read again) and the next GET gets the new one.
        assert await views.refresh() == 1
        second = await views.get("hosts", "", None)
        assert hosts(second) == {"host:node-1", "host:node-2"} and topology.renders == 2
        # Nothing changed: no refresh. Older than two ticks with a change: the GET renders it itself.
        assert await views.refresh() == 0
        topology.ingest(report(3))
        second.rendered -= 2.5
        third = await views.get("hosts", "", None)
        assert "host:node-3" in hosts(third) and topology.renders == 3

    asyncio.run(scenario())


def test_a_document_read_once_is_not_refreshed() -> None:
    async def scenario() -> None:
        topology = Counting()
        topology.ingest(report(1))
        views = ViewCache(topology)
        await views.get("hosts", "node-1", None)   # a one-off search
        topology.ingest(report(2))
        assert await views.refresh() == 0 and topology.renders == 1

    asyncio.run(scenario())


def test_concurrent_readers_share_one_render_and_large_documents_are_gzipped_once() -> None:
    async def scenario() -> None:
        topology = Counting()
        for i in range(1, 220):
            topology.ingest(report(i, peers=(i + 1,)))
        views = ViewCache(topology)
        docs = await asyncio.gather(*(views.get("processes", "", None) for _ in range(5)))
        assert topology.renders == 1 and all(d is docs[0] for d in docs)
        doc = docs[0]
        assert len(doc.text) > GZIP_ABOVE_BYTES, "the test topology must be above the gzip threshold"
        assert doc.gzipped is not None and gzip.decompress(doc.gzipped) == doc.text
        small = await views.get("hosts", "node-1", None)
        assert small.gzipped is None

    asyncio.run(scenario())
