"""The `orchestrator` command line.

Each command group lives in its own module exposing ``register(subparsers)``; heavy imports
(pulumi, kazoo, boto3) happen inside the command functions so that `--help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import traceback
from importlib.metadata import PackageNotFoundError, version

from orchestrator.errors import ExitCode, OrchestratorError

# Modules that contribute sub-commands, in help order.
COMMAND_MODULES = [
    "orchestrator.toolchain.commands",
    "orchestrator.services.zk.cli",
    "orchestrator.services.migration.cli",
    "orchestrator.toolchain.diff_cli",
    "orchestrator.toolchain.diff_trees",
    "orchestrator.toolchain.compose",
    "orchestrator.toolchain.backend",
    "orchestrator.services.probe.cli",
    "orchestrator.services.exporters.cli",
    "orchestrator.services.api.cli",
    "orchestrator.services.marathon.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Deploy, check and operate the Mesos/Marathon platform on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def _version() -> str:
    try:
        return version("orchestrator")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _raise_on_sigterm(signum: int, frame: object) -> None:
    # SIGTERM ends a command like Ctrl-C does, so every command's cleanup (finally blocks) runs.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run one command. Errors are caught here, once: one line on stderr and the table's exit code."""
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        return _run(argv)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(argv: list[str] | None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)  # usage errors: argparse exits 2 (ExitCode.INPUT) itself
    except KeyboardInterrupt:  # a signal while the command modules load: nothing has run yet
        print("orchestrator: interrupted before the command started", file=sys.stderr)
        return ExitCode.INTERRUPTED
    if not getattr(args, "func", None):
        parser.print_help()
        return ExitCode.INPUT
    try:
        return int(args.func(args) or 0)
    except OrchestratorError as exc:
        print(f"orchestrator {args.command}: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        print(f"orchestrator {args.command}: interrupted; re-run the same command to finish", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the one place a bug becomes a line instead of a traceback
        if os.environ.get("ORCHESTRATOR_DEBUG"):
            traceback.print_exc()
        print(f"orchestrator {args.command}: internal error: {type(exc).__name__}: {exc} "
              "(set ORCHESTRATOR_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return ExitCode.INTERNAL


if __name__ == "__main__":
    sys.exit(main())
