"""pytest fixtures for the fake Marathon (orchestrator/fakes/marathon.py): real HTTP servers on 127.0.0.1.

`fake_marathon` is a three-instance fake on a simulated clock (instance 0 leads): move time with
`fake_marathon.advance(seconds)`. `fake_marathon_realtime` runs on the real clock with fast deployments, for
tests that run the scaler as a separate process. Both are stopped (servers closed) after the test.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator.clients.marathon import MarathonClient
from orchestrator.fakes.marathon import FakeMarathon, SimClock


@pytest.fixture
def sim_clock() -> SimClock:
    return SimClock()


@pytest.fixture
def fake_marathon(sim_clock: SimClock) -> Iterator[FakeMarathon]:
    with FakeMarathon(instances=3, clock=sim_clock, step_seconds=5.0, health_delay=5.0) as fake:
        yield fake


@pytest.fixture
def fake_marathon_realtime() -> Iterator[FakeMarathon]:
    with FakeMarathon(instances=2, step_seconds=0.2, health_delay=0.2) as fake:
        yield fake


@pytest.fixture
def marathon_client(fake_marathon: FakeMarathon, sim_clock: SimClock) -> Iterator[MarathonClient]:
    # Waits and backoffs move the simulated clock instead of sleeping.
    def sleep(seconds: float) -> None:
        fake_marathon.advance(seconds)

    client = MarathonClient(fake_marathon.urls, timeout=5.0, retries=1, backoff=0.01, sleep=sleep,
                            clock=sim_clock.now)
    yield client
    client.close()
