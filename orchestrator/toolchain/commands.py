"""`orchestrator render` and `orchestrator check`: the offline render of the Pulumi program."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

# checkov lives in a virtualenv of its own (its pins conflict with the project's): see the Makefile.
CHECKOV = Path(__file__).resolve().parents[2] / ".venv" / "tools" / "checkov" / "bin" / "checkov"

DEFAULT_STACK = "dev"


def register(sub: argparse._SubParsersAction) -> None:
    render = sub.add_parser("render", help="render stacks to Kubernetes YAML offline (no CLI, no cluster)")
    render.add_argument("--stack", action="append", dest="stacks", metavar="STACK",
                        help="stack name: reads Pulumi.<stack>.yaml; repeat for several (default: dev)")
    render.add_argument("--out", type=Path,
                        help="output directory (default: rendered/<stack>; with several stacks: OUT/<stack>)")
    _project_dir_option(render)
    render.set_defaults(func=cmd_render)

    check = sub.add_parser("check", help="render a stack and check it with real validators (the main job)")
    check.add_argument("--stack", default=DEFAULT_STACK, help="stack name (default: dev)")
    check.add_argument("--out", type=Path, help="also write the render here (default: rendered/<stack>)")
    _project_dir_option(check)
    check.set_defaults(func=cmd_check)


def _project_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project-dir", type=Path, default=None,
                        help="directory holding Pulumi.yaml and the stack files "
                             "(default: the current directory if it has Pulumi.yaml, else this checkout)")


def _project_dir(args: argparse.Namespace) -> Path:
    from orchestrator.toolchain.render import PROJECT_DIR

    if args.project_dir is not None:
        return args.project_dir
    return Path.cwd() if (Path.cwd() / "Pulumi.yaml").is_file() else PROJECT_DIR


def _render(stack: str, project_dir: Path):
    from components.settings import SettingsError
    from orchestrator.toolchain.render import RenderError, render_stack

    try:
        return render_stack(stack, project_dir)
    except (SettingsError, RenderError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("nothing was rendered", file=sys.stderr)
        return None


def cmd_render(args: argparse.Namespace) -> int:
    from orchestrator.toolchain.render import summary, write_render

    stacks = args.stacks or [DEFAULT_STACK]
    results = []
    for stack in stacks:  # all stacks render before anything is written
        result = _render(stack, _project_dir(args))
        if result is None:
            return 1
        results.append(result)
    for result in results:
        if args.out is None:
            out = Path("rendered") / result.stack
        else:
            out = args.out / result.stack if len(stacks) > 1 else args.out
        write_render(result, out)
        print(summary(result))
        print(f"wrote {out}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from orchestrator.toolchain.checks import (
        KUBERNETES_VERSIONS,
        CheckError,
        check_all,
        checkov_problems,
        policy_problems,
    )
    from orchestrator.toolchain.render import summary, write_render

    result = _render(args.stack, _project_dir(args))
    if result is None:
        return 1
    print(summary(result))
    project_dir = _project_dir(args)
    policy_file = project_dir / "policy" / f"{args.stack}.json"
    policy_config = json.loads(policy_file.read_text()) if policy_file.is_file() else {}
    try:
        problems = check_all(result.manifests)
        problems += policy_problems(result.registrations, policy_config, project_dir)
        with tempfile.TemporaryDirectory() as tmp:
            write_render(result, Path(tmp) / args.stack)
            problems += checkov_problems(Path(tmp) / args.stack, CHECKOV)
    except CheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    out = args.out or Path("rendered") / args.stack
    write_render(result, out)
    print("checks passed: references and selectors; Argo CRD models; kubernetes-validate --strict "
          f"{' and '.join(KUBERNETES_VERSIONS)}; promtool check config and rules; policy pack "
          f"({policy_file.name if policy_file.is_file() else 'defaults'}); checkov")
    print(f"wrote {out}")
    return 0
