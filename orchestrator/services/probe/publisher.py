"""Ship reports to every API replica: gzip, full every N publishes and deltas between, per-replica state.

- The API URL's host is resolved at every publish to all its addresses (a headless Service names every
  replica), and each address gets the report: any replica, canary pods included, can answer any query.
- Per replica: a delta is sent only when that replica acknowledged the report the delta is based on;
  otherwise (first contact, a failure, a 409 or an ack asking `next: full`) it gets a full report.
- Failures back off per replica (doubling from one interval to `max_backoff`); reports wait in a bounded
  buffer per replica, oldest dropped first and counted. Buffered reports are always full ones: a delta
  cannot be applied after a gap.
"""
from __future__ import annotations

import gzip
import logging
import random
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from orchestrator.contracts.report import (
    REPORT_CONTENT_TYPE,
    Connection,
    DeltaReport,
    FullReport,
    connection_key,
)

log = logging.getLogger("orchestrator.probe")
REPORTS_PATH = "/api/v1/reports"


def encode(report: FullReport | DeltaReport) -> bytes:
    # Defaults are left out: the API fills them in (the schema's rule), and most fields are defaults.
    return gzip.compress(report.model_dump_json(exclude_defaults=True).encode(), compresslevel=6)


def make_delta(base: FullReport, current: FullReport) -> DeltaReport:
    """What changed from `base` to `current` (upserts by key, removed keys)."""
    old_procs = {p.pid: p for p in base.processes}
    new_procs = {p.pid: p for p in current.processes}
    old_conts = {c.id: c for c in base.containers}
    new_conts = {c.id: c for c in current.containers}
    old_conns: dict[Any, Connection] = {connection_key(c): c for c in base.connections}
    new_conns: dict[Any, Connection] = {connection_key(c): c for c in current.connections}
    return DeltaReport(
        kind="delta", base_seq=base.seq, schema_version=current.schema_version, probe_id=current.probe_id,
        seq=current.seq, timestamp=current.timestamp, interval_seconds=current.interval_seconds,
        host=current.host, cost=current.cost,
        # `is` first: unchanged objects are shared between intervals, and equality of models is slower.
        processes=[p for pid, p in new_procs.items() if not _same(old_procs.get(pid), p)],
        removed_processes=[pid for pid in old_procs if pid not in new_procs],
        containers=[c for cid, c in new_conts.items() if not _same(old_conts.get(cid), c)],
        removed_containers=[cid for cid in old_conts if cid not in new_conts],
        connections_added=[c for k, c in new_conns.items() if not _same(old_conns.get(k), c)],
        connections_removed=[c for k, c in old_conns.items() if k not in new_conns],
    )


def _same(old: Any, new: Any) -> bool:
    return old is new or old == new


@dataclass
class Replica:
    address: str
    acked_seq: int | None = None
    failures: int = 0
    next_attempt: float = 0.0
    buffer: deque[tuple[int, bytes]] = field(default_factory=deque)


@dataclass
class PublishStats:
    results: dict[str, int] = field(default_factory=dict)   # result -> count, this publish
    dropped: int = 0
    bytes_full: int = 0
    bytes_delta: int = 0


