"""1. Cold stampede: every reader process misses the same key at the same moment.

`run` reads with threads (the sync strategies), `run_async` with asyncio tasks, one event
loop per process (1b: refresher's `aget` against the asyncio strategies)."""

from __future__ import annotations

import math
import sys
from typing import Sequence

from bench import origin
from bench.context import Context
from bench.measure import latency_ms
from bench.readers import Job
from bench.report import Table, Target
from bench.scenarios import Outcome
from bench.strategies import ASYNC_NAMES, LABELS, NAMES
from bench.workloads import COLD

COLUMNS = ["strategy", "origin calls", "reads", "errors", "p50 ms", "p99 ms", "max ms", "first load began ms",
           "Redis commands"]
NOTES = ["First load began: when the first origin call started, in ms after the readers were released (what "
         "happens before the load). Redis commands: all the commands the bench's Redis ran meanwhile, from "
         "every client (reads, locks, polling, the origin's own counting)."]


def _measure(ctx: Context, names: Sequence[str], readers: int, table: Table,
             key_suffix: str) -> tuple[dict[str, int], dict[str, float], dict[str, float]]:
    """Each strategy's stampede on a key of its own: its origin calls, p99 (ms) and when
    its first load began (ms after the release)."""
    p99: dict[str, float] = {}
    calls: dict[str, int] = {}
    began_ms: dict[str, float] = {}
    for name in names:
        key = f"cold-{name}{key_suffix}"
        job = Job(ctx.spec(name, COLD.name), (key,), readers)
        commands = ctx.redis_commands()
        reports, released = ctx.pool.run([job] * ctx.scale.processes)
        commands = ctx.redis_commands() - commands
        latencies = [x for r in reports for x in r.latencies]
        errors = [e for r in reports for e in r.errors]
        if errors:
            print(f"cold/{name}: {len(errors)} errors, the first:\n{errors[0]}", file=sys.stderr)
        calls[name] = origin.calls(key)
        began_ms[name] = (min((start for start, _ in origin.call_times(key)), default=math.nan) - released) * 1000
        p50, p99[name], worst = latency_ms(latencies)
        table.add(LABELS[name], calls[name], len(latencies), len(errors), p50, p99[name], worst, began_ms[name], commands)
    return calls, p99, began_ms


def run(ctx: Context, key_suffix: str = "") -> Outcome:
    """`key_suffix` gives a repeated run keys of its own, so that they are cold again."""
    s = ctx.scale
    table = Table(
        f"1. Cold stampede: {s.processes} processes x {s.cold_threads} threads miss one key "
        f"(loader {COLD.delay * 1000:.0f} ms)",
        COLUMNS,
        notes=list(NOTES),
    )
    calls, p99, _ = _measure(ctx, NAMES, s.cold_threads, table, key_suffix)
    limit = 1.1 * p99["naive"]
    load_ms = COLD.delay * 1000
    targets = [
        Target("cold", "refresher: exactly 1 origin call", f"{calls['refresher']}", calls["refresher"] == 1),
        Target("cold", "refresher p99 <= 1.1x naive p99",
               f"{p99['refresher']:.0f} ms vs {limit:.0f} ms ({p99['refresher'] / p99['naive']:.2f}x)",
               p99["refresher"] <= limit),
        Target("cold", f"refresher p99 - load time ({load_ms:.0f} ms) <= 10 ms: the wake-up and hand-off",
               f"{p99['refresher'] - load_ms:.0f} ms", p99["refresher"] - load_ms <= 10),
    ]
    return Outcome([table], targets)


def run_async(ctx: Context, key_suffix: str = "") -> Outcome:
    s = ctx.scale
    table = Table(
        f"1b. Async cold stampede: {s.processes} processes x {s.cold_threads} asyncio tasks (one event loop "
        f"per process) miss one key (`async def` loader, {COLD.delay * 1000:.0f} ms)",
        COLUMNS,
        notes=[f"The origin is `await asyncio.sleep({COLD.delay:g})`; every strategy reads over redis.asyncio.",
               *NOTES],
    )
    calls, p99, began = _measure(ctx, ASYNC_NAMES, s.cold_threads, table, key_suffix)
    mine, lock = p99["refresher-async"], p99["cashews-lock"]
    finding = (
        f"**Async cold stampede, where the time goes.** refresher aget's p99 was {mine:.0f} ms, cashews lock=True's "
        f"{lock:.0f} ms; their first origin call began {began['refresher-async']:.0f} ms and "
        f"{began['cashews-lock']:.0f} ms after the release, and each took {COLD.delay * 1000:.0f} ms. What comes "
        f"before the load differs: cashews coalesces the {s.cold_threads} calls of one key in a process before "
        "any Redis command (`protected=True`), so one task per process goes to Redis; refresher's tasks on one "
        "loop share the GET of a key that is in flight, and a task that finds the key's miss in flight joins it "
        "with no GET, so one GET per process, then the leader's lock, come before its load (the Redis commands "
        "column counts them). After the load, refresher's waiters are woken by "
        "the key's signal channel; cashews' retry the lock at once, in a loop (see the Redis commands column)."
    )
    targets = [
        Target("cold (async)", "refresher aget: exactly 1 origin call", f"{calls['refresher-async']}",
               calls["refresher-async"] == 1),
        Target("cold (async)", "refresher aget p99 <= cashews lock=True p99",
               f"{mine:.0f} ms vs {lock:.0f} ms ({mine / lock:.2f}x)", mine <= lock),
    ]
    return Outcome([table], targets, findings=[finding])
