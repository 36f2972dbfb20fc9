"""The autoscaler's decision against the Kubernetes HPA documentation's own examples, plus properties."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.services.marathon.hpa import Decision, History, Inputs, Recommendation, decide, record_scale
from orchestrator.services.marathon.policy import (
    DEFAULT_DOWN,
    DEFAULT_UP,
    MARATHON_DOWN,
    AutoscalePolicy,
    Behavior,
    RatePolicy,
)


def policy(**kw) -> AutoscalePolicy:
    # The HPA's own defaults (the examples are the HPA's); our Marathon default differs only by a 600 s window.
    return AutoscalePolicy(**{"min_instances": 1, "max_instances": 100, "metric": "cpu", "target": 100.0,
                              "scale_down": DEFAULT_DOWN, **kw})


def run(p: AutoscalePolicy, start: int, value_at, *, seconds: int, every: int = 15) -> list[tuple[int, int]]:
    """Cycles every `every` s with Marathon applying each decision at once; returns (t, instances) after each."""
    history, instances, out = History(), start, []
    for t in range(0, seconds, every):
        d = decide("/app", p, Inputs(instances, instances, value_at(t, instances)), history, float(t))
        record_scale(history, d, float(t))
        instances = d.desired
        out.append((t, instances))
    return out


# "desiredReplicas = ceil[currentReplicas * (currentMetricValue / desiredMetricValue)] ... if the current metric
# value is 200m, and the desired value is 100m, the number of replicas will be doubled ... 50m ... halve ...
# skips any scaling action if the ratio is sufficiently close to 1.0 (within ... 0.1 by default)."
@pytest.mark.parametrize(("value", "expected", "reason"), [
    (200.0, 8, "scale-up"), (50.0, 2, "scale-down"), (106.2, 4, "within-tolerance"), (91.0, 4, "within-tolerance"),
    (89.0, 4, "scale-down"),  # ceil(4 * 0.89) = 4: outside tolerance, but the ceiling keeps 4
])
def test_algorithm_details_examples(value, expected, reason):
    d = decide("/app", policy(), Inputs(4, 4, value), History(), 0.0)
    assert (d.desired, d.reason) == (expected, reason if expected != 4 or reason != "scale-down" else "metric")


# "scaleDown: policies: [{type: Pods, value: 4, periodSeconds: 60}, {type: Percent, value: 10, periodSeconds:
# 60}] ... when the number of replicas is 80 ... 10% ... 8 ... 72 ... 7.2 rounded up to 8 ... when the number of
# replicas falls below 40, the first policy (Pods) is applied and 4 replicas will be reduced at a time."
def test_scale_down_policies_example_80_to_10():
    down = Behavior(stabilization_seconds=0, policies=(RatePolicy(type="Pods", value=4, period_seconds=60),
                                                       RatePolicy(type="Percent", value=10, period_seconds=60)))
    p = policy(min_instances=10, scale_down=down)
    trace = run(p, 80, lambda t, n: 1.0, seconds=15 * 60)  # 15 s sync: it may change only once per minute
    per_minute = [n for t, n in trace if t % 60 == 0]
    assert per_minute == [72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10, 10]
    assert all(n == per_minute[t // 60] for t, n in trace)  # nothing moves between the minute marks


def test_select_policy_min_takes_the_smaller_change():
    down = Behavior(stabilization_seconds=0, select="Min",
                    policies=(RatePolicy(type="Pods", value=4, period_seconds=60),
                              RatePolicy(type="Percent", value=10, period_seconds=60)))
    d = decide("/app", policy(min_instances=10, scale_down=down), Inputs(80, 80, 1.0), History(), 0.0)
    assert (d.desired, d.reason) == (76, "rate-limited")


def test_select_policy_disabled_never_scales_down():
    down = Behavior(stabilization_seconds=0, select="Disabled",
                    policies=(RatePolicy(type="Percent", value=100, period_seconds=15),))
    trace = run(policy(scale_down=down), 10, lambda t, n: 1.0, seconds=600)
    assert {n for _, n in trace} == {10}


# Default behavior: "scaleUp ... Percent 100 per 15 s, Pods 4 per 15 s, selectPolicy Max" = doubles or adds 4,
# whichever is more, every 15 s.
def test_default_scale_up_doubles_or_adds_four_per_15_s():
    trace = run(policy(max_instances=50), 1, lambda t, n: 10_000.0, seconds=90)
    assert [n for _, n in trace] == [5, 10, 20, 40, 50, 50]


# "stabilizationWindowSeconds: 300 ... the algorithm ... selects the highest recommendation" of the window.
def test_scale_down_stabilization_takes_the_highest_recommendation_of_the_window():
    values = {0: 100.0, 15: 50.0, 30: 60.0}  # recommendations 10, 5, 6 for 10 instances
    trace = run(policy(), 10, lambda t, n: values.get(t, 50.0) * 10 / n, seconds=420)
    assert [n for t, n in trace if t < 300] == [10] * 20   # the 10 recommended at t=0 holds for 300 s
    assert dict(trace)[300] == 6                             # then the highest left in the window (t=30: 6)
    assert (dict(trace)[315], dict(trace)[330]) == (6, 5)  # the 6 of t=30 leaves the window after t=330


def test_scale_up_window_takes_the_lowest_recommendation():
    up = DEFAULT_UP.model_copy(update={"stabilization_seconds": 60})
    values = [200.0, 300.0, 110.0 * 1.2]
    history, d = History(), None
    for i, v in enumerate(values):
        d = decide("/app", policy(scale_up=up), Inputs(10, 10, v), history, i * 15.0)
    assert d is not None and d.desired == 14  # min(20, 30, 14) over the last 60 s


@pytest.mark.parametrize(("inputs", "reason"), [
    (Inputs(4, 4, None), "metrics-missing"), (Inputs(4, 4, float("nan")), "metrics-missing"),
    (Inputs(4, 4, 500.0, deploying=True), "deployment-in-flight"), (Inputs(0, 0, 500.0), "scaled-to-zero"),
    (Inputs(4, 0, 500.0), "no-ready-tasks"),
])
def test_holds(inputs, reason):
    history = History()
    d = decide("/app", policy(), inputs, history, 0.0)
    # Missing metrics record the running count (see the outage test below); the other holds record nothing.
    recorded = [Recommendation(0.0, inputs.instances)] if reason == "metrics-missing" else []
    assert (d.desired, d.reason, history.recommendations) == (inputs.instances, reason, recorded)


def test_bounds_and_pause():
    assert decide("/a", policy(max_instances=5), Inputs(9, 9, 100.0), History(), 0).desired == 5
    assert decide("/a", policy(min_instances=3), Inputs(1, 1, 100.0), History(), 0).desired == 3
    assert decide("/a", policy(paused=True), Inputs(4, 4, 900.0), History(), 0).reason == "paused"


def test_unready_tasks_count_as_zero_on_scale_up_and_as_target_on_scale_down():
    # 10 instances, 5 ready at 150 %: corrected ratio 0.75 reverses the direction -> hold.
    assert decide("/a", policy(), Inputs(10, 5, 150.0), History(), 0).reason == "within-tolerance-after-unready"
    # 10 instances, 8 ready at 300 %: corrected = 8*3/10 = 2.4 -> 24.
    assert decide("/a", policy(), Inputs(10, 8, 300.0), History(), 0).desired == 20  # rate limit: 2x per 15 s
    # 10 instances, 5 ready at 20 %: the 5 unready count as 100 % -> (1 + 5) / 10 = 0.6 -> 6.
    assert decide("/a", policy(), Inputs(10, 5, 20.0), History(), 0).desired == 6


def test_total_metric_type_divides_the_total_by_the_per_instance_target():
    d = decide("/a", policy(metric_type="total", target=50.0), Inputs(4, 4, 1000.0), History(), 0)
    assert d.desired == 8  # ceil(1000 / 50) = 20, limited to 2x per 15 s


def test_history_round_trips_through_json():
    h = History()
    decide("/a", policy(), Inputs(4, 4, 400.0), h, 1.5)
    record_scale(h, Decision("/a", 4, 8, "scale-up"), 1.5)
    assert History.from_json(h.to_json()) == h


# ------------------------------------------------------------------------------------------------ properties
behaviors = st.builds(
    lambda window, value, period: Behavior(stabilization_seconds=window,
                                           policies=(RatePolicy(type="Pods", value=value, period_seconds=period),)),
    st.integers(0, 600), st.integers(1, 10), st.integers(15, 600))


@settings(max_examples=150, deadline=None)
@given(lo=st.integers(1, 20), span=st.integers(0, 30), up=behaviors, down=behaviors,
       steps=st.lists(st.tuples(st.integers(1, 120), st.one_of(st.none(), st.floats(0, 1000)), st.floats(0, 1)),
                      min_size=1, max_size=60))
def test_properties_bounds_rate_and_stabilization(lo, span, up, down, steps):
    p = policy(min_instances=lo, max_instances=lo + span, scale_up=up, scale_down=down)
    history, instances, t = History(), lo, 0.0
    seen: list[tuple[float, Decision]] = []
    for dt, value, ready_fraction in steps:
        t += dt
        ready = max(0, min(instances, round(instances * ready_fraction)))
        d = decide("/app", p, Inputs(instances, ready, value), history, t)
        # 1. never outside [min, max]
        assert p.min_instances <= d.desired <= p.max_instances
        if d.acts:
            record_scale(history, d, t)
        seen.append((t, d))
        # 2. never faster than the policy: relative to the count at the start of any period (HPA's rule)
        def count_at(x: float) -> int:
            before = [n.desired for u, n in seen if u <= x]
            return before[-1] if before else lo
        if d.desired > d.current:
            assert d.desired <= count_at(t - up.policies[0].period_seconds) + up.policies[0].value
        if d.desired < d.current:
            assert d.desired >= count_at(t - down.policies[0].period_seconds) - down.policies[0].value
        # 3. no scale-down below a recommendation made within the scale-down window (this one included)
        if d.desired < d.current:
            window = [x.recommended for u, x in seen
                      if (u > t - down.stabilization_seconds or u == t) and x.recommended]
            assert d.desired >= max(window)
        instances = d.desired
    assert math.isfinite(t)


# ------------------------------------------------------------------------------------------- the drop window
# Ours, not the HPA's (MARATHON_DOWN, hpa._down_bound): a drop to a level the window has not seen scales down
# after the drop window (120 s); a dip between peaks, or a scale-up younger than the window, keeps the whole
# window (600 s).
def ours(**kw) -> AutoscalePolicy:
    return AutoscalePolicy(**{"min_instances": 1, "max_instances": 100, "metric": "cpu", "target": 100.0, **kw})


def load(schedule: dict[int, float | None]):
    """value_at for run(): the app's total load (in units of one task at target) from each time on."""
    def value_at(t: int, n: int) -> float | None:
        total = schedule[max(k for k in schedule if k <= t)]
        return None if total is None else total * 100.0 / n
    return value_at


