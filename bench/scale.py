"""How big each scenario is: the full run, and the quick one that finishes in under a minute."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    processes: int = 4  # reader processes (all multi-process scenarios)
    cold_threads: int = 50
    hot_threads: int = 8
    hot_ttl: float = 2.0
    hot_periods: float = 4.0  # TTL periods each hot-key run lasts
    async_hot_periods: float = 4.0  # the same, for the asyncio strategies (2c)
    hit_reads: int = 40_000
    hit_rounds: int = 40  # many short rounds: a burst of other work falls on one round
    async_hit_reads: int = 20_000  # per asyncio strategy (3b), in hit_rounds rounds
    bulk_ids: int = 100
    bulk_rounds: int = 20
    many_keys: int = 100_000
    load_threads: int = 4  # per reader process, loading the many keys
    drain_seconds: float = 15.0  # worker throughput is measured over this long, per worker count
    memory_sample: int = 1000  # keys per strategy sampled with MEMORY USAGE
    profile_keys: int = 2000  # refresh_key calls under cProfile
    # The near cache (`--only near`, bench/scenarios/near.py)
    near_fast_reads: int = 20_000  # per round, of each read served from memory (6a)
    near_slow_reads: int = 2_000  # per round, of each read that goes to Redis (6a)
    near_rounds: int = 10
    near_lag_trials: int = 300
    near_hot_periods: float = 4.0
    near_entries: int = 10_000  # the near cache's larger size in 6e (at most bench.near_loaders.NEAR_ENTRIES)
    near_cost_trials: int = 300
    near_frozen_trials: int = 3


FULL = Scale()
# The hot key keeps its 2 s TTL: at 1 s the 10% refresh window (100 ms) would be no longer
# than the 100 ms load, so every refresh would let the value expire while it runs.
# The asyncio rows keep the quick run's added time small: one TTL period per hot run.
QUICK = Scale(
    hot_periods=1.5,
    async_hot_periods=1.0,
    hit_reads=3_000,
    async_hit_reads=1_500,
    hit_rounds=6,
    bulk_rounds=8,
    many_keys=10_000,
    drain_seconds=1.5,
    memory_sample=200,
    profile_keys=300,
    near_fast_reads=2_000,
    near_slow_reads=200,
    near_rounds=4,
    near_lag_trials=30,
    near_hot_periods=0.5,
    near_entries=1_000,
    near_cost_trials=30,
    near_frozen_trials=1,
)
