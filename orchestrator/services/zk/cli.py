"""`orchestrator zk copy|sync|verify|snapshot|restore` (the command-line contract scripts rely on).

Exit codes (orchestrator/errors.py): 0 success (verify: identical), 1 the operation failed or found
differences, 2 bad input (nothing was changed), 5 a ZooKeeper ensemble or S3 could not be reached, 6 a
safety guard refused (deletes without --allow-deletes, source and target the same ensemble), 130
interrupted (the target may be partial: re-run the same command).

What copy and sync's bootstrap will never do: copy from a source root that is missing or empty, delete a
target node without --allow-deletes, write anything under --dry-run, write onto the source ensemble itself
(however it is spelled) or into a subtree that overlaps the source on the same ensemble.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from orchestrator.errors import (
    ExitCode,
    InputError,
    Interrupted,
    OrchestratorError,
    RefusedError,
    UnreachableError,
)
from orchestrator.services.zk.tls import CA_FILE, CERT_FILE, KEY_FILE  # stdlib only: `--help` stays light

if TYPE_CHECKING:  # kazoo is imported by the commands, not by `--help`
    from orchestrator.services.zk.tree import Ensemble, Plan, Tree

MAX_TIMEOUT = 3600.0  # seconds; a longer connect or session timeout is a typo, not a wish
MAX_RESYNC_INTERVAL = 7 * 86400.0
MAX_RECHECKS = 100
PLAN_PATHS_SHOWN = 10


def _add_connection(p: argparse.ArgumentParser, source: bool = True, target: bool = True) -> None:
    if source:
        p.add_argument("--source", required=True, metavar="CONNECT", help="source ensemble, host:port[,host:port…][/chroot]")
    if target:
        p.add_argument("--target", required=True, metavar="CONNECT", help="target ensemble")
    sides = [side for side, wanted in (("source", source), ("target", target)) if wanted]
    for side in sides:
        p.add_argument(f"--{side}-tls", metavar="DIR",
                       help=f"connect to the {side} over TLS (its secure client port, e.g. 2281), verifying the "
                            f"server certificate and host name against DIR/{CA_FILE}; DIR/{CERT_FILE} + {KEY_FILE}, "
                            "if present, are sent as a client certificate (a mounted kubernetes.io/tls Secret)")
    p.add_argument("--auth", action="append", metavar="SCHEME:CREDENTIAL",
                   help="authentication added on both sessions (repeatable), e.g. digest:super:secret; prefer the "
                        "ORCHESTRATOR_ZK_AUTH environment variable (one per line): arguments show in the process list")
    p.add_argument("--session-timeout", type=float, default=10.0, metavar="SECONDS",
                   help=f"ZooKeeper session timeout (default 10, at most {MAX_TIMEOUT:.0f})")
    p.add_argument("--connect-timeout", type=float, default=15.0, metavar="SECONDS",
                   help=f"give up when an ensemble cannot be reached within this time (default 15, at most "
                        f"{MAX_TIMEOUT:.0f})")


def _add_paths(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--path", dest="paths", action="append", required=required, metavar="P",
                   help="subtree to process (repeatable), e.g. --path /mesos --path /marathon")


def _add_guards(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--dry-run", action="store_true",
                   help=f"print what {what} would create, change and delete on the target; change nothing")
    p.add_argument("--allow-deletes", action="store_true",
                   help=f"let {what} delete target znodes the source does not have (refused otherwise, with the "
                        "plan printed: a swapped --source/--target or a wrong chroot looks exactly like this)")


def register(subparsers: Any) -> None:
    zk = subparsers.add_parser("zk", help="copy, continuously sync, verify and archive ZooKeeper trees")
    sub = zk.add_subparsers(dest="zk_command", metavar="ACTION", required=True)

    p = sub.add_parser("copy", help="copy subtrees from source to target once (source wins), then exit")
    _add_connection(p)
    _add_paths(p)
    _add_guards(p, "the copy")
    p.set_defaults(func=cmd_copy)

    p = sub.add_parser("sync", help="copy, then follow every change until SIGTERM/SIGINT")
    _add_connection(p)
    _add_paths(p)
    _add_guards(p, "the initial copy (bootstrap)")
    p.add_argument("--ephemeral", choices=("mirror", "skip"), default="mirror",
                   help="mirror: ephemeral nodes become ephemeral nodes of the engine's session on the target "
                        "(default); skip: they are not copied")
    p.add_argument("--metrics-port", type=int, default=9143, metavar="N", help="Prometheus /metrics port (0: any)")
    p.add_argument("--metrics-address", default="0.0.0.0", metavar="ADDR",
                   help="address the /metrics server listens on (default: all; 127.0.0.1 for local use)")
    p.add_argument("--resync-interval", type=float, default=300.0, metavar="SECONDS",
                   help="full re-comparison period, which also carries ACL changes (ZooKeeper sends no event "
                        f"for them); 0 disables, at most {MAX_RESYNC_INTERVAL:.0f}")
    p.add_argument("--watch-mode", choices=("auto", "recursive", "per-node"), default="auto",
                   help="how changes on the source are followed: recursive = one persistent recursive watch per "
                        "path (ZooKeeper 3.6+), per-node = a watch on every node (any version), auto = recursive "
                        "if the source supports it (default)")
    p.add_argument("--trace", metavar="FILE",
                   help="latency analysis: at exit, write one JSON line per replicated change with its stage "
                        "timestamps (source commit, watch event, read back, sent, acknowledged) to FILE")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("verify", help="compare subtrees; exit 0 only when identical, differences listed")
    _add_connection(p)
    _add_paths(p)
    p.add_argument("--ignore-ephemeral", action="store_true", help="leave ephemeral nodes out of the comparison")
    p.add_argument("--recheck", type=int, default=0, metavar="N",
                   help="re-read differing nodes up to N times (0.5 s apart) before reporting them (live systems); "
                        f"at most {MAX_RECHECKS}")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("snapshot", help="write subtrees as one object to S3 (bucket expiry set or checked)")
    _add_connection(p, target=False)
    _add_paths(p)
    p.add_argument("--s3", required=True, metavar="s3://BUCKET/PREFIX")
    p.add_argument("--retention-hours", type=int, default=72, help="bucket lifecycle expiry for PREFIX (default 72)")
    p.add_argument("--check-lifecycle-only", action="store_true",
                   help="do not change the bucket lifecycle; fail if it does not expire PREFIX as required")
    p.add_argument("--allow-shorter-retention", action="store_true",
                   help="allow an expiry shorter than the one the bucket applies to PREFIX now (it also "
                        "shortens the life of the snapshots already there)")
    p.add_argument("--endpoint-url", default=None, help="S3 endpoint (S3-compatible stores)")
    p.set_defaults(func=cmd_snapshot)

    p = sub.add_parser("restore", help="rebuild subtrees on the target from an S3 snapshot")
    _add_connection(p, source=False)
    p.add_argument("--s3", required=True, metavar="s3://BUCKET/KEY-or-PREFIX",
                   help="a snapshot object, or a prefix (its newest snapshot is used)")
    _add_paths(p, required=False)
    p.add_argument("--replace", action="store_true",
                   help="allow overwriting subtrees that already hold data on the target")
    p.add_argument("--dry-run", action="store_true",
                   help="verify the snapshot and print what the restore would change; change nothing")
    p.add_argument("--endpoint-url", default=None, help="S3 endpoint (S3-compatible stores)")
    p.set_defaults(func=cmd_restore)

    from orchestrator.services.zk import reconfig  # membership changes (docs/quorum-changes.md)

    reconfig.register(sub)


# ---------------------------------------------------------------------------------------------------
# Input checks: every number before any connection, one line naming the option.

def _seconds(option: str, value: float, allow_zero: bool = False, limit: float = MAX_TIMEOUT) -> None:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0) and value <= limit
    if not ok:
        low = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{option} {value:g}: must be a number of seconds {low} and at most {limit:g}")


def check_connection_options(args: Any) -> None:
    """The options every zk command shares (also used by snapshot and restore)."""
    _seconds("--connect-timeout", args.connect_timeout)
    _seconds("--session-timeout", args.session_timeout)


def _check_options(args: Any) -> list[str]:
    from orchestrator.services.zk.tree import validate_paths
    check_connection_options(args)
    if getattr(args, "resync_interval", None) is not None:
        _seconds("--resync-interval", args.resync_interval, allow_zero=True, limit=MAX_RESYNC_INTERVAL)
    if getattr(args, "metrics_port", None) is not None and not 0 <= args.metrics_port <= 65535:
        raise InputError(f"--metrics-port {args.metrics_port}: not a port number (0-65535; 0 picks a free one)")
    if getattr(args, "recheck", None) is not None and not 0 <= args.recheck <= MAX_RECHECKS:
        raise InputError(f"--recheck {args.recheck}: must be between 0 and {MAX_RECHECKS}")
    paths = validate_paths(args.paths)
    if getattr(args, "trace", None):
        try:  # written at exit: a path that cannot be written must fail now, before anything is copied
            with open(args.trace, "w", encoding="utf-8"):
                pass
        except OSError as exc:
            raise InputError(f"--trace {args.trace}: {exc.strerror or exc}") from None
    return paths


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT/SIGTERM set `stop` instead of raising: the writer stops at its next step. (A KeyboardInterrupt
    raised at an arbitrary point can land inside kazoo's request path, which swallows it.)"""
    def handler(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _quiet_kazoo(quiet: bool = True) -> None:
    # One-shot commands (and sync until its engine starts) report connection trouble in their one error
    # line; kazoo's per-retry warnings ("Connection dropped …") would bury it. The running sync daemon
    # keeps them: they belong in its log.
    logging.getLogger("kazoo").setLevel(logging.CRITICAL if quiet else logging.NOTSET)


@contextlib.contextmanager
def _pair(args: Any, prefer_leader: bool = False) -> Iterator[tuple[Ensemble, Ensemble]]:
    """Started source and target sessions, closed on the way out. `prefer_leader`: each on its ensemble's
    leader when `srvr` says which one leads (the sync engine's shortest path, wire.leader_first)."""
    from orchestrator.services.zk.session import auth_from, close_client, open_client
    from orchestrator.services.zk.tls import ZkTls
    auth = auth_from(args.auth)
    source_tls, target_tls = ZkTls.of(args.source_tls, "--source-tls"), ZkTls.of(args.target_tls, "--target-tls")
    source = open_client(args.source, auth, timeout=args.connect_timeout, session_timeout=args.session_timeout,
                         label="source", tls=source_tls, prefer_leader=prefer_leader)
    try:
        target = open_client(args.target, auth, timeout=args.connect_timeout, session_timeout=args.session_timeout,
                             label="target", tls=target_tls, prefer_leader=prefer_leader)
    except BaseException:
        close_client(source)
        raise
    try:
        yield source, target
    finally:
        close_client(target)
        close_client(source)


def _ensure_distinct(source: Ensemble, target: Ensemble, paths: list[str]) -> None:
    from orchestrator.services.zk.identity import ensure_distinct
    ensure_distinct(source.client, paths, target.client, paths)


def _read(side: Ensemble, paths: list[str], name: str, hosts: str) -> Tree:
    """A side's trees; a read permission error or a lost connection becomes one line (nothing changed yet)."""
    try:
        return side.read(paths)
    except Exception as exc:
        _reraise_read_error(exc, name, hosts)
        raise


def _reraise_read_error(exc: Exception, name: str, hosts: str) -> None:
    from orchestrator.services.zk.tree import ZkAccessError
    if isinstance(exc, ZkAccessError):
        raise InputError(f"{name}: no permission to read {exc.path}: give the credentials with --auth or "
                         "ORCHESTRATOR_ZK_AUTH (nothing was changed)") from None
    if _lost(exc):
        raise UnreachableError(f"lost the {name} ensemble {hosts!r} while reading: {type(exc).__name__} "
                               "(nothing was changed)") from None


def _lost(exc: BaseException) -> bool:
    from orchestrator.services.zk.tree import is_connection_error
    return isinstance(exc, OSError) or (isinstance(exc, Exception) and is_connection_error(exc))


def _check_source_roots(tree: Tree, paths: list[str], source: str) -> None:
    """A copy from nothing would delete everything: a missing or empty source root is an error."""
    for root in paths:
        if root not in tree:
            raise InputError(f"--path {root} does not exist on the source {source!r} (check the path and the "
                             "chroot in --source); nothing was changed")
        if not tree[root].children:
            raise InputError(f"--path {root} is empty on the source {source!r} (no children): refusing to copy an "
                             "empty tree over the target; nothing was changed")


def _show_plan(plan: Plan, paths: list[str], detail: bool) -> None:
    print(f"plan for {', '.join(paths)} on the target: {plan.summary()}", flush=True)
    if detail:
        for line in plan.describe(PLAN_PATHS_SHOWN):
            print(line)


def _guard(plan: Plan, args: Any, what: str) -> bool:
    """Print the plan; True when the caller may write. Refuses deletes without --allow-deletes."""
    removals = plan.removals()
    _show_plan(plan, args.paths, detail=args.dry_run or bool(removals and not args.allow_deletes))
    if args.dry_run:
        print("dry run: nothing was changed")
        return False
    if removals and not args.allow_deletes:
        raise RefusedError(f"{what} would delete {len(removals)} znodes on the target that the source does not "
                           "have (plan above); nothing was changed. Check --source, --target and --path; re-run "
                           "with --allow-deletes to delete them")
    return True


# ---------------------------------------------------------------------------------------------------
# Commands.

def cmd_copy(args: Any) -> int:
    from orchestrator.services.zk.engine import bootstrap
    from orchestrator.services.zk.tree import plan_copy
    paths = _check_options(args)
    _quiet_kazoo()
    writing = False
    try:
        with _pair(args) as (source, target):
            _ensure_distinct(source, target, paths)
            tree = _read(source, paths, "source", args.source)
            _check_source_roots(tree, paths, args.source)
            try:
                plan = plan_copy(tree, target, paths, ephemeral="skip")
            except Exception as exc:
                _reraise_read_error(exc, "target", args.target)
                raise
            if not _guard(plan, args, "the copy"):
                return ExitCode.OK
            started = time.monotonic()
            writing = True
            interrupted = threading.Event()
            try:
                with _stop_on_signals(interrupted):
                    stats = bootstrap(source, target, paths, ephemeral="skip", source_tree=tree, plan=plan,
                                      stop=interrupted)
            except Exception as exc:
                if _lost(exc):
                    raise UnreachableError(f"lost an ensemble during the copy ({type(exc).__name__}): the target "
                                           "is partial, re-run to finish") from None
                raise
            if stats.stopped:
                raise Interrupted("interrupted: the target is partial, re-run to finish")
            elapsed = time.monotonic() - started
            writing = False
    except KeyboardInterrupt:
        if writing:
            raise Interrupted("interrupted: the target is partial, re-run to finish") from None
        raise Interrupted("interrupted before writing: nothing was changed") from None
    print(f"copied {stats.source_nodes} znodes under {', '.join(paths)} in {elapsed:.2f}s "
          f"({stats.source_nodes / max(elapsed, 1e-9):.0f} znodes/s): {stats.summary()}")
    if stats.skipped_ephemeral:
        print(f"{stats.skipped_ephemeral} ephemeral znodes not copied (they belong to live source sessions)")
    if stats.errors:
        for op, error in stats.errors[:PLAN_PATHS_SHOWN]:
            print(f"failed: {op.kind} {op.path}: {error!r}", file=sys.stderr)
        raise OrchestratorError(f"{len(stats.errors)} writes failed on the target (the first ones are listed "
                                "above); re-run to retry them", ExitCode.FAILED)
    return ExitCode.OK


def cmd_verify(args: Any) -> int:
    from orchestrator.services.zk.verify import verify
    paths = _check_options(args)
    _quiet_kazoo()
    with _pair(args) as (source, target):
        _ensure_distinct(source, target, paths)
        try:
            report = verify(source, target, paths, ignore_ephemeral=args.ignore_ephemeral, rechecks=args.recheck)
        except Exception as exc:
            _reraise_read_error(exc, "source or target", f"{args.source} / {args.target}")
            raise
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return ExitCode.OK if report.identical else ExitCode.FAILED


def cmd_sync(args: Any) -> int:
    from orchestrator.services.zk.engine import run_sync
    from orchestrator.services.zk.metrics import SyncMetrics
    from orchestrator.services.zk.tree import plan_copy
    paths = _check_options(args)
    _quiet_kazoo()
    metrics = server = None
    if not args.dry_run:  # the port is taken first: a busy port must fail before anything is written
        metrics = SyncMetrics()
        try:
            server, _ = metrics.serve(args.metrics_address, args.metrics_port)
        except OSError as exc:
            raise InputError(f"--metrics-port {args.metrics_port} on --metrics-address {args.metrics_address}: "
                             f"{exc.strerror or exc} (in use by another process? 0 picks a free port)") from None
    try:
        with _pair(args, prefer_leader=True) as (source, target):
            _ensure_distinct(source, target, paths)
            # Preflight of the bootstrap: the engine's own first pass re-reads both sides and applies the same
            # reconciliation, so refusing here refuses it.
            tree = _read(source, paths, "source", args.source)
            _check_source_roots(tree, paths, args.source)
            try:
                plan = plan_copy(tree, target, paths, ephemeral=args.ephemeral)
            except Exception as exc:
                _reraise_read_error(exc, "target", args.target)
                raise
            if not _guard(plan, args, "the sync's initial copy"):
                return ExitCode.OK
            del tree, plan
            _quiet_kazoo(False)
            # run_sync owns the sessions from here and closes them when it stops.
            return run_sync(source, target, paths, ephemeral=args.ephemeral, metrics=metrics, server=server,
                            metrics_address=args.metrics_address, resync_interval=args.resync_interval,
                            trace_file=args.trace, watch_mode=args.watch_mode)
    finally:
        if server is not None:
            server.shutdown()


def cmd_snapshot(args: Any) -> int:
    from orchestrator.services.zk.archive import cli_snapshot
    check_connection_options(args)
    _quiet_kazoo()
    return cli_snapshot(args)


def cmd_restore(args: Any) -> int:
    from orchestrator.services.zk.archive import cli_restore
    check_connection_options(args)
    _quiet_kazoo()
    return cli_restore(args)
