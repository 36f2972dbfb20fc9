#!/usr/bin/env python3
"""Replay load traces through our autoscaler and through marathon-autoscale's published algorithm, on the same
simulated Marathon (orchestrator/fakes/marathon.py on loopback, simulated clock), and print side by side:
scale changes, SLO-violation minutes, instance-minutes, actions during deployments, scale-downs during a metrics
outage, and the decision cost. Run: `.venv/bin/python scripts/bench_marathon_scaler.py [--trace FILE ...]`.

Trace file format (CSV, `#` comments allowed), a step function of time::

    t,load,metrics,deploy
    0,3.9,1,0          # from t=0 s: demand 3.9 cores, metrics available, nothing deployed
    1200,1.95,0,0      # from t=1200 s: demand halves while the metrics source answers nothing
    1800,1.95,1,0
    3600,0,1,0         # the last row's t is the end of the trace

`load`: cores of work the app must serve; each ready task serves one core, so its utilization is
load / ready tasks (unready tasks serve nothing). `metrics` 0: the metrics source answers nothing (Prometheus
down, empty result). `deploy` 1: a restart deployment of the app starts at that row (it takes minutes: one task
per 5 s step, each new task ready after 30 s).

The model (same for both): one app, 6 instances at start, bounds 2..20. SLO violation = a minute where the
utilization of the ready tasks exceeds 80 % (marathon-autoscale's example upper bound). Cost = instance-minutes
of running tasks.

**Ours**: `orchestrator.services.marathon.autoscale.Autoscaler` with its defaults (the HPA's tolerance 10 % and
rate policies; scale-down window 600 s with a drop window, see MARATHON_DOWN in
orchestrator/contracts/marathon_scaler.py; target 65 % utilization, `average` metric), every 15 s (HPA's sync
period), through the real client over HTTP against the fake. `--down-window` / `--drop-window` override the two
windows; `--more` adds periodic traces.

**Anchor**: a re-implementation (not a copy) of mesosphere/marathon-autoscale @ 8949324 (Apache-2.0), CPU mode with
its README example: `--min_range 55 --max_range 80 --autoscale_multiplier 1.5 --scale_up_factor 3
--cool_down_factor 4 --interval 10`:
- `autoscaler/modes/abstractmode.py` `scale_direction`: +1 above max_range, -1 below min_range, else 0;
- `autoscaler/modes/scalecpu.py` `get_value`: the average CPU % over *all* the app's tasks (a task that does
  no work yet reads ~0), with `time.sleep(1)` twice per task (`get_cpu_usage`): a cycle lasts 2 s x tasks;
  no task data → ValueError → the cycle is skipped (counters kept);
- `marathon_autoscaler.py` `autoscale`: consecutive-poll counters (`scale_up`/`cool_down`, reset by an in-range
  poll and after a scale), `scale_app`: `ceil(instances x m)` up, `floor(instances / m)` down, clamped to
  min/max, from the app's `instances` (desired, not running); `PUT /v2/apps/{id}` without `force` (a 409 raises,
  is logged by `run`, and the counter is not reset); `timer` sleeps `interval` after each cycle.

Decision cost: CPU time (thread time of the scaler's thread: JSON parsing, models, decisions, HTTP client) of one
cycle over 500 apps / 5,000 tasks, the fake Marathon and the Prometheus stub serving from other threads.
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.clients.marathon import DeploymentLocked, MarathonClient, MarathonError  # noqa: E402
from orchestrator.fakes.marathon import FakeMarathon, SimClock  # noqa: E402
from orchestrator.services.marathon.autoscale import Autoscaler  # noqa: E402
from orchestrator.services.marathon.policy import AutoscalePolicy, ScalerConfig  # noqa: E402
from orchestrator.services.marathon.store import MemoryStore  # noqa: E402
from orchestrator.services.marathon.telemetry import Telemetry  # noqa: E402

APP = "/bench/web"
START, MIN, MAX = 6, 2, 20
TARGET = 0.65
SLO = 0.80
TICK = 5.0  # simulation step (s)
STEP_SECONDS, HEALTH_DELAY = 5.0, 30.0


@dataclass
class Row:
    t: float
    load: float
    metrics: bool
    deploy: bool


def builtin_traces() -> dict[str, list[Row]]:
    base = START * TARGET  # 6 tasks exactly at target

    def sampled(fn: Callable[[float], float], seconds: int = 3600, every: int = 30) -> list[Row]:
        return [Row(t, fn(t), True, False) for t in range(0, seconds, every)] + [Row(seconds, 0, True, False)]

    return {
        "steady": [Row(0, base, True, False), Row(3600, 0, True, False)],
        "oscillation ±15 % (10 min period)": sampled(lambda t: base * (1 + 0.15 * math.sin(2 * math.pi * t / 600))),
        "step x4": [Row(0, base, True, False), Row(600, 4 * base, True, False), Row(3600, 0, True, False)],
        "square 10 min high / 10 min low": sampled(lambda t: 2 * base if (t // 600) % 2 else base),
        "metrics outage 10 min (load halves)": [Row(0, base, True, False), Row(1200, base / 2, False, False),
                                                Row(1800, base / 2, True, False), Row(3600, 0, True, False)],
        "deployment in flight (load x2)": [Row(0, base, True, False), Row(600, 2 * base, True, True),
                                           Row(3600, 0, True, False)],
    }


def more_traces() -> dict[str, list[Row]]:
    """`--more`: periodic loads around the built-ins' periods, to see which ones the scale-down follows."""
    base = START * TARGET

    def sampled(fn: Callable[[float], float]) -> list[Row]:
        return [Row(t, fn(t), True, False) for t in range(0, 3600, 30)] + [Row(3600, 0, True, False)]

    def sine(period: int, amp: float) -> Callable[[float], float]:
        return lambda t: base * (1 + amp * math.sin(2 * math.pi * t / period))

    def square(half: int) -> Callable[[float], float]:
        return lambda t: 2 * base if (t // half) % 2 else base

    traces = {f"sine ±{round(100 * amp)} % ({period // 60} min period)": sampled(sine(period, amp))
              for period in (900, 1200, 1800) for amp in (0.15, 0.3)}
    for half in (300, 480, 900):
        traces[f"square {half / 60:g} min high / {half / 60:g} min low"] = sampled(square(half))
    return traces


def read_trace(path: Path) -> list[Row]:
    rows = []
    with path.open() as handle:
        lines = [line.split("#", 1)[0] for line in handle if line.split("#", 1)[0].strip()]
    for i, rec in enumerate(csv.DictReader(io.StringIO("".join(lines)))):
        try:
            rows.append(Row(float(rec["t"]), float(rec["load"]), rec.get("metrics", "1").strip() != "0",
                            rec.get("deploy", "0").strip() == "1"))
        except (KeyError, ValueError) as exc:
            raise SystemExit(f"{path}: row {i + 2}: {exc}") from None
    if len(rows) < 2 or any(b.t <= a.t for a, b in zip(rows, rows[1:], strict=False)):
        raise SystemExit(f"{path}: needs at least two rows with increasing t")
    return rows


def at(rows: list[Row], t: float) -> Row:
    current = rows[0]
    for row in rows:
        if row.t <= t:
            current = row
    return current


@dataclass
class Result:
    changes: int = 0
    slo_minutes: float = 0.0
    instance_minutes: float = 0.0
    during_deployments: int = 0
    downs_in_outage: int = 0
    cycle_wall: list[float] = field(default_factory=list)


class World:
    """The fake Marathon with the app, the clock and what the metric source sees."""

    def __init__(self, step_seconds: float = STEP_SECONDS) -> None:
        self.clock = SimClock()
        self.fake = FakeMarathon(1, clock=self.clock, step_seconds=step_seconds, health_delay=HEALTH_DELAY).start()
        self.fake.add_app({"id": APP, "instances": START, "cmd": "serve",
                           "healthChecks": [{"protocol": "HTTP", "path": "/health"}]})
        self.client = MarathonClient(self.fake.urls, retries=0)
        self.row = Row(0, 0, True, False)

    def counts(self) -> tuple[int, int, int, bool]:
        """(instances, running tasks, ready tasks of the current version, deployment in flight)"""
        app = self.client.get_app(APP)
        return app.instances, app.tasksRunning, app.ready_count(), app.deploying

    def close(self) -> None:
        self.client.close()
        self.fake.stop()


class TraceMetric:
    """Our metric source: the trace's load over the ready tasks (what Prometheus would answer), or nothing."""

    def __init__(self, world: World) -> None:
        self.world = world

    def new_cycle(self) -> None:
        pass

    def value(self, query: str) -> tuple[float | None, str]:
        if not self.world.row.metrics:
            return None, "metrics-empty"
        _, _, ready, _ = self.world.counts()
        return (self.world.row.load / ready if ready else None), ""


class Anchor:
    """marathon-autoscale's algorithm (see the module docstring for the cited files)."""

    def __init__(self, world: World, *, min_range: float = 55.0, max_range: float = 80.0, multiplier: float = 1.5,
                 up_factor: int = 3, down_factor: int = 4, interval: float = 10.0) -> None:
        self.world, self.min_range, self.max_range = world, min_range, max_range
        self.multiplier, self.up_factor, self.down_factor, self.interval = multiplier, up_factor, down_factor, interval
        self.scale_up = self.cool_down = 0
        self.next_cycle = 0.0

    def value(self) -> float:
        if not self.world.row.metrics:
            raise ValueError("no task statistics")  # scalecpu.get_cpu_usage: timestamp_delta 0
        app = self.world.client.get_app(APP)
        tasks = [t for t in app.tasks if t.state == "TASK_RUNNING"]
        if not tasks:
            raise ValueError("No marathon app task data found")
        ready = app.ready_count()
        per_ready = self.world.row.load / ready if ready else 0.0
        usage = [100 * per_ready if app.task_ready(t) else 0.0 for t in tasks]
        return sum(usage) / len(usage)

    def cycle(self) -> tuple[float, int | None]:
        """One `run` iteration: returns its wall time (2 s per task) and the PUT target, if any."""
        app = self.world.client.get_app(APP)
        wall = 2.0 * len(app.tasks)
        try:
            value = self.value()
        except ValueError:
            return wall, None
        direction = 1 if value > self.max_range else -1 if value < self.min_range else 0
        target = None
        if direction == 1:
            self.scale_up, self.cool_down = self.scale_up + 1, 0
            if self.scale_up >= self.up_factor:
                target = min(math.ceil(app.instances * self.multiplier), MAX)
        elif direction == -1:
            self.cool_down, self.scale_up = self.cool_down + 1, 0
            if self.cool_down >= self.down_factor:
                target = max(math.floor(app.instances / self.multiplier), MIN)
        else:
            self.scale_up = self.cool_down = 0
        if target is not None and target != app.instances:
            try:
                self.world.client.scale(APP, target)  # no force: a 409 raises and is logged
            except DeploymentLocked:
                return wall, target  # counters NOT reset: run() caught the exception
            except MarathonError:
                return wall, target
        if target is not None:
            if direction == 1:
                self.scale_up = 0
            else:
                self.cool_down = 0
        return wall, target


def simulate(rows: list[Row], which: str, down_window: int | None = None, step_seconds: float = STEP_SECONDS,
             drop_window: int | None = None) -> Result:
    world = World(step_seconds)
    result = Result()
    end = rows[-1].t
    telemetry = Telemetry(out=io.StringIO(), clock=world.clock.now)
    policy = AutoscalePolicy(min_instances=MIN, max_instances=MAX, metric="cpu", target=TARGET)
    if down_window is not None:
        policy = policy.model_copy(update={"scale_down": policy.scale_down.model_copy(
            update={"stabilization_seconds": down_window})})
    if drop_window is not None:  # < 0: none (the plain HPA window)
        policy = policy.model_copy(update={"scale_down": policy.scale_down.model_copy(
            update={"drop_window_seconds": drop_window if drop_window >= 0 else None})})
    ours = Autoscaler(world.client, TraceMetric(world), ScalerConfig(policies={APP: policy}), MemoryStore(),
                      telemetry, clock=world.clock.now)
    anchor = Anchor(world)
    next_ours = 0.0
    last_instances = START
    deployed_rows: set[float] = set()
    try:
        t = 0.0
        while t < end:
            world.row = at(rows, t)
            if world.row.deploy and world.row.t not in deployed_rows:
                deployed_rows.add(world.row.t)
                world.client.restart(APP, force=True)  # the rollout the scenario starts (not the scaler's)
            instances, running, ready, deploying = world.counts()
            puts_before = sum(1 for r in world.fake.requests if r["method"] == "PUT")
            outage = not world.row.metrics
            if which == "ours" and t >= next_ours:
                started = time.perf_counter()
                ours.cycle()
                result.cycle_wall.append(time.perf_counter() - started)
                next_ours = t + 15.0
            elif which == "anchor" and t >= anchor.next_cycle:
                wall, _ = anchor.cycle()
                result.cycle_wall.append(wall)
                anchor.next_cycle = t + wall + anchor.interval  # its timer sleeps after the slow cycle
            puts = sum(1 for r in world.fake.requests if r["method"] == "PUT") - puts_before
            if deploying:
                result.during_deployments += puts
            now_instances = world.client.get_app(APP).instances
            if now_instances != last_instances:
                result.changes += 1
                if outage and now_instances < last_instances:
                    result.downs_in_outage += 1
                last_instances = now_instances
            utilization = world.row.load / ready if ready else math.inf
            if utilization > SLO:
                result.slo_minutes += TICK / 60
            result.instance_minutes += running * TICK / 60
            world.fake.advance(TICK)
            t += TICK
    finally:
        world.close()
    return result


def decision_cost(apps: int = 500, tasks_per_app: int = 10, cycles: int = 3) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one of our cycles over `apps` x `tasks_per_app`, median of `cycles`."""
    from orchestrator.services.marathon.prom import PrometheusSource
    from tests.support.prometheus import PrometheusStub

    clock = SimClock()
    fake = FakeMarathon(1, clock=clock, step_seconds=5, health_delay=1).start()
    prom = PrometheusStub()
    labels = {"orchestrator.autoscale.min": "2", "orchestrator.autoscale.max": "40",
              "orchestrator.autoscale.metric": "cpu", "orchestrator.autoscale.target": "0.65"}
    try:
        for i in range(apps):
            fake.add_app({"id": f"/team{i % 20}/app{i}", "instances": tasks_per_app, "cmd": "x", "labels": labels,
                          "healthChecks": [{"protocol": "HTTP"}]})
        prom.default = 0.66  # within tolerance: the cycle decides for every app and scales none
        client = MarathonClient(fake.urls, timeout=30)
        scaler = Autoscaler(client, PrometheusSource(prom.url), ScalerConfig(), MemoryStore(),
                            Telemetry(out=io.StringIO()), clock=clock.now)
        cpu, wall = [], []
        for _ in range(cycles):
            c0, w0 = time.thread_time(), time.perf_counter()
            decisions = scaler.cycle()
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - w0)
            assert len(decisions) == apps
        client.close()
    finally:
        prom.stop()
        fake.stop()
    return sorted(cpu)[len(cpu) // 2], sorted(wall)[len(wall) // 2]


def fake_hour() -> tuple[float, float, float]:
    """The fake Marathon on a simulated clock: (s to advance an idle hour, CPU s and wall s of an hour with our
    scaler cycling every 15 s over HTTP on one app growing to 50 tasks; client and fake in this process)."""
    class Busy:
        def new_cycle(self) -> None:
            pass

        def value(self, query: str) -> tuple[float | None, str]:
            return 0.9, ""  # 150 % of target: the app keeps growing to its max

    clock = SimClock()
    with FakeMarathon(3, clock=clock, step_seconds=5, health_delay=5) as fake:
        fake.add_app({"id": "/a", "instances": 4, "cmd": "x", "healthChecks": [{"protocol": "HTTP"}]})
        w0 = time.perf_counter()
        fake.advance(3600)
        idle = time.perf_counter() - w0
        with MarathonClient(fake.urls) as client:
            scaler = Autoscaler(client, Busy(), ScalerConfig(policies={"/a": AutoscalePolicy(
                min_instances=1, max_instances=50, metric="cpu", target=0.6)}), MemoryStore(),
                Telemetry(out=io.StringIO()), clock=clock.now)
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(240):
                scaler.cycle()
                fake.advance(15)
            return idle, time.process_time() - c0, time.perf_counter() - w0


def print_targets(results: dict[str, dict[str, Result]]) -> None:
    """Where the cost difference comes from (per trace) and issue 13's targets over these traces, met or not."""
    delta = {name: r["ours"].instance_minutes - r["anchor"].instance_minutes for name, r in results.items()}
    ours_cost = sum(r["ours"].instance_minutes for r in results.values())
    anchor_cost = sum(r["anchor"].instance_minutes for r in results.values())
    print("instance-minutes, ours - anchor: " + ", ".join(f"{name} {d:+.0f}" for name, d in delta.items()) +
          f"; total {ours_cost - anchor_cost:+.0f} ({100 * (ours_cost / anchor_cost - 1):+.1f} %)")

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    ours = [r["ours"] for r in results.values()]
    slo = (sum(r.slo_minutes for r in ours), sum(r["anchor"].slo_minutes for r in results.values()))
    targets = [f"fewer SLO-min than the anchor {slo[0]:.1f} < {slo[1]:.1f} {verdict(slo[0] < slo[1])}",
               f"at no more cost {ours_cost:.0f} <= {anchor_cost:.0f} {verdict(ours_cost <= anchor_cost)}",
               f"0 actions during deployments {verdict(sum(r.during_deployments for r in ours) == 0)}",
               f"0 scale-downs in outages {verdict(sum(r.downs_in_outage for r in ours) == 0)}"]
    oscillation = [r["ours"].changes for name, r in results.items() if name.startswith("oscillation")]
    if oscillation:
        targets.insert(0, f"<= 2 changes in the oscillation hour: {oscillation[0]} {verdict(oscillation[0] <= 2)}")
    print(f"targets ({len(results)} traces): " + "; ".join(targets))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trace", action="append", type=Path, help="a trace CSV (repeatable); default: built-ins")
    parser.add_argument("--skip-cost", action="store_true", help="skip the 500-app decision-cost measurement")
    parser.add_argument("--more", action="store_true",
                        help="add periodic traces (sines of 15-30 min, squares of 5-15 min) to the table")
    parser.add_argument("--only", help="run only the built-in traces whose name contains this")
    parser.add_argument("--down-window", type=int, help="our scale-down stabilization window (s), default the policy's")
    parser.add_argument("--drop-window", type=int,
                        help="our scale-down drop window (s), default the policy's; -1: none (the plain HPA window)")
    args = parser.parse_args()
    traces = {p.name: read_trace(p) for p in args.trace} if args.trace else builtin_traces()
    if args.more:
        traces.update(more_traces())
    if args.only:
        traces = {k: v for k, v in traces.items() if args.only in k}
    header = (f"{'trace':38} {'scaler':7} {'changes':>7} {'SLO-min':>8} {'inst-min':>9} {'in-depl':>8} "
              f"{'down-outage':>11} {'cycle s':>8}")
    print(header)
    print("-" * len(header))
    totals = {"ours": [0.0] * 5, "anchor": [0.0] * 5}
    results: dict[str, dict[str, Result]] = {}
    for name, rows in traces.items():
        # A rollout of the built-in deployment trace takes minutes: 30 s per step instead of 5 s.
        step = 30.0 if name.startswith("deployment") else STEP_SECONDS
        for which in ("ours", "anchor"):
            r = simulate(rows, which, args.down_window, step, args.drop_window)
            results.setdefault(name, {})[which] = r
            totals[which] = [a + b for a, b in zip(totals[which], (r.changes, r.slo_minutes, r.instance_minutes,
                                                                   r.during_deployments, r.downs_in_outage),
                                                   strict=True)]
            cycle = sorted(r.cycle_wall)[len(r.cycle_wall) // 2] if r.cycle_wall else 0.0
            label = "wall" if which == "ours" else "model"
            print(f"{name:38} {which:7} {r.changes:7d} {r.slo_minutes:8.1f} {r.instance_minutes:9.0f} "
                  f"{r.during_deployments:8d} {r.downs_in_outage:11d} {cycle:7.3f}{label[0]}")
    for which, (changes, slo, cost, depl, downs) in totals.items():
        print(f"{'TOTAL':38} {which:7} {changes:7.0f} {slo:8.1f} {cost:9.0f} {depl:8.0f} {downs:11.0f}")
    builtin = {name: r for name, r in results.items() if name in builtin_traces()}
    print_targets(builtin or results)  # issue 13's targets are over the built-in traces when they ran
    print("cycle s: median cycle duration — ours measured wall time (w), anchor modelled from its sleeps (m): "
          "2 s per task, plus its interval between cycles")
    idle, cpu, wall = fake_hour()
    print(f"fake Marathon, simulated hour: idle {idle:.3f} s; with our scaler every 15 s over HTTP (240 cycles, "
          f"up to 50 tasks) {cpu:.2f} s CPU, {wall:.2f} s wall")
    if not args.skip_cost:
        cpu, wall = decision_cost()
        print(f"decision cost, ours: one cycle over 500 apps / 5,000 tasks = {cpu:.3f} s CPU ({wall:.3f} s wall); "
              f"anchor: one process per app, {2 * 10:.0f} s of sleeps per 10-task app per cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
