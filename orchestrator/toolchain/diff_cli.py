"""`orchestrator diff --stack S [--base REF] [--format text|markdown]`: what a change does to a stack.

Renders the stack twice, offline — at the base git ref (default: the merge base of HEAD with the main
branch) and at the working tree — and prints a resource-level diff (see `orchestrator.toolchain.diff`).

Each side renders in its own Python process: the program imports `components`, and two versions of
that package cannot share one interpreter. The base ref's files come from `git archive` into a
temporary directory (read-only for the repository: no worktree, no checkout). Both sides run with the
render engine of this installation, so only the program and the stack files differ.

Exit codes: 0 no changes, 3 changes that apply in place, 4 dangerous changes (REPLACE, DATA-LOSS
RISK or QUORUM CHANGE, which also prints the safe procedure), 1 an error (nothing rendered or
compared; also a stack without its policy/<stack>.json), 2 bad usage.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

MAIN_BRANCHES = ("origin/main", "main")
RENDER_TIMEOUT_S = 600
_WORKER = ("import sys; sys.path.insert(0, sys.argv[1]); "
           "from orchestrator.toolchain.diff_cli import render_worker; render_worker(sys.argv[2], sys.argv[3], sys.argv[4])")


class DiffError(Exception):
    """The diff cannot be computed; the message says why."""


def register(sub: argparse._SubParsersAction) -> None:
    from orchestrator.toolchain.commands import _project_dir_option, stack_name

    p = sub.add_parser("diff", help="render a stack at a git ref and at the working tree; show what would change",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stack", required=True, type=stack_name,
                   help="stack name (reads Pulumi.<stack>.yaml on both sides)")
    p.add_argument("--base", metavar="REF",
                   help="git ref to compare against (default: merge base of HEAD with origin/main, else main)")
    p.add_argument("--format", choices=("text", "markdown"), default="text",
                   help="text (terminal) or markdown (a PR comment: summary table, collapsible details)")
    _project_dir_option(p)
    p.set_defaults(func=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    from orchestrator.toolchain.commands import _project_dir
    from orchestrator.toolchain.diff import EXIT_ERROR, format_markdown, format_text

    try:
        diff = diff_stack(args.stack, _project_dir(args), args.base)
    except DiffError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    sys.stdout.write(format_markdown(diff) if args.format == "markdown" else format_text(diff))
    return diff.exit_code


# --- git ----------------------------------------------------------------------------------------
def _git(cwd: Path, *args: str, binary: bool = False) -> Any:
    try:
        proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=not binary)
    except FileNotFoundError:
        raise DiffError("git is not installed") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace") if binary else proc.stderr
        raise DiffError(f"git {' '.join(args)}: {err.strip() or 'failed'}")
    return proc.stdout if binary else proc.stdout.strip()


def resolve_base(project_dir: Path, ref: str | None) -> tuple[str, str]:
    """(label, commit) of the base side."""
    _git(project_dir, "rev-parse", "--show-toplevel")  # a clear error outside a repository
    if ref:
        try:
            sha = _git(project_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        except DiffError:
            raise DiffError(f"--base {ref!r} is not a commit in this repository") from None
        return ref, sha
    for branch in MAIN_BRANCHES:
        try:
            _git(project_dir, "rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}")
        except DiffError:
            continue
        return f"merge-base({branch})", _git(project_dir, "merge-base", "HEAD", branch)
    raise DiffError(f"no main branch ({' or '.join(MAIN_BRANCHES)}) to compare with: pass --base REF")


def export_tree(project_dir: Path, commit: str, dest: Path) -> Path:
    """Write the project directory as it is at `commit` into `dest`; returns the project's path there."""
    prefix = _git(project_dir, "rev-parse", "--show-prefix")
    data = _git(project_dir, "archive", "--format=tar", f"{commit}:{prefix}", binary=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(dest, filter="data")
    return dest


# --- rendering, one process per side ------------------------------------------------------------
def render_worker(project_dir: str, stack: str, out_file: str) -> None:
    """Entry point of the render subprocess: render `stack` of `project_dir` with this engine and that
    directory's program and `components`; write manifests and outputs (or the error) as JSON."""
    import os

    from orchestrator.toolchain.render import plain, render_stack

    sys.path[0] = project_dir  # `components` now resolves to the project's own copy
    os.chdir(project_dir)  # as the Pulumi CLI runs a program
    try:
        result = render_stack(stack, Path(project_dir))
        payload: dict[str, Any] = {"manifests_by_tier": result.manifests_by_tier,
                                   "stack_outputs": plain(result.stack_outputs)}
    except Exception as exc:  # noqa: BLE001 - any failure of the program is reported, not raised
        payload = {"error": f"{type(exc).__name__}: {exc}"}
    Path(out_file).write_text(json.dumps(payload))


def _engine_root() -> Path:
    import orchestrator

    return Path(orchestrator.__file__).resolve().parent.parent


def render_sides(sides: dict[str, Path], stack: str, workdir: Path) -> dict[str, dict[str, Any]]:
    """Render the stack in each project directory, in parallel subprocesses."""
    procs = {}
    for side, project in sides.items():
        out = workdir / f"{side}.json"
        procs[side] = (out, subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(_engine_root()), str(project.resolve()), stack, str(out)],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    results = {}
    for side, (out, proc) in procs.items():
        try:
            _, stderr = proc.communicate(timeout=RENDER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise DiffError(f"rendering the {side} side took longer than {RENDER_TIMEOUT_S} s") from None
        if proc.returncode != 0 or not out.is_file():
            raise DiffError(f"rendering the {side} side failed:\n{stderr.strip()}")
        results[side] = json.loads(out.read_text())
    for side, result in results.items():
        if "error" in result:
            raise DiffError(f"stack {stack!r} does not render at the {side}: {result['error']}")
    return results


def diff_stack(stack: str, project_dir: Path, base_ref: str | None = None):
    """Diff of `stack` between `base_ref` (default: merge base with main) and the working tree."""
    from orchestrator.toolchain.diff import compare

    project_dir = project_dir.resolve()
    if not (project_dir / f"Pulumi.{stack}.yaml").is_file():
        raise DiffError(f"Pulumi.{stack}.yaml: no such stack file in {project_dir}")
    # Without it the policy pack would run with its non-production defaults, silently (a new prod stack
    # would skip the HA rules): every stack states its policy config, reviewed with the stack.
    if not (project_dir / "policy" / f"{stack}.json").is_file():
        raise DiffError(f"policy/{stack}.json: stack {stack!r} has no policy file; add one next to "
                        f"Pulumi.{stack}.yaml (copy policy/prod.json for a production stack)")
    label, commit = resolve_base(project_dir, base_ref)
    base_label = f"{label}@{commit[:12]}" if label != commit else commit[:12]
    with tempfile.TemporaryDirectory(prefix="orchestrator-diff-") as tmp:
        workdir = Path(tmp)
        base_dir = export_tree(project_dir, commit, workdir / "base")
        sides = {"working tree": project_dir}
        # A stack or program that does not exist at the base ref: everything is new.
        base_exists = (base_dir / f"Pulumi.{stack}.yaml").is_file() and (base_dir / "__main__.py").is_file()
        if base_exists:
            sides["base"] = base_dir
        rendered = render_sides(sides, stack, workdir)
    base = rendered.get("base", {"manifests_by_tier": {}, "stack_outputs": {}})
    if not base_exists:
        base_label += " (no such stack)"
    head = rendered["working tree"]
    return compare(stack, base["manifests_by_tier"], head["manifests_by_tier"], base_label, "working tree",
                   base["stack_outputs"], head["stack_outputs"])
