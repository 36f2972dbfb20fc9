#!/usr/bin/env python3
"""What the change-control checks cost (issue 16): the render's "nothing escapes" scan over every
registration, the whole policy pack (old rules from git vs the current ones) over each stack's resources,
the policy-file consistency check, and `orchestrator diff-trees` reading two rendered trees.

CPU time of this process (time.process_time), median of RUNS: a busy shared machine skews it less than
wall time would. Prints figures; asserts nothing."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchlib  # noqa: E402 - this folder, on sys.path when a script runs

from orchestrator.toolchain import checks  # noqa: E402
from orchestrator.toolchain.diff_trees import read_tree  # noqa: E402
from orchestrator.toolchain.render import PROJECT_DIR, escaped, load_stack_config, render_stack, write_render  # noqa: E402

RUNS = 15
OLD_RULES_REF = "7269189"  # the last commit before the pack grew (issue 16)


def cpu_ms(fn: Callable[[], object]) -> float:
    return benchlib.cpu_ms(fn, RUNS)


def old_rules(workdir: Path) -> Any:
    policy = workdir / "policy"
    policy.mkdir()
    for name in ("rules.py", "tiers.json"):
        blob = subprocess.run(["git", "-C", str(PROJECT_DIR), "show", f"{OLD_RULES_REF}:policy/{name}"],
                              check=True, capture_output=True, text=True).stdout
        (policy / name).write_text(blob)
    spec = importlib.util.spec_from_file_location("old_rules", policy / "rules.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench_stack(stack: str, old: Any, new: Any, tmp: Path) -> None:
    from components.settings import settings_from_config

    result = render_stack(stack)
    config = json.loads((PROJECT_DIR / "policy" / f"{stack}.json").read_text())
    raw, secret_keys, source = load_stack_config(stack)
    settings = settings_from_config(raw, source, set(secret_keys))
    names = {p.name for p in new.POLICIES}

    def pack(rules: Any) -> None:
        with mock.patch.object(checks, "load_rules", lambda _dir: rules):  # another rules module, same run
            checks.policy_problems(result.registrations, config, PROJECT_DIR)

    out = tmp / stack
    write_render(result, out)
    print(f"stack {stack}: {len(result.registrations)} registrations, {len(result.manifests)} objects")
    print(f"  escaped() scan             {cpu_ms(lambda: escaped(result)):8.2f} ms")
    print(f"  policy pack, before        {cpu_ms(lambda: pack(old)):8.2f} ms")
    print(f"  policy pack, now           {cpu_ms(lambda: pack(new)):8.2f} ms")
    print(f"  policy file vs stack       {cpu_ms(lambda: checks.policy_config_problems(config, settings, 'x', names)):8.3f} ms")
    print(f"  diff-trees, read one tree  {cpu_ms(lambda: read_tree(out, '--head')):8.2f} ms")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        old = old_rules(Path(tmp))
        new = checks.load_rules(PROJECT_DIR)
        print(f"policies: {len(old.POLICIES)} before, {len(new.POLICIES)} now")
        for stack in ("dev", "prod"):
            bench_stack(stack, old, new, Path(tmp))


if __name__ == "__main__":
    main()
