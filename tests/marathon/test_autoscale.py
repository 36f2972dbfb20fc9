"""The autoscale loop against the fake Marathon (loopback HTTP, simulated clock) and a Prometheus stub."""
from __future__ import annotations

import io
import json

import pytest

from orchestrator.clients.marathon import MarathonClient
from orchestrator.contracts.marathon_scaler import NAMED_METRICS
from orchestrator.fakes.marathon import FakeMarathon, SimClock
from orchestrator.services.marathon.autoscale import Autoscaler
from orchestrator.services.marathon.policy import AutoscalePolicy, ScalerConfig
from orchestrator.services.marathon.prom import PrometheusSource
from orchestrator.services.marathon.store import FileStore, MemoryStore, PolicyStore
from orchestrator.services.marathon.telemetry import Telemetry
from tests.support.prometheus import PrometheusStub

QUERY = NAMED_METRICS["cpu"].replace("$app", "/shop/web")
LABELS = {"orchestrator.autoscale.min": "2", "orchestrator.autoscale.max": "12",
          "orchestrator.autoscale.metric": "cpu", "orchestrator.autoscale.target": "0.5"}


def web(instances: int = 4, labels: dict[str, str] | None = None) -> dict:
    return {"id": "/shop/web", "instances": instances, "labels": LABELS if labels is None else labels,
            "healthChecks": [{"protocol": "HTTP", "path": "/health"}]}


def scaler(fake: FakeMarathon, clock: SimClock, prometheus: PrometheusStub, *, store=None, config=None,
           dry_run=False, out=None) -> Autoscaler:
    client = MarathonClient(fake.urls, retries=1, backoff=0.0)
    return Autoscaler(client, PrometheusSource(prometheus.url), config or ScalerConfig(), store or MemoryStore(),
                      Telemetry(out=out or io.StringIO(), clock=clock.now), dry_run=dry_run, clock=clock.now)


def puts(fake: FakeMarathon) -> list[dict]:
    return [json.loads(r["body"]) for r in fake.requests if r["method"] == "PUT"]


def cycles(s: Autoscaler, fake: FakeMarathon, n: int, every: float = 15.0) -> list:
    out = []
    for _ in range(n):
        out.extend(s.cycle())
        fake.advance(every)
    return out


def test_scales_up_then_holds_while_its_deployment_runs(fake_marathon, sim_clock, prometheus):
    fake_marathon.add_app(web(4))
    prometheus.values[QUERY] = 1.0  # 200 % of target
    s = scaler(fake_marathon, sim_clock, prometheus)
    first = s.cycle()
    assert [(d.current, d.desired, d.reason) for d in first] == [(4, 8, "scale-up")]
    fake_marathon.advance(15)
    second = s.cycle()  # 4 -> 8 moves one task per 5 s: still deploying
    assert [(d.desired, d.reason) for d in second] == [(8, "deployment-in-flight")]
    assert puts(fake_marathon) == [{"instances": 8}]
    assert all("force" not in r["query"] for r in fake_marathon.requests)


def test_metrics_outage_never_scales_down(fake_marathon, sim_clock, prometheus):
    fake_marathon.add_app(web(6))
    prometheus.values[QUERY] = 0.5
    s = scaler(fake_marathon, sim_clock, prometheus)
    cycles(s, fake_marathon, 4)
    prometheus.stop()  # Prometheus down for 10 minutes, then empty results, then NaN
    down = cycles(s, fake_marathon, 40)
    assert {d.reason.split(":")[0] for d in down} == {"metrics-missing"}
    prom2 = PrometheusStub()
    try:
        s.metrics = PrometheusSource(prom2.url)
        prom2.values[QUERY] = None
        empty = cycles(s, fake_marathon, 5)
        prom2.values[QUERY] = "nan"
        nan = cycles(s, fake_marathon, 5)
    finally:
        prom2.stop()
    assert {d.reason for d in empty} == {"metrics-missing:metrics-empty"}
    assert {d.reason for d in nan} == {"metrics-missing:metrics-nan"}
    assert puts(fake_marathon) == [] and fake_marathon.instances("/shop/web") == 6


def test_stack_config_wins_over_labels(fake_marathon, sim_clock, prometheus):
    fake_marathon.add_app(web(4))
    prometheus.values[QUERY] = 1.0
    config = ScalerConfig(policies={"/shop/web": AutoscalePolicy(min_instances=1, max_instances=5, metric="cpu",
                                                                 target=0.5)})
    decisions = scaler(fake_marathon, sim_clock, prometheus, config=config).cycle()
    assert [(d.desired, d.reason) for d in decisions] == [(5, "scale-up")]  # the config's max 5, not the label's 12


def test_apps_without_policy_or_with_bad_labels_are_left_alone(fake_marathon, sim_clock, prometheus):
    fake_marathon.add_app({"id": "/plain", "instances": 2})
    fake_marathon.add_app({"id": "/bad", "instances": 2, "labels": {"orchestrator.autoscale.min": "zero"}})
    out = io.StringIO()
    decisions = scaler(fake_marathon, sim_clock, prometheus, out=out).cycle()
    assert [(d.app, d.reason) for d in decisions] == [("/bad", "invalid-policy")]
    assert "orchestrator.autoscale" in out.getvalue() and puts(fake_marathon) == []


