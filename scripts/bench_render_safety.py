#!/usr/bin/env python3
"""What the render's safety costs (issue 15): the strict YAML reader against PyYAML's safe_load on the real
stack files, the refusal of the alias bomb and of a 20,000-level nesting, and write_render into a fresh
directory against replacing a previous render (vet + write + exchange + remove the old tree).

CPU time of this process (time.process_time), median of RUNS, so a busy shared machine skews it less than
wall time would. Prints figures; asserts nothing."""
from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import benchlib  # noqa: E402 - this folder, on sys.path when a script runs
import yaml  # noqa: E402

from orchestrator import strict_yaml  # noqa: E402
from orchestrator.toolchain.render import PROJECT_DIR, render_stack, write_render  # noqa: E402

RUNS = 21
BOMB = ("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{c}: &{c} [{', '.join(['*' + p] * 10)}]\n" for p, c in zip("abcdefg", "bcdefgh", strict=True)))


def cpu_ms(fn: Callable[[], object]) -> float:
    return benchlib.cpu_ms(fn, RUNS)


def refused(text: str) -> None:
    try:
        strict_yaml.loads(text, "bench.yaml")
    except strict_yaml.YamlError:
        return
    raise SystemExit("the strict reader accepted what it must refuse")


def main() -> None:
    for stack in ("dev", "prod"):
        text = (PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text()
        pyyaml = cpu_ms(lambda: yaml.safe_load(text))  # noqa: B023 - called right here, in this iteration
        strict = cpu_ms(lambda: strict_yaml.loads(text, "s"))  # noqa: B023
        print(f"Pulumi.{stack}.yaml ({len(text)} bytes): safe_load {pyyaml:.2f} ms, strict {strict:.2f} ms "
              f"(CPU, median of {RUNS})")
    print(f"alias bomb ({len(BOMB)} bytes) refused in {cpu_ms(lambda: refused(BOMB)):.2f} ms")
    deep = "x: " + "[" * 20000 + "]" * 20000
    print(f"20,000-level nesting ({len(deep)} bytes) refused in {cpu_ms(lambda: refused(deep)):.2f} ms")

    result = render_stack("prod")
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10**6))
        fresh = cpu_ms(lambda: write_render(result, Path(tmp) / f"fresh-{next(counter)}"))
        write_render(result, Path(tmp) / "same")
        replace = cpu_ms(lambda: write_render(result, Path(tmp) / "same"))
    print(f"write_render of prod ({len(result.manifests)} objects): into a new directory {fresh:.2f} ms, "
          f"replacing the previous render {replace:.2f} ms (CPU, median of {RUNS})")


if __name__ == "__main__":
    main()