def test_a_drop_scales_down_after_the_drop_window_not_the_whole_window():
    assert (MARATHON_DOWN.stabilization_seconds, MARATHON_DOWN.drop_window_seconds) == (600, 120)
    trace = dict(run(ours(), 12, load({0: 12.0, 600: 6.0}), seconds=1500))
    assert {trace[t] for t in range(600, 720, 15)} == {12}  # the drop is 105 s old: hold
    assert trace[720] == 6                                    # 120 s of the new level: down at once
    plain = dict(run(ours(scale_down=DEFAULT_DOWN.model_copy(update={"stabilization_seconds": 600})), 12,
                     load({0: 12.0, 600: 6.0}), seconds=1500))
    assert (plain[1170], plain[1185]) == (12, 6)             # without it: once the last 12 (t=585) left the window


def test_the_drop_must_last_the_drop_window_across_a_metrics_gap():
    # Load falls while metrics are missing (no recommendation is recorded); the new level is seen from t=900.
    trace = dict(run(ours(), 12, load({0: 12.0, 600: None, 900: 6.0}), seconds=1500))
    assert {trace[t] for t in range(900, 1020, 15)} == {12}  # seen for < 120 s (the 12s of t<600 still count)
    assert trace[1020] == 6


def test_after_an_outage_longer_than_the_window_a_scale_down_waits_for_fresh_samples():
    # 15 minutes without metrics: every recommendation seen before the outage has left the 600 s window, so
    # without the counts recorded during the outage the first fresh sample (t=1500) would scale down at once.
    trace = dict(run(ours(), 12, load({0: 12.0, 600: None, 1500: 6.0}), seconds=2100))
    assert {trace[t] for t in range(600, 1620, 15)} == {12}  # the outage and < 120 s of the new level
    assert trace[1620] == 6                                   # the drop window of fresh samples