def test_operator_override_pauses_and_bounds(fake_marathon, sim_clock, prometheus, tmp_path):
    fake_marathon.add_app(web(4))
    prometheus.values[QUERY] = 1.0
    store = FileStore(tmp_path)
    PolicyStore(store).update_override("/shop/web", paused=True)
    s = scaler(fake_marathon, sim_clock, prometheus, store=store)
    assert [d.reason for d in s.cycle()] == ["paused"]
    PolicyStore(store).update_override("/shop/web", max_instances=6)
    fake_marathon.advance(15)
    assert [(d.desired, d.reason) for d in s.cycle()] == [(6, "scale-up")]
    view = PolicyStore(store).view()
    assert view["overrides"] == {"/shop/web": {"max_instances": 6}}
    assert view["policies"]["/shop/web"]["max_instances"] == 6 and view["policies"]["/shop/web"]["source"] == "labels"
    assert view["decisions"][-1]["desired"] == 6


def test_history_survives_a_restart(fake_marathon, sim_clock, prometheus, tmp_path):
    fake_marathon.add_app(web(8))
    prometheus.values[QUERY] = 0.5
    cycles(scaler(fake_marathon, sim_clock, prometheus, store=FileStore(tmp_path)), fake_marathon, 2)
    prometheus.values[QUERY] = 0.1  # load drops: the recommendation 2 is held by the 8 of the last 5 minutes
    restarted = scaler(fake_marathon, sim_clock, prometheus, store=FileStore(tmp_path))
    assert [d.reason for d in cycles(restarted, fake_marathon, 3)] == ["stabilized"] * 3
    forgetful = scaler(fake_marathon, sim_clock, prometheus)  # no state: would scale down at once
    assert [d.desired for d in forgetful.cycle()] == [2]


def test_a_drop_scales_down_after_the_drop_window_across_a_restart(fake_marathon, sim_clock, prometheus, tmp_path):
    fake_marathon.add_app(web(12))
    prometheus.values[QUERY] = 0.5  # at target for 10 minutes: every recommendation is 12
    cycles(scaler(fake_marathon, sim_clock, prometheus, store=FileStore(tmp_path)), fake_marathon, 40)
    prometheus.values[QUERY] = 0.25  # the load halves for good (t=600)
    first = cycles(scaler(fake_marathon, sim_clock, prometheus, store=FileStore(tmp_path)), fake_marathon, 4)
    restarted = scaler(fake_marathon, sim_clock, prometheus, store=FileStore(tmp_path))  # the drop's start kept
    after = cycles(restarted, fake_marathon, 5)
    assert [d.reason for d in first + after[:-1]] == ["stabilized"] * 8  # t=600..705: the drop is < 120 s old
    assert [(after[-1].desired, after[-1].reason)] == [(6, "scale-down")]  # t=720, not t=1185 (the 600 s window)
    assert puts(fake_marathon) == [{"instances": 6}]


def test_leader_failover_between_cycles(fake_marathon, sim_clock, prometheus):
    fake_marathon.add_app(web(4))
    prometheus.values[QUERY] = 0.5
    s = scaler(fake_marathon, sim_clock, prometheus)
    cycles(s, fake_marathon, 2)
    fake_marathon.stop_instance(0)
    fake_marathon.fail_over(to=2)
    prometheus.values[QUERY] = 1.0
    assert [(d.desired, d.reason) for d in s.cycle()] == [(8, "scale-up")]
    assert fake_marathon.requests[-1]["instance"] == 2 or fake_marathon.requests[-2]["instance"] == 2


def test_dry_run_prints_decisions_and_changes_nothing(fake_marathon, sim_clock, prometheus, tmp_path):
    fake_marathon.add_app(web(4))
    prometheus.values[QUERY] = 1.0
    out = io.StringIO()
    store = FileStore(tmp_path)
    decisions = scaler(fake_marathon, sim_clock, prometheus, dry_run=True, out=out, store=store).cycle()
    assert [(d.desired, d.reason) for d in decisions] == [(8, "scale-up")]
    event = json.loads(out.getvalue().splitlines()[-1])
    assert (event["dry_run"], event["app"], event["direction"], event["desired"]) == (True, "/shop/web", "up", 8)
    assert puts(fake_marathon) == [] and store.read("state") == ({}, -1)


def test_every_decision_is_a_metric(fake_marathon, sim_clock, prometheus):
    from prometheus_client import generate_latest

    fake_marathon.add_app(web(4))
    prometheus.values[QUERY] = 1.0
    s = scaler(fake_marathon, sim_clock, prometheus)
    s.cycle()
    text = generate_latest(s.telemetry.registry).decode()
    assert 'orchestrator_marathon_scaler_decisions_total{app="/shop/web",direction="up",reason="scale-up"} 1.0' in text
    assert 'orchestrator_marathon_scaler_desired_instances{app="/shop/web"} 8.0' in text


@pytest.mark.parametrize("ready_tasks_unhealthy", [True])
def test_counts_only_ready_tasks(fake_marathon, sim_clock, prometheus, ready_tasks_unhealthy):
    fake_marathon.add_app(web(4))
    fake_marathon.set_app_health("/shop/web", False)
    prometheus.values[QUERY] = 1.0
    assert [d.reason for d in scaler(fake_marathon, sim_clock, prometheus).cycle()] == ["no-ready-tasks"]
