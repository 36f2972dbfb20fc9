"""Finding system tools for tests: skip loudly on a laptop, fail under CI=true."""
from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_tool(name: str, path: str | None = None, hint: str = "") -> str:
    """Return the tool's path, or skip (developer machine) / fail (CI=true) with a clear reason."""
    found = path if path and os.path.exists(path) else shutil.which(name)
    if found:
        return found
    reason = f"required tool {name!r} is not installed{': ' + hint if hint else ''}"
    if in_ci():
        pytest.fail(f"{reason} (CI=true: missing tools fail, they never skip)")
    pytest.skip(reason)
    raise AssertionError("unreachable")


from orchestrator.toolchain.commands import CHECKOV  # noqa: E402  (its own virtualenv, see the Makefile)


def require_checkov() -> str:
    return require_tool("checkov", path=str(CHECKOV), hint="make setup installs it into .venv/tools/checkov")
