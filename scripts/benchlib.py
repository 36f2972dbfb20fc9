"""What the benchmark scripts share (run as `python scripts/<bench>.py`, which puts this folder on sys.path)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def cpu_ms(fn: Callable[[], object], runs: int) -> float:
    """Median CPU time of `fn` over `runs` calls, in ms (process time: what the call costs, not the machine's
    other load)."""
    times = []
    for _ in range(runs):
        start = time.process_time()
        fn()
        times.append((time.process_time() - start) * 1000)
    return statistics.median(times)
