"""3. Hit path: one thread reads a fresh key, against raw redis-py GET + json.loads.

The baseline reads the same JSON payload through the same client (connection pool) the
strategy uses, in alternating rounds; the ratio is the median of the per-round ratios.
"""

from __future__ import annotations

import json
from typing import Callable, cast

from bench.context import Context
from bench.measure import alternating, median_ratio, median_seconds
from bench.report import Table, Target
from bench.scenarios import Outcome
from bench.strategies import LABELS, NAMES, build
from bench.workloads import FRESH

TARGET = 0.87


def _repeat(n: int, read: Callable[[], object]) -> Callable[[], None]:
    def reads() -> None:
        for _ in range(n):
            read()

    return reads


def run(ctx: Context) -> Outcome:
    s = ctx.scale
    n = s.hit_reads // s.hit_rounds
    table = Table(
        f"3. Hit path: one thread, {n * s.hit_rounds:,} reads of a fresh key per strategy, "
        f"{s.hit_rounds} alternating rounds against raw GET + json.loads on the same client",
        ["strategy", "ops/s", "raw GET ops/s", "ratio (median of rounds)", "µs per read", "µs per raw read"],
    )
    ratios: dict[str, float] = {}
    for name in NAMES:
        strategy = build(ctx.spec(name, FRESH.name))
        strategy.warm()
        key, raw_key = f"hit-{name}", f"hit-raw-{name}"
        value = strategy.get(key)  # loads it once
        client = strategy.redis
        client.set(raw_key, json.dumps(value, separators=(",", ":")))
        reads = _repeat(n, lambda: strategy.get(key))
        raw_reads = _repeat(n, lambda: json.loads(cast(bytes, client.get(raw_key))))
        rounds = alternating([reads, raw_reads], s.hit_rounds)
        strategy.close()
        ratios[name] = median_ratio(rounds)
        us, us_raw = (median_seconds(rounds, i) / n * 1e6 for i in (0, 1))
        table.add(LABELS[name], 1e6 / us, 1e6 / us_raw, ratios[name], us, us_raw)
    ratio = ratios["refresher"]
    return Outcome([table], [Target("hit", f">= {TARGET}x raw GET + json.loads", f"{ratio:.3f}x", ratio >= TARGET)])
