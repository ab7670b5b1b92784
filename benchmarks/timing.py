"""Timing shared by the benchmarks: interleaved repeats and medians, so that every contender sees the same
machine load (the machine is shared and noisy; ratios measured in one run are what we report)."""

from __future__ import annotations

import math
import statistics
import time


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(runs: dict, repeats: int, budget: float = 0.02) -> dict:
    """{name: seconds per call}: the median over ``repeats`` rounds, each round calling every function of
    ``runs`` in turn; a function faster than ``budget`` seconds is called several times per timing."""
    first = next(iter(runs.values()))
    for run in runs.values():  # warm-up
        run()
    inner = max(1, int(budget / max(timed(first), 1e-6)))
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(timed(lambda: [run() for _ in range(inner)]) / inner)
    return {name: statistics.median(values) for name, values in times.items()}


def geometric_mean(values) -> float:
    return math.exp(statistics.fmean(map(math.log, values)))
