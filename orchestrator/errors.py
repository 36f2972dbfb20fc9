"""The one exit-code table of every `orchestrator` command, and the root error type that carries a code.

A command either returns one of these codes or raises an `OrchestratorError` (or a subclass); `cli.main`
catches errors once, prints one line to stderr and exits with the error's code. Nothing else prints a
traceback: an unexpected exception becomes one "internal error" line and exit 70 (ORCHESTRATOR_DEBUG=1 shows
the traceback). The table is documented in the README ("Exit codes") and pinned by tests/test_exit_codes.py.
"""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0            # success; `diff`: no changes; `zk verify`: identical
    FAILED = 1        # the command ran and found a problem: a check, a gate, a verify difference, a fix needed
    INPUT = 2         # bad input: usage, config, stack file, arguments (nothing was changed)
    CHANGES = 3       # `diff` only: changes, none dangerous (the PR workflows rely on 0/3/4)
    DANGEROUS = 4     # `diff` only: a change that risks data loss, a replacement or a quorum change
    UNREACHABLE = 5   # a server the command needs (ZooKeeper, S3, Marathon, Mesos, the API) did not answer
    REFUSED = 6       # a safety guard refused: would delete, not our directory, same ensemble, lock held, bad digest
    INTERNAL = 70     # a bug (EX_SOFTWARE): please report it with ORCHESTRATOR_DEBUG=1 output
    INTERRUPTED = 130  # SIGINT/SIGTERM: the target may be partial; re-run the same command to finish


class OrchestratorError(Exception):
    """Root of every error a command reports to its user. The message is one line, the code from the table."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InputError(OrchestratorError):
    """Bad input: a config key, an argument, a file. The message names the file and the key."""

    exit_code = ExitCode.INPUT


class UnreachableError(OrchestratorError):
    exit_code = ExitCode.UNREACHABLE


class RefusedError(OrchestratorError):
    """A safety guard said no. The message says what would have happened and which flag allows it."""

    exit_code = ExitCode.REFUSED


class Interrupted(OrchestratorError):
    """Interrupted by a signal; the message says what state the target is in."""

    exit_code = ExitCode.INTERRUPTED
