"""`orchestrator marathon autoscale|heal|reconcile|run|validate` (docs/marathon-scaler.md).

Each loop also runs alone through its own command; `run` runs the three in one process, one active instance
cluster-wide (a ZooKeeper lock with `--zk`, else the platform runs a single Recreate replica). Credentials
never come from argv: Marathon's from `--marathon-credentials-file` (a mounted Secret), ZooKeeper's from
ORCHESTRATOR_ZK_AUTH, Prometheus' bearer token from `--prometheus-token-file`; the API's digest ACL id (the
identity the scaler lets read its state and write overrides) from ORCHESTRATOR_ZK_API_ACL.

Exit codes (orchestrator/errors.py): 0 ok; 1 a `--once` cycle had errors; 2 bad input (config, apps, options);
5 Marathon/ZooKeeper unreachable in a `--once` run; 6 reconcile found apps to delete without `--allow-delete`,
or the lock was lost.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.errors import ExitCode, InputError, RefusedError

URLS_ENV = "ORCHESTRATOR_MARATHON_URLS"
CREDENTIALS_ENV = "ORCHESTRATOR_MARATHON_CREDENTIALS_FILE"


def register(subparsers: Any) -> None:
    marathon = subparsers.add_parser("marathon", help="autoscale, heal and reconcile Marathon apps")
    sub = marathon.add_subparsers(dest="marathon_command", metavar="ACTION", required=True)

    p = sub.add_parser("autoscale", help="HPA-style autoscaling of apps with a policy (stack config or labels)")
    _common(p, prometheus=True, state=True, loop=True)
    p.set_defaults(func=cmd_autoscale)

    p = sub.add_parser("heal", help="replace tasks that app-level signals show bad, within budgets")
    _common(p, prometheus=True, state=True, loop=True)
    p.set_defaults(func=cmd_heal)

    p = sub.add_parser("reconcile", help="make Marathon match the declared apps (apps as code)")
    _common(p, prometheus=False, state=False, loop=True)
    _apps_source(p)
    p.add_argument("--allow-delete", action="store_true",
                   help="delete managed apps that are no longer declared (otherwise they are reported, exit 6)")
    p.set_defaults(func=cmd_reconcile)

    p = sub.add_parser("run", help="reconcile, autoscale and heal loops in one process, one active instance")
    _common(p, prometheus=True, state=True, loop=True)
    _apps_source(p, required=False)
    p.add_argument("--allow-delete", action="store_true", help="as for reconcile")
    p.add_argument("--reconcile-interval", type=float, default=60.0, metavar="SECONDS",
                   help="seconds between reconcile passes (default 60)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("validate", help="validate app definitions and the scaler config offline (no Marathon)")
    p.add_argument("--apps-dir", metavar="DIR", help="directory of app definitions (*.yaml, *.yml, *.json)")
    p.add_argument("--config", metavar="FILE", help="scaler config file (policies, heal settings)")
    p.set_defaults(func=cmd_validate)


def _common(p: argparse.ArgumentParser, *, prometheus: bool, state: bool, loop: bool) -> None:
    p.add_argument("--marathon", action="append", metavar="URL",
                   help=f"a Marathon instance URL (repeatable; any instance works, standbys proxy); "
                        f"default from {URLS_ENV} (comma-separated)")
    p.add_argument("--marathon-credentials-file", metavar="FILE",
                   help=f"file holding 'user:password' for Marathon's HTTP basic auth (default ${CREDENTIALS_ENV})")
    p.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS", help="per-request timeout (default 5)")
    p.add_argument("--config", metavar="FILE", help="scaler config: policies per app, heal settings (YAML/JSON)")
    p.add_argument("--dry-run", action="store_true", help="print decisions as JSON lines; change nothing")
    if prometheus:
        p.add_argument("--prometheus", metavar="URL", help="Prometheus base URL for metrics and heal signals")
        p.add_argument("--prometheus-token-file", metavar="FILE", help="file holding a bearer token for Prometheus")
    if state:
        p.add_argument("--state-dir", metavar="DIR", help="keep state (stabilization history, budgets) in files here")
        p.add_argument("--zk", metavar="CONNECT",
                       help="keep state in ZooKeeper (and hold the lock for `run`); credentials from ORCHESTRATOR_ZK_AUTH")
        p.add_argument("--zk-tls", metavar="DIR",
                       help="connect to --zk over TLS (the secure client port), verifying the server certificate and "
                            "host name against DIR/ca.crt; DIR/tls.crt + tls.key, if present, are a client certificate")
        p.add_argument("--zk-path", default="/orchestrator/marathon-scaler", metavar="PATH",
                       help="znode of the scaler's own (default /orchestrator/marathon-scaler)")
    if loop:
        p.add_argument("--once", action="store_true", help="one cycle, then exit")
        p.add_argument("--interval", type=float, metavar="SECONDS",
                       help="seconds between cycles (default: the config's sync_seconds, 15)")
        p.add_argument("--max-cycles", type=int, metavar="N", help="stop after N cycles (tests, benchmarks)")
        p.add_argument("--metrics-listen", metavar="HOST:PORT",
                       help="serve Prometheus metrics on this address (e.g. 0.0.0.0:9108)")


def _apps_source(p: argparse.ArgumentParser, required: bool = True) -> None:
    group = p.add_mutually_exclusive_group(required=required)
    group.add_argument("--apps-dir", metavar="DIR", help="directory of app definitions (*.yaml, *.yml, *.json)")
    group.add_argument("--apps-file", metavar="FILE",
                       help="the rendered ConfigMap's apps.json (as mounted in the cluster)")


# ------------------------------------------------------------------------------------------------ wiring
def _client(args: argparse.Namespace) -> Any:
    from orchestrator.clients.marathon import MarathonClient, load_basic_auth

    urls = args.marathon or [u.strip() for u in os.environ.get(URLS_ENV, "").split(",") if u.strip()]
    if not urls:
        raise InputError(f"--marathon: no Marathon URL (give --marathon URL or set {URLS_ENV})")
    for url in urls:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--marathon {url}: must start with http:// or https://")
    if not args.timeout > 0:
        raise InputError(f"--timeout {args.timeout}: must be > 0")
    credentials = args.marathon_credentials_file or os.environ.get(CREDENTIALS_ENV)
    return MarathonClient(urls, auth=load_basic_auth(credentials) if credentials else None, timeout=args.timeout)


def _prometheus(args: argparse.Namespace) -> Any:
    from orchestrator.services.marathon.prom import PrometheusSource

    if not args.prometheus:
        raise InputError("--prometheus: required (metrics for autoscaling, signals for healing)")
    token = None
    if args.prometheus_token_file:
        try:
            token = Path(args.prometheus_token_file).read_text().strip()
        except OSError as exc:
            raise InputError(f"--prometheus-token-file {args.prometheus_token_file}: {exc.strerror}") from None
    return PrometheusSource(args.prometheus, timeout=args.timeout, bearer_token=token)


def _zk(args: argparse.Namespace) -> Any:
    if not getattr(args, "zk", None):
        return None
    from kazoo.security import CREATOR_ALL_ACL

    from orchestrator.services.zk.session import auth_from, open_client
    from orchestrator.services.zk.tls import ZkTls

    auth = auth_from()
    _api_acl_id()  # bad input before connecting, not after taking the lock
    ensemble = open_client(args.zk, auth, timeout=15.0, label="scaler", tls=ZkTls.of(args.zk_tls, "--zk-tls"))
    if auth:
        # The scaler's own digest user owns its znodes: nobody else reads or rewrites its state.
        ensemble.client.default_acl = CREATOR_ALL_ACL
    return ensemble


def _api_acl_id() -> str | None:
    """The API's digest ACL id from the environment, validated (checked before connecting: bad input, exit 2)."""
    from orchestrator.contracts.marathon_scaler import API_ACL_ENV  # the API's digest (store.document_acls)
    from orchestrator.services.marathon.store import document_acls

    api_acl_id = os.environ.get(API_ACL_ENV, "").strip() or None
    if api_acl_id is not None:
        try:
            document_acls(api_acl_id)
        except InputError as exc:
            raise InputError(f"{API_ACL_ENV}: {exc}") from None
    return api_acl_id


