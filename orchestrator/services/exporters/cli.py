"""`orchestrator exporter mesos|marathon` (docs/exporters.md)."""
from __future__ import annotations

import argparse
import sys
import threading

from orchestrator.contracts.probe import EXPORTER_MARATHON_PORT, EXPORTER_MESOS_PORT
from orchestrator.errors import InputError


def _common(p: argparse.ArgumentParser, port: int) -> None:
    p.add_argument("--port", type=int, default=port, metavar="N", help=f"/metrics port (default {port}; 0: any)")
    p.add_argument("--address", default="0.0.0.0", metavar="ADDR", help="listen address (default 0.0.0.0)")
    p.add_argument("--timeout", type=float, default=5.0, metavar="S", help="HTTP timeout per request (default 5)")
    p.add_argument("--once", action="store_true", help="print one scrape in the Prometheus text format and exit")


def register(subparsers: argparse._SubParsersAction) -> None:
    exporter = subparsers.add_parser("exporter", help="Prometheus exporters of Mesos and Marathon")
    sub = exporter.add_subparsers(dest="exporter_command", metavar="KIND", required=True)

    p = sub.add_parser("mesos", help="masters' snapshots, the leader's state (at most once per 30 s), agents")
    p.add_argument("--master", action="append", required=True, metavar="URL",
                   help="a Mesos master (repeat for each; every master is scraped for its own snapshot)")
    p.add_argument("--agent", action="append", default=[], metavar="URL",
                   help="a Mesos agent to scrape (repeatable); added to those discovered from /master/state")
    p.add_argument("--no-discover-agents", action="store_true",
                   help="scrape only the --agent URLs, not every agent the leader lists")
    p.add_argument("--state-interval", type=float, default=30.0, metavar="S",
                   help="minimum seconds between two /master/state requests (default 30; it is expensive)")
    p.add_argument("--principal", metavar="NAME", help="HTTP principal; the secret is read from --credentials")
    p.add_argument("--credentials", metavar="FILE",
                   help="file with HTTP credentials ('principal:secret', Mesos JSON, or only the secret with "
                        "--principal); mounted from a Secret")
    _common(p, EXPORTER_MESOS_PORT)
    p.set_defaults(func=cmd_mesos)

    p = sub.add_parser("marathon", help="per-app instances and task health, deployments, leader")
    p.add_argument("--marathon", action="append", required=True, metavar="URL",
                   help="a Marathon instance (repeatable; standbys proxy to the leader)")
    p.add_argument("--credentials", metavar="FILE", help="file holding 'user:password' (mounted from a Secret)")
    _common(p, EXPORTER_MARATHON_PORT)
    p.set_defaults(func=cmd_marathon)


def _run(collector: object, args: argparse.Namespace) -> int:
    from prometheus_client import CollectorRegistry, generate_latest

    from orchestrator.services.exporters.common import serve

    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    if args.once:
        sys.stdout.write(generate_latest(registry).decode())
        return 0
    try:
        server = serve(registry, args.address, args.port)
    except OSError as exc:
        raise InputError(f"--address {args.address} --port {args.port}: {exc.strerror or exc}") from exc
    try:
        threading.Event().wait()  # until SIGTERM (main turns it into KeyboardInterrupt)
    finally:
        server.shutdown()
        server.server_close()
    return 0


def cmd_mesos(args: argparse.Namespace) -> int:
    from orchestrator.clients.mesos import MesosClient, load_credentials
    from orchestrator.services.exporters.mesos import MesosCollector

    if args.state_interval < 1:
        raise InputError("--state-interval must be at least 1 second")
    creds = load_credentials(args.credentials, args.principal) if args.credentials else None
    with MesosClient(args.master, creds, timeout=args.timeout) as client:
        collector = MesosCollector(client, client.masters, args.agent, not args.no_discover_agents,
                                   args.state_interval)
        try:
            return _run(collector, args)
        finally:
            collector.close()


def cmd_marathon(args: argparse.Namespace) -> int:
    from orchestrator.clients.marathon import MarathonClient, load_basic_auth
    from orchestrator.services.exporters.marathon import MarathonCollector

    auth = load_basic_auth(args.credentials) if args.credentials else None
    client = MarathonClient(args.marathon, auth=auth, timeout=args.timeout, retries=0)
    try:
        return _run(MarathonCollector(client), args)
    finally:
        client.close()