class Publisher:
    def __init__(self, url: str, token: str | None = None, full_every: int = 4, buffer: int = 8,
                 interval: float = 15.0, max_backoff: float = 120.0, timeout: float = 5.0,
                 resolver: Callable[[str, int], list[str]] | None = None,
                 transport: httpx.BaseTransport | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if not parts.hostname:
            raise ValueError(f"--api {url!r}: no host")
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = (parts.path.rstrip("/") or "") + REPORTS_PATH if not parts.path.endswith(REPORTS_PATH) \
            else parts.path
        self.full_every, self.buffer_size = max(1, full_every), max(1, buffer)
        self.interval, self.max_backoff, self.clock = interval, max_backoff, clock
        self.resolver = resolver or resolve_all
        headers = {"Content-Type": REPORT_CONTENT_TYPE, "Content-Encoding": "gzip",
                   "User-Agent": "orchestrator-probe"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(transport=transport, timeout=timeout, headers=headers)
        self.replicas: dict[str, Replica] = {}
        self.previous: FullReport | None = None
        self.publishes = 0
        self.dropped_total = 0
        self.last_sizes: dict[str, int] = {}

    def close(self) -> None:
        self.http.close()

    def _refresh_replicas(self) -> None:
        try:
            addresses = self.resolver(self.host, self.port)
        except OSError as exc:
            log.warning("cannot resolve %s (%s); keeping the %d known replicas", self.host, exc, len(self.replicas))
            return
        for gone in set(self.replicas) - set(addresses):
            del self.replicas[gone]
        for address in addresses:
            self.replicas.setdefault(address, Replica(address))

    def publish(self, report: FullReport) -> PublishStats:
        stats = PublishStats()
        self._refresh_replicas()
        periodic_full = self.publishes % self.full_every == 0
        self.publishes += 1
        delta_body: bytes | None = None
        if self.previous is not None and not periodic_full:
            delta_body = encode(make_delta(self.previous, report))
            stats.bytes_delta = self.last_sizes["delta"] = len(delta_body)
        full_body: bytes | None = None  # encoded only if a replica needs it (2.5 MB of JSON at 20,000 sockets)
        now = self.clock()
        for replica in list(self.replicas.values()):
            in_sync = (delta_body is not None and not replica.buffer and replica.failures == 0
                       and self.previous is not None and replica.acked_seq == self.previous.seq)
            if in_sync and delta_body is not None:
                body = delta_body
            else:
                if full_body is None:
                    full_body = encode(report)
                    stats.bytes_full = self.last_sizes["full"] = len(full_body)
                body = full_body
            replica.buffer.append((report.seq, body))
            while len(replica.buffer) > self.buffer_size:
                replica.buffer.popleft()
                stats.dropped += 1
            if now >= replica.next_attempt:
                self._deliver(replica, now, stats)
            else:
                stats.results["deferred"] = stats.results.get("deferred", 0) + 1
        self.dropped_total += stats.dropped
        self.previous = report
        return stats

    def _deliver(self, replica: Replica, now: float, stats: PublishStats) -> None:
        while replica.buffer:
            seq, body = replica.buffer[0]
            result = self._post(replica, body)
            stats.results[result] = stats.results.get(result, 0) + 1
            if result in ("ok", "ok-full-next"):
                replica.buffer.popleft()
                replica.failures, replica.next_attempt = 0, 0.0
                replica.acked_seq = seq if result == "ok" else None
                continue
            if result == "rejected":
                # The API will never take this body (409 stale base, 4xx invalid): drop it; send full next.
                replica.buffer.popleft()
                replica.acked_seq = None
                continue
            # Unreachable, 5xx or auth: keep the buffer, back off, and send full reports from now on.
            replica.failures += 1
            replica.acked_seq = None
            delay = min(self.interval * 2 ** (replica.failures - 1), self.max_backoff)
            replica.next_attempt = now + delay * random.uniform(0.8, 1.0)
            return

    def _post(self, replica: Replica, body: bytes) -> str:
        host = f"[{replica.address}]" if ":" in replica.address else replica.address
        url = f"{self.scheme}://{host}:{self.port}{self.path}"
        try:
            response = self.http.post(url, content=body, headers={"Host": f"{self.host}:{self.port}"})
        except httpx.HTTPError as exc:
            log.warning("report to %s failed: %s", replica.address, type(exc).__name__)
            return "unreachable"
        if response.status_code in (200, 201, 202):
            try:
                ack = response.json()
            except ValueError:
                ack = {}
            return "ok-full-next" if isinstance(ack, dict) and ack.get("next") == "full" else "ok"
        if response.status_code in (401, 403):
            log.error("report to %s refused: HTTP %d (check the report:write token)", replica.address,
                      response.status_code)
            return "auth"
        if 400 <= response.status_code < 500:
            log.warning("report to %s rejected: HTTP %d %s", replica.address, response.status_code,
                        response.text[:200])
            return "rejected"
        return "error"


def resolve_all(host: str, port: int) -> list[str]:
    """Every address of `host` (a headless Service name resolves to one per ready replica), sorted."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})
