"""`orchestrator migrate start|status|advance|rollback|validate` (the ZooKeeper A → B migration).

Exit codes (orchestrator/errors.py): 0 done (validate: the gate passes), 1 a gate failed or a delegated
action failed (the state file records where things stand), 2 bad input, a bad state file or a state that
forbids the operation (nothing changed), 5 an ensemble did not answer, 6 refused by a safety guard
(another migrate holds the lock; source and target are one ensemble).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from orchestrator.errors import InputError


def register(subparsers: Any) -> None:
    m = subparsers.add_parser("migrate", help="zero-downtime ZooKeeper A→B migration in six gated phases")
    sub = m.add_subparsers(dest="migrate_command", metavar="ACTION", required=True)

    def add(name: str, help_text: str, func: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--state", type=Path, default=Path("zk-migration.json"), metavar="FILE",
                       help="state file (default ./zk-migration.json, mode 0600, locked by FILE.lock while a "
                            "command changes it); a restarted tool resumes from it")
        p.set_defaults(func=func)
        return p

    p = add("start", "check the platform on A, record the baseline, create the state file", cmd_start)
    p.add_argument("--config", type=Path, required=True, metavar="FILE", help="migration settings (YAML or JSON)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="keep re-checking up to this long")
    creds = p.add_mutually_exclusive_group()
    creds.add_argument("--auth-env", metavar="NAME",
                       help="read the ZooKeeper credentials (one SCHEME:CREDENTIAL per line) from this environment "
                            "variable at every command; the state keeps only the reference env:NAME")
    creds.add_argument("--auth-file", type=Path, metavar="PATH",
                       help="read the ZooKeeper credentials from this file at every command; the state keeps only "
                            "the reference file:PATH")
    # Accepted only to explain why not: a credential in argv is visible to every local user.
    creds.add_argument("--auth", help=argparse.SUPPRESS)
    add("status", "show the phase reached, what is in progress and the recent history", cmd_status)
    p = add("validate", "evaluate a gate without changing anything (default: the current phase's)", cmd_validate)
    p.add_argument("--phase", type=int, default=None, help="the phase whose gate to evaluate (0-6)")
    p = add("advance", "carry out the next phase and complete it once its gate passes", cmd_advance)
    p.add_argument("--dry-run", action="store_true", help="show what would happen and evaluate the gates only")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="re-check the gate up to this long after the actions (default: check once)")
    p = add("rollback", "undo phases down to an earlier one (0 = before the migration)", cmd_rollback)
    p.add_argument("--to", type=int, required=True, metavar="PHASE", help="the phase to return to (0-5)")
    p.add_argument("--dry-run", action="store_true", help="show what would be undone; change nothing")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="re-check the gate up to this long after the undo actions (default: check once)")


def _wait(args: Any) -> float:
    wait = args.wait
    if not 0 <= wait <= 24 * 3600:
        raise InputError(f"--wait {wait}: expected 0 to 86400 seconds")
    return float(wait)


def _migration(args: Any) -> Any:
    from orchestrator.services.migration.phases import Migration
    return Migration(args.state, out=lambda line: print(line, flush=True))


def cmd_start(args: Any) -> int:
    from orchestrator.services.migration.state import MigrationError, load_config, with_auth
    if args.auth is not None:
        raise MigrationError("--auth is not accepted: a credential on the command line is visible to every local "
                             "user; use --auth-env NAME or --auth-file PATH (or auth: env:NAME / file:/path)")
    cfg = load_config(args.config)
    ref = None
    if args.auth_env is not None:
        ref = f"env:{args.auth_env}"
    elif args.auth_file is not None:
        ref = f"file:{args.auth_file.absolute()}"
    if ref is not None:
        cfg = with_auth(cfg, ref)
    return int(_migration(args).start(cfg, wait=_wait(args)))


def cmd_status(args: Any) -> int:
    _migration(args).status()
    return 0


def cmd_validate(args: Any) -> int:
    return int(_migration(args).validate(args.phase))


def cmd_advance(args: Any) -> int:
    return int(_migration(args).advance(dry_run=args.dry_run, wait=_wait(args)))


def cmd_rollback(args: Any) -> int:
    return int(_migration(args).rollback(args.to, dry_run=args.dry_run, wait=_wait(args)))
