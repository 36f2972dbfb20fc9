"""`orchestrator render` and `orchestrator check`: the offline render of the Pulumi program."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    pass
