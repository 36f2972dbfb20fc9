"""Audit: one JSON line on stdout per mutating call and per failed authentication, and a bounded window.

The stdout lines, collected by the cluster's log pipeline, are the record; the in-memory window behind
`GET /api/v1/audit` is per replica and forgets the oldest entries (docs/api.md "Audit").
"""
from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from typing import IO

from orchestrator.contracts.api import AuditEntry


class AuditLog:
    def __init__(self, window: int, stream: IO[str] | None = None) -> None:
        self._entries: deque[AuditEntry] = deque(maxlen=window)
        self._stream = stream
        self._lock = threading.Lock()
        self.written = 0

    def record(self, *, actor: str, role: str | None, action: str, target: str | None, outcome: str,
               request_id: str, source: str, detail: str | None = None) -> AuditEntry:
        entry = AuditEntry(time=time.time(), actor=actor, role=role, action=action, target=target,
                           outcome=outcome, request_id=request_id, source=source, detail=detail)  # type: ignore[arg-type]
        line = json.dumps({"audit": True, **entry.model_dump()}, separators=(",", ":"))
        with self._lock:
            self._entries.append(entry)
            stream = self._stream or sys.stdout
            stream.write(line + "\n")
            stream.flush()
            self.written += 1
        return entry

    @property
    def window(self) -> int:
        return self._entries.maxlen or 0

    def entries(self, limit: int | None = None) -> list[AuditEntry]:
        with self._lock:
            items = list(self._entries)
        return items[-limit:] if limit else items