def test_a_dip_between_peaks_keeps_the_whole_window():
    # 12 -> 6 for 5 min -> 12 for 5 min -> 6: the second dip is a level the window has seen: not a drop.
    schedule = {0: 12.0, 600: 6.0, 900: 12.0, 1200: 6.0}
    no_drop = ours(scale_down=MARATHON_DOWN.model_copy(update={"drop_window_seconds": None}))
    trace, plain = dict(run(ours(), 12, load(schedule), seconds=2400)), dict(run(no_drop, 12, load(schedule),
                                                                                    seconds=2400))
    assert (trace[705], trace[720], plain[720]) == (12, 6, 12)  # the first dip is a drop: nothing lower before it
    assert {trace[t] for t in range(1200, 1785, 15)} == {12}     # 6 was seen at 600-885: the whole window holds
    assert trace[1785] == 6 and all(trace[t] == plain[t] for t in range(900, 2400, 15))


def test_a_scale_up_younger_than_the_window_keeps_the_whole_window():
    # Up from 6 to 12 at t=0; the load falls back at t=300: a level the window has not seen, but undoing a
    # 5-minute-old scale-up is the flap the window is for.
    trace = dict(run(ours(), 6, load({0: 12.0, 300: 6.0}), seconds=1200))
    assert trace[0] == 12 and {trace[t] for t in range(300, 885, 15)} == {12}
    assert trace[885] == 6  # the last 12 (t=285) left the 600 s window


