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
from typing import Literal
from urllib.parse import urlsplit

import httpx

from orchestrator.contracts.report import (
    REPORT_CONTENT_TYPE,
    DeltaReport,
    FullReport,
    connection_key,
)

log = logging.getLogger("orchestrator.probe")
REPORTS_PATH = "/api/v1/reports"


ConnKey = tuple[Literal["listen", "established"], str, int, str | None, int | None]  # = connection_key
Connections = dict[ConnKey, int | None]


def connection_json(key: ConnKey, pid: int | None) -> str:
    """One connection as JSON, written directly (20,000 of them per report; values are our parser's
    addresses and integers, nothing to escape). Same fields and defaults rule as the schema's model."""
    state, lip, lport, rip, rport = key
    if state == "listen" or rip is None or rport is None:
        text = f'{{"state":"{state}","local_ip":"{lip}","local_port":{lport}'
    else:
        text = f'{{"state":"{state}","local_ip":"{lip}","local_port":{lport},"remote_ip":"{rip}","remote_port":{rport}'
    return text + (f',"pid":{pid}}}' if pid is not None else "}")


def _with_lists(head: FullReport | DeltaReport, lists: dict[str, list[str]]) -> bytes:
    # Defaults are left out: the API fills them in (the schema's rule), and most fields are defaults.
    text = head.model_dump_json(exclude_defaults=True)
    parts = [f'"{name}":[{",".join(items)}]' for name, items in lists.items() if items]
    if parts:
        text = text[:-1] + ("," if text != "{}" else "") + ",".join(parts) + "}"
    return gzip.compress(text.encode(), compresslevel=6)


def split(report: FullReport) -> tuple[FullReport, Connections]:
    """A report as the publisher keeps it: the head (no connections) and the connection map."""
    conns: Connections = {connection_key(c): c.pid for c in report.connections}  # type: ignore[misc]
    return report.model_copy(update={"connections": []}), conns


def encode_full(head: FullReport, connections: Connections) -> bytes:
    return _with_lists(head, {"connections": [connection_json(k, pid) for k, pid in connections.items()]})


def encode(report: FullReport | DeltaReport) -> bytes:
    """A whole report model (tests and one-off use)."""
    return gzip.compress(report.model_dump_json(exclude_defaults=True).encode(), compresslevel=6)


def delta_head(base: FullReport, current: FullReport) -> DeltaReport:
    """What changed from `base` to `current` in processes and containers (upserts by key, removed keys)."""
    old_procs = {p.pid: p for p in base.processes}
    new_procs = {p.pid: p for p in current.processes}
    old_conts = {c.id: c for c in base.containers}
    new_conts = {c.id: c for c in current.containers}
    return DeltaReport(
        kind="delta", base_seq=base.seq, schema_version=current.schema_version, probe_id=current.probe_id,
        seq=current.seq, timestamp=current.timestamp, interval_seconds=current.interval_seconds,
        host=current.host, cost=current.cost,
        processes=[p for pid, p in new_procs.items() if old_procs.get(pid) != p],
        removed_processes=[pid for pid in old_procs if pid not in new_procs],
        containers=[c for cid, c in new_conts.items() if old_conts.get(cid) != c],
        removed_containers=[cid for cid in old_conts if cid not in new_conts])


def connection_changes(base: Connections, current: Connections) -> tuple[list[ConnKey], list[ConnKey]]:
    """(added or changed owner, removed) socket keys."""
    added = [k for k, pid in current.items() if k not in base or base[k] != pid]
    removed = [k for k in base if k not in current]
    return added, removed


def encode_delta(base: tuple[FullReport, Connections], current: tuple[FullReport, Connections]) -> bytes:
    head = delta_head(base[0], current[0])
    added, removed = connection_changes(base[1], current[1])
    return _with_lists(head, {"connections_added": [connection_json(k, current[1][k]) for k in added],
                              # A removed socket is named by its key; its old owner is carried for clarity.
                              "connections_removed": [connection_json(k, base[1][k]) for k in removed]})


def make_delta(base: FullReport, current: FullReport) -> DeltaReport:
    """The delta as a model (tests, one-off use); the publisher encodes the same content directly."""
    (base_head, base_conns), (cur_head, cur_conns) = split(base), split(current)
    added, removed = connection_changes(base_conns, cur_conns)
    by_key = {connection_key(c): c for c in current.connections}
    old_by_key = {connection_key(c): c for c in base.connections}
    return delta_head(base_head, cur_head).model_copy(update={
        "connections_added": [by_key[k] for k in added],  # type: ignore[index]
        "connections_removed": [old_by_key[k] for k in removed]})  # type: ignore[index]


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
        self.previous: tuple[FullReport, Connections] | None = None
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

    def publish(self, report: FullReport, connections: Connections | None = None) -> PublishStats:
        """Send this interval's report. `connections` given: `report` is the head without connections
        (the probe's compact path); otherwise the report's own connection list is used."""
        stats = PublishStats()
        self._refresh_replicas()
        current = (report, connections) if connections is not None else split(report)
        periodic_full = self.publishes % self.full_every == 0
        self.publishes += 1
        delta_body: bytes | None = None
        if self.previous is not None and not periodic_full:
            delta_body = encode_delta(self.previous, current)
            stats.bytes_delta = self.last_sizes["delta"] = len(delta_body)
        full_body: bytes | None = None  # encoded only if a replica needs it (2.5 MB of JSON at 20,000 sockets)
        now = self.clock()
        for replica in list(self.replicas.values()):
            in_sync = (delta_body is not None and not replica.buffer and replica.failures == 0
                       and self.previous is not None and replica.acked_seq == self.previous[0].seq)
            if in_sync and delta_body is not None:
                body = delta_body
            else:
                if full_body is None:
                    full_body = encode_full(*current)
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
        self.previous = current
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
