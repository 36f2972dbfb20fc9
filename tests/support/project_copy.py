"""A temporary copy of the project whose components a test edits, run by the CLI in its own process.

The CLI runs with the copy first on sys.path, so `components` is the edited copy while the engine
(`orchestrator`) is this installation's: exactly what a pull request that edits components/ gets.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from orchestrator.toolchain.render import PROJECT_DIR

PROGRAM_FILES = ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "__main__.py")
DIRECTORIES = ("components", "policy", "deploy")
RUN_TIMEOUT_S = 300


def copy_project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in PROGRAM_FILES:
        shutil.copy(PROJECT_DIR / name, root / name)
    for name in DIRECTORIES:
        shutil.copytree(PROJECT_DIR / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def add_to_tier(project: Path, module: str, cls: str, code: str) -> None:
    """Append to components/<module>.py a wrapper of `<cls>.__init__` that runs `code` after it, with
    `self` (the tier's component, the parent to register under) and `name` in scope, as an edit in a
    pull request would."""
    body = "\n".join("    " + line for line in code.strip().splitlines())
    (project / "components" / f"{module}.py").open("a").write(
        f"\n\n_planted_init = {cls}.__init__\n\n\n"
        f"def _planted(self, name, args, opts=None):  # planted by a test\n"
        f"    _planted_init(self, name, args, opts)\n"
        f"    import pulumi\n    import pulumi_kubernetes as k8s\n"
        f"    child = pulumi.ResourceOptions(parent=self)\n"
        f"{body}\n\n\n{cls}.__init__ = _planted\n")


def run_cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    program = ("import sys; sys.path.insert(0, sys.argv[1]); from orchestrator.cli import main; "
               "sys.exit(main(sys.argv[2:]))")
    return subprocess.run([sys.executable, "-c", program, str(project), *args, "--project-dir", str(project)],
                          cwd=project, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
