"""The `orchestrator` command line.

Each command group lives in its own module exposing ``register(subparsers)``; heavy imports
(pulumi, kazoo, boto3) happen inside the command functions so that `--help` stays fast.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute sub-commands, in help order.
COMMAND_MODULES = [
    "orchestrator.commands",
    "orchestrator.zk.cli",
    "orchestrator.migration.cli",
    "orchestrator.diff_cli",
    "orchestrator.compose",
    "orchestrator.backend",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Deploy, check and operate the Mesos/Marathon platform on Kubernetes.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
