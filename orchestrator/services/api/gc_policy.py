"""Garbage-collector policy of the API process.

The live topology at 1,000 hosts is ~300,000 container objects (reports' models, caches); CPython's full
(generation 2) collection walks all of them: 120-150 ms of CPU with the event loop stopped, about once a
minute under ingest (measured in process: one full pass per 4,000 reports; a pass runs whenever a quarter
as many objects again have survived). At 200 requests/s that one stall alone is enough to set a p99. Almost all of
that data is acyclic and freed by reference counting, so the process freezes what it holds every
FREEZE_SECONDS (frozen objects are not scanned; routine collections only walk what is newer), and once every
FULL_SECONDS unfreezes and runs one full collection, which bounds any cyclic garbage caught by a freeze.
"""
from __future__ import annotations

import asyncio
import gc
import time

FREEZE_SECONDS = 10.0
FULL_SECONDS = 600.0


async def run(freeze_every: float = FREEZE_SECONDS, full_every: float = FULL_SECONDS) -> None:
    last_full = time.monotonic()
    try:
        while True:
            await asyncio.sleep(freeze_every)
            if time.monotonic() - last_full >= full_every:
                gc.unfreeze()
                gc.collect()
                last_full = time.monotonic()
            gc.freeze()
    finally:
        gc.unfreeze()
