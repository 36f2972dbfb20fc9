"""`orchestrator zk copy|sync|verify|snapshot|restore` (the command-line contract scripts rely on).

Exit codes: 0 success (verify: identical), 1 the operation failed or found differences,
2 bad input (nothing was changed), 3 a ZooKeeper ensemble or S3 could not be reached.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from orchestrator.errors import ExitCode
from orchestrator.services.zk.tree import ZkInputError

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_UNREACHABLE = ExitCode.OK, ExitCode.FAILED, ExitCode.INPUT, ExitCode.UNREACHABLE


def _add_connection(p: argparse.ArgumentParser, source: bool = True, target: bool = True) -> None:
    if source:
        p.add_argument("--source", required=True, metavar="CONNECT", help="source ensemble, host:port[,host:port…][/chroot]")
    if target:
        p.add_argument("--target", required=True, metavar="CONNECT", help="target ensemble")
    p.add_argument("--auth", action="append", metavar="SCHEME:CREDENTIAL",
                   help="authentication added on both sessions (repeatable), e.g. digest:super:secret")
    p.add_argument("--session-timeout", type=float, default=10.0, metavar="SECONDS")
    p.add_argument("--connect-timeout", type=float, default=15.0, metavar="SECONDS",
                   help="give up when an ensemble cannot be reached within this time")


def _add_paths(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--path", dest="paths", action="append", required=required, metavar="P",
                   help="subtree to process (repeatable), e.g. --path /mesos --path /marathon")


def register(subparsers) -> None:
    zk = subparsers.add_parser("zk", help="copy, continuously sync, verify and archive ZooKeeper trees")
    sub = zk.add_subparsers(dest="zk_command", metavar="ACTION", required=True)

    p = sub.add_parser("copy", help="copy subtrees from source to target once (source wins), then exit")
    _add_connection(p)
    _add_paths(p)
    p.set_defaults(func=cmd_copy)

    p = sub.add_parser("sync", help="copy, then follow every change until SIGTERM/SIGINT")
    _add_connection(p)
    _add_paths(p)
    p.add_argument("--ephemeral", choices=("mirror", "skip"), default="mirror",
                   help="mirror: ephemeral nodes become ephemeral nodes of the engine's session on the target "
                        "(default); skip: they are not copied")
    p.add_argument("--metrics-port", type=int, default=9143, metavar="N", help="Prometheus /metrics port (0: any)")
    p.add_argument("--metrics-address", default="0.0.0.0", metavar="ADDR")
    p.add_argument("--resync-interval", type=float, default=300.0, metavar="SECONDS",
                   help="full re-comparison period, which also carries ACL changes (ZooKeeper sends no event "
                        "for them); 0 disables")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("verify", help="compare subtrees; exit 0 only when identical, differences listed")
    _add_connection(p)
    _add_paths(p)
    p.add_argument("--ignore-ephemeral", action="store_true", help="leave ephemeral nodes out of the comparison")
    p.add_argument("--recheck", type=int, default=0, metavar="N",
                   help="re-read differing nodes up to N times (0.5 s apart) before reporting them (live systems)")
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


def _fail(code: int, message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _same_ensemble(a: str, b: str) -> bool:
    def norm(s: str) -> tuple:
        hosts, _, chroot = s.strip().partition("/")
        return tuple(sorted(h.strip() for h in hosts.split(","))), chroot.rstrip("/")
    return norm(a) == norm(b)


def _open(args, *sides: str):
    """Validated paths and started clients, or an exit code. Input is checked before connecting.
    Kept for archive.py until it calls session.open_client itself."""
    from orchestrator.errors import OrchestratorError
    from orchestrator.services.zk.session import auth_from, close_clients, open_client
    from orchestrator.services.zk.tree import validate_paths
    try:
        paths = validate_paths(args.paths) if getattr(args, "paths", None) else []
        auth = auth_from(args.auth)
        if len(sides) == 2 and _same_ensemble(args.source, args.target):
            raise ZkInputError("--source and --target are the same ensemble")
    except ZkInputError as exc:
        return _fail(EXIT_INPUT, str(exc)), None, None
    clients: list = []
    for side in sides:
        try:
            clients.append(open_client(getattr(args, side), auth, timeout=args.connect_timeout,
                                       session_timeout=args.session_timeout, label=side))
        except OrchestratorError as exc:
            close_clients(clients)
            return _fail(exc.exit_code, str(exc)), None, None
    return None, paths, clients


def _close(clients) -> None:
    from orchestrator.services.zk.session import close_clients
    close_clients(clients)


def cmd_copy(args) -> int:
    from orchestrator.services.zk.engine import bootstrap
    code, paths, clients = _open(args, "source", "target")
    if code is not None:
        return code
    try:
        started = time.monotonic()
        stats = bootstrap(clients[0], clients[1], paths, ephemeral="skip")
        elapsed = time.monotonic() - started
    finally:
        _close(clients)
    print(f"copied {stats.source_nodes} znodes under {', '.join(paths)} in {elapsed:.2f}s "
          f"({stats.source_nodes / max(elapsed, 1e-9):.0f} znodes/s): {stats.summary()}")
    if stats.skipped_ephemeral:
        print(f"{stats.skipped_ephemeral} ephemeral znodes not copied (they belong to live source sessions)")
    for op, exc in stats.errors:
        print(f"failed: {op.kind} {op.path}: {exc!r}", file=sys.stderr)
    return EXIT_FAILED if stats.errors else EXIT_OK


def cmd_verify(args) -> int:
    from orchestrator.services.zk.verify import verify
    code, paths, clients = _open(args, "source", "target")
    if code is not None:
        return code
    try:
        report = verify(clients[0], clients[1], paths, ignore_ephemeral=args.ignore_ephemeral,
                        rechecks=args.recheck)
    finally:
        _close(clients)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return EXIT_OK if report.identical else EXIT_FAILED


def cmd_sync(args) -> int:
    from orchestrator.services.zk.engine import run_sync
    code, paths, clients = _open(args, "source", "target")
    if code is not None:
        return code
    if not 0 <= args.metrics_port <= 65535:
        _close(clients)
        return _fail(EXIT_INPUT, f"--metrics-port {args.metrics_port} is not a port number")
    return run_sync(clients[0], clients[1], paths, ephemeral=args.ephemeral, metrics_port=args.metrics_port,
                    metrics_address=args.metrics_address, resync_interval=args.resync_interval)


def cmd_snapshot(args) -> int:
    from orchestrator.services.zk.archive import cli_snapshot
    return cli_snapshot(args)


def cmd_restore(args) -> int:
    from orchestrator.services.zk.archive import cli_restore
    return cli_restore(args)