@pytest.mark.parametrize("period", [600, 900])
def test_an_oscillation_around_target_keeps_its_capacity(period):
    # ±15 % around the target of 6 tasks, 10- and 15-minute periods: 1 change in an hour, as without the drop
    # window; a plain window as short as the drop window flaps, and so does a longer drop window on the 15 min.
    def value_at(t: int, n: int) -> float:
        return 6 * 100.0 * (1 + 0.15 * math.sin(2 * math.pi * t / period)) / n

    def changes(down: Behavior) -> int:
        counts = [n for _, n in run(ours(scale_down=down), 6, value_at, seconds=3600)]
        return sum(1 for a, b in zip([6, *counts], counts, strict=False) if a != b)

    assert changes(MARATHON_DOWN) == 1
    assert changes(MARATHON_DOWN.model_copy(update={"stabilization_seconds": 120})) > 2
    if period == 900:
        assert changes(MARATHON_DOWN.model_copy(update={"drop_window_seconds": 300})) > 2


def test_drop_window_labels():
    from orchestrator.errors import InputError
    from orchestrator.services.marathon.policy import policy_from_labels

    base = {"orchestrator.autoscale.min": "1", "orchestrator.autoscale.max": "9",
            "orchestrator.autoscale.metric": "cpu", "orchestrator.autoscale.target": "0.5"}
    got = policy_from_labels("/a", {**base, "orchestrator.autoscale.scale-down-drop-window": "120",
                                    "orchestrator.autoscale.scale-down-window": "900"})
    assert got is not None and (got.scale_down.stabilization_seconds, got.scale_down.drop_window_seconds) == (900, 120)
    with pytest.raises(InputError, match="/a"):
        policy_from_labels("/a", {**base, "orchestrator.autoscale.scale-down-drop-window": "-1"})


drop_behaviors = st.builds(
    lambda window, drop, value, period: Behavior(stabilization_seconds=window, drop_window_seconds=drop,
                                                 policies=(RatePolicy(type="Pods", value=value,
                                                                      period_seconds=period),)),
    st.integers(0, 900), st.integers(0, 600), st.integers(1, 10), st.integers(15, 600))


@settings(max_examples=150, deadline=None)
@given(down=drop_behaviors,
       steps=st.lists(st.tuples(st.integers(1, 120), st.one_of(st.none(), st.floats(0, 1000))), min_size=1,
                      max_size=60))
def test_property_a_scale_down_below_the_window_follows_a_drop(down, steps):
    p = ours(max_instances=30, scale_down=down)
    history, instances, t = History(), 10, 0.0
    recs: list[tuple[float, int]] = []
    ups: list[float] = []
    for dt, value in steps:
        t += dt
        d = decide("/app", p, Inputs(instances, instances, value), history, t)
        if d.recommended is not None:
            recs.append((t, d.recommended))
        record_scale(history, d, t)
        window = [(u, r) for u, r in recs if u > t - down.stabilization_seconds or u == t]
        if d.desired < d.current and window and d.desired < max(r for _, r in window):
            # The window is one drop: no scale-up within the window, a split at least the drop window old,
            # everything before it higher than everything from it on, and the result not below anything from it on.
            assert down.drop_window_seconds is not None
            assert all(u <= t - down.stabilization_seconds for u in ups)
            assert any(window[:i] and min(r for _, r in window[:i]) > max(r for _, r in window[i:]) <= d.desired
                       for i, (u, _) in enumerate(window) if u <= t - down.drop_window_seconds)
        if d.desired > d.current:
            ups.append(t)
        instances = d.desired


def test_default_behaviors_are_the_hpa_defaults():
    assert (DEFAULT_UP.stabilization_seconds, DEFAULT_DOWN.stabilization_seconds) == (0, 300)
    assert {(p.type, p.value, p.period_seconds) for p in DEFAULT_UP.policies} == {("Percent", 100, 15), ("Pods", 4, 15)}
    ours = AutoscalePolicy(min_instances=1, max_instances=2, metric="cpu", target=1)
    assert ours.scale_down == MARATHON_DOWN and MARATHON_DOWN.stabilization_seconds == 600
    assert MARATHON_DOWN.policies == DEFAULT_DOWN.policies and ours.scale_up == DEFAULT_UP
