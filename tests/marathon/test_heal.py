"""The healer against the fake Marathon and a Prometheus stub: kills only with guard rails."""
from __future__ import annotations

import io

from orchestrator.clients.marathon import MarathonClient
from orchestrator.fakes.marathon import FakeMarathon, SimClock
from orchestrator.services.marathon.heal import Healer
from orchestrator.services.marathon.policy import HealPolicy, ScalerConfig
from orchestrator.services.marathon.prom import PrometheusSource
from orchestrator.services.marathon.store import MemoryStore
from orchestrator.services.marathon.telemetry import Telemetry
from tests.support.prometheus import PrometheusStub

SIGNAL = 'task_error_ratio{app="$app"}'


def config(apps: list[str], **kw) -> ScalerConfig:
    return ScalerConfig(heal={a: HealPolicy(signal=SIGNAL, threshold=0.5, for_seconds=60) for a in apps}, **kw)


def healer(fake: FakeMarathon, clock: SimClock, prometheus: PrometheusStub, cfg: ScalerConfig) -> Healer:
    return Healer(MarathonClient(fake.urls, retries=1, backoff=0), PrometheusSource(prometheus.url), cfg,
                  MemoryStore(), Telemetry(out=io.StringIO(), clock=clock.now), clock=clock.now)


_clients: dict[int, MarathonClient] = {}  # one per fake: an httpx client costs ~40 ms (CA bundle) to create


def task_ids(fake: FakeMarathon, app: str) -> list[str]:
    client = _clients.get(id(fake))
    if client is None or client.urls != fake.urls:
        client = _clients[id(fake)] = MarathonClient(fake.urls)
    return [t.id for t in client.get_app(app).tasks]


def bad(prometheus: PrometheusStub, fake: FakeMarathon, app: str, bad_tasks: list[str]) -> None:
    prometheus.values[SIGNAL.replace("$app", app)] = [({"task_id": t}, 0.9 if t in bad_tasks else 0.01)
                                                      for t in task_ids(fake, app)]


def run(h: Healer, fake: FakeMarathon, seconds: float, every: float = 15.0, refresh=None) -> list[dict]:
    actions = []
    for _ in range(int(seconds // every)):
        if refresh:
            refresh()
        actions.extend(h.cycle())
        fake.advance(every)
    return actions


def test_kills_a_bad_task_once_then_budget_and_backoff_hold(fake_marathon, sim_clock, prometheus):
    fake_marathon.add_app({"id": "/shop/api", "instances": 5})
    tasks = task_ids(fake_marathon, "/shop/api")
    bad(prometheus, fake_marathon, "/shop/api", tasks[:2])
    h = healer(fake_marathon, sim_clock, prometheus, config(["/shop/api"]))
    actions = run(h, fake_marathon, 240)
    kills = [a for a in actions if a["action"] == "kill"]
    assert len(kills) == 1 and kills[0]["task"] in tasks[:2] and kills[0]["mode"] == "scale-false"  # one only
    assert "app-budget-exhausted" in {a["reason"] for a in actions}           # max(1, 10 % of 5) per 5 min
    assert [r["query"] for r in fake_marathon.kills()] == [{"scale": "false"}]


def test_overloaded_host_opens_the_circuit_and_kills_nothing(fake_marathon, sim_clock, prometheus):
    apps = [f"/team/app{i}" for i in range(6)]
    for a in apps:
        fake_marathon.add_app({"id": a, "instances": 3, "healthChecks": [{"protocol": "HTTP"}]})
    h = healer(fake_marathon, sim_clock, prometheus, config(apps))
    fake_marathon.overload(60)  # every health check fails for 60 s; the apps' error ratios spike with it

    def everything_bad() -> None:
        for a in apps:
            bad(prometheus, fake_marathon, a, task_ids(fake_marathon, a))

    actions = run(h, fake_marathon, 120, refresh=everything_bad)
    assert fake_marathon.kills() == [] and not [a for a in actions if a["action"] != "none"]
    assert "circuit-open" in {a["reason"] for a in actions}
    assert h.telemetry.circuit._value.get() == 1


def test_replace_before_kill_at_minimum_capacity(fake_marathon, sim_clock, prometheus):
    fake_marathon.add_app({"id": "/solo", "instances": 1, "healthChecks": [{"protocol": "HTTP"}]})
    (task,) = task_ids(fake_marathon, "/solo")
    h = healer(fake_marathon, sim_clock, prometheus, config(["/solo"]))
    actions = run(h, fake_marathon, 180, refresh=lambda: bad(prometheus, fake_marathon, "/solo", [task]))
    order = [(a["action"], a.get("mode")) for a in actions if a["action"] != "none"]
    assert order == [("replace", None), ("kill", "replace")]
    assert [r["body"] for r in fake_marathon.requests if r["method"] == "PUT"] == ['{"instances": 2}']
    assert [r["query"] for r in fake_marathon.kills()] == [{"scale": "true"}]
    fake_marathon.advance(30)
    assert fake_marathon.instances("/solo") == 1 and task not in task_ids(fake_marathon, "/solo")


def test_unreachable_tasks_are_never_killed(fake_marathon, sim_clock, prometheus):
    fake_marathon.add_app({"id": "/edge", "instances": 4})
    tasks = task_ids(fake_marathon, "/edge")
    fake_marathon.mark_unreachable(tasks[0])
    h = healer(fake_marathon, sim_clock, prometheus, config(["/edge"]))
    run(h, fake_marathon, 180, refresh=lambda: bad(prometheus, fake_marathon, "/edge", [tasks[0]]))
    assert fake_marathon.kills() == []


def test_cluster_budget_limits_kills_per_minute(fake_marathon, sim_clock, prometheus):
    apps = [f"/fleet/app{i}" for i in range(20)]
    for a in apps:
        fake_marathon.add_app({"id": a, "instances": 10})
    sick = apps[:5]  # 25 % of the apps: under the 30 % breaker
    firsts = {a: task_ids(fake_marathon, a)[0] for a in sick}
    h = healer(fake_marathon, sim_clock, prometheus, config(apps, heal_cluster_kills_per_minute=3))

    def refresh() -> None:
        for a in apps:
            bad(prometheus, fake_marathon, a, [firsts[a]] if a in sick else [])

    actions = run(h, fake_marathon, 75, refresh=refresh)  # 60 s to become candidates, then one cycle
    assert len([a for a in actions if a["action"] == "kill"]) == 3
    assert "cluster-budget-exhausted" in {a["reason"] for a in actions}


def test_no_signal_no_kill(fake_marathon, sim_clock, prometheus):
    fake_marathon.add_app({"id": "/quiet", "instances": 2})
    prometheus.stop()
    actions = run(healer(fake_marathon, sim_clock, prometheus, config(["/quiet"])), fake_marathon, 120)
    assert {a["reason"] for a in actions} == {"signal-missing"} and fake_marathon.kills() == []
