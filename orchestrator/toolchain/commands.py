"""`orchestrator render` and `orchestrator check`: the offline render of the Pulumi program.

Safety (README "Safety"): both commands vet every `--out` directory before rendering and again just before
writing, and never replace a directory the render did not write (orchestrator/toolchain/render.py). Every
input problem is one line and exit 2; a refused `--out` is exit 6; a failed check is exit 1.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import ExitCode, InputError, OrchestratorError

if TYPE_CHECKING:
    from orchestrator.toolchain.render import RenderResult

# checkov lives in a virtualenv of its own (its pins conflict with the project's): see the Makefile.
CHECKOV = Path(__file__).resolve().parents[2] / ".venv" / "tools" / "checkov" / "bin" / "checkov"

DEFAULT_STACK = "dev"
# A stack name becomes a file name (Pulumi.<stack>.yaml) and a directory name (rendered/<stack>): no
# separators, no leading dot or dash. Pulumi's own rule is alphanumerics, '-', '_' and '.'.
_STACK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
POLICY_MAX_BYTES = 1024 * 1024


def stack_name(value: str) -> str:
    """argparse type of every `--stack` option (render, check, diff)."""
    if not _STACK_NAME.match(value) or ".." in value:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a stack name (letters, digits, '-', '_', '.'; it names Pulumi.<stack>.yaml)")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    render = sub.add_parser("render", help="render stacks to Kubernetes YAML offline (no CLI, no cluster)")
    render.add_argument("--stack", action="append", dest="stacks", metavar="STACK", type=stack_name,
                        help="stack name: reads Pulumi.<stack>.yaml; repeat for several (default: dev)")
    render.add_argument("--out", type=Path,
                        help="output directory (default: rendered/<stack>; with several stacks: OUT/<stack>); "
                             "must be absent, empty or a previous render: anything else is refused")
    _project_dir_option(render)
    render.set_defaults(func=cmd_render)

    check = sub.add_parser("check", help="render a stack and check it with real validators (the main job)")
    check.add_argument("--stack", default=DEFAULT_STACK, type=stack_name, help="stack name (default: dev)")
    check.add_argument("--out", type=Path,
                       help="also write the render here (default: rendered/<stack>); must be absent, empty "
                            "or a previous render")
    _project_dir_option(check)
    check.set_defaults(func=cmd_check)


def _project_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project-dir", type=Path, default=None,
                        help="directory holding Pulumi.yaml and the stack files "
                             "(default: the current directory if it has Pulumi.yaml, else this checkout)")


def _project_dir(args: argparse.Namespace) -> Path:
    from orchestrator.toolchain.render import PROJECT_DIR

    if args.project_dir is not None:
        if not args.project_dir.is_dir():
            raise InputError(f"--project-dir {args.project_dir}: not a directory")
        if not (args.project_dir / "Pulumi.yaml").is_file():
            raise InputError(f"--project-dir {args.project_dir}: no Pulumi.yaml (not a Pulumi project)")
        return args.project_dir
    return Path.cwd() if (Path.cwd() / "Pulumi.yaml").is_file() else PROJECT_DIR


def _render(stack: str, project_dir: Path) -> RenderResult:
    from components.settings import SettingsError
    from orchestrator.toolchain.render import render_stack

    try:
        return render_stack(stack, project_dir)
    except SettingsError as exc:
        # One line per bad key, each naming the stack file and the key.
        raise InputError(f"{exc} (nothing was rendered)") from None


def _outputs(args: argparse.Namespace, stacks: list[str]) -> dict[str, Path]:
    if args.out is None:
        return {s: Path("rendered") / s for s in stacks}
    return {s: args.out / s for s in stacks} if len(stacks) > 1 else {stacks[0]: args.out}


def cmd_render(args: argparse.Namespace) -> int:
    from orchestrator.toolchain.render import SignalsDeferred, summary, vet_out_dir, write_render

    stacks = args.stacks or [DEFAULT_STACK]
    if len(set(stacks)) != len(stacks):
        raise InputError(f"--stack: each stack once (got {', '.join(stacks)})")
    project_dir = _project_dir(args)
    outs = _outputs(args, stacks)
    for out in outs.values():  # refuse a bad --out before spending time on the render
        vet_out_dir(out)
    with SignalsDeferred(escalate=True):  # rendering changes nothing: a signal stops right after it
        results = [_render(stack, project_dir) for stack in stacks]  # all render before anything is written
    for result in results:
        write_render(result, outs[result.stack])
        print(summary(result))
        print(f"wrote {outs[result.stack]}")
    return ExitCode.OK


def load_policy_config(policy_file: Path, source: str) -> dict[str, Any]:
    """policy/<stack>.json: an object of per-policy objects. Every stack has one: without it the pack would
    judge a new production stack by its non-production defaults, silently. A missing, unreadable or
    malformed file is bad input."""
    from orchestrator.strict_yaml import YamlError, read_text

    if not policy_file.exists() and not policy_file.is_symlink():
        raise InputError(f"{source}: no policy file for this stack; every stack has one, reviewed with it "
                         "(copy policy/prod.json for a production stack; `orchestrator check` says what it "
                         "must hold)")
    try:
        text = read_text(policy_file, source, POLICY_MAX_BYTES)
    except YamlError as exc:
        raise InputError(str(exc)) from None

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        dup = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
        if dup is not None:
            raise InputError(f"{source}: duplicate key {dup!r}")
        return dict(pairs)

    try:
        config = json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise InputError(f"{source}: not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise InputError(f"{source}: nested too deeply") from None
    if not isinstance(config, dict):
        raise InputError(f"{source}: must be a JSON object of policy name to settings (got {type(config).__name__})")
    for name, conf in config.items():
        if not isinstance(conf, dict):
            raise InputError(f"{source}: {name}: must be an object of settings (got {type(conf).__name__})")
    return config


def _stack_settings(stack: str, project_dir: Path) -> Any:
    from components.settings import settings_from_config
    from orchestrator.toolchain.render import load_stack_config

    config, secret_keys, source = load_stack_config(stack, project_dir)
    return settings_from_config(config, source, set(secret_keys))


def _policy_names(project_dir: Path) -> set[str]:
    """The policy names of the pack in `project_dir` (its rules module, loaded as the check runs it)."""
    from orchestrator.toolchain.checks import load_rules

    return {p.name for p in load_rules(project_dir).POLICIES}


def cmd_check(args: argparse.Namespace) -> int:
    from orchestrator.toolchain.checks import (
        KUBERNETES_VERSIONS,
        CheckError,
        check_all,
        checkov_problems,
        policy_config_problems,
        policy_problems,
    )
    from orchestrator.toolchain.render import SignalsDeferred, summary, vet_out_dir, write_render

    project_dir = _project_dir(args)
    out = args.out or Path("rendered") / args.stack
    vet_out_dir(out)
    policy_source = f"policy/{args.stack}.json"
    policy_file = project_dir / "policy" / f"{args.stack}.json"
    policy_config = load_policy_config(policy_file, policy_source)
    if not (project_dir / "policy" / "rules.py").is_file():
        raise InputError(f"policy/rules.py: no policy pack in {project_dir / 'policy'} (--project-dir)")
    with SignalsDeferred(escalate=True):
        result = _render(args.stack, project_dir)
    print(summary(result))
    try:
        problems = check_all(result.manifests)
        problems += policy_config_problems(policy_config, _stack_settings(args.stack, project_dir), policy_source,
                                           _policy_names(project_dir))
        problems += policy_problems(result.registrations, policy_config, project_dir)
        with tempfile.TemporaryDirectory() as tmp:
            write_render(result, Path(tmp) / args.stack)
            problems += checkov_problems(Path(tmp) / args.stack, CHECKOV)
    except CheckError as exc:
        raise OrchestratorError(str(exc), ExitCode.FAILED) from None  # a validator is missing or broke
    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return ExitCode.FAILED
    write_render(result, out)
    print("checks passed: references and selectors; Argo CRD models; kubernetes-validate --strict "
          f"{' and '.join(KUBERNETES_VERSIONS)}; promtool check config and rules; policy pack "
          f"({policy_file.name}); checkov")
    print(f"wrote {out}")
    return ExitCode.OK
