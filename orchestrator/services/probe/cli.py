"""`orchestrator probe`: the node agent (docs/probe.md)."""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

from orchestrator.errors import InputError

DEFAULT_INTERVAL = 15.0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("probe", help="node agent: processes, containers (from cgroups), TCP connections; "
                                            "reports to the API")
    p.add_argument("--once", action="store_true",
                   help="collect one full report (two samples --sample-seconds apart, for CPU %%), print it and "
                        "exit; nothing is published")
    p.add_argument("--output", default="-", metavar="FILE", help="with --once: where to write the JSON (- = stdout)")
    p.add_argument("--sample-seconds", type=float, default=1.0, metavar="S",
                   help="with --once: time between the two samples that give CPU percentages (default 1)")
    p.add_argument("--proc-root", default="/proc", metavar="DIR",
                   help="proc tree to read processes, cgroup membership and sockets from (default /proc)")
    p.add_argument("--cgroup-root", default="/sys/fs/cgroup", metavar="DIR",
                   help="cgroup tree to read per-container CPU and memory from (default /sys/fs/cgroup)")
    p.add_argument("--probe-id", default=os.environ.get("NODE_NAME"), metavar="ID",
                   help="this probe's stable id, normally the node name (default: $NODE_NAME, else the hostname)")
    p.add_argument("--api", metavar="URL",
                   help="API base URL; its host is resolved to every replica's address (a headless Service); "
                        "required unless --once")
    p.add_argument("--token-file", metavar="FILE",
                   help="file holding the report:write bearer token (mounted from a Secret; never an argument)")
    p.add_argument("--interval", type=float, default=DEFAULT_INTERVAL, metavar="S",
                   help="seconds between collections (default 15)")
    p.add_argument("--full-every", type=int, default=4, metavar="N",
                   help="send a full report every N publishes, deltas between (default 4)")
    p.add_argument("--buffer", type=int, default=8, metavar="N",
                   help="reports kept per unreachable API replica; the oldest is dropped and counted (default 8)")
    p.add_argument("--max-backoff", type=float, default=120.0, metavar="S",
                   help="longest wait between retries to a failing replica (default 120)")
    p.add_argument("--mesos-agent", metavar="URL",
                   help="the local Mesos agent (e.g. http://$(NODE_IP):5051) to map Mesos containers to tasks "
                        "and Marathon apps; off when not given")
    p.add_argument("--mesos-principal", metavar="NAME",
                   help="principal for the agent's HTTP auth; the secret is read from --mesos-credentials")
    p.add_argument("--mesos-credentials", metavar="FILE",
                   help="file with the agent's HTTP credentials ('principal:secret', Mesos JSON, or only the "
                        "secret with --mesos-principal)")
    p.add_argument("--kubernetes", action="store_true",
                   help="watch this node's pods (in-cluster service account, fieldSelector spec.nodeName) for "
                        "pod names, namespaces and labels")
    p.add_argument("--metrics-port", type=int, default=9110, metavar="N", help="/metrics and /healthz port (0: any)")
    p.add_argument("--metrics-address", default="0.0.0.0", metavar="ADDR", help="/metrics listen address")
    p.add_argument("--iterations", type=int, default=None, metavar="N",
                   help="stop after N intervals (benchmarks and tests; default: run until SIGTERM)")
    p.set_defaults(func=cmd_probe)


def _check_dir(path: str, option: str) -> None:
    if not Path(path).is_dir():
        raise InputError(f"{option} {path}: not a directory")


def cmd_probe(args: argparse.Namespace) -> int:
    import logging
    import socket

    from orchestrator.clients.mesos import MesosClient, load_credentials
    from orchestrator.services.probe.agent import ProbeMetrics, run, serve_metrics
    from orchestrator.services.probe.collector import Collector, MesosTasks, PodSource
    from orchestrator.services.probe.publisher import Publisher

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    _check_dir(args.proc_root, "--proc-root")
    if args.interval <= 0 or args.full_every < 1 or args.buffer < 1:
        raise InputError("--interval must be > 0, --full-every and --buffer at least 1")
    probe_id = args.probe_id or socket.gethostname()
    mesos_client = None
    if args.mesos_agent:
        creds = load_credentials(args.mesos_credentials, args.mesos_principal) if args.mesos_credentials else None
        mesos_client = MesosClient(args.mesos_agent, creds, timeout=min(5.0, args.interval / 3))
    pods: PodSource | None = None
    watcher = None
    if args.kubernetes:
        from orchestrator.services.probe.kube import PodWatcher
        node = os.environ.get("NODE_NAME") or args.probe_id
        if not node:
            raise InputError("--kubernetes needs the node name: set NODE_NAME (downward API) or --probe-id")
        watcher = PodWatcher.in_cluster(node)
        watcher.start()
        pods = watcher
    collector = Collector(probe_id, args.proc_root, args.cgroup_root, pods=pods,
                          mesos=MesosTasks(mesos_client, args.mesos_agent), interval=args.interval)
    try:
        if args.once:
            collector.collect(0)
            time.sleep(max(0.0, args.sample_seconds))
            report = collector.collect(1).report
            text = report.model_dump_json(indent=1)
            if args.output == "-":
                sys.stdout.write(text + "\n")
            else:
                Path(args.output).write_text(text + "\n", encoding="utf-8")
            return 0
        if not args.api:
            raise InputError("--api is required (or use --once)")
        token = None
        if args.token_file:
            try:
                token = Path(args.token_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise InputError(f"--token-file {args.token_file}: {exc.strerror or exc}") from exc
        try:
            publisher = Publisher(args.api, token, args.full_every, args.buffer, args.interval, args.max_backoff,
                                  timeout=min(10.0, args.interval * 0.6))
        except ValueError as exc:
            raise InputError(str(exc)) from exc
        metrics = ProbeMetrics()
        server = serve_metrics(metrics, args.metrics_address, args.metrics_port, max_age=3 * args.interval)
        stop = threading.Event()
        try:
            run(collector, publisher, metrics, args.interval, stop, args.iterations)
        finally:
            stop.set()
            server.shutdown()
            server.server_close()
            publisher.close()
        return 0
    finally:
        if watcher is not None:
            watcher.stop()
        if mesos_client is not None:
            mesos_client.close()
