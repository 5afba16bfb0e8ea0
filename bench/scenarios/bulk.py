"""5. Bulk: reading many keys in one call against one call per key, in rotating rounds."""

from __future__ import annotations

from bench.context import Context
from bench.measure import alternating, median_ratio, median_seconds
from bench.report import Table, Target
from bench.scenarios import Outcome
from bench.strategies import LABELS, NAMES, BulkStrategy, build
from bench.workloads import FRESH

TARGET = 10.0


def run(ctx: Context) -> Outcome:
    s = ctx.scale
    table = Table(
        f"5. Bulk: get_many of {s.bulk_ids} fresh keys vs {s.bulk_ids} single gets "
        f"({s.bulk_rounds} rotating rounds)",
        ["strategy", "get_many ms", f"{s.bulk_ids} x get ms", "speed-up (median of rounds)"],
        notes=["get_many is one MGET for naive and refresher, get_or_create_multi for dogpile.cache; "
               "the lock-poll and probabilistic patterns have no many-keys read (—)."],
    )
    speedups: dict[str, float] = {}
    for name in NAMES:
        strategy = build(ctx.spec(name, FRESH.name))
        if not isinstance(strategy, BulkStrategy):
            table.add(LABELS[name], float("nan"), float("nan"), float("nan"))
            strategy.close()
            continue
        bulk = strategy
        keys = [f"bulk-{name}-{i}" for i in range(s.bulk_ids)]
        bulk.warm()
        bulk.get_many(keys)  # loads them once

        def singles() -> None:
            for key in keys:
                bulk.get(key)

        rounds = alternating([lambda: bulk.get_many(keys), singles], s.bulk_rounds)
        bulk.close()
        speedups[name] = median_ratio(rounds)
        table.add(LABELS[name], median_seconds(rounds, 0) * 1000, median_seconds(rounds, 1) * 1000, speedups[name])
    speedup = speedups["refresher"]
    return Outcome([table], [Target("bulk", f"get_many >= {TARGET:g}x faster than single gets",
                                    f"{speedup:.1f}x", speedup >= TARGET)])
