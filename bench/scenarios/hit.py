"""3. Hit path: one thread reads a fresh key, against raw redis-py GET + json.loads.

The baseline reads the same JSON payload through the same client (connection pool) the
strategy uses, in alternating rounds; the ratio is the median of the per-round ratios.
`run_async` (3b) does the same for the asyncio strategies: one task awaits the reads, one
after another, against a raw redis.asyncio GET + json.loads on the strategy's own client.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import pstats
from typing import Any, Awaitable, Callable, cast

from bench import origin
from bench.context import Context
from bench.measure import alternating, median_ratio, median_seconds
from bench.report import Table, Target
from bench.scenarios import Outcome
from bench.strategies import ASYNC_NAMES, LABELS, NAMES, AsyncStrategy, build, build_async
from bench.workloads import FRESH

TARGET = 0.87
ASYNC_TARGET = 0.9
PROFILED_READS = 2000
# Where an aget hit's time goes: (label, functions (file suffix, name) whose cumulative times add up to it).
AGET_PARTS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("the GET in redis.asyncio (execute_command: pack, send, receive, parse)",
     (("redis/asyncio/client.py", "execute_command"),)),
    ("the read decision (core/read.py `read`: envelope, policy, decode)", (("refresher/core/read.py", "read"),)),
    ("arguments and keys (calls.py)", (("refresher/calls.py", "__call__"),)),
    ("the loop's driver (Refresher.aio)", (("refresher/client.py", "aio"),)),
)
COLUMNS = ["strategy", "ops/s", "raw GET ops/s", "ratio (median of rounds)", "µs per read", "µs per raw read"]


def _repeat(n: int, read: Callable[[], object]) -> Callable[[], None]:
    def reads() -> None:
        for _ in range(n):
            read()

    return reads


def _arepeat(loop: asyncio.AbstractEventLoop, n: int, read: Callable[[], Awaitable[object]]) -> Callable[[], None]:
    """`n` awaited reads, run to completion on `loop`: one round of `alternating`."""
    async def reads() -> None:
        for _ in range(n):
            await read()

    return lambda: loop.run_until_complete(reads())


def _row(table: Table, name: str, rounds: list[list[float]], n: int) -> float:
    ratio = median_ratio(rounds)
    us, us_raw = (median_seconds(rounds, i) / n * 1e6 for i in (0, 1))
    table.add(LABELS[name], 1e6 / us, 1e6 / us_raw, ratio, us, us_raw)
    return ratio


def run(ctx: Context) -> Outcome:
    s = ctx.scale
    n = s.hit_reads // s.hit_rounds
    table = Table(
        f"3. Hit path: one thread, {n * s.hit_rounds:,} reads of a fresh key per strategy, "
        f"{s.hit_rounds} alternating rounds against raw GET + json.loads on the same client",
        COLUMNS,
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
        ratios[name] = _row(table, name, rounds, n)
    ratio = ratios["refresher"]
    return Outcome([table], [Target("hit", f">= {TARGET}x raw GET + json.loads", f"{ratio:.3f}x", ratio >= TARGET)])


def run_async(ctx: Context) -> Outcome:
    s = ctx.scale
    n = s.async_hit_reads // s.hit_rounds
    table = Table(
        f"3b. Async hit path: one asyncio task, {n * s.hit_rounds:,} awaited reads of a fresh key per strategy, "
        f"{s.hit_rounds} alternating rounds against raw redis.asyncio GET + json.loads on the same client",
        COLUMNS,
    )
    ratios: dict[str, float] = {}
    for name in ASYNC_NAMES:
        loop = asyncio.new_event_loop()
        try:
            ratios[name] = _row(table, name, _arounds(ctx, loop, name, n), n)
        finally:
            loop.run_until_complete(origin.aclose())
            loop.close()
    ratio = ratios["refresher-async"]
    loop = asyncio.new_event_loop()
    try:
        profile, parts = _profile_aget(ctx, loop)
    finally:
        loop.run_until_complete(origin.aclose())
        loop.close()
    row, naive = (table.rows[ASYNC_NAMES.index(name)] for name in ("refresher-async", "naive-async"))
    finding = (
        f"**Async hit path, where the time goes.** refresher aget ran at {ratio:.3f}x a raw redis.asyncio GET + "
        f"json.loads ({row[4]} vs {row[5]} µs per read; target {ASYNC_TARGET}x). Under cProfile (table 3c) the GET "
        f"itself is {parts['get'] / parts['total']:.0%} of aget's CPU; refresher's own code is the rest: the read "
        f"decision {parts['read']:.1f} µs (the raw read's json.loads: {parts['loads']:.1f} µs), the driver stepping "
        f"the hit through the core's `fetch` generator {parts['stepping']:.1f} µs, arguments, keys and the loop's "
        f"driver {parts['calls'] + parts['aio']:.1f} µs (profiled figures, inflated alike). The sync `get` makes its "
        "GET itself and steps no generator on a hit; `aget` runs every hit through the async driver. Apart from "
        f"the ratio, the raw GET itself took {row[5]} µs on refresher's client and {naive[5]} µs on naive's: "
        "refresher's client sets socket_timeout (1 s), and redis.asyncio then runs each command's I/O under "
        "a timeout (`asyncio.wait_for`, which on Python 3.11 makes a task per call); cashews' client does too. "
        "That cost is the same on both sides of this ratio, but not in 1b and 2c, where naive's client has no timeout."
    )
    target = Target("hit (async)", f"refresher aget >= {ASYNC_TARGET}x raw redis.asyncio GET + json.loads",
                    f"{ratio:.3f}x", ratio >= ASYNC_TARGET)
    return Outcome([table, profile], [target], findings=[finding])


def _arounds(ctx: Context, loop: asyncio.AbstractEventLoop, name: str, n: int) -> list[list[float]]:
    async def build_and_warm() -> AsyncStrategy:
        built = build_async(ctx.spec(name, FRESH.name))  # inside the loop: its connections are this loop's
        await built.warm()
        return built

    strategy = loop.run_until_complete(build_and_warm())
    key, raw_key = f"hit-{name}", f"hit-raw-{name}"
    try:
        value = loop.run_until_complete(strategy.get(key))  # loads it once
        client = strategy.redis
        loop.run_until_complete(client.set(raw_key, json.dumps(value, separators=(",", ":"))))

        async def raw_read() -> Any:
            return json.loads(cast(bytes, await client.get(raw_key)))

        return alternating([_arepeat(loop, n, lambda: strategy.get(key)), _arepeat(loop, n, raw_read)],
                           ctx.scale.hit_rounds)
    finally:
        loop.run_until_complete(strategy.close())


def _profile_aget(ctx: Context, loop: asyncio.AbstractEventLoop) -> tuple[Table, dict[str, float]]:
    """refresher aget hits, then raw GET + json.loads, under cProfile: CPU per read, by part."""
    async def profiled() -> tuple[pstats.Stats, pstats.Stats]:
        strategy = build_async(ctx.spec("refresher-async", FRESH.name))
        await strategy.warm()
        key, raw_key = "hit-refresher-async", "hit-raw-refresher-async"  # loaded by run_async
        client = strategy.redis
        out = []

        async def aget() -> object:
            return await strategy.get(key)

        async def raw_read() -> object:
            return await _raw(client, raw_key)

        reads: list[Callable[[], Awaitable[object]]] = [aget, raw_read]
        for read in reads:
            for _ in range(100):
                await read()
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(PROFILED_READS):
                await read()
            profiler.disable()
            out.append(pstats.Stats(profiler))
        await strategy.close()
        return out[0], out[1]

    mine, raw = loop.run_until_complete(profiled())

    def us(stats: pstats.Stats, functions: tuple[tuple[str, str], ...]) -> float:
        table = stats.stats  # type: ignore[attr-defined]
        return float(sum(v[3] for path, function in functions
                         for (file, _, name), v in table.items() if file.endswith(path) and name == function)
                     ) / PROFILED_READS * 1e6

    total = us(mine, (("refresher/handle.py", "aget"),))
    table = Table(
        f"3c. Async hit path profile: where refresher aget's CPU goes, {PROFILED_READS:,} hits under cProfile",
        ["part", "µs per read (profiled)", "share of aget"],
        notes=["CPU time in each part's call stack (cProfile's cumulative time; the wait for Redis's reply is "
               "the event loop's, outside aget). cProfile slows everything down: compare the shares, and "
               f"the raw read's row, profiled the same way: a raw redis.asyncio GET + json.loads took "
               f"{us(raw, (('redis/asyncio/client.py', 'execute_command'),)):.1f} µs + "
               f"{us(raw, (('json/__init__.py', 'loads'),)):.1f} µs per read."],
    )
    parts = [(label, us(mine, functions)) for label, functions in AGET_PARTS]
    stepping = total - sum(t for _, t in parts)
    for label, took in [*parts, ("the rest: driver stepping (drivers/aio.py `run`, Stepper, core/read.py `fetch`'s "
                                 "generator) and the handle", stepping), ("aget, all of it", total)]:
        table.add(label, took, f"{took / total:.0%}")
    get, read, calls, aio = (t for _, t in parts)
    return table, {"total": total, "get": get, "read": read, "calls": calls, "aio": aio, "stepping": stepping,
                   "loads": us(raw, (("json/__init__.py", "loads"),))}


async def _raw(client: Any, key: str) -> Any:
    return json.loads(cast(bytes, await client.get(key)))
