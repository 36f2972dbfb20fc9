"""`orchestrator migrate start|status|advance|rollback|validate` (the ZooKeeper A → B migration).

Exit codes: 0 done (validate: the gate passes), 1 a gate failed or a delegated action failed (the state
file records where things stand), 2 bad input or a state that forbids the operation (nothing changed).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    m = subparsers.add_parser("migrate", help="zero-downtime ZooKeeper A→B migration in six gated phases")
    sub = m.add_subparsers(dest="migrate_command", metavar="ACTION", required=True)

    def add(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--state", type=Path, default=Path("zk-migration.json"), metavar="FILE",
                       help="state file (default ./zk-migration.json); a restarted tool resumes from it")
        p.set_defaults(func=func)
        return p

    p = add("start", "check the platform on A, record the baseline, create the state file", cmd_start)
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="migration settings (YAML or JSON)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="keep re-checking up to this long")
    add("status", "show the phase reached, what is in progress and the recent history", cmd_status)
    p = add("validate", "evaluate a gate without changing anything (default: the current phase's)", cmd_validate)
    p.add_argument("--phase", type=int, default=None)
    p = add("advance", "carry out the next phase and complete it once its gate passes", cmd_advance)
    p.add_argument("--dry-run", action="store_true", help="show what would happen and evaluate the gates only")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="re-check the gate up to this long after the actions (default: check once)")
    p = add("rollback", "undo phases down to an earlier one (0 = before the migration)", cmd_rollback)
    p.add_argument("--to", type=int, required=True, metavar="PHASE")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")


def _run(action) -> int:
    from orchestrator.services.migration.phases import MigrationError
    try:
        return int(action() or 0)
    except MigrationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _migration(args):
    from orchestrator.services.migration.phases import Migration
    return Migration(args.state, out=lambda line: print(line, flush=True))


def cmd_start(args) -> int:
    from orchestrator.services.migration.phases import load_config
    return _run(lambda: _migration(args).start(load_config(args.config), wait=args.wait))


def cmd_status(args) -> int:
    return _run(lambda: (_migration(args).status(), 0)[1])


def cmd_validate(args) -> int:
    return _run(lambda: _migration(args).validate(args.phase))


def cmd_advance(args) -> int:
    return _run(lambda: _migration(args).advance(dry_run=args.dry_run, wait=args.wait))


def cmd_rollback(args) -> int:
    return _run(lambda: _migration(args).rollback(args.to, dry_run=args.dry_run, wait=args.wait))
