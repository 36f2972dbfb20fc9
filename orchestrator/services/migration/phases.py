"""The six-phase ZooKeeper A → B migration as a persisted state machine with gates.

What the tool does itself: every gate check (ZooKeeper 4-letter commands, Mesos and Marathon HTTP APIs,
the sync engine's /metrics, a full tree verification), the S3 archive of A in phase 6, the state file,
and running the operator's hook. The Kubernetes actions (deploying B, starting and stopping masters and
agents, starting, reversing and stopping the sync engine) are delegated: to `hook PHASE apply|undo` when
a hook is configured, otherwise printed as instructions; the gate then decides whether they took effect.
"""
from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import OrchestratorError
from orchestrator.services.migration import checks as C
from orchestrator.services.migration.state import (
    Config,
    MigrationError,
    Pending,
    State,
    exclusive,
    load_config,
    resolve_auth,
)

# The configuration and state models, the lock and the credential references live in state.py.
__all__ = ["PHASES", "Config", "Migration", "MigrationError", "State", "load_config"]


# -- phases --------------------------------------------------------------------------------------------------

@dataclass
class Phase:
    number: int
    title: str
    apply: list[str]  # what the operator (or hook) does to enter the phase
    undo: list[str]  # what takes the system back to the previous phase


PHASES = [
    Phase(1, "Deploy ensemble B and sync A→B until lag and verify pass",
          ["deploy ZooKeeper ensemble B ({target})",
           "run the sync engine: orchestrator zk sync --source {source} --target {target} {path_args} "
           "(metrics at {sync_metrics})"],
          ["stop the sync engine", "remove ensemble B"]),
    Phase(2, "Start Mesos masters on B",
          ["start Mesos masters with --zk=zk://{target}/mesos: {masters_b} (they join as standbys)"],
          ["stop the Mesos masters on B: {masters_b}"]),
    Phase(3, "Stop the Mesos masters on A; reverse the sync to B→A",
          ["stop the Mesos masters on A: {masters_a} (a master on B takes over)",
           "restart the sync engine reversed, so that A stays a rollback target: "
           "orchestrator zk sync --source {target} --target {source} {path_args}"],
          ["restart the sync engine A→B: orchestrator zk sync --source {source} --target {target} {path_args}",
           "start the Mesos masters on A: {masters_a}"]),
    Phase(4, "Start Mesos agents on B",
          ["start Mesos agents with --master=zk://{target}/mesos: {agents_b}"],
          ["stop the Mesos agents on B: {agents_b}"]),
    Phase(5, "Drain A's agents",
          ["drain the Mesos agents on A (maintenance mode, let Marathon move the tasks): {agents_a}"],
          ["bring the agents on A back into service: {agents_a}"]),
    Phase(6, "Stop the sync and archive A",
          ["stop the sync engine (the tool then archives A to {archive})"],
          ["restart the sync engine B→A: orchestrator zk sync --source {target} --target {source} {path_args}"]),
]


def describe(lines: list[str], cfg: Config) -> list[str]:
    values = cfg.model_dump()
    values.update({k: ", ".join(v) or "(none)" for k, v in values.items() if isinstance(v, list)})
    values["path_args"] = " ".join(f"--path {p}" for p in cfg.paths)
    return [line.format(**values) for line in lines]


