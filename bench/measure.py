"""Small statistics: latency percentiles, and timing contenders by turns."""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Sequence


def latency_ms(values: Sequence[float]) -> tuple[float, float, float]:
    """p50, p99 and max, in milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return math.nan, math.nan, math.nan

    def rank(q: float) -> float:
        return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)] * 1000

    return rank(50), rank(99), ordered[-1] * 1000


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def alternating(contenders: Sequence[Callable[[], object]], rounds: int) -> list[list[float]]:
    """Time each contender once per round, rotating which goes first, so drift, frequency
    scaling and noisy neighbours fall on all of them alike. Returns seconds per round, in
    the contenders' order."""
    results = []
    for i in range(rounds):
        times = [0.0] * len(contenders)
        for j in range(len(contenders)):
            k = (i + j) % len(contenders)
            times[k] = timed(contenders[k])
        results.append(times)
    return results


def median_ratio(rounds: Sequence[Sequence[float]], a: int = 0, b: int = 1) -> float:
    """The median over rounds of (contender b's seconds / contender a's): how many times faster a is."""
    return statistics.median(r[b] / r[a] for r in rounds)


def median_seconds(rounds: Sequence[Sequence[float]], i: int) -> float:
    return statistics.median(r[i] for r in rounds)