def _store(args: argparse.Namespace, ensemble: Any) -> Any:
    from orchestrator.services.marathon.store import open_store

    if args.dry_run:
        return open_store()  # memory: a dry run must not touch the real state
    if ensemble is None and not args.state_dir:
        raise InputError("--state-dir or --zk: required (stabilization history must survive a restart); "
                         "use --dry-run to try without state")
    return open_store(directory=args.state_dir, zk=ensemble.client if ensemble else None, path=args.zk_path,
                      api_acl_id=_api_acl_id())


def _interval(args: argparse.Namespace, config: Any) -> float:
    interval = args.interval if args.interval is not None else config.sync_seconds
    if not interval > 0:
        raise InputError(f"--interval {interval}: must be > 0")
    return float(interval)


def _telemetry(args: argparse.Namespace) -> Any:
    from orchestrator.services.marathon.telemetry import Telemetry

    telemetry = Telemetry()
    if getattr(args, "metrics_listen", None):
        from prometheus_client import start_http_server

        host, _, port = args.metrics_listen.rpartition(":")
        if not host or not port.isdigit():
            raise InputError(f"--metrics-listen {args.metrics_listen}: expected HOST:PORT")
        start_http_server(int(port), addr=host, registry=telemetry.registry)
    return telemetry


def _declared(args: argparse.Namespace) -> list[dict[str, Any]] | None:
    from orchestrator.services.marathon.apps import load_apps, read_apps_file

    if getattr(args, "apps_dir", None):
        return load_apps(args.apps_dir)
    if getattr(args, "apps_file", None):
        return read_apps_file(args.apps_file)
    return None