class Migration:
    def __init__(self, state_path: Path, out: Callable[[str], None] = print) -> None:
        self.path = state_path
        self.out = out

    # -- gates ----------------------------------------------------------------------------------------------
    def gate(self, state: State, phase: int) -> list[C.Check]:
        """What must hold once `phase` is complete (0: before the migration)."""
        cfg = state.config
        a_to_b = phase <= 2
        masters = cfg.masters_a + cfg.masters_b if a_to_b else cfg.masters_b + cfg.masters_a
        leader, error = C.leader_state(masters)
        checks = [C.zk_quorum("A", cfg.source)]
        if phase >= 1:
            checks.append(C.zk_quorum("B", cfg.target))
        if phase in (1, 2):
            checks.append(C.sync_healthy(cfg.sync_metrics, cfg.source, cfg.target, cfg.max_lag_seconds))
        if phase in (3, 4, 5):
            checks.append(C.sync_healthy(cfg.sync_metrics, cfg.target, cfg.source, cfg.max_lag_seconds))
        if 1 <= phase <= 5:
            # Once masters run on B, each side has ephemeral nodes of its own live sessions.
            checks.append(self._trees_identical(state, a_to_b, ignore_ephemeral=phase >= 2))
        if phase == 2:
            checks.append(C.masters_healthy("B", cfg.masters_b))
        checks.append(C.mesos_leader_in("A" if a_to_b else "B", cfg.masters_a if a_to_b else cfg.masters_b,
                                        leader, error))
        if phase >= 3:
            checks.append(C.masters_stopped("A", cfg.masters_a))
        if phase >= 4:
            checks.append(C.agents_registered(cfg.agents_b, leader, error))
        if phase >= 5:
            checks.append(C.agents_drained(cfg.agents_a, leader, error))
        if phase == 6:
            checks.append(C.sync_stopped(cfg.sync_metrics))
            checks.append(self._archived(state))
        checks.append(C.frameworks_registered(cfg.frameworks, leader, error))
        checks.append(C.marathon_leader(cfg.marathon))
        if phase >= 1:
            checks.append(C.no_new_task_failures(state.baseline_task_failures, C.task_failures(masters, leader)))
        return checks

    def _sides(self, cfg: Config):
        """Sessions on A and B with the referenced credentials (read now, never stored)."""
        from orchestrator.services.zk.session import close_client, open_client
        auth = resolve_auth(cfg.auth)
        a = open_client(cfg.source, auth, timeout=10, label="source (A)")
        try:
            b = open_client(cfg.target, auth, timeout=10, label="target (B)")
        except BaseException:
            close_client(a)
            raise
        return a, b

    def _ensure_distinct(self, a, b, cfg: Config) -> None:
        """RefusedError when A and B are one ensemble (asked of the servers) with overlapping paths."""
        from orchestrator.services.zk.identity import ensure_distinct
        ensure_distinct(a.client, cfg.paths, b.client, cfg.paths)

    def _check_identity(self, cfg: Config) -> None:
        """At start: refuse a target that is the source under another spelling. B is often deployed only in
        phase 1; while none of its servers answers, the check is left to the gates (every tree comparison
        from phase 1 on asks the servers first)."""
        from orchestrator.services.zk.session import close_client
        if not any(C.zk_mode(host, port) for host, port in C.servers(cfg.target)):
            self.out("ensemble B does not answer yet: whether it differs from A is checked from phase 1 on")
            return
        a, b = self._sides(cfg)
        try:
            self._ensure_distinct(a, b, cfg)
        finally:
            close_client(a)
            close_client(b)

    def _trees_identical(self, state: State, a_to_b: bool, ignore_ephemeral: bool) -> C.Check:
        from orchestrator.services.zk.session import close_client
        from orchestrator.services.zk.tree import ZkInputError
        from orchestrator.services.zk.verify import verify
        name = "trees identical " + ("A→B" if a_to_b else "B→A")
        try:
            a, b = self._sides(state.config)
        except OrchestratorError as exc:
            return C.Check(name, False, str(exc))
        try:
            # The same ensemble under two spellings would compare a tree with itself and always pass.
            self._ensure_distinct(a, b, state.config)
            src, dst = (a, b) if a_to_b else (b, a)
            report = verify(src, dst, state.config.paths, ignore_ephemeral=ignore_ephemeral, rechecks=4)
        except (OrchestratorError, ZkInputError) as exc:
            return C.Check(name, False, str(exc))
        finally:
            close_client(a)
            close_client(b)
        s_name, t_name = ("A", "B") if a_to_b else ("B", "A")
        per_root = getattr(report, "roots", None) or {}
        compared = ", ".join(f"{r}: {s_name} {s} / {t_name} {t}" for r, (s, t) in per_root.items())
        counts = f"{s_name} {report.source_count} znodes, {t_name} {report.target_count} znodes" + \
            (f" ({compared})" if compared else "")
        empty = [r for r, (s, _) in per_root.items() if s == 0]
        if report.source_count == 0 or empty:
            where = ", ".join(empty or state.config.paths)
            return C.Check(name, False, f"nothing to compare: {s_name} holds no znode under {where} ({counts})")
        if report.identical:
            return C.Check(name, True, f"{counts}, digest {report.source_digest[:16]}")
        shown = "; ".join(str(d) for d in report.differences[:5])
        return C.Check(name, False, f"{counts}; {len(report.differences)} differences: {shown}")

    def _archived(self, state: State) -> C.Check:
        if not state.archive_key:
            return C.Check("A archived", False, "no archive written yet")
        from orchestrator.services.zk.archive import S3Location, s3_client
        loc = S3Location.parse(state.config.archive, option="archive")
        try:
            head = s3_client(state.config.s3_endpoint_url).head_object(Bucket=loc.bucket, Key=state.archive_key)
        except Exception as exc:
            return C.Check("A archived", False, f"s3://{loc.bucket}/{state.archive_key}: {exc}")
        return C.Check("A archived", True, f"s3://{loc.bucket}/{state.archive_key} ({head['ContentLength']} bytes)")

    def _show(self, checks: list[C.Check]) -> bool:
        for c in checks:
            self.out("  " + c.line())
        return all(c.ok for c in checks)

    def _wait_gate(self, state: State, phase: int, wait: float) -> tuple[bool, list[C.Check]]:
        deadline = time.monotonic() + wait
        while True:
            checks = self.gate(state, phase)
            if all(c.ok for c in checks) or time.monotonic() >= deadline:
                return all(c.ok for c in checks), checks
            time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))

    # -- delegated actions ----------------------------------------------------------------------------------
    def _delegate(self, state: State, phase: int, action: str) -> bool:
        p = PHASES[phase - 1]
        steps = describe(p.apply if action == "apply" else p.undo, state.config)
        if not state.config.hook:
            self.out(f"operator, please {'do' if action == 'apply' else 'undo'} phase {phase}:")
            for s in steps:
                self.out(f"  - {s}")
            return True
        cmd = shlex.split(state.config.hook) + [str(phase), action]
        env = dict(os.environ, ORCH_MIGRATION_PHASE=str(phase), ORCH_MIGRATION_ACTION=action,
                   ORCH_MIGRATION_STEPS="\n".join(steps), ORCH_ZK_SOURCE=state.config.source,
                   ORCH_ZK_TARGET=state.config.target)
        self.out(f"running hook: {' '.join(cmd)}")
        try:
            done = subprocess.run(cmd, env=env)
        except OSError as exc:
            self.out(f"hook could not be started: {exc.strerror or exc}")
            state.record("hook-failed", phase=phase, action=action, code=None)
            return False
        if done.returncode != 0:
            self.out(f"hook failed with exit code {done.returncode}")
            state.record("hook-failed", phase=phase, action=action, code=done.returncode)
            return False
        return True

    def _archive_a(self, state: State) -> bool:
        from orchestrator.services.zk.archive import S3Location, expiry_days, s3_client, snapshot
        from orchestrator.services.zk.session import close_client, open_client
        cfg = state.config
        stopped = C.sync_stopped(cfg.sync_metrics)
        if not stopped.ok:
            self.out(f"  {stopped.line()} — not archiving A while it is still being written")
            return False
        try:
            a = open_client(cfg.source, resolve_auth(cfg.auth), timeout=10, label="source (A)")
            try:
                out = snapshot(a, cfg.paths, s3_client(cfg.s3_endpoint_url),
                               S3Location.parse(cfg.archive, option="archive"), expiry_days(cfg.retention_hours))
            finally:
                close_client(a)
        except OrchestratorError as exc:
            self.out(f"archive of A failed: {exc}")
            state.record("archive-failed", reason=str(exc))
            return False
        state.archive_key = out["key"]
        state.record("archived", key=out["key"], znodes=out["znodes"])
        self.out(f"archived A: {out['znodes']} znodes to {out['key']} ({out['lifecycle']})")
        return True

    # -- commands -------------------------------------------------------------------------------------------
    def start(self, cfg: Config, wait: float = 0.0) -> int:
        with exclusive(self.path):
            # Checked under the lock: two starts cannot both find no state and both write one.
            if self.path.exists():
                raise MigrationError(f"{self.path} already exists: a migration is under way (see `migrate status`)")
            self._check_identity(cfg)
            state = State(config=cfg)
            self.out("phase 0 (before the migration) must hold:")
            ok, checks = self._wait_gate(state, 0, wait)
            self._show(checks)
            if not ok:
                self.out("not started: the platform is not healthy on A")
                return 1
            leader, _ = C.leader_state(cfg.masters_a)
            state.baseline_task_failures = C.task_failures(cfg.masters_a, leader)
            state.record("started", baseline_task_failures=state.baseline_task_failures)
            state.save(self.path)
        self.out(f"migration started; state in {self.path}. Next: phase 1 — {PHASES[0].title}")
        return 0

    def status(self) -> State:
        state = State.load(self.path)
        self.out(f"phase {state.phase}/6 complete" + (f": {PHASES[state.phase - 1].title}" if state.phase else ""))
        if state.pending:
            p = state.pending
            what = f"applying phase {p.phase}" if p.action == "apply" else f"rolling back to phase {p.to}"
            self.out(f"in progress: {what} (gate not passed yet)")
        elif state.phase < 6:
            self.out(f"next: phase {state.phase + 1} — {PHASES[state.phase].title}")
        else:
            self.out("migration complete")
        for h in state.history[-5:]:
            self.out(f"  {h['time']} {h['event']} " + " ".join(f"{k}={v}" for k, v in h.items()
                                                              if k not in ("time", "event", "checks")))
        return state

    def validate(self, phase: int | None = None) -> int:
        state = State.load(self.path)
        n = state.phase if phase is None else phase
        if not 0 <= n <= 6:
            raise MigrationError(f"--phase {n}: there is no such phase (0-6)")
        self.out(f"gate of phase {n}:")
        return 0 if self._show(self.gate(state, n)) else 1

    def advance(self, dry_run: bool = False, wait: float = 0.0) -> int:
        if dry_run:  # reads only: no lock needed, the state file is replaced atomically
            return self._advance(State.load(self.path), dry_run=True, wait=wait)
        with exclusive(self.path):
            return self._advance(State.load(self.path), dry_run=False, wait=wait)

    def _advance(self, state: State, dry_run: bool, wait: float) -> int:
        if state.pending and state.pending.action == "undo":
            raise MigrationError(f"a rollback to phase {state.pending.to} is unfinished: run rollback again")
        if state.phase >= 6:
            self.out("migration complete: nothing to advance")
            return 0
        n = state.phase + 1
        phase = PHASES[n - 1]
        resuming = bool(state.pending and state.pending.phase == n)
        # Before touching anything, the current phase must still hold; once the phase is under way its
        # actions have changed the system, so only its own gate counts.
        if not resuming:
            self.out(f"phase {state.phase} must still hold:")
        if not resuming and not self._show(self.gate(state, state.phase)):
            self.out(f"refusing to start phase {n}: phase {state.phase} no longer holds")
            if not dry_run:
                state.record("advance-refused", phase=n, reason="current gate failed")
                state.save(self.path)
            return 1
        if dry_run:
            self.out(f"dry run: phase {n} — {phase.title} would:")
            for s in describe(phase.apply, state.config):
                self.out(f"  - {s}" + ("" if not state.config.hook else " (via the hook)"))
            self.out("its gate, evaluated now (nothing was changed):")
            self._show(self.gate(state, n))
            return 0
        self.out(f"phase {n} — {phase.title}")
        if not (state.pending and state.pending.hook_done):
            state.pending = Pending(action="apply", phase=n, hook_done=False)
            state.save(self.path)
            if not self._delegate(state, n, "apply"):
                state.save(self.path)
                return 1
            state.pending.hook_done = True
            state.save(self.path)
        if n == 6 and not state.archive_key:
            if not self._archive_a(state):
                state.save(self.path)
                return 1
            state.save(self.path)
        ok, checks = self._wait_gate(state, n, wait)
        self.out(f"gate of phase {n}:")
        self._show(checks)
        if not ok:
            state.record("gate-failed", phase=n, checks=[c.line() for c in checks if not c.ok])
            state.save(self.path)
            self.out(f"phase {n} not complete; fix the failing checks and run `migrate advance` again")
            return 1
        state.phase, state.pending = n, None
        state.record("phase-complete", phase=n)
        state.save(self.path)
        self.out(f"phase {n} complete" + (f". Next: phase {n + 1} — {PHASES[n].title}" if n < 6 else
                                           ". Migration complete."))
        return 0

    def rollback(self, to: int, dry_run: bool = False, wait: float = 0.0) -> int:
        if dry_run:
            return self._rollback(State.load(self.path), to, dry_run=True, wait=wait)
        with exclusive(self.path):
            return self._rollback(State.load(self.path), to, dry_run=False, wait=wait)

    def _rollback(self, state: State, to: int, dry_run: bool, wait: float) -> int:
        pending = state.pending
        top = pending.phase if pending and pending.action == "apply" else state.phase
        if pending and pending.action == "undo":
            top = pending.phase
            if to != pending.to:
                raise MigrationError(f"a rollback to phase {pending.to} is unfinished: finish it first")
        if not 0 <= to < top:
            raise MigrationError(f"--to {to}: can only roll back to a phase before {top} (0 = before the migration)")
        steps = list(range(top, to, -1))
        if dry_run:
            self.out(f"dry run: rolling back to phase {to} would undo phases {', '.join(map(str, steps))}:")
            for n in steps:
                for s in describe(PHASES[n - 1].undo, state.config):
                    self.out(f"  - phase {n}: {s}")
            self.out(f"gate of phase {to}, evaluated now (nothing was changed):")
            self._show(self.gate(state, to))
            return 0
        if not (pending and pending.action == "undo" and pending.hook_done):
            state.pending = Pending(action="undo", phase=top, to=to, hook_done=False)
            state.save(self.path)
            for n in steps:
                if not self._delegate(state, n, "undo"):
                    state.save(self.path)
                    return 1
            state.pending.hook_done = True
            state.save(self.path)
        ok, checks = self._wait_gate(state, to, wait)
        self.out(f"gate of phase {to}:")
        self._show(checks)
        if not ok:
            state.record("rollback-gate-failed", to=to, checks=[c.line() for c in checks if not c.ok])
            state.save(self.path)
            self.out(f"rollback to phase {to} not complete; fix the failing checks and run it again")
            return 1
        state.phase, state.pending = to, None
        state.archive_key = None  # A changes again from here on: phase 6 must archive it afresh
        state.record("rolled-back", to=to)
        state.save(self.path)
        self.out(f"rolled back to phase {to}")
        return 0
