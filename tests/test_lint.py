"""The lint and typing gates run in the test suite too, so `make test` (and .ci/run) fails on a type error
or a ruff finding exactly as the CI workflow's lint and typecheck jobs do (settings in pyproject.toml)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_ruff_finds_nothing():
    out = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_finds_nothing_and_exempts_no_first_party_module():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "ignore_errors" not in pyproject, "no first-party module may be exempt from mypy"
    out = subprocess.run([str(BIN / "mypy")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Success: no issues found" in out.stdout
