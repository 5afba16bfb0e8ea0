"""3. Hit path: one thread reads a fresh key, against raw redis-py GET + json.loads.

The baseline reads the same JSON payload through the same client (connection pool) the
strategy uses, in rotating rounds; the ratio is the median of the per-round ratios. For
refresher a third contender, a raw MGET of the same two keys its hit reads (the value
and its pending marker) + json.loads, splits its gap into Redis work and Python work.
"""

from __future__ import annotations

import json
from typing import Callable, cast

from bench.context import Context
from bench.measure import alternating, median_ratio, median_seconds
from bench.report import Table, Target
from bench.scenarios import Outcome
from bench.strategies import LABELS, NAMES, build
from bench.strategies.base import Strategy
from bench.strategies.refresher import RefresherStrategy
from bench.workloads import FRESH

TARGET = 0.87


def _repeat(n: int, read: Callable[[], object]) -> Callable[[], None]:
    def reads() -> None:
        for _ in range(n):
            read()

    return reads


def _raw_mget(strategy: Strategy, key: str, raw_key: str) -> Callable[[], object] | None:
    """refresher's hit as bare redis-py: MGET of the value's key and its pending marker."""
    if not isinstance(strategy, RefresherStrategy):
        return None
    pending = strategy.loader.keys(key).pending
    client = strategy.redis
    return lambda: json.loads(cast(list[bytes], client.mget(raw_key, pending))[0])


def run(ctx: Context) -> Outcome:
    s = ctx.scale
    n = s.hit_reads // s.hit_rounds
    table = Table(
        f"3. Hit path: one thread, {n * s.hit_rounds:,} reads of a fresh key per strategy, "
        f"{s.hit_rounds} rotating rounds against raw GET + json.loads on the same client",
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
        contenders = [_repeat(n, lambda: strategy.get(key)), _repeat(n, lambda: json.loads(cast(bytes, client.get(raw_key))))]
        mget = _raw_mget(strategy, key, raw_key)
        if mget is not None:
            contenders.append(_repeat(n, mget))
        rounds = alternating(contenders, s.hit_rounds)
        strategy.close()
        ratios[name] = median_ratio(rounds)
        us = [median_seconds(rounds, i) / n * 1e6 for i in range(len(contenders))]
        table.add(LABELS[name], 1e6 / us[0], 1e6 / us[1], ratios[name], us[0], us[1])
        if mget is not None:
            table.notes.append(
                f"{LABELS[name]}: raw MGET of the value and its pending marker + json.loads takes {us[2]:.1f} µs "
                f"({median_ratio(rounds, 2, 1):.2f}x raw GET), so of the {us[0] - us[1]:.1f} µs gap "
                f"{us[2] - us[1]:.1f} µs is the second key and {us[0] - us[2]:.1f} µs is Python work in Loader.get."
            )
    ratio = ratios["refresher"]
    return Outcome([table], [Target("hit", f">= {TARGET}x raw GET + json.loads", f"{ratio:.3f}x", ratio >= TARGET)])