class Loop:
    """Runs `cycle` every `interval` seconds; a failed cycle is counted and logged, never fatal (except --once)."""

    def __init__(self, name: str, cycle: Callable[[], object], interval: float, telemetry: Any) -> None:
        self.name, self.cycle, self.interval, self.telemetry = name, cycle, interval, telemetry
        self.due = 0.0
        self.failures = 0
        self.last_error: Exception | None = None

    def run_once(self) -> bool:
        from orchestrator.errors import OrchestratorError

        try:
            self.cycle()
            return True
        except RefusedError:
            raise  # lost the lock / state written by another scaler: stop acting
        except OrchestratorError as exc:
            self.failures += 1
            self.last_error = exc
            self.telemetry.errors.labels(self.name, type(exc).__name__).inc()
            self.telemetry.event(self.name, reason="cycle-failed", error=str(exc))
            return False


def _drive(loops: list[Loop], args: argparse.Namespace, guard: Callable[[], None] | None = None) -> int:
    cycles = 0
    while True:
        now = time.monotonic()
        ran = False
        for loop in loops:
            if now >= loop.due:
                if guard:
                    guard()
                ok = loop.run_once()
                loop.due = time.monotonic() + loop.interval
                ran = True
                if args.once and not ok:
                    from orchestrator.clients.marathon import MarathonUnreachable

                    return ExitCode.UNREACHABLE if isinstance(loop.last_error, MarathonUnreachable) \
                        else ExitCode.FAILED
        if ran:
            cycles += 1
        if args.once or (args.max_cycles is not None and cycles >= args.max_cycles):
            return ExitCode.OK
        time.sleep(max(0.0, min(loop.due for loop in loops) - time.monotonic()))


# ------------------------------------------------------------------------------------------------ commands
def _run_single_loop(args: argparse.Namespace, name: str, build: Callable[..., Any]) -> int:
    """autoscale and heal alone: one loop over (Marathon, Prometheus, state store), closed on the way out."""
    from orchestrator.services.marathon.policy import load_config

    config = load_config(args.config)
    interval = _interval(args, config)
    client, prometheus, ensemble = _client(args), _prometheus(args), _zk(args)
    try:
        telemetry = _telemetry(args)
        worker = build(client, prometheus, config, _store(args, ensemble), telemetry, dry_run=args.dry_run)
        return _drive([Loop(name, worker.cycle, interval, telemetry)], args)
    finally:
        _close(client, ensemble)


def cmd_autoscale(args: argparse.Namespace) -> int:
    from orchestrator.services.marathon.autoscale import Autoscaler

    return _run_single_loop(args, "autoscale", Autoscaler)


def cmd_heal(args: argparse.Namespace) -> int:
    from orchestrator.services.marathon.heal import Healer

    return _run_single_loop(args, "heal", Healer)


