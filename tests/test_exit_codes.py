"""The one exit-code table (orchestrator/errors.py): unique codes, documented in the README exactly, and
`cli.main` mapping errors, interrupts and bugs to it — through the real parser and the real `main()`."""
from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator import cli
from orchestrator.errors import (
    ExitCode,
    InputError,
    Interrupted,
    OrchestratorError,
    RefusedError,
    UnreachableError,
)
from orchestrator.toolchain.render import PROJECT_DIR

EXE = Path(sys.executable).with_name("orchestrator")


def readme_table() -> dict[int, str]:
    text = (PROJECT_DIR / "README.md").read_text()
    section = text.split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| ([A-Z_]+) \| .+\|$", section, flags=re.MULTILINE)
    assert rows, "the README's Exit codes section has no table rows"
    table: dict[int, str] = {}
    for code, name in rows:
        assert int(code) not in table, f"code {code} is in the README table twice"
        table[int(code)] = name
    return table


def test_codes_are_unique():
    # IntEnum silently turns a repeated value into an alias: __members__ shows it, iteration hides it.
    assert len(ExitCode.__members__) == len(list(ExitCode))
    assert len({int(c) for c in ExitCode}) == len(list(ExitCode))


def test_readme_table_is_the_enum():
    assert readme_table() == {int(c): c.name for c in ExitCode}


def test_error_classes_carry_their_codes():
    assert OrchestratorError("x").exit_code == ExitCode.FAILED
    assert InputError("x").exit_code == ExitCode.INPUT
    assert UnreachableError("x").exit_code == ExitCode.UNREACHABLE
    assert RefusedError("x").exit_code == ExitCode.REFUSED
    assert Interrupted("x").exit_code == ExitCode.INTERRUPTED
    assert InputError("x", ExitCode.FAILED).exit_code == ExitCode.FAILED  # an explicit code wins


# --- main(), for real: a command module of this test file joins COMMAND_MODULES --------------------
RAISES = {
    "input": (InputError("Pulumi.x.yaml: orchestrator:zookeeper.replicas: too many"), ExitCode.INPUT),
    "unreachable": (UnreachableError("cannot reach 127.0.0.1:1"), ExitCode.UNREACHABLE),
    "refused": (RefusedError("--out /home/u: not a previous render"), ExitCode.REFUSED),
    "interrupted": (Interrupted("target is partial, re-run to finish"), ExitCode.INTERRUPTED),
    "failed": (OrchestratorError("2 problem(s)"), ExitCode.FAILED),
    "custom": (OrchestratorError("a diff", ExitCode.DANGEROUS), ExitCode.DANGEROUS),
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("exit-code-probe", help="test only")
    p.add_argument("what", help="what to do")
    p.set_defaults(func=_probe)


def _probe(args: argparse.Namespace) -> int:
    if args.what in RAISES:
        raise RAISES[args.what][0]
    if args.what == "keyboard":
        raise KeyboardInterrupt
    if args.what == "sigterm":
        signal.raise_signal(signal.SIGTERM)  # a real signal to this process, through main's handler
        return 0
    if args.what == "bug":
        raise RuntimeError("boom")
    if args.what == "return-changes":
        return ExitCode.CHANGES
    return ExitCode.OK


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", [*cli.COMMAND_MODULES, __name__])
    return lambda what: cli.main(["exit-code-probe", what])


@pytest.mark.parametrize("what", sorted(RAISES))
def test_main_maps_each_error_to_its_code_and_one_line(what, probe, capsys):
    exc, code = RAISES[what]
    assert probe(what) == code
    err = capsys.readouterr().err
    assert err == f"orchestrator exit-code-probe: {exc}\n"


def test_main_maps_keyboard_interrupt_and_a_real_sigterm_to_130(probe, capsys):
    before = signal.getsignal(signal.SIGTERM)
    assert probe("keyboard") == ExitCode.INTERRUPTED
    assert probe("sigterm") == ExitCode.INTERRUPTED
    err = capsys.readouterr().err
    assert err.count("interrupted; re-run the same command to finish") == 2
    assert signal.getsignal(signal.SIGTERM) is before  # main puts the previous handler back


def test_main_turns_a_bug_into_one_line_and_70(probe, capsys, monkeypatch):
    monkeypatch.delenv("ORCHESTRATOR_DEBUG", raising=False)
    assert probe("bug") == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("orchestrator exit-code-probe: internal error: RuntimeError: boom")
    monkeypatch.setenv("ORCHESTRATOR_DEBUG", "1")
    assert probe("bug") == ExitCode.INTERNAL
    assert "Traceback (most recent call last)" in capsys.readouterr().err


def test_main_passes_returned_codes_through(probe):
    assert probe("return-changes") == ExitCode.CHANGES
    assert probe("ok") == ExitCode.OK


def test_usage_errors_are_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["render", "--no-such-option"])
    assert exc.value.code == ExitCode.INPUT
    assert cli.main([]) == ExitCode.INPUT  # no command: help, and "bad usage"


def test_the_console_script_exits_with_the_table_code(tmp_path):
    """A separate process, as a user or CI runs it."""
    proc = subprocess.run([str(EXE), "render", "--stack", "nosuchstack", "--project-dir", str(PROJECT_DIR),
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == ExitCode.INPUT
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "orchestrator render: Pulumi.nosuchstack.yaml: no such stack file (stacks: dev, prod")
    proc = subprocess.run([str(EXE), "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == ExitCode.OK and proc.stdout.startswith("orchestrator ")
