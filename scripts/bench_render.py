#!/usr/bin/env python3
"""Whole-process time of the offline render: `orchestrator render --stack dev --stack prod`
(one process, both stacks), median of 5 runs, plus each stack alone. Target (issue 2): ≤ 2.5 s."""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 5
EXE = str(Path(sys.executable).with_name("orchestrator"))


def measure(args: list[str]) -> list[float]:
    times = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run([EXE, "render", *args, "--out", out], check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    measure(["--stack", "dev"])  # warm the page cache once; not counted
    for label, args in (("dev + prod, one process", ["--stack", "dev", "--stack", "prod"]),
                        ("dev alone", ["--stack", "dev"]),
                        ("prod alone", ["--stack", "prod"])):
        times = measure(args)
        print(f"{label:<26} median {statistics.median(times):.2f} s  "
              f"(min {min(times):.2f}, max {max(times):.2f}, {RUNS} runs)")


if __name__ == "__main__":
    main()