def _reconcile_cycle(client: Any, config: Any, declared: list[dict[str, Any]], args: argparse.Namespace,
                     telemetry: Any, refused: list[str]) -> Callable[[], None]:
    from orchestrator.services.marathon.reconcile import Reconciler

    def cycle() -> None:
        plan = Reconciler(client, dict(config.policies)).apply(declared, allow_delete=args.allow_delete,
                                                               dry_run=args.dry_run)
        telemetry.drift.set(plan.drift)
        refused.clear()
        for change in plan.changes:
            telemetry.reconcile.labels(change.action).inc()
            telemetry.event("reconcile", app=change.app, action=change.action, reason=change.reason,
                            fields=change.fields, deployment=change.deployment, dry_run=args.dry_run)
            if change.action == "skip-delete":
                refused.append(change.app)
        telemetry.event("reconcile", reason="pass-done", changes=len(plan.changes), unchanged=len(plan.unchanged))
    return cycle


def cmd_reconcile(args: argparse.Namespace) -> int:
    from orchestrator.services.marathon.policy import load_config

    config = load_config(args.config)
    declared = _declared(args) or []
    interval = _interval(args, config)
    client = _client(args)
    refused: list[str] = []
    try:
        telemetry = _telemetry(args)
        code = _drive([Loop("reconcile", _reconcile_cycle(client, config, declared, args, telemetry, refused),
                            interval, telemetry)], args)
    finally:
        client.close()
    if code == ExitCode.OK and refused:
        raise RefusedError(f"{len(refused)} managed app(s) are no longer declared and were NOT deleted "
                           f"({', '.join(refused[:5])}); pass --allow-delete to delete them")
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from orchestrator.services.marathon.autoscale import Autoscaler
    from orchestrator.services.marathon.heal import Healer
    from orchestrator.services.marathon.policy import load_config

    config = load_config(args.config)
    declared = _declared(args)
    interval = _interval(args, config)
    if not args.reconcile_interval > 0:
        raise InputError(f"--reconcile-interval {args.reconcile_interval}: must be > 0")
    client, metrics, ensemble = _client(args), _prometheus(args), _zk(args)
    lock = None
    try:
        telemetry = _telemetry(args)
        if ensemble is not None:
            # One active scaler cluster-wide: the others wait here (a rolling update's new pod, a second replica).
            lock = ensemble.client.Lock(args.zk_path.rstrip("/") + "/lock", os.environ.get("HOSTNAME", "scaler"))
            telemetry.event("run", reason="waiting-for-lock")
            lock.acquire()
            telemetry.event("run", reason="lock-acquired")
        telemetry.active.set(1)
        store = _store(args, ensemble)
        loops = []
        if declared is not None:
            loops.append(Loop("reconcile", _reconcile_cycle(client, config, declared, args, telemetry, []),
                              args.reconcile_interval, telemetry))
        loops.append(Loop("autoscale", Autoscaler(client, metrics, config, store, telemetry,
                                                  dry_run=args.dry_run).cycle, interval, telemetry))
        loops.append(Loop("heal", Healer(client, metrics, config, store, telemetry, dry_run=args.dry_run).cycle,
                          interval, telemetry))

        def guard() -> None:
            if lock is not None and (not lock.is_acquired or not ensemble.client.connected):
                raise RefusedError("lost the ZooKeeper lock of the scaler; stopping so another instance takes over")

        return _drive(loops, args, guard)
    finally:
        if lock is not None:
            # Best effort: the end of the session releases it anyway.
            with contextlib.suppress(Exception):
                lock.release()
        _close(client, ensemble)


def cmd_validate(args: argparse.Namespace) -> int:
    from orchestrator.services.marathon.apps import load_apps
    from orchestrator.services.marathon.policy import load_config

    if not args.apps_dir and not args.config:
        raise InputError("validate: give --apps-dir and/or --config")
    config = load_config(args.config)
    apps = load_apps(args.apps_dir) if args.apps_dir else []
    print(f"ok: {len(apps)} app definition(s), {len(config.policies)} autoscaling and {len(config.heal)} heal "
          "policy(ies)", file=sys.stdout)
    return ExitCode.OK


def _close(client: Any, ensemble: Any) -> None:
    client.close()
    if ensemble is not None:
        from orchestrator.services.zk.session import close_client

        close_client(ensemble)
