"""The publisher against local receivers on loopback: full/delta cadence, per-replica state, failures."""
from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from orchestrator.contracts.report import SCHEMA_VERSION, Connection, FullReport, Host, Process
from orchestrator.services.probe.publisher import Publisher
from tests.probe.receiver import Receiver


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def report(seq: int, pids: range = range(1, 400)) -> FullReport:
    # Process 1's CPU changes every interval; the others are idle; one connection comes and goes.
    processes = [Process(pid=p, ppid=1 if p > 1 else 0, name=f"p{p}", cpu_percent=float(seq) if p == 1 else 0.0)
                 for p in pids]
    connections = [Connection(state="listen", local_ip="0.0.0.0", local_port=22)]
    if seq % 2:
        connections.append(Connection(state="established", local_ip="127.0.0.1", local_port=40000 + seq,
                                      remote_ip="127.0.0.1", remote_port=22, pid=2))
    return FullReport(schema_version=SCHEMA_VERSION, probe_id="node-a", seq=seq, timestamp=1e9 + seq,
                      host=Host(hostname="node-a"), processes=processes, connections=connections)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_full_every_n_and_deltas_rebuild_the_state(receiver: Receiver) -> None:
    pub = Publisher(f"http://127.0.0.1:{receiver.port}", token="t0ken", full_every=3,
                    resolver=lambda host, port: ["127.0.0.1"])
    sizes = []
    for seq in range(7):
        stats = pub.publish(report(seq))
        assert stats.results == {"ok": 1}
        sizes.append((stats.bytes_full, stats.bytes_delta))
    pub.close()
    assert receiver.received == [("full", 0), ("delta", 1), ("delta", 2), ("full", 3), ("delta", 4),
                                 ("delta", 5), ("full", 6)]
    assert receiver.state["node-a"] == report(6)
    # The receiver rebuilt seq 5 from deltas only: equal to what the probe saw.
    assert all(h["Authorization"] == "Bearer t0ken" for h in receiver.headers)
    assert sizes[1][1] < sizes[0][0] / 5  # a delta of one changed process is much smaller than the full
    assert sizes[1][0] == 0               # and no full report was encoded when every replica took the delta


def test_ack_asking_for_full_and_409_lead_to_full(receiver: Receiver) -> None:
    pub = Publisher(f"127.0.0.1:{receiver.port}", full_every=100, resolver=lambda h, p: ["127.0.0.1"])
    pub.publish(report(0))
    receiver.mode = "full-next"
    pub.publish(report(1))                 # delta, accepted, but the API wants a full one next
    receiver.mode = "ok"
    pub.publish(report(2))
    receiver.state.clear()                 # the API restarted: it knows no base
    stats = pub.publish(report(3))         # delta -> 409 -> dropped, full next
    assert stats.results == {"rejected": 1}
    pub.publish(report(4))
    pub.publish(report(5))
    pub.close()
    assert receiver.received == [("full", 0), ("delta", 1), ("full", 2), ("full", 4), ("delta", 5)]
    assert receiver.rejected == [("delta", 3)]
    assert receiver.state["node-a"] == report(5)


def _pair() -> tuple[Receiver, Receiver]:
    """Two API replicas on one port, as a headless Service's addresses would be: 127.0.0.1 and ::1."""
    for _ in range(20):
        first = Receiver("127.0.0.1")
        try:
            return first, Receiver("::1", first.port)
        except OSError:
            first.close()
    pytest.skip("no IPv6 loopback to run a second replica on the same port")
    raise AssertionError


def test_every_replica_gets_reports_and_a_failing_one_buffers_drops_and_recovers() -> None:
    a, b = _pair()
    clock = Clock()
    try:
        pub = Publisher(f"http://api-headless:{a.port}", full_every=100, buffer=3, interval=15, max_backoff=60,
                        resolver=lambda host, port: ["127.0.0.1", "::1"], clock=clock)
        pub.publish(report(0))
        b.mode = "error"
        dropped = 0
        outcomes = []
        for seq in range(1, 9):
            clock.now += 15
            stats = pub.publish(report(seq))
            dropped += stats.dropped
            outcomes.append(stats.results)
        # A kept every delta; B failed, backed off (15 s, 30 s, 60 s, 60 s ...) and buffered full reports.
        assert a.received == [("full", 0)] + [("delta", s) for s in range(1, 9)]
        assert b.received == [("full", 0)]
        assert any(o.get("deferred") for o in outcomes), "a failing replica must be backed off"
        replica_b = pub.replicas["::1"]
        assert len(replica_b.buffer) == 3 and dropped == pub.dropped_total == 8 - 3
        assert [seq for seq, _ in replica_b.buffer] == [6, 7, 8]
        b.mode = "ok"
        clock.now += 61
        pub.publish(report(9))             # B: 6 is dropped to make room for 9; 7, 8, 9 arrive in order
        clock.now += 15
        pub.publish(report(10))
        pub.close()
        assert b.received == [("full", 0), ("full", 7), ("full", 8), ("full", 9), ("delta", 10)]
        assert a.received[-2:] == [("delta", 9), ("delta", 10)]
        assert a.state["node-a"] == b.state["node-a"] == report(10)
    finally:
        a.close()
        b.close()


def test_unreachable_replica_and_dns_failure_keep_going(receiver: Receiver) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there any more
    answers = [["127.0.0.1"]]

    def resolver(host: str, port: int) -> list[str]:
        if not answers:
            raise OSError("temporary failure in name resolution")
        return answers.pop()

    clock = Clock()
    pub = Publisher(f"http://127.0.0.1:{dead_port}", resolver=resolver, clock=clock, timeout=1)
    assert pub.publish(report(0)).results == {"unreachable": 1}
    clock.now += 1
    assert pub.publish(report(1)).results == {"deferred": 1}   # DNS failed: known replica kept, backing off
    pub.close()
    assert list(pub.replicas) == ["127.0.0.1"]
